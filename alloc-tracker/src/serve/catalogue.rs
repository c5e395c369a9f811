//! The one table of allocscope's metrics: each family's name, kind, unit,
//! help and how to read it from a [`Snapshot`]. The Prometheus text
//! exposition ([`super::prometheus`]) and the `metrics` facade
//! ([`super::metrics`]) both render it, so they cannot disagree; the
//! module docs of [`super`] list it, and a test keeps that list equal to
//! this table. The counters' names come from the counter vocabulary
//! ([`Counter`]), with Prometheus' suffixes (the unit, then `_total`).

use super::snapshot::Snapshot;
use crate::counters::Counter;
use crate::stats::AllocStats;

/// A family's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only grows (Prometheus `counter`).
    Counter,
    /// Goes up and down (Prometheus `gauge`).
    Gauge,
}

/// A family's unit (the `metrics` facade's `Unit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    Count,
    Bytes,
}

/// One value of a family: the value of its label (labelled families), and
/// the value.
pub(crate) type Sample = (Option<&'static str>, f64);

/// How a family reads its values from a snapshot.
pub(crate) type Read = Box<dyn Fn(&Snapshot) -> Vec<Sample>>;

/// One metric family.
pub(crate) struct Metric {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    /// Read by the `metrics` facade (and the tests).
    #[cfg_attr(not(any(feature = "metrics", test)), allow(dead_code))]
    pub(crate) unit: Unit,
    pub(crate) help: String,
    /// The label's name, for families with one value per operation or
    /// group.
    pub(crate) label: Option<&'static str>,
    /// The family's values in a snapshot; none when the snapshot does not
    /// have the figure (jemalloc's, without jemalloc).
    pub(crate) read: Read,
}

/// A counter of the vocabulary as a metric: its name after `allocscope_`
/// (and a scope prefix), its unit and its help.
fn counter(c: Counter) -> (&'static str, Unit, &'static str) {
    match c {
        Counter::Allocs => {
            ("allocs_total", Unit::Count, "Blocks handed out: successful alloc, alloc_zeroed and realloc calls.")
        }
        Counter::Reallocs => ("reallocs_total", Unit::Count, "Of the blocks handed out, the realloc calls."),
        Counter::Deallocs => ("deallocs_total", Unit::Count, "dealloc calls."),
        Counter::BytesAllocated => (
            "allocated_bytes_total",
            Unit::Bytes,
            "Requested bytes of the blocks handed out (a reallocation's new size).",
        ),
        Counter::BytesFreed => {
            ("freed_bytes_total", Unit::Bytes, "Bytes of deallocations, plus reallocations' old sizes.")
        }
    }
}

fn value(s: &AllocStats, c: Counter) -> f64 {
    s.counts()[c] as f64
}

fn metric(
    name: impl Into<String>,
    kind: Kind,
    unit: Unit,
    help: impl Into<String>,
    label: Option<&'static str>,
    read: impl Fn(&Snapshot) -> Vec<Sample> + 'static,
) -> Metric {
    Metric { name: name.into(), kind, unit, help: help.into(), label, read: Box::new(read) }
}

/// Every family, in the order the exposition lists them.
pub(crate) fn metrics() -> Vec<Metric> {
    use Kind::{Counter as C, Gauge as G};
    let mut all = Vec::new();
    for c in Counter::ALL {
        let (name, unit, help) = counter(c);
        all.push(metric(
            format!("allocscope_{name}"),
            C,
            unit,
            format!("{help} Every thread, since the process started."),
            None,
            move |s| vec![(None, value(&s.process, c))],
        ));
    }
    all.push(metric(
        "allocscope_held_bytes",
        G,
        Unit::Bytes,
        "Bytes allocated and not freed yet, every thread.",
        None,
        |s| vec![(None, s.process.net_bytes() as f64)],
    ));
    all.push(metric(
        "allocscope_peak_bytes",
        G,
        Unit::Bytes,
        "The highest held bytes any reading of the process totals has seen: a lower bound of the peak.",
        None,
        |s| vec![(None, s.process.peak_bytes as f64)],
    ));
    all.push(metric(
        "allocscope_op_calls_total",
        C,
        Unit::Count,
        "Calls of the named operation (ended op guards).",
        Some("op"),
        |s| s.ops.iter().map(|o| (Some(o.name), o.calls as f64)).collect(),
    ));
    for c in Counter::ALL {
        let (name, unit, help) = counter(c);
        all.push(metric(
            format!("allocscope_op_{name}"),
            C,
            unit,
            format!("{help} Inside the named operation, outside the operations nested in it."),
            Some("op"),
            move |s| s.ops.iter().map(|o| (Some(o.name), value(&o.stats, c))).collect(),
        ));
    }
    all.push(metric(
        "allocscope_group_windows_total",
        C,
        Unit::Count,
        "Ended windows of the listed group: polls, wrapped closures, guards.",
        Some("group"),
        |s| s.groups.iter().map(|g| (Some(g.name), g.windows as f64)).collect(),
    ));
    for c in Counter::ALL {
        let (name, unit, help) = counter(c);
        all.push(metric(
            format!("allocscope_group_{name}"),
            C,
            unit,
            format!("{help} By the listed group's threads and tasks, while it was their innermost group."),
            Some("group"),
            move |s| s.groups.iter().map(|g| (Some(g.name), value(&g.stats, c))).collect(),
        ));
    }
    all.push(metric(
        "allocscope_group_held_bytes",
        G,
        Unit::Bytes,
        "Bytes the listed group holds: allocated in it and not freed yet, wherever freed (exact with owner tags; \
         else estimated from heap samples; absent when unknown).",
        Some("group"),
        |s| s.groups.iter().filter(|g| g.held.is_known()).map(|g| (Some(g.name), g.held.bytes as f64)).collect(),
    ));
    all.push(metric(
        "allocscope_group_held_blocks",
        G,
        Unit::Count,
        "Blocks the listed group holds (as allocscope_group_held_bytes).",
        Some("group"),
        |s| s.groups.iter().filter(|g| g.held.is_known()).map(|g| (Some(g.name), g.held.blocks as f64)).collect(),
    ));
    all.push(metric(
        "allocscope_group_peak_bytes",
        G,
        Unit::Bytes,
        "The highest net bytes of the listed group's ended windows (per thread; see Group).",
        Some("group"),
        |s| s.groups.iter().map(|g| (Some(g.name), g.stats.peak_bytes as f64)).collect(),
    ));
    for (name, help, read) in [
        (
            "allocated",
            "bytes in allocations not freed yet, size-class rounded",
            (|j| j.allocated) as fn(&crate::jemalloc::JemallocStats) -> u64,
        ),
        ("active", "bytes in active pages", |j| j.active),
        ("resident", "bytes in resident pages jemalloc maps", |j| j.resident),
        ("mapped", "bytes in extents jemalloc mapped", |j| j.mapped),
        ("retained", "bytes kept mapped for reuse", |j| j.retained),
        ("metadata", "bytes of jemalloc's own metadata", |j| j.metadata),
    ] {
        all.push(metric(
            format!("allocscope_jemalloc_{name}_bytes"),
            G,
            Unit::Bytes,
            format!("jemalloc stats.{name}: {help}."),
            None,
            move |s| s.jemalloc.iter().map(|j| (None, read(j) as f64)).collect(),
        ));
    }
    all.push(metric(
        "allocscope_sampler_rate_bytes",
        G,
        Unit::Bytes,
        "The process-wide heap sampling rate in bytes per sample (0: off).",
        None,
        |s| vec![(None, s.sampler.process_sample_rate as f64)],
    ));
    for (name, help, read) in [
        ("samples_total", "Heap profile samples taken.", (|s| s.samples) as fn(&super::SamplerStats) -> u64),
        ("dropped_samples_total", "Samples that found the stack table full.", |s| s.dropped_samples),
        ("untracked_held_samples_total", "Samples whose block could not be followed.", |s| s.untracked_held_samples),
        ("resolved_addresses_total", "Return addresses the symbolizer resolved (each once while cached).", |s| {
            s.resolved_addresses
        }),
        ("resolutions_total", "Times the symbolizer parsed the debug info (freed after each).", |s| s.resolutions),
    ] {
        all.push(metric(format!("allocscope_sampler_{name}"), C, Unit::Count, help, None, move |s| {
            vec![(None, read(&s.sampler) as f64)]
        }));
    }
    all.push(metric(
        "allocscope_library_held_bytes",
        G,
        Unit::Bytes,
        "Bytes allocscope allocated for itself and has not freed (groups' counters, budgets' state, tables of \
         names, the symbolizer's cache): in no other figure.",
        None,
        |s| vec![(None, s.library.net_bytes() as f64)],
    ));
    all.push(metric(
        "allocscope_library_allocated_bytes_total",
        C,
        Unit::Bytes,
        "Bytes allocscope allocated for itself since the process started, the symbolizer's parsing of debug info \
         included: in no other figure.",
        None,
        |s| vec![(None, s.library.bytes_allocated as f64)],
    ));
    all.push(metric(
        "allocscope_sampler_cached_addresses",
        G,
        Unit::Count,
        "Return addresses whose resolved frames the symbolizer keeps.",
        None,
        |s| vec![(None, s.sampler.cached_addresses as f64)],
    ));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The serve module's docs list every family of the table, in its
    /// order, with its kind: the two cannot drift apart.
    #[test]
    fn the_module_docs_list_every_metric_of_the_table() {
        let docs = include_str!("mod.rs");
        let listed: Vec<(String, String)> = docs
            .lines()
            .filter_map(|l| l.strip_prefix("//! | `allocscope_"))
            .map(|l| {
                let mut cells = l.split('|').map(str::trim);
                let name = format!("allocscope_{}", cells.next().unwrap().trim_end_matches('`'));
                (name, cells.next().unwrap().to_owned())
            })
            .collect();
        let table: Vec<(String, String)> = metrics()
            .into_iter()
            .map(|m| (m.name, if m.kind == Kind::Counter { "counter" } else { "gauge" }.to_owned()))
            .collect();
        assert_eq!(listed, table);
    }

    #[test]
    fn every_name_follows_prometheus_conventions() {
        for m in metrics() {
            assert!(m.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{}", m.name);
            assert_eq!(m.kind == Kind::Counter, m.name.ends_with("_total"), "{}", m.name);
            if m.unit == Unit::Bytes {
                assert!(m.name.ends_with("_bytes") || m.name.ends_with("_bytes_total"), "{}", m.name);
            }
        }
    }
}

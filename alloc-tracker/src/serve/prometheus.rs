//! [`Snapshot::prometheus_text`]: Prometheus' text exposition format
//! (version 0.0.4), for programs with no metrics stack: every family with
//! its `# HELP` and `# TYPE`, units in the names, counters `_total`.

use std::fmt::Write;

use super::Snapshot;
use crate::AllocStats;

/// A family's samples: label values (or none) and the value.
type Samples = Vec<(Option<String>, f64)>;

/// Appends one family.
fn family(out: &mut String, name: &str, kind: &str, help: &str, label: &str, samples: Samples) {
    let _ = writeln!(out, "# HELP {name} {}", help.replace('\\', "\\\\").replace('\n', "\\n"));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (value_of_label, v) in samples {
        match value_of_label {
            Some(l) => {
                let l = l.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = writeln!(out, "{name}{{{label}=\"{l}\"}} {v}");
            }
            None => {
                let _ = writeln!(out, "{name} {v}");
            }
        }
    }
}

/// The event counters of one [`AllocStats`], as (suffix, help, value).
fn counters(s: &AllocStats) -> [(&'static str, &'static str, u64); 5] {
    [
        ("allocations_total", "Successful alloc and alloc_zeroed calls.", s.allocs),
        ("reallocations_total", "Successful realloc calls.", s.reallocs),
        ("deallocations_total", "dealloc calls.", s.deallocs),
        (
            "allocated_bytes_total",
            "Requested bytes of allocations, plus the new size of reallocations.",
            s.bytes_allocated,
        ),
        ("freed_bytes_total", "Bytes of deallocations, plus the old size of reallocations.", s.bytes_freed),
    ]
}

impl Snapshot {
    /// The snapshot in Prometheus' text exposition format (version 0.0.4:
    /// serve it as `text/plain; version=0.0.4`), for a `/metrics` endpoint
    /// with no metrics stack. Families, all prefixed `allocscope_`:
    ///
    /// - process: `allocations_total`, `reallocations_total`,
    ///   `deallocations_total`, `allocated_bytes_total`,
    ///   `freed_bytes_total` (counters), `live_bytes` and
    ///   `live_bytes_peak_seen` (gauges);
    /// - per operation, label `op`: `op_calls_total` and the five counters
    ///   as `op_allocations_total`, ...;
    /// - per named group, label `group`: `group_windows_total`, the five
    ///   counters as `group_allocations_total`, ..., and
    ///   `group_peak_bytes`;
    /// - jemalloc's `jemalloc_allocated_bytes`, `_active_`, `_resident_`,
    ///   `_mapped_`, `_retained_`, `_metadata_bytes` (gauges), when it
    ///   serves the allocations;
    /// - the sampler's `sampler_rate_bytes` (gauge), `sampler_samples_total`,
    ///   `sampler_dropped_samples_total` and
    ///   `sampler_untracked_live_samples_total`.
    ///
    /// Counters only grow, as long as nothing resets them
    /// ([`reset_op_stats`](crate::reset_op_stats),
    /// [`reset_heap_profile`](crate::reset_heap_profile)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// {
    ///     let _op = allocscope::op("doc.render");
    ///     std::hint::black_box(vec![0u8; 10]);
    /// }
    /// let text = allocscope::snapshot().prometheus_text();
    /// assert!(text.contains("allocscope_op_allocated_bytes_total{op=\"doc.render\"} 10"));
    /// ```
    pub fn prometheus_text(&self) -> String {
        let mut out = String::new();
        let p = &self.process;
        for (suffix, help, v) in counters(p) {
            let help = format!("{help} All threads, since the process started.");
            family(&mut out, &format!("allocscope_{suffix}"), "counter", &help, "", vec![(None, v as f64)]);
        }
        family(
            &mut out,
            "allocscope_live_bytes",
            "gauge",
            "Bytes allocated and not freed yet, all threads.",
            "",
            vec![(None, p.live_bytes() as f64)],
        );
        family(
            &mut out,
            "allocscope_live_bytes_peak_seen",
            "gauge",
            "The highest live bytes any reading of the process totals has seen: a lower bound of the peak.",
            "",
            vec![(None, p.peak_bytes as f64)],
        );
        family(
            &mut out,
            "allocscope_op_calls_total",
            "counter",
            "Calls of the named operation (ended op guards).",
            "op",
            self.ops.iter().map(|o| (Some(o.name.to_owned()), o.calls as f64)).collect(),
        );
        for (i, (suffix, help, _)) in counters(&AllocStats::default()).into_iter().enumerate() {
            family(
                &mut out,
                &format!("allocscope_op_{suffix}"),
                "counter",
                &format!("{help} Inside the named operation, outside the operations nested in it."),
                "op",
                self.ops.iter().map(|o| (Some(o.name.to_owned()), counters(&o.stats)[i].2 as f64)).collect(),
            );
        }
        family(
            &mut out,
            "allocscope_group_windows_total",
            "counter",
            "Ended windows of the named group: polls, wrapped closures, guards.",
            "group",
            self.groups.iter().map(|g| (Some(g.name.to_owned()), g.windows as f64)).collect(),
        );
        for (i, (suffix, help, _)) in counters(&AllocStats::default()).into_iter().enumerate() {
            family(
                &mut out,
                &format!("allocscope_group_{suffix}"),
                "counter",
                &format!("{help} By the named group's threads and tasks, while in it."),
                "group",
                self.groups.iter().map(|g| (Some(g.name.to_owned()), counters(&g.stats)[i].2 as f64)).collect(),
            );
        }
        family(
            &mut out,
            "allocscope_group_peak_bytes",
            "gauge",
            "The highest live bytes of the named group's ended windows.",
            "group",
            self.groups.iter().map(|g| (Some(g.name.to_owned()), g.stats.peak_bytes as f64)).collect(),
        );
        if let Some(j) = &self.jemalloc {
            for (name, help, v) in [
                ("allocated", "jemalloc stats.allocated: bytes in live allocations, size-class rounded.", j.allocated),
                ("active", "jemalloc stats.active: bytes in active pages.", j.active),
                ("resident", "jemalloc stats.resident: bytes in resident pages jemalloc maps.", j.resident),
                ("mapped", "jemalloc stats.mapped: bytes in extents jemalloc mapped.", j.mapped),
                ("retained", "jemalloc stats.retained: bytes kept mapped for reuse.", j.retained),
                ("metadata", "jemalloc stats.metadata: bytes of jemalloc's own metadata.", j.metadata),
            ] {
                family(
                    &mut out,
                    &format!("allocscope_jemalloc_{name}_bytes"),
                    "gauge",
                    help,
                    "",
                    vec![(None, v as f64)],
                );
            }
        }
        let s = &self.sampler;
        family(
            &mut out,
            "allocscope_sampler_rate_bytes",
            "gauge",
            "The process-wide heap sampling rate in bytes per sample (0: off).",
            "",
            vec![(None, s.process_rate as f64)],
        );
        for (name, help, v) in [
            ("samples_total", "Heap profile samples taken.", s.samples),
            ("dropped_samples_total", "Samples that found the stack table full.", s.dropped_samples),
            ("untracked_live_samples_total", "Samples whose block could not be followed.", s.untracked_live_samples),
        ] {
            family(&mut out, &format!("allocscope_sampler_{name}"), "counter", help, "", vec![(None, v as f64)]);
        }
        out
    }
}

//! The report as a document of tables: built once from a [`Report`], and
//! rendered alike by [`super::markdown`] and [`super::html`], so the two
//! never disagree and neither parses the other.

use super::num::{change, rate, sig, time};
use super::{Report, VariantResult, GO_REFERENCE};
use crate::stats::mann_whitney_p;

/// How a column's cells are aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One table under its heading.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub heading: String,
    /// Header cells and their alignment.
    pub columns: Vec<(&'static str, Align)>,
    pub rows: Vec<Vec<String>>,
}

/// The report as a title, paragraphs, notes and tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub title: String,
    pub paragraphs: Vec<String>,
    /// Remarks a reader must see with the figures.
    pub notes: Vec<String>,
    /// The first table has no heading of its own: it is the report's.
    pub tables: Vec<Table>,
}

fn columns(names: &[&'static str]) -> Vec<(&'static str, Align)> {
    names.iter().enumerate().map(|(i, &n)| (n, if i < 2 { Align::Left } else { Align::Right })).collect()
}

impl Document {
    /// The document of `r`.
    pub fn of(r: &Report) -> Document {
        let w = &r.workload;
        let paragraphs = vec![
            format!(
                "{} messages per run ({} warm-up), {} repeats{}, variants interleaved; id {} B, payload {} B; \
                 capacity {}; threads mode: {} producer(s) x {} consumer(s).",
                w.messages,
                w.warmup,
                w.repeats,
                if w.separate_processes { " each in its own process" } else { " in one process" },
                w.id_bytes,
                if w.payload_bytes.min == w.payload_bytes.max {
                    w.payload_bytes.min.to_string()
                } else {
                    format!("{} to {}", w.payload_bytes.min, w.payload_bytes.max)
                },
                w.capacity,
                w.producers,
                w.consumers
            ),
            format!(
                "Machine: {} cores, {} {}, {}. Commit {}, {}. Command: `{}`.",
                r.machine.cores, r.machine.os, r.machine.arch, r.machine.cpu, r.commit, r.date, r.command
            ),
        ];
        let mut tables = vec![summary(r), latency(r)];
        if r.results.iter().any(|v| !v.top_sites.is_empty()) {
            tables.push(top_sites(r));
        }
        let mut notes = vec![GO_NOTE.to_owned()];
        notes.extend(r.notes.iter().cloned());
        notes.extend(profile_lines(r));
        tables.push(per_operation(r));
        Document { title: "Queue memory report".into(), paragraphs, notes, tables }
    }
}

/// A median with its spread over the repeats: `67.6 (63.7-92.4)`.
fn spread(median: String, min: f64, max: f64, f: fn(f64) -> String) -> String {
    format!("{median} ({}-{})", f(min), f(max))
}

/// The "vs baseline" cell: the change of the median throughput against the
/// baseline variant of the same mode, and whether the repeats show it
/// (two-sided Mann-Whitney U over the per-repeat times, level 0.05;
/// benchstat's `~` when they do not).
fn versus_baseline(r: &Report, v: &VariantResult) -> String {
    let Some(base) = r.results.iter().find(|b| b.variant == queue::Variant::Baseline && b.mode == v.mode) else {
        return "-".into();
    };
    if std::ptr::eq(base, v) {
        return "reference".into();
    }
    let p = mann_whitney_p(&base.ns_per_op.samples, &v.ns_per_op.samples);
    let delta = change(base.ops_per_sec.median, v.ops_per_sec.median);
    if p < 0.05 {
        format!("{delta} msg/s (p={})", sig(p))
    } else {
        format!("~ (p={})", sig(p))
    }
}

/// The reference row's label; [`GO_NOTE`] says what it is.
const GO_ROW: &str = "Go MemoryQueue (reference)";
const GO_NOTE: &str = "The Go MemoryQueue row is the source material's: another machine and runtime; \
                       its times, in parentheses, are not comparable with ours.";

fn summary(r: &Report) -> Table {
    let g = GO_REFERENCE;
    let mut rows = vec![vec![
        GO_ROW.into(),
        "-".into(),
        format!("({})", rate(g.ops_per_sec)),
        format!("({})", sig(g.ns_per_op)),
        sig(g.bytes_per_op),
        "-".into(),
        sig(g.allocs_per_op),
        "-".into(),
        "-".into(),
        "-".into(),
    ]];
    for v in &r.results {
        rows.push(vec![
            v.variant.to_string(),
            v.mode.to_string(),
            spread(rate(v.ops_per_sec.median), v.ops_per_sec.min, v.ops_per_sec.max, rate),
            spread(sig(v.ns_per_op.median), v.ns_per_op.min, v.ns_per_op.max, sig),
            sig(v.bytes_per_op),
            v.rounded_bytes_per_op.map_or("-".into(), sig),
            sig(v.allocs_per_op),
            v.peak_bytes.to_string(),
            v.held_after_drain_bytes.to_string(),
            versus_baseline(r, v),
        ]);
    }
    Table {
        heading: String::new(),
        columns: columns(&[
            "variant",
            "mode",
            "msg/s (median, min-max)",
            "ns/op (median, min-max)",
            "B/op",
            "rounded B/op",
            "allocs/op",
            "peak bytes",
            "held after drain",
            "msg/s vs baseline",
        ]),
        rows,
    }
}

fn latency(r: &Report) -> Table {
    let rows = r
        .results
        .iter()
        .map(|v| {
            let (e, t) = (v.latency_ns.enqueue, v.latency_ns.end_to_end);
            let mut row = vec![v.variant.to_string(), v.mode.to_string()];
            row.extend(
                [e.p50, e.p90, e.p99, e.p999, e.max, t.p50, t.p90, t.p99, t.p999, t.max].map(|x| time(x as f64)),
            );
            row
        })
        .collect();
    Table {
        heading: format!("Latency (every {} message timed)", ordinal(r.workload.latency_sample_every)),
        columns: columns(&[
            "variant",
            "mode",
            "enqueue p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "end-to-end p50",
            "p90",
            "p99",
            "p99.9",
            "max",
        ]),
        rows,
    }
}

/// One line per profiled variant: what its sites are estimated from, and
/// what the profile could not record.
fn profile_lines(r: &Report) -> Vec<String> {
    r.results
        .iter()
        .filter_map(|v| v.heap_profile.map(|p| (v.variant, p)))
        .map(|(variant, p)| {
            let scaled = match p.scale {
                _ if p.samples == 0 => " No allocation was sampled.".into(),
                Some([a, b]) => format!(
                    " Site figures are estimates, scaled (allocations x{}, bytes x{}) so that the sites add up to \
                     the pass's exact totals.",
                    sig(a),
                    sig(b)
                ),
                None => " Site figures are unscaled estimates: dropped samples are missing from them.".into(),
            };
            format!(
                "{variant}: {} samples at 1 per {} bytes; {} dropped (stack table full), {} not followed live \
                 (live table full).{scaled}",
                p.samples, p.sample_rate, p.dropped_samples, p.untracked_held_samples
            )
        })
        .collect()
}

/// The relative 95 % interval of a site's estimate from its `samples`: the
/// count of samples is Poisson, whose relative standard error is
/// `1/sqrt(k)`. At one sample per byte every allocation is sampled and the
/// figures are exact.
fn interval(samples: u64, rate: Option<u64>) -> String {
    match (samples, rate) {
        (_, Some(1)) => "exact".into(),
        (0, _) => "-".into(),
        (k, _) => format!("±{}%", sig(196.0 / (k as f64).sqrt())),
    }
}

fn top_sites(r: &Report) -> Table {
    let rows = r
        .results
        .iter()
        .flat_map(|v| {
            v.top_sites.iter().map(|site| {
                vec![
                    v.variant.to_string(),
                    format!("`{}`", site.function),
                    site.location.clone(),
                    format!("≈{}", sig(site.allocs_per_op)),
                    format!("≈{}", sig(site.bytes_per_op)),
                    interval(site.samples, v.heap_profile.map(|p| p.sample_rate)),
                    site.samples.to_string(),
                ]
            })
        })
        .collect();
    Table {
        heading: "Top allocation sites (estimates from a sampled heap profile, untimed pair-mode pass)".into(),
        columns: vec![
            ("variant", Align::Left),
            ("function", Align::Left),
            ("location", Align::Left),
            ("allocs/op (est.)", Align::Right),
            ("B/op (est.)", Align::Right),
            ("95% interval", Align::Right),
            ("samples", Align::Right),
        ],
        rows,
    }
}

fn per_operation(r: &Report) -> Table {
    let rows = r
        .results
        .iter()
        .flat_map(|v| {
            v.ops.iter().map(|o| {
                vec![
                    v.variant.to_string(),
                    v.mode.to_string(),
                    o.name.clone(),
                    o.calls.to_string(),
                    sig(o.bytes_per_op),
                    sig(o.allocs_per_op),
                    sig(o.deallocs_per_op),
                ]
            })
        })
        .collect();
    Table {
        heading:
            "Per operation (pair: an untimed pass with op guards; threads: the run's producer and consumer groups)"
                .into(),
        columns: columns(&["variant", "mode", "operation", "calls", "B/op", "allocs/op", "deallocs/op"]),
        rows,
    }
}

/// `n` as an English ordinal: 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st,
/// 32nd, ...
fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod ordinal_tests {
    #[test]
    fn ordinals_take_the_english_suffix() {
        let got: Vec<String> = [1, 2, 3, 4, 8, 11, 12, 13, 21, 32, 101, 112].map(super::ordinal).into();
        assert_eq!(got, ["1st", "2nd", "3rd", "4th", "8th", "11th", "12th", "13th", "21st", "32nd", "101st", "112th"]);
    }
}

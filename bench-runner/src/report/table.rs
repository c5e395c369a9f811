//! The report as a document of tables: built once from a [`Report`], and
//! rendered alike by [`super::markdown`] and [`super::html`], so the two
//! never disagree and neither parses the other.

use super::{Report, GO_REFERENCE};

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

/// A per-message figure: enough digits that a small non-zero value does not
/// print as zero.
pub fn per_op(v: f64) -> String {
    if v == 0.0 || v >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.1e}")
    }
}

fn ops(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else {
        format!("{:.0} k", v / 1e3)
    }
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
                "{} messages per run ({} warm-up), {} repeats{}, variants interleaved; id {} B, payload {}-{} B; \
                 capacity {}; threads mode: {} producer(s) x {} consumer(s).",
                w.messages,
                w.warmup,
                w.repeats,
                if w.separate_processes { " each in its own process" } else { " in one process" },
                w.id_bytes,
                w.payload_bytes.min,
                w.payload_bytes.max,
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
        let mut notes = r.notes.clone();
        notes.extend(profile_lines(r));
        tables.push(per_operation(r));
        Document { title: "Queue memory report".into(), paragraphs, notes, tables }
    }
}

fn summary(r: &Report) -> Table {
    let g = GO_REFERENCE;
    let mut rows = vec![vec![
        "Go MemoryQueue (source material)".into(),
        "-".into(),
        ops(g.ops_per_sec),
        format!("{:.0}", g.ns_per_op),
        "-".into(),
        format!("{:.0}", g.bytes_per_op),
        format!("{:.2}", g.allocs_per_op),
        "-".into(),
        "-".into(),
        "-".into(),
    ]];
    for v in &r.results {
        rows.push(vec![
            v.variant.to_string(),
            v.mode.to_string(),
            ops(v.ops_per_sec.median),
            format!("{:.1} ({:.1}-{:.1})", v.ns_per_op.median, v.ns_per_op.min, v.ns_per_op.max),
            per_op(v.bytes_per_op),
            v.rounded_bytes_per_op.map_or("-".into(), per_op),
            per_op(v.allocs_per_op),
            v.peak_bytes.to_string(),
            v.live_after_drain_bytes.to_string(),
            v.improvement_pct.map_or("-".into(), |i| format!("{:+.0} % msg/s", i.throughput)),
        ]);
    }
    Table {
        heading: String::new(),
        columns: columns(&[
            "variant",
            "mode",
            "msg/s (median)",
            "ns/op (median, min-max)",
            "B/op",
            "rounded B/op",
            "allocs/op",
            "peak bytes",
            "live after drain",
            "vs baseline",
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
            row.extend([e.p50, e.p90, e.p99, e.p999, e.max, t.p50, t.p90, t.p99, t.p999, t.max].map(|x| x.to_string()));
            row
        })
        .collect();
    Table {
        heading: format!("Latency (ns; every {}th message timed)", r.workload.latency_sample_every),
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
            format!(
                "{variant}: {} samples at 1 per {} bytes; {} dropped (stack table full), {} not followed live \
                 (live table full).",
                p.samples, p.sample_rate, p.dropped_samples, p.untracked_live_samples
            )
        })
        .collect()
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
                    per_op(site.allocs_per_op),
                    per_op(site.bytes_per_op),
                    site.samples.to_string(),
                ]
            })
        })
        .collect();
    Table {
        heading: "Top allocation sites (heap profile, untimed pair-mode pass)".into(),
        columns: vec![
            ("variant", Align::Left),
            ("function", Align::Left),
            ("location", Align::Left),
            ("allocs/op", Align::Right),
            ("B/op", Align::Right),
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
                    format!("{:.1}", o.bytes_per_op),
                    format!("{:.2}", o.allocs_per_op),
                    format!("{:.2}", o.deallocs_per_op),
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

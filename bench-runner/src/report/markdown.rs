//! `report.md`: the table a person pastes into a pull request.

use std::fmt::Write;

use super::{Report, GO_REFERENCE};

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

pub fn render(r: &Report) -> String {
    let w = &r.workload;
    let mut s = String::new();
    let _ = writeln!(s, "# Queue memory report\n");
    let _ = writeln!(
        s,
        "{} messages per run ({} warm-up), {} repeats{}, variants interleaved; id {} B, payload {}-{} B; \
         capacity {}; threads mode: {} producer(s) x {} consumer(s).\n",
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
    );
    let _ = writeln!(
        s,
        "Machine: {} cores, {} {}, {}. Commit {}, {}. Command: `{}`.\n",
        r.machine.cores, r.machine.os, r.machine.arch, r.machine.cpu, r.commit, r.date, r.command
    );
    for note in &r.notes {
        let _ = writeln!(s, "**Note:** {note}\n");
    }
    let _ = writeln!(
        s,
        "| variant | mode | msg/s (median) | ns/op (median, min-max) | B/op | rounded B/op | allocs/op | peak bytes | live after drain | vs baseline |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let g = GO_REFERENCE;
    let _ = writeln!(
        s,
        "| Go MemoryQueue (source material) | - | {} | {:.0} | - | {:.0} | {:.2} | - | - | - |",
        ops(g.ops_per_sec),
        g.ns_per_op,
        g.bytes_per_op,
        g.allocs_per_op
    );
    for v in &r.results {
        let rounded = v.rounded_bytes_per_op.map_or("-".into(), per_op);
        let vs = v.improvement_pct.map_or("-".into(), |i| format!("{:+.0} % msg/s", i.throughput));
        let _ = writeln!(
            s,
            "| {} | {:?} | {} | {:.1} ({:.1}-{:.1}) | {} | {} | {} | {} | {} | {} |",
            v.variant,
            v.mode,
            ops(v.ops_per_sec.median),
            v.ns_per_op.median,
            v.ns_per_op.min,
            v.ns_per_op.max,
            per_op(v.bytes_per_op),
            rounded,
            per_op(v.allocs_per_op),
            v.peak_bytes,
            v.live_after_drain_bytes,
            vs
        );
    }
    let _ = writeln!(s, "\n## Latency (ns; every {}th message timed)\n", w.latency_sample_every);
    let _ = writeln!(
        s,
        "| variant | mode | enqueue p50 | p90 | p99 | p99.9 | max | end-to-end p50 | p90 | p99 | p99.9 | max |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for v in &r.results {
        let (e, t) = (v.latency_ns.enqueue, v.latency_ns.end_to_end);
        let _ = writeln!(
            s,
            "| {} | {:?} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            v.variant, v.mode, e.p50, e.p90, e.p99, e.p999, e.max, t.p50, t.p90, t.p99, t.p999, t.max
        );
    }
    if r.results.iter().any(|v| !v.top_sites.is_empty()) {
        let _ = writeln!(s, "\n## Top allocation sites (heap profile, untimed pair-mode pass)\n");
        let _ = writeln!(s, "| variant | function | location | allocs/op | B/op | samples |");
        let _ = writeln!(s, "|---|---|---|---:|---:|---:|");
        for v in &r.results {
            for site in &v.top_sites {
                let _ = writeln!(
                    s,
                    "| {} | `{}` | {} | {} | {} | {} |",
                    v.variant,
                    site.function,
                    site.location,
                    per_op(site.allocs_per_op),
                    per_op(site.bytes_per_op),
                    site.samples
                );
            }
        }
    }
    let _ = writeln!(s, "\n## Per operation (untimed pass, pair mode)\n");
    let _ = writeln!(s, "| variant | operation | calls | B/op | allocs/op | deallocs/op |");
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|");
    let mut seen = Vec::new();
    for v in r.results.iter().filter(|v| {
        !seen.contains(&v.variant) && {
            seen.push(v.variant.clone());
            true
        }
    }) {
        for o in &v.ops {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1} | {:.2} | {:.2} |",
                v.variant, o.name, o.calls, o.bytes_per_op, o.allocs_per_op, o.deallocs_per_op
            );
        }
    }
    s
}

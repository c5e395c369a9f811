//! `bench.txt`: Go benchmark format, one line per repeat, so that
//! `benchstat` reads our runs (`BenchmarkQueue/pooled/pair-2 N T ns/op B B/op
//! A allocs/op`; the `-2` suffix is the core count, as Go's GOMAXPROCS).

use std::fmt::Write;

use super::Report;

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "goos: {}\ngoarch: {}\npkg: allocscope/queue\ncpu: {}",
        r.machine.os, r.machine.arch, r.machine.cpu
    );
    for v in &r.results {
        for ns in &v.ns_per_op.samples {
            let _ = writeln!(
                s,
                "BenchmarkQueue/{}/{}-{}\t{}\t{:.2} ns/op\t{:.0} B/op\t{:.0} allocs/op",
                v.variant,
                v.mode,
                r.machine.cores,
                r.workload.messages,
                ns,
                v.rounded_bytes_per_op.unwrap_or(v.bytes_per_op),
                v.allocs_per_op
            );
        }
    }
    s
}

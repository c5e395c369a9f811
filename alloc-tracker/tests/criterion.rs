//! `allocscope::criterion`: the Go line counts exactly what the routine
//! allocates per iteration, over the iterations criterion ran, and the
//! measurements count exactly. One test function: `bench_function` counts
//! every thread of the process, so nothing else may run beside it.
//! Needs the `criterion` feature (the workspace's self dev-dependency turns
//! it on; a packaged crate's tests have no such dev-dependency).
#![cfg(feature = "criterion")]

use std::time::Duration;

use allocscope::criterion::{bench_function, config, Allocs, Bytes, Counted, Quantity};
use criterion::Criterion;

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<std::alloc::System> = allocscope::CountingAlloc::new(std::alloc::System);

fn quick() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(20))
        .measurement_time(Duration::from_millis(100))
        .sample_size(10)
        .without_plots()
}

fn quick_config<Q: Quantity>(quantity: Q, out: &std::path::Path) -> Criterion<Counted<Q>> {
    config(quantity)
        .warm_up_time(Duration::from_millis(20))
        .measurement_time(Duration::from_millis(100))
        .sample_size(10)
        .output_directory(out)
}

/// The mean per iteration and its standard deviation, from the estimates
/// criterion saved for a benchmark's last run.
fn mean_and_spread(bench: &std::path::Path) -> (f64, f64) {
    let path = bench.join("new/estimates.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let point = |name: &str| json[name]["point_estimate"].as_f64().unwrap_or_else(|| panic!("{name} in {text}"));
    (point("mean"), point("std_dev"))
}

#[test]
fn go_lines_and_measurements_count_exactly() {
    let mut c = quick();

    // Two boxes of 8 bytes per iteration, every iteration.
    let line = bench_function(&mut c, "two boxes", || (Box::new(1u64), Box::new(2u64))).expect("criterion ran it");
    assert_eq!((line.allocs_per_op, line.bytes_per_op), (2.0, 16.0));
    assert!(line.iterations > 1000, "{line:?}");
    let text = line.to_string();
    assert!(text.starts_with("BenchmarkTwo_boxes\t"), "{text}");
    assert!(text.ends_with("\t      16 B/op\t       2 allocs/op"), "{text}");

    // A buffer that grows on the first call only: the first call (one-time
    // set-up) is left out, so the line reads exactly zero.
    let mut buf: Vec<u64> = Vec::new();
    let line = bench_function(&mut c, "reused buffer", || {
        buf.clear();
        buf.extend([1, 2, 3]);
        buf.len()
    })
    .expect("criterion ran it");
    assert_eq!((line.allocs_per_op, line.bytes_per_op), (0.0, 0.0), "{line}");

    // A routine that allocates on every other call: a mean, with the
    // digits it needs.
    let mut n = 0u64;
    let line = bench_function(&mut c, "every other", || {
        n += 1;
        n.is_multiple_of(2).then(|| Box::new(n))
    })
    .expect("criterion ran it");
    assert!((line.allocs_per_op - 0.5).abs() < 0.01, "{line}");

    // Criterion driven by `config(Allocs)` and `config(Bytes)`, run twice
    // into one directory (the second run compares with the first, where
    // plots over exact counts would panic): exact figures per iteration,
    // with no spread, in criterion's own estimates.
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("criterion-measurements");
    let _ = std::fs::remove_dir_all(&out);
    for _run in 0..2 {
        let mut c = quick_config(Allocs::this_thread(), &out);
        c.bench_function("three boxes", |b| b.iter(|| [Box::new(1u8), Box::new(2u8), Box::new(3u8)]));
        let mut c = quick_config(Bytes::new(), &out);
        c.bench_function("vec of 100", |b| b.iter(|| (Box::new(1u8), vec![0u8; 100])));
    }
    assert_eq!(mean_and_spread(&out.join("three boxes")), (3.0, 0.0));
    assert_eq!(mean_and_spread(&out.join("vec of 100")), (101.0, 0.0));

    // A benchmark that criterion's filter leaves out prints no line.
    let mut c = quick().with_filter("^only-this$");
    assert_eq!(bench_function(&mut c, "something else", || Box::new(1u8)), None);
}

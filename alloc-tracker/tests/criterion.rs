//! `allocscope::criterion`: the Go line counts exactly what the routine
//! allocates per iteration, over the iterations criterion ran, and the
//! measurements count exactly. One test function: `bench_function` counts
//! every thread of the process, so nothing else may run beside it.
//! Needs the `criterion` feature (the workspace's self dev-dependency turns
//! it on; a packaged crate's tests have no such dev-dependency).
#![cfg(feature = "criterion")]

use std::hint::black_box;
use std::time::Duration;

use allocscope::criterion::{bench_function, Allocs, Bytes};
use criterion::measurement::Measurement;
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

    // The measurements, read directly: exact per batch.
    for m in [Allocs::new(), Allocs::this_thread()] {
        let start = m.start();
        black_box((Box::new(1u8), vec![0u8; 100], String::from("abc")));
        assert_eq!(m.end(start), 3);
    }
    for m in [Bytes::new(), Bytes::this_thread()] {
        let start = m.start();
        black_box((Box::new(1u8), vec![0u8; 100]));
        assert_eq!(m.end(start), 101);
    }

    // Criterion driven by `Allocs`: it runs, and its formatter names the unit.
    let mut c = quick().with_measurement(Allocs::new());
    let mut group = c.benchmark_group("allocs");
    group.bench_function("three", |b| b.iter(|| [Box::new(1u8), Box::new(2u8), Box::new(3u8)]));
    group.finish();
    assert_eq!(Allocs::new().formatter().format_value(3.0), "3.0000 allocs");
    assert_eq!(Bytes::new().formatter().format_throughput(&criterion::Throughput::Elements(4), 64.0), "16.000 B/elem");

    // A benchmark that criterion's filter leaves out prints no line.
    let mut c = quick().with_filter("^only-this$");
    assert_eq!(bench_function(&mut c, "something else", || Box::new(1u8)), None);
}

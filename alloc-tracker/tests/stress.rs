//! 10^7 allocator events on two threads at once add up exactly.
#![cfg(feature = "jemalloc")]

use std::hint::black_box;

use allocscope::{measure, process_stats, AllocStats, CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

/// Alloc/free pairs per thread: 2 threads x 2.5 M pairs x 2 events = 10^7.
const PAIRS: u64 = 2_500_000;

/// Runs `pairs(t)` alloc/free pairs on each of two threads at once, each
/// inside `measure`: what each thread measured, and what the process
/// counted over the whole spawn-and-join.
fn on_two_threads(pairs: u64) -> (Vec<AllocStats>, AllocStats) {
    let before = process_stats();
    let workers: Vec<_> = (0..2u64)
        .map(|t| {
            std::thread::spawn(move || {
                measure(|| {
                    for i in 0..pairs {
                        // Sizes 1..=65, so byte totals are not a multiple
                        // of the count by accident.
                        let size = (i % 64 + 1 + t) as usize;
                        drop(black_box(vec![0u8; size]));
                    }
                })
                .1
            })
        })
        .collect();
    let per_thread = workers.into_iter().map(|w| w.join().unwrap()).collect();
    (per_thread, process_stats() - before)
}

#[test]
fn two_threads_ten_million_events_add_up_exactly() {
    // What spawning, measuring nothing and joining costs the process: the
    // same two threads with no work.
    let (_, idle) = on_two_threads(0);
    let (per_thread, total) = on_two_threads(PAIRS);
    let mut events = 0;
    for (t, s) in per_thread.iter().enumerate() {
        let t = t as u64;
        let bytes: u64 = (0..PAIRS).map(|i| i % 64 + 1 + t).sum();
        assert_eq!((s.allocs, s.deallocs, s.reallocs), (PAIRS, PAIRS, 0));
        assert_eq!((s.bytes_allocated, s.bytes_freed), (bytes, bytes));
        events += s.allocs + s.deallocs;
    }
    assert_eq!(events, 10_000_000, "events counted by the two threads' scopes");
    // The process saw both threads' events and what two idle threads cost
    // it: nothing lost. The test harness's own thread may allocate
    // meanwhile (its progress and timing output), a few blocks at most.
    let sum = per_thread[0] + per_thread[1];
    let expected = [
        sum.allocs + idle.allocs,
        sum.deallocs + idle.deallocs,
        sum.bytes_allocated + idle.bytes_allocated,
        sum.bytes_freed + idle.bytes_freed,
    ];
    let seen = [total.allocs, total.deallocs, total.bytes_allocated, total.bytes_freed];
    for ((seen, expected), name) in
        seen.into_iter().zip(expected).zip(["allocs", "deallocs", "bytes_allocated", "bytes_freed"])
    {
        assert!(
            seen >= expected,
            "{name}: the process lost events: {seen} < {expected}; process {total}; threads {sum}"
        );
        let harness = if name.starts_with("bytes") { 4096 } else { 16 };
        assert!(seen - expected <= harness, "{name}: {seen} > {expected} + {harness}; process {total}; threads {sum}");
    }
}

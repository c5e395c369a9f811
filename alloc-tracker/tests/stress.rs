//! 10^7 allocator events on two threads at once add up exactly.
#![cfg(feature = "jemalloc")]

use std::hint::black_box;

use allocscope::{measure, process_stats, CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

/// Alloc/free pairs per thread: 2 threads x 2.5 M pairs x 2 events = 10^7.
const PAIRS: u64 = 2_500_000;

#[test]
fn two_threads_ten_million_events_add_up_exactly() {
    let before = process_stats();
    let per_thread = {
        let workers: Vec<_> = (0..2u64)
            .map(|t| {
                std::thread::spawn(move || {
                    measure(|| {
                        for i in 0..PAIRS {
                            // Sizes 1..=64, so byte totals are not a multiple
                            // of the count by accident.
                            let size = (i % 64 + 1 + t) as usize;
                            drop(black_box(vec![0u8; size]));
                        }
                    })
                    .1
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect::<Vec<_>>()
    };
    let total = process_stats() - before;
    for (t, s) in per_thread.iter().enumerate() {
        let t = t as u64;
        let bytes: u64 = (0..PAIRS).map(|i| i % 64 + 1 + t).sum();
        assert_eq!((s.allocs, s.deallocs, s.reallocs), (PAIRS, PAIRS, 0));
        assert_eq!((s.bytes_allocated, s.bytes_freed), (bytes, bytes));
    }
    let events = 2 * (PAIRS * 2);
    assert_eq!(events, 10_000_000);
    // The process saw both threads' events, plus thread start-up and join.
    let sum = per_thread[0] + per_thread[1];
    assert!(total.allocs >= sum.allocs && total.allocs - sum.allocs < 100, "{total}");
    assert!(total.deallocs >= sum.deallocs && total.deallocs - sum.deallocs < 100, "{total}");
}

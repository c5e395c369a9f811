//! Process totals keep a thread that has exited, counted exactly once.
//! (Its own file: process totals see every thread of the test binary.)
#![cfg(feature = "jemalloc")]

use std::hint::black_box;

use allocscope::{measure, process_stats, CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

const N: u64 = 1_000;

#[test]
fn an_exited_thread_stays_in_the_process_totals_exactly_once() {
    let before = process_stats();
    let own = std::thread::spawn(|| {
        measure(|| {
            for i in 0..N {
                drop(black_box(Box::new([i as u8; 100])));
            }
        })
        .1
    })
    .join()
    .unwrap();
    let total = process_stats() - before;
    assert_eq!((own.allocs, own.bytes_allocated), (N, N * 100));
    // Thread start-up, the join and other tests add a few allocations; a
    // thread counted twice (its live block and its retired copy) would add N.
    assert!(total.allocs >= N && total.allocs < 2 * N, "{total}");
    assert!(total.bytes_allocated >= N * 100 && total.bytes_allocated < 2 * N * 100, "{total}");
    assert!(total.deallocs >= N && total.deallocs < 2 * N, "{total}");
}

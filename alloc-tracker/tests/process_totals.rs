//! Process totals: every thread, including threads that have exited, counted
//! exactly once, and reads that never go backwards while threads come and go.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use allocscope::{measure, measure_process, process_stats, CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

const N: u64 = 1_000;

#[test]
fn an_exited_thread_stays_in_the_process_totals_exactly_once() {
    let (own, total) = measure_process(|| {
        std::thread::spawn(|| {
            measure(|| {
                for i in 0..N {
                    drop(black_box(Box::new([i as u8; 100])));
                }
            })
            .1
        })
        .join()
        .unwrap()
    });
    assert_eq!((own.allocs, own.bytes_allocated), (N, N * 100));
    // Thread start-up, the join and other tests add a few allocations; a
    // thread counted twice (its live block and its retired copy) would add N.
    assert!(total.allocs >= N && total.allocs < 2 * N, "{total}");
    assert!(total.bytes_allocated >= N * 100 && total.bytes_allocated < 2 * N * 100, "{total}");
    assert!(total.deallocs >= N && total.deallocs < 2 * N, "{total}");
}

#[test]
fn a_thread_that_only_frees_is_counted() {
    let block = black_box(vec![0u8; 4096]);
    let ((), total) = measure_process(|| {
        // The block's first event on the new thread is a free: the thread
        // registers on that free, without allocating.
        std::thread::spawn(move || drop(block)).join().unwrap();
    });
    assert!(total.deallocs >= 1 && total.bytes_freed >= 4096, "{total}");
}

#[test]
fn process_totals_never_go_backwards_while_threads_exit() {
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut last = process_stats();
            let mut reads = 0u64;
            while !done.load(Ordering::Relaxed) {
                let now = process_stats();
                assert!(now.allocs >= last.allocs, "allocs went back: {last} then {now}");
                assert!(now.deallocs >= last.deallocs, "deallocs went back: {last} then {now}");
                assert!(now.bytes_allocated >= last.bytes_allocated, "bytes went back: {last} then {now}");
                last = now;
                reads += 1;
            }
            reads
        })
    };
    for _ in 0..200 {
        std::thread::spawn(|| {
            for _ in 0..100 {
                drop(black_box(vec![0u8; 64]));
            }
        })
        .join()
        .unwrap();
    }
    done.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
}

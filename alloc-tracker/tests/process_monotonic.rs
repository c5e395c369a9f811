//! Process totals never go backwards while threads register and exit: the
//! registry's readers and exit hooks never double count or drop a block.
#![cfg(feature = "jemalloc")]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use allocscope::{process_stats, CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

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

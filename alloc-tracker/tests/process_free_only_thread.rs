//! A thread that frees what another thread allocated, and allocates
//! nothing itself in the process, is in the process totals.
//! (Its own file: process totals see every thread of the test binary.)
#![cfg(feature = "jemalloc")]

use std::hint::black_box;

use allocscope::{process_stats, CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

#[test]
fn a_thread_that_only_frees_is_counted() {
    let block = black_box(vec![0u8; 4096]);
    let before = process_stats();
    // The block's first event on the new thread is a free: the thread
    // registers on that free, without allocating.
    std::thread::spawn(move || drop(block)).join().unwrap();
    let total = process_stats() - before;
    assert!(total.deallocs >= 1 && total.bytes_freed >= 4096, "{total}");
    assert!(total.bytes_freed < 2 * 4096, "counted once: {total}");
}

//! A profile knows the rate its samples were taken at, and says so when
//! threads sampled at different rates (pprof's `period` would otherwise be
//! whichever rate was set last). Its own process: the rates seen are
//! process-wide.
#![cfg(feature = "jemalloc")]

use std::hint::black_box;

use allocscope::profile::{heap_profile, reset_heap_profile, start_thread_sampling, stop_thread_sampling};
use allocscope::{CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

fn sample_on_a_thread(rate: u64) {
    std::thread::spawn(move || {
        start_thread_sampling(rate);
        for _ in 0..100 {
            drop(black_box(vec![0u8; 4096]));
        }
        stop_thread_sampling();
    })
    .join()
    .unwrap();
}

#[test]
fn the_profile_says_which_rate_its_samples_share_or_that_they_do_not() {
    reset_heap_profile();
    sample_on_a_thread(1);
    assert_eq!(heap_profile().sample_rate, 1);
    sample_on_a_thread(1);
    assert_eq!(heap_profile().sample_rate, 1);
    // A second thread at another rate: no single period describes them.
    start_thread_sampling(1000);
    sample_on_a_thread(1000);
    assert_eq!(heap_profile().sample_rate, 0, "mixed rates");
    stop_thread_sampling();
    reset_heap_profile();
    sample_on_a_thread(1000);
    assert_eq!(heap_profile().sample_rate, 1000);
}

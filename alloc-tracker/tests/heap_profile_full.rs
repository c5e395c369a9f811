//! More live sampled blocks than the live table holds: nothing is lost
//! silently. Every sample is either followed (and its free takes it out of
//! the live figures) or counted as untracked (and never in the live
//! figures), so after every block is freed the live figures are exactly 0,
//! and the profile says its live figures were incomplete. Its own process:
//! it fills the process-wide table.
#![cfg(feature = "jemalloc")]

use std::hint::black_box;

use allocscope::capacity::MAX_HELD_SAMPLES;
use allocscope::profile::{heap_profile, start_thread_sampling, stop_thread_sampling};
use allocscope::{CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

#[inline(never)]
fn one_of_many() -> Box<[u8; 24]> {
    black_box(Box::new([7u8; 24]))
}

#[test]
fn overflowing_the_live_table_is_counted_and_never_leaves_live_bytes_behind() {
    let n = MAX_HELD_SAMPLES + MAX_HELD_SAMPLES / 4;
    let mut kept = Vec::with_capacity(n);
    start_thread_sampling(1);
    for _ in 0..n {
        kept.push(one_of_many());
    }
    // Read with sampling off (reading allocates), then free on a sampling
    // thread again, where frees are matched.
    stop_thread_sampling();
    let during = heap_profile();
    start_thread_sampling(1);
    let ours = |p: &allocscope::profile::HeapProfile| -> (f64, f64) {
        p.sites
            .iter()
            .zip(p.user_frames())
            .filter(|(_, frames)| frames.first().is_some_and(|f| f.name.ends_with("one_of_many")))
            .fold((0.0, 0.0), |(a, l), (s, _)| (a + s.allocs, l + s.held_blocks))
    };
    let (allocs, live) = ours(&during);
    assert_eq!(allocs, n as f64, "rate 1: every allocation sampled");
    assert!(during.untracked_held_samples > 0 && !during.held_is_complete(), "the table overflowed");
    assert_eq!(live + during.untracked_held_samples as f64, n as f64, "followed or counted, never lost");
    assert_eq!(during.dropped_samples, 0);
    drop(kept);
    stop_thread_sampling();
    let after = heap_profile();
    assert_eq!(ours(&after).1, 0.0, "every followed block's free was seen; no untracked block was ever live");
}

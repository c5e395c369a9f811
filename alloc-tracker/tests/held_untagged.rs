//! What a group holds, without owner tags: unknown without sampling, and
//! an estimate from the heap sampler's live samples with sampling, never an
//! exact-looking figure. One test, in its own process: it turns sampling
//! on for every thread.

use std::hint::black_box;

use allocscope::{CountingAlloc, Group};

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

#[test]
fn without_tags_held_bytes_are_unknown_or_an_estimate_that_says_so() {
    let g = Group::new("held.untagged").with_held_limit(1);
    let kept = g.run(|| black_box(vec![0u8; 5000]));
    let held = g.held();
    assert!(!held.exact && !held.is_known(), "no tags, no sampling: {held}");
    assert_eq!(held.to_string(), "unknown (no owner tags, no sampling)");
    assert_eq!((g.headroom(), g.over_limit()), (None, false), "an unknown figure crosses no limit");
    drop(kept);

    // Every allocation sampled (rate 1): the estimate is the truth, and
    // still says it is an estimate, from so many samples.
    allocscope::profile::start_process_sampling(1);
    let blocks: Vec<Vec<u8>> = g.run(|| (0..20).map(|_| black_box(vec![0u8; 1000])).collect());
    let held = g.held();
    assert!(!held.exact && held.is_known());
    assert_eq!((held.bytes, held.blocks, held.samples), (20 * 1000 + 20 * 24, 21, 21), "{held}");
    let (low, high) = held.bytes_interval.unwrap();
    assert!(low < held.bytes && held.bytes < high, "{held}");
    // Freed on another thread (which samples too, so it matches the frees).
    std::thread::spawn(move || drop(blocks)).join().unwrap();
    let held = g.held();
    assert_eq!((held.bytes, held.samples), (0, 0), "{held}");
    assert_eq!(held.bytes_interval.map(|(low, _)| low), Some(0));
    allocscope::profile::stop_process_sampling();
}

//! Sampling every allocation (rate 1) of a real workload: serde_json parses
//! a generated document of a few megabytes into a `Value`. The profile must
//! count exactly what the counters count, its live figure must be exactly
//! the live bytes (or say it is incomplete), and it must be 0 once the
//! value is dropped. (It once took 11 minutes on a 5.2 MB document and
//! reported 59.6 MB live when nothing was.) Its own process: the profile is
//! process-wide.
#![cfg(feature = "jemalloc")]

#[path = "../benches/overhead/json_doc.rs"]
mod json_doc;

use allocscope::profile::{heap_profile, reset_heap_profile, start_thread_sampling, stop_thread_sampling};
use allocscope::{CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

#[test]
fn rate_1_on_a_parsed_json_document_is_exact_and_leaves_nothing_live() {
    let doc = json_doc::document(2_000_000);
    reset_heap_profile();
    start_thread_sampling(1);
    let (value, stats) = allocscope::measure(|| serde_json::from_str::<serde_json::Value>(&doc).unwrap());
    // Read with sampling off (reading allocates), free with it on again
    // (frees are matched on sampling threads).
    stop_thread_sampling();
    let parsed = heap_profile();
    start_thread_sampling(1);
    drop(value);
    stop_thread_sampling();
    let dropped = heap_profile();

    assert!(stats.allocs > 100_000, "a real workload: {stats}");
    assert_eq!(parsed.dropped_samples, 0);
    assert_eq!(parsed.total_allocs(), stats.allocs as f64, "every allocation sampled, once");
    assert_eq!(parsed.total_bytes(), stats.bytes_allocated as f64);
    assert!(parsed.held_is_complete(), "{} untracked", parsed.untracked_held_samples);
    assert_eq!(parsed.held_bytes(), stats.net_bytes() as f64, "the held figure is the bytes not freed");
    assert_eq!(dropped.held_bytes(), 0.0, "nothing held once the value is dropped");
}

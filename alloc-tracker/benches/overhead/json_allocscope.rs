//! Heap profiling a real workload: serde_json parses a generated document
//! of `MB` megabytes into a `Value`, then drops it, under allocscope at the
//! given sampling rate (`0`: counting only, no sampling; `1`: every
//! allocation). Prints the wall time and what the profile found.
//!
//! Usage: `overhead_json_allocscope MB RATE`; `scripts/json-profile.sh`
//! runs it beside `overhead_json_dhat`.

#[path = "json_doc.rs"]
mod json_doc;

use std::time::Instant;

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> = allocscope::CountingAlloc::new(allocscope::Jemalloc);

fn main() {
    let args: Vec<f64> = std::env::args().skip(1).map(|a| a.parse().expect("a number")).collect();
    let (mb, rate) = (args.first().copied().unwrap_or(5.2), args.get(1).copied().unwrap_or(1.0) as u64);
    let doc = json_doc::document((mb * 1e6) as usize);
    let start = Instant::now();
    if rate > 0 {
        allocscope::start_sampling(rate);
    }
    let (value, stats) = allocscope::measure(|| serde_json::from_str::<serde_json::Value>(&doc).expect("valid JSON"));
    // Read with sampling off (reading allocates), free with it on again
    // (frees are matched on sampling threads).
    allocscope::stop_sampling();
    let profile = allocscope::heap_profile();
    if rate > 0 {
        allocscope::start_sampling(rate);
    }
    drop(value);
    allocscope::stop_sampling();
    let elapsed = start.elapsed();
    let after = allocscope::heap_profile();
    println!(
        "allocscope rate {rate}: {:.2} s; {} allocations, {} bytes live after parsing; profile: {:.0} allocations, \
         {:.0} bytes live after parsing (complete: {}), {:.0} live after the drop; {} dropped samples",
        elapsed.as_secs_f64(),
        stats.allocs_total(),
        stats.live_bytes(),
        profile.total_allocs(),
        profile.live_bytes(),
        profile.live_is_complete(),
        after.live_bytes(),
        profile.dropped_samples
    );
}

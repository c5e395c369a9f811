//! Heap profiling a real workload: serde_json parses a generated document
//! of `MB` megabytes into a `Value`, then drops it, under allocscope at the
//! given sampling rate (`0`: counting only, no sampling; `1`: every
//! allocation), sampling the main thread (`thread`) or every thread
//! (`process`, as a service would), `ROUNDS` times. Prints the wall time and
//! what the profile found.
//!
//! Usage: `overhead_json_allocscope MB RATE [thread|process] [ROUNDS=1]`;
//! `scripts/json-profile.sh` runs it beside `overhead_json_dhat`.

#[path = "json_doc.rs"]
mod json_doc;

use std::time::Instant;

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> = allocscope::CountingAlloc::new(allocscope::Jemalloc);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: f64| args.get(i).map_or(default, |a| a.parse().expect("a number"));
    let (mb, rate) = (number(0, 5.2), number(1, 1.0) as u64);
    let process = args.get(2).is_some_and(|m| m == "process");
    let rounds = number(3, 1.0) as u32;
    let doc = json_doc::document((mb * 1e6) as usize);
    use allocscope::profile;
    let (start_thread_sampling, stop_thread_sampling): (fn(u64), fn()) = if process {
        (profile::start_process_sampling, profile::stop_process_sampling)
    } else {
        (profile::start_thread_sampling, profile::stop_thread_sampling)
    };
    let start = Instant::now();
    let (mut value, mut stats, mut profile) = (None, allocscope::AllocStats::default(), None);
    for _ in 0..rounds {
        if rate > 0 {
            start_thread_sampling(rate);
        }
        let (v, s) = allocscope::measure(|| serde_json::from_str::<serde_json::Value>(&doc).expect("valid JSON"));
        // Read with sampling off (reading allocates), free with it on
        // again (frees are matched on sampling threads).
        stop_thread_sampling();
        profile = Some(allocscope::profile::heap_profile());
        if rate > 0 {
            start_thread_sampling(rate);
        }
        drop(value.replace(v));
        stats = s;
    }
    drop(value);
    stop_thread_sampling();
    let elapsed = start.elapsed();
    let profile = profile.expect("at least one round");
    let after = allocscope::profile::heap_profile();
    println!(
        "allocscope rate {rate}: {:.2} s; {} allocations, {} bytes live after parsing; profile: {:.0} allocations, \
         {:.0} bytes live after parsing (complete: {}), {:.0} live after the drop; {} dropped samples",
        elapsed.as_secs_f64(),
        stats.allocs,
        stats.net_bytes(),
        profile.total_allocs(),
        profile.held_bytes(),
        profile.held_is_complete(),
        after.held_bytes(),
        profile.dropped_samples
    );
}

//! The heap sampler's cost per event as its live table fills: alloc+free
//! pairs at rate 1 (every allocation sampled: a stack walk, a stack-table
//! lookup and a live-table insert and removal) with the table empty and
//! with many live sampled blocks, and pairs at the default rate (nearly
//! every block unsampled: its free only checks the live table's occupied
//! bits) with the table empty and full.
//!
//! Usage: `overhead_sampler_table [PAIRS=20000] [RUNS=5]`; prints the
//! median nanoseconds per pair of RUNS runs, and the range.

use std::hint::black_box;
use std::time::Instant;

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> = allocscope::CountingAlloc::new(allocscope::Jemalloc);

#[inline(never)]
fn pair() {
    drop(black_box(Box::new([0u8; 64])));
}

/// Median and range of `runs` timings of `pairs` pairs, in ns per pair.
fn time(pairs: u32, runs: usize) -> (f64, f64, f64) {
    let mut ns: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..pairs {
                pair();
            }
            t.elapsed().as_nanos() as f64 / f64::from(pairs)
        })
        .collect();
    ns.sort_by(f64::total_cmp);
    (ns[runs / 2], ns[0], ns[runs - 1])
}

// Each `Box` is one live sampled block: the point.
#[allow(clippy::vec_box)]
#[inline(never)]
fn keep_live(n: usize) -> Vec<Box<[u8; 32]>> {
    (0..n).map(|_| black_box(Box::new([1u8; 32]))).collect()
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("a number"));
    let pairs = args.next().unwrap_or(20_000) as u32;
    let runs = args.next().unwrap_or(5);
    let report = |what: &str, (median, lo, hi): (f64, f64, f64)| {
        println!("{what}: {median:.0} ns per alloc+free pair (median of {runs} runs of {pairs}; {lo:.0}-{hi:.0})")
    };

    allocscope::profile::start_thread_sampling(1);
    report("rate 1, live table empty", time(pairs, runs));
    let kept = keep_live(70_000);
    report("rate 1, 70,000 live sampled blocks", time(pairs, runs));
    let more = keep_live(allocscope::capacity::MAX_HELD_SAMPLES);
    allocscope::profile::stop_thread_sampling();
    let profile = allocscope::profile::heap_profile();
    println!(
        "  ({} samples so far not followed: the live table is full; live figures flagged incomplete: {})",
        profile.untracked_held_samples,
        !profile.held_is_complete()
    );
    allocscope::profile::start_thread_sampling(1);
    report(
        &format!("rate 1, {} live sampled blocks (table full)", 70_000 + allocscope::capacity::MAX_HELD_SAMPLES),
        time(pairs, runs),
    );
    allocscope::profile::start_thread_sampling(allocscope::profile::DEFAULT_SAMPLE_RATE);
    report("default rate, live table full", time(pairs * 50, runs));
    drop((kept, more));
    allocscope::profile::reset_heap_profile();
    report("default rate, live table empty", time(pairs * 50, runs));
    allocscope::profile::stop_thread_sampling();
}

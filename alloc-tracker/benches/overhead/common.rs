//! The loop shared by every overhead program: one program per global
//! allocator, since a global allocator is fixed at build time.
//!
//! Usage: `PROGRAM pairs N [--scoped | --grouped]` runs N `Box<[u8; 64]>`
//! allocate+free pairs on the main thread (for instruction counts under
//! cachegrind); `PROGRAM threads N [...]` runs N pairs on each of 2 threads
//! at once and prints the wall time in nanoseconds. `--scoped`
//! (allocscope programs only) runs the loop inside `allocscope::measure`
//! and an `allocscope::op` guard; `--grouped` (allocscope programs only)
//! runs it in one `allocscope::Group` that both threads enter.
//! `scripts/overhead.sh` drives them all.

use std::hint::black_box;
use std::time::Instant;

/// `n` allocate+free pairs of a `Box<[u8; 64]>`. The box is allocated
/// uninitialised and then written, so the compiler does not hold the 64-byte
/// value in registers or on the stack across the allocator call: the loop
/// costs the same around every allocator.
#[inline(never)]
fn pairs(n: u64) {
    for i in 0..n {
        let mut b = Box::<[u8; 64]>::new_uninit();
        b.write([i as u8; 64]);
        drop(black_box(b));
    }
}

/// The loop inside a `measure` scope (peak tracking on) and an `op` guard:
/// the `--scoped` wrapper of the allocscope programs. (The other programs
/// include this file too but never call it.)
#[allow(dead_code)]
pub fn allocscope_scope(body: &dyn Fn()) {
    let _op = allocscope::op("overhead");
    let ((), stats) = allocscope::measure(body);
    eprintln!("{stats}");
}

/// The loop in one group shared by every thread that runs it: the
/// `--grouped` wrapper of the allocscope programs.
#[allow(dead_code)]
pub fn allocscope_group(body: &dyn Fn()) {
    static GROUP: std::sync::OnceLock<allocscope::Group> = std::sync::OnceLock::new();
    let group = GROUP.get_or_init(|| allocscope::Group::new("overhead"));
    group.run(body);
    eprintln!("{}", group.stats());
}

/// The loop with allocscope's heap profiler sampling on its thread, at
/// the rate in `OVERHEAD_SAMPLE_RATE` (default: Go's 512 KiB; 1: exact):
/// the `--scoped` wrapper of the sampling program.
#[allow(dead_code)]
pub fn allocscope_sampled(body: &dyn Fn()) {
    let rate = std::env::var("OVERHEAD_SAMPLE_RATE").ok().and_then(|r| r.parse().ok());
    allocscope::start_sampling(rate.unwrap_or(allocscope::DEFAULT_SAMPLE_RATE));
    body();
    allocscope::stop_sampling();
}

/// What wraps the loop on each thread that runs it.
pub type Wrapper = fn(&dyn Fn());

/// Runs the program; `wrappers` pairs a flag (`--scoped`, `--grouped`)
/// with the wrapper it selects.
pub fn run(wrappers: &[(&str, Wrapper)]) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: PROGRAM (pairs|threads) N [--scoped | --grouped]";
    let (mode, n) = match (args.first(), args.get(1).and_then(|n| n.parse::<u64>().ok())) {
        (Some(mode), Some(n)) => (mode.clone(), n),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let wrap: Wrapper = match args.get(2) {
        None => |body| body(),
        Some(flag) => match wrappers.iter().find(|(f, _)| f == flag) {
            Some((_, wrap)) => *wrap,
            None => {
                eprintln!("{flag} is not an option of this program; {usage}");
                std::process::exit(2);
            }
        },
    };
    match mode.as_str() {
        "pairs" => wrap(&|| pairs(n)),
        "threads" => {
            let start = Instant::now();
            let workers: Vec<_> = (0..2).map(|_| std::thread::spawn(move || wrap(&|| pairs(n)))).collect();
            for w in workers {
                w.join().unwrap();
            }
            println!("{}", start.elapsed().as_nanos());
        }
        other => {
            eprintln!("unknown mode {other:?}; {usage}");
            std::process::exit(2);
        }
    }
}

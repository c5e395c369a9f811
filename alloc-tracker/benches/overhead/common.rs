//! The loop shared by every overhead program: one program per global
//! allocator, since a global allocator is fixed at build time.
//!
//! Each program is a `cargo bench` target (`harness = false`):
//!
//! - `cargo bench -p allocscope --bench overhead_PROGRAM` counts the
//!   instructions of N and 2N `Box<[u8; 64]>` allocate+free pairs on one
//!   thread, under each of the program's wrappers, with gungraun (Callgrind:
//!   only the benchmark function's instructions; the pairs' cost is the
//!   difference over N, so that one-time costs cancel). It needs valgrind
//!   and gungraun's runner (`scripts/overhead.sh` installs the runner under
//!   `target/gungraun`); without them it says so and skips.
//! - `PROGRAM pairs N [FLAG]` runs N pairs on the main thread;
//!   `PROGRAM threads N [FLAG]` runs N pairs on each of 2 threads at once
//!   and prints the wall time in nanoseconds.
//!
//! Flags (allocscope programs only): `--scoped` runs the loop inside
//! `allocscope::measure` and an `allocscope::op` guard; `--grouped` in one
//! `allocscope::Group` that both threads enter; `--every-thread` with
//! process-wide sampling on at Go's rate; in the sampling program
//! `--scoped` samples the thread at `OVERHEAD_SAMPLE_RATE` (default Go's
//! rate) and `--exact` at rate 1. `scripts/overhead.sh` drives them all.

use std::hint::black_box;
use std::time::Instant;

/// `n` allocate+free pairs of a `Box<[u8; 64]>`. The box is allocated
/// uninitialised and then written, so the compiler does not hold the 64-byte
/// value in registers or on the stack across the allocator call: the loop
/// costs the same around every allocator.
#[inline(never)]
pub fn pairs(n: u64) {
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
    allocscope::profile::start_thread_sampling(rate.unwrap_or(allocscope::profile::DEFAULT_SAMPLE_RATE));
    body();
    allocscope::profile::stop_thread_sampling();
}

/// The loop with every thread sampled at Go's rate from the start, as a
/// service does with `ALLOCSCOPE_SAMPLE_RATE` (the `--every-thread` wrapper).
#[allow(dead_code)]
pub fn allocscope_every_thread(body: &dyn Fn()) {
    allocscope::profile::start_process_sampling(allocscope::profile::DEFAULT_SAMPLE_RATE);
    body();
    allocscope::profile::stop_process_sampling();
}

/// The loop sampled at rate 1 (every allocation): the sampling program's
/// `--exact` wrapper.
#[allow(dead_code)]
pub fn allocscope_exact(body: &dyn Fn()) {
    allocscope::profile::start_thread_sampling(1);
    body();
    allocscope::profile::stop_thread_sampling();
}

/// What wraps the loop on each thread that runs it.
pub type Wrapper = fn(&dyn Fn());

/// Pairs of the shorter instruction-count run (the longer one runs twice
/// as many).
pub const IR_PAIRS: u64 = 100_000;

/// The loop of `k * IR_PAIRS` pairs under the wrapper `flag` selects (none
/// for `""`): what the instruction counts measure.
#[allow(dead_code)]
pub fn wrapped_pairs(wrappers: &[(&str, Wrapper)], flag: &str, k: u64) {
    let n = k * IR_PAIRS;
    match wrappers.iter().find(|(f, _)| *f == flag) {
        Some((_, wrap)) => wrap(&|| pairs(n)),
        None => pairs(n),
    }
}

/// The instruction-count benchmarks of a program: `id = ("FLAG", k)` runs
/// `k * IR_PAIRS` pairs under the wrapper of `FLAG` (`""`: none), in
/// gungraun's Callgrind mode. Expands to a module `ir` whose `run` is
/// gungraun's `main`; the program's crate root has `WRAPPERS`.
macro_rules! instruction_counts {
    ($($id:ident = ($flag:literal, $k:literal)),+ $(,)?) => {
        mod ir {
            use gungraun::{library_benchmark, library_benchmark_group, main, Callgrind, LibraryBenchmarkConfig};

            #[library_benchmark]
            $(#[bench::$id($flag, $k)])+
            fn pairs(flag: &str, k: u64) {
                crate::common::wrapped_pairs(crate::WRAPPERS, flag, k);
            }

            library_benchmark_group!(name = overhead; benchmarks = pairs);
            main!(
                config = LibraryBenchmarkConfig::default().tool(Callgrind::with_args(["--cache-sim=no"]));
                library_benchmark_groups = overhead
            );

            pub fn run() {
                main();
            }
        }
    };
}
pub(crate) use instruction_counts;

/// Whether gungraun can count instructions here: valgrind and gungraun's
/// runner on the `PATH`, or the runner `scripts/overhead.sh` installs under
/// `target/gungraun/bin` (put on the `PATH` here). Says what is missing.
fn gungraun_ready() -> Result<(), String> {
    let on_path =
        |exe: &str| std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(exe).is_file()));
    if !on_path("valgrind") {
        return Err("valgrind is not installed (apt-get install valgrind)".into());
    }
    if !on_path("gungraun-runner") {
        let local = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/gungraun/bin");
        if !local.join("gungraun-runner").is_file() {
            return Err(format!(
                "gungraun's runner is not installed: cargo install --locked --version {GUNGRAUN} --root target/gungraun \
                 gungraun-runner (scripts/overhead.sh does it)"
            ));
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let joined = std::env::join_paths(std::iter::once(local).chain(std::env::split_paths(&path)))
            .map_err(|e| e.to_string())?;
        std::env::set_var("PATH", joined);
    }
    Ok(())
}

/// The gungraun version of the dev-dependency: its runner must match.
const GUNGRAUN: &str = "0.20.0";

/// Runs the program; `wrappers` pairs a flag (`--scoped`, `--grouped`, ...)
/// with the wrapper it selects, and `instructions` is the program's
/// gungraun `main` (see the module docs).
pub fn run(wrappers: &[(&str, Wrapper)], instructions: fn()) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--gungraun-run") {
        // gungraun's runner calling the program back under valgrind.
        instructions();
        return;
    }
    if !matches!(args.first().map(String::as_str), Some("pairs" | "threads")) {
        // `cargo bench`.
        match gungraun_ready() {
            Ok(()) => instructions(),
            Err(why) => eprintln!("instruction counts skipped: {why}"),
        }
        return;
    }
    let usage = "usage: PROGRAM (pairs|threads) N [FLAG]";
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

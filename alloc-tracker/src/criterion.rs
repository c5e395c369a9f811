//! Allocation figures in [criterion](https://docs.rs/criterion/0.8)
//! benchmarks (feature `criterion`, for criterion 0.8).
//!
//! Two ways in:
//!
//! - [`bench_function`] benchmarks a routine with criterion, as
//!   `Criterion::bench_function` does, and prints one line in Go's
//!   `-benchmem` format beside criterion's estimate: iterations, `ns/op`,
//!   `B/op` and `allocs/op`, counted over the very iterations criterion
//!   timed. [`bench_custom`] does the same for a routine that times itself
//!   (criterion's `iter_custom`: work spread over threads).
//! - [`config`]`(`[`Allocs`]`::new())` (or [`Bytes`]) is a `Criterion`
//!   whose [`Measurement`] is allocations (or bytes) per iteration instead
//!   of time: criterion's statistics, baselines and change detection, with
//!   its plots off (over exact counts they panic). Allocation
//!   counts are exact, so the "distribution" of a deterministic routine is
//!   one value; criterion reports it with a zero-width interval. Criterion
//!   refuses to analyse a benchmark whose samples read zero (it prints
//!   "took zero time per iteration" and skips it): for a routine that must
//!   not allocate, read [`bench_function`]'s line (`0 allocs/op`) or hold
//!   it to [`assert_no_alloc`](crate::assert_no_alloc) in a test. Give the
//!   allocation benchmarks ids of their own (a group, say): criterion
//!   compares a benchmark with its last run under the same id, whatever it
//!   measured then.
//!
//! Both count every thread of the process by default, as Go's `-benchmem`
//! does (a routine that uses a thread pool is counted whole);
//! [`Allocs::this_thread`] and [`Bytes::this_thread`] count the benchmark's
//! own thread only.
//!
//! # Examples
//!
//! In `benches/parse.rs`, with `harness = false`:
//!
//! ```no_run
//! use allocscope::criterion::{bench_function, Allocs, Counted};
//! use criterion::{criterion_group, criterion_main, Criterion};
//!
//! #[global_allocator]
//! static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
//!     allocscope::CountingAlloc::new(std::alloc::System);
//!
//! fn parse(c: &mut Criterion) {
//!     // criterion's time estimate, then
//!     // `BenchmarkParse_words   1234567   81.2 ns/op   48 B/op   2 allocs/op`
//!     bench_function(c, "parse_words", || "a few words".split(' ').map(String::from).count());
//! }
//!
//! fn parse_allocs(c: &mut Criterion<Counted<Allocs>>) {
//!     // criterion's analysis of allocations per iteration: `2.0000 allocs`
//!     let mut group = c.benchmark_group("allocs");
//!     group.bench_function("parse_words", |b| b.iter(|| "a b".split(' ').map(String::from).count()));
//! }
//!
//! criterion_group!(time, parse);
//! criterion_group! {
//!     name = allocs;
//!     // criterion's plots are off: over exact counts they panic (see [`config`]).
//!     config = allocscope::criterion::config(Allocs::new());
//!     targets = parse_allocs
//! }
//! criterion_main!(time, allocs);
//! ```

use std::fmt;
use std::hint::black_box;
use std::time::{Duration, Instant};

use ::criterion::measurement::{Measurement, ValueFormatter};
use ::criterion::{Criterion, Throughput};

use crate::scope::{process_stats, thread_stats};
use crate::stats::AllocStats;

/// The `Criterion` for an allocation benchmark group: it measures
/// `quantity` ([`Allocs`] or [`Bytes`]) per iteration instead of time,
/// with criterion's plots off. This is the one way to build the
/// measurement ([`Counted`]); use it as the `config` of the
/// `criterion_group!` of allocation benchmarks.
///
/// Why plots are off, and cannot be forgotten: exact counts have no
/// variance, and criterion's plots (on with its default features) estimate
/// a density whose bandwidth comes from the standard deviation. With none,
/// criterion 0.8 panics (`kde.rs: index out of bounds`) on the second run,
/// when it plots the comparison with the first. So [`Allocs`] and
/// [`Bytes`] are not measurements themselves, and criterion's own spelling,
/// `Criterion::default().with_measurement(Allocs::new())`, does not
/// compile. Without plots, criterion's text report, statistics, saved
/// baselines and change detection all work, and no variance is faked.
/// (Turning plots back on, with `.with_plots()` or criterion's
/// `--plotting-backend` flag, brings the panic back.)
///
/// # Panics
///
/// If [`CountingAlloc`](crate::CountingAlloc) is not the global allocator
/// (every sample would read zero).
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// use allocscope::criterion::{config, Allocs, Counted};
///
/// fn words(c: &mut criterion::Criterion<Counted<Allocs>>) {
///     c.bench_function("words", |b| b.iter(|| "a b c".split(' ').map(String::from).count()));
/// }
/// criterion::criterion_group! {
///     name = allocs;
///     config = config(Allocs::new());
///     targets = words
/// }
/// # let _ = allocs;
/// ```
#[track_caller]
pub fn config<Q: Quantity>(quantity: Q) -> Criterion<Counted<Q>> {
    crate::install::require_installed("allocscope::criterion::config");
    Criterion::default().with_measurement(Counted(quantity)).without_plots()
}

mod sealed {
    use super::{process_stats, thread_stats, AllocStats};

    /// Which threads a measurement counts.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Threads {
        Process,
        ThisThread,
    }

    impl Threads {
        #[track_caller]
        pub(super) fn read(self) -> AllocStats {
            crate::install::require_installed("allocscope::criterion");
            match self {
                Threads::Process => process_stats(),
                Threads::ThisThread => thread_stats(),
            }
        }
    }

    /// What a quantity needs, out of the public API's reach.
    pub trait Sealed {
        /// The unit criterion prints (`allocs`, `B`).
        const UNIT: &'static str;
        /// This quantity of a difference of counters.
        fn of(&self, stats: AllocStats) -> u64;
        /// Which threads are counted.
        fn threads(&self) -> Threads;
    }
}

use sealed::{Sealed, Threads};

/// What a [`Counted`] measurement counts per iteration: [`Allocs`] or
/// [`Bytes`] (sealed: implemented by these two only).
///
/// # Examples
///
/// ```
/// use allocscope::criterion::{Allocs, Counted, Quantity};
///
/// // One benchmark routine for either quantity.
/// fn words<Q: Quantity>(c: &mut criterion::Criterion<Counted<Q>>) {
///     c.bench_function("words", |b| b.iter(|| "a b".split(' ').map(String::from).count()));
/// }
/// # let _ = words::<Allocs>;
/// ```
pub trait Quantity: Sealed + Copy + fmt::Debug + 'static {}

impl Quantity for Allocs {}
impl Quantity for Bytes {}

/// Allocations per iteration, in Go's sense ([`AllocStats::allocs`]:
/// reallocations included): the quantity to hand to [`config`].
///
/// Not a criterion `Measurement` itself, so that the combination that
/// panics on the second run (criterion's plots over exact counts, see
/// [`config`]) cannot be built:
///
/// ```compile_fail,E0277
/// use allocscope::criterion::Allocs;
/// // error[E0277]: the trait bound `Allocs: Measurement` is not satisfied
/// let c = criterion::Criterion::default().with_measurement(Allocs::new());
/// ```
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// use allocscope::criterion::{config, Allocs};
///
/// let c = config(Allocs::this_thread());
/// # drop(c);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Allocs(Threads);

impl Allocs {
    /// Counts every thread of the process, as Go's `-benchmem` does.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(allocscope::criterion::Allocs::new(), allocscope::criterion::Allocs::default());
    /// ```
    pub const fn new() -> Allocs {
        Allocs(Threads::Process)
    }

    /// Counts the benchmark's own thread only: other threads' allocations
    /// (a background thread of the program under test) never show.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_ne!(allocscope::criterion::Allocs::this_thread(), allocscope::criterion::Allocs::new());
    /// ```
    pub const fn this_thread() -> Allocs {
        Allocs(Threads::ThisThread)
    }
}

impl Default for Allocs {
    fn default() -> Allocs {
        Allocs::new()
    }
}

impl Sealed for Allocs {
    const UNIT: &'static str = "allocs";

    fn of(&self, stats: AllocStats) -> u64 {
        stats.allocs
    }

    fn threads(&self) -> Threads {
        self.0
    }
}

/// Bytes allocated per iteration (requested sizes; a reallocation counts
/// its full new size, as [`AllocStats::bytes_allocated`]): the quantity to
/// hand to [`config`]. Not a `Measurement` itself, as [`Allocs`].
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// use allocscope::criterion::{config, Bytes, Counted};
///
/// let c: criterion::Criterion<Counted<Bytes>> = config(Bytes::new());
/// # drop(c);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Bytes(Threads);

impl Bytes {
    /// Counts every thread of the process, as Go's `-benchmem` does.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(allocscope::criterion::Bytes::new(), allocscope::criterion::Bytes::default());
    /// ```
    pub const fn new() -> Bytes {
        Bytes(Threads::Process)
    }

    /// Counts the benchmark's own thread only.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_ne!(allocscope::criterion::Bytes::this_thread(), allocscope::criterion::Bytes::new());
    /// ```
    pub const fn this_thread() -> Bytes {
        Bytes(Threads::ThisThread)
    }
}

impl Default for Bytes {
    fn default() -> Bytes {
        Bytes::new()
    }
}

impl Sealed for Bytes {
    const UNIT: &'static str = "B";

    fn of(&self, stats: AllocStats) -> u64 {
        stats.bytes_allocated
    }

    fn threads(&self) -> Threads {
        self.0
    }
}

/// The criterion [`Measurement`] of a [`Quantity`] per iteration, built by
/// [`config`] only (it has no public constructor): the `M` of the
/// `Criterion<M>` an allocation benchmark receives.
///
/// # Panics
///
/// When criterion starts a measurement and
/// [`CountingAlloc`](crate::CountingAlloc) is not the global allocator (the
/// figures would all read zero).
///
/// # Examples
///
/// ```
/// use allocscope::criterion::{Allocs, Counted};
/// use criterion::Criterion;
///
/// fn allocs_per_iteration(c: &mut Criterion<Counted<Allocs>>) {
///     c.bench_function("two boxes", |b| b.iter(|| (Box::new(1u8), Box::new(2u8))));
/// }
/// # let _ = allocs_per_iteration;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Counted<Q>(Q);

impl<Q: Quantity> Measurement for Counted<Q> {
    type Intermediate = AllocStats;
    type Value = u64;

    fn start(&self) -> AllocStats {
        self.0.threads().read()
    }

    fn end(&self, start: AllocStats) -> u64 {
        self.0.of(self.0.threads().read() - start)
    }

    fn add(&self, v1: &u64, v2: &u64) -> u64 {
        v1 + v2
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &Count { unit: Q::UNIT }
    }
}

/// Formats counts per iteration, and per unit of throughput when one is
/// set (`allocs/elem`, `B/B`): a count has no "per second".
struct Count {
    unit: &'static str,
}

impl ValueFormatter for Count {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        self.unit
    }

    fn scale_throughputs(&self, _typical: f64, throughput: &Throughput, values: &mut [f64]) -> &'static str {
        let bytes = self.unit == "B";
        let (per, unit) = match *throughput {
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => {
                (n, if bytes { "B/elem" } else { "allocs/elem" })
            }
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (n, if bytes { "B/B" } else { "allocs/B" }),
            Throughput::Bits(n) => (n, if bytes { "B/bit" } else { "allocs/bit" }),
        };
        for v in values {
            *v /= per.max(1) as f64;
        }
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        self.unit
    }
}

/// What [`bench_function`] counted over the iterations criterion timed:
/// one benchmark line in Go's format.
///
/// Its `Display` is the line, `benchstat`-readable:
/// `BenchmarkParse_words\t 1234567\t      81.2 ns/op\t      48 B/op\t       2 allocs/op`
/// (the benchmark's id after `Benchmark`, its first letter capitalised and
/// its spaces made `_`, as Go names benchmarks).
/// `B/op` and `allocs/op` are exact when every iteration allocates alike;
/// otherwise they are means, printed with the digits needed
/// (`0.25 allocs/op`) where Go would round down to an integer.
///
/// # Examples
///
/// ```
/// let line = allocscope::criterion::GoLine {
///     name: "parse words".into(),
///     iterations: 1000,
///     ns_per_op: 81.25,
///     bytes_per_op: 48.0,
///     allocs_per_op: 2.0,
/// };
/// assert_eq!(line.to_string(), "BenchmarkParse_words\t    1000\t      81.2 ns/op\t      48 B/op\t       2 allocs/op");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GoLine {
    /// The benchmark's id, as given to [`bench_function`].
    pub name: String,
    /// Iterations counted: every iteration criterion ran (warm-up included)
    /// but its first, where one-time set-up happens.
    pub iterations: u64,
    /// Mean wall time per iteration over those iterations, in nanoseconds
    /// (criterion's own estimate, printed above the line, is the one to
    /// quote; this one is for the line's completeness).
    pub ns_per_op: f64,
    /// Bytes allocated per iteration ([`AllocStats::bytes_allocated`]).
    pub bytes_per_op: f64,
    /// Allocations per iteration, reallocations included
    /// ([`AllocStats::allocs`]).
    pub allocs_per_op: f64,
}

impl fmt::Display for GoLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut name: String = self.name.chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect();
        if let Some(first) = name.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        write!(
            f,
            "Benchmark{name}\t{:>8}\t{:>10} ns/op\t{:>8} B/op\t{:>8} allocs/op",
            self.iterations,
            go_ns(self.ns_per_op),
            per_op(self.bytes_per_op),
            per_op(self.allocs_per_op)
        )
    }
}

/// Go's `ns/op`: whole nanoseconds from 100 on, else a few decimals.
fn go_ns(ns: f64) -> String {
    if ns >= 100.0 {
        format!("{ns:.0}")
    } else if ns >= 10.0 {
        format!("{ns:.1}")
    } else {
        format!("{ns:.2}")
    }
}

/// An exact per-op count as an integer; a mean with three significant
/// figures (in e-notation below 0.001, which `benchstat` reads too).
fn per_op(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v < 0.001 {
        format!("{v:.2e}")
    } else {
        let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
        format!("{v:.digits$}")
    }
}

/// Totals over the iterations criterion ran, from its second call on.
#[derive(Default)]
struct Tally {
    calls: u64,
    iterations: u64,
    elapsed: Duration,
    counted: Option<AllocStats>,
}

impl Tally {
    fn run<O>(&mut self, iters: u64, routine: &mut impl FnMut() -> O) -> Duration {
        self.custom(iters, &mut |iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(routine());
            }
            start.elapsed()
        })
    }

    fn custom(&mut self, iters: u64, routine: &mut impl FnMut(u64) -> Duration) -> Duration {
        let before = Threads::Process.read();
        let elapsed = routine(iters);
        let counted = Threads::Process.read() - before;
        self.calls += 1;
        // Criterion's first call runs one iteration, where one-time set-up
        // (a buffer's first growth, a lazy static) happens: left out, as Go
        // leaves out its trial runs.
        if self.calls > 1 {
            self.iterations += iters;
            self.elapsed += elapsed;
            self.counted = Some(match self.counted {
                Some(sum) => sum + counted,
                None => counted,
            });
        }
        elapsed
    }

    fn line(&self, id: &str) -> Option<GoLine> {
        let counted = self.counted?;
        let n = self.iterations.max(1) as f64;
        Some(GoLine {
            name: id.to_owned(),
            iterations: self.iterations,
            ns_per_op: self.elapsed.as_nanos() as f64 / n,
            bytes_per_op: counted.bytes_allocated as f64 / n,
            allocs_per_op: counted.allocs as f64 / n,
        })
    }
}

/// Benchmarks `routine` as `c.bench_function(id, |b| b.iter(routine))`
/// would, and prints a Go `-benchmem` line for it on the next line of
/// criterion's report (see [`GoLine`]); returns the line, or `None` when
/// criterion did not run the benchmark (filtered out on its command line,
/// or listed only).
///
/// The allocations are counted on every thread of the process over the
/// iterations criterion timed (warm-up included) but its very first one,
/// where one-time set-up happens (a buffer's first growth, a lazy static),
/// as Go leaves its trial runs out; the process counters are read twice
/// per batch of iterations, outside the timed loop.
///
/// # Panics
///
/// If [`CountingAlloc`](crate::CountingAlloc) is not the global allocator.
///
/// # Examples
///
/// ```no_run
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// use criterion::Criterion;
///
/// let mut c = Criterion::default();
/// let line = allocscope::criterion::bench_function(&mut c, "two boxes", || (Box::new(1u64), Box::new(2u64)));
/// assert_eq!(line.unwrap().allocs_per_op, 2.0);
/// ```
#[track_caller]
pub fn bench_function<O>(c: &mut Criterion, id: &str, mut routine: impl FnMut() -> O) -> Option<GoLine> {
    crate::install::require_installed("allocscope::criterion::bench_function");
    let mut tally = Tally::default();
    c.bench_function(id, |b| b.iter_custom(|iters| tally.run(iters, &mut routine)));
    let line = tally.line(id)?;
    println!("{line}");
    Some(line)
}

/// [`bench_function`] for a routine that times itself, as criterion's
/// `iter_custom`: `routine(iters)` runs `iters` iterations and returns the
/// time they took (a producer and a consumer thread, say). The line's
/// `ns/op` is the routine's time; its allocations are everything the
/// process allocated during each call, so set-up inside the routine (a
/// thread spawned per call) counts: amortised over `iters` iterations.
///
/// # Panics
///
/// If [`CountingAlloc`](crate::CountingAlloc) is not the global allocator.
///
/// # Examples
///
/// ```no_run
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// use std::time::Instant;
///
/// let mut c = criterion::Criterion::default();
/// allocscope::criterion::bench_custom(&mut c, "sum on a thread", |iters| {
///     let start = Instant::now();
///     std::thread::spawn(move || (0..iters).map(std::hint::black_box).sum::<u64>()).join().unwrap();
///     start.elapsed()
/// });
/// ```
#[track_caller]
pub fn bench_custom(c: &mut Criterion, id: &str, mut routine: impl FnMut(u64) -> Duration) -> Option<GoLine> {
    crate::install::require_installed("allocscope::criterion::bench_custom");
    let mut tally = Tally::default();
    c.bench_function(id, |b| b.iter_custom(|iters| tally.custom(iters, &mut routine)));
    let line = tally.line(id)?;
    println!("{line}");
    Some(line)
}

#[cfg(test)]
mod tests {
    use std::hint::black_box;

    use super::*;

    /// This thread's counts only: the library's other unit tests run
    /// beside this one. (The process-wide measurement is held to exact
    /// figures by `tests/criterion.rs`, alone in its binary.)
    #[test]
    fn measurements_count_exactly_and_name_their_unit() {
        let m = Counted(Allocs::this_thread());
        let start = m.start();
        black_box((Box::new(1u8), vec![0u8; 100], String::from("abc")));
        assert_eq!(m.end(start), 3);
        let m = Counted(Bytes::this_thread());
        let start = m.start();
        black_box((Box::new(1u8), vec![0u8; 100]));
        assert_eq!(m.end(start), 101);
        assert_eq!(Counted(Allocs::new()).formatter().format_value(3.0), "3.0000 allocs");
        let per_elem = Counted(Bytes::new()).formatter().format_throughput(&Throughput::Elements(4), 64.0);
        assert_eq!(per_elem, "16.000 B/elem");
    }
}

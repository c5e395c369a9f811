//! Measurement windows: [`Scope`] guards and the [`measure`] /
//! [`measure_process`] closures built on them, plus cumulative snapshots.
//!
//! A thread scope is the difference of the calling thread's counters between
//! its start and its end, so it sees exactly what that thread did and
//! nothing of other threads (other tests included). While at least one
//! scope is open on a thread, that thread's `alloc` and `realloc` also keep
//! a high-water mark of live bytes, from which each scope derives its
//! `peak_bytes`; nested scopes save and restore the mark, so each one gets
//! its own peak.
//!
//! # Design for scopes that follow work across threads
//!
//! A scope stores only its starting counters and a saved high-water mark:
//! plain values, no pointer into the thread. A later version can hand such a
//! start record to a thread the scope spawns (or to the executor polling a
//! task the scope created), open a child scope there, and add the child's
//! difference to the parent when it ends, leaving unrelated threads out.

use std::marker::PhantomData;

use crate::counters::{self, registry, Counts, PEAK};
use crate::install::require_installed;
use crate::jemalloc::rounded_thread_allocated;
use crate::AllocStats;

/// The calling thread's cumulative figures since it started.
///
/// `peak_bytes` holds the thread's live bytes (allocated minus freed,
/// clamped at zero), so that `after - before` gives a lower bound of the
/// peak in between; use [`measure`] or a [`Scope`] for the exact peak.
///
/// # Panics
///
/// If [`CountingAlloc`](crate::CountingAlloc) is not the global allocator:
/// the figures would all read zero.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let before = allocscope::thread_stats();
/// let b = std::hint::black_box(Box::new([0u8; 100]));
/// let grown = allocscope::thread_stats() - before;
/// assert_eq!((grown.allocs, grown.bytes_allocated), (1, 100));
/// # drop(b);
/// ```
#[track_caller]
pub fn thread_stats() -> AllocStats {
    require_installed("allocscope::thread_stats");
    let mut s = AllocStats::from_counts(counters::thread_counts());
    s.rounded_bytes_allocated = rounded_thread_allocated();
    s
}

/// Cumulative figures of every thread of the process, including threads that
/// have exited.
///
/// Exact when the other threads are quiescent; while they run, each thread's
/// figures are read one field at a time.
///
/// # Panics
///
/// If [`CountingAlloc`](crate::CountingAlloc) is not the global allocator.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let before = allocscope::process_stats();
/// std::thread::spawn(|| drop(std::hint::black_box(vec![0u8; 1000]))).join().unwrap();
/// let d = allocscope::process_stats() - before;
/// assert!(d.bytes_allocated >= 1000);
/// ```
#[track_caller]
pub fn process_stats() -> AllocStats {
    require_installed("allocscope::process_stats");
    AllocStats::from_counts(registry::process_counts())
}

/// An open measurement window on the current thread.
///
/// [`measure`] is the closure form. Guards may nest; they must end in the
/// reverse order of their start (the borrow checker enforces it for
/// [`measure`]). A `Scope` stays on its thread (`!Send`).
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// use allocscope::Scope;
///
/// let scope = Scope::start();
/// let a = std::hint::black_box(vec![0u8; 300]);
/// drop(a);
/// let b = std::hint::black_box(vec![0u8; 200]);
/// let stats = scope.finish();
/// assert_eq!(stats.bytes_allocated, 500);
/// assert_eq!(stats.peak_bytes, 300);
/// # drop(b);
/// ```
#[derive(Debug)]
#[must_use = "a scope measures until `finish` is called"]
pub struct Scope {
    start: Counts,
    rounded_start: Option<u64>,
    frame: Option<PeakFrame>,
    // Scopes are thread-bound.
    _not_send: PhantomData<*const ()>,
}

impl Scope {
    /// Starts measuring the current thread.
    ///
    /// # Panics
    ///
    /// If [`CountingAlloc`](crate::CountingAlloc) is not the global
    /// allocator, or the thread is beyond
    /// [`MAX_THREADS`](crate::MAX_THREADS) live threads.
    #[track_caller]
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let scope = allocscope::Scope::start();
    /// let v = std::hint::black_box(vec![0u8; 10]);
    /// assert_eq!(scope.finish().bytes_allocated, 10);
    /// # drop(v);
    /// ```
    pub fn start() -> Scope {
        require_installed("allocscope::Scope");
        let rounded_start = rounded_thread_allocated();
        let start = counters::thread_counts();
        let frame = PeakFrame::start(start);
        Scope { start, rounded_start, frame: Some(frame), _not_send: PhantomData }
    }

    /// The thread's counters when the scope started.
    pub(crate) fn start_counts(&self) -> Counts {
        self.start
    }

    /// The figures so far, without ending the scope. `peak_bytes` is the peak
    /// up to now.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let scope = allocscope::Scope::start();
    /// let a = std::hint::black_box(vec![0u8; 10]);
    /// assert_eq!(scope.current().allocs, 1);
    /// let b = std::hint::black_box(vec![0u8; 20]);
    /// assert_eq!(scope.finish().allocs, 2);
    /// # drop((a, b));
    /// ```
    pub fn current(&self) -> AllocStats {
        let now = counters::thread_counts();
        let mut s = AllocStats::from_counts(now.wrapping_sub(self.start));
        s.peak_bytes = peak_above(counters::high_water(), self.start);
        s.rounded_bytes_allocated = self.rounded_since_start();
        s
    }

    /// Ends the scope and returns what the thread did during it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let scope = allocscope::Scope::start();
    /// drop(std::hint::black_box(Box::new([0u8; 16])));
    /// let s = scope.finish();
    /// assert_eq!((s.allocs, s.deallocs, s.peak_bytes), (1, 1, 16));
    /// ```
    pub fn finish(mut self) -> AllocStats {
        self.end()
    }

    fn rounded_since_start(&self) -> Option<u64> {
        self.rounded_start.zip(rounded_thread_allocated()).map(|(a, b)| b.wrapping_sub(a))
    }

    fn end(&mut self) -> AllocStats {
        let end = counters::thread_counts();
        let rounded = self.rounded_since_start();
        let peak = self.frame.take().map_or(0, |f| f.finish(self.start));
        let mut s = AllocStats::from_counts(end.wrapping_sub(self.start));
        s.peak_bytes = peak;
        s.rounded_bytes_allocated = rounded;
        s
    }
}

/// The thread's peak tracking state, saved by a scope when it starts
/// tracking peak bytes and restored when it ends.
#[derive(Clone, Copy, Debug)]
struct PeakFrame {
    saved_peak_bit: bool,
    saved_high_water: i64,
}

impl PeakFrame {
    /// Starts peak tracking on the current (registered) thread: from now on
    /// the high-water mark follows live bytes, starting from the current
    /// level.
    fn start(start: Counts) -> PeakFrame {
        let frame = PeakFrame {
            saved_peak_bit: counters::mode_bit(PEAK),
            saved_high_water: counters::take_high_water(start.live()),
        };
        counters::set_mode_bit(PEAK, true);
        frame
    }

    /// Ends peak tracking: returns the highest live bytes reached above
    /// `start`, and hands the high-water mark on to the enclosing scope, if
    /// any.
    fn finish(self, start: Counts) -> u64 {
        let high = counters::take_high_water(0);
        counters::take_high_water(high.max(self.saved_high_water));
        counters::set_mode_bit(PEAK, self.saved_peak_bit);
        peak_above(high, start)
    }
}

/// The highest live bytes above `start`'s level, given the high-water mark.
fn peak_above(high_water: i64, start: Counts) -> u64 {
    high_water.wrapping_sub(start.live()).max(0) as u64
}

impl Drop for Scope {
    /// A scope dropped without [`finish`](Scope::finish) (for example while
    /// unwinding) still restores the enclosing scope's peak tracking.
    fn drop(&mut self) {
        if self.frame.is_some() {
            self.end();
        }
    }
}

/// Runs `f` and returns its value with what it allocated on the calling
/// thread.
///
/// Other threads, including other tests that `cargo test` runs in parallel,
/// never leak into the figures. Work that `f` hands to other threads is not
/// counted; use [`measure_process`] for that.
///
/// # Panics
///
/// If [`CountingAlloc`](crate::CountingAlloc) is not the global allocator
/// (the figures would read zero and every budget would pass), and if `f`
/// panics.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let (len, stats) = allocscope::measure(|| format!("{}-{}", "queue", 7).len());
/// assert_eq!(len, 7);
/// assert_eq!(stats.allocs_total(), 1);
/// ```
#[track_caller]
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, AllocStats) {
    let scope = Scope::start();
    let value = f();
    (value, scope.finish())
}

/// Runs `f` and returns its value with what every thread of the process
/// allocated while it ran.
///
/// `peak_bytes` is the net growth clamped at zero (a lower bound of the
/// process-wide peak, which is not tracked because that would need a shared
/// counter on every allocation); `rounded_bytes_allocated` is `None`.
///
/// # Panics
///
/// If [`CountingAlloc`](crate::CountingAlloc) is not the global allocator,
/// and if `f` panics.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let ((), stats) = allocscope::measure_process(|| {
///     std::thread::spawn(|| drop(std::hint::black_box(vec![0u8; 4096]))).join().unwrap();
/// });
/// assert!(stats.bytes_allocated >= 4096);
/// ```
#[track_caller]
pub fn measure_process<T>(f: impl FnOnce() -> T) -> (T, AllocStats) {
    require_installed("allocscope::measure_process");
    let before = registry::process_counts();
    let value = f();
    let after = registry::process_counts();
    (value, AllocStats::from_counts(after.wrapping_sub(before)))
}

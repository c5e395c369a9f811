//! Measurement windows: [`Scope`] guards and the [`measure`] closure built
//! on them, plus cumulative snapshots of a thread and of the process.
//!
//! A thread scope is the difference of the calling thread's counters between
//! its start and its end, so it sees exactly what that thread did and
//! nothing of other threads (other tests included). While at least one
//! scope is open on a thread, that thread's `alloc` and `realloc` also keep
//! a high-water mark of held bytes, from which each scope derives its
//! `peak_bytes` (see [`marks`]): every open scope gets its own peak, nested
//! or not, whatever the order in which they end.
//!
//! A `realloc` that moves its block holds both blocks for a moment inside
//! the allocator; `peak_bytes` counts the new size and not that moment (a
//! reallocation is a new block replacing the old one, as the counters see
//! it).
//!
//! A scope stores only its starting counters and a slot of the thread's
//! peak marks: plain values, no pointer into the thread. Work that spans
//! threads and tasks is a [`Group`](crate::Group)'s, whose windows are
//! scopes of this kind, opened on whichever thread runs the work.

use std::marker::PhantomData;

use crate::counters::{self, registry, Counts};
use crate::install::require_installed;
use crate::jemalloc::rounded_thread_allocated;
use crate::stats::AllocStats;
use crate::stats::Origin;

/// The calling thread's cumulative figures since it started: a snapshot.
///
/// `after - before` of two snapshots of the same thread is what the thread
/// did in between. A snapshot knows its thread: subtracting another
/// thread's snapshot (a task that moved to another worker thread at an
/// `.await`) panics, and [`AllocStats::checked_sub`] returns `None`, rather
/// than a wrapped figure. [`AllocStats::net_bytes`] is the thread's live
/// bytes now (allocated minus freed, negative when it freed what others
/// allocated); `peak_bytes` is that figure clamped at zero, a lower bound of
/// the thread's peak, as the peak of a thread is tracked only inside a
/// scope: use [`measure`] or a [`Scope`] for the exact peak.
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
    s.origin = Origin::Thread(counters::thread_serial());
    s
}

/// Cumulative figures of every thread of the process, including threads that
/// have exited: a snapshot, and the cheap figure for a service to read.
///
/// It sums the counters of every registered thread and of the exited ones:
/// no lock, no allocation, a few nanoseconds per running thread (see
/// `docs/overhead.md`), callable from any thread at any time. Exact when the
/// other threads are quiescent; while they run, each thread's figures are
/// read one field at a time. [`AllocStats::net_bytes`] is the process's
/// held bytes now; `peak_bytes` is the highest process held bytes that any
/// call of `process_stats` has seen so far, a lower bound of the process's
/// peak (tracking the exact peak would cost every allocation a shared
/// atomic): read it regularly, as a metrics endpoint does, to keep the
/// bound close.
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
    use std::sync::atomic::{AtomicI64, Ordering};
    /// The highest process held bytes a reading has seen.
    static PEAK_SEEN: AtomicI64 = AtomicI64::new(0);
    let counts = registry::process_counts();
    let peak = PEAK_SEEN.fetch_max(counts.live(), Ordering::Relaxed).max(counts.live());
    let mut s = AllocStats::from_counts(counts);
    s.peak_bytes = peak.max(0) as u64;
    s.origin = Origin::Process;
    s
}

/// An open measurement window on the current thread.
///
/// [`measure`] is the closure form. Scopes may nest and may end in any
/// order; each reports its own figures and its own peak. At most
/// [`MAX_OPEN_SCOPES`] are open at once on a thread. A `Scope` stays on its
/// thread (`!Send`).
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
    /// This scope's high-water mark in [`marks`], until it ends.
    slot: Option<usize>,
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
    /// [`MAX_THREADS`](crate::capacity::MAX_THREADS) live threads, or already has
    /// [`MAX_OPEN_SCOPES`] scopes open.
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
    #[track_caller]
    pub fn start() -> Scope {
        require_installed("allocscope::Scope");
        let rounded_start = rounded_thread_allocated();
        let start = counters::thread_counts();
        let slot = marks::open(start.live());
        Scope { start, rounded_start, slot: Some(slot), _not_send: PhantomData }
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
        s.peak_bytes = self.slot.map_or(0, |slot| peak_above(marks::peak(slot, now.live()), self.start));
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
        let peak = self.slot.take().map_or(0, |slot| peak_above(marks::close(slot, end.live()), self.start));
        let mut s = AllocStats::from_counts(end.wrapping_sub(self.start));
        s.peak_bytes = peak;
        s.rounded_bytes_allocated = rounded;
        s
    }
}

/// The most scopes open at once on one thread: [`Scope`]s, [`measure`]
/// calls, [`op`](crate::op) guards and [`Budget`](crate::Budget) checks
/// (each of which is a scope).
pub const MAX_OPEN_SCOPES: usize = 64;

/// The high-water marks of the scopes open on this thread, whatever the
/// order in which they start and end.
///
/// The allocator keeps one high-water mark of held bytes per thread (its
/// peak path raises it while the `PEAK` bit is set). At every scope event
/// (a start, a `current`, an end) that mark is folded into each open
/// scope's own mark and restarted from the held bytes of that moment, so
/// each scope sees the highest level reached while it was open, and the
/// allocator path stays one compare. The thread leaves peak tracking when
/// its last scope ends. Folding costs one pass over the open scopes (a
/// 64-bit mask), outside the allocator.
pub(crate) mod marks {
    use std::cell::Cell;

    use super::MAX_OPEN_SCOPES;
    use crate::counters::{self, PEAK};

    struct Marks {
        /// Bit `i` set while slot `i` belongs to an open scope.
        open: Cell<u64>,
        /// Each open scope's highest held bytes so far (absolute).
        peak: [Cell<i64>; MAX_OPEN_SCOPES],
    }

    thread_local! {
        static MARKS: Marks = const { Marks { open: Cell::new(0), peak: [const { Cell::new(0) }; MAX_OPEN_SCOPES] } };
    }

    /// Folds the thread's high-water mark into every open scope's mark and
    /// restarts it from `live_now`.
    fn fold(m: &Marks, live_now: i64) {
        let high = counters::take_high_water(live_now);
        let mut open = m.open.get();
        while open != 0 {
            let i = open.trailing_zeros() as usize;
            m.peak[i].set(m.peak[i].get().max(high));
            open &= open - 1;
        }
    }

    /// Opens a scope at `live_now` held bytes; returns its slot.
    #[track_caller]
    pub(crate) fn open(live_now: i64) -> usize {
        MARKS.with(|m| {
            let open = m.open.get();
            if open == 0 {
                // The mark left from before counts for no scope.
                counters::take_high_water(live_now);
                counters::set_mode_bit(PEAK, true);
            } else {
                fold(m, live_now);
            }
            assert!(
                open != u64::MAX,
                "allocscope: more than {MAX_OPEN_SCOPES} scopes (measure, Scope, op guards, budgets, group windows) open \
                 at once on this thread"
            );
            let slot = (!open).trailing_zeros() as usize;
            m.peak[slot].set(live_now);
            m.open.set(open | 1 << slot);
            slot
        })
    }

    /// The highest held bytes reached so far while `slot`'s scope is open.
    pub(crate) fn peak(slot: usize, live_now: i64) -> i64 {
        MARKS.with(|m| {
            fold(m, live_now);
            m.peak[slot].get()
        })
    }

    /// Closes `slot`'s scope; returns the highest held bytes it saw.
    pub(crate) fn close(slot: usize, live_now: i64) -> i64 {
        MARKS.with(|m| {
            fold(m, live_now);
            let open = m.open.get() & !(1 << slot);
            m.open.set(open);
            if open == 0 {
                counters::set_mode_bit(PEAK, false);
            }
            m.peak[slot].get()
        })
    }
}

/// The highest held bytes above `start`'s level, given the high-water mark.
fn peak_above(high_water: i64, start: Counts) -> u64 {
    high_water.wrapping_sub(start.live()).max(0) as u64
}

impl Drop for Scope {
    /// A scope dropped without [`finish`](Scope::finish) (for example while
    /// unwinding) still restores the enclosing scope's peak tracking.
    fn drop(&mut self) {
        if self.slot.is_some() {
            self.end();
        }
    }
}

/// Runs `f` and returns its value with what it allocated on the calling
/// thread.
///
/// Other threads, including other tests that `cargo test` runs in parallel,
/// never leak into the figures. Work that `f` hands to other threads is not
/// counted: follow it with a [`Group`](crate::Group), or take the
/// difference of two [`process_stats`] snapshots.
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
/// assert_eq!(stats.allocs, 1);
/// ```
#[track_caller]
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, AllocStats) {
    let scope = Scope::start();
    let value = f();
    (value, scope.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::PEAK;
    use std::hint::black_box;

    /// Scopes that end out of order leave the thread's allocations on the
    /// fast path afterwards: peak tracking ends with the last scope.
    #[test]
    fn peak_tracking_ends_with_the_last_scope_whatever_the_order() {
        std::thread::spawn(|| {
            let a = Scope::start();
            let b = Scope::start();
            assert!(counters::mode_bit(PEAK));
            drop(black_box(vec![0u8; 10]));
            let _ = a.finish();
            assert!(counters::mode_bit(PEAK), "b is still open");
            let _ = b.finish();
            assert!(!counters::mode_bit(PEAK), "no scope open: back to the fast path");
            let c = Scope::start();
            drop(c); // ended by Drop, as when unwinding
            assert!(!counters::mode_bit(PEAK));
        })
        .join()
        .unwrap();
    }
}

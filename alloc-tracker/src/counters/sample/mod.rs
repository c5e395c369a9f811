//! The heap sampler's allocator-side lane: the per-thread byte countdown,
//! and the fixed tables of sampled stacks and held sampled blocks. The
//! public API and the profile's writers are in [`crate::profile`].
//!
//! # How
//!
//! A thread that samples (its own [`start`], or every thread at the
//! process-wide rate) has the `SAMPLE` mode bit, which sends its
//! allocations and frees down the sampling lane (threads that do not sample
//! keep the fast path: the feature costs nothing when off). There,
//! sampling is by bytes, as Go's `runtime.MemProfileRate`: each allocation
//! subtracts its size from a countdown kept beside the thread's counters,
//! whose intervals are drawn from an exponential distribution with the rate
//! as mean, so an allocation of `s` bytes is sampled with probability
//! `p = 1 - exp(-s / rate)`. A sample stands for `1 / p` allocations and
//! `s / p` bytes, so the estimates add up to the true totals on average. A
//! rate of 1 samples every allocation: the figures are then exact.
//!
//! A sample records the stack's raw return addresses
//! ([`crate::stack::capture`]) into a fixed static table of stacks, and the
//! block's address into a fixed table of held sampled blocks, so that a
//! free finds its sample and takes it out of the held figures. None of this
//! allocates through the Rust global allocator.
//!
//! # A bounded cost per event
//!
//! Both tables are open-addressing hash tables whose probes are bounded:
//! [`STACK_PROBES`] slots for a stack, [`LIVE_PROBES`] for a live block.
//! A sample that finds no place within its probes is not lost silently:
//! a stack that finds no slot is counted in the dropped samples (its
//! allocation is then missing from the profile), and a block that finds no
//! live slot is counted as untracked (it is in the allocation figures, but
//! never in the held ones, so held figures are flagged incomplete instead
//! of staying high forever). Removed live entries leave tombstones, which
//! later inserts reuse; a lookup looks at most [`LIVE_PROBES`] slots,
//! whatever the tombstones.
//!
//! A free must find out cheaply that its block was not sampled (nearly
//! every block): a 4 KiB bitmap filter over the followed addresses
//! ([`FILTER_BITS`]) answers with one load and a bit test, inline in the
//! free's lane; a set bit sends the free to a 128 KiB bitmap of the table's
//! occupied slots, which gives the few slots to compare.
//!
//! # Limits
//!
//! - At most [`MAX_STACKS`] distinct stacks and [`MAX_HELD_SAMPLES`] held sampled
//!   blocks (and fewer when probe windows fill up first).
//! - A free is matched only on a thread that samples (every thread, with
//!   process-wide sampling).
//! - Stacks deeper than 48 frames are cut at the 48th.

mod leak;
mod live;
mod stacks;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{with_local, ThreadCounters, DETACHED, FRESH, SAMPLE};

pub(crate) use leak::{LeakTrace, Survivors};
#[cfg(test)]
pub(crate) use live::is_followed;
pub(crate) use live::MAX_HELD_SAMPLES;
pub(super) use live::{maybe_followed, on_free, refollow, unfollow_before_realloc, Followed};
pub(crate) use stacks::{Stack, MAX_STACKS};

/// Go's default `MemProfileRate`: one sample per 512 KiB on average
/// (`profile::DEFAULT_SAMPLE_RATE`).
pub(crate) const DEFAULT_SAMPLE_RATE: u64 = 512 * 1024;

/// Samples taken.
static SAMPLES: AtomicU64 = AtomicU64::new(0);
/// The rate last given to [`start`].
static LAST_RATE: AtomicU64 = AtomicU64::new(DEFAULT_SAMPLE_RATE);
/// The smallest and largest rates samples were taken at (`u64::MAX` and 0
/// before the first sample).
static RATE_MIN: AtomicU64 = AtomicU64::new(u64::MAX);
static RATE_MAX: AtomicU64 = AtomicU64::new(0);

/// The process-wide sampling rate: 0 off, else every thread samples at it
/// (unless it chose its own rate with [`start`]).
static PROCESS_RATE: AtomicU64 = AtomicU64::new(0);
/// Bumped at every change of [`PROCESS_RATE`], before the registered
/// threads are poked: a thread whose last applied epoch differs applies it
/// ([`reconcile`]).
static EPOCH: AtomicU64 = AtomicU64::new(0);

struct Sampler {
    /// Whether this thread asked for sampling itself ([`start`]), and at
    /// which rate.
    own: Cell<bool>,
    own_rate: Cell<u64>,
    /// The rate this thread samples at now (the countdown to the next
    /// sample is in the thread's counter block, beside the counters).
    rate: Cell<u64>,
    rng: Cell<u64>,
    /// Set while a sample is being taken, so that anything the unwinder
    /// allocates through us is not sampled in turn.
    busy: Cell<bool>,
    /// While a leak budget traces this thread ([`LeakTrace`]): its tag,
    /// which every allocation's live entry carries (0: no trace).
    leak_tag: Cell<u32>,
    /// Traced allocations that found no place in the tables.
    leak_lost: Cell<u64>,
}

thread_local! {
    static SAMPLER: Sampler = const {
        Sampler {
            own: Cell::new(false),
            own_rate: Cell::new(0),
            rate: Cell::new(0),
            rng: Cell::new(0),
            busy: Cell::new(false),
            leak_tag: Cell::new(0),
            leak_lost: Cell::new(0),
        }
    };
}

impl Sampler {
    /// xorshift64*: a uniform draw in (0, 1].
    fn uniform(&self) -> f64 {
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        ((x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Bytes until the next sample: an exponential draw with the rate as
    /// mean. The lane samples when the countdown goes below zero, so `-1`
    /// at rate 1: every allocation.
    fn next_interval(&self) -> i64 {
        let rate = self.rate.get();
        if rate <= 1 {
            return -1;
        }
        (-self.uniform().ln() * rate as f64) as i64
    }
}

/// Runs `f` with the calling thread's samples paused: what the library
/// allocates to read or write a profile (its vectors, the symbols it
/// resolves) must not change the profile. Counting goes on as usual.
pub(crate) fn paused<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the flag on every exit, a panic's too.
    struct Resume(bool);
    impl Drop for Resume {
        fn drop(&mut self) {
            SAMPLER.with(|s| s.busy.set(self.0));
        }
    }
    let _resume = Resume(SAMPLER.with(|s| s.busy.replace(true)));
    f()
}

/// Starts sampling the current thread, one sample per `rate` bytes on
/// average (the caller checked `rate > 0`), whatever the process-wide rate.
pub(crate) fn start(rate: u64) {
    LAST_RATE.store(rate, Ordering::Relaxed);
    SAMPLER.with(|s| {
        s.own.set(true);
        s.own_rate.set(rate);
    });
    with_local(|l| {
        super::settle(l);
        reconcile(l);
    });
}

/// Stops the current thread's own sampling ([`start`]); it goes on at the
/// process-wide rate if one is set.
pub(crate) fn stop() {
    SAMPLER.with(|s| s.own.set(false));
    with_local(reconcile);
}

/// Samples every thread at `rate` bytes per sample (0: stops): threads
/// registered later from their start, the calling thread at once, and
/// every other running thread at its next call into allocscope that
/// changes its mode (a scope, an `op` guard, a group window, a budget) or
/// takes its cold path. A thread's own [`start`] rate takes precedence.
pub(crate) fn set_process_rate(rate: u64) {
    if rate > 0 {
        LAST_RATE.store(rate, Ordering::Relaxed);
    }
    PROCESS_RATE.store(rate, Ordering::SeqCst);
    EPOCH.fetch_add(1, Ordering::SeqCst);
    with_local(|l| {
        super::settle(l);
    });
}

/// The process-wide rate (0: off).
pub(crate) fn process_sample_rate() -> u64 {
    PROCESS_RATE.load(Ordering::Relaxed)
}

/// The process-wide sampling epoch (see [`EPOCH`]).
#[inline]
pub(super) fn epoch() -> u64 {
    EPOCH.load(Ordering::Relaxed)
}

/// Reads `ALLOCSCOPE_SAMPLE_RATE` (bytes per sample) from the environment,
/// as jemalloc reads `MALLOC_CONF`: called once, by the first thread that
/// registers (in the allocator, so with the C library's `getenv`, which
/// neither allocates nor locks). A value that is not a positive number is
/// ignored.
pub(super) fn read_environment() {
    #[cfg(unix)]
    {
        // SAFETY: a NUL-terminated name; the result is a NUL-terminated
        // string owned by the environment, or null, read at once.
        let value = unsafe { libc::getenv(c"ALLOCSCOPE_SAMPLE_RATE".as_ptr()) };
        if value.is_null() {
            return;
        }
        // SAFETY: non-null, NUL-terminated (above).
        let bytes = unsafe { std::ffi::CStr::from_ptr(value) }.to_bytes();
        let rate = bytes.iter().try_fold(0u64, |acc, &b| {
            b.is_ascii_digit().then(|| acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))).flatten()
        });
        if let Some(rate @ 1..) = rate {
            LAST_RATE.store(rate, Ordering::Relaxed);
            PROCESS_RATE.store(rate, Ordering::SeqCst);
            EPOCH.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Applies the sampling this thread should do now (its own, or the
/// process-wide rate) to its mode.
#[cold]
#[inline(never)]
pub(super) fn reconcile(l: &ThreadCounters) {
    let mode = l.mode.get();
    if mode & FRESH != 0 {
        // Registration applies it.
        return;
    }
    l.sample_epoch.set(EPOCH.load(Ordering::SeqCst));
    let process = PROCESS_RATE.load(Ordering::SeqCst);
    let rate = SAMPLER.with(|s| {
        let rate = if s.own.get() { s.own_rate.get() } else { process };
        if rate != 0 && (rate != s.rate.get() || mode & SAMPLE == 0) {
            s.rate.set(rate);
            // Seed from the thread's sampler address and a process-wide
            // count, so that threads draw different intervals.
            static SEEDS: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
            let seed = SEEDS.fetch_add(0x6A09_E667_F3BC_C909, Ordering::Relaxed) ^ (s as *const Sampler as u64);
            s.rng.set(seed | 1);
            l.until_next.set(s.next_interval());
        }
        rate
    });
    let sampling = rate != 0 && mode & DETACHED == 0;
    l.set_mode(if sampling { mode | SAMPLE } else { mode & !SAMPLE });
}

/// The sampling countdown on the cold path (a sampling thread that is
/// also in a scope or a budget): as the inline lane does.
#[inline(never)]
pub(super) fn tick(l: &ThreadCounters, ptr: *mut u8, size: u64) {
    let left = l.until_next.get().wrapping_sub(size as i64);
    l.until_next.set(left);
    if left < 0 {
        take(l, ptr, size);
    }
}

/// A sample is due: take it and draw the next interval. No allocation
/// through the Rust global allocator.
#[cold]
#[inline(never)]
pub(super) fn take(l: &ThreadCounters, ptr: *mut u8, size: u64) {
    SAMPLER.with(|s| {
        l.until_next.set(s.next_interval());
        if s.busy.get() {
            return;
        }
        s.busy.set(true);
        let tag = s.leak_tag.get();
        if tag != 0 {
            if !leak::trace(ptr as usize, size, tag) {
                s.leak_lost.set(s.leak_lost.get() + 1);
            }
        } else {
            let rate = s.rate.get();
            RATE_MIN.fetch_min(rate, Ordering::Relaxed);
            RATE_MAX.fetch_max(rate, Ordering::Relaxed);
            let p = if rate <= 1 { 1.0 } else { 1.0 - (-(size as f64) / rate as f64).exp() };
            record(ptr as usize, 1.0 / p, size as f64 / p, l.owner.get().serial);
        }
        s.busy.set(false);
    })
}

/// Records a sample of the block at `addr`, allocated in the group with
/// serial `group` (0: none).
fn record(addr: usize, allocs: f64, bytes: f64, group: u64) {
    SAMPLES.fetch_add(1, Ordering::Relaxed);
    let Some(index) = stacks::capture() else { return };
    stacks::add_sample(index, allocs, bytes);
    live::follow_live(addr, Followed { stack: index as u32, tag: 0, allocs: allocs as f32, bytes, group });
}

/// The bytes per sample that estimates from the held samples rest on:
/// the process-wide rate, else the rate the samples were taken at; `None`
/// when nothing samples (no process-wide rate, and no sample taken since
/// the last reset).
pub(crate) fn estimate_rate() -> Option<u64> {
    let process = process_sample_rate();
    if process == 0 && samples() == 0 {
        return None;
    }
    Some(if process != 0 { process } else { sample_rate().max(1) })
}

/// The held samples of the group with serial `group`: the bytes and blocks
/// they stand for, and how many there are.
pub(crate) fn held_of_group(group: u64) -> (f64, f64, u64) {
    live::of_group(group)
}

/// Every stack sampled so far.
pub(crate) fn sampled_stacks() -> impl Iterator<Item = &'static Stack> {
    stacks::sampled()
}

/// Samples taken since the last reset.
pub(crate) fn samples() -> u64 {
    SAMPLES.load(Ordering::Relaxed)
}

/// Samples that found no slot in the stack table.
pub(crate) fn dropped_samples() -> u64 {
    stacks::dropped()
}

/// Samples whose block found no slot in the live table.
pub(crate) fn untracked_held_samples() -> u64 {
    live::untracked()
}

/// The rate every sample so far was taken at; 0 when samples were taken at
/// different rates; the rate last given to [`start`] before any sample.
pub(crate) fn sample_rate() -> u64 {
    match (RATE_MIN.load(Ordering::Relaxed), RATE_MAX.load(Ordering::Relaxed)) {
        (u64::MAX, _) => LAST_RATE.load(Ordering::Relaxed),
        (min, max) if min == max => min,
        _ => 0,
    }
}

/// Clears both tables, the sample, dropped and untracked counts and the
/// rates seen.
pub(crate) fn reset() {
    stacks::reset();
    live::reset();
    SAMPLES.store(0, Ordering::Relaxed);
    RATE_MIN.store(u64::MAX, Ordering::Relaxed);
    RATE_MAX.store(0, Ordering::Relaxed);
}

/// In a child process after `fork`: the other threads are gone, and a slot
/// one of them was writing would stay half written (a stack being written,
/// a live block being inserted) and make a probe spin forever. Such slots
/// are cleared.
#[cfg_attr(not(unix), allow(dead_code))]
pub(super) fn after_fork_in_child() {
    stacks::clear_half_written(MAX_STACKS);
    live::clear_half_written(0..MAX_HELD_SAMPLES);
}

//! A budget's trip recorder: the stack of the first allocation that took a
//! [`Budget`](crate::Budget) over its limit, so that a failing budget names
//! the line that allocated.
//!
//! # How
//!
//! While a budget's closure runs, its thread is in *trip* mode (the `TRIP`
//! bit): the allocator sends that thread's allocations down its cold path,
//! which compares the thread's cumulative counters with the budget's
//! absolute thresholds (start plus limit). The first allocation that
//! crosses one records the raw return addresses of its stack into a fixed
//! thread-local array ([`crate::stack::capture`]): no Rust allocation, once
//! per check. Symbols are resolved only after the closure has returned,
//! when allocating is fine.
//!
//! Per thread, like every budget: it works in ordinary parallel tests.
//! Nested budgets: while an inner budget runs, its limits are the ones
//! watched; the outer budget's thresholds and any site it had already
//! recorded are saved when the inner one starts and restored when it ends
//! (budgets on one thread are closures, so they end in the reverse order
//! of their start).
//!
//! # Budgets over groups
//!
//! A budget over a [`Group`](crate::Group) counts work on several threads:
//! its limits, its usage and its first crossing live in a [`SharedTrip`].
//! A thread watches a shared trip while the innermost group it is in is
//! the budget's group ([`set_shared`], called by the group machinery
//! whenever a thread's innermost group changes, so the state is derived
//! from the thread's open windows and is right for any order in which they
//! end). Each allocation and free there adds itself to the shared usage
//! with an atomic add (budgets are for tests: their cost does not matter,
//! exactness does), so the group's held bytes and their peak are exact
//! across threads, and the event that crosses a limit is found on
//! whichever thread it happens: the first thread to cross records its
//! stack.
//!
//! The `TRIP` mode bit is on while a thread has a budget of its own armed
//! or watches a shared trip, and off otherwise.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};

use super::TRIP;

/// Return addresses kept for a trip.
const MAX_FRAMES: usize = 64;

/// Absolute thresholds of the budget armed on this thread, and what the
/// first crossing recorded.
struct Trip {
    /// Trips when `allocs + reallocs` exceeds this.
    max_allocs: Cell<u64>,
    /// Trips when `bytes_allocated` exceeds this.
    max_bytes_allocated: Cell<u64>,
    /// Trips when the high-water mark of held bytes exceeds this.
    max_high_water: Cell<i64>,
    frames: [Cell<usize>; MAX_FRAMES],
    len: Cell<usize>,
    /// Set once the first crossing has been recorded (or is being).
    tripped: Cell<bool>,
    /// Budgets of this thread's own armed now (nested checks).
    armed: Cell<u32>,
    /// The shared trip of the budget over the thread's innermost group, or
    /// null.
    shared: Cell<*const SharedTrip>,
}

thread_local! {
    // Const-initialised, no destructor: usable from the allocator.
    static STATE: Trip = const {
        Trip {
            max_allocs: Cell::new(u64::MAX),
            max_bytes_allocated: Cell::new(u64::MAX),
            max_high_water: Cell::new(i64::MAX),
            frames: [const { Cell::new(0) }; MAX_FRAMES],
            len: Cell::new(0),
            tripped: Cell::new(false),
            armed: Cell::new(0),
            shared: Cell::new(std::ptr::null()),
        }
    };
}

/// A budget's absolute thresholds, in the thread's cumulative counters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Thresholds {
    pub allocs: u64,
    pub bytes: u64,
    pub high_water: i64,
}

/// What an enclosing budget had armed and recorded, restored by
/// [`disarm`].
#[derive(Debug)]
pub(crate) struct Saved {
    thresholds: Thresholds,
    tripped: bool,
    recorded: Recorded,
}

/// Return addresses recorded at a trip, in a fixed array: handed out while
/// the budget's scope is still open, where a `Vec` would count.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Recorded {
    frames: [usize; MAX_FRAMES],
    len: usize,
}

impl Recorded {
    pub(crate) fn frames(&self) -> &[usize] {
        &self.frames[..self.len]
    }
}

/// Starts watching for the first allocation that crosses `t` on this
/// thread: arms the thresholds and sets the `TRIP` bit.
pub(crate) fn arm(t: Thresholds) -> Saved {
    STATE.with(|trip| {
        let saved = Saved {
            thresholds: Thresholds {
                allocs: trip.max_allocs.get(),
                bytes: trip.max_bytes_allocated.get(),
                high_water: trip.max_high_water.get(),
            },
            tripped: trip.tripped.get(),
            recorded: recorded(trip),
        };
        trip.max_allocs.set(t.allocs);
        trip.max_bytes_allocated.set(t.bytes);
        trip.max_high_water.set(t.high_water);
        trip.tripped.set(false);
        trip.len.set(0);
        trip.armed.set(trip.armed.get() + 1);
        update_bit(trip);
        saved
    })
}

/// Stops watching: returns the recorded return addresses (none if nothing
/// tripped), and restores the enclosing budget's thresholds.
pub(crate) fn disarm(saved: Saved) -> Recorded {
    STATE.with(|trip| {
        let frames = if trip.tripped.get() { recorded(trip) } else { Recorded { frames: [0; MAX_FRAMES], len: 0 } };
        trip.max_allocs.set(saved.thresholds.allocs);
        trip.max_bytes_allocated.set(saved.thresholds.bytes);
        trip.max_high_water.set(saved.thresholds.high_water);
        trip.tripped.set(saved.tripped);
        record(trip, saved.recorded.frames());
        trip.armed.set(trip.armed.get() - 1);
        update_bit(trip);
        frames
    })
}

/// Sets the `TRIP` bit exactly when a budget of the thread's own is armed
/// or a shared trip is watched.
fn update_bit(trip: &Trip) {
    let on = trip.armed.get() > 0 || !trip.shared.get().is_null();
    if super::mode_bit(TRIP) != on {
        super::set_mode_bit(TRIP, on);
    }
}

/// The frames recorded in `trip` (empty when nothing tripped).
fn recorded(trip: &Trip) -> Recorded {
    let mut r = Recorded { frames: [0; MAX_FRAMES], len: trip.len.get() };
    for (dst, src) in r.frames.iter_mut().zip(&trip.frames[..r.len]) {
        *dst = src.get();
    }
    r
}

/// Stores `frames` as the recorded stack.
fn record(trip: &Trip, frames: &[usize]) {
    for (cell, &ip) in trip.frames.iter().zip(frames) {
        cell.set(ip);
    }
    trip.len.set(frames.len());
}

/// Called from the allocator's cold path while trip mode is on, after
/// counting an allocation of `size` bytes (a reallocation that replaced
/// `freed` bytes): counts it against the watched shared trip, and records
/// the stack at the first crossing of the thread's own budget. Never
/// allocates through the Rust global allocator.
#[inline(never)]
pub(super) fn check(allocs: u64, bytes_allocated: u64, high_water: i64, size: u64, freed: u64) {
    STATE.with(|trip| {
        let shared = trip.shared.get();
        if !shared.is_null() {
            // SAFETY: the watched shared trip is the one of the thread's
            // innermost group window, which holds a strong count of it
            // until the window ends, and the window's end replaces the
            // watched pointer before it releases that count.
            unsafe { &*shared }.count_alloc(size, freed);
        }
        if trip.armed.get() == 0 || trip.tripped.get() {
            return;
        }
        if allocs <= trip.max_allocs.get()
            && bytes_allocated <= trip.max_bytes_allocated.get()
            && high_water <= trip.max_high_water.get()
        {
            return;
        }
        // Set first: if the unwinder allocated through us, the nested call
        // returns above instead of walking again.
        trip.tripped.set(true);
        let mut frames = [0usize; MAX_FRAMES];
        let n = crate::stack::capture(&mut frames);
        record(trip, &frames[..n]);
    })
}

/// Called from the allocator's cold path while trip mode is on, after
/// counting a free of `size` bytes: lowers the watched shared trip's live
/// bytes.
#[inline(never)]
pub(super) fn on_free(size: u64) {
    STATE.with(|trip| {
        let shared = trip.shared.get();
        if !shared.is_null() {
            // SAFETY: as in `check`.
            unsafe { &*shared }.count_free(size);
        }
    })
}

/// A budget's limits over a group, the group's usage while the budget runs
/// (its allocations, bytes and held bytes, exact across threads), and the
/// first crossing's stack: shared by every thread that works in the group
/// meanwhile.
#[derive(Debug)]
pub(crate) struct SharedTrip {
    max_allocs: u64,
    max_bytes_allocated: u64,
    max_live: i64,
    allocs: AtomicU64,
    bytes: AtomicU64,
    /// Live bytes of the group's work since the budget started, and their
    /// highest value.
    live: AtomicI64,
    high: AtomicI64,
    /// Set by the first thread whose allocation crossed a limit.
    tripped: AtomicBool,
    /// Set once that thread has written `frames` and `len`.
    recorded: AtomicBool,
    frames: [AtomicUsize; MAX_FRAMES],
    len: AtomicUsize,
}

impl SharedTrip {
    /// Limits on allocations (`allocs`), bytes allocated and
    /// held bytes above the start; `u64::MAX` for none.
    pub(crate) fn new(max_allocs: u64, max_bytes_allocated: u64, max_live: u64) -> SharedTrip {
        SharedTrip {
            max_allocs,
            max_bytes_allocated,
            max_live: i64::try_from(max_live).unwrap_or(i64::MAX),
            allocs: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            live: AtomicI64::new(0),
            high: AtomicI64::new(0),
            tripped: AtomicBool::new(false),
            recorded: AtomicBool::new(false),
            frames: [const { AtomicUsize::new(0) }; MAX_FRAMES],
            len: AtomicUsize::new(0),
        }
    }

    /// One allocation or reallocation of `size` bytes in the group, which
    /// replaced `freed` bytes (a reallocation's old size).
    fn count_alloc(&self, size: u64, freed: u64) {
        let allocs = self.allocs.fetch_add(1, Ordering::Relaxed) + 1;
        let bytes = self.bytes.fetch_add(size, Ordering::Relaxed).wrapping_add(size);
        let delta = (size as i64).wrapping_sub(freed as i64);
        let live = self.live.fetch_add(delta, Ordering::Relaxed).wrapping_add(delta);
        self.high.fetch_max(live, Ordering::Relaxed);
        let crossed = allocs > self.max_allocs || bytes > self.max_bytes_allocated || live > self.max_live;
        if crossed && !self.tripped.swap(true, Ordering::AcqRel) {
            let mut frames = [0usize; MAX_FRAMES];
            let n = crate::stack::capture(&mut frames);
            for (cell, &ip) in self.frames.iter().zip(&frames[..n]) {
                cell.store(ip, Ordering::Relaxed);
            }
            self.len.store(n, Ordering::Relaxed);
            self.recorded.store(true, Ordering::Release);
        }
    }

    /// One free of `size` bytes in the group.
    fn count_free(&self, size: u64) {
        self.live.fetch_sub(size as i64, Ordering::Relaxed);
    }

    /// The highest held bytes of the group's work since the budget
    /// started (0 if they never rose above the start).
    pub(crate) fn peak_bytes(&self) -> u64 {
        self.high.load(Ordering::Relaxed).max(0) as u64
    }

    /// The first crossing's stack, once recorded (none if nothing crossed).
    pub(crate) fn recorded(&self) -> Recorded {
        let mut r = Recorded { frames: [0; MAX_FRAMES], len: 0 };
        if self.recorded.load(Ordering::Acquire) {
            r.len = self.len.load(Ordering::Relaxed);
            for (dst, src) in r.frames.iter_mut().zip(&self.frames[..r.len]) {
                *dst = src.load(Ordering::Relaxed);
            }
        }
        r
    }
}

/// Makes `shared` (or nothing, when null) the shared trip this thread
/// watches: called whenever the thread's innermost group window changes.
/// The caller keeps `shared` alive until it is replaced.
pub(crate) fn set_shared(shared: *const SharedTrip) {
    STATE.with(|trip| {
        if trip.shared.replace(shared) != shared {
            update_bit(trip);
        }
    });
}

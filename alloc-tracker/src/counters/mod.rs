//! Everything that runs inside the allocator, and only that: the counter
//! set, each thread's block of counters, and the gates that send an
//! allocator event down its path.
//!
//! # Design
//!
//! Every thread owns one [`ThreadCounters`] block in a `const`-initialised
//! thread-local with no destructor, so the hot path is a handful of plain
//! `add` instructions on thread-local memory: no lazy initialisation, no
//! lock, no shared cache line, no read-modify-write atomic. The counters are
//! atomics written with a relaxed load and store by their single writer (the
//! owning thread), which compiles to the same `add` as a `Cell` on x86-64 and
//! AArch64, but lets other threads read them without a data race.
//!
//! A thread's first allocation (or first free, or first call into the public
//! API) *registers* the block ([`registry`]): it claims a slot in a fixed
//! static array with one compare-and-swap and arms a thread-exit hook
//! ([`exit_hook`]), which folds the block into the process totals when the
//! thread exits.
//!
//! # Modes and gates
//!
//! A block's `mode` is a set of bits, written only by the owning thread:
//!
//! | bit | set while | who sets it |
//! |---|---|---|
//! | `FRESH` | the block is not registered yet | the initialiser; cleared by registration |
//! | `DETACHED` | the block is not in the registry (no free slot, or the thread is exiting): events go to the shared totals | registration, the exit hook |
//! | `PEAK` | a scope tracks this thread's peak held bytes | [`crate::Scope`] |
//! | `TRIP` | a budget watches for its first crossing ([`trip`]) | [`crate::Budget`] |
//! | `SAMPLE` | the thread samples call sites ([`sample`]) | `profile::start_thread_sampling` |
//! | `LIBRARY` | the library allocates for itself ([`as_library`]): forwarded, counted apart | the library |
//!
//! ```text
//!            first event or API call
//!   FRESH ─────────── register ───────────> registered ── thread exit ──> DETACHED
//!     │                                      (READY, or PEAK/TRIP/SAMPLE    ▲
//!     │                                       while guards are open)        │
//!     └────────── no free slot, or no exit hook ────────────────────────────┘
//! ```
//!
//! Two bytes derived from the mode (by [`ThreadCounters::set_mode`], the
//! only writer) are what the allocator path tests, so that one compare with
//! zero picks the path (negative, zero or positive):
//!
//! | mode | `alloc_gate` | `alloc`, `realloc` | `free_gate` | `dealloc` |
//! |---|---|---|---|---|
//! | `READY` (no bit) | negative | fast: two adds | negative | fast: two adds |
//! | `PEAK` alone | 0 | peak: two adds, raise the high-water mark (inline) | negative | fast |
//! | `SAMPLE` alone | positive (1) | sampling lane (out of line): two adds, the countdown | 0 | sampling lane (inline): two adds, one bit of the live table's filter |
//! | any other | positive | cold (out of line): registration, the library's own memory, trip check, sampling, detached counting | positive when `FRESH`, `DETACHED`, `TRIP`, `LIBRARY` or `SAMPLE` is set, else negative | cold, or fast |
//!
//! So the path is a compare with thread-local memory, a branch and two adds
//! per `alloc` and per `dealloc` outside scopes, and the high-water mark's
//! update besides per `alloc` inside a peak-tracking scope (what each
//! costs, measured: the repository's `docs/overhead.md`, "Where the
//! instructions go"). `dealloc` ignores `PEAK` (a
//! peak cannot rise on a free), but it needs its check: a thread can free
//! without ever allocating (a consumer thread; a `std` thread's start-up
//! may free first), and such frees must reach the process totals; under a
//! budget over a group, frees lower the group's held bytes, whose peak the
//! budget watches. The sampling lane of `alloc` is
//! out of line: inlined, it made `__rust_alloc` too large to inline into
//! its callers, which cost the fast path a call; a second compare of a gate
//! inline would cost the fast path its `cmpb` with memory.
//!
//! Process-wide sampling changes every thread's mode, but only the owner
//! writes its mode and gates (a remote write would need atomic gates, whose
//! relaxed loads cost the fast path a separate load instruction): a change
//! bumps an epoch, which each thread applies when it next passes a cold
//! path or sets its mode ([`sample::reconcile`]).
//!
//! Why not fewer: a design that folds the check into the counter update
//! (an `add` to memory, then a branch on the flags it sets) needs
//! non-atomic counters; with a relaxed atomic store, which other threads'
//! reads require to be free of data races, x86-64 code generation emits a
//! load, an add, a store and the branch instead. The counters stay atomics
//! and the check stays a separate compare.
//!
//! # Limits
//!
//! - At most [`MAX_THREADS`] threads are tracked per thread at once. Further
//!   threads, and events that happen on a thread after its exit hook ran
//!   (frees made by later thread-exit destructors), are counted only in the
//!   process totals, through shared atomics.
//! - A snapshot of another *running* thread is not atomic across fields; it
//!   is exact when the other threads are quiescent (joined or parked).

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

mod exit_hook;
pub(crate) mod held;
mod path;
pub(crate) mod registry;
pub(crate) mod sample;
mod set;
pub(crate) mod trip;

use path::settle;
pub(crate) use path::{
    after_failed_realloc, before_realloc, on_alloc, on_alloc_tagged, on_dealloc, on_dealloc_tagged, on_realloc,
    on_realloc_tagged,
};
pub(crate) use set::{Counter, CounterSet, Counts};

pub(crate) use registry::MAX_THREADS;

/// Bit set in `mode` while a scope tracks this thread's peak held bytes.
pub(crate) const PEAK: u8 = 1;
/// Bit set in `mode` until the block is registered.
const FRESH: u8 = 2;
/// Bit set in `mode` when the block is not (or no longer) in the registry:
/// every event is counted in the registry's shared totals instead.
const DETACHED: u8 = 4;
/// Bit set in `mode` while a budget watches for its first crossing
/// ([`trip`]): allocations take the cold path, which checks.
pub(crate) const TRIP: u8 = 8;
/// Bit set in `mode` while this thread samples call sites ([`sample`]):
/// allocations and frees take the sampling lane.
pub(crate) const SAMPLE: u8 = 16;
/// Bit set in `mode` while the library allocates for itself ([`as_library`]):
/// such events are forwarded and counted apart, in no thread, scope, group
/// or profile of the program's.
const LIBRARY: u8 = 32;
/// `mode` value: registered, nothing to track.
const READY: u8 = 0;
/// The bits that send a free off its fast path (a peak cannot rise on a
/// free).
const FREE_SLOW: u8 = FRESH | DETACHED | TRIP | SAMPLE | LIBRARY;

/// One thread's counters. Written only by the owning thread; the atomic
/// fields are read by any thread, the `Cell` ones only by the owner.
#[repr(C, align(64))]
pub(crate) struct ThreadCounters {
    /// The thread's state, as `PEAK`, `FRESH`, ... bits. Set only through
    /// [`ThreadCounters::set_mode`], which keeps the two gates below in step.
    mode: Cell<u8>,
    /// What `alloc` and `realloc` test: negative when `mode` is `READY` (the
    /// fast path), zero when it is `PEAK` alone (the peak path), positive
    /// otherwise (the cold path). One compare with zero tells the three
    /// apart. Only the owner reads and writes it: a relaxed atomic load,
    /// which another thread's writes would need, costs a separate load
    /// instruction where a plain byte folds into the `cmpb`.
    alloc_gate: Cell<i8>,
    /// What `dealloc` tests, as `alloc_gate`: negative for the fast path
    /// (no bit that matters to a free: a peak cannot rise on a free, and
    /// budgets limit allocations), zero for the sampling lane (`SAMPLE`
    /// alone), positive otherwise (the cold path).
    free_gate: Cell<i8>,
    counts: CounterSet<AtomicU64>,
    /// Highest held bytes seen while `PEAK` is set, since the last time a
    /// scope read it ([`take_high_water`]).
    high_water: Cell<i64>,
    /// While the thread samples: bytes left until the next sample (the
    /// sampling lane subtracts each allocation's size; see [`sample`]).
    until_next: Cell<i64>,
    /// Index in the registry's slots while registered.
    slot: Cell<usize>,
    /// The process-wide sampling epoch this thread last applied
    /// ([`sample::reconcile`]).
    sample_epoch: Cell<u64>,
    /// A number no other thread of the process has had, given at
    /// registration (0 before): tells snapshots of different threads apart.
    serial: Cell<u64>,
    /// The thread's innermost group, as the allocator needs it: the owner
    /// tag of new blocks and where to add them ([`held`]), and the group's
    /// serial for the sampler.
    owner: Cell<held::Owner>,
}

thread_local! {
    // No destructor and a const initialiser: access is a plain TLS offset,
    // usable inside the allocator at any point of the thread's life.
    static LOCAL: ThreadCounters = const {
        ThreadCounters {
            mode: Cell::new(FRESH),
            alloc_gate: Cell::new(alloc_gate(FRESH)),
            free_gate: Cell::new(free_gate(FRESH)),
            counts: CounterSet::zero(),
            high_water: Cell::new(0),
            until_next: Cell::new(0),
            slot: Cell::new(usize::MAX),
            sample_epoch: Cell::new(0),
            serial: Cell::new(0),
            owner: Cell::new(held::Owner::NONE),
        }
    };
}

/// The `alloc_gate` of the sampling lane: `SAMPLE` alone. (1 is not the
/// gate of any other mode: `PEAK`, the only mode of value 1, has gate 0.)
const SAMPLE_GATE: i8 = 1;

/// The `free_gate` of a mode.
const fn free_gate(mode: u8) -> i8 {
    match mode & FREE_SLOW {
        0 => i8::MIN,
        SAMPLE => 0,
        other => other as i8,
    }
}

/// The `alloc_gate` of a mode.
const fn alloc_gate(mode: u8) -> i8 {
    match mode {
        READY => i8::MIN,
        PEAK => 0,
        SAMPLE => SAMPLE_GATE,
        // Every other mode is below 0x80: positive.
        other => other as i8,
    }
}

/// Every mode bit; modes are below `MODES`.
const MODES: usize = 64;
const _: () = assert!((PEAK | FRESH | DETACHED | TRIP | SAMPLE | LIBRARY) as usize == MODES - 1);

/// The gates of every mode, `(alloc_gate, free_gate)`, computed once: a
/// mode change (every scope's and group window's start and end) looks them
/// up instead of deciding them again.
static GATES: [(i8, i8); MODES] = {
    let mut gates = [(0, 0); MODES];
    let mut mode = 0;
    while mode < MODES {
        gates[mode] = (alloc_gate(mode as u8), free_gate(mode as u8));
        mode += 1;
    }
    gates
};

impl ThreadCounters {
    /// Sets the mode and the gates the allocator path tests, then applies a
    /// process-wide sampling change made since this thread last looked
    /// ([`sample::reconcile`]): every guard's start and end, and every cold
    /// path, passes here.
    #[inline(always)]
    fn set_mode(&self, mode: u8) {
        let (alloc, free) = GATES[mode as usize % MODES];
        self.mode.set(mode);
        self.alloc_gate.set(alloc);
        self.free_gate.set(free);
        if sample::epoch() != self.sample_epoch.get() {
            sample::reconcile(self);
        }
    }
}

/// Adds `n` to a counter that only this thread writes: a relaxed load and
/// store, which compiles to a single non-atomic `add` to memory.
#[inline(always)]
fn bump(counter: &AtomicU64, n: u64) -> u64 {
    let v = counter.load(Ordering::Relaxed).wrapping_add(n);
    counter.store(v, Ordering::Relaxed);
    v
}

/// Runs `f` on the current thread's block.
///
/// `LOCAL` has a const initialiser and no destructor, so `with` cannot fail
/// and cannot allocate, even during thread teardown.
#[inline(always)]
fn with_local<R>(f: impl FnOnce(&'static ThreadCounters) -> R) -> R {
    LOCAL.with(|l| {
        // SAFETY: the block lives as long as the thread; every `&'static`
        // handed out here is used only while the thread runs (by the thread
        // itself), or through the registry, whose readers the exit hook
        // waits for.
        f(unsafe { &*ptr::from_ref(l) })
    })
}

// ---------------------------------------------------------------------------
// For the public API (never called from the allocator).

/// How a block relates to the registry, for the public API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tracking {
    /// Registered: thread scopes work.
    Registered,
    /// Counted only in process totals.
    Detached,
}

/// Registers the current thread if needed (outside the allocator).
pub(crate) fn current_tracking() -> Tracking {
    with_local(|l| if settle(l) & DETACHED != 0 { Tracking::Detached } else { Tracking::Registered })
}

/// The current thread's cumulative counts (zero for a detached thread).
pub(crate) fn thread_counts() -> Counts {
    if current_tracking() == Tracking::Detached {
        return Counts::default();
    }
    own_counts()
}

/// The current thread's block's counts as they are, registered or not: for
/// a window that ends after the thread's exit hook ran, what the thread
/// counted until then (later events are in the process totals only).
#[inline]
pub(crate) fn own_counts() -> Counts {
    with_local(|l| l.counts.load())
}

/// Whether the current thread's block is detached (beyond the registry,
/// or its exit hook has run): its events go to the process totals only.
#[inline]
pub(crate) fn is_detached() -> bool {
    with_local(|l| l.mode.get() & DETACHED != 0)
}

/// The current thread's slot in the registry if it is registered (and not
/// detached): one thread-local read, no registration.
#[inline]
pub(crate) fn registered_slot() -> Option<usize> {
    with_local(|l| {
        let slot = l.slot.get();
        (slot != usize::MAX).then_some(slot)
    })
}

/// The current thread's slot in the registry, or `None` when it is
/// detached (beyond the registry, or exiting). Registers it if needed.
pub(crate) fn thread_slot() -> Option<usize> {
    with_local(|l| (settle(l) & DETACHED == 0).then(|| l.slot.get()))
}

/// Runs `f` with the calling thread's allocator events counted as the
/// library's own ([`registry::library_counts`]): in no thread, scope,
/// group, budget or heap profile of the program's. For memory the library
/// allocates for itself and frees itself (a group's shared counters, a
/// budget's trip, the tables of named groups and operations): every such
/// block must also be freed inside `as_library`, or the thread that frees
/// it would count a free it never allocated.
pub(crate) fn as_library<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the bit on every exit, a panic's too.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            set_mode_bit(LIBRARY, self.0);
        }
    }
    let _restore = Restore(mode_bit(LIBRARY));
    set_mode_bit(LIBRARY, true);
    f()
}

/// Whether the thread is running the library's own work ([`as_library`]).
pub(crate) fn is_library_work() -> bool {
    mode_bit(LIBRARY)
}

/// The current thread's serial number (registering it if needed): no two
/// threads of the process share one.
pub(crate) fn thread_serial() -> u64 {
    with_local(|l| {
        settle(l);
        l.serial.get()
    })
}

/// Whether `bit` (`PEAK`, `TRIP`, `SAMPLE` or `LIBRARY`) is set on this
/// thread.
pub(crate) fn mode_bit(bit: u8) -> bool {
    with_local(|l| l.mode.get() & bit != 0)
}

/// Sets or clears a mode bit of the current thread.
pub(crate) fn set_mode_bit(bit: u8, on: bool) {
    debug_assert!(bit & (PEAK | TRIP | SAMPLE | LIBRARY) == bit, "only guards' bits are set from outside");
    with_local(|l| {
        let m = l.mode.get();
        l.set_mode(if on { m | bit } else { m & !bit });
    })
}

/// Returns the high-water mark of held bytes reached since the last call
/// (or since `PEAK` was set), and restarts it from `live_now`.
pub(crate) fn take_high_water(live_now: i64) -> i64 {
    with_local(|l| l.high_water.replace(live_now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    pub(super) fn mode() -> u8 {
        with_local(|l| l.mode.get())
    }

    /// A bare pthread (no Rust start-up code) whose first allocator event
    /// is a free: the free registers the thread, without allocating.
    #[cfg(unix)]
    #[test]
    fn a_threads_first_free_registers_it_without_allocating() {
        #[derive(Default)]
        struct Seen {
            block: Option<Box<[u8; 48]>>,
            modes: [u8; 2],
            counts: Counts,
        }
        extern "C" fn run(arg: *mut libc::c_void) -> *mut libc::c_void {
            // SAFETY: `arg` is the `Seen` below, borrowed until the join.
            let seen = unsafe { &mut *arg.cast::<Seen>() };
            seen.modes[0] = mode();
            drop(seen.block.take());
            seen.modes[1] = mode();
            seen.counts = with_local(|l| l.counts.load());
            std::ptr::null_mut()
        }
        let mut seen = Seen { block: Some(black_box(Box::new([0u8; 48]))), ..Seen::default() };
        let mut thread: libc::pthread_t = 0;
        // SAFETY: `run` matches the start routine signature and `seen`
        // outlives the thread, which is joined before `seen` is read.
        unsafe {
            let arg = std::ptr::from_mut(&mut seen).cast();
            assert_eq!(libc::pthread_create(&mut thread, std::ptr::null(), run, arg), 0);
            assert_eq!(libc::pthread_join(thread, std::ptr::null_mut()), 0);
        }
        assert_eq!(seen.modes, [FRESH, READY]);
        let c = seen.counts;
        assert_eq!((c[Counter::Allocs], c[Counter::Deallocs], c[Counter::BytesFreed]), (0, 1, 48));
    }

    /// The allocator path dispatches on the gates alone: for every mode,
    /// `alloc` must take the fast path exactly when the mode is `READY`,
    /// the inline peak path exactly when it is `PEAK` alone, and `dealloc`
    /// its fast path exactly when no registration or sampling bit is set.
    #[test]
    fn the_gates_send_every_mode_to_its_path() {
        let all = PEAK | FRESH | DETACHED | TRIP | SAMPLE | LIBRARY;
        for mode in 0..=all {
            if mode & !all != 0 {
                continue;
            }
            let gate = alloc_gate(mode);
            assert_eq!(gate < 0, mode == READY, "mode {mode:#b}");
            assert_eq!(gate == 0, mode == PEAK, "mode {mode:#b}");
            let free_fast = mode & (FRESH | DETACHED | TRIP | SAMPLE | LIBRARY) == 0;
            assert_eq!(free_gate(mode) < 0, free_fast, "mode {mode:#b}");
            assert_eq!(free_gate(mode) == 0, mode & !PEAK == SAMPLE, "mode {mode:#b}");
        }
        std::thread::spawn(|| {
            drop(black_box(vec![0u8; 8])); // registers
            with_local(|l| {
                for mode in [PEAK, PEAK | TRIP, SAMPLE, PEAK | SAMPLE, LIBRARY, READY] {
                    l.set_mode(mode);
                    assert_eq!(
                        (l.mode.get(), l.alloc_gate.get(), l.free_gate.get()),
                        (mode, alloc_gate(mode), free_gate(mode))
                    );
                }
            });
        })
        .join()
        .unwrap();
    }
}

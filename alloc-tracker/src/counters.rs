//! Per-thread counter blocks, their registry, and process totals.
//!
//! # Design
//!
//! Every thread owns one [`ThreadCounters`] block in a `const`-initialised
//! thread-local with no destructor, so the hot path is a handful of plain
//! `add` instructions on thread-local memory: no lazy initialisation, no
//! lock, no shared cache line, no read-modify-write atomic. The fields are
//! atomics written with a relaxed load and store by their single writer (the
//! owning thread), which compiles to the same `add` as a `Cell` on x86-64 and
//! AArch64, but lets other threads read them without a data race.
//!
//! A thread's first allocation (or first free, or first call into the public
//! API) *registers* the block: it claims a slot in [`SLOTS`], a fixed static
//! array of pointers, with one compare-and-swap, and arranges for a
//! thread-exit hook. Registration never allocates through the global
//! allocator. When the thread exits the hook folds the block into
//! [`RETIRED`], so process totals stay exact after threads are gone.
//!
//! Two bytes derived from the thread's mode keep everything else off the
//! common path. `alloc` and `realloc` compare `alloc_gate` with zero and
//! branch twice on the flags: negative is the fast path (registered, nothing
//! to track), zero the peak path inside scopes (still inline: a `measure`
//! costs no call), positive the cold path (registration, budget trip checks,
//! sampling, detached threads). `dealloc` compares `free_gate` with zero: it
//! holds only the registration and sampling bits, since a peak cannot rise
//! on a free. So the path is 4 instructions per `alloc` and 4 per `dealloc`
//! outside scopes (a compare with thread-local memory, a branch, two adds),
//! and 9 per `alloc` inside a peak-tracking scope. The free path needs its
//! check: a thread can free without ever allocating (a consumer thread; a
//! `std` thread's start-up may free first), and such frees must reach the
//! process totals.
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
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// The most threads whose counters can be registered at the same time.
pub const MAX_THREADS: usize = 16_384;

/// Bit set in `mode` while a scope tracks this thread's peak live bytes.
const PEAK: u8 = 1;
/// Bit set in `mode` until the block is registered.
const FRESH: u8 = 2;
/// Bit set in `mode` when the block is not (or no longer) in the registry:
/// every event is counted in [`RETIRED`] instead.
const DETACHED: u8 = 4;
/// Bit set in `mode` while a budget watches for its first crossing
/// ([`crate::sites`]): allocations take the cold path, which checks.
const TRIP: u8 = 8;
/// Bit set in `mode` while this thread samples call sites
/// ([`crate::sites::profile`]): allocations and frees take the cold path.
pub(crate) const SAMPLE: u8 = 16;
/// `mode` value: registered, no scope is tracking peak bytes.
const READY: u8 = 0;
/// The bits that send a free off its fast path (a peak cannot rise on a
/// free).
const FREE_SLOW: u8 = FRESH | DETACHED | SAMPLE;

/// Five monotonically increasing event counters, in the vocabulary of
/// [`AllocStats`](crate::AllocStats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub allocs: u64,
    pub deallocs: u64,
    pub reallocs: u64,
    pub bytes_allocated: u64,
    pub bytes_freed: u64,
}

impl Counts {
    pub(crate) fn wrapping_add(self, o: Counts) -> Counts {
        Counts {
            allocs: self.allocs.wrapping_add(o.allocs),
            deallocs: self.deallocs.wrapping_add(o.deallocs),
            reallocs: self.reallocs.wrapping_add(o.reallocs),
            bytes_allocated: self.bytes_allocated.wrapping_add(o.bytes_allocated),
            bytes_freed: self.bytes_freed.wrapping_add(o.bytes_freed),
        }
    }

    pub(crate) fn wrapping_sub(self, o: Counts) -> Counts {
        Counts {
            allocs: self.allocs.wrapping_sub(o.allocs),
            deallocs: self.deallocs.wrapping_sub(o.deallocs),
            reallocs: self.reallocs.wrapping_sub(o.reallocs),
            bytes_allocated: self.bytes_allocated.wrapping_sub(o.bytes_allocated),
            bytes_freed: self.bytes_freed.wrapping_sub(o.bytes_freed),
        }
    }

    /// Live bytes: allocated minus freed, as a signed figure (a thread that
    /// frees what others allocated goes negative).
    pub(crate) fn live(self) -> i64 {
        self.bytes_allocated.wrapping_sub(self.bytes_freed) as i64
    }
}

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
    /// apart.
    alloc_gate: Cell<i8>,
    /// What `dealloc` tests: the `mode` bits that send a free off its fast
    /// path (a peak cannot rise on a free, so `PEAK` is not among them).
    free_gate: Cell<u8>,
    allocs: AtomicU64,
    deallocs: AtomicU64,
    reallocs: AtomicU64,
    bytes_allocated: AtomicU64,
    bytes_freed: AtomicU64,
    /// Highest live bytes seen while `PEAK` is set.
    high_water: Cell<i64>,
    /// Index in [`SLOTS`] while registered.
    slot: Cell<usize>,
}

thread_local! {
    // No destructor and a const initialiser: access is a plain TLS offset,
    // usable inside the allocator at any point of the thread's life.
    static LOCAL: ThreadCounters = const {
        ThreadCounters {
            mode: Cell::new(FRESH),
            alloc_gate: Cell::new(alloc_gate(FRESH)),
            free_gate: Cell::new(FRESH & FREE_SLOW),
            allocs: AtomicU64::new(0),
            deallocs: AtomicU64::new(0),
            reallocs: AtomicU64::new(0),
            bytes_allocated: AtomicU64::new(0),
            bytes_freed: AtomicU64::new(0),
            high_water: Cell::new(0),
            slot: Cell::new(usize::MAX),
        }
    };
}

/// The `alloc_gate` of a mode.
const fn alloc_gate(mode: u8) -> i8 {
    match mode {
        READY => i8::MIN,
        PEAK => 0,
        // Every other mode is below 0x80: positive.
        other => other as i8,
    }
}

impl ThreadCounters {
    /// Sets the mode and the gates the allocator path tests.
    fn set_mode(&self, mode: u8) {
        self.mode.set(mode);
        self.alloc_gate.set(alloc_gate(mode));
        self.free_gate.set(mode & FREE_SLOW);
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
        // itself), or through `SLOTS`, whose readers the exit hook waits for.
        f(unsafe { &*ptr::from_ref(l) })
    })
}

// ---------------------------------------------------------------------------
// The hot path: called from `CountingAlloc` after the inner allocator
// succeeded. No allocation, no lock, no panic, no system call.

/// Marks the branch that calls it as unlikely, so that the compiler lays it
/// out apart from the straight-line code: a call to a `#[cold]` function
/// (this one is empty and vanishes once inlined), the stable-Rust idiom that
/// `hashbrown` uses for its `unlikely` (`std::hint::cold_path` needs Rust
/// 1.95).
#[inline(always)]
#[cold]
fn layout_apart() {}

/// Counts one successful `alloc` or `alloc_zeroed` of `size` bytes.
#[inline(always)]
pub(crate) fn on_alloc(ptr: *mut u8, size: usize) {
    with_local(|l| {
        // One compare of the gate with zero and two branches on its flags:
        // negative is the fast path, zero the peak path (inline: it is the
        // measured path of every `measure`), positive the cold path.
        let gate = l.alloc_gate.get();
        if gate < 0 {
            bump(&l.allocs, 1);
            bump(&l.bytes_allocated, size as u64);
        } else if gate == 0 {
            // Laid out after the function's other code, so that the fast
            // path falls straight through, with no taken branch; the peak
            // path's last branch jumps back, so it costs no instruction.
            layout_apart();
            bump(&l.allocs, 1);
            bump(&l.bytes_allocated, size as u64);
            raise_high_water(l);
        } else {
            on_alloc_other(l, ptr, size as u64);
        }
    })
}

/// Counts one `dealloc` of `size` bytes.
#[inline(always)]
pub(crate) fn on_dealloc(ptr: *mut u8, size: usize) {
    with_local(|l| {
        if l.free_gate.get() == 0 {
            bump(&l.deallocs, 1);
            bump(&l.bytes_freed, size as u64);
        } else {
            on_dealloc_tracking(l, ptr, size as u64);
        }
    })
}

/// Counts one successful `realloc` from `old` to `new` bytes.
#[inline(always)]
pub(crate) fn on_realloc(old_ptr: *mut u8, new_ptr: *mut u8, old: usize, new: usize) {
    with_local(|l| {
        if l.alloc_gate.get() < 0 {
            bump(&l.reallocs, 1);
            bump(&l.bytes_allocated, new as u64);
            bump(&l.bytes_freed, old as u64);
        } else {
            on_realloc_cold(l, old_ptr, new_ptr, old as u64, new as u64);
        }
    })
}

/// `alloc` on a thread that samples (the heap profiler's lane: count, then
/// a countdown) or needs the cold path. Out of line, so that the fast path
/// stays small enough to inline into `__rust_alloc`'s callers; `cold`, so
/// that the compiler lays the fast path out as the straight line (without
/// it, each pair paid two more jumps and a register move).
#[cold]
#[inline(never)]
fn on_alloc_other(l: &'static ThreadCounters, ptr: *mut u8, size: u64) {
    if l.mode.get() == SAMPLE {
        bump(&l.allocs, 1);
        bump(&l.bytes_allocated, size);
        crate::sites::profile::tick(ptr, size);
    } else {
        on_alloc_cold(l, ptr, size);
    }
}

/// A free on a thread that samples (its lane) or needs the cold path. Out
/// of line and `cold`, as `on_alloc_other`.
#[cold]
#[inline(never)]
fn on_dealloc_tracking(l: &'static ThreadCounters, ptr: *mut u8, size: u64) {
    if l.mode.get() & !PEAK == SAMPLE {
        bump(&l.deallocs, 1);
        bump(&l.bytes_freed, size);
        crate::sites::profile::on_free(ptr);
    } else {
        on_dealloc_cold(l, ptr, size);
    }
}

#[cold]
#[inline(never)]
fn on_dealloc_cold(l: &'static ThreadCounters, ptr: *mut u8, size: u64) {
    let mode = settle(l);
    if mode & DETACHED != 0 {
        RETIRED.add(Counts { deallocs: 1, bytes_freed: size, ..Counts::default() });
        return;
    }
    bump(&l.deallocs, 1);
    bump(&l.bytes_freed, size);
    if mode & SAMPLE != 0 {
        crate::sites::profile::on_free(ptr);
    }
}

#[cold]
#[inline(never)]
fn on_alloc_cold(l: &'static ThreadCounters, ptr: *mut u8, size: u64) {
    let mode = settle(l);
    if mode & DETACHED != 0 {
        RETIRED.add(Counts { allocs: 1, bytes_allocated: size, ..Counts::default() });
        return;
    }
    bump(&l.allocs, 1);
    let allocated = bump(&l.bytes_allocated, size);
    if mode & PEAK != 0 {
        raise_high_water(l);
    }
    if mode & TRIP != 0 {
        check_trip(l, allocated);
    }
    if mode & SAMPLE != 0 {
        crate::sites::profile::on_alloc(ptr, size);
    }
}

/// Hands the thread's figures to the budget's trip check.
fn check_trip(l: &ThreadCounters, allocated: u64) {
    let total = l.allocs.load(Ordering::Relaxed).wrapping_add(l.reallocs.load(Ordering::Relaxed));
    crate::sites::check(total, allocated, l.high_water.get());
}

#[cold]
#[inline(never)]
fn on_realloc_cold(l: &'static ThreadCounters, old_ptr: *mut u8, new_ptr: *mut u8, old: u64, new: u64) {
    let mode = settle(l);
    if mode & DETACHED != 0 {
        RETIRED.add(Counts { reallocs: 1, bytes_allocated: new, bytes_freed: old, ..Counts::default() });
        return;
    }
    bump(&l.reallocs, 1);
    let allocated = bump(&l.bytes_allocated, new);
    bump(&l.bytes_freed, old);
    if mode & PEAK != 0 {
        raise_high_water(l);
    }
    if mode & TRIP != 0 {
        check_trip(l, allocated);
    }
    if mode & SAMPLE != 0 {
        // A reallocation is a new block replacing the old one (the counting
        // rule): the old one leaves the live set, the new one may be sampled.
        crate::sites::profile::on_free(old_ptr);
        crate::sites::profile::on_alloc(new_ptr, new);
    }
}

/// Registers the block if it is fresh and returns its mode.
#[inline]
fn settle(l: &'static ThreadCounters) -> u8 {
    if l.mode.get() & FRESH != 0 {
        register(l);
    }
    l.mode.get()
}

/// Raises the high-water mark to the live bytes.
///
/// Both counters are read as plain memory, which lets the compiler fold the
/// reads into the `sub` and `cmp` that use them: a volatile read of
/// `bytes_allocated` just written (the compiler keeps it; otherwise it keeps
/// the sum in a register and pays a separate load and store for the add)
/// and a plain read of `bytes_freed`.
#[inline(always)]
fn raise_high_water(l: &ThreadCounters) {
    // SAFETY: both pointers come from live atomics of this thread's block.
    // Only the owning thread (this one) writes them, so these reads cannot
    // race with a write; other threads only read them, and reads do not
    // race with reads.
    let live = unsafe { l.bytes_allocated.as_ptr().read_volatile().wrapping_sub(*l.bytes_freed.as_ptr()) } as i64;
    if live > l.high_water.get() {
        l.high_water.set(live);
    }
}

// ---------------------------------------------------------------------------
// The registry.

/// Pointers to the blocks of registered, running threads.
static SLOTS: [AtomicPtr<ThreadCounters>; MAX_THREADS] = [const { AtomicPtr::new(ptr::null_mut()) }; MAX_THREADS];
/// One past the highest slot ever claimed: readers scan `SLOTS[..SLOTS_USED]`.
static SLOTS_USED: AtomicUsize = AtomicUsize::new(0);
/// Readers currently dereferencing pointers taken from `SLOTS`.
static READERS: AtomicUsize = AtomicUsize::new(0);
/// Exit hooks currently moving a block from `SLOTS` to `RETIRED`.
static EXITING: AtomicUsize = AtomicUsize::new(0);
/// Completed exit hooks; lets a reader detect one that overlapped its read.
static EXITS: AtomicU64 = AtomicU64::new(0);

/// Counts of exited threads, and of events no registered block could take.
static RETIRED: SharedCounts = SharedCounts::new();

struct SharedCounts([AtomicU64; 5]);

impl SharedCounts {
    const fn new() -> Self {
        SharedCounts([const { AtomicU64::new(0) }; 5])
    }

    fn add(&self, c: Counts) {
        let values = [c.allocs, c.deallocs, c.reallocs, c.bytes_allocated, c.bytes_freed];
        for (slot, v) in self.0.iter().zip(values) {
            if v != 0 {
                slot.fetch_add(v, Ordering::Relaxed);
            }
        }
    }

    fn load(&self) -> Counts {
        let [a, d, r, ba, bf] = &self.0;
        Counts {
            allocs: a.load(Ordering::Relaxed),
            deallocs: d.load(Ordering::Relaxed),
            reallocs: r.load(Ordering::Relaxed),
            bytes_allocated: ba.load(Ordering::Relaxed),
            bytes_freed: bf.load(Ordering::Relaxed),
        }
    }
}

/// Registers a fresh block: claims a slot and arms the exit hook, or, when
/// neither is possible, detaches the block and moves what it counted so far
/// to [`RETIRED`]. Never allocates through the global allocator.
fn register(l: &'static ThreadCounters) {
    debug_assert!(l.mode.get() & FRESH != 0);
    let me = ptr::from_ref(l).cast_mut();
    let claimed = SLOTS.iter().position(|slot| {
        slot.load(Ordering::Relaxed).is_null()
            && slot.compare_exchange(ptr::null_mut(), me, Ordering::SeqCst, Ordering::Relaxed).is_ok()
    });
    let mode = l.mode.get() & !FRESH;
    match claimed {
        Some(i) if exit_hook::arm(me) => {
            l.slot.set(i);
            SLOTS_USED.fetch_max(i + 1, Ordering::SeqCst);
            l.set_mode(mode);
        }
        _ => {
            if let Some(i) = claimed {
                SLOTS[i].store(ptr::null_mut(), Ordering::SeqCst);
            }
            RETIRED.add(read_block(l));
            l.set_mode(mode | DETACHED);
        }
    }
}

/// Called on the exiting thread, after the thread's other thread-local
/// destructors: moves the block's counts to `RETIRED` and leaves the block
/// detached, so that any later event on this thread is counted there too.
fn retire(l: &ThreadCounters) {
    EXITING.fetch_add(1, Ordering::SeqCst);
    let slot = l.slot.replace(usize::MAX);
    if slot < MAX_THREADS {
        SLOTS[slot].store(ptr::null_mut(), Ordering::SeqCst);
    }
    RETIRED.add(read_block(l));
    l.set_mode(DETACHED);
    EXITS.fetch_add(1, Ordering::SeqCst);
    EXITING.fetch_sub(1, Ordering::SeqCst);
    // The block's memory goes away with the thread: wait for any reader that
    // took its pointer before the slot was cleared.
    while READERS.load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
}

/// Reads a block's atomic fields (any thread may call it; the `Cell` fields
/// are left alone).
fn read_block(l: &ThreadCounters) -> Counts {
    Counts {
        allocs: l.allocs.load(Ordering::Relaxed),
        deallocs: l.deallocs.load(Ordering::Relaxed),
        reallocs: l.reallocs.load(Ordering::Relaxed),
        bytes_allocated: l.bytes_allocated.load(Ordering::Relaxed),
        bytes_freed: l.bytes_freed.load(Ordering::Relaxed),
    }
}

/// The thread-exit hook. On Unix a `pthread_key_create` destructor, which
/// glibc and the BSDs run after the C++/Rust thread-local destructors, so
/// frees made by those are still counted in the thread's block. Elsewhere a
/// `thread_local!` with `Drop`, armed outside the allocator only.
#[cfg(unix)]
mod exit_hook {
    use super::{retire, ThreadCounters};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// `pthread_key_t` plus one, zero until created.
    static KEY: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn on_exit(block: *mut libc::c_void) {
        // SAFETY: the value was set by `arm` to this thread's block, which is
        // still alive: pthread key destructors run before the thread's TLS
        // memory is released.
        retire(unsafe { &*block.cast::<ThreadCounters>() });
    }

    fn key() -> Option<libc::pthread_key_t> {
        let k = KEY.load(Ordering::Acquire);
        if k != 0 {
            return Some((k - 1) as libc::pthread_key_t);
        }
        let mut new: libc::pthread_key_t = 0;
        // SAFETY: `new` is a valid out-pointer; `on_exit` matches the
        // destructor signature. glibc allocates keys without calling the
        // Rust global allocator.
        if unsafe { libc::pthread_key_create(&mut new, Some(on_exit)) } != 0 {
            return None;
        }
        match KEY.compare_exchange(0, new as usize + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Some(new),
            Err(winner) => {
                // SAFETY: `new` was created above and never used.
                unsafe { libc::pthread_key_delete(new) };
                Some((winner - 1) as libc::pthread_key_t)
            }
        }
    }

    /// Arranges for `block` to be retired when this thread exits.
    pub(super) fn arm(block: *mut ThreadCounters) -> bool {
        let Some(key) = key() else { return false };
        // SAFETY: `key` is a live key; storing a non-null value makes the
        // destructor run at thread exit. The C library's own allocator backs
        // the key's storage, not the Rust global allocator.
        unsafe { libc::pthread_setspecific(key, block.cast()) == 0 }
    }
}

#[cfg(not(unix))]
mod exit_hook {
    use super::{retire, ThreadCounters};

    struct Retire(Cell<*const ThreadCounters>);

    impl Drop for Retire {
        fn drop(&mut self) {
            let block = self.0.get();
            if !block.is_null() {
                // SAFETY: set by `arm` to this thread's block, which outlives
                // its thread-local destructors.
                retire(unsafe { &*block });
            }
        }
    }

    thread_local! {
        static HOOK: Retire = const { Retire(Cell::new(std::ptr::null())) };
    }

    /// Arranges for `block` to be retired when this thread exits. Touching a
    /// thread-local with `Drop` may allocate to register its destructor; the
    /// block is marked registered first, so such an allocation is counted
    /// and does not recurse here.
    pub(super) fn arm(block: *mut ThreadCounters) -> bool {
        HOOK.try_with(|h| h.0.set(block)).is_ok()
    }
}

// ---------------------------------------------------------------------------
// Reading, for the public API (never called from the allocator).

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
    with_local(|l| {
        if l.mode.get() & FRESH != 0 {
            register(l);
        }
        if l.mode.get() & DETACHED != 0 {
            Tracking::Detached
        } else {
            Tracking::Registered
        }
    })
}

/// The current thread's cumulative counts (zero for a detached thread).
pub(crate) fn thread_counts() -> Counts {
    if current_tracking() == Tracking::Detached {
        return Counts::default();
    }
    with_local(read_block)
}

/// Cumulative counts of every thread, running or exited.
pub(crate) fn process_counts() -> Counts {
    loop {
        READERS.fetch_add(1, Ordering::SeqCst);
        let exits = EXITS.load(Ordering::SeqCst);
        let mut total = RETIRED.load();
        let stable_start = EXITING.load(Ordering::SeqCst) == 0;
        if stable_start {
            for slot in &SLOTS[..SLOTS_USED.load(Ordering::SeqCst)] {
                let p = slot.load(Ordering::SeqCst);
                if !p.is_null() {
                    // SAFETY: a block stays alive while its slot points to it,
                    // and its exit hook waits for `READERS` to reach zero
                    // after clearing the slot; we counted ourselves in above.
                    total = total.wrapping_add(read_block(unsafe { &*p }));
                }
            }
        }
        let stable = stable_start && EXITING.load(Ordering::SeqCst) == 0 && EXITS.load(Ordering::SeqCst) == exits;
        READERS.fetch_sub(1, Ordering::SeqCst);
        if stable {
            return total;
        }
        std::thread::yield_now();
    }
}

/// The current thread's live bytes and high-water mark state, saved by a
/// scope when it starts tracking peak bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeakFrame {
    saved_mode: u8,
    saved_high_water: i64,
}

/// Starts peak tracking on the current (registered) thread: from now on the
/// high-water mark follows live bytes, starting from the current level.
pub(crate) fn start_peak(start: Counts) -> PeakFrame {
    with_local(|l| {
        let frame = PeakFrame { saved_mode: l.mode.get(), saved_high_water: l.high_water.get() };
        l.high_water.set(start.live());
        l.set_mode(frame.saved_mode | PEAK);
        frame
    })
}

/// Ends peak tracking started by [`start_peak`]: returns the highest live
/// bytes reached above `start`, and hands the high-water mark on to the
/// enclosing scope, if any.
pub(crate) fn finish_peak(frame: PeakFrame, start: Counts) -> u64 {
    with_local(|l| {
        let high = l.high_water.get();
        let peak = high.wrapping_sub(start.live()).max(0) as u64;
        l.high_water.set(high.max(frame.saved_high_water));
        l.set_mode(frame.saved_mode);
        peak
    })
}

/// What [`arm_trip`] replaced, for [`disarm_trip`].
#[derive(Debug)]
pub(crate) struct TripFrame {
    saved: crate::sites::Saved,
    trip_bit: u8,
}

/// Starts watching for the first allocation that crosses `t` on this
/// thread (inside a peak-tracking scope).
pub(crate) fn arm_trip(t: crate::sites::Thresholds) -> TripFrame {
    with_local(|l| {
        let frame = TripFrame { saved: crate::sites::arm(t), trip_bit: l.mode.get() & TRIP };
        l.set_mode(l.mode.get() | TRIP);
        frame
    })
}

/// Stops watching; returns what the first crossing recorded.
pub(crate) fn disarm_trip(frame: TripFrame) -> crate::sites::Recorded {
    with_local(|l| l.set_mode((l.mode.get() & !TRIP) | frame.trip_bit));
    crate::sites::disarm(frame.saved)
}

/// Sets or clears a mode bit of the current thread (outside the allocator).
pub(crate) fn set_mode_bit(bit: u8, on: bool) {
    with_local(|l| {
        let m = l.mode.get();
        l.set_mode(if on { m | bit } else { m & !bit });
    })
}

/// The highest live bytes above `start` reached so far in the current peak
/// tracking window.
pub(crate) fn peak_so_far(start: Counts) -> u64 {
    with_local(|l| l.high_water.get().wrapping_sub(start.live()).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    fn mode() -> u8 {
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
            seen.counts = with_local(read_block);
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
        assert_eq!((c.allocs, c.deallocs, c.bytes_freed), (0, 1, 48));
    }

    /// The allocator path dispatches on the gates alone: for every mode,
    /// `alloc` must take the fast path exactly when the mode is `READY`,
    /// the inline peak path exactly when it is `PEAK` alone, and `dealloc`
    /// its fast path exactly when no registration or sampling bit is set.
    #[test]
    fn the_gates_send_every_mode_to_its_path() {
        let all = PEAK | FRESH | DETACHED | TRIP | SAMPLE;
        for mode in 0..=all {
            if mode & !all != 0 {
                continue;
            }
            let gate = alloc_gate(mode);
            assert_eq!(gate < 0, mode == READY, "mode {mode:#b}");
            assert_eq!(gate == 0, mode == PEAK, "mode {mode:#b}");
            let free_fast = mode & (FRESH | DETACHED | SAMPLE) == 0;
            assert_eq!(mode & FREE_SLOW == 0, free_fast, "mode {mode:#b}");
        }
        std::thread::spawn(|| {
            drop(black_box(vec![0u8; 8])); // registers
            with_local(|l| {
                for mode in [PEAK, PEAK | TRIP, SAMPLE, PEAK | SAMPLE, READY] {
                    l.set_mode(mode);
                    assert_eq!(
                        (l.mode.get(), l.alloc_gate.get(), l.free_gate.get()),
                        (mode, alloc_gate(mode), mode & FREE_SLOW)
                    );
                }
            });
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_retired_block_counts_every_later_event_in_the_process_totals() {
        std::thread::spawn(|| {
            drop(black_box(vec![0u8; 8])); // registers
                                           // What the exit hook does, early: later events (as from other
                                           // thread-local destructors) must still reach the process totals.
            with_local(retire);
            assert_eq!(mode(), DETACHED);
            let before = RETIRED.load();
            for _ in 0..3 {
                drop(black_box(vec![0u8; 100]));
            }
            let d = RETIRED.load().wrapping_sub(before);
            // Other tests' threads may retire concurrently: at least ours.
            assert!(d.allocs >= 3 && d.deallocs >= 3 && d.bytes_allocated >= 300, "{d:?}");
            assert_eq!(thread_counts(), Counts::default(), "a detached thread has no thread figures");
        })
        .join()
        .unwrap();
    }
}

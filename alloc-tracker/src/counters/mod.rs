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
//! | `PEAK` | a scope tracks this thread's peak live bytes | [`crate::Scope`] |
//! | `TRIP` | a budget watches for its first crossing ([`trip`]) | [`crate::Budget`] |
//! | `SAMPLE` | the thread samples call sites ([`sample`]) | `profile::start_thread_sampling` |
//! | `INTERNAL` | the library allocates for itself ([`internal`]): forwarded, counted apart | the library |
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
//! | any other | positive | cold (out of line): registration, the library's own memory, trip check, sampling, detached counting | positive when `FRESH`, `DETACHED`, `TRIP`, `INTERNAL` or `SAMPLE` is set, else negative | cold, or fast |
//!
//! So the path is a compare with thread-local memory, a branch and two adds
//! per `alloc` and per `dealloc` outside scopes, and the high-water mark's
//! update besides per `alloc` inside a peak-tracking scope (what each
//! costs, measured: the repository's `docs/overhead.md`, "Where the
//! instructions go"). `dealloc` ignores `PEAK` (a
//! peak cannot rise on a free), but it needs its check: a thread can free
//! without ever allocating (a consumer thread; a `std` thread's start-up
//! may free first), and such frees must reach the process totals; under a
//! budget over a group, frees lower the group's live bytes, whose peak the
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
use std::ops::{Index, IndexMut};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

mod exit_hook;
pub(crate) mod held;
pub(crate) mod registry;
pub(crate) mod sample;
pub(crate) mod trip;

pub use registry::MAX_THREADS;

/// Bit set in `mode` while a scope tracks this thread's peak live bytes.
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
/// Bit set in `mode` while the library allocates for itself ([`internal`]):
/// such events are forwarded and counted apart, in no thread, scope, group
/// or profile of the program's.
const INTERNAL: u8 = 32;
/// `mode` value: registered, nothing to track.
const READY: u8 = 0;
/// The bits that send a free off its fast path (a peak cannot rise on a
/// free).
const FREE_SLOW: u8 = FRESH | DETACHED | TRIP | SAMPLE | INTERNAL;

/// The five counters, by name: the vocabulary of
/// [`AllocStats`](crate::AllocStats) (see the crate docs' "Vocabulary"),
/// and the index of each counter in a [`CounterSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counter {
    /// Blocks handed out: successful `alloc`, `alloc_zeroed` and `realloc`
    /// calls.
    Allocs,
    /// Of `Allocs`, the successful `realloc` calls.
    Reallocs,
    /// `dealloc` calls.
    Deallocs,
    /// Requested bytes of allocations, plus reallocations' new sizes.
    BytesAllocated,
    /// Bytes of frees, plus reallocations' old sizes.
    BytesFreed,
}

impl Counter {
    /// Every counter, in the order of [`CounterSet`]'s values.
    pub(crate) const ALL: [Counter; 5] =
        [Counter::Allocs, Counter::Reallocs, Counter::Deallocs, Counter::BytesAllocated, Counter::BytesFreed];
}

/// One value per [`Counter`]: plain counts, or the atomics of a thread's
/// block, an operation's row or the shared totals. (divan's `AllocOpMap`
/// keeps its counters this way: one vocabulary, never spelled out field by
/// field.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct CounterSet<T> {
    values: [T; 5],
}

/// Cumulative or differential counts.
pub(crate) type Counts = CounterSet<u64>;

impl<T> Index<Counter> for CounterSet<T> {
    type Output = T;

    #[inline(always)]
    fn index(&self, c: Counter) -> &T {
        &self.values[c as usize]
    }
}

impl<T> IndexMut<Counter> for CounterSet<T> {
    #[inline(always)]
    fn index_mut(&mut self, c: Counter) -> &mut T {
        &mut self.values[c as usize]
    }
}

impl<T> CounterSet<T> {
    /// A set whose value for each counter is `f(counter)`.
    pub(crate) fn from_fn(mut f: impl FnMut(Counter) -> T) -> Self {
        CounterSet { values: Counter::ALL.map(&mut f) }
    }
}

impl Counts {
    /// All zero; for `const` contexts.
    pub(crate) const ZERO: Counts = CounterSet { values: [0; 5] };

    /// Counts with the given counters set and the others zero.
    pub(crate) fn of(pairs: &[(Counter, u64)]) -> Counts {
        let mut c = Counts::default();
        for &(counter, v) in pairs {
            c[counter] = v;
        }
        c
    }

    pub(crate) fn wrapping_add(self, o: Counts) -> Counts {
        Counts::from_fn(|c| self[c].wrapping_add(o[c]))
    }

    pub(crate) fn wrapping_sub(self, o: Counts) -> Counts {
        Counts::from_fn(|c| self[c].wrapping_sub(o[c]))
    }

    /// Live bytes: allocated minus freed, as a signed figure (a thread that
    /// frees what others allocated goes negative).
    pub(crate) fn live(self) -> i64 {
        self[Counter::BytesAllocated].wrapping_sub(self[Counter::BytesFreed]) as i64
    }
}

impl CounterSet<AtomicU64> {
    /// All zero; `const`, for statics and thread-locals.
    pub(crate) const fn zero() -> Self {
        CounterSet { values: [const { AtomicU64::new(0) }; 5] }
    }

    /// Reads every counter (relaxed; not atomic across counters).
    pub(crate) fn load(&self) -> Counts {
        self.load_with(Ordering::Relaxed)
    }

    /// Reads every counter with `order`.
    pub(crate) fn load_with(&self, order: Ordering) -> Counts {
        Counts::from_fn(|c| self[c].load(order))
    }

    /// Adds `counts` with atomic read-modify-writes, for counters that
    /// several threads write.
    pub(crate) fn add(&self, counts: Counts) {
        self.add_with(counts, Ordering::Relaxed);
    }

    /// Adds `counts` with atomic read-modify-writes of ordering `order`.
    pub(crate) fn add_with(&self, counts: Counts, order: Ordering) {
        for c in Counter::ALL {
            if counts[c] != 0 {
                self[c].fetch_add(counts[c], order);
            }
        }
    }

    /// Sets every counter to zero.
    pub(crate) fn clear(&self) {
        for c in Counter::ALL {
            self[c].store(0, Ordering::Relaxed);
        }
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
    /// Highest live bytes seen while `PEAK` is set, since the last time a
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
const _: () = assert!((PEAK | FRESH | DETACHED | TRIP | SAMPLE | INTERNAL) as usize == MODES - 1);

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
            bump(&l.counts[Counter::Allocs], 1);
            bump(&l.counts[Counter::BytesAllocated], size as u64);
        } else if gate == 0 {
            // Laid out after the function's other code, so that the fast
            // path falls straight through, with no taken branch; the peak
            // path's last branch jumps back, so it costs no instruction.
            layout_apart();
            bump(&l.counts[Counter::Allocs], 1);
            bump(&l.counts[Counter::BytesAllocated], size as u64);
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
        // One compare of the gate with zero, as for `alloc`: negative is
        // the fast path, zero the sampling lane (inline: count, then one
        // bit test of the live table's filter, clear for nearly every
        // block), positive the cold path.
        let gate = l.free_gate.get();
        if gate < 0 {
            bump(&l.counts[Counter::Deallocs], 1);
            bump(&l.counts[Counter::BytesFreed], size as u64);
        } else if gate == 0 {
            layout_apart();
            bump(&l.counts[Counter::Deallocs], 1);
            bump(&l.counts[Counter::BytesFreed], size as u64);
            if sample::maybe_followed(ptr) {
                sample::on_free(ptr);
            }
        } else {
            on_dealloc_cold(l, ptr, size as u64);
        }
    })
}

/// Counts one successful `alloc` of `size` bytes in tagged mode; returns
/// the owner tag to write in the block ([`held`]).
#[inline(always)]
pub(crate) fn on_alloc_tagged(ptr: *mut u8, size: usize) -> held::Tag {
    on_alloc(ptr, size);
    with_local(|l| held::on_alloc(l, size as u64))
}

/// Counts one `dealloc` of `size` bytes of a block tagged `tag`.
#[inline(always)]
pub(crate) fn on_dealloc_tagged(ptr: *mut u8, size: usize, tag: held::Tag) {
    on_dealloc(ptr, size);
    with_local(|l| held::on_free(l, tag, size as u64));
}

/// Counts one successful `realloc` from `old` to `new` bytes of a block
/// tagged `tag`.
#[inline(always)]
pub(crate) fn on_realloc_tagged(new_ptr: *mut u8, old: usize, new: usize, tag: held::Tag) {
    on_realloc(new_ptr, old, new);
    with_local(|l| held::on_realloc(l, tag, old as u64, new as u64));
}

/// Before a `realloc` is forwarded: on a sampling thread, takes a sampled
/// old block out of the live table while its address is still the
/// caller's, as a free is counted before it is forwarded (once the inner
/// allocator has moved the block, it may hand the old address to another
/// thread, whose new sample would then be the one taken out). One compare
/// outside sampling.
#[inline(always)]
pub(crate) fn before_realloc(ptr: *mut u8) -> Option<sample::Followed> {
    with_local(|l| if l.mode.get() & SAMPLE != 0 { sample::unfollow_before_realloc(ptr) } else { None })
}

/// After a failed `realloc`: the old block is still live, and followed
/// again if [`before_realloc`] had taken it out.
#[inline(always)]
pub(crate) fn after_failed_realloc(ptr: *mut u8, followed: Option<sample::Followed>) {
    if let Some(f) = followed {
        sample::refollow(ptr, f);
    }
}

/// Counts one successful `realloc` from `old` to `new` bytes: a block
/// handed out that replaced one.
#[inline(always)]
pub(crate) fn on_realloc(new_ptr: *mut u8, old: usize, new: usize) {
    with_local(|l| {
        if l.alloc_gate.get() < 0 {
            bump(&l.counts[Counter::Allocs], 1);
            bump(&l.counts[Counter::Reallocs], 1);
            bump(&l.counts[Counter::BytesAllocated], new as u64);
            bump(&l.counts[Counter::BytesFreed], old as u64);
        } else {
            on_realloc_cold(l, new_ptr, old as u64, new as u64);
        }
    })
}

/// `alloc` on a thread that samples (the heap profiler's lane: count, then
/// one subtraction and a branch until a sample is due, as Go's sampler) or
/// needs the cold path. Out of line, so that the fast path stays small
/// enough to inline into `__rust_alloc`'s callers (inlining the lane too
/// made `__rust_alloc` a call, and cost the fast path); `cold`, so that the
/// compiler lays the fast path out as the straight line.
#[cold]
#[inline(never)]
fn on_alloc_other(l: &'static ThreadCounters, ptr: *mut u8, size: u64) {
    if l.alloc_gate.get() == SAMPLE_GATE {
        bump(&l.counts[Counter::Allocs], 1);
        bump(&l.counts[Counter::BytesAllocated], size);
        let left = l.until_next.get().wrapping_sub(size as i64);
        l.until_next.set(left);
        if left < 0 {
            sample::take(l, ptr, size);
        }
    } else {
        on_alloc_cold(l, ptr, size);
    }
}

#[cold]
#[inline(never)]
fn on_dealloc_cold(l: &'static ThreadCounters, ptr: *mut u8, size: u64) {
    let mode = settle(l);
    let counts = Counts::of(&[(Counter::Deallocs, 1), (Counter::BytesFreed, size)]);
    if mode & INTERNAL != 0 {
        registry::count_internal(counts);
        return;
    }
    if mode & DETACHED != 0 {
        registry::count_detached(counts);
        return;
    }
    bump(&l.counts[Counter::Deallocs], 1);
    bump(&l.counts[Counter::BytesFreed], size);
    if mode & TRIP != 0 {
        trip::on_free(size);
    }
    if mode & SAMPLE != 0 && sample::maybe_followed(ptr) {
        sample::on_free(ptr);
    }
}

#[cold]
#[inline(never)]
fn on_alloc_cold(l: &'static ThreadCounters, ptr: *mut u8, size: u64) {
    let mode = settle(l);
    let counts = Counts::of(&[(Counter::Allocs, 1), (Counter::BytesAllocated, size)]);
    if mode & INTERNAL != 0 {
        registry::count_internal(counts);
        return;
    }
    if mode & DETACHED != 0 {
        registry::count_detached(counts);
        return;
    }
    bump(&l.counts[Counter::Allocs], 1);
    let allocated = bump(&l.counts[Counter::BytesAllocated], size);
    if mode & PEAK != 0 {
        raise_high_water(l);
    }
    if mode & TRIP != 0 {
        check_trip(l, allocated, size, 0);
    }
    if mode & SAMPLE != 0 {
        sample::tick(l, ptr, size);
    }
}

/// Hands the thread's figures to the budgets' trip check: an allocation or
/// reallocation of `size` bytes that replaced `freed` bytes.
fn check_trip(l: &ThreadCounters, allocated: u64, size: u64, freed: u64) {
    let allocs = l.counts[Counter::Allocs].load(Ordering::Relaxed);
    trip::check(allocs, allocated, l.high_water.get(), size, freed);
}

#[cold]
#[inline(never)]
fn on_realloc_cold(l: &'static ThreadCounters, new_ptr: *mut u8, old: u64, new: u64) {
    let mode = settle(l);
    let counts = Counts::of(&[
        (Counter::Allocs, 1),
        (Counter::Reallocs, 1),
        (Counter::BytesAllocated, new),
        (Counter::BytesFreed, old),
    ]);
    if mode & INTERNAL != 0 {
        registry::count_internal(counts);
        return;
    }
    if mode & DETACHED != 0 {
        registry::count_detached(counts);
        return;
    }
    bump(&l.counts[Counter::Allocs], 1);
    bump(&l.counts[Counter::Reallocs], 1);
    let allocated = bump(&l.counts[Counter::BytesAllocated], new);
    bump(&l.counts[Counter::BytesFreed], old);
    if mode & PEAK != 0 {
        raise_high_water(l);
    }
    if mode & TRIP != 0 {
        check_trip(l, allocated, new, old);
    }
    if mode & SAMPLE != 0 {
        // A reallocation is a new block replacing the old one (the counting
        // rule): the old one left the live set before the call was
        // forwarded (`before_realloc`), the new one may be sampled.
        sample::tick(l, new_ptr, new);
    }
}

/// Registers the block if it is fresh, applies a process-wide sampling
/// change, and returns its mode.
#[inline]
fn settle(l: &'static ThreadCounters) -> u8 {
    if l.mode.get() & FRESH != 0 {
        registry::register(l);
    }
    if sample::epoch() != l.sample_epoch.get() {
        sample::reconcile(l);
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
    let (allocated, freed) = (&l.counts[Counter::BytesAllocated], &l.counts[Counter::BytesFreed]);
    // SAFETY: both pointers come from live atomics of this thread's block.
    // Only the owning thread (this one) writes them, so these reads cannot
    // race with a write; other threads only read them, and reads do not
    // race with reads.
    let live = unsafe { allocated.as_ptr().read_volatile().wrapping_sub(*freed.as_ptr()) } as i64;
    if live > l.high_water.get() {
        l.high_water.set(live);
    }
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
/// library's own ([`registry::internal_counts`]): in no thread, scope,
/// group, budget or heap profile of the program's. For memory the library
/// allocates for itself and frees itself (a group's shared counters, a
/// budget's trip, the tables of named groups and operations): every such
/// block must also be freed inside `internal`, or the thread that frees
/// it would count a free it never allocated.
pub(crate) fn internal<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the bit on every exit, a panic's too.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            set_mode_bit(INTERNAL, self.0);
        }
    }
    let _restore = Restore(mode_bit(INTERNAL));
    set_mode_bit(INTERNAL, true);
    f()
}

/// Whether the thread is running the library's own work ([`internal`]).
pub(crate) fn is_internal() -> bool {
    mode_bit(INTERNAL)
}

/// The current thread's serial number (registering it if needed): no two
/// threads of the process share one.
pub(crate) fn thread_serial() -> u64 {
    with_local(|l| {
        settle(l);
        l.serial.get()
    })
}

/// Whether `bit` (`PEAK`, `TRIP`, `SAMPLE` or `INTERNAL`) is set on this
/// thread.
pub(crate) fn mode_bit(bit: u8) -> bool {
    with_local(|l| l.mode.get() & bit != 0)
}

/// Sets or clears a mode bit of the current thread.
pub(crate) fn set_mode_bit(bit: u8, on: bool) {
    debug_assert!(bit & (PEAK | TRIP | SAMPLE | INTERNAL) == bit, "only guards' bits are set from outside");
    with_local(|l| {
        let m = l.mode.get();
        l.set_mode(if on { m | bit } else { m & !bit });
    })
}

/// Returns the high-water mark of live bytes reached since the last call
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
        let all = PEAK | FRESH | DETACHED | TRIP | SAMPLE | INTERNAL;
        for mode in 0..=all {
            if mode & !all != 0 {
                continue;
            }
            let gate = alloc_gate(mode);
            assert_eq!(gate < 0, mode == READY, "mode {mode:#b}");
            assert_eq!(gate == 0, mode == PEAK, "mode {mode:#b}");
            let free_fast = mode & (FRESH | DETACHED | TRIP | SAMPLE | INTERNAL) == 0;
            assert_eq!(free_gate(mode) < 0, free_fast, "mode {mode:#b}");
            assert_eq!(free_gate(mode) == 0, mode & !PEAK == SAMPLE, "mode {mode:#b}");
        }
        std::thread::spawn(|| {
            drop(black_box(vec![0u8; 8])); // registers
            with_local(|l| {
                for mode in [PEAK, PEAK | TRIP, SAMPLE, PEAK | SAMPLE, INTERNAL, READY] {
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

    #[test]
    fn the_counter_set_keeps_one_value_per_counter_in_the_vocabulary_order() {
        let c = Counts::of(&[(Counter::Deallocs, 3), (Counter::BytesFreed, 7)]);
        assert_eq!(c.values, [0, 0, 3, 0, 7]);
        assert_eq!(c.wrapping_add(c)[Counter::BytesFreed], 14);
        assert_eq!(Counts::of(&[(Counter::BytesAllocated, 10), (Counter::BytesFreed, 25)]).live(), -15);
        let shared = CounterSet::zero();
        shared.add(c);
        shared.add(c);
        assert_eq!(shared.load(), c.wrapping_add(c));
    }
}

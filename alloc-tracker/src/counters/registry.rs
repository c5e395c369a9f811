//! The registry: which threads' blocks exist, the counts of threads that
//! have exited, and process totals read from both.
//!
//! # Protocol
//!
//! - A thread's first event *registers* its block: it claims a slot in
//!   [`SLOTS`], a fixed static array of pointers, with one compare-and-swap,
//!   and arms the thread-exit hook. Registration never allocates through
//!   the global allocator.
//! - The exit hook ([`retire`]) clears the slot, adds the block's counts to
//!   [`RETIRED`] and leaves the block detached, so any later event of the
//!   thread (a free by a later thread-local destructor) is counted in
//!   `RETIRED` too. It then waits until no reader holds a pointer it took
//!   from `SLOTS` before the slot was cleared ([`READERS`]), since the
//!   block's memory goes away with the thread.
//! - A reader ([`process_counts`]) counts itself into `READERS`, sums
//!   `RETIRED` and every slot, and retries when an exit hook ran while it
//!   read (`EXITING`, `EXITS`): otherwise it could count an exiting thread
//!   twice (in its slot and in `RETIRED`) or not at all. `RETIRED` is added
//!   to with release and read with acquire ordering, so a reader that sees
//!   a retired thread's counts in it also sees that thread's slot cleared,
//!   on weakly ordered CPUs too.
//! - `fork`: the child has one thread, and a copy of the parent's memory in
//!   which another thread may have been reading or exiting, its count in
//!   `READERS` or `EXITING` never to be taken back. A `pthread_atfork`
//!   child handler ([`prepare_for_fork`]) resets both, folds the vanished
//!   threads' blocks into `RETIRED` and clears their slots, and clears the
//!   heap profile's half-written slots. The prepare handler waits for the
//!   crate's symbol resolution, the one lock the crate takes (named groups
//!   and operation names are claimed with compare-and-swaps).

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use super::{exit_hook, CounterSet, Counts, ThreadCounters, DETACHED, FRESH};

/// The most threads whose counters can be registered at the same time.
pub(crate) const MAX_THREADS: usize = 16_384;

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
static RETIRED: CounterSet<AtomicU64> = CounterSet::zero();

/// Counts an event of a detached thread in the shared totals.
pub(super) fn count_detached(counts: Counts) {
    RETIRED.add_with(counts, Ordering::Release);
}

/// The library's own allocator events ([`super::as_library`]): in no total of
/// the program's.
static LIBRARY: CounterSet<AtomicU64> = CounterSet::zero();

/// Counts an event the library made for itself.
pub(super) fn count_library(counts: Counts) {
    LIBRARY.add(counts);
}

/// What the library allocated and freed for itself, on every thread.
pub(crate) fn library_counts() -> Counts {
    LIBRARY.load()
}

/// Registers a fresh block: claims a slot and arms the exit hook, or, when
/// neither is possible, detaches the block and moves what it counted so far
/// to [`RETIRED`]. Never allocates through the global allocator.
pub(super) fn register(l: &'static ThreadCounters) {
    debug_assert!(l.mode.get() & FRESH != 0);
    static FIRST: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
    if FIRST.swap(false, Ordering::SeqCst) {
        super::sample::read_environment();
    }
    static SERIALS: AtomicU64 = AtomicU64::new(1);
    l.serial.set(SERIALS.fetch_add(1, Ordering::Relaxed));
    let me = ptr::from_ref(l).cast_mut();
    let claimed = SLOTS.iter().position(|slot| {
        slot.load(Ordering::Relaxed).is_null()
            && slot.compare_exchange(ptr::null_mut(), me, Ordering::SeqCst, Ordering::Relaxed).is_ok()
    });
    let mode = l.mode.get() & !FRESH;
    let Some(i) = claimed else {
        RETIRED.add_with(l.counts.load(), Ordering::Release);
        l.set_mode(mode | DETACHED);
        return;
    };
    // Registered before the exit hook is armed: arming may allocate (the
    // portable hook registers a thread-local destructor), and that
    // allocation must be counted in this block, not register it again.
    l.slot.set(i);
    SLOTS_USED.fetch_max(i + 1, Ordering::SeqCst);
    l.set_mode(mode);
    if !exit_hook::arm(me.cast(), retire_at_exit) {
        // No hook, so no exit: counted from now on in the shared totals.
        retire(l);
        l.set_mode(mode | DETACHED);
    }
}

/// The exit hook's function: `block` is the exiting thread's block, still
/// alive (key destructors run before the thread's TLS memory is released).
unsafe extern "C" fn retire_at_exit(block: *mut std::ffi::c_void) {
    // SAFETY: set by `register` to this thread's block (see above).
    retire(unsafe { &*block.cast::<ThreadCounters>() });
}

/// Called on the exiting thread, after the thread's other thread-local
/// destructors: moves the block's counts to `RETIRED` and leaves the block
/// detached, so that any later event on this thread is counted there too.
pub(super) fn retire(l: &ThreadCounters) {
    EXITING.fetch_add(1, Ordering::SeqCst);
    let slot = l.slot.replace(usize::MAX);
    if slot < MAX_THREADS {
        SLOTS[slot].store(ptr::null_mut(), Ordering::SeqCst);
    }
    RETIRED.add_with(l.counts.load(), Ordering::Release);
    l.set_mode(DETACHED);
    EXITS.fetch_add(1, Ordering::SeqCst);
    EXITING.fetch_sub(1, Ordering::SeqCst);
    // The block's memory goes away with the thread: wait for any reader that
    // took its pointer before the slot was cleared.
    while READERS.load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
}

/// Cumulative counts of every thread, running or exited.
pub(crate) fn process_counts() -> Counts {
    loop {
        READERS.fetch_add(1, Ordering::SeqCst);
        let exits = EXITS.load(Ordering::SeqCst);
        let mut total = RETIRED.load_with(Ordering::Acquire);
        let stable_start = EXITING.load(Ordering::SeqCst) == 0;
        if stable_start {
            for slot in &SLOTS[..SLOTS_USED.load(Ordering::SeqCst)] {
                let p = slot.load(Ordering::SeqCst);
                if !p.is_null() {
                    // SAFETY: a block stays alive while its slot points to it,
                    // and its exit hook waits for `READERS` to reach zero
                    // after clearing the slot; we counted ourselves in above.
                    total = total.wrapping_add(unsafe { &*p }.counts.load());
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

/// Arranges, once per process, for the registry to be repaired in the
/// child of a `fork` (see the module docs). Called from the public API's
/// first call, outside the allocator: `pthread_atfork` may allocate with
/// the C library's `malloc`.
pub(crate) fn prepare_for_fork() {
    #[cfg(unix)]
    {
        use std::sync::atomic::AtomicBool;
        static ARMED: AtomicBool = AtomicBool::new(false);
        if !ARMED.swap(true, Ordering::SeqCst) {
            // SAFETY: the handlers match the signature. The prepare handler
            // waits for this crate's symbol resolution to finish (a lock
            // taken outside the allocator, never across a fork); the others
            // are async-signal-safe: atomics only, no allocation.
            unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork_in_parent), Some(after_fork_in_child)) };
        }
    }
}

/// The `fork` prepare handler: no lock of this crate is held across the
/// fork (see [`crate::stack`]).
#[cfg(unix)]
extern "C" fn before_fork() {
    crate::stack::before_fork();
}

/// The `fork` parent handler.
#[cfg(unix)]
extern "C" fn after_fork_in_parent() {
    crate::stack::after_fork();
}

/// The `fork` child handler: only the forking thread exists now.
#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    crate::stack::after_fork();
    READERS.store(0, Ordering::SeqCst);
    EXITING.store(0, Ordering::SeqCst);
    let me = super::with_local(|l| ptr::from_ref(l).cast_mut());
    for slot in &SLOTS[..SLOTS_USED.load(Ordering::SeqCst)] {
        let p = slot.load(Ordering::SeqCst);
        if !p.is_null() && p != me {
            // SAFETY: the vanished thread's block is still mapped in the
            // child (a copy of the parent's memory), and no thread can
            // free it any more.
            RETIRED.add_with(unsafe { &*p }.counts.load(), Ordering::Release);
            slot.store(ptr::null_mut(), Ordering::SeqCst);
        }
    }
    super::sample::after_fork_in_child();
}

#[cfg(test)]
mod tests {
    use super::super::{tests::mode, thread_counts, with_local, Counter};
    use super::*;
    use std::hint::black_box;

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
            assert!(d[Counter::Allocs] >= 3 && d[Counter::Deallocs] >= 3 && d[Counter::BytesAllocated] >= 300, "{d:?}");
            assert_eq!(thread_counts(), Counts::default(), "a detached thread has no thread figures");
        })
        .join()
        .unwrap();
    }

    /// The portable exit hook retires its block when the thread exits: the
    /// block ends up detached and its counts reach the process totals. (A
    /// block of its own, so the platform's hook does not interfere.)
    #[test]
    fn the_thread_local_exit_hook_retires_its_block_at_thread_exit() {
        use super::super::{CounterSet, ThreadCounters, READY};
        use std::cell::Cell;
        const MARK: u64 = 1 << 40;
        struct Block(*mut ThreadCounters);
        // SAFETY: the block is only touched by the spawned thread's hook
        // until the join, and by this thread after it.
        unsafe impl Send for Block {}
        let block = Block(Box::into_raw(Box::new(ThreadCounters {
            mode: Cell::new(READY),
            alloc_gate: Cell::new(0),
            free_gate: Cell::new(0),
            counts: CounterSet::zero(),
            high_water: Cell::new(0),
            until_next: Cell::new(0),
            slot: Cell::new(usize::MAX),
            sample_epoch: Cell::new(0),
            serial: Cell::new(0),
            owner: Cell::new(super::super::held::Owner::NONE),
        })));
        // SAFETY: `block.0` is the live box created above.
        unsafe { &*block.0 }.counts[Counter::BytesAllocated].store(MARK, Ordering::Relaxed);
        let before = process_counts();
        let block = std::thread::spawn(move || {
            assert!(exit_hook::thread_local_drop::arm(block.0.cast(), retire_at_exit));
            block
        })
        .join()
        .unwrap();
        let after = process_counts();
        // SAFETY: the hook ran at the thread's exit; nothing else holds the
        // box, which is freed here.
        let block = unsafe { Box::from_raw(block.0) };
        assert_eq!(block.mode.get(), DETACHED);
        let grown = after[Counter::BytesAllocated].wrapping_sub(before[Counter::BytesAllocated]);
        assert!((MARK..MARK + (1 << 30)).contains(&grown), "retired exactly once: {grown}");
    }

    /// The handshake between exit hooks and readers: while threads register,
    /// count and exit, a reader's process totals never go backwards (a
    /// thread counted twice, or not at all, would show) and end exact.
    /// Under Miri this also checks the handshake for data races.
    #[test]
    fn process_totals_stay_monotonic_while_threads_exit() {
        let threads = if cfg!(miri) { 3 } else { 50 };
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let done = std::sync::Arc::clone(&done);
            std::thread::spawn(move || {
                let mut last = process_counts();
                while !done.load(Ordering::Relaxed) {
                    let now = process_counts();
                    for c in [Counter::Allocs, Counter::Deallocs, Counter::BytesAllocated] {
                        assert!(now[c] >= last[c], "{c:?} went back: {last:?} then {now:?}");
                    }
                    last = now;
                }
            })
        };
        let before = process_counts();
        for _ in 0..threads {
            std::thread::spawn(|| drop(black_box(Box::new([0u8; 1000])))).join().unwrap();
        }
        let grown = process_counts()[Counter::BytesAllocated] - before[Counter::BytesAllocated];
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        assert!(grown >= threads * 1000, "every exited thread's bytes are in the totals: {grown}");
    }
}

//! Groups: counters that follow one unit of work (a request, a job, a
//! benchmark's producers) into the threads and async tasks it uses. The
//! counting rules are on [`Group`]; the machinery is described here.
//!
//! # Windows and the thread's group stack
//!
//! Each thread keeps a small stack of the groups it is in
//! ([`MAX_OPEN_GROUPS`] entries, plain `Cell`s in a thread-local with no
//! destructor, so it can be used at any point of the thread's life, its
//! thread-local destructors included). Only the top entry, the thread's
//! *innermost* group, has an open *window*: the thread's counters when it
//! became the top, and a peak mark. When another group is entered on top,
//! the window ends (its difference is added to the group) and the entry
//! below is *suspended*; when the top entry leaves, the one below it gets a
//! new window. So every event is counted in exactly one group, the
//! innermost one, whatever the order in which entries are left:
//!
//! ```text
//!   enter(a)          enter(b)           leave(a)            leave(b)
//!   [a*]      ──>     [a, b*]     ──>    [b*]        ──>     []
//!   a's window        a suspended,       a removed from      b's window
//!   opens             b's window opens   under b: b keeps    ends
//!                                        its window
//! ```
//!
//! Entering the group already on top opens nothing: the entry's depth goes
//! up, and the window ends when the last guard of that entry is dropped,
//! in any order. A budget over a group is watched by a thread exactly while
//! that group is its top entry ([`trip::set_shared`] after every change of
//! the top), so no saved state can outlive the window it came from.
//!
//! # Per-thread accumulation
//!
//! A group's figures are kept per thread: each registry slot that worked in
//! the group has a [`Shard`] of counters, written only by the thread that
//! holds the slot (a plain add, no atomic read-modify-write and no cache
//! line shared with other threads), and summed when the group is read.
//! A thread that takes over an exited thread's slot carries on in its
//! shard. So ending a window writes nothing that another thread writes,
//! whatever the number of threads working in the group.
//!
//! # Memory
//!
//! A group's shared block, its shards and the budget state are the
//! library's own memory ([`counters::internal`]): no thread, scope, group or
//! profile of the program counts them.
//!
//! A [`Group`] handle is a reference count of its own (as `Arc`'s), but no
//! entry on a thread's stack holds one: entering and leaving writes nothing
//! that another thread writes. Instead each shard counts its thread's
//! entries of the group (`open`, a plain add by the owner), and when the
//! last handle goes, the memory is freed only if no shard has an entry
//! left. An entry whose guard was forgotten (`std::mem::forget`), or still
//! open when the group's last handle went (`Group::new("x").enter()`, the
//! handle a temporary), keeps its group's memory for the life of the
//! process, so no entry can ever point at freed memory, whatever safe code
//! does with its guards and handles. A handle keeps the pointer the group
//! was made with (handles from `clone`, `Group::current` and futures
//! alike), so whichever handle is the last frees the block with the
//! allocation's own provenance.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::{self, NonNull};
use std::sync::atomic::{fence, AtomicI64, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::counters::held::{self as ledger, HeldCounts, Ledger, Owner};
use crate::counters::trip::{self, SharedTrip};
use crate::counters::{self, CounterSet, Counts};
use crate::install::require_installed;
use crate::jemalloc::rounded_thread_allocated;
use crate::scope::marks;
use crate::stats::{AllocStats, OpStats};

/// The most distinct group entries open at once on one thread (re-entering
/// the innermost group takes none).
pub const MAX_OPEN_GROUPS: usize = 16;
/// The most distinct operation names a group keeps rows for
/// ([`Group::op_stats`]); further names are counted only in the
/// process-wide [`op_stats`](crate::op_stats).
pub const MAX_GROUP_OPS: usize = 16;

/// A unit of work's counters, shared by every thread and task that works
/// in it. A cheap handle: clones share the counters.
///
/// # What is counted where
///
/// - A thread is *in* a group between [`enter`](Group::enter) and the
///   guard's drop, during [`run`](Group::run) and [`wrap`](Group::wrap)'s
///   closure, and during each poll of an [`InGroup::in_group`] future.
///   Every allocation, reallocation and free it makes meanwhile counts in
///   the group, and still in the thread's own counters and in any
///   [`Scope`](crate::Scope) or [`measure`](crate::measure) open on the
///   thread.
/// - Groups nest exclusively: with group `b` entered while the thread is
///   in group `a`, the work counts in `b` only, its innermost group, until
///   it leaves `b` (as [`op`](crate::op) rows count each event once). So a
///   job that a thread pool runs while another job waits on the same
///   thread (rayon's `join` and `yield_now` run queued jobs that way)
///   counts in its own group when its closure is wrapped
///   (`group.run(|| ...)`), and not in the waiting job's. Work that is not
///   wrapped counts in the group the thread is in. Entering the innermost
///   group again counts nothing twice and takes no room: recursion through
///   [`run`](Group::run) may go to any depth. Guards may be dropped in any
///   order; the thread's innermost group is always the most recently
///   entered one whose guard is still alive.
/// - Frees count where they happen: a message allocated in a request's
///   group and freed by a consumer thread outside it counts as allocated in
///   the group and freed outside it, so a group's
///   [`live_bytes`](AllocStats::live_bytes) is what its own windows left
///   live, not what is still live of what it allocated.
/// - [`Group::stats`] has every window that has ended (every poll that
///   returned, every wrapped closure that returned, every guard dropped,
///   on any thread, including threads that have exited), plus the calling
///   thread's own open window. Windows still open on other threads are not
///   in it until they end.
/// - `peak_bytes` of a group is, per thread, the highest of what the
///   group's windows on that thread had left live before a window plus that
///   window's own peak, and the highest of those over the threads. Exact
///   when the group's work stays on one thread (a task that is not moved to
///   another worker, a job on one thread, a closure run in a group); a
///   lower bound when its windows on several threads hold memory at the
///   same time. [`Budget::check_group`](crate::Budget::check_group) tracks
///   the exact peak across threads while it runs.
///
/// # Cost
///
/// Outside any group, nothing. In a group, an allocation takes the peak
/// path of a scope (+12 instructions per allocate+free pair against +7
/// outside). Entering and leaving reads the thread's counters and adds
/// their difference to the thread's own shard of the group, writing
/// nothing that another thread writes: about 15 ns on the project's
/// machine, and about 12 ns over a bare tokio poll for
/// [`InGroup::in_group`], whether every task has a group of its own or all
/// share one (the repository's `docs/overhead.md`, "Groups per poll").
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// use allocscope::Group;
///
/// let job = Group::new("job");
/// let workers: Vec<_> = (0..4)
///     .map(|_| std::thread::spawn(job.wrap(|| std::hint::black_box(vec![0u8; 100]).len())))
///     .collect();
/// for w in workers {
///     w.join().unwrap();
/// }
/// let stats = job.stats();
/// assert_eq!((stats.allocs, stats.bytes_allocated), (4, 400));
/// ```
pub struct Group {
    shared: NonNull<GroupShared>,
}

// SAFETY: a handle only reads the shared block through `&GroupShared`,
// whose fields are atomics or fixed after creation, and its count is an
// atomic: handles may move to and be used from any thread.
unsafe impl Send for Group {}
// SAFETY: as above.
unsafe impl Sync for Group {}

/// What the handles of one group share.
struct GroupShared {
    /// Handles alive (as `Arc`'s strong count).
    refs: AtomicUsize,
    name: &'static str,
    /// A number no other group of the process has had: tells a group from
    /// an earlier one at the same address.
    serial: u64,
    /// The first slot's shard, inside the block: a group that one thread
    /// at a time works in (a task's, a request's) needs no other.
    first: Shard,
    /// The shards of the other slots that worked in the group: a list that
    /// only grows (one node per slot), freed with the group.
    shards: AtomicPtr<Shard>,
    /// Windows that ended on a thread after its exit hook had run (its slot
    /// may belong to another thread by then): counted here, with atomic
    /// adds.
    late: CounterSet<AtomicU64>,
    late_windows: AtomicU64,
    /// The rows of named operations, made when an operation first ends in
    /// the group (most groups have none: no room taken for them).
    ops: AtomicPtr<OpRows>,
    /// The shared trip of a budget checking this group, or null; holds one
    /// strong count of an `Arc<SharedTrip>` while set.
    budget: AtomicPtr<SharedTrip>,
    /// Threads between reading `budget` and taking their count of it: the
    /// budget's end waits for them (see [`watch_budget`]).
    budget_readers: AtomicUsize,
    /// With owner tags: the group's ledger, whose address its blocks carry
    /// (null without tags).
    ledger: *mut Ledger,
    /// The soft limit on held bytes ([`Group::with_held_limit`]);
    /// `u64::MAX` for none.
    held_limit: AtomicU64,
    /// The next group on the list of groups kept for their held blocks
    /// ([`keep_or_free`]).
    next_kept: AtomicPtr<GroupShared>,
}

/// One registry slot's figures in a group, written only by the thread that
/// holds the slot. Aligned so that no two threads' shards share a line.
#[repr(align(128))]
struct Shard {
    /// The slot, fixed once claimed; [`UNCLAIMED`] for a group's inline
    /// shard that no slot took yet.
    slot: AtomicUsize,
    /// The next shard of the group's list; fixed once the shard is pushed.
    next: *mut Shard,
    counts: CounterSet<AtomicU64>,
    /// Rounded bytes of the windows, and the windows that had none (not
    /// jemalloc).
    rounded: AtomicU64,
    unrounded_windows: AtomicU64,
    /// See [`Group`]: the highest live level of this slot's windows.
    peak: AtomicI64,
    /// Ended windows.
    windows: AtomicU64,
    /// The owning thread's entries of the group now (see the module docs'
    /// "Memory").
    open: AtomicU64,
    /// With owner tags: what the owning thread allocated in the group, as
    /// the allocator adds it ([`held`]).
    held: HeldCounts,
}

/// The slot of an inline shard no thread has claimed.
const UNCLAIMED: usize = usize::MAX;

/// A group's rows of named operations.
struct OpRows([OpRow; MAX_GROUP_OPS]);

/// A group's row for one named operation.
struct OpRow {
    /// The operation's name as the process-wide table interned it (one
    /// address per name), or null while the row is free.
    op: AtomicPtr<&'static str>,
    calls: AtomicU64,
    counts: CounterSet<AtomicU64>,
    peak_bytes: AtomicU64,
}

/// Adds `v` to a field only this thread writes: a relaxed load and store
/// (a plain add), where a read-modify-write would cost a locked
/// instruction.
fn add_owned(field: &AtomicU64, v: u64) {
    field.store(field.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed);
}

impl Shard {
    const fn new(slot: usize) -> Shard {
        Shard {
            slot: AtomicUsize::new(slot),
            next: ptr::null_mut(),
            counts: CounterSet::zero(),
            rounded: AtomicU64::new(0),
            unrounded_windows: AtomicU64::new(0),
            peak: AtomicI64::new(0),
            windows: AtomicU64::new(0),
            open: AtomicU64::new(0),
            held: HeldCounts::new(),
        }
    }

    /// Adds a window that ended (or was suspended) on the owning thread.
    #[inline]
    fn commit(&self, diff: Counts, peak_above: u64, rounded: Option<u64>) {
        // Read once, written back once: the owner is the only writer.
        let old = self.counts.load();
        for c in counters::Counter::ALL {
            self.counts[c].store(old[c].wrapping_add(diff[c]), Ordering::Relaxed);
        }
        let level = old.live().saturating_add(peak_above as i64);
        if level > self.peak.load(Ordering::Relaxed) {
            self.peak.store(level, Ordering::Relaxed);
        }
        match rounded {
            Some(r) => add_owned(&self.rounded, r),
            None => add_owned(&self.unrounded_windows, 1),
        }
    }
}

impl GroupShared {
    fn new(name: &'static str) -> GroupShared {
        static SERIALS: AtomicU64 = AtomicU64::new(1);
        GroupShared {
            refs: AtomicUsize::new(1),
            name,
            serial: SERIALS.fetch_add(1, Ordering::Relaxed),
            first: Shard::new(UNCLAIMED),
            shards: AtomicPtr::new(ptr::null_mut()),
            late: CounterSet::zero(),
            late_windows: AtomicU64::new(0),
            ops: AtomicPtr::new(ptr::null_mut()),
            budget: AtomicPtr::new(ptr::null_mut()),
            budget_readers: AtomicUsize::new(0),
            ledger: if ledger::tags_on() { Box::into_raw(Box::new(Ledger::new())) } else { ptr::null_mut() },
            held_limit: AtomicU64::new(u64::MAX),
            next_kept: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The group's shards (the inline one, claimed or not: an unclaimed
    /// shard holds only zeros).
    fn shards(&self) -> impl Iterator<Item = &Shard> {
        let mut p = self.shards.load(Ordering::Acquire);
        std::iter::once(&self.first).chain(std::iter::from_fn(move || {
            // SAFETY: shards are freed only with the group, which `self`
            // borrows; `next` is fixed before a shard is published.
            let shard = unsafe { p.as_ref() }?;
            p = shard.next;
            Some(shard)
        }))
    }

    /// The shard of registry slot `slot`: the inline one, claimed by the
    /// first slot that asks, or one made on the slot's first use. Only the
    /// thread holding the slot calls this for it, so no two shards of one
    /// slot are made.
    fn shard(&self, slot: usize) -> &Shard {
        if let Some(shard) = self.shards().find(|s| s.slot.load(Ordering::Relaxed) == slot) {
            return shard;
        }
        if self.first.slot.compare_exchange(UNCLAIMED, slot, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            return &self.first;
        }
        let new = crate::jemalloc::library_work(|| Box::into_raw(Box::new(Shard::new(slot))));
        let mut head = self.shards.load(Ordering::Acquire);
        loop {
            // SAFETY: `new` is ours until it is published below.
            unsafe { (*new).next = head };
            match self.shards.compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire) {
                // SAFETY: published; freed only with the group.
                Ok(_) => return unsafe { &*new },
                Err(now) => head = now,
            }
        }
    }
}

impl Drop for GroupShared {
    /// Runs inside [`counters::internal`] (see [`Group`]'s `Drop`).
    fn drop(&mut self) {
        let mut p = *self.shards.get_mut();
        while !p.is_null() {
            // SAFETY: every shard was made by `Box::into_raw` in `shard`,
            // and nothing else can reach it once the group is dropped.
            let shard = unsafe { Box::from_raw(p) };
            p = shard.next;
        }
        if !self.ledger.is_null() {
            // SAFETY: made by `Box::into_raw` in `new`; no block carries its
            // address any more (`keep_or_free`).
            drop(unsafe { Box::from_raw(self.ledger) });
        }
        let ops = *self.ops.get_mut();
        if !ops.is_null() {
            // SAFETY: made by `Box::into_raw` in `add_op`, reachable only
            // from the group.
            drop(unsafe { Box::from_raw(ops) });
        }
        let budget = *self.budget.get_mut();
        if !budget.is_null() {
            // SAFETY: a non-null `budget` holds one strong count, taken by
            // `Arc::into_raw` in `start_budget`.
            drop(unsafe { Arc::from_raw(budget) });
        }
    }
}

impl Group {
    fn shared(&self) -> &GroupShared {
        // SAFETY: a handle holds a count, so the block is alive.
        unsafe { self.shared.as_ref() }
    }

    /// A new handle of the group at `shared`, taking a count.
    ///
    /// # Safety
    ///
    /// `shared` must point to a group's block that is not freed: one that a
    /// handle or an entry on a thread's stack keeps.
    ///
    /// The handle keeps `shared` itself, never a pointer re-derived from a
    /// reference: whichever handle is the last, it frees the block through
    /// a pointer with the provenance of the `Box` it was made from.
    unsafe fn from_shared(shared: NonNull<GroupShared>) -> Group {
        // SAFETY: the caller's contract.
        let g = unsafe { shared.as_ref() };
        if g.refs.fetch_add(1, Ordering::Relaxed) > isize::MAX as usize {
            // As `Arc`: a count this high means handles were leaked in a
            // loop; wrapping would free the block under live handles.
            std::process::abort();
        }
        Group { shared }
    }
}

impl Clone for Group {
    fn clone(&self) -> Group {
        // SAFETY: this handle keeps the block alive.
        unsafe { Group::from_shared(self.shared) }
    }
}

impl Drop for Group {
    /// The last handle frees the group's memory (the library's own), unless
    /// an entry on some thread's stack or a block it holds still points at
    /// it (see the module docs).
    fn drop(&mut self) {
        let g = self.shared();
        if g.refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Every handle's and every owner's writes happen before this (as
        // `Arc`'s drop does).
        fence(Ordering::Acquire);
        keep_or_free(self.shared);
    }
}

/// Groups with no handle and no entry left that still hold tagged blocks:
/// freed by [`reclaim`] once they hold none.
static KEPT: AtomicPtr<GroupShared> = AtomicPtr::new(ptr::null_mut());

/// A group whose last handle went: freed now if nothing points at it any
/// more; kept for good if an entry does (a forgotten guard); kept on
/// [`KEPT`] while it holds tagged blocks, whose frees will still read its
/// ledger. No block can be tagged with it any more (that needs a window),
/// so what it holds only goes down.
fn keep_or_free(shared: NonNull<GroupShared>) {
    // SAFETY: no handle is left, but nothing has freed the block.
    let g = unsafe { shared.as_ref() };
    if g.shards().any(|s| s.open.load(Ordering::Relaxed) != 0) {
        return;
    }
    if held::holds_blocks(g) {
        let mut head = KEPT.load(Ordering::Acquire);
        loop {
            g.next_kept.store(head, Ordering::Relaxed);
            match KEPT.compare_exchange_weak(head, shared.as_ptr(), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }
    // SAFETY: no handle, no entry and no block points at the block; it was
    // made by `Box::into_raw` in `Group::new`.
    counters::internal(|| drop(unsafe { Box::from_raw(shared.as_ptr()) }));
}

/// Frees the kept groups that hold nothing any more (called outside the
/// allocator: when a group is made, when a snapshot is taken).
pub(crate) fn reclaim() {
    if KEPT.load(Ordering::Relaxed).is_null() {
        return;
    }
    let mut p = KEPT.swap(ptr::null_mut(), Ordering::AcqRel);
    while let Some(shared) = NonNull::new(p) {
        // SAFETY: a kept group is freed only here, by the one reclaimer
        // that took it off the list.
        p = unsafe { shared.as_ref() }.next_kept.load(Ordering::Relaxed);
        keep_or_free(shared);
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("name", &self.shared().name).field("stats", &self.stats()).finish()
    }
}

impl Group {
    /// A new group with no counts, the caller's alone: not listed in
    /// snapshots or metrics (see [`Group::listed`]). Its memory is the
    /// library's own: no thread, scope or group of the program counts it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let (g, made) = allocscope::measure(|| allocscope::Group::new("request"));
    /// assert_eq!((g.name(), g.stats().allocs, made.allocs), ("request", 0, 0));
    /// ```
    pub fn new(name: &'static str) -> Group {
        reclaim();
        let shared = crate::jemalloc::library_work(|| Box::into_raw(Box::new(GroupShared::new(name))));
        // SAFETY: just made, not null.
        Group { shared: unsafe { NonNull::new_unchecked(shared) } }
    }

    /// The process-wide group called `name`, created on first use: the
    /// same group for every caller (the tracing layer keys its groups this
    /// way), listed by [`Group::all_listed`], in
    /// [`serve::snapshot`](crate::serve::snapshot) and in the metrics. A
    /// group made by [`Group::new`] is the caller's alone, and listed
    /// nowhere. Lock-free: callable in a `fork`ed child whatever the
    /// parent's other threads were doing.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let a = allocscope::Group::listed("doc.route");
    /// a.run(|| std::hint::black_box(Box::new(1u8)));
    /// assert_eq!(allocscope::Group::listed("doc.route").stats().allocs, 1);
    /// ```
    pub fn listed(name: &'static str) -> Group {
        listed::get_or_insert(name)
    }

    /// Every group made by [`Group::listed`], in the order they were made.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// allocscope::Group::listed("doc.listed");
    /// assert!(allocscope::Group::all_listed().iter().any(|g| g.name() == "doc.listed"));
    /// ```
    pub fn all_listed() -> Vec<Group> {
        listed::all()
    }

    /// The name given to [`Group::new`].
    pub fn name(&self) -> &'static str {
        self.shared().name
    }

    /// Enters the group on this thread until the guard is dropped: this
    /// thread's allocations, reallocations and frees meanwhile count in the
    /// group (see [`Group`] for nesting). The guard stays on its thread;
    /// across `.await`s use [`InGroup::in_group`]. A guard that is
    /// forgotten (`std::mem::forget`) keeps the thread in the group, and
    /// the group alive, for the rest of the thread's life.
    ///
    /// # Panics
    ///
    /// If [`CountingAlloc`](crate::CountingAlloc) is not the global
    /// allocator, or the thread already has [`MAX_OPEN_GROUPS`] other
    /// entries open.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let g = allocscope::Group::new("doc.enter");
    /// {
    ///     let _in_group = g.enter();
    ///     std::hint::black_box(vec![0u8; 32]);
    /// }
    /// assert_eq!(g.stats().bytes_allocated, 32);
    /// ```
    #[track_caller]
    pub fn enter(&self) -> GroupGuard {
        self.enter_with(Fresh::No, None)
    }

    /// Enters the group: a window of its own when `fresh`, and with a
    /// future's shard cache when polled.
    #[track_caller]
    fn enter_with(&self, fresh: Fresh, cache: Option<&mut ShardCache>) -> GroupGuard {
        let slot = match counters::registered_slot() {
            Some(slot) if crate::install::is_installed() => slot,
            _ => {
                require_installed("allocscope::Group::enter");
                counters::thread_slot().expect("registered by require_installed")
            }
        };
        let id = push(self.shared, slot, fresh, cache).unwrap_or_else(|| too_many());
        GroupGuard { id, _not_send: PhantomData }
    }

    /// Runs `f` in the group on this thread.
    ///
    /// # Panics
    ///
    /// As [`enter`](Group::enter); and if `f` panics (the thread leaves the
    /// group first).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let g = allocscope::Group::new("doc.run");
    /// let n = g.run(|| std::hint::black_box(vec![1u8; 10]).len());
    /// assert_eq!((n, g.stats().allocs), (10, 1));
    /// ```
    #[track_caller]
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        let _in_group = self.enter_with(Fresh::No, None);
        f()
    }

    /// Runs `f` in a window of its own in the group, even when the group is
    /// already the thread's innermost one: for a budget, whose window must
    /// watch it.
    #[track_caller]
    pub(crate) fn run_in_new_window<T>(&self, f: impl FnOnce() -> T) -> T {
        let _in_group = self.enter_with(Fresh::Yes, None);
        f()
    }

    /// A closure that runs `f` in the group, on whichever thread calls it:
    /// for `std::thread::spawn(group.wrap(...))`, `std::thread::scope`, or
    /// a thread pool's jobs.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let g = allocscope::Group::new("doc.wrap");
    /// std::thread::spawn(g.wrap(|| drop(std::hint::black_box(Box::new([0u8; 64]))))).join().unwrap();
    /// assert_eq!((g.stats().allocs, g.stats().deallocs), (1, 1));
    /// ```
    pub fn wrap<T>(&self, f: impl FnOnce() -> T) -> impl FnOnce() -> T {
        let group = self.clone();
        move || group.run(f)
    }

    /// The group this thread is in now (its innermost one), for handing on
    /// to the threads and tasks it starts.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let g = allocscope::Group::new("doc.current");
    /// assert!(allocscope::Group::current().is_none());
    /// let here = g.run(|| allocscope::Group::current().unwrap());
    /// assert_eq!(here.name(), "doc.current");
    /// // Handed on to a thread (started outside the group: starting a
    /// // thread allocates too).
    /// std::thread::spawn(here.wrap(|| drop(std::hint::black_box(vec![0u8; 5])))).join().unwrap();
    /// assert_eq!(g.stats().bytes_allocated, 5);
    /// ```
    pub fn current() -> Option<Group> {
        let top = STACK.with(Stack::top)?;
        // SAFETY: an entry's group is never freed while the entry exists
        // (see the module docs); the entry keeps the pointer of the handle
        // that entered it, with that handle's provenance.
        Some(unsafe { Group::from_shared(NonNull::new_unchecked(top.group.cast_mut())) })
    }

    /// Exact totals of what the group's windows counted: every window that
    /// has ended, on any thread (exited ones included), and this thread's
    /// open one. See [`Group`] for `peak_bytes`.
    /// `rounded_bytes_allocated` is there when every window had it
    /// (jemalloc).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let g = allocscope::Group::new("doc.stats");
    /// let _in = g.enter();
    /// let v = std::hint::black_box(vec![0u8; 48]);
    /// assert_eq!(g.stats().bytes_allocated, 48, "the open window counts too");
    /// # drop(v);
    /// ```
    pub fn stats(&self) -> AllocStats {
        let g = self.shared();
        let mut counts = g.late.load();
        let (mut peak, mut rounded, mut unrounded) = (0i64, 0u64, g.late_windows.load(Ordering::Relaxed));
        for shard in g.shards() {
            counts = counts.wrapping_add(shard.counts.load());
            peak = peak.max(shard.peak.load(Ordering::Relaxed));
            rounded = rounded.wrapping_add(shard.rounded.load(Ordering::Relaxed));
            unrounded += shard.unrounded_windows.load(Ordering::Relaxed);
        }
        let mut rounded = (unrounded == 0).then_some(rounded);
        if let Some((open, shard)) = own_open_window(g) {
            counts = counts.wrapping_add(open.counts());
            let level = shard.counts.load().live().saturating_add(open.peak_bytes as i64);
            peak = peak.max(level);
            rounded = rounded.zip(open.rounded_bytes_allocated).map(|(a, b)| a.wrapping_add(b));
        }
        let mut s = AllocStats::from_counts(counts);
        s.peak_bytes = peak.max(0) as u64;
        s.rounded_bytes_allocated = rounded;
        s
    }

    /// Windows of the group that have ended: polls, wrapped closures,
    /// guards (re-entries of the innermost group are part of its window).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let g = allocscope::Group::new("doc.windows");
    /// g.run(|| ());
    /// g.run(|| ());
    /// assert_eq!(g.windows(), 2);
    /// ```
    pub fn windows(&self) -> u64 {
        let g = self.shared();
        g.shards().map(|s| s.windows.load(Ordering::Relaxed)).sum::<u64>() + g.late_windows.load(Ordering::Relaxed)
    }

    /// The group's rows of named operations ([`op`](crate::op) guards that
    /// ended while their thread was in this group as its innermost group),
    /// with the same attribution as [`op_stats`](crate::op_stats).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let g = allocscope::Group::new("doc.ops");
    /// g.run(|| {
    ///     for _ in 0..3 {
    ///         let _op = allocscope::op("doc.group_op");
    ///         std::hint::black_box(vec![0u8; 16]);
    ///     }
    /// });
    /// let row = g.op_stats().into_iter().find(|r| r.name == "doc.group_op").unwrap();
    /// assert_eq!((row.calls, row.per_call().bytes_allocated), (3, 16.0));
    /// ```
    pub fn op_stats(&self) -> Vec<OpStats> {
        let ops = self.shared().ops.load(Ordering::Acquire);
        // SAFETY: rows, once made, live as long as the group.
        let Some(ops) = (unsafe { ops.as_ref() }) else { return Vec::new() };
        ops.0
            .iter()
            .filter_map(|r| {
                // SAFETY: a claimed row holds an interned name, never freed.
                let name = *unsafe { r.op.load(Ordering::Acquire).as_ref() }?;
                let mut stats = AllocStats::from_counts(r.counts.load());
                stats.peak_bytes = r.peak_bytes.load(Ordering::Relaxed);
                Some(OpStats { name, calls: r.calls.load(Ordering::Relaxed), stats })
            })
            .collect()
    }

    /// Starts checking a budget over this group: every window of the group
    /// that opens from now on watches `shared` while the group is its
    /// thread's innermost one.
    ///
    /// # Panics
    ///
    /// If another budget checks the group already.
    #[track_caller]
    pub(crate) fn start_budget(&self, shared: &Arc<SharedTrip>) {
        let raw = Arc::into_raw(Arc::clone(shared)).cast_mut();
        if self.shared().budget.compare_exchange(ptr::null_mut(), raw, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            // SAFETY: `raw` was made just above and not handed out.
            drop(unsafe { Arc::from_raw(raw) });
            panic!("allocscope: a budget already checks group {:?}; budgets over one group cannot nest", self.name());
        }
    }

    /// Ends the budget check started by [`start_budget`](Group::start_budget):
    /// windows that open from now on no longer watch it (those open now go
    /// on watching it until they end, holding a count of it).
    pub(crate) fn end_budget(&self) {
        let g = self.shared();
        let raw = g.budget.swap(ptr::null_mut(), Ordering::SeqCst);
        // A window between reading the pointer and taking its count
        // finishes first (see `watch_budget`).
        while g.budget_readers.load(Ordering::SeqCst) != 0 {
            std::hint::spin_loop();
        }
        if !raw.is_null() {
            // SAFETY: set by `start_budget` from `Arc::into_raw`.
            counters::internal(|| drop(unsafe { Arc::from_raw(raw) }));
        }
    }
}

#[cold]
#[track_caller]
fn too_many() -> ! {
    panic!("allocscope: more than {MAX_OPEN_GROUPS} distinct group entries open on this thread")
}

/// Takes a strong count of the budget checking `g`, if any, for a window
/// that opens now; null when none. A budget's end waits for the windows
/// between their read of the pointer and their count (`budget_readers`),
/// so the count is never taken on a freed trip.
fn watch_budget(g: &GroupShared) -> *const SharedTrip {
    if g.budget.load(Ordering::Acquire).is_null() {
        return ptr::null();
    }
    g.budget_readers.fetch_add(1, Ordering::SeqCst);
    let budget = g.budget.load(Ordering::SeqCst);
    if !budget.is_null() {
        // SAFETY: the group's count keeps the trip alive: `end_budget`
        // clears the pointer, then waits for `budget_readers` to reach zero
        // before it drops that count.
        unsafe { Arc::increment_strong_count(budget) };
    }
    g.budget_readers.fetch_sub(1, Ordering::SeqCst);
    budget
}

/// Releases a window's count of a budget's trip (null: none).
fn unwatch_budget(budget: *const SharedTrip) {
    if !budget.is_null() {
        // SAFETY: the count taken by `watch_budget`.
        counters::internal(|| unsafe { Arc::decrement_strong_count(budget) });
    }
}

// ---------------------------------------------------------------------------
// The thread's group stack.

/// Whether entering the innermost group again opens a window of its own.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fresh {
    Yes,
    No,
}

/// One group the thread is in.
#[derive(Clone, Copy)]
struct Entry {
    group: *const GroupShared,
    shard: *const Shard,
    /// The budget's trip this entry watches while it is the top (holding a
    /// count of it), or null.
    budget: *const SharedTrip,
    id: u64,
    /// Guards of this entry alive (re-entries of the innermost group).
    depth: u32,
}

const NO_ENTRY: Entry = Entry { group: ptr::null(), shard: ptr::null(), budget: ptr::null(), id: 0, depth: 0 };

/// A (group serial, shard) the thread found last: serials are never
/// reused, so a matching serial is that group's shard.
type CacheLine = (u64, *const Shard);
const CACHE_LINES: usize = 8;

struct Stack {
    entries: [Cell<Entry>; MAX_OPEN_GROUPS],
    len: Cell<usize>,
    next_id: Cell<u64>,
    /// The top entry's window: the thread's counters when it opened, its
    /// rounded bytes then, and its peak mark ([`marks`]).
    start: Cell<Counts>,
    rounded_start: Cell<Option<u64>>,
    mark: Cell<usize>,
    /// Shards this thread used recently, by group address.
    cache: [Cell<CacheLine>; CACHE_LINES],
}

thread_local! {
    // Const-initialised, no destructor: usable in the thread's other
    // thread-local destructors (a guard kept in a thread-local).
    static STACK: Stack = const {
        Stack {
            entries: [const { Cell::new(NO_ENTRY) }; MAX_OPEN_GROUPS],
            len: Cell::new(0),
            next_id: Cell::new(1),
            start: Cell::new(Counts::ZERO),
            rounded_start: Cell::new(None),
            mark: Cell::new(usize::MAX),
            cache: [const { Cell::new((0, ptr::null())) }; CACHE_LINES],
        }
    };
}

/// A [`Grouped`] future's shard for the thread that polled it last: its
/// registry slot plus one (0 none), and the shard (a pointer, not an
/// address kept as an integer, so that Miri checks every use of it).
#[derive(Clone, Copy, Debug)]
struct ShardCache {
    slot: usize,
    shard: *const Shard,
}

impl Default for ShardCache {
    fn default() -> ShardCache {
        ShardCache { slot: 0, shard: ptr::null() }
    }
}

// SAFETY: the pointer is only read on the thread that polls the future,
// and only when `slot` says that thread found it (a shard is shared state
// made of atomics, alive as long as its group, which the future's handle
// keeps); moving the cache to another thread moves nothing it points to.
unsafe impl Send for ShardCache {}
// SAFETY: `&ShardCache` gives no access to the shard (it is read through
// `&mut` only, in `shard_for`).
unsafe impl Sync for ShardCache {}

impl Stack {
    fn top(&self) -> Option<Entry> {
        let len = self.len.get();
        (len > 0).then(|| self.entries[len - 1].get())
    }

    /// Ends the window of `from` (the entry that stops being the top), if
    /// any, and opens one for the new top when `open`, both at the same
    /// moment. The new window's peak mark is taken first: on a thread with
    /// every mark taken this panics before anything changed (and with the
    /// old mark still held, the thread's peak tracking never stops in
    /// between).
    #[inline(always)]
    fn switch(&self, from: Option<&Entry>, open: bool) {
        let now = counters::own_counts();
        let rounded_now = rounded_thread_allocated();
        let new_mark = open.then(|| marks::open(now.live()));
        if let Some(top) = from {
            let start = self.start.get();
            let high = marks::close(self.mark.get(), now.live());
            let peak_above = high.wrapping_sub(start.live()).max(0) as u64;
            let rounded = self.rounded_start.get().zip(rounded_now).map(|(a, b)| b.wrapping_sub(a));
            let diff = now.wrapping_sub(start);
            if counters::is_detached() {
                // SAFETY: the entry's group is alive (see `Group::current`).
                unsafe { &*top.group }.late.add(diff);
            } else {
                // SAFETY: the shard lives as long as its group.
                unsafe { &*top.shard }.commit(diff, peak_above, rounded);
            }
        }
        if let Some(mark) = new_mark {
            self.start.set(now);
            self.rounded_start.set(rounded_now);
            self.mark.set(mark);
        }
    }

    /// The calling thread's shard of `g`: from `cache`, from the thread's
    /// cache, or from the group's list.
    fn shard_for(&self, g: &GroupShared, slot: usize, cache: Option<&mut ShardCache>) -> *const Shard {
        if let Some(c) = &cache {
            if c.slot == slot + 1 {
                return c.shard;
            }
        }
        let line = &self.cache[g.serial as usize % CACHE_LINES];
        let (serial, cached) = line.get();
        let shard = if serial == g.serial {
            cached
        } else {
            let shard = ptr::from_ref(g.shard(slot));
            line.set((g.serial, shard));
            shard
        };
        if let Some(c) = cache {
            *c = ShardCache { slot: slot + 1, shard };
        }
        shard
    }
}

/// What the allocator needs of the thread's innermost group `g`, whose
/// shard for this thread is `shard`.
fn owner_of(g: *const GroupShared, shard: *const Shard) -> Owner {
    // SAFETY: an entry's group and shard are alive (see `Group::current`).
    let (g, shard) = unsafe { (&*g, &*shard) };
    Owner { tag: g.ledger, held: &shard.held, serial: g.serial }
}

/// Enters `g` on this thread, which holds registry slot `slot`; returns
/// the entry's id, or `None` when the stack is full. The caller checked
/// that the tracker is installed.
fn push(shared: NonNull<GroupShared>, slot: usize, fresh: Fresh, cache: Option<&mut ShardCache>) -> Option<u64> {
    // SAFETY: the caller's handle keeps the block alive.
    let g = unsafe { shared.as_ref() };
    STACK.with(|st| {
        let len = st.len.get();
        let budget = g.budget.load(Ordering::Acquire);
        let top = (len > 0).then(|| st.entries[len - 1].get());
        if let Some(mut top) = top {
            if ptr::eq(top.group, g) && fresh == Fresh::No && top.budget == budget {
                top.depth += 1;
                st.entries[len - 1].set(top);
                return Some(top.id);
            }
        }
        if len == MAX_OPEN_GROUPS {
            return None;
        }
        let shard = st.shard_for(g, slot, cache);
        // The window first: it is what may panic (every peak mark taken).
        // (Two calls, so that each is compiled for its case.)
        match &top {
            None => st.switch(None, true),
            Some(top) => st.switch(Some(top), true),
        }
        let budget = if budget.is_null() { budget } else { watch_budget(g) };
        // SAFETY: the shard lives as long as its group; only this thread
        // (its slot's holder) writes `open`.
        add_owned(&unsafe { &*shard }.open, 1);
        let id = st.next_id.get();
        st.next_id.set(id + 1);
        // The handle's own pointer, not one made from `g`: a handle that
        // `Group::current` builds from this entry may be the one that frees
        // the block.
        st.entries[len].set(Entry { group: shared.as_ptr(), shard, budget, id, depth: 1 });
        st.len.set(len + 1);
        counters::held::set_owner(owner_of(g, shard));
        if !(budget.is_null() && top.is_none_or(|t| t.budget.is_null())) {
            trip::set_shared(budget);
        }
        Some(id)
    })
}

/// Leaves the entry `id` on this thread (once its last guard is dropped):
/// ends its window if it is the top, and opens one for the entry below.
fn pop(id: u64) {
    let left = STACK.with(|st| {
        let len = st.len.get();
        let at = if len > 0 && st.entries[len - 1].get().id == id {
            len - 1
        } else {
            (0..len).rev().find(|&i| st.entries[i].get().id == id)?
        };
        let mut e = st.entries[at].get();
        if e.depth > 1 {
            e.depth -= 1;
            st.entries[at].set(e);
            return None;
        }
        let was_top = at + 1 == len;
        if was_top && len > 1 {
            st.switch(Some(&e), true);
        } else if was_top {
            st.switch(Some(&e), false);
        }
        if counters::is_detached() {
            // The slot may be another thread's by now, whose plain writes
            // to the shard an atomic decrement can only lose (the count then
            // stays too high: the group's memory is kept, never freed
            // early); its windows are counted apart.
            // SAFETY: the entry's group is alive (see `Group::current`).
            unsafe { &*e.group }.late_windows.fetch_add(1, Ordering::Relaxed);
            // SAFETY: the shard lives as long as its group.
            unsafe { &*e.shard }.open.fetch_sub(1, Ordering::Relaxed);
        } else {
            // SAFETY: the shard lives as long as its group.
            let shard = unsafe { &*e.shard };
            add_owned(&shard.windows, 1);
            add_owned(&shard.open, u64::MAX); // - 1
        }
        if !was_top {
            for i in at..len - 1 {
                st.entries[i].set(st.entries[i + 1].get());
            }
        }
        st.len.set(len - 1);
        if was_top {
            let below = (len > 1).then(|| st.entries[len - 2].get());
            counters::held::set_owner(below.map_or(Owner::NONE, |b| owner_of(b.group, b.shard)));
            let below = below.map_or(ptr::null(), |b| b.budget);
            if !(e.budget.is_null() && below.is_null()) {
                trip::set_shared(below);
            }
        }
        Some(e)
    });
    // The budget's count is released once the thread no longer watches it.
    if let Some(e) = left {
        if !e.budget.is_null() {
            unwatch_budget(e.budget);
        }
    }
}

/// This thread's open window in `g`, as figures so far, with the thread's
/// shard of `g`: when `g` is the thread's innermost group.
fn own_open_window(g: &GroupShared) -> Option<(AllocStats, &Shard)> {
    STACK.with(|st| {
        let top = st.top().filter(|top| ptr::eq(top.group, g))?;
        let now = counters::own_counts();
        let start = st.start.get();
        let mut s = AllocStats::from_counts(now.wrapping_sub(start));
        s.peak_bytes = marks::peak(st.mark.get(), now.live()).wrapping_sub(start.live()).max(0) as u64;
        s.rounded_bytes_allocated =
            st.rounded_start.get().zip(rounded_thread_allocated()).map(|(a, b)| b.wrapping_sub(a));
        // SAFETY: the shard lives as long as `g`, which the caller borrows.
        Some((s, unsafe { &*top.shard }))
    })
}

/// Called when an `op` guard ends: adds its figures to the row of the
/// innermost group this thread is in, if any. `name` is the operation's
/// name as the operation table interned it.
pub(crate) fn add_op(name: *mut &'static str, own: AllocStats, peak_bytes: u64) {
    let Some(top) = STACK.with(Stack::top) else { return };
    // SAFETY: the top entry's group is alive (see `Group::current`).
    let g = unsafe { &*top.group };
    let mut rows = g.ops.load(Ordering::Acquire);
    if rows.is_null() {
        let new = crate::jemalloc::library_work(|| {
            Box::into_raw(Box::new(OpRows(
                [const {
                    OpRow {
                        op: AtomicPtr::new(ptr::null_mut()),
                        calls: AtomicU64::new(0),
                        counts: CounterSet::zero(),
                        peak_bytes: AtomicU64::new(0),
                    }
                }; MAX_GROUP_OPS],
            )))
        });
        rows = match g.ops.compare_exchange(ptr::null_mut(), new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => new,
            Err(theirs) => {
                // SAFETY: made just above, never published.
                counters::internal(|| drop(unsafe { Box::from_raw(new) }));
                theirs
            }
        };
    }
    // SAFETY: rows, once made, live as long as the group.
    let row = unsafe { &*rows }.0.iter().find(|r| {
        let cur = r.op.load(Ordering::Acquire);
        cur == name
            || (cur.is_null()
                && r.op
                    .compare_exchange(ptr::null_mut(), name, Ordering::AcqRel, Ordering::Acquire)
                    .map_or_else(|seen| seen == name, |_| true))
    });
    if let Some(row) = row {
        row.calls.fetch_add(1, Ordering::Relaxed);
        row.counts.add(own.counts());
        row.peak_bytes.fetch_max(peak_bytes, Ordering::Relaxed);
    }
}

/// Enters a group until [`exit_raw`], without a guard: for the tracing
/// layer, whose span enter and exit are two calls. The entry holds a count
/// of the group. `None` when the thread has no room for another entry (the
/// span is then not counted).
#[cfg(feature = "tracing")]
pub(crate) fn enter_raw(group: &Group) -> Option<u64> {
    if !crate::install::is_installed() {
        return None;
    }
    push(group.shared, counters::thread_slot()?, Fresh::No, None)
}

/// Ends an entry made by [`enter_raw`].
#[cfg(feature = "tracing")]
pub(crate) fn exit_raw(id: u64) {
    pop(id);
}

/// A thread's entry in a group, open until dropped; see [`Group::enter`].
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let g = allocscope::Group::new("doc.guard");
/// let guard: allocscope::GroupGuard = g.enter();
/// drop(guard);
/// assert_eq!(g.windows(), 1);
/// ```
#[must_use = "the thread leaves the group when the guard is dropped"]
pub struct GroupGuard {
    id: u64,
    // Entries are thread-bound.
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for GroupGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupGuard").field("entry", &self.id).finish()
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        pop(self.id);
    }
}

/// Futures that count their work in a group, on whichever thread polls
/// them: `fut.in_group(&group)` enters the group around every `poll` (as
/// `tracing`'s `Instrument` enters a span).
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// use allocscope::{Group, InGroup};
/// use std::future::Future;
///
/// let request = Group::new("doc.request");
/// let fut = async { std::hint::black_box(vec![0u8; 256]).len() }.in_group(&request);
/// // Any executor (tokio, async-std, ...); a minimal one here.
/// struct Noop;
/// impl std::task::Wake for Noop {
///     fn wake(self: std::sync::Arc<Self>) {}
/// }
/// let waker = std::task::Waker::from(std::sync::Arc::new(Noop));
/// let mut fut = std::pin::pin!(fut);
/// let n = loop {
///     if let std::task::Poll::Ready(n) = fut.as_mut().poll(&mut std::task::Context::from_waker(&waker)) {
///         break n;
///     }
/// };
/// assert_eq!((n, request.stats().bytes_allocated), (256, 256));
/// ```
pub trait InGroup: Future + Sized {
    /// This future, entering `group` around every poll.
    fn in_group(self, group: &Group) -> Grouped<Self> {
        Grouped { future: self, group: group.clone(), cache: ShardCache::default() }
    }
}

impl<F: Future> InGroup for F {}

/// A future that enters its group around every poll; see [`InGroup`].
#[must_use = "futures do nothing unless polled"]
pub struct Grouped<F> {
    future: F,
    group: Group,
    cache: ShardCache,
}

impl<F> fmt::Debug for Grouped<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grouped").field("group", &self.group.name()).finish_non_exhaustive()
    }
}

impl<F: Future> Future for Grouped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of
        // `Grouped` (no method hands it out by value, and `Grouped` has no
        // `Drop` impl that could move it), so pinning `self` pins it. The
        // other fields are not pinned.
        let (future, group, cache) = unsafe {
            let this = self.get_unchecked_mut();
            (Pin::new_unchecked(&mut this.future), &this.group, &mut this.cache)
        };
        let _in_group = group.enter_with(Fresh::No, Some(cache));
        future.poll(cx)
    }
}

/// The process-wide list of [`Group::listed`] groups: a list that only
/// grows, pushed with a compare-and-swap, so that no lock can be left held
/// by a thread that vanished in a `fork`.
mod listed {
    use std::sync::atomic::{AtomicPtr, Ordering};

    use super::Group;
    use crate::counters;

    struct Node {
        group: Group,
        next: *const Node,
    }

    static HEAD: AtomicPtr<Node> = AtomicPtr::new(std::ptr::null_mut());

    fn nodes() -> impl Iterator<Item = &'static Node> {
        let mut p = HEAD.load(Ordering::Acquire).cast_const();
        std::iter::from_fn(move || {
            // SAFETY: nodes are never freed, and `next` is fixed before a
            // node is published.
            let node = unsafe { p.as_ref() }?;
            p = node.next;
            Some(node)
        })
    }

    pub(super) fn get_or_insert(name: &'static str) -> Group {
        let mut new: *mut Node = std::ptr::null_mut();
        loop {
            let head = HEAD.load(Ordering::Acquire);
            if let Some(node) = nodes().find(|n| n.group.name() == name) {
                if !new.is_null() {
                    // SAFETY: made below by `Box::into_raw`, never published.
                    counters::internal(|| drop(unsafe { Box::from_raw(new) }));
                }
                return node.group.clone();
            }
            if new.is_null() {
                new = crate::jemalloc::library_work(|| {
                    Box::into_raw(Box::new(Node { group: Group::new(name), next: std::ptr::null() }))
                });
            }
            // SAFETY: `new` is ours until published.
            unsafe { (*new).next = head };
            if HEAD.compare_exchange(head, new, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                // SAFETY: published; never freed.
                return unsafe { &*new }.group.clone();
            }
        }
    }

    /// Every listed group, oldest first.
    pub(super) fn all() -> Vec<Group> {
        let mut all: Vec<Group> = nodes().map(|n| n.group.clone()).collect();
        all.reverse();
        all
    }
}

#[cfg(test)]
mod handle_tests;
mod held;
#[cfg(test)]
mod tests;

pub use held::Held;

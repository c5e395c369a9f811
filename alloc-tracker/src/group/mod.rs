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
//! library's own memory ([`counters::as_library`]): no thread, scope, group or
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

use std::fmt;
use std::ptr::{self, NonNull};
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use crate::counters;
use crate::counters::trip::SharedTrip;
use crate::install::require_installed;
use crate::stats::{AllocStats, OpStats};

pub(crate) use shared::reclaim;
use shared::{keep_or_free, GroupShared};
pub(crate) use stack::add_op;
#[cfg(feature = "tracing")]
pub(crate) use stack::{enter_raw, exit_raw};
use stack::{own_open_window, push, Fresh, ShardCache, Stack, STACK};

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
///   [`live_bytes`](AllocStats::net_bytes) is what its own windows left
///   live, not what is still held of what it allocated.
/// - [`Group::stats`] has every window that has ended (every poll that
///   returned, every wrapped closure that returned, every guard dropped,
///   on any thread, including threads that have exited), plus the calling
///   thread's own open window. Windows still open on other threads are not
///   in it until they end.
/// - `peak_bytes` of a group is, per thread, the highest of what the
///   group's windows on that thread had left held before a window plus that
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
/// path of a scope. Entering and leaving reads the thread's counters and
/// adds their difference to the thread's own shard of the group, writing
/// nothing that another thread writes, whether every task has a group of
/// its own or all share one. The measured figures, per allocation and per
/// poll of [`InGroup::in_group`], are in the repository's
/// `docs/overhead.md` ("Where the instructions go", "Groups per poll").
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
        GroupGuard::new(id)
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
            counters::as_library(|| drop(unsafe { Arc::from_raw(raw) }));
        }
    }
}

#[cold]
#[track_caller]
fn too_many() -> ! {
    panic!("allocscope: more than {MAX_OPEN_GROUPS} distinct group entries open on this thread")
}

mod future;
#[cfg(test)]
mod handle_tests;
mod held;
mod listed;
#[cfg(test)]
mod model_tests;
mod shared;
mod stack;
#[cfg(test)]
mod tests;

pub use future::{Grouped, InGroup};
pub use held::Held;
pub use stack::GroupGuard;

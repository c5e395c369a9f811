//! Groups: counters that follow one unit of work (a request, a job, a
//! benchmark's producers) into the threads and async tasks it uses. The
//! design and the counting rules are on [`Group`].

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use crate::counters::trip::{self, SavedShared, SharedTrip};
use crate::counters::CounterSet;
use crate::install::require_installed;
use crate::op::{self, OpStats};
use crate::{AllocStats, Scope};

/// The most group windows open at once on one thread. (Each is a few
/// dozen bytes of thread-local memory in every thread of the program: at
/// 32, the larger static TLS block measured 1.3x raw jemalloc's wall time
/// on the two-thread loop of `docs/overhead.md` where the build before
/// measured 1.1x, its layout moving the counters' line against jemalloc's
/// own thread data.)
pub const MAX_OPEN_GROUPS: usize = 16;
/// The most distinct operation names a group keeps rows for
/// ([`Group::op_stats`]); further names are counted only in the
/// process-wide [`op_stats`](crate::op_stats).
pub const MAX_GROUP_OPS: usize = 16;

/// A unit of work's counters, shared by every thread and task that works
/// in it. A cheap handle: clones share the counters.
///
/// # How
///
/// A thread *enters* a group and later leaves it; in between it has a
/// *window* open in the group, which is a [`Scope`] of the thread: the
/// thread's counters at the start, and its peak tracking. When the window
/// ends, its difference (what the thread did in it) is added to the
/// group's shared counters with a few atomic adds. So the allocator path
/// does nothing for groups (an allocation in a group costs what one in a
/// [`measure`](crate::measure) costs: the peak path), other threads never
/// leak in, and a group's counters are written once per window, not per
/// allocation: a tokio task enters its group around every poll
/// ([`InGroup`]), a spawned thread around its closure ([`Group::wrap`]).
///
/// # What is counted where
///
/// - Every allocation, reallocation and free a thread makes while it is in
///   a group counts in the group, and still in the thread's own counters
///   and any scope open on the thread.
/// - Groups nest, inclusively: with group `b` entered inside group `a`, the
///   events count in both (unlike [`op`](crate::op) rows, which count each
///   event once). Entering a group the thread is already in opens no second
///   window: nothing counts twice.
/// - Frees count where they happen: a message allocated in a request's
///   group and freed by a consumer thread outside it counts as allocated in
///   the group and freed outside it, so a group's
///   [`net_bytes`](AllocStats::net_bytes) is what its own threads left
///   live, not what is still live of what it allocated. Following each
///   block back to its group would need a tag on every allocation (a
///   trailer, as Datadog's saluki does), which changes every allocation's
///   size class: the queue workload's four blocks of 64, 32, 16 and 8
///   bytes would take jemalloc's 80, 48, 32 and 16 with an 8-byte tag, 176
///   bytes for 120. The heap profile's live figures per call site answer
///   "what is still live" instead.
/// - [`Group::stats`] has every window that has ended (every poll that
///   returned, every wrapped closure that returned, every guard dropped,
///   on any thread, including threads that have exited), plus the calling
///   thread's own open window. Windows still open on other threads are not
///   in it until they end.
/// - `peak_bytes` of a group is the highest of, for each window as it
///   ended, the group's net bytes before it plus that window's own peak
///   above its start. Exact when the group's windows do not overlap in time
///   (a task, polled by one thread at a time; threads that take turns); a
///   lower bound when they overlap, as each window's peak is measured on
///   its own thread.
///
/// # Cost
///
/// Outside any group, nothing. In a group, an allocation takes the peak
/// path of a scope (+12 instructions per allocate+free pair against +7
/// outside); entering and leaving costs a scope's start and end plus a few
/// atomic adds to the group, about 80 ns here: that is what
/// [`InGroup::in_group`] adds to each poll (`docs/overhead.md`).
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
#[derive(Clone)]
pub struct Group(Arc<GroupShared>);

/// What the handles of one group share.
struct GroupShared {
    name: &'static str,
    /// What the ended windows counted.
    counts: CounterSet<AtomicU64>,
    /// Their rounded bytes, and the windows that had none (not jemalloc).
    rounded: AtomicU64,
    unrounded_windows: AtomicU64,
    /// See the module docs.
    peak: AtomicI64,
    /// Ended windows.
    windows: AtomicU64,
    ops: [OpRow; MAX_GROUP_OPS],
    /// The shared trip of a budget checking this group, or null; holds one
    /// strong count of an `Arc<SharedTrip>` while set.
    budget: AtomicPtr<SharedTrip>,
    /// With a budget: the highest peak (absolute net bytes) of the windows
    /// that ended while it ran.
    budget_peak: AtomicI64,
}

/// A group's row for one named operation.
struct OpRow {
    /// The operation's index in the process-wide table, plus one; 0 free.
    op: AtomicUsize,
    calls: AtomicU64,
    counts: CounterSet<AtomicU64>,
    peak_bytes: AtomicU64,
}

impl Drop for GroupShared {
    fn drop(&mut self) {
        let budget = *self.budget.get_mut();
        if !budget.is_null() {
            // SAFETY: a non-null `budget` holds one strong count, taken by
            // `Arc::into_raw` in `Budget::check_group`.
            drop(unsafe { Arc::from_raw(budget) });
        }
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("name", &self.0.name).field("stats", &self.stats()).finish()
    }
}

impl Group {
    /// A new group with no counts. Allocates its shared counters (one
    /// allocation, counted where it is made).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let g = allocscope::Group::new("request");
    /// assert_eq!((g.name(), g.stats().allocs), ("request", 0));
    /// ```
    pub fn new(name: &'static str) -> Group {
        Group(Arc::new(GroupShared {
            name,
            counts: CounterSet::zero(),
            rounded: AtomicU64::new(0),
            unrounded_windows: AtomicU64::new(0),
            peak: AtomicI64::new(0),
            windows: AtomicU64::new(0),
            ops: [const {
                OpRow {
                    op: AtomicUsize::new(0),
                    calls: AtomicU64::new(0),
                    counts: CounterSet::zero(),
                    peak_bytes: AtomicU64::new(0),
                }
            }; MAX_GROUP_OPS],
            budget: AtomicPtr::new(std::ptr::null_mut()),
            budget_peak: AtomicI64::new(i64::MIN),
        }))
    }

    /// The process-wide group called `name`, created on first use: the
    /// same group for every caller (the tracing layer keys its groups this
    /// way). Creating it allocates (counted where it is made); later calls
    /// take a lock and allocate nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let a = allocscope::Group::named("doc.route");
    /// a.run(|| std::hint::black_box(Box::new(1u8)));
    /// assert_eq!(allocscope::Group::named("doc.route").stats().allocs, 1);
    /// ```
    pub fn named(name: &'static str) -> Group {
        let mut named = NAMED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = named.iter().find(|g| g.0.name == name) {
            return g.clone();
        }
        let g = Group::new(name);
        named.push(g.clone());
        g
    }

    /// Every group made by [`Group::named`], in the order they were made.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// allocscope::Group::named("doc.listed");
    /// assert!(allocscope::Group::all_named().iter().any(|g| g.name() == "doc.listed"));
    /// ```
    pub fn all_named() -> Vec<Group> {
        NAMED.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The name given to [`Group::new`].
    pub fn name(&self) -> &'static str {
        self.0.name
    }

    /// Enters the group on this thread until the guard is dropped: this
    /// thread's allocations, reallocations and frees meanwhile count in the
    /// group (see [`Group`] for nesting). The guard stays on
    /// its thread; across `.await`s use [`InGroup::in_group`].
    ///
    /// # Panics
    ///
    /// If [`CountingAlloc`](crate::CountingAlloc) is not the global
    /// allocator, or the thread already has [`MAX_OPEN_GROUPS`] windows
    /// open.
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
        GroupGuard { id: enter(&self.0), _not_send: PhantomData }
    }

    /// Runs `f` in the group on this thread.
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
        let _in_group = self.enter();
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

    /// The group this thread is in now (the innermost one entered), for
    /// handing on to the threads and tasks it starts.
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
        WINDOWS.with(|w| {
            let w = w.borrow();
            let top = w.open[..w.len].last()?.as_ref()?;
            // SAFETY: the window holds a strong count of this group, so the
            // pointer is live; one more count is taken for the new handle.
            unsafe {
                Arc::increment_strong_count(top.group);
                Some(Group(Arc::from_raw(top.group)))
            }
        })
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
        let g = &self.0;
        let committed = g.counts.load();
        let mut s = AllocStats::from_counts(committed);
        s.peak_bytes = g.peak.load(Ordering::Relaxed).max(0) as u64;
        let rounded = (g.unrounded_windows.load(Ordering::Relaxed) == 0).then(|| g.rounded.load(Ordering::Relaxed));
        s.rounded_bytes_allocated = rounded;
        if let Some(open) = own_open_window(g) {
            let now = AllocStats::from_counts(committed.wrapping_add(open.counts()));
            let peak = (committed.live() + open.peak_bytes as i64).max(0) as u64;
            s = AllocStats { peak_bytes: s.peak_bytes.max(peak), ..now };
            s.rounded_bytes_allocated = rounded.zip(open.rounded_bytes_allocated).map(|(a, b)| a + b);
        }
        s
    }

    /// Windows of the group that have ended: polls, wrapped closures,
    /// guards.
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
        self.0.windows.load(Ordering::Relaxed)
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
        self.0
            .ops
            .iter()
            .filter_map(|r| {
                let index = r.op.load(Ordering::Acquire).checked_sub(1)?;
                let mut stats = AllocStats::from_counts(r.counts.load());
                stats.peak_bytes = r.peak_bytes.load(Ordering::Relaxed);
                Some(OpStats { name: op::name_of(index), calls: r.calls.load(Ordering::Relaxed), stats })
            })
            .collect()
    }

    /// Starts checking a budget over this group: every thread that enters
    /// it from now on counts its allocations against `shared`.
    pub(crate) fn start_budget(&self, shared: &Arc<SharedTrip>) {
        let raw = Arc::into_raw(Arc::clone(shared)).cast_mut();
        if self.0.budget.compare_exchange(std::ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Acquire).is_err() {
            // SAFETY: `raw` was made just above and not handed out.
            drop(unsafe { Arc::from_raw(raw) });
            panic!("allocscope: a budget already checks group {:?}; budgets over one group cannot nest", self.0.name);
        }
        self.0.budget_peak.store(i64::MIN, Ordering::Relaxed);
    }

    /// Ends the budget check; returns the highest absolute peak of the
    /// windows that ended meanwhile.
    pub(crate) fn end_budget(&self) -> Option<i64> {
        let raw = self.0.budget.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !raw.is_null() {
            // SAFETY: set by `start_budget` from `Arc::into_raw`.
            drop(unsafe { Arc::from_raw(raw) });
        }
        Some(self.0.budget_peak.load(Ordering::Relaxed)).filter(|&p| p != i64::MIN)
    }
}

/// An open group window on this thread.
struct Window {
    /// The group, holding one strong count.
    group: *const GroupShared,
    /// The thread's scope for this window; `None` when the thread was
    /// already in this group (a nested entry counts nothing twice).
    scope: Option<Scope>,
    /// The budget this window's thread watches, if the group had one.
    watching: Option<(SavedShared, *const SharedTrip)>,
    id: u64,
}

struct Windows {
    open: [Option<Window>; MAX_OPEN_GROUPS],
    len: usize,
    next_id: u64,
}

thread_local! {
    static WINDOWS: RefCell<Windows> =
        const { RefCell::new(Windows { open: [const { None }; MAX_OPEN_GROUPS], len: 0, next_id: 1 }) };
}

/// Groups made by [`Group::named`].
static NAMED: Mutex<Vec<Group>> = Mutex::new(Vec::new());

/// Opens a window of `group` on this thread; returns its id.
#[track_caller]
fn enter(group: &Arc<GroupShared>) -> u64 {
    require_installed("allocscope::Group::enter");
    let ptr = Arc::as_ptr(group);
    let already = WINDOWS.with(|w| {
        let w = w.borrow();
        assert!(w.len < MAX_OPEN_GROUPS, "allocscope: more than {MAX_OPEN_GROUPS} group windows open on this thread");
        w.open[..w.len].iter().flatten().any(|win| win.group == ptr && win.scope.is_some())
    });
    let (scope, watching) = if already {
        (None, None)
    } else {
        let budget = group.budget.load(Ordering::Acquire);
        let watching = (!budget.is_null()).then(|| {
            // SAFETY: a set `budget` holds a strong count; one more is
            // taken for this window, released when it ends.
            unsafe { Arc::increment_strong_count(budget) };
            (trip::watch_shared(budget), budget.cast_const())
        });
        (Some(Scope::start()), watching)
    };
    let group = Arc::into_raw(Arc::clone(group));
    WINDOWS.with(|w| {
        let mut w = w.borrow_mut();
        let id = w.next_id;
        w.next_id += 1;
        let len = w.len;
        w.open[len] = Some(Window { group, scope, watching, id });
        w.len += 1;
        id
    })
}

/// Ends window `id` on this thread (usually the innermost one) and adds
/// what it counted to its group.
fn leave(id: u64) {
    let window = WINDOWS.with(|w| {
        let mut w = w.borrow_mut();
        let len = w.len;
        let at = w.open[..len].iter().rposition(|win| win.as_ref().is_some_and(|win| win.id == id))?;
        let window = w.open[at].take();
        w.open[at..len].rotate_left(1);
        w.len -= 1;
        window
    });
    let Some(Window { group, scope, watching, .. }) = window else { return };
    if let Some((saved, budget)) = watching {
        trip::unwatch_shared(saved);
        // SAFETY: the count taken in `enter`.
        drop(unsafe { Arc::from_raw(budget) });
    }
    // SAFETY: the count taken in `enter`.
    let group = unsafe { Arc::from_raw(group) };
    if let Some(scope) = scope {
        group.commit(scope.finish());
    }
}

impl GroupShared {
    /// Adds an ended window's figures.
    fn commit(&self, s: AllocStats) {
        let candidate = self.counts.load().live().saturating_add(s.peak_bytes as i64);
        self.peak.fetch_max(candidate, Ordering::Relaxed);
        if !self.budget.load(Ordering::Acquire).is_null() {
            self.budget_peak.fetch_max(candidate, Ordering::Relaxed);
        }
        self.counts.add(s.counts());
        match s.rounded_bytes_allocated {
            Some(r) => self.rounded.fetch_add(r, Ordering::Relaxed),
            None => self.unrounded_windows.fetch_add(1, Ordering::Relaxed),
        };
        self.windows.fetch_add(1, Ordering::Relaxed);
    }
}

/// This thread's open window in `g`, as figures so far.
fn own_open_window(g: &GroupShared) -> Option<AllocStats> {
    WINDOWS.with(|w| {
        let w = w.borrow();
        w.open[..w.len]
            .iter()
            .flatten()
            .find(|win| std::ptr::eq(win.group, g))
            .and_then(|win| win.scope.as_ref().map(Scope::current))
    })
}

/// Called when an `op` guard ends: adds its figures to the row of the
/// innermost group this thread is in, if any.
pub(crate) fn add_op(op: usize, own: AllocStats, peak_bytes: u64) {
    let group = WINDOWS.with(|w| {
        let w = w.borrow();
        w.open[..w.len].last().and_then(|win| win.as_ref().map(|win| win.group))
    });
    let Some(group) = group else { return };
    // SAFETY: the innermost window holds a strong count of its group, and
    // it cannot end while this thread is here.
    let g = unsafe { &*group };
    let key = op + 1;
    let row = g.ops.iter().find(|r| {
        let cur = r.op.load(Ordering::Acquire);
        cur == key
            || (cur == 0
                && r.op
                    .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
                    .map_or_else(|seen| seen == key, |_| true))
    });
    if let Some(row) = row {
        row.calls.fetch_add(1, Ordering::Relaxed);
        row.counts.add(own.counts());
        row.peak_bytes.fetch_max(peak_bytes, Ordering::Relaxed);
    }
}

/// Enters a group until [`exit_raw`], without a guard: for the tracing
/// layer, whose span enter and exit are two calls. `None` when the thread
/// has no room for another window (the span is then not counted).
#[cfg(feature = "tracing")]
pub(crate) fn enter_raw(group: &Group) -> Option<u64> {
    let room = WINDOWS.with(|w| w.borrow().len < MAX_OPEN_GROUPS);
    room.then(|| enter(&group.0))
}

/// Ends a window opened by [`enter_raw`].
#[cfg(feature = "tracing")]
pub(crate) fn exit_raw(id: u64) {
    leave(id);
}

/// A thread's window in a group, open until dropped; see [`Group::enter`].
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
    // Windows are thread-bound.
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for GroupGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupGuard").field("window", &self.id).finish()
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        leave(self.id);
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
        Grouped { future: self, group: group.clone() }
    }
}

impl<F: Future> InGroup for F {}

/// A future that enters its group around every poll; see [`InGroup`].
#[must_use = "futures do nothing unless polled"]
pub struct Grouped<F> {
    future: F,
    group: Group,
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
        // `Drop` impl that could move it), so pinning `self` pins it.
        let (future, group) = unsafe {
            let this = self.get_unchecked_mut();
            (Pin::new_unchecked(&mut this.future), &this.group)
        };
        let _in_group = group.enter();
        future.poll(cx)
    }
}

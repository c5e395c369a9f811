//! Allocation budgets: [`Budget`], [`BudgetExceeded`] and
//! [`assert_no_alloc`].
//!
//! A budget runs a closure in a thread scope ([`measure`](crate::measure)),
//! so budget tests run in parallel with any other test without seeing each
//! other's allocations.

use std::fmt;
use std::panic::Location;

use std::future::Future;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use crate::counters::sample::{LeakTrace, Survivors};
use crate::counters::trip::{self, Recorded, Saved, SharedTrip, Thresholds};
use crate::counters::Counter;
use crate::group::{Group, InGroup};
use crate::scope::Scope;
use crate::stats::AllocStats;
use crate::symbols;

/// Frames of the first allocation over the limit shown in the message.
const SITE_FRAMES: usize = 8;

/// Said under a site that printing allocated: under `cargo test`, the
/// harness's output capture grows inside the budget, and allocscope cannot
/// tell those bytes from the code's in its exact counters.
const PRINTING_NOTE: &str = "note: this allocation was made by printing (`println!` and the like), not by the code \
     under test: under `cargo test` the test harness captures printed output in a buffer that grows inside the \
     budget (without capture, the standard library allocates its stdout buffer on first use). allocscope counts it \
     and cannot leave it out exactly: run the test with `--nocapture`, or print outside the budgeted code";

/// Keeps trip detection armed while the closure runs; disarms on drop too,
/// so a panicking closure leaves the thread as it found it.
struct Armed(Option<Saved>);

impl Armed {
    fn disarm(mut self) -> Recorded {
        trip::disarm(self.0.take().expect("armed until disarmed"))
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        if let Some(saved) = self.0.take() {
            trip::disarm(saved);
        }
    }
}

/// A budget checking a group: started with the group's figures at the
/// start, ended on every exit (a panicking body's too), so the group can
/// always be checked again.
struct GroupCheck<'g> {
    budget: Budget,
    group: &'g Group,
    /// The budget's state, the library's own memory: created and released
    /// as such.
    shared: ManuallyDrop<Arc<SharedTrip>>,
    before: AllocStats,
    ended: bool,
}

impl<'g> GroupCheck<'g> {
    #[track_caller]
    fn start(budget: &Budget, group: &'g Group) -> GroupCheck<'g> {
        budget.require_installed("check_group");
        let limit = |max: Option<u64>| max.unwrap_or(u64::MAX);
        let shared = crate::jemalloc::library_work(|| {
            Arc::new(SharedTrip::new(
                limit(budget.max_allocs),
                limit(budget.max_bytes_allocated),
                limit(budget.max_peak_bytes),
            ))
        });
        group.start_budget(&shared);
        let before = group.stats();
        GroupCheck { budget: *budget, group, shared: ManuallyDrop::new(shared), before, ended: false }
    }

    fn end(&mut self) {
        if !std::mem::replace(&mut self.ended, true) {
            self.group.end_budget();
        }
    }

    /// Ends the check and gives its verdict on the group's figures since
    /// the start.
    fn finish(mut self, location: &'static Location<'static>) -> Result<(), BudgetExceeded> {
        self.end();
        let mut stats = self.group.stats() - self.before;
        stats.peak_bytes = self.shared.peak_bytes();
        self.budget.verdict(stats, location, &self.shared.recorded(), None)
    }
}

impl Drop for GroupCheck<'_> {
    fn drop(&mut self) {
        self.end();
        // SAFETY: taken once, here.
        let shared = unsafe { ManuallyDrop::take(&mut self.shared) };
        crate::counters::internal(|| drop(shared));
    }
}

/// Limits on what a closure may allocate on the calling thread.
///
/// Every limit is inclusive (`max_allocs(2)` allows 2). A limit not set is
/// not checked.
///
/// [`check`](Budget::check) and [`assert`](Budget::assert) run a closure
/// once and return its value. A budget on what survives the closure
/// ([`max_leaked_bytes`](Budget::max_leaked_bytes)), or one that needs
/// warm-up runs first ([`warmups`](Budget::warmups)), runs a closure
/// several times and drops its value inside the measured run:
/// [`check_steady`](Budget::check_steady) and
/// [`assert_steady`](Budget::assert_steady).
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// use allocscope::Budget;
///
/// let id = Budget::new().max_allocs(1).max_bytes_allocated(64).assert(|| String::from("message-0001"));
/// assert_eq!(id, "message-0001");
///
/// let err = Budget::new().max_allocs(2).check(|| vec![vec![1u8]; 3]).unwrap_err();
/// assert!(err.to_string().starts_with("allocation budget exceeded: allocs 4 > 2"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[must_use = "a budget does nothing until `check` or `assert` runs a closure"]
pub struct Budget {
    max_allocs: Option<u64>,
    max_bytes_allocated: Option<u64>,
    max_peak_bytes: Option<u64>,
    max_leaked_bytes: Option<u64>,
    warmups: u32,
    /// What the user wrote, when it was not a method of `Budget` (the
    /// attribute, `assert_no_alloc`): for the message that refuses to run
    /// without the tracker.
    entry: Option<&'static str>,
}

impl Budget {
    /// A budget with no limits.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let unlimited = allocscope::Budget::new();
    /// assert!(unlimited.check(|| vec![0u8; 1 << 20]).is_ok());
    /// ```
    pub const fn new() -> Budget {
        Budget {
            max_allocs: None,
            max_bytes_allocated: None,
            max_peak_bytes: None,
            max_leaked_bytes: None,
            warmups: 0,
            entry: None,
        }
    }

    /// Names what the user wrote (`#[allocscope::budget]`) in the message
    /// that refuses to run without the tracker. For allocscope's own macro
    /// and functions; not part of the API.
    #[doc(hidden)]
    pub const fn __entry(mut self, name: &'static str) -> Budget {
        self.entry = Some(name);
        self
    }

    /// Refuses, at the user's call, when the tracker is not installed,
    /// naming what the user called: `method` of `Budget`, or the entry
    /// point that made the budget.
    #[track_caller]
    fn require_installed(&self, method: &str) {
        match self.entry {
            Some(entry) => crate::install::require_installed(entry),
            None => crate::install::require_installed(format_args!("allocscope::Budget::{method}")),
        }
    }

    /// At most `n` allocations ([`AllocStats::allocs`]: blocks handed out,
    /// reallocations included, as Go counts them).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let budget = allocscope::Budget::new().max_allocs(1);
    /// assert!(budget.check(|| vec![1u8]).is_ok());
    /// assert!(budget.check(|| (vec![1u8], vec![2u8])).is_err());
    /// ```
    pub const fn max_allocs(mut self, n: u64) -> Budget {
        self.max_allocs = Some(n);
        self
    }

    /// At most `n` bytes allocated ([`AllocStats::bytes_allocated`]:
    /// requested sizes, reallocations counted at their full new size).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let budget = allocscope::Budget::new().max_bytes_allocated(64);
    /// assert!(budget.check(|| vec![0u8; 64]).is_ok());
    /// assert!(budget.check(|| vec![0u8; 65]).is_err());
    /// ```
    pub const fn max_bytes_allocated(mut self, n: u64) -> Budget {
        self.max_bytes_allocated = Some(n);
        self
    }

    /// At most `n` live bytes above the starting level at any moment
    /// ([`AllocStats::peak_bytes`]). A `realloc` that moves its block holds
    /// the old and the new block for a moment inside the allocator; that
    /// moment is not in the peak, which counts the new size only.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let budget = allocscope::Budget::new().max_peak_bytes(100);
    /// // 80 + 80 bytes allocated, but never more than 80 live at once:
    /// assert!(budget.check(|| { drop(vec![0u8; 80]); drop(vec![0u8; 80]) }).is_ok());
    /// assert!(budget.check(|| (vec![0u8; 80], vec![0u8; 80])).is_err());
    /// ```
    pub const fn max_peak_bytes(mut self, n: u64) -> Budget {
        self.max_peak_bytes = Some(n);
        self
    }

    /// At most `n` bytes still live when the measured run ends: the
    /// calling thread's bytes allocated minus bytes freed over the run
    /// (exact). A failure names the largest allocation of the run that
    /// survived it, with its stack.
    ///
    /// Checked by [`check_steady`](Budget::check_steady) and
    /// [`assert_steady`](Budget::assert_steady), which drop the closure's
    /// value inside the measured run (`check` would return it, still
    /// live). Caches, pools and lazily initialised statics fill on a first
    /// run: give them [`warmups`](Budget::warmups). Memory the run
    /// allocates and another thread frees, and memory freed here that an
    /// earlier run allocated, count where the free happens: on the other
    /// thread, and against this run.
    ///
    /// While the measured run is traced, every allocation on the thread
    /// records its stack (about a microsecond each; budgets are for
    /// tests), and the thread's own heap-profile sampling pauses.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// use std::cell::RefCell;
    ///
    /// let log = RefCell::new(Vec::with_capacity(4));
    /// let leaky = allocscope::Budget::new().max_leaked_bytes(0);
    /// // Every run's buffer is dropped: nothing survives.
    /// assert!(leaky.check_steady(|| vec![0u8; 1024]).is_ok());
    /// // Every run keeps its 1 KiB buffer in `log`.
    /// let err = leaky.check_steady(|| log.borrow_mut().push(vec![0u8; 1024])).unwrap_err();
    /// assert_eq!(err.exceeded()[0].actual, 1024);
    /// ```
    pub const fn max_leaked_bytes(mut self, n: u64) -> Budget {
        self.max_leaked_bytes = Some(n);
        self
    }

    /// Runs the closure `k` times before the measured run, unmeasured, so
    /// that one-time work (a cache filled, a pool grown, a `OnceLock`
    /// initialised, a buffer's capacity reached) is not charged to it. For
    /// [`check_steady`](Budget::check_steady) and
    /// [`assert_steady`](Budget::assert_steady).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let mut buf: Vec<u8> = Vec::new();
    /// let mut fill = || {
    ///     buf.clear();
    ///     buf.extend_from_slice(&[7u8; 100]);
    /// };
    /// // The first run grows the buffer; the next ones reuse it.
    /// allocscope::Budget::new().max_allocs(0).warmups(1).assert_steady(&mut fill);
    /// ```
    pub const fn warmups(mut self, k: u32) -> Budget {
        self.warmups = k;
        self
    }

    /// Runs `f` and returns its value, or the exceeded limits (after `f` has
    /// run to completion; its value is dropped).
    ///
    /// # Errors
    ///
    /// [`BudgetExceeded`] naming every limit that was exceeded.
    ///
    /// # Panics
    ///
    /// If [`CountingAlloc`](crate::CountingAlloc) is not the global allocator
    /// (the budget would pass vacuously), and if `f` panics.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let budget = allocscope::Budget::new().max_bytes_allocated(256);
    /// assert!(budget.check(|| vec![0u8; 256]).is_ok());
    /// let err = budget.check(|| vec![0u8; 400]).unwrap_err();
    /// assert_eq!(err.exceeded()[0].actual, 400);
    /// ```
    #[track_caller]
    pub fn check<T>(&self, f: impl FnOnce() -> T) -> Result<T, BudgetExceeded> {
        let location = Location::caller();
        self.require_installed("check");
        self.refuse_steady_settings("check");
        let (value, stats, recorded) = self.measured(f);
        self.verdict(stats, location, &recorded, None).map(|()| value)
    }

    /// Panics if the budget has settings only the steady checks honour (a
    /// one-shot check would ignore them silently).
    #[track_caller]
    fn refuse_steady_settings(&self, method: &str) {
        assert!(
            self.max_leaked_bytes.is_none() && self.warmups == 0,
            "allocscope: Budget::{method} runs its closure once and returns its value, so it cannot check \
             `max_leaked_bytes` or run `warmups`: use `check_steady` or `assert_steady`"
        );
    }

    /// Runs `f` in a thread scope with trip detection armed.
    fn measured<T>(&self, f: impl FnOnce() -> T) -> (T, AllocStats, Recorded) {
        let scope = Scope::start();
        let start = scope.start_counts();
        let limit = |max: Option<u64>, from: u64| max.map_or(u64::MAX, |m| from.saturating_add(m));
        let armed = Armed(Some(trip::arm(Thresholds {
            allocs: limit(self.max_allocs, start[Counter::Allocs]),
            bytes: limit(self.max_bytes_allocated, start[Counter::BytesAllocated]),
            // A limit beyond i64::MAX bytes is no limit (as an i64 it would
            // wrap negative and trip at once).
            high_water: self
                .max_peak_bytes
                .map_or(i64::MAX, |m| start.live().saturating_add(i64::try_from(m).unwrap_or(i64::MAX))),
        })));
        let value = f();
        let recorded = armed.disarm();
        let stats = scope.finish();
        (value, stats, recorded)
    }

    /// Runs `f` [`warmups`](Budget::warmups) times unmeasured, then once
    /// measured, dropping its value inside the measured run, and checks
    /// every limit of the budget against that run, including
    /// [`max_leaked_bytes`](Budget::max_leaked_bytes).
    ///
    /// # Errors
    ///
    /// [`BudgetExceeded`] naming every limit that was exceeded, the first
    /// allocation over an allocation or byte limit, and, for leaked bytes,
    /// the largest allocation that survived the run.
    ///
    /// # Panics
    ///
    /// If the tracker is not installed, if `f` panics, and if it runs
    /// inside another leak budget's measured run.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// use std::collections::HashMap;
    ///
    /// let mut cache: HashMap<u32, String> = HashMap::new();
    /// let mut lookup = || cache.entry(7).or_insert_with(|| "seven".to_string()).len();
    /// // The first run fills the cache; later runs allocate nothing.
    /// let budget = allocscope::Budget::new().max_allocs(0).max_leaked_bytes(0);
    /// assert!(budget.check_steady(&mut lookup).is_err());
    /// assert!(budget.warmups(1).check_steady(&mut lookup).is_ok());
    /// ```
    #[track_caller]
    pub fn check_steady<T>(&self, mut f: impl FnMut() -> T) -> Result<(), BudgetExceeded> {
        let location = Location::caller();
        self.require_installed("check_steady");
        for _ in 0..self.warmups {
            drop(f());
        }
        let trace = self.max_leaked_bytes.map(|_| LeakTrace::start());
        let ((), stats, recorded) = self.measured(|| drop(f()));
        let survivors = trace.map(LeakTrace::finish);
        self.verdict(stats, location, &recorded, survivors)
    }

    /// [`check_steady`](Budget::check_steady), panicking with the
    /// [`BudgetExceeded`] message when a limit is exceeded.
    ///
    /// # Panics
    ///
    /// When a limit is exceeded; if the tracker is not installed; if `f`
    /// panics.
    ///
    /// # Examples
    ///
    /// ```should_panic
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let mut kept = Vec::new();
    /// // Panics: every run keeps 64 bytes.
    /// allocscope::Budget::new().max_leaked_bytes(0).warmups(2).assert_steady(|| kept.push(vec![0u8; 64]));
    /// ```
    #[track_caller]
    pub fn assert_steady<T>(&self, f: impl FnMut() -> T) {
        self.require_installed("assert_steady");
        if let Err(e) = self.check_steady(f) {
            panic!("{e}");
        }
    }

    /// Checks `stats` against the limits: the error names every exceeded
    /// limit, and the site recorded at the first crossing.
    fn verdict(
        &self,
        stats: AllocStats,
        location: &'static Location<'static>,
        recorded: &Recorded,
        survivors: Option<Survivors>,
    ) -> Result<(), BudgetExceeded> {
        let leaked = stats.bytes_allocated.saturating_sub(stats.bytes_freed);
        let limits = [
            (Limit::Allocs, self.max_allocs, stats.allocs),
            (Limit::BytesAllocated, self.max_bytes_allocated, stats.bytes_allocated),
            (Limit::PeakBytes, self.max_peak_bytes, stats.peak_bytes),
            (Limit::LeakedBytes, self.max_leaked_bytes, leaked),
        ];
        let exceeded: Vec<Exceeded> = limits
            .into_iter()
            .filter_map(|(limit, max, actual)| max.filter(|&m| actual > m).map(|max| Exceeded { limit, max, actual }))
            .collect();
        if exceeded.is_empty() {
            return Ok(());
        }
        let site = match recorded.frames() {
            [] => None,
            frames => Some(symbols::describe(frames, SITE_FRAMES).map(Box::from).map_err(Box::from)),
        };
        let printed = !recorded.frames().is_empty() && symbols::prints_into_capture(recorded.frames());
        let leaks_exceeded = exceeded.iter().any(|e| e.limit == Limit::LeakedBytes);
        let survivor = survivors.filter(|_| leaks_exceeded).map(|s| Survivor {
            count: s.count,
            lost: s.lost,
            printed: s.largest.as_ref().is_some_and(|(_, frames)| symbols::prints_into_capture(frames)),
            largest: s.largest.map(|(size, frames)| {
                (size, symbols::describe(&frames, SITE_FRAMES).map(Box::from).map_err(Box::from))
            }),
        });
        let details = Details { exceeded, stats, location, warmups: self.warmups, site, printed, survivor };
        Err(BudgetExceeded(Box::new(details)))
    }

    /// Runs `f` in `group` on this thread, and checks everything the group
    /// counted meanwhile, on any thread: `f`'s own work, and the windows of
    /// the group that ended before `f` returned (threads `f` started with
    /// [`Group::wrap`] and joined, tasks it ran in the group to
    /// completion). Called while the thread is in `group` already, it
    /// checks `f` all the same. As everywhere in groups, work in another
    /// group entered meanwhile counts in that group, not in this one.
    ///
    /// Every window of the group that opens while the check runs counts
    /// its allocations and frees against the budget (an atomic add each;
    /// budgets are for tests), so `peak_bytes` is exact across threads: the
    /// highest the group's live bytes rose above their level at the start.
    /// A failure names the first allocation over any limit, on whichever
    /// thread it happened.
    ///
    /// # Errors
    ///
    /// [`BudgetExceeded`] naming every limit that was exceeded.
    ///
    /// # Panics
    ///
    /// If the tracker is not installed, if another budget already checks
    /// `group`, and if `f` panics (the check ends first: the group can be
    /// checked again).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// use allocscope::{Budget, Group};
    ///
    /// let job = Group::new("doc.check_group");
    /// let err = Budget::new()
    ///     .max_allocs(3)
    ///     .check_group(&job, || {
    ///         for i in 0..4u64 {
    ///             drop(std::hint::black_box(Box::new(i)));
    ///         }
    ///     })
    ///     .unwrap_err();
    /// assert_eq!(err.exceeded()[0].actual, 4);
    /// ```
    #[track_caller]
    pub fn check_group<T>(&self, group: &Group, f: impl FnOnce() -> T) -> Result<T, BudgetExceeded> {
        let location = Location::caller();
        self.refuse_steady_settings("check_group");
        let check = GroupCheck::start(self, group);
        let value = group.run_in_new_window(f);
        check.finish(location).map(|()| value)
    }

    /// Runs the future `fut` in a group of its own, wherever it is polled
    /// (every poll enters the group, as [`InGroup`](crate::InGroup) does),
    /// and checks everything it counted. A failure names the first
    /// allocation over the allocation or byte limit, on whichever worker
    /// thread polled it then.
    ///
    /// # Errors
    ///
    /// [`BudgetExceeded`] naming every limit that was exceeded.
    ///
    /// # Panics
    ///
    /// If the tracker is not installed, and if `fut` panics.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// use std::future::Future;
    ///
    /// let check = allocscope::Budget::new().max_allocs(1).check_async(async { std::hint::black_box(vec![1u8; 8]) });
    /// // Any executor; a minimal one here.
    /// struct Noop;
    /// impl std::task::Wake for Noop {
    ///     fn wake(self: std::sync::Arc<Self>) {}
    /// }
    /// let waker = std::task::Waker::from(std::sync::Arc::new(Noop));
    /// let mut check = std::pin::pin!(check);
    /// let result = loop {
    ///     if let std::task::Poll::Ready(r) = check.as_mut().poll(&mut std::task::Context::from_waker(&waker)) {
    ///         break r;
    ///     }
    /// };
    /// assert_eq!(result.unwrap().len(), 8);
    /// ```
    #[track_caller]
    pub fn check_async<F: Future>(&self, fut: F) -> impl Future<Output = Result<F::Output, BudgetExceeded>> {
        let location = Location::caller();
        self.refuse_steady_settings("check_async");
        self.require_installed("check_async");
        let budget = *self;
        async move {
            let group = Group::new("allocscope::Budget::check_async");
            let check = GroupCheck::start(&budget, &group);
            let value = fut.in_group(&group).await;
            check.finish(location).map(|()| value)
        }
    }

    /// [`check_group`](Budget::check_group), returning `f`'s value and
    /// panicking with the [`BudgetExceeded`] message when a limit is
    /// exceeded.
    ///
    /// # Panics
    ///
    /// When a limit is exceeded, and as `check_group` does.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let job = allocscope::Group::new("doc.assert_group");
    /// let n = allocscope::Budget::new().max_allocs(1).assert_group(&job, || std::hint::black_box(vec![0u8; 64]).len());
    /// assert_eq!(n, 64);
    /// ```
    #[track_caller]
    pub fn assert_group<T>(&self, group: &Group, f: impl FnOnce() -> T) -> T {
        self.require_installed("assert_group");
        match self.check_group(group, f) {
            Ok(value) => value,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`check_async`](Budget::check_async), resolving to the future's
    /// output and panicking with the [`BudgetExceeded`] message when a limit
    /// is exceeded.
    ///
    /// # Panics
    ///
    /// When a limit is exceeded, and as `check_async` does. The panic
    /// happens where the future is polled, and Rust carries no caller's
    /// location into a future: `panicked at` names a line of allocscope's,
    /// and the message's `budget at` names this call's. (The
    /// `#[allocscope::budget]` attribute (feature `macros`) on an `async
    /// fn` panics at the attribute's line.)
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// use std::future::Future;
    ///
    /// let request = allocscope::Budget::new().max_allocs(1).assert_async(async { std::hint::black_box(vec![1u8; 8]) });
    /// // Any executor; a minimal one here.
    /// struct Noop;
    /// impl std::task::Wake for Noop {
    ///     fn wake(self: std::sync::Arc<Self>) {}
    /// }
    /// let waker = std::task::Waker::from(std::sync::Arc::new(Noop));
    /// let mut request = std::pin::pin!(request);
    /// let body = loop {
    ///     if let std::task::Poll::Ready(b) = request.as_mut().poll(&mut std::task::Context::from_waker(&waker)) {
    ///         break b;
    ///     }
    /// };
    /// assert_eq!(body.len(), 8);
    /// ```
    #[track_caller]
    pub fn assert_async<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
        self.require_installed("assert_async");
        let check = self.check_async(fut);
        async move {
            match check.await {
                Ok(value) => value,
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Runs `f` and returns its value; panics if it went over budget.
    ///
    /// # Panics
    ///
    /// With the [`BudgetExceeded`] message (every exceeded limit with its
    /// value, and this call's location) when a limit is exceeded; also if
    /// the tracker is not installed, and if `f` panics.
    ///
    /// # Examples
    ///
    /// ```should_panic
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// allocscope::Budget::new().max_allocs(2).max_bytes_allocated(256).assert(|| {
    ///     [vec![0u8; 100], vec![0u8; 100], vec![0u8; 200]]
    /// });
    /// ```
    #[track_caller]
    pub fn assert<T>(&self, f: impl FnOnce() -> T) -> T {
        self.require_installed("assert");
        match self.check(f) {
            Ok(value) => value,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Runs `f` and panics if it allocated or reallocated anything on the
/// calling thread (frees are allowed). The zero [`Budget`].
///
/// # Panics
///
/// If `f` allocated, with the allocation count and bytes in the message;
/// if the tracker is not installed; if `f` panics.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let mut buf = Vec::with_capacity(16);
/// allocscope::assert_no_alloc(|| buf.extend_from_slice(b"fits in capacity"));
/// ```
#[track_caller]
pub fn assert_no_alloc<T>(f: impl FnOnce() -> T) -> T {
    // Checked and panicked here, not through `Budget::assert`: one frame of
    // allocscope's between the panic and the caller's line in a backtrace.
    let budget = Budget::new().max_allocs(0).max_bytes_allocated(0).__entry("allocscope::assert_no_alloc");
    budget.require_installed("assert");
    match budget.check(f) {
        Ok(value) => value,
        Err(e) => panic!("{e}"),
    }
}

/// Runs `f` once to warm up, then once measured, and panics if anything
/// the measured run allocated on the calling thread is still live after it
/// (its value is dropped inside the run): `Budget::new().max_leaked_bytes(0)
/// .warmups(1).assert_steady(f)`.
///
/// # Panics
///
/// With the leaked bytes and the largest surviving allocation's stack in
/// the message; if the tracker is not installed; if `f` panics.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let mut seen = std::collections::HashSet::new();
/// // The first run inserts (the warm-up); the measured one finds it there.
/// allocscope::assert_no_leaks(|| seen.insert("key".to_string()));
/// ```
#[track_caller]
pub fn assert_no_leaks<T>(f: impl FnMut() -> T) {
    let budget = Budget::new().max_leaked_bytes(0).warmups(1).__entry("allocscope::assert_no_leaks");
    budget.require_installed("assert_steady");
    if let Err(e) = budget.check_steady(f) {
        panic!("{e}");
    }
}

/// Which limit of a [`Budget`] was exceeded.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// use allocscope::{Budget, Limit};
/// let err = Budget::new().max_bytes_allocated(8).check(|| vec![0u8; 9]).unwrap_err();
/// assert_eq!(err.exceeded()[0].limit, Limit::BytesAllocated);
/// assert_eq!(Limit::BytesAllocated.to_string(), "bytes_allocated");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`Budget::max_allocs`]: blocks handed out, reallocations included.
    Allocs,
    /// [`Budget::max_bytes_allocated`]: bytes allocated.
    BytesAllocated,
    /// [`Budget::max_peak_bytes`]: peak live bytes.
    PeakBytes,
    /// [`Budget::max_leaked_bytes`]: bytes still live after the run.
    LeakedBytes,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Allocs => "allocs",
            Limit::BytesAllocated => "bytes_allocated",
            Limit::PeakBytes => "peak_bytes",
            Limit::LeakedBytes => "leaked_bytes",
        })
    }
}

/// One exceeded limit: its kind, the limit and what was measured.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let err = allocscope::Budget::new().max_allocs(1).check(|| (vec![1u8], vec![2u8])).unwrap_err();
/// let e = err.exceeded()[0];
/// assert_eq!((e.max, e.actual), (1, 2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Exceeded {
    /// Which limit.
    pub limit: Limit,
    /// The limit that was set.
    pub max: u64,
    /// What the closure did.
    pub actual: u64,
}

/// The error of [`Budget::check`]: the exceeded limits, the full figures,
/// where the check was made, and where the first allocation over the limit
/// came from.
///
/// Its `Display` starts with one line, for example
/// `allocation budget exceeded: allocs 3 > 2, bytes_allocated 400 > 256 (budget at src/lib.rs:10:5; measured ...)`,
/// followed, when the stack could be resolved, by the first allocation over
/// the limit, innermost frame first:
///
/// ```text
/// first allocation over the limit:
///   at my_crate::parse_header (src/parse.rs:41)
///   at my_crate::parse (src/parse.rs:12)
/// ```
///
/// A leak budget ([`Budget::max_leaked_bytes`]) names the largest
/// allocation of the measured run that survived it instead:
///
/// ```text
/// allocation budget exceeded: leaked_bytes 1024 > 0 (budget at tests/cache.rs:9:5, after 1 warm-up run; measured ...)
/// largest surviving allocation (1024 bytes; 1 of 2 surviving blocks):
///   at my_crate::Cache::insert (src/cache.rs:30)
/// ```
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let err = allocscope::Budget::new().max_allocs(0).check(|| Box::new(1u32)).unwrap_err();
/// assert_eq!(err.stats().allocs, 1);
/// assert!(err.location().file().ends_with(".rs"));
/// match err.site() {
///     // Built with line tables (a test, a debug build): the first
///     // allocation over the limit, at this example's own line.
///     Some(site) => assert!(site.starts_with("  at ") && site.contains(".rs:"), "{site}"),
///     // Built without them (as rustdoc builds this example): the report
///     // says so, and how to add them.
///     None => assert!(err.to_string().contains("this build has no line tables"), "{err}"),
/// }
/// ```
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub struct BudgetExceeded(Box<Details>);

/// The report itself, as [`Display`](fmt::Display) writes it: `unwrap`,
/// `expect` and `?` in tests print what was exceeded, by how much and
/// where, rather than a dump of the fields.
impl fmt::Debug for BudgetExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What [`BudgetExceeded`] carries (boxed, so that `check`'s `Result` stays
/// one pointer wide).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Details {
    exceeded: Vec<Exceeded>,
    stats: AllocStats,
    location: &'static Location<'static>,
    /// Unmeasured runs before the measured one.
    warmups: u32,
    /// The first allocation over the limit: its frames, or why they could
    /// not be resolved to source lines.
    site: Option<Resolved>,
    /// Whether that allocation was made by printing ([`PRINTING_NOTE`]).
    printed: bool,
    /// When leaked bytes were exceeded: what survived the run.
    survivor: Option<Survivor>,
}

/// The allocations that survived a leak budget's measured run.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Survivor {
    count: u64,
    /// Allocations the trace had no room for.
    lost: u64,
    /// Whether the largest was allocated by printing ([`PRINTING_NOTE`]).
    printed: bool,
    /// The largest: its size, and its frames (or why they could not be
    /// resolved).
    largest: Option<(u64, Resolved)>,
}

/// A stack as the message shows it, or why it could not be resolved.
type Resolved = Result<Box<str>, Box<str>>;

impl fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        write!(f, "allocation budget exceeded: {} (budget at {}", list(&d.exceeded), d.location)?;
        match d.warmups {
            0 => {}
            1 => f.write_str(", after 1 warm-up run")?,
            k => write!(f, ", after {k} warm-up runs")?,
        }
        write!(f, "; measured {})", d.stats)?;
        match &d.site {
            Some(Ok(site)) => write!(f, "\nfirst allocation over the limit:\n{site}")?,
            Some(Err(why)) => write!(f, "\nfirst allocation over the limit: {why}")?,
            None => {}
        }
        if d.printed {
            write!(f, "\n{PRINTING_NOTE}")?;
        }
        if let Some(s) = &d.survivor {
            let blocks = if s.count == 1 { "block" } else { "blocks" };
            match &s.largest {
                Some((size, site)) => {
                    write!(f, "\nlargest surviving allocation ({size} bytes; 1 of {} surviving {blocks})", s.count)?;
                    match site {
                        Ok(site) => write!(f, ":\n{site}")?,
                        Err(why) => write!(f, ": {why}")?,
                    }
                }
                None => f.write_str(
                    "\nno allocation of the run survived it on this thread: the live bytes grew by frees it did \
                     not make here (memory freed on another thread, or a smaller reallocation)",
                )?,
            }
            if s.printed {
                write!(f, "\n{PRINTING_NOTE}")?;
            }
            if s.lost > 0 {
                write!(f, "\n({} allocations of the run could not be traced: the tables were full)", s.lost)?;
            }
        }
        Ok(())
    }
}

fn list(exceeded: &[Exceeded]) -> String {
    let parts: Vec<String> = exceeded.iter().map(|e| format!("{} {} > {}", e.limit, e.actual, e.max)).collect();
    parts.join(", ")
}

impl BudgetExceeded {
    /// The limits that were exceeded, in the order allocs, bytes, peak.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let err = allocscope::Budget::new().max_allocs(0).max_bytes_allocated(0).check(|| vec![1u8]).unwrap_err();
    /// assert_eq!(err.exceeded().len(), 2);
    /// ```
    pub fn exceeded(&self) -> &[Exceeded] {
        &self.0.exceeded
    }

    /// Everything the closure did.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let err = allocscope::Budget::new().max_bytes_allocated(10).check(|| vec![0u8; 11]).unwrap_err();
    /// assert_eq!(err.stats().bytes_allocated, 11);
    /// ```
    pub fn stats(&self) -> &AllocStats {
        &self.0.stats
    }

    /// Where `check`, `assert` or `assert_no_alloc` was called.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let err = allocscope::Budget::new().max_allocs(0).check(|| vec![1u8]).unwrap_err();
    /// assert_eq!(err.location().line(), line!() - 1);
    /// ```
    pub fn location(&self) -> &'static Location<'static> {
        self.0.location
    }

    /// The stack of the first allocation that went over a limit, one
    /// `  at FUNCTION (FILE:LINE)` line per frame of the code under test
    /// (the allocator machinery, the standard library and the runtime below
    /// the test or `main` are left out), innermost first; `None` when it
    /// could not be captured or resolved to source lines. A build without
    /// line tables (release builds by default) gets a note in the message
    /// instead, saying how to add them.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// #[inline(never)]
    /// fn make_buffer() -> Vec<u8> {
    ///     std::hint::black_box(vec![0u8; 32])
    /// }
    /// let err = allocscope::Budget::new().max_allocs(0).check(make_buffer).unwrap_err();
    /// match err.site() {
    ///     // With line tables: the innermost frame of the program's own code.
    ///     Some(site) => assert!(site.lines().next().unwrap().contains("make_buffer"), "{site}"),
    ///     // Without (as rustdoc builds this example): the report says so.
    ///     None => assert!(err.to_string().contains("this build has no line tables"), "{err}"),
    /// }
    /// ```
    pub fn site(&self) -> Option<&str> {
        self.0.site.as_ref()?.as_deref().ok()
    }

    /// When [`Budget::max_leaked_bytes`] was exceeded: the size of the
    /// largest allocation of the measured run that was still live after
    /// it, and its stack (as [`site`](BudgetExceeded::site) gives it, or
    /// `None` when it could not be resolved).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let mut kept = Vec::with_capacity(8);
    /// let err = allocscope::Budget::new()
    ///     .max_leaked_bytes(0)
    ///     .check_steady(|| kept.push(vec![0u8; 300]))
    ///     .unwrap_err();
    /// assert_eq!(err.largest_survivor().map(|(size, _)| size), Some(300));
    /// ```
    pub fn largest_survivor(&self) -> Option<(u64, Option<&str>)> {
        let (size, site) = self.0.survivor.as_ref()?.largest.as_ref()?;
        Some((*size, site.as_deref().ok()))
    }
}

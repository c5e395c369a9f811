//! Running a closure, a future or a group under a [`Budget`], and the
//! panicking forms of each check.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::sync::Arc;

use super::Budget;
use super::BudgetExceeded;
use crate::counters::sample::LeakTrace;
use crate::counters::trip::{self, Recorded, Saved, SharedTrip, Thresholds};
use crate::counters::Counter;
use crate::group::{Group, InGroup};
use crate::scope::Scope;
use crate::stats::AllocStats;

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
        crate::counters::as_library(|| drop(shared));
    }
}

impl Budget {
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
    /// assert_eq!(err.overruns()[0].actual, 400);
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
    /// highest the group's held bytes rose above their level at the start.
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
    /// assert_eq!(err.overruns()[0].actual, 4);
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
    let budget = Budget::new().max_allocs(0).max_bytes_allocated(0).called_as("allocscope::assert_no_alloc");
    budget.require_installed("assert");
    match budget.check(f) {
        Ok(value) => value,
        Err(e) => panic!("{e}"),
    }
}

/// Runs `f` once to warm up, then once measured, and panics if anything
/// the measured run allocated on the calling thread is still held after it
/// (its value is dropped inside the run): `Budget::new().max_leaked_bytes(0)
/// .warmups(1).assert_steady(f)`.
///
/// # Panics
///
/// With the leaked bytes and the largest allocation still held's stack in
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
    let budget = Budget::new().max_leaked_bytes(0).warmups(1).called_as("allocscope::assert_no_leaks");
    budget.require_installed("assert_steady");
    if let Err(e) = budget.check_steady(f) {
        panic!("{e}");
    }
}

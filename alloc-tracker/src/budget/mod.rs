//! Allocation budgets: [`Budget`], [`BudgetExceeded`] and
//! [`assert_no_alloc`].
//!
//! A budget runs a closure in a thread scope ([`measure`](crate::measure)),
//! so budget tests run in parallel with any other test without seeing each
//! other's allocations.

//!
//! The budget's spec and its limits are here; running and checking a
//! closure, a future or a group is in `check.rs`, the report of an
//! exceeded budget in `exceeded.rs`.

mod check;
mod exceeded;

pub use check::{assert_no_alloc, assert_no_leaks};
pub use exceeded::{BudgetExceeded, Limit, Overrun};

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

    /// Names what the user wrote (`#[allocscope::budget]`,
    /// `assert_no_alloc`) in the message that refuses to run without the
    /// tracker.
    pub(crate) const fn called_as(mut self, name: &'static str) -> Budget {
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

    /// At most `n` allocations ([`AllocStats::allocs`](crate::AllocStats::allocs): blocks handed out,
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

    /// At most `n` bytes allocated ([`AllocStats::bytes_allocated`](crate::AllocStats::bytes_allocated):
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

    /// At most `n` held bytes above the starting level at any moment
    /// ([`AllocStats::peak_bytes`](crate::AllocStats::peak_bytes)). A `realloc` that moves its block holds
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
    /// // 80 + 80 bytes allocated, but never more than 80 held at once:
    /// assert!(budget.check(|| { drop(vec![0u8; 80]); drop(vec![0u8; 80]) }).is_ok());
    /// assert!(budget.check(|| (vec![0u8; 80], vec![0u8; 80])).is_err());
    /// ```
    pub const fn max_peak_bytes(mut self, n: u64) -> Budget {
        self.max_peak_bytes = Some(n);
        self
    }

    /// At most `n` bytes still held when the measured run ends: the
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
    /// assert_eq!(err.overruns()[0].actual, 1024);
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
}

/// What the `#[allocscope::budget]` attribute expands to: not part of the
/// API (hidden from the docs; it may change in any release).
#[doc(hidden)]
pub mod macro_support {
    use super::Budget;

    /// The attribute's budget before its limits: one that names the
    /// attribute when it refuses to run without the tracker.
    pub const fn attribute_budget() -> Budget {
        Budget::new().called_as("#[allocscope::budget]")
    }
}

//! Named operations: [`op`] guards and the process-wide table that
//! [`op_stats`] reads.
//!
//! An operation guard is a [`Scope`] with a name. The allocator path knows
//! nothing of operations: the guard reads the thread's counters when it
//! starts and when it ends, and adds the difference to the operation's row.
//!
//! # Limits
//!
//! The table holds at most [`MAX_OPS`] names, in static memory, so that
//! starting and ending an operation never allocates (it would show up in an
//! enclosing [`measure`](crate::measure)); a name's first use stores it in
//! the library's own memory. Names are claimed with a compare-and-swap, not
//! a lock, so a `fork`ed child can use the table whatever the parent's other
//! threads were doing.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use crate::counters::{self, CounterSet, Counts};
use crate::scope::Scope;
use crate::stats::{AllocStats, OpStats};

/// The most distinct operation names the table holds.
pub const MAX_OPS: usize = 256;

struct Row {
    /// The row's name, once claimed: a `&'static str` in the library's own
    /// memory (a fat pointer cannot be stored in one atomic), never freed.
    name: AtomicPtr<&'static str>,
    calls: AtomicU64,
    counts: CounterSet<AtomicU64>,
    peak_bytes: AtomicU64,
}

static TABLE: [Row; MAX_OPS] = [const {
    Row {
        name: AtomicPtr::new(std::ptr::null_mut()),
        calls: AtomicU64::new(0),
        counts: CounterSet::zero(),
        peak_bytes: AtomicU64::new(0),
    }
}; MAX_OPS];

impl Row {
    /// The row's name, once claimed.
    fn name(&self) -> Option<&'static str> {
        // SAFETY: a non-null name points to a `&'static str` stored by
        // `row_index` before it was published, and never freed.
        unsafe { self.name.load(Ordering::Acquire).as_ref() }.copied()
    }
}

thread_local! {
    /// What the operations nested in the innermost open one have counted,
    /// inclusive, so far: subtracted from it when it ends.
    static CHILDREN: Cell<Counts> = const { Cell::new(Counts::ZERO) };
    /// How many operation guards are open on this thread.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// The row of `name`, claiming the first free row for it on its first use.
/// Rows are claimed in order, so a name is found before the first free
/// row, and two threads claiming rows for one name meet at the same row.
#[track_caller]
fn row_index(name: &'static str) -> usize {
    crate::rows::find_or_claim(
        TABLE.iter().map(|row| &row.name),
        // SAFETY: as in `Row::name`.
        |claimed| unsafe { *claimed } == name,
        || crate::jemalloc::library_work(|| Box::into_raw(Box::new(name))),
        // SAFETY: made just above by `Box::into_raw`, never published.
        |unused| counters::as_library(|| drop(unsafe { Box::from_raw(unused) })),
    )
    .unwrap_or_else(|| panic!("allocscope::op({name:?}): the operation table is full ({MAX_OPS} names)"))
}

/// Starts a named operation on the current thread; it lasts until the guard
/// is dropped, and its allocations go to `name`'s row of [`op_stats`].
///
/// Each call counts one call of the operation.
///
/// # Nesting
///
/// Each allocation is attributed to exactly one operation: the innermost one
/// open on its thread. An outer operation's row counts what it did outside
/// its inner operations ("self" figures, as a profiler would say), so the
/// rows add up to the total without double counting. `peak_bytes` of a row
/// is different: it is the highest peak of a single call, inner operations
/// included. Guards must end in the reverse order of their start (checked
/// in debug builds).
///
/// # Panics
///
/// If [`CountingAlloc`](crate::CountingAlloc) is not the global allocator,
/// or the table already holds [`MAX_OPS`] other names.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// for i in 0..10 {
///     let _op = allocscope::op("doc.format_id");
///     std::hint::black_box(format!("msg-{i}"));
/// }
/// let row = allocscope::op_stats().into_iter().find(|r| r.name == "doc.format_id").unwrap();
/// assert_eq!(row.calls, 10);
/// assert_eq!(row.stats.allocs, 10);
/// ```
#[track_caller]
pub fn op(name: &'static str) -> OpGuard {
    let row = row_index(name);
    let scope = Scope::start();
    let parent_children = CHILDREN.replace(Counts::default());
    DEPTH.set(DEPTH.get() + 1);
    OpGuard { row, depth: DEPTH.get(), parent_children, scope: Some(scope) }
}

/// An open named operation; see [`op`].
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// {
///     let _guard: allocscope::OpGuard = allocscope::op("doc.guard");
///     std::hint::black_box(vec![0u8; 4]);
/// } // the operation ends here
/// assert!(allocscope::op_stats().iter().any(|r| r.name == "doc.guard" && r.calls == 1));
/// ```
#[must_use = "the operation ends when the guard is dropped"]
pub struct OpGuard {
    row: usize,
    depth: u32,
    parent_children: Counts,
    scope: Option<Scope>,
}

impl fmt::Debug for OpGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpGuard").field("name", &TABLE[self.row].name()).finish_non_exhaustive()
    }
}

impl Drop for OpGuard {
    fn drop(&mut self) {
        let Some(scope) = self.scope.take() else { return };
        let inclusive = scope.finish();
        debug_assert_eq!(DEPTH.get(), self.depth, "allocscope::op guards must be dropped in reverse order");
        DEPTH.set(DEPTH.get() - 1);
        let own = inclusive.counts().wrapping_sub(CHILDREN.get());
        CHILDREN.set(self.parent_children.wrapping_add(inclusive.counts()));
        let row = &TABLE[self.row];
        row.calls.fetch_add(1, Ordering::Relaxed);
        row.counts.add(own);
        row.peak_bytes.fetch_max(inclusive.peak_bytes, Ordering::Relaxed);
        // The row's name, as interned: a group keys its rows by it.
        let name = TABLE[self.row].name.load(Ordering::Acquire);
        crate::group::add_op(name, AllocStats::from_counts(own), inclusive.peak_bytes);
    }
}

/// Every named operation's figures so far, in the order the names were first
/// used.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// drop(allocscope::op("doc.listed"));
/// assert!(allocscope::op_stats().iter().any(|r| r.name == "doc.listed" && r.calls == 1));
/// ```
pub fn op_stats() -> Vec<OpStats> {
    TABLE
        .iter()
        .map_while(|r| {
            let name = r.name()?;
            let mut stats = AllocStats::from_counts(r.counts.load());
            stats.peak_bytes = r.peak_bytes.load(Ordering::Relaxed);
            Some(OpStats { name, calls: r.calls.load(Ordering::Relaxed), stats })
        })
        .collect()
}

/// Clears every row (names stay, figures return to zero), for example
/// between a warm-up and the measured run.
///
/// Guards still open when this is called add their figures when they end.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// drop(allocscope::op("doc.reset"));
/// allocscope::reset_op_stats();
/// assert!(allocscope::op_stats().iter().all(|r| r.calls == 0));
/// ```
pub fn reset_op_stats() {
    for r in &TABLE {
        r.calls.store(0, Ordering::Relaxed);
        r.counts.clear();
        r.peak_bytes.store(0, Ordering::Relaxed);
    }
}

/// Every named operation as a table in Go's `-benchmem` style
/// ([`op_stats`]' rows, one per operation, columns
/// aligned): name, calls, `B/op`, `allocs/op`, and `rounded B/op` when the
/// allocator reports size classes. [`OpStats::table`] formats a chosen set
/// of rows.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// for _ in 0..3 {
///     let _op = allocscope::op("doc.op_table");
///     drop(std::hint::black_box(vec![0u8; 16]));
/// }
/// let table = allocscope::op_table();
/// let row = table.lines().find(|l| l.starts_with("doc.op_table ")).unwrap();
/// assert_eq!(row.split_whitespace().collect::<Vec<_>>(), ["doc.op_table", "3", "16", "1"]);
/// ```
pub fn op_table() -> String {
    OpStats::table(&op_stats())
}

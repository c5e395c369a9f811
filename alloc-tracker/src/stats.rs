//! [`AllocStats`]: the one vocabulary for allocation figures (the crate
//! docs' "Vocabulary" table), used alike by the Rust API, the JSON it
//! serialises to, budget messages, the metrics and the bench runner's
//! reports.

use std::fmt;
use std::ops::{Add, Sub};

use crate::counters::{Counter, Counts};

/// Allocation figures for a thread, a process, a scope or a named operation.
///
/// Field names are the keys of the JSON form (feature `serde`) and of the
/// bench runner's reports.
///
/// # Semantics
///
/// - A successful `alloc` or `alloc_zeroed` counts one `allocs` and adds the
///   requested size to `bytes_allocated`.
/// - A successful `realloc` hands out a block too: it counts one `allocs`
///   and one `reallocs`, and is treated as a new block of the new size
///   replacing the old one: the full new size is added to
///   `bytes_allocated` and the full old size to `bytes_freed`. This is the
///   rule of Go's `allocs/op` and `B/op`, of dhat's blocks, and of
///   jemalloc's `thread.allocated`, so the figures can be cross-checked.
/// - A `dealloc` counts one `deallocs` and adds the size to `bytes_freed`.
/// - A failed allocation or reallocation moves no counter.
///
/// # Examples
///
#[cfg_attr(feature = "jemalloc", doc = "```")]
#[cfg_attr(not(feature = "jemalloc"), doc = "```ignore")]
/// use allocscope::{CountingAlloc, Jemalloc};
///
/// #[global_allocator]
/// static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);
///
/// let (_, stats) = allocscope::measure(|| drop(std::hint::black_box(Box::new(7u64))));
/// assert_eq!((stats.allocs, stats.deallocs), (1, 1));
/// assert_eq!((stats.bytes_allocated, stats.bytes_freed), (8, 8));
/// assert_eq!(stats.net_bytes(), 0);
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct AllocStats {
    /// Blocks handed out: successful `alloc`, `alloc_zeroed` and `realloc`
    /// calls. Go's allocations (`allocs/op`).
    pub allocs: u64,
    /// `dealloc` calls.
    pub deallocs: u64,
    /// Of `allocs`, the successful `realloc` calls.
    pub reallocs: u64,
    /// Requested bytes of every allocation, plus the new size of every
    /// reallocation.
    pub bytes_allocated: u64,
    /// Bytes of every deallocation, plus the old size of every reallocation.
    pub bytes_freed: u64,
    /// The highest [`net_bytes`](AllocStats::net_bytes) reached inside
    /// the window these figures cover, on its thread or threads: one
    /// meaning, exact or a lower bound by window. Exact for a scope
    /// ([`measure`](crate::measure), [`Scope`](crate::Scope), an operation
    /// call), whose thread tracks its high-water mark. A lower bound
    /// otherwise, as only a scope watches every allocation: for a snapshot
    /// (the window is the thread's or the process's life so far), the held
    /// bytes now ([`thread_stats`](crate::thread_stats)) or the highest
    /// any reading has seen ([`process_stats`](crate::process_stats)); for
    /// a difference of two snapshots, the growth of the net bytes between
    /// them, clamped at zero.
    pub peak_bytes: u64,
    /// Whose cumulative figures these are, for snapshots; `Derived` for
    /// scopes, differences and sums.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) origin: Origin,
    /// Bytes as jemalloc really handed them out (requested sizes rounded up
    /// to jemalloc's size classes, from its per-thread `thread.allocated`
    /// counter), for thread scopes and thread snapshots when jemalloc is the
    /// inner allocator; `None` otherwise. Go's `B/op` is rounded this way.
    pub rounded_bytes_allocated: Option<u64>,
}

/// Whose cumulative figures an [`AllocStats`] holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A scope's figures, a difference or a sum.
    #[default]
    Derived,
    /// A [`thread_stats`](crate::thread_stats) snapshot of the thread with
    /// this serial number.
    Thread(u64),
    /// A [`process_stats`](crate::process_stats) snapshot.
    Process,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Derived => f.write_str("figures that are not a snapshot"),
            Origin::Thread(n) => write!(f, "a snapshot of thread #{n}"),
            Origin::Process => f.write_str("a snapshot of the process"),
        }
    }
}

/// Equal when every figure is equal (whose snapshot it is does not count).
impl PartialEq for AllocStats {
    fn eq(&self, o: &AllocStats) -> bool {
        self.counts() == o.counts()
            && self.peak_bytes == o.peak_bytes
            && self.rounded_bytes_allocated == o.rounded_bytes_allocated
    }
}

impl Eq for AllocStats {}

impl std::hash::Hash for AllocStats {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.counts().hash(h);
        self.peak_bytes.hash(h);
        self.rounded_bytes_allocated.hash(h);
    }
}

impl AllocStats {
    /// Net bytes: `bytes_allocated - bytes_freed`. For a snapshot
    /// ([`thread_stats`](crate::thread_stats),
    /// [`process_stats`](crate::process_stats)), the bytes held now (a
    /// thread's can be negative when it frees what others allocated); for a
    /// scope or a difference, what the measured code left held (negative
    /// when it freed more than it allocated).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let (kept, s) = allocscope::measure(|| std::hint::black_box(vec![0u8; 100]));
    /// assert_eq!(s.net_bytes(), 100);
    /// let (_, s) = allocscope::measure(|| drop(kept));
    /// assert_eq!(s.net_bytes(), -100);
    /// ```
    pub const fn net_bytes(&self) -> i64 {
        self.bytes_allocated.wrapping_sub(self.bytes_freed) as i64
    }

    /// Net blocks: `allocs - reallocs - deallocs` (a reallocation hands out
    /// a block that replaces one).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let (text, s) = allocscope::measure(|| {
    ///     let mut text = String::new();
    ///     for _ in 0..100 {
    ///         text.push('x'); // grows 8 -> 16 -> 32 -> 64 -> 128
    ///     }
    ///     std::hint::black_box(text)
    /// });
    /// assert_eq!((s.allocs, s.reallocs, s.net_blocks()), (5, 4, 1));
    /// # drop(text);
    /// ```
    pub const fn net_blocks(&self) -> i64 {
        self.allocs.wrapping_sub(self.reallocs).wrapping_sub(self.deallocs) as i64
    }

    /// `after.checked_sub(before)`: the figures between two snapshots of
    /// the same thread (or both of the process), or `None` when they cannot
    /// be subtracted: snapshots of different threads (a task that moved to
    /// another worker thread at an `.await`, say: each thread's counters
    /// are its own), a thread's against the process's, or a `before` that
    /// is not earlier. `after - before` panics in those cases; it never
    /// gives a wrapped figure.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let before = allocscope::thread_stats();
    /// let v = std::hint::black_box(vec![0u8; 64]);
    /// let d = allocscope::thread_stats().checked_sub(&before).unwrap();
    /// assert_eq!(d.bytes_allocated, 64);
    ///
    /// let elsewhere = std::thread::spawn(allocscope::thread_stats).join().unwrap();
    /// assert_eq!(elsewhere.checked_sub(&before), None, "another thread's snapshot");
    /// assert_eq!(allocscope::process_stats().checked_sub(&before), None, "the process's");
    /// # drop(v);
    /// ```
    pub fn checked_sub(&self, before: &AllocStats) -> Option<AllocStats> {
        self.difference(before).ok()
    }

    /// The difference, or why there is none.
    fn difference(&self, before: &AllocStats) -> Result<AllocStats, String> {
        if self.origin != before.origin {
            return Err(format!(
                "allocscope: cannot subtract {} from {}: each thread's counters are its own (a task that moved to \
                 another thread at an `.await` gives such snapshots); measure with a Scope on one thread, or \
                 across threads and tasks with a Group",
                before.origin, self.origin
            ));
        }
        let (a, b) = (self.counts(), before.counts());
        let mut d = crate::counters::Counts::default();
        for c in Counter::ALL {
            d[c] = a[c].checked_sub(b[c]).ok_or_else(|| {
                format!(
                    "allocscope: cannot subtract these figures: `before` has more {c:?} than `after` ({} > {}); \
                     was `before` taken later?",
                    b[c], a[c]
                )
            })?;
        }
        let mut out = AllocStats::from_counts(d);
        out.rounded_bytes_allocated = match (self.rounded_bytes_allocated, before.rounded_bytes_allocated) {
            (Some(a), Some(b)) => {
                Some(a.checked_sub(b).ok_or("allocscope: `before` has more rounded bytes than `after`")?)
            }
            _ => None,
        };
        Ok(out)
    }

    /// Whether nothing was allocated, reallocated or freed.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let (_, s) = allocscope::measure(|| 1 + 1);
    /// assert!(s.is_empty());
    /// ```
    pub const fn is_empty(&self) -> bool {
        self.allocs == 0 && self.deallocs == 0
    }

    /// Figures per operation (`B/op`, `allocs/op`, ...) for `ops` operations.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let (_, s) = allocscope::measure(|| {
    ///     for _ in 0..100 {
    ///         drop(std::hint::black_box(Box::new([0u8; 38])));
    ///     }
    /// });
    /// let per = s.per_op(100);
    /// assert_eq!((per.allocs, per.bytes_allocated), (1.0, 38.0));
    /// ```
    pub fn per_op(&self, ops: u64) -> PerOp {
        let n = ops.max(1) as f64;
        PerOp {
            allocs: self.allocs as f64 / n,
            deallocs: self.deallocs as f64 / n,
            reallocs: self.reallocs as f64 / n,
            bytes_allocated: self.bytes_allocated as f64 / n,
            bytes_freed: self.bytes_freed as f64 / n,
            rounded_bytes_allocated: self.rounded_bytes_allocated.map(|b| b as f64 / n),
        }
    }

    /// The figures of `c`, with `peak_bytes` set to its held bytes clamped
    /// at zero (the lower bound of a difference of snapshots).
    pub(crate) fn from_counts(c: Counts) -> Self {
        AllocStats {
            allocs: c[Counter::Allocs],
            deallocs: c[Counter::Deallocs],
            reallocs: c[Counter::Reallocs],
            bytes_allocated: c[Counter::BytesAllocated],
            bytes_freed: c[Counter::BytesFreed],
            peak_bytes: c.live().max(0) as u64,
            origin: Origin::Derived,
            rounded_bytes_allocated: None,
        }
    }

    /// The five event counters, in the counter-set vocabulary.
    pub(crate) fn counts(&self) -> Counts {
        Counts::from_fn(|c| match c {
            Counter::Allocs => self.allocs,
            Counter::Deallocs => self.deallocs,
            Counter::Reallocs => self.reallocs,
            Counter::BytesAllocated => self.bytes_allocated,
            Counter::BytesFreed => self.bytes_freed,
        })
    }
}

/// One named operation's figures, summed over all threads and calls.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// drop(allocscope::op("doc.opstats"));
/// let row: allocscope::OpStats = allocscope::op_stats().into_iter().find(|r| r.name == "doc.opstats").unwrap();
/// assert_eq!((row.calls, row.stats.allocs), (1, 0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct OpStats {
    /// The name given to [`op`](crate::op).
    pub name: &'static str,
    /// Guards created with this name (ended ones only).
    pub calls: u64,
    /// What the calls allocated outside nested operations; `peak_bytes` is
    /// the highest peak of one call, nested operations included.
    pub stats: AllocStats,
}

impl OpStats {
    /// These rows as a table in Go's `-benchmem` style, as
    /// [`op_table`](crate::op_table) prints every operation.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// for i in 0..4 {
    ///     let _op = allocscope::op("doc.table");
    ///     drop(std::hint::black_box(vec![0u8; 32 * (i + 1)]));
    /// }
    /// let ops: Vec<_> = allocscope::op_stats().into_iter().filter(|r| r.name == "doc.table").collect();
    /// let table = allocscope::OpStats::table(&ops);
    /// assert_eq!(table.lines().nth(1).unwrap().split_whitespace().collect::<Vec<_>>(), ["doc.table", "4", "80", "1"]);
    /// ```
    pub fn table(ops: &[OpStats]) -> String {
        table_of(ops)
    }

    /// Figures per call: `B/op`, `allocs/op`, ...
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// for _ in 0..4 {
    ///     let _op = allocscope::op("doc.per_call");
    ///     drop(std::hint::black_box(vec![0u8; 64]));
    /// }
    /// let row = allocscope::op_stats().into_iter().find(|r| r.name == "doc.per_call").unwrap();
    /// assert_eq!(row.per_call().bytes_allocated, 64.0);
    /// ```
    pub fn per_call(&self) -> PerOp {
        self.stats.per_op(self.calls)
    }
}

/// [`AllocStats`] divided by a number of operations; see
/// [`AllocStats::per_op`].
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let (_, s) = allocscope::measure(|| {
///     for i in 0..10 {
///         std::hint::black_box(vec![i as u8; 100]);
///     }
/// });
/// let per: allocscope::PerOp = s.per_op(10);
/// assert_eq!((per.allocs, per.bytes_allocated, per.deallocs), (1.0, 100.0, 1.0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct PerOp {
    /// `allocs` per operation: Go's `allocs/op`.
    pub allocs: f64,
    /// `deallocs` per operation.
    pub deallocs: f64,
    /// `reallocs` per operation.
    pub reallocs: f64,
    /// `bytes_allocated` per operation: `B/op` in requested bytes.
    pub bytes_allocated: f64,
    /// `bytes_freed` per operation.
    pub bytes_freed: f64,
    /// `rounded_bytes_allocated` per operation: `B/op` as Go counts it.
    pub rounded_bytes_allocated: Option<f64>,
}

/// The difference of two cumulative snapshots, `after - before`.
///
/// Counters subtract; `peak_bytes` becomes the net growth clamped at zero, a
/// lower bound of the peak in between; the rounded bytes subtract when both
/// sides have them.
///
/// # Panics
///
/// When the two cannot be subtracted (see
/// [`checked_sub`](AllocStats::checked_sub)): snapshots of different
/// threads, or a thread's and the process's, or a `before` with larger
/// counters. It never gives a wrapped figure.
///
/// # Examples
///
#[cfg_attr(feature = "jemalloc", doc = "```")]
#[cfg_attr(not(feature = "jemalloc"), doc = "```ignore")]
/// use allocscope::{CountingAlloc, Jemalloc};
///
/// #[global_allocator]
/// static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);
///
/// let before = allocscope::thread_stats();
/// let v = std::hint::black_box(vec![1u32; 10]);
/// let after = allocscope::thread_stats();
/// let d = after - before;
/// assert_eq!((d.allocs, d.bytes_allocated, d.peak_bytes), (1, 40, 40));
/// # drop(v);
/// ```
impl Sub for AllocStats {
    type Output = AllocStats;

    #[track_caller]
    fn sub(self, before: AllocStats) -> AllocStats {
        match self.difference(&before) {
            Ok(d) => d,
            Err(why) => panic!("{why}"),
        }
    }
}

/// Sums two sets of figures (for example two threads' or two runs'):
/// counters and rounded bytes add; `peak_bytes` is the larger of the two.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let (_, a) = allocscope::measure(|| drop(std::hint::black_box(Box::new(1u64))));
/// let (_, b) = allocscope::measure(|| drop(std::hint::black_box(Box::new(1u32))));
/// assert_eq!((a + b).allocs, 2);
/// assert_eq!((a + b).bytes_allocated, 12);
/// assert_eq!((a + b).peak_bytes, 8);
/// ```
impl Add for AllocStats {
    type Output = AllocStats;

    fn add(self, o: AllocStats) -> AllocStats {
        let mut s = AllocStats::from_counts(self.counts().wrapping_add(o.counts()));
        s.peak_bytes = self.peak_bytes.max(o.peak_bytes);
        s.rounded_bytes_allocated = match (self.rounded_bytes_allocated, o.rounded_bytes_allocated) {
            (Some(a), Some(b)) => Some(a.wrapping_add(b)),
            (a, b) => a.or(b),
        };
        s
    }
}

/// One line, in the field vocabulary.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let (_, s) = allocscope::measure(|| drop(std::hint::black_box(Box::new(7u64))));
/// assert!(s.to_string().starts_with(
///     "allocs 1, reallocs 0, deallocs 1, bytes_allocated 8, bytes_freed 8, peak_bytes 8"
/// ));
/// ```
/// A per-operation figure as Go's `-benchmem` prints it: whole numbers as
/// such, others with up to two decimals (`4`, `0.25`, `37.5`).
fn per_op_figure(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Go's `-benchmem` columns, separated by a tab: `120 B/op`, `4 allocs/op`
/// (requested bytes; the rounded bytes, when known, follow in
/// parentheses). A width (`{:>30}`) pads the whole.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let (_, s) = allocscope::measure(|| drop(std::hint::black_box(vec![0u8; 100])));
/// let per = s.per_op(4);
/// assert!(per.to_string().starts_with("25 B/op\t0.25 allocs/op"), "{per}");
/// ```
impl fmt::Display for PerOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = format!("{} B/op\t{} allocs/op", per_op_figure(self.bytes_allocated), per_op_figure(self.allocs));
        if let Some(r) = self.rounded_bytes_allocated {
            s.push_str(&format!(" ({} rounded B/op)", per_op_figure(r)));
        }
        f.pad(&s)
    }
}

/// One line of [`op_table`](crate::op_table)'s kind, without alignment: `name  calls
/// calls  B/op  allocs/op`.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// for _ in 0..2 {
///     let _op = allocscope::op("doc.display");
///     drop(std::hint::black_box(vec![0u8; 64]));
/// }
/// let row = allocscope::op_stats().into_iter().find(|r| r.name == "doc.display").unwrap();
/// assert!(row.to_string().starts_with("doc.display\t2 calls\t64 B/op\t1 allocs/op"), "{row}");
/// ```
impl fmt::Display for OpStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\t{} calls\t{}", self.name, self.calls, self.per_call())
    }
}

/// The rows as aligned text: [`OpStats::table`].
fn table_of(ops: &[OpStats]) -> String {
    let rounded = ops.iter().any(|o| o.stats.rounded_bytes_allocated.is_some());
    let mut rows = vec![vec!["op".to_owned(), "calls".to_owned(), "B/op".to_owned(), "allocs/op".to_owned()]];
    if rounded {
        rows[0].push("rounded B/op".to_owned());
    }
    for o in ops {
        let per = o.per_call();
        let mut row =
            vec![o.name.to_owned(), o.calls.to_string(), per_op_figure(per.bytes_allocated), per_op_figure(per.allocs)];
        if rounded {
            row.push(per.rounded_bytes_allocated.map_or_else(|| "-".to_owned(), per_op_figure));
        }
        rows.push(row);
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, w))| if c == 0 { format!("{cell:<w$}") } else { format!("{cell:>w$}") })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

impl fmt::Display for AllocStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "allocs {}, reallocs {}, deallocs {}, bytes_allocated {}, bytes_freed {}, peak_bytes {}",
            self.allocs, self.reallocs, self.deallocs, self.bytes_allocated, self.bytes_freed, self.peak_bytes
        )?;
        if let Some(r) = self.rounded_bytes_allocated {
            write!(f, ", rounded_bytes_allocated {r}")?;
        }
        Ok(())
    }
}

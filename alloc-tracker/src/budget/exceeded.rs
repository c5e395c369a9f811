//! The report of an exceeded budget: [`BudgetExceeded`] (whose `Debug` is
//! its `Display`, so `unwrap` and `?` print the report), each exceeded
//! [`Limit`], the site of the first allocation over a limit and the
//! largest block that survived a leak budget's run.

use std::fmt;
use std::panic::Location;

use super::Budget;
use crate::counters::sample::Survivors;
use crate::counters::trip::Recorded;
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

impl Budget {
    /// Checks `stats` against the limits: the error names every exceeded
    /// limit, and the site recorded at the first crossing.
    pub(super) fn verdict(
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
        let exceeded: Vec<Overrun> = limits
            .into_iter()
            .filter_map(|(limit, max, actual)| max.filter(|&m| actual > m).map(|max| Overrun { limit, max, actual }))
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
/// assert_eq!(err.overruns()[0].limit, Limit::BytesAllocated);
/// assert_eq!(Limit::BytesAllocated.to_string(), "bytes_allocated");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`Budget::max_allocs`]: blocks handed out, reallocations included.
    Allocs,
    /// [`Budget::max_bytes_allocated`]: bytes allocated.
    BytesAllocated,
    /// [`Budget::max_peak_bytes`]: peak held bytes.
    PeakBytes,
    /// [`Budget::max_leaked_bytes`]: bytes still held after the run.
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

/// One overrun of a [`Budget`]: the limit that was exceeded, its value and
/// what was measured ([`BudgetExceeded::overruns`] lists them).
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let err = allocscope::Budget::new().max_allocs(1).check(|| (vec![1u8], vec![2u8])).unwrap_err();
/// let e = err.overruns()[0];
/// assert_eq!((e.max, e.actual), (1, 2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Overrun {
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
/// largest allocation still held (1024 bytes; 1 of 2 blocks still held):
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
    exceeded: Vec<Overrun>,
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
                    write!(f, "\nlargest allocation still held ({size} bytes; 1 of {} {blocks} still held)", s.count)?;
                    match site {
                        Ok(site) => write!(f, ":\n{site}")?,
                        Err(why) => write!(f, ": {why}")?,
                    }
                }
                None => f.write_str(
                    "\nno allocation of the run is still held on this thread: its net bytes grew through frees it did \
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

fn list(exceeded: &[Overrun]) -> String {
    let parts: Vec<String> = exceeded.iter().map(|e| format!("{} {} > {}", e.limit, e.actual, e.max)).collect();
    parts.join(", ")
}

impl BudgetExceeded {
    /// The overruns: each limit that was exceeded, in the order allocs,
    /// bytes, peak, leaked.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let err = allocscope::Budget::new().max_allocs(0).max_bytes_allocated(0).check(|| vec![1u8]).unwrap_err();
    /// assert_eq!(err.overruns().len(), 2);
    /// ```
    pub fn overruns(&self) -> &[Overrun] {
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
    /// largest allocation of the measured run that was still held after
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
    /// assert_eq!(err.largest_held().map(|(size, _)| size), Some(300));
    /// ```
    pub fn largest_held(&self) -> Option<(u64, Option<&str>)> {
        let (size, site) = self.0.survivor.as_ref()?.largest.as_ref()?;
        Some((*size, site.as_deref().ok()))
    }
}

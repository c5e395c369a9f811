//! Exact allocation counts for Rust programs, per thread, per scope, per
//! named operation and per unit of work, cheap enough to leave on; and
//! allocation budgets that ordinary parallel `cargo test` can assert.
//!
//! Go benchmarks print `B/op` and `allocs/op` beside the time. Rust has no
//! such figure by default, and the tools that find allocations (dhat,
//! heaptrack) are profilers: slow, one per process, not for tests or
//! production. `allocscope` is a counting [`#[global_allocator]`][ga] that
//! wraps jemalloc (or any [`GlobalAlloc`](std::alloc::GlobalAlloc)) and keeps
//! a few integers per thread, so it can stay installed in an application,
//! its benchmarks and its tests.
//!
//! [ga]: std::alloc::GlobalAlloc
//!
//! # Five concepts
//!
//! | concept | what | entry points |
//! |---|---|---|
//! | the counting allocator | installed once, counts every allocation | [`CountingAlloc`], [`Jemalloc`], [`is_installed`] |
//! | scopes | what one thread did between two points | [`measure`], [`Scope`], [`thread_stats`], [`process_stats`], [`AllocStats`] |
//! | operations | figures per named operation: `B/op`, `allocs/op` | [`op`], [`op_stats`], [`OpStats`], [`op_table`] |
//! | groups | one unit of work (a request, a job, a component) on every thread and task it uses, and what it still holds | [`Group`], [`InGroup`], [`Held`] |
//! | budgets | limits that tests assert | [`Budget`], [`assert_no_alloc`], [`assert_no_leaks`], [`#[budget]`][attr-budget] |
//!
//! The rest is in modules: [`profile`] (sampled heap profiles: where the
//! bytes come from), [`serve`] (a [`serve::Snapshot`] of everything, in
//! Prometheus' format, through the `metrics` facade and over HTTP),
//! [`jemalloc`] (jemalloc's own figures), [`capacity`] (the sizes of the
//! library's fixed tables) and, with its feature, [`criterion`].
//!
//! # Vocabulary
//!
//! One name per quantity, used alike by the Rust API ([`AllocStats`]), its
//! JSON form (feature `serde`), budget messages, the bench runner's
//! reports and the metrics (with Prometheus' suffixes: `_total` for
//! counters, the unit last).
//!
//! Two axes, as dhat's `{total,curr,max}_{blocks,bytes}`: *what*, blocks
//! (`allocs`, `blocks`) or bytes; and *when*: in total, held now, or at
//! the peak.
//!
//! | name | what it counts | metric |
//! |---|---|---|
//! | `allocs` | blocks handed out: successful `alloc`, `alloc_zeroed` and `realloc` calls (Go's allocations, dhat's total blocks) | `allocscope_allocs_total` |
//! | `reallocs` | of `allocs`, the `realloc` calls | `allocscope_reallocs_total` |
//! | `deallocs` | `dealloc` calls | `allocscope_deallocs_total` |
//! | `bytes_allocated` | requested bytes of the blocks handed out (a reallocation's new size) | `allocscope_allocated_bytes_total` |
//! | `bytes_freed` | bytes of deallocations, plus reallocations' old sizes | `allocscope_freed_bytes_total` |
//! | `held_blocks`, `held_bytes` | blocks and bytes allocated and not freed yet (dhat's `curr`, pprof's `inuse_objects` and `inuse_space`): the process's; a group's, whoever frees them ([`Group::held`], exact with owner tags); a profile site's ([`profile::Site`], estimated) | `allocscope_held_bytes`, `allocscope_group_held_bytes`, `allocscope_group_held_blocks` |
//! | `net_bytes`, `net_blocks` | of a window ([`AllocStats::net_bytes`]): `bytes_allocated - bytes_freed` and `allocs - reallocs - deallocs`, negative when it freed older memory; over the whole process, the held figures | |
//! | `peak_bytes` | the highest `net_bytes` reached inside the window: exact for a scope, a lower bound for a snapshot or a difference ([`AllocStats::peak_bytes`]) | `allocscope_peak_bytes` |
//! | `leaked_bytes` | a budget's: the bytes a measured run left held | |
//! | `rounded_bytes_allocated` | `bytes_allocated` after jemalloc's size-class rounding (Go's `B/op`) | |
//! | `allocs_per_op`, `bytes_per_op` | per operation (Go's `allocs/op` and `B/op`) | |
//! | `sample_rate` | bytes per heap-profile sample on average (Go's `MemProfileRate`): [`profile::start_thread_sampling`], [`profile::process_sample_rate`] | `allocscope_sampler_rate_bytes` |
//! | library memory | what allocscope allocates for itself (tables, the symbolizer), in no figure of the program's ([`serve::Snapshot::library`]) | `allocscope_library_*` |
//!
//! A budget's limits are named after what they limit (`max_allocs`,
//! `max_bytes_allocated`, `max_peak_bytes`, `max_leaked_bytes`); every
//! metric, with its help text, is listed in [`serve`].
//!
//! # Setup
//!
//! Install the allocator once, in the binary (or in each test crate):
//!
#![cfg_attr(feature = "jemalloc", doc = "```")]
#![cfg_attr(not(feature = "jemalloc"), doc = "```ignore")]
//! use allocscope::{CountingAlloc, Jemalloc};
//!
//! #[global_allocator]
//! static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);
//! # fn main() {}
//! ```
//!
//! Without the default `jemalloc` feature, wrap the system allocator:
//! `CountingAlloc<std::alloc::System>`. To know exactly what each group
//! holds, whichever thread frees its memory, give every block its owner:
//! `CountingAlloc::new(Jemalloc).with_owner_tags()` (one word more per
//! block; see [`CountingAlloc::with_owner_tags`]).
//!
//! # Measuring
//!
//! ```
//! # #[global_allocator]
//! # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
//! #     allocscope::CountingAlloc::new(std::alloc::System);
//! // What a closure allocates on this thread (other threads never leak in):
//! let (text, stats) = allocscope::measure(|| {
//!     let mut s = String::new();
//!     for _ in 0..100 {
//!         s.push('x');
//!     }
//!     s
//! });
//! // One allocation, then four reallocations: 8 -> 16 -> 32 -> 64 -> 128.
//! assert_eq!((stats.allocs, stats.reallocs), (5, 4));
//! assert_eq!(stats.bytes_allocated, 8 + 16 + 32 + 64 + 128);
//! drop(text);
//!
//! // Named operations, for per-operation reports (B/op, allocs/op):
//! for i in 0..3 {
//!     let _op = allocscope::op("crate.enqueue");
//!     std::hint::black_box(vec![i; 8]);
//! }
//! let row = allocscope::op_stats().into_iter().find(|r| r.name == "crate.enqueue").unwrap();
//! assert_eq!((row.calls, row.per_call().allocs), (3, 1.0));
//! ```
//!
//! [`thread_stats`] and [`process_stats`] return cumulative snapshots;
//! `after - before` of two snapshots of the same thread (or both of the
//! process) is the difference, and subtracting another thread's snapshot
//! is refused.
//!
//! # Work that spans threads and tasks: groups
//!
//! A [`Group`] counts one unit of work (a request, a job) on every thread
//! and task it uses, and nothing else:
//!
//! ```
//! # #[global_allocator]
//! # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
//! #     allocscope::CountingAlloc::new(std::alloc::System);
//! use allocscope::{Group, InGroup};
//!
//! let job = Group::new("job");
//! let workers: Vec<_> =
//!     (0..4).map(|_| std::thread::spawn(job.wrap(|| std::hint::black_box(vec![0u8; 1000]).len()))).collect();
//! workers.into_iter().for_each(|w| drop(w.join()));
//! assert_eq!(job.stats().bytes_allocated, 4000);
//!
//! // A future counts its work in a group on whichever thread polls it:
//! // `tokio::spawn(handle(request).in_group(&route))`.
//! let route = Group::listed("GET /users");
//! let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
//! let request = async { std::hint::black_box(vec![0u8; 10]).len() }.in_group(&route);
//! assert_eq!(runtime.block_on(runtime.spawn(request)).unwrap(), 10);
//! assert_eq!(route.stats().bytes_allocated, 10);
//! ```
//!
//! See [`Group`] for what is counted where (frees, nesting, peaks) and
//! the example `per_request` (in the repository) for a tokio service loop
//! printing B/request per route; with the `tracing` feature, `GroupLayer`
//! counts each span's work in a group of its name.
//!
//! # Async and thread pools
//!
//! What each API sees in a task or a pool:
//!
//! - [`measure`], [`Scope`], [`op`], [`Budget::check`] and [`thread_stats`]
//!   see the calling thread between two points on that thread. In a tokio
//!   task that is one poll's worth at most: the guards are not `Send`, so
//!   they cannot be held across an `.await` in a spawned task, and
//!   `thread_stats()` taken before an `.await` and after it on another
//!   worker refuse to subtract. Around a rayon `par_iter` they see only the
//!   calling thread, which hands the items to the pool and waits: none of
//!   the items' allocations (rayon's first call in a process also starts
//!   its pool from the calling thread, which allocates there).
//! - A [`Group`] follows the work: [`InGroup::in_group`] for futures (each
//!   poll, on any worker), [`Group::wrap`] for spawned threads, and
//!   [`Group::run`] inside each item's closure for a pool
//!   (`items.par_iter().map(|x| group.run(|| work(x)))`: every item counted,
//!   on whichever pool thread ran it). Each event counts in the thread's
//!   innermost group only, so a job that the pool runs on a thread while
//!   another job waits there (rayon's `join` does this) counts in its own
//!   group, not in the waiting one's. [`Group::current`] hands the group
//!   on to a child task or thread. [`Budget::check_async`] and
//!   [`Budget::check_group`] hold such work to a budget.
//! - Work a runtime does inside a poll counts in the polled task's group
//!   (a tokio worker growing one of its buffers while polling a task, say),
//!   as it counts on the thread.
//!
//! # Testing with budgets
//!
//! ```
//! # #[global_allocator]
//! # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
//! #     allocscope::CountingAlloc::new(std::alloc::System);
//! use allocscope::{assert_no_alloc, Budget};
//!
//! let mut buf = Vec::with_capacity(64);
//! assert_no_alloc(|| buf.extend_from_slice(&[1, 2, 3]));
//!
//! Budget::new().max_allocs(1).max_bytes_allocated(64).assert(|| vec![0u8; 64]);
//! let err = Budget::new().max_allocs(1).check(|| (vec![1], vec![2])).unwrap_err();
//! assert!(err.to_string().starts_with("allocation budget exceeded: allocs 2 > 1"));
//! ```
//!
//! Budgets measure the calling thread only, so they hold under the default
//! parallel test runner. A failing budget names the code that made the
//! first allocation over the limit, resolved from the stack captured at that
//! moment (see [`BudgetExceeded::site`]):
//!
//! ```text
//! allocation budget exceeded: allocs 4 > 2 (budget at tests/parse.rs:12:5; measured ...)
//! first allocation over the limit:
//!   at my_crate::parse_header (src/parse.rs:41)
//!   at my_crate::parse (src/parse.rs:12)
//! ```
//!
//! A budgeted body that prints under `cargo test` (without `--nocapture`)
//! makes the test harness grow its capture buffer inside the budget: an
//! allocation of the harness's, which allocscope counts like any other and
//! cannot leave out exactly. When such an allocation is the one named, the
//! message says so; print outside budgeted code, or run with
//! `--nocapture`.
//!
//! Leaks: [`Budget::max_leaked_bytes`] with [`Budget::warmups`] (or
//! [`assert_no_leaks`]) runs a closure unmeasured, then once measured, and
//! fails when bytes it allocated are still held after it, naming the
//! largest allocation still held and its stack:
//!
//! ```text
//! allocation budget exceeded: leaked_bytes 4096 > 0 (budget at tests/cache.rs:9:5, after 1 warm-up run; measured ...)
//! largest allocation still held (4096 bytes; 1 of 1 block still held):
//!   at my_crate::Cache::insert (src/cache.rs:30)
//! ```
//!
//! With the `macros` feature (default), a budget reads as a property of
//! the test: `#[allocscope::budget(max_allocs = 2, max_bytes_allocated = 256)]` (see
//! [`budget`][attr-budget]).
//!
//! Every entry point refuses loudly (panics with the
//! install line) when `CountingAlloc` is not the global allocator, rather
//! than reading zeros that would pass any budget; [`is_installed`] asks
//! without panicking.
//!
//! # What is counted
//!
//! See [`AllocStats`] for the exact rules (a reallocation counts its full new
//! size as allocated and its old size as freed, as Go and jemalloc do). With
//! jemalloc, thread scopes also report
//! [`rounded_bytes_allocated`](AllocStats::rounded_bytes_allocated), the
//! bytes jemalloc handed out after rounding to its size classes.
//!
//! Not counted: memory that bypasses the Rust global allocator (C code
//! calling `malloc`, `mmap`, thread stacks) and allocator metadata.
//!
//! # Cost
//!
//! The allocator path is a few instructions on thread-local counters: no
//! lock, no shared atomic, no allocation. See [`CountingAlloc`] and the
//! measured table in the repository's `docs/overhead.md`.
//!
//! # Feature flags
//!
//! - `macros` (default): the [`budget`][attr-budget] test attribute.
//! - `jemalloc` (default): re-exports [`Jemalloc`] (tikv-jemallocator 0.7)
//!   and reads the rounded byte counts and [`jemalloc::JemallocStats`]
//!   through its `mallctl`. Off, wrap any allocator; an application with
//!   its own tikv-jemallocator hands its `mallctl` to
//!   [`jemalloc::use_jemalloc_mallctl`].
//! - `serde`: `Serialize`/`Deserialize` for [`AllocStats`] and [`PerOp`],
//!   `Serialize` for [`OpStats`].
//! - `pprof`: `HeapProfile::pprof_gz` (adds `flate2`).
//! - `flamegraph`: `HeapProfile::flamegraph_svg` (adds `inferno`, which is
//!   CDDL-1.0 licensed).
//! - `tracing`: `GroupLayer`, a `tracing_subscriber` layer (adds
//!   `tracing-core` and `tracing-subscriber`).
//! - `metrics`: `allocscope::serve::metrics`, snapshots through the
//!   `metrics` facade (adds `metrics`).
//! - `serve`: `allocscope::serve::start`, `/metrics`,
//!   `/debug/pprof/{heap,allocs}` with Go's parameters, an index and a
//!   run-time sampling switch over HTTP, on a server with a connection
//!   limit and a header-read timeout (adds `axum`, `hyper`, `hyper-util`
//!   and `tokio`; implies `pprof`).
//! - `criterion`: [`criterion::config`], criterion benchmarks that
//!   measure allocations or bytes per iteration, and a Go `-benchmem` line
//!   beside criterion's time.
//!
//! # Heap profiles
//!
//! [`profile::start_thread_sampling`] samples the current thread's
//! allocations by bytes, as Go's `MemProfileRate`, and
//! [`profile::start_process_sampling`] every thread's;
//! [`profile::heap_profile`] returns the sites with their estimated
//! allocations and bytes, as folded stacks, pprof, a flame graph or DHAT
//! JSON.
//!
// Links to what a feature adds: with the feature off (the docs of a build
// without it), they lead to the list of features above, which names it.
#![cfg_attr(feature = "macros", doc = "[attr-budget]: macro@budget")]
#![cfg_attr(not(feature = "macros"), doc = "[attr-budget]: crate#feature-flags")]
#![cfg_attr(not(feature = "jemalloc"), doc = "[`Jemalloc`]: crate#feature-flags")]
#![cfg_attr(not(feature = "criterion"), doc = "[`criterion`]: crate#feature-flags")]
#![cfg_attr(not(feature = "criterion"), doc = "[`criterion::config`]: crate#feature-flags")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod alloc;
mod budget;
pub mod capacity;
mod counters;
#[cfg(feature = "criterion")]
pub mod criterion;
mod group;
mod install;
pub mod jemalloc;
mod op;
pub mod profile;
mod rows;
mod scope;
pub mod serve;
mod stack;
mod stats;
mod symbols;
#[cfg(feature = "tracing")]
mod tracing_layer;

// The counting allocator.
pub use crate::alloc::CountingAlloc;
pub use crate::install::is_installed;
/// jemalloc, re-exported from `tikv-jemallocator` (feature `jemalloc`).
#[cfg(feature = "jemalloc")]
pub use tikv_jemallocator::Jemalloc;

// Scopes.
pub use crate::scope::{measure, process_stats, thread_stats, Scope};
pub use crate::stats::{AllocStats, PerOp};

// Operations.
pub use crate::op::{op, op_stats, op_table, reset_op_stats, OpGuard};
pub use crate::stats::OpStats;

// Groups.
pub use crate::group::{Group, GroupGuard, Grouped, Held, InGroup};
#[cfg(feature = "tracing")]
pub use crate::tracing_layer::GroupLayer;

// Budgets.
#[doc(hidden)]
pub use crate::budget::macro_support;
pub use crate::budget::{assert_no_alloc, assert_no_leaks, Budget, BudgetExceeded, Limit, Overrun};
/// Runs a test function's body under an allocation [`Budget`]: the
/// attribute's arguments are the budget's limits (`max_allocs`,
/// `max_bytes_allocated`, `max_peak_bytes`, `max_leaked_bytes`, and `warmups`), and
/// a failure panics with [`Budget::assert`]'s message, located at the
/// attribute.
///
/// - On a `fn`: [`Budget::assert`] runs the body (its value is returned,
///   so `-> Result<..>` tests work).
/// - With `warmups` or `max_leaked_bytes`: [`Budget::assert_steady`] runs
///   it `warmups + 1` times; the function must return `()`.
/// - On an `async fn`: [`Budget::check_async`] counts the future wherever
///   it is polled. Above or below `#[tokio::test]`, either order: the
///   runtime's own set-up is never counted.
///
/// An unknown or repeated limit is a compile error that lists the valid
/// ones.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// #[allocscope::budget(max_allocs = 1, max_bytes_allocated = 64)]
/// fn make_id() -> String {
///     format!("message-{:04}", 1)
/// }
/// assert_eq!(make_id(), "message-0001");
/// ```
///
/// With the leak budget's warm-up (on a `#[test]` function, as usual):
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// # use std::cell::RefCell;
/// thread_local!(static CACHE: RefCell<Vec<u8>> = RefCell::new(Vec::new()));
///
/// #[allocscope::budget(max_allocs = 0, max_leaked_bytes = 0, warmups = 1)]
/// fn refilling_the_cache_reuses_its_buffer() {
///     CACHE.with_borrow_mut(|c| {
///         c.clear();
///         c.extend_from_slice(&[0u8; 512]);
///     });
/// }
/// refilling_the_cache_reuses_its_buffer();
/// ```
///
/// ```compile_fail
/// #[allocscope::budget(max_alocs = 1)] // error: unknown budget `max_alocs`: expected one of max_allocs, ...
/// fn misspelt() {}
/// ```
#[cfg(feature = "macros")]
#[doc(inline)]
pub use allocscope_macros::budget;

// The unit tests exercise the counting allocator itself; `.ci/run` also
// runs them under Miri (`cargo +nightly miri test -p allocscope
// --no-default-features --lib`).
#[cfg(test)]
#[global_allocator]
static TEST_GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

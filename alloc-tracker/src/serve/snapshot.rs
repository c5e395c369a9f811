//! [`snapshot`]: process totals, operations, groups, jemalloc's figures
//! and the sampler's state, in one value.

use crate::counters::{registry, sample};
use crate::group::{Group, Held};
use crate::jemalloc::JemallocStats;
use crate::scope::process_stats;
use crate::stats::{AllocStats, OpStats};

/// Everything allocscope knows about the process now; see [`snapshot`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Snapshot {
    /// Every thread's figures since the process started
    /// ([`process_stats`](crate::process_stats)): held bytes are
    /// [`AllocStats::net_bytes`], `peak_bytes` the highest held bytes a
    /// reading has seen.
    pub process: AllocStats,
    /// Every named operation ([`op_stats`](crate::op_stats)).
    pub ops: Vec<OpStats>,
    /// Every listed group ([`Group::listed`]).
    pub groups: Vec<ListedGroup>,
    /// jemalloc's own figures, when jemalloc serves the allocations.
    pub jemalloc: Option<JemallocStats>,
    /// The heap sampler's state.
    pub sampler: SamplerStats,
    /// What allocscope allocated for itself (groups' counters, budgets'
    /// state, the tables of names, the symbolizer's debug info and cache):
    /// kept out of every other figure, and counted here.
    pub library: AllocStats,
}

/// A listed group ([`Group::listed`]) in a [`Snapshot`]: its name, ended
/// windows and figures.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListedGroup {
    /// The group's name.
    pub name: &'static str,
    /// [`Group::stats`].
    pub stats: AllocStats,
    /// [`Group::windows`].
    pub windows: u64,
    /// [`Group::held`].
    pub held: Held,
}

/// The heap sampler's state in a [`Snapshot`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SamplerStats {
    /// The process-wide rate in bytes per sample (0: off); see
    /// [`start_process_sampling`](crate::profile::start_process_sampling).
    pub process_sample_rate: u64,
    /// Samples taken so far (since the last
    /// [`reset_heap_profile`](crate::profile::reset_heap_profile)).
    pub samples: u64,
    /// Samples that found the stack table full.
    pub dropped_samples: u64,
    /// Samples whose block could not be followed (the table of held blocks full).
    pub untracked_held_samples: u64,
    /// Return addresses the symbolizer resolved since the process started
    /// (each at most once while it stays cached).
    pub resolved_addresses: u64,
    /// Times the symbolizer parsed the program's debug info (once per
    /// profile that had addresses not cached yet; freed after each).
    pub resolutions: u64,
    /// Addresses whose frames the symbolizer keeps now (at most 16,384,
    /// unless one profile needs more).
    pub cached_addresses: u64,
}

/// Reads everything allocscope knows about the process now: cheap (no
/// symbol is resolved, no profile is built: a few hundred nanoseconds with
/// a few threads, plus one `mallctl` round for jemalloc's figures), and
/// callable from any thread at any time, as a metrics endpoint does on
/// every scrape.
///
/// # Panics
///
/// If [`CountingAlloc`](crate::CountingAlloc) is not the global allocator.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let kept = std::hint::black_box(vec![0u8; 4096]);
/// let s = allocscope::serve::snapshot();
/// assert!(s.process.net_bytes() >= 4096);
/// assert!(s.prometheus_text().contains("# TYPE allocscope_allocs_total counter"));
/// # drop(kept);
/// ```
#[track_caller]
pub fn snapshot() -> Snapshot {
    let process = process_stats();
    crate::group::reclaim();
    let (resolved_addresses, resolutions, cached_addresses) = crate::symbols::stats();
    Snapshot {
        process,
        ops: crate::op::op_stats(),
        groups: Group::all_listed()
            .into_iter()
            .map(|g| ListedGroup { name: g.name(), stats: g.stats(), windows: g.windows(), held: g.held() })
            .collect(),
        jemalloc: JemallocStats::read(),
        sampler: SamplerStats {
            process_sample_rate: sample::process_sample_rate(),
            samples: sample::samples(),
            dropped_samples: sample::dropped_samples(),
            untracked_held_samples: sample::untracked_held_samples(),
            resolved_addresses,
            resolutions,
            cached_addresses,
        },
        library: AllocStats::from_counts(registry::library_counts()),
    }
}

//! Sampled heap profiles: where the bytes come from. The public API
//! ([`start_thread_sampling`], [`heap_profile`], [`HeapProfile`]) and every writer
//! of the profile: folded stacks, pprof (feature `pprof`), DHAT's JSON and
//! a flame graph (feature `flamegraph`). The allocator-side lane that takes
//! the samples runs in the allocator (`counters::sample`); symbols are resolved here,
//! when a profile is read, never in the allocator.
//!
//! # Limits
//!
//! - At most [`MAX_STACKS`](crate::capacity::MAX_STACKS) distinct stacks and
//!   [`MAX_HELD_SAMPLES`](crate::capacity::MAX_HELD_SAMPLES) held sampled
//!   blocks, found within a bounded number of probes so that every
//!   allocation and free costs a bounded time. A sample whose stack finds
//!   no slot is counted in [`HeapProfile::dropped_samples`] (it is missing
//!   from the profile); a sample whose block finds no slot in the table of held blocks is counted
//!   in [`HeapProfile::untracked_held_samples`] (it is in the allocation
//!   figures, not in the held ones: [`HeapProfile::held_is_complete`] is
//!   then false).
//! - A free is matched only on a thread that samples: enable sampling on
//!   every thread that frees profiled memory, or held figures stay high.
//! - Stacks deeper than 48 frames are cut at the 48th.

mod dhat;
#[cfg(feature = "flamegraph")]
mod flamegraph;
mod folded;
#[cfg(feature = "pprof")]
mod pprof;
mod site;

#[cfg(feature = "pprof")]
pub use pprof::SampleType;

use crate::counters::sample;

/// Go's default `MemProfileRate`: one sample per 512 KiB on average, the
/// rate `ALLOCSCOPE_SAMPLE_RATE` and the service examples use.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// allocscope::profile::start_thread_sampling(allocscope::profile::DEFAULT_SAMPLE_RATE);
/// allocscope::profile::stop_thread_sampling();
/// assert_eq!(allocscope::profile::DEFAULT_SAMPLE_RATE, 524_288);
/// ```
pub const DEFAULT_SAMPLE_RATE: u64 = crate::counters::sample::DEFAULT_SAMPLE_RATE;
pub use crate::stack::Frame;
use crate::symbols;
pub use site::Site;

/// Starts sampling the current thread's allocations, one sample per `rate`
/// bytes on average (`1`: every allocation, exact figures). Sampling stays
/// on until [`stop_thread_sampling`]; samples go to the process-wide profile that
/// [`heap_profile`] reads.
///
/// # Panics
///
/// If the tracker is not installed, or `rate` is zero.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// allocscope::profile::start_thread_sampling(1); // exact
/// let v = std::hint::black_box(vec![0u8; 1000]);
/// allocscope::profile::stop_thread_sampling();
/// let profile = allocscope::profile::heap_profile();
/// assert!(profile.total_bytes() >= 1000.0);
/// # drop(v);
/// ```
#[track_caller]
pub fn start_thread_sampling(sample_rate: u64) {
    crate::install::require_installed("allocscope::profile::start_thread_sampling");
    assert!(sample_rate > 0, "allocscope::profile::start_thread_sampling: the sample_rate must be at least 1 byte");
    sample::start(sample_rate);
}

/// Stops sampling the current thread (it goes on at the process-wide rate
/// if [`start_process_sampling`] set one).
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// allocscope::profile::start_thread_sampling(allocscope::profile::DEFAULT_SAMPLE_RATE);
/// allocscope::profile::stop_thread_sampling();
/// ```
pub fn stop_thread_sampling() {
    sample::stop();
}

/// Samples every thread of the process, one sample per `rate` bytes on
/// average: the threads running now (each applies it at its next
/// allocation or free) and every thread started later, runtime workers
/// included, as a service wants. A thread that called [`start_thread_sampling`]
/// keeps its own rate. The environment variable `ALLOCSCOPE_SAMPLE_RATE`
/// (bytes per sample, for example `524288`), read when the process starts,
/// does the same without code. Sampling costs allocations and frees a lane
/// of their own (see `docs/heap-profiling.md`).
///
/// # Panics
///
/// If the tracker is not installed, or `rate` is zero.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// #[inline(never)]
/// fn on_a_worker() -> Vec<u8> {
///     std::hint::black_box(vec![0u8; 4096])
/// }
/// allocscope::profile::start_process_sampling(1);
/// let kept = std::thread::spawn(on_a_worker).join().unwrap();
/// allocscope::profile::stop_process_sampling();
/// let found = allocscope::profile::heap_profile().sites.iter().any(|s| s.user_frames().iter().any(|f| f.name.ends_with("on_a_worker")));
/// assert!(found);
/// # drop(kept);
/// ```
#[track_caller]
pub fn start_process_sampling(sample_rate: u64) {
    crate::install::require_installed("allocscope::profile::start_process_sampling");
    assert!(sample_rate > 0, "allocscope::profile::start_process_sampling: the sample_rate must be at least 1 byte");
    sample::set_process_rate(sample_rate);
}

/// Stops process-wide sampling ([`start_process_sampling`] or
/// `ALLOCSCOPE_SAMPLE_RATE`); threads that called [`start_thread_sampling`] go on.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// allocscope::profile::start_process_sampling(allocscope::profile::DEFAULT_SAMPLE_RATE);
/// allocscope::profile::stop_process_sampling();
/// assert_eq!(allocscope::profile::process_sample_rate(), 0);
/// ```
pub fn stop_process_sampling() {
    sample::set_process_rate(0);
}

/// The process-wide sampling rate in bytes per sample; 0 when off.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// allocscope::profile::start_process_sampling(65536);
/// assert_eq!(allocscope::profile::process_sample_rate(), 65536);
/// allocscope::profile::stop_process_sampling();
/// ```
pub fn process_sample_rate() -> u64 {
    sample::process_sample_rate()
}

/// A snapshot of the process-wide sampled profile; see [`heap_profile`].
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// allocscope::profile::start_thread_sampling(1);
/// let kept = std::hint::black_box(vec![0u8; 1000]);
/// allocscope::profile::stop_thread_sampling();
/// let profile: allocscope::profile::HeapProfile = allocscope::profile::heap_profile();
/// assert_eq!(profile.sample_rate, 1);
/// assert!(profile.held_bytes() >= 1000.0 && profile.held_is_complete());
/// # drop(kept);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct HeapProfile {
    /// Every site sampled so far.
    pub sites: Vec<Site>,
    /// Samples that found no slot in the stack table: their allocations
    /// are missing from every figure of the profile.
    pub dropped_samples: u64,
    /// Samples whose block found no slot in the table of held blocks: they
    /// are in the allocation figures, but never in the held ones.
    pub untracked_held_samples: u64,
    /// The sampling rate, in bytes, that every sample was taken at (pprof's
    /// `period`); 0 when threads sampled at different rates (each sample's
    /// estimate still uses its own rate); the rate last given to
    /// [`start_thread_sampling`] before any sample.
    pub sample_rate: u64,
    /// For a profile of what happened between two readings
    /// ([`since`](HeapProfile::since)): the time between them. `None` for
    /// a profile of everything since the process started (or the last
    /// [`reset_heap_profile`]).
    pub duration: Option<std::time::Duration>,
}

/// Reads the profile gathered so far by every sampling thread. Reading
/// (and writing the profile out) does not change it: the calling thread's
/// samples pause meanwhile.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let profile = allocscope::profile::heap_profile();
/// assert_eq!(profile.dropped_samples, 0);
/// ```
pub fn heap_profile() -> HeapProfile {
    sample::paused(read_profile)
}

fn read_profile() -> HeapProfile {
    HeapProfile {
        sites: sample::sampled_stacks().map(Site::of).collect(),
        dropped_samples: sample::dropped_samples(),
        untracked_held_samples: sample::untracked_held_samples(),
        sample_rate: sample::sample_rate(),
        duration: None,
    }
}

/// Clears the process-wide profile: every site, every followed held block,
/// the dropped and untracked sample counts and the rates seen. Call it while no thread samples (a sample
/// taken during the reset may be half cleared).
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// allocscope::profile::start_thread_sampling(1);
/// drop(std::hint::black_box(vec![0u8; 10]));
/// allocscope::profile::stop_thread_sampling();
/// allocscope::profile::reset_heap_profile();
/// assert!(allocscope::profile::heap_profile().sites.is_empty());
/// ```
pub fn reset_heap_profile() {
    sample::reset();
}

impl HeapProfile {
    /// Estimated bytes allocated at all sites (0 for an empty profile; a
    /// float sum would start at -0).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// assert_eq!(allocscope::profile::HeapProfile::default().total_bytes(), 0.0);
    /// ```
    pub fn total_bytes(&self) -> f64 {
        self.sites.iter().map(|s| s.bytes).sum::<f64>() + 0.0
    }

    /// Estimated allocations at all sites.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// assert_eq!(allocscope::profile::HeapProfile::default().total_allocs(), 0.0);
    /// ```
    pub fn total_allocs(&self) -> f64 {
        self.sites.iter().map(|s| s.allocs).sum::<f64>() + 0.0
    }

    /// Estimated bytes allocated and not freed yet, at all sites.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// assert_eq!(allocscope::profile::HeapProfile::default().held_bytes(), 0.0);
    /// ```
    pub fn held_bytes(&self) -> f64 {
        self.sites.iter().map(|s| s.held_bytes).sum::<f64>() + 0.0
    }

    /// Whether the held figures account for every sample: false when some
    /// sampled blocks could not be followed (too many held at once), and
    /// the held figures are then lower than the truth.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// assert!(allocscope::profile::heap_profile().held_is_complete());
    /// ```
    pub fn held_is_complete(&self) -> bool {
        self.untracked_held_samples == 0
    }

    /// What happened between `earlier` and this profile (both read with
    /// [`heap_profile`], `earlier` first, `duration` apart), as Go's
    /// `/debug/pprof/allocs?seconds=N` gives it: each site's allocations
    /// and bytes since `earlier`, and the change in its held figures (which
    /// may be negative: more freed than allocated there). Sites where
    /// nothing changed are left out; the sample counts are the new samples.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// use allocscope::profile::{heap_profile, start_thread_sampling, stop_thread_sampling};
    /// start_thread_sampling(1);
    /// drop(std::hint::black_box(vec![0u8; 1000]));
    /// let earlier = heap_profile();
    /// drop(std::hint::black_box(vec![0u8; 300]));
    /// stop_thread_sampling();
    /// let window = heap_profile().since(&earlier, std::time::Duration::from_secs(1));
    /// assert_eq!(window.total_bytes(), 300.0);
    /// ```
    pub fn since(&self, earlier: &HeapProfile, duration: std::time::Duration) -> HeapProfile {
        let before: std::collections::HashMap<&[usize], &Site> =
            earlier.sites.iter().map(|s| (s.addresses.as_slice(), s)).collect();
        let sites = self
            .sites
            .iter()
            .filter_map(|now| {
                let mut site = now.clone();
                if let Some(then) = before.get(now.addresses.as_slice()) {
                    site.samples = now.samples.saturating_sub(then.samples);
                    site.allocs = now.allocs - then.allocs;
                    site.bytes = now.bytes - then.bytes;
                    site.held_blocks = now.held_blocks - then.held_blocks;
                    site.held_bytes = now.held_bytes - then.held_bytes;
                }
                let changed = [site.allocs, site.bytes, site.held_blocks, site.held_bytes].iter().any(|v| *v != 0.0);
                changed.then_some(site)
            })
            .collect();
        HeapProfile {
            sites,
            dropped_samples: self.dropped_samples.saturating_sub(earlier.dropped_samples),
            untracked_held_samples: self.untracked_held_samples.saturating_sub(earlier.untracked_held_samples),
            sample_rate: self.sample_rate,
            duration: Some(duration),
        }
    }

    /// Each site's frames of the code under test ([`Site::user_frames`]),
    /// in the order of [`sites`](HeapProfile::sites), resolved in one
    /// batch: one parse of the program's debug info for the whole profile,
    /// where calling [`Site::user_frames`] site by site parses once per
    /// site whose frames are not cached yet.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// #[inline(never)]
    /// fn make_table() -> Vec<u64> {
    ///     std::hint::black_box(vec![0u64; 32])
    /// }
    /// allocscope::profile::start_thread_sampling(1);
    /// let v = make_table();
    /// allocscope::profile::stop_thread_sampling();
    /// let profile = allocscope::profile::heap_profile();
    /// let frames = profile.user_frames();
    /// assert_eq!(frames.len(), profile.sites.len());
    /// let (site, _) = profile.sites.iter().zip(&frames)
    ///     .find(|(_, f)| f.first().is_some_and(|f| f.name.ends_with("make_table")))
    ///     .expect("the site of make_table");
    /// assert_eq!(site.bytes, 256.0);
    /// # drop(v);
    /// ```
    pub fn user_frames(&self) -> Vec<Vec<Frame>> {
        let stacks: Vec<&[usize]> = self.sites.iter().map(|s| s.addresses.as_slice()).collect();
        symbols::user_frames_of_each(&stacks)
    }

    /// Runs a writer of the profile as the library's own work: every
    /// site's frames resolved in one batch, the symbolizer's memory and the
    /// writer's own in no figure of the program's; the caller gets a copy
    /// of what it wrote (see `crate::symbols`).
    fn writing<T: Clone>(&self, write: impl FnOnce(&Self) -> T) -> T {
        symbols::produce(|| {
            let stacks: Vec<&[usize]> = self.sites.iter().map(|s| s.addresses.as_slice()).collect();
            symbols::prepare(&stacks);
            write(self)
        })
    }
}

//! What a group still holds: [`Group::held`], and a soft limit on it.
//!
//! With owner tags
//! ([`CountingAlloc::with_owner_tags`](crate::CountingAlloc::with_owner_tags))
//! every block carries its owner, so the figure is exact: what the group's
//! windows allocated, on any thread, minus what was freed of it since, on
//! any thread, in a group or not (`counters::held`). Without tags, the heap
//! sampler is the only witness: each sampled block remembers the group it
//! was allocated in, and the group's held samples give an estimate, with
//! its interval; with no sampling there is nothing to say, and the answer
//! says so.

use std::fmt;
use std::sync::atomic::Ordering;

use super::{Group, GroupShared};
use crate::counters::sample;

/// What a group holds now: the bytes and blocks allocated while in it
/// (any thread, any task) and not freed yet, wherever the free happens; a
/// reallocation keeps its block's owner. See [`Group::held`].
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System).with_owner_tags();
/// let cache = allocscope::Group::new("doc.Held");
/// let entries: Vec<String> = cache.run(|| vec!["a".repeat(100), "b".repeat(200)]);
/// let held: allocscope::Held = cache.held();
/// // Exact (owner tags): two strings and the vector's buffer.
/// assert_eq!((held.exact, held.blocks, held.bytes), (true, 3, 100 + 200 + 2 * 24));
/// drop(entries);
/// assert_eq!(cache.held().bytes, 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Held {
    /// Bytes held (requested sizes, as every figure of the library).
    pub bytes: u64,
    /// Blocks held.
    pub blocks: u64,
    /// Whether the figures are exact (owner tags), or an estimate from the
    /// heap sampler's held samples.
    pub exact: bool,
    /// For an estimate: the held samples it rests on.
    pub samples: u64,
    /// For an estimate: a 95 % interval of the bytes (the count of samples
    /// is Poisson: relative error `1.96 / sqrt(samples)`; with no sample,
    /// from 0 to three samples' worth, the rule of three). `None` when the
    /// figures are exact, and when nothing is known.
    pub bytes_interval: Option<(u64, u64)>,
}

impl Held {
    /// Whether the figures say anything: exact, or an estimate from
    /// sampling. Without owner tags and without heap sampling, a group's
    /// held bytes are unknown (and then `bytes` and `blocks` are 0 and mean
    /// nothing).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// // No owner tags, no sampling: nothing is known.
    /// let held = allocscope::Group::new("doc.held").held();
    /// assert!(!held.is_known() && !held.exact);
    /// ```
    pub fn is_known(&self) -> bool {
        self.exact || self.bytes_interval.is_some()
    }

    const UNKNOWN: Held = Held { bytes: 0, blocks: 0, exact: false, samples: 0, bytes_interval: None };
}

impl fmt::Display for Held {
    /// `12345 B in 67 blocks (exact)`, `~12000 B in ~60 blocks (95 %:
    /// 9000-15000 B, 23 samples)` or `unknown (no owner tags, no sampling)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bytes_interval {
            _ if self.exact => write!(f, "{} B in {} blocks (exact)", self.bytes, self.blocks),
            Some((low, high)) => write!(
                f,
                "~{} B in ~{} blocks (95 %: {low}-{high} B, {} samples)",
                self.bytes, self.blocks, self.samples
            ),
            None => f.write_str("unknown (no owner tags, no sampling)"),
        }
    }
}

/// Bytes and blocks a tagged group holds: its shards' allocations minus
/// its ledger's releases (0 without tags).
fn tagged(g: &GroupShared) -> (i64, i64) {
    // SAFETY: a group's ledger lives as long as the group.
    let Some(ledger) = (unsafe { g.ledger.as_ref() }) else { return (0, 0) };
    let (mut bytes, mut blocks) = g.shards().fold((0i64, 0i64), |(b, n), s| {
        let (sb, sn) = s.held.read();
        (b.wrapping_add(sb as i64), n.wrapping_add(sn as i64))
    });
    let (rb, rn) = ledger.released();
    bytes = bytes.wrapping_sub(rb);
    blocks = blocks.wrapping_sub(rn);
    (bytes, blocks)
}

/// Whether a group with owner tags still holds blocks (whose frees will
/// read its ledger). Read after the group's last handle and entry went,
/// when the figure only goes down: a read of 0 is final.
pub(super) fn holds_blocks(g: &GroupShared) -> bool {
    tagged(g).1 > 0
}

impl Group {
    /// What the group holds now: the bytes and blocks allocated while a
    /// thread or task was in it (its innermost group) and not freed yet,
    /// on whichever thread the free happens, in a group or not; a
    /// reallocation keeps its block's owner.
    ///
    /// Exact with owner tags
    /// ([`CountingAlloc::with_owner_tags`](crate::CountingAlloc::with_owner_tags)).
    /// Without them, an estimate from the heap sampler's held samples
    /// allocated in the group (`exact` false, with the samples and a 95 %
    /// interval), which covers the threads that sample (every thread with
    /// [`start_process_sampling`](crate::profile::start_process_sampling));
    /// with no sampling, unknown ([`Held::is_known`]). Never an
    /// exact-looking number that is not.
    ///
    /// While other threads run, the figures of their last few events may
    /// not be in it yet; they are exact once those threads are quiescent.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System).with_owner_tags();
    /// let request = allocscope::Group::new("doc.request");
    /// let cached: Vec<Vec<u8>> = request.run(|| (0..4).map(|_| vec![0u8; 256]).collect());
    /// let held = request.held();
    /// assert_eq!((held.bytes, held.blocks, held.exact), (4 * 256 + 4 * 24, 5, true));
    /// drop(cached); // anywhere: the request holds nothing now
    /// assert_eq!(request.held().bytes, 0);
    /// ```
    pub fn held(&self) -> Held {
        let g = self.shared();
        if !g.ledger.is_null() {
            let (bytes, blocks) = tagged(g);
            return Held {
                bytes: bytes.max(0) as u64,
                blocks: blocks.max(0) as u64,
                exact: true,
                samples: 0,
                bytes_interval: None,
            };
        }
        let Some(rate) = sample::estimate_rate() else { return Held::UNKNOWN };
        let (bytes, blocks, samples) = sample::held_of_group(g.serial);
        let interval = if samples == 0 {
            (0, (3.0 * rate as f64) as u64)
        } else {
            let rel = 1.96 / (samples as f64).sqrt();
            ((bytes * (1.0 - rel)).max(0.0) as u64, (bytes * (1.0 + rel)) as u64)
        };
        Held {
            bytes: bytes as u64,
            blocks: blocks.round() as u64,
            exact: false,
            samples,
            bytes_interval: Some(interval),
        }
    }

    /// This group with a soft limit of `bytes` on what it holds
    /// ([`held`](Group::held)): [`over_limit`](Group::over_limit) and
    /// [`headroom`](Group::headroom) read it, so that a service can shed
    /// load or refuse a query before the process runs out of memory. The
    /// allocator never fails an allocation for it. A limit is shared by
    /// every handle of the group.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System).with_owner_tags();
    /// let query = allocscope::Group::new("doc.query").with_held_limit(1000);
    /// let rows = query.run(|| vec![0u8; 1500]);
    /// assert!(query.over_limit());
    /// assert_eq!(query.headroom(), Some(0));
    /// drop(rows);
    /// assert_eq!((query.over_limit(), query.headroom()), (false, Some(1000)));
    /// ```
    #[must_use]
    pub fn with_held_limit(self, bytes: u64) -> Group {
        self.shared().held_limit.store(bytes, Ordering::Relaxed);
        self
    }

    /// The soft limit on held bytes, if one was set.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// assert_eq!(allocscope::Group::new("doc.no_limit").held_limit(), None);
    /// assert_eq!(allocscope::Group::new("doc.limit").with_held_limit(4096).held_limit(), Some(4096));
    /// ```
    pub fn held_limit(&self) -> Option<u64> {
        Some(self.shared().held_limit.load(Ordering::Relaxed)).filter(|&l| l != u64::MAX)
    }

    /// Whether the group holds more than its limit (never, without a limit
    /// or when what it holds is unknown). With an estimate, the estimate
    /// is compared.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System).with_owner_tags();
    /// let job = allocscope::Group::new("doc.over_limit").with_held_limit(64);
    /// let kept = job.run(|| vec![0u8; 65]);
    /// assert!(job.over_limit());
    /// # drop(kept);
    /// ```
    pub fn over_limit(&self) -> bool {
        self.held_limit().is_some_and(|limit| {
            let held = self.held();
            held.is_known() && held.bytes > limit
        })
    }

    /// Bytes left before the limit (0 at or over it); `None` without a
    /// limit, or when what the group holds is unknown.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System).with_owner_tags();
    /// let job = allocscope::Group::new("doc.headroom").with_held_limit(100);
    /// let kept = job.run(|| vec![0u8; 30]);
    /// assert_eq!(job.headroom(), Some(70));
    /// # drop(kept);
    /// ```
    pub fn headroom(&self) -> Option<u64> {
        let limit = self.held_limit()?;
        let held = self.held();
        held.is_known().then(|| limit.saturating_sub(held.bytes))
    }
}

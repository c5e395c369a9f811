//! What the handles of one group share: the block ([`GroupShared`]), its
//! per-slot [`Shard`]s of counters and its rows of named operations, and
//! the list of groups kept for the tagged blocks they still hold. See the
//! module docs of [`group`](super) for the memory rules.

use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::{held, MAX_GROUP_OPS};
use crate::counters::held::{self as ledger, HeldCounts, Ledger};
use crate::counters::trip::SharedTrip;
use crate::counters::{self, CounterSet, Counts};

/// What the handles of one group share.
pub(super) struct GroupShared {
    /// Handles alive (as `Arc`'s strong count).
    pub(super) refs: AtomicUsize,
    pub(super) name: &'static str,
    /// A number no other group of the process has had: tells a group from
    /// an earlier one at the same address.
    pub(super) serial: u64,
    /// The first slot's shard, inside the block: a group that one thread
    /// at a time works in (a task's, a request's) needs no other.
    pub(super) first: Shard,
    /// The shards of the other slots that worked in the group: a list that
    /// only grows (one node per slot), freed with the group.
    pub(super) shards: AtomicPtr<Shard>,
    /// Windows that ended on a thread after its exit hook had run (its slot
    /// may belong to another thread by then): counted here, with atomic
    /// adds.
    pub(super) late: CounterSet<AtomicU64>,
    pub(super) late_windows: AtomicU64,
    /// The rows of named operations, made when an operation first ends in
    /// the group (most groups have none: no room taken for them).
    pub(super) ops: AtomicPtr<OpRows>,
    /// The shared trip of a budget checking this group, or null; holds one
    /// strong count of an `Arc<SharedTrip>` while set.
    pub(super) budget: AtomicPtr<SharedTrip>,
    /// Threads between reading `budget` and taking their count of it: the
    /// budget's end waits for them (see [`watch_budget`]).
    pub(super) budget_readers: AtomicUsize,
    /// With owner tags: the group's ledger, whose address its blocks carry
    /// (null without tags).
    pub(super) ledger: *mut Ledger,
    /// The soft limit on held bytes ([`Group::with_held_limit`]);
    /// `u64::MAX` for none.
    pub(super) held_limit: AtomicU64,
    /// The next group on the list of groups kept for their held blocks
    /// ([`keep_or_free`]).
    pub(super) next_kept: AtomicPtr<GroupShared>,
}

/// One registry slot's figures in a group, written only by the thread that
/// holds the slot. Aligned so that no two threads' shards share a line.
#[repr(align(128))]
pub(super) struct Shard {
    /// The slot, fixed once claimed; [`UNCLAIMED`] for a group's inline
    /// shard that no slot took yet.
    pub(super) slot: AtomicUsize,
    /// The next shard of the group's list; fixed once the shard is pushed.
    pub(super) next: *mut Shard,
    pub(super) counts: CounterSet<AtomicU64>,
    /// Rounded bytes of the windows, and the windows that had none (not
    /// jemalloc).
    pub(super) rounded: AtomicU64,
    pub(super) unrounded_windows: AtomicU64,
    /// See [`Group`]: the highest live level of this slot's windows.
    pub(super) peak: AtomicI64,
    /// Ended windows.
    pub(super) windows: AtomicU64,
    /// The owning thread's entries of the group now (see the module docs'
    /// "Memory").
    pub(super) open: AtomicU64,
    /// With owner tags: what the owning thread allocated in the group, as
    /// the allocator adds it ([`held`]).
    pub(super) held: HeldCounts,
}

/// The slot of an inline shard no thread has claimed.
pub(super) const UNCLAIMED: usize = usize::MAX;

/// A group's rows of named operations.
pub(super) struct OpRows(pub(super) [OpRow; MAX_GROUP_OPS]);

/// A group's row for one named operation.
pub(super) struct OpRow {
    /// The operation's name as the process-wide table interned it (one
    /// address per name), or null while the row is free.
    pub(super) op: AtomicPtr<&'static str>,
    pub(super) calls: AtomicU64,
    pub(super) counts: CounterSet<AtomicU64>,
    pub(super) peak_bytes: AtomicU64,
}

/// Adds `v` to a field only this thread writes: a relaxed load and store
/// (a plain add), where a read-modify-write would cost a locked
/// instruction.
pub(super) fn add_owned(field: &AtomicU64, v: u64) {
    field.store(field.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed);
}

impl Shard {
    pub(super) const fn new(slot: usize) -> Shard {
        Shard {
            slot: AtomicUsize::new(slot),
            next: ptr::null_mut(),
            counts: CounterSet::zero(),
            rounded: AtomicU64::new(0),
            unrounded_windows: AtomicU64::new(0),
            peak: AtomicI64::new(0),
            windows: AtomicU64::new(0),
            open: AtomicU64::new(0),
            held: HeldCounts::new(),
        }
    }

    /// Adds a window that ended (or was suspended) on the owning thread.
    #[inline]
    pub(super) fn commit(&self, diff: Counts, peak_above: u64, rounded: Option<u64>) {
        // Read once, written back once: the owner is the only writer.
        let old = self.counts.load();
        for c in counters::Counter::ALL {
            self.counts[c].store(old[c].wrapping_add(diff[c]), Ordering::Relaxed);
        }
        let level = old.live().saturating_add(peak_above as i64);
        if level > self.peak.load(Ordering::Relaxed) {
            self.peak.store(level, Ordering::Relaxed);
        }
        match rounded {
            Some(r) => add_owned(&self.rounded, r),
            None => add_owned(&self.unrounded_windows, 1),
        }
    }
}

impl GroupShared {
    pub(super) fn new(name: &'static str) -> GroupShared {
        static SERIALS: AtomicU64 = AtomicU64::new(1);
        GroupShared {
            refs: AtomicUsize::new(1),
            name,
            serial: SERIALS.fetch_add(1, Ordering::Relaxed),
            first: Shard::new(UNCLAIMED),
            shards: AtomicPtr::new(ptr::null_mut()),
            late: CounterSet::zero(),
            late_windows: AtomicU64::new(0),
            ops: AtomicPtr::new(ptr::null_mut()),
            budget: AtomicPtr::new(ptr::null_mut()),
            budget_readers: AtomicUsize::new(0),
            ledger: if ledger::tags_on() { Box::into_raw(Box::new(Ledger::new())) } else { ptr::null_mut() },
            held_limit: AtomicU64::new(u64::MAX),
            next_kept: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The group's shards (the inline one, claimed or not: an unclaimed
    /// shard holds only zeros).
    pub(super) fn shards(&self) -> impl Iterator<Item = &Shard> {
        let mut p = self.shards.load(Ordering::Acquire);
        std::iter::once(&self.first).chain(std::iter::from_fn(move || {
            // SAFETY: shards are freed only with the group, which `self`
            // borrows; `next` is fixed before a shard is published.
            let shard = unsafe { p.as_ref() }?;
            p = shard.next;
            Some(shard)
        }))
    }

    /// The shard of registry slot `slot`: the inline one, claimed by the
    /// first slot that asks, or one made on the slot's first use. Only the
    /// thread holding the slot calls this for it, so no two shards of one
    /// slot are made.
    pub(super) fn shard(&self, slot: usize) -> &Shard {
        if let Some(shard) = self.shards().find(|s| s.slot.load(Ordering::Relaxed) == slot) {
            return shard;
        }
        if self.first.slot.compare_exchange(UNCLAIMED, slot, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            return &self.first;
        }
        let new = crate::jemalloc::library_work(|| Box::into_raw(Box::new(Shard::new(slot))));
        let mut head = self.shards.load(Ordering::Acquire);
        loop {
            // SAFETY: `new` is ours until it is published below.
            unsafe { (*new).next = head };
            match self.shards.compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire) {
                // SAFETY: published; freed only with the group.
                Ok(_) => return unsafe { &*new },
                Err(now) => head = now,
            }
        }
    }
}

impl Drop for GroupShared {
    /// Runs inside [`counters::as_library`] (see [`Group`]'s `Drop`).
    fn drop(&mut self) {
        let mut p = *self.shards.get_mut();
        while !p.is_null() {
            // SAFETY: every shard was made by `Box::into_raw` in `shard`,
            // and nothing else can reach it once the group is dropped.
            let shard = unsafe { Box::from_raw(p) };
            p = shard.next;
        }
        if !self.ledger.is_null() {
            // SAFETY: made by `Box::into_raw` in `new`; no block carries its
            // address any more (`keep_or_free`).
            drop(unsafe { Box::from_raw(self.ledger) });
        }
        let ops = *self.ops.get_mut();
        if !ops.is_null() {
            // SAFETY: made by `Box::into_raw` in `add_op`, reachable only
            // from the group.
            drop(unsafe { Box::from_raw(ops) });
        }
        let budget = *self.budget.get_mut();
        if !budget.is_null() {
            // SAFETY: a non-null `budget` holds one strong count, taken by
            // `Arc::into_raw` in `start_budget`.
            drop(unsafe { Arc::from_raw(budget) });
        }
    }
}

/// Groups with no handle and no entry left that still hold tagged blocks:
/// freed by [`reclaim`] once they hold none.
pub(super) static KEPT: AtomicPtr<GroupShared> = AtomicPtr::new(ptr::null_mut());

/// A group whose last handle went: freed now if nothing points at it any
/// more; kept for good if an entry does (a forgotten guard); kept on
/// [`KEPT`] while it holds tagged blocks, whose frees will still read its
/// ledger. No block can be tagged with it any more (that needs a window),
/// so what it holds only goes down.
pub(super) fn keep_or_free(shared: NonNull<GroupShared>) {
    // SAFETY: no handle is left, but nothing has freed the block.
    let g = unsafe { shared.as_ref() };
    if g.shards().any(|s| s.open.load(Ordering::Relaxed) != 0) {
        return;
    }
    if held::holds_blocks(g) {
        let mut head = KEPT.load(Ordering::Acquire);
        loop {
            g.next_kept.store(head, Ordering::Relaxed);
            match KEPT.compare_exchange_weak(head, shared.as_ptr(), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }
    // SAFETY: no handle, no entry and no block points at the block; it was
    // made by `Box::into_raw` in `Group::new`.
    counters::as_library(|| drop(unsafe { Box::from_raw(shared.as_ptr()) }));
}

/// Frees the kept groups that hold nothing any more (called outside the
/// allocator: when a group is made, when a snapshot is taken).
pub(crate) fn reclaim() {
    if KEPT.load(Ordering::Relaxed).is_null() {
        return;
    }
    let mut p = KEPT.swap(ptr::null_mut(), Ordering::AcqRel);
    while let Some(shared) = NonNull::new(p) {
        // SAFETY: a kept group is freed only here, by the one reclaimer
        // that took it off the list.
        p = unsafe { shared.as_ref() }.next_kept.load(Ordering::Relaxed);
        keep_or_free(shared);
    }
}

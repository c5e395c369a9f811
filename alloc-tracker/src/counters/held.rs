//! Held bytes per owner, with owner tags
//! ([`CountingAlloc::with_owner_tags`](crate::CountingAlloc::with_owner_tags)):
//! the allocator's side of [`Group::held`](crate::Group::held).
//!
//! A group has a [`Ledger`], whose address is the tag its blocks carry, and
//! each of its shards a [`HeldCounts`]. While a thread works in a group
//! (its innermost), the group layer points the thread's block at both
//! ([`set_owner`]):
//!
//! - an allocation adds its size and one block to the thread's
//!   `HeldCounts` (written by that thread only: plain adds, as counting
//!   does) and returns the ledger's address for the trailer;
//! - a free reads the trailer. On a thread whose innermost group is the
//!   block's owner (a request freeing its own temporaries: the common
//!   case), it takes its size and one block off that thread's
//!   `HeldCounts`, with plain writes as well. Anywhere else, it adds them
//!   to the ledger's released figures: atomic adds, to one of [`STRIPES`]
//!   stripes chosen by the thread's registry slot, so that threads freeing
//!   one group's memory rarely share a line;
//! - a reallocation keeps its owner, whose figures take the difference of
//!   the sizes, the same way.
//!
//! What a group holds is its shards' `HeldCounts` minus its ledger's
//! released figures (a shard's own figures may go below zero: what its
//! thread freed of blocks other threads of the group allocated; the sums
//! wrap back). The library's own allocations (`as_library`) and those
//! of a thread past its exit hook carry no owner.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};

/// Stripes of a ledger's released figures.
pub(crate) const STRIPES: usize = 8;

/// What one thread allocated in one group, less what it freed of the
/// group's blocks while in it: written only by that thread (wrapping).
#[derive(Debug, Default)]
pub(crate) struct HeldCounts {
    bytes: AtomicU64,
    blocks: AtomicU64,
}

impl HeldCounts {
    pub(crate) const fn new() -> HeldCounts {
        HeldCounts { bytes: AtomicU64::new(0), blocks: AtomicU64::new(0) }
    }

    /// Bytes and blocks added so far, less those taken off (wrapping).
    pub(crate) fn read(&self) -> (u64, u64) {
        (self.bytes.load(Ordering::Relaxed), self.blocks.load(Ordering::Relaxed))
    }

    /// Adds `bytes` and `blocks` (wrapping: a free adds their negations).
    /// Only the owning thread calls it.
    #[inline(always)]
    fn add(&self, bytes: u64, blocks: u64) {
        self.bytes.store(self.bytes.load(Ordering::Relaxed).wrapping_add(bytes), Ordering::Relaxed);
        self.blocks.store(self.blocks.load(Ordering::Relaxed).wrapping_add(blocks), Ordering::Relaxed);
    }
}

/// One stripe of released figures, alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Stripe {
    bytes: AtomicI64,
    blocks: AtomicI64,
}

/// A group's released figures: what frees (anywhere) took back of the
/// group's blocks. Its address is the owner tag.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    released: [Stripe; STRIPES],
}

impl Ledger {
    pub(crate) fn new() -> Ledger {
        Ledger::default()
    }

    /// Bytes and blocks released so far. Each stripe only grows, so a sum
    /// read stripe by stripe never exceeds what was released by the end of
    /// the read: a group that reads as holding no block holds none.
    pub(crate) fn released(&self) -> (i64, i64) {
        self.released.iter().fold((0, 0), |(b, n), s| {
            // Acquire: a free's every access to the ledger happens before
            // a reader that sees its block released can free the ledger.
            let blocks = s.blocks.load(Ordering::Acquire);
            (b.wrapping_add(s.bytes.load(Ordering::Relaxed)), n.wrapping_add(blocks))
        })
    }

    /// Adds to one stripe; a free's block count last (see `released`).
    fn release(&self, slot: usize, bytes: i64, blocks: i64) {
        let stripe = &self.released[slot % STRIPES];
        stripe.bytes.fetch_add(bytes, Ordering::Relaxed);
        if blocks != 0 {
            stripe.blocks.fetch_add(blocks, Ordering::Release);
        }
    }
}

/// An owner tag, the last word of a tagged block: its owner group's
/// ledger (null: no owner). A pointer, not an address, so that the free
/// that reads it back reaches the ledger with the provenance it was made
/// with (no integer-to-pointer cast).
pub(crate) type Tag = *const Ledger;

/// The thread's owner: the tag its new blocks get, where it adds them,
/// and the owner group's serial (for the sampler's estimate without tags).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Owner {
    /// The owner's ledger (null: none, or no tags in this process).
    pub(crate) tag: Tag,
    pub(crate) held: *const HeldCounts,
    /// The group's serial (0: none).
    pub(crate) serial: u64,
}

impl Owner {
    pub(crate) const NONE: Owner = Owner { tag: std::ptr::null(), held: std::ptr::null(), serial: 0 };
}

/// Makes `owner` the current thread's owner (the group layer, whenever the
/// thread's innermost group changes). The caller keeps the ledger and the
/// counts alive while they are the owner's, and as long as blocks carry
/// the tag.
pub(crate) fn set_owner(owner: Owner) {
    super::with_local(|l| l.owner.set(owner));
}

std::thread_local! {
    /// Set by an allocation in tagged mode while [`tags_on`] probes.
    static SAW_TAGS: Cell<bool> = const { Cell::new(false) };
}

/// The owner a probe sets: a tag no block gets and nothing reads (the
/// probe's allocation is the library's own, which carries no owner), and
/// no counts.
const PROBE: Owner = Owner { tag: NonNull::dangling().as_ptr(), held: std::ptr::null(), serial: 0 };

/// Whether the global allocator puts owner tags on its blocks: found out
/// once, by allocating a block of the library's own under the [`PROBE`]
/// owner and seeing whether the tagged path saw it (off its hot path: only
/// the library's own allocations under an owner reach the check).
pub(crate) fn tags_on() -> bool {
    static KNOWN: AtomicU8 = AtomicU8::new(0);
    match KNOWN.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            SAW_TAGS.set(false);
            let was = super::with_local(|l| l.owner.replace(PROBE));
            super::as_library(|| drop(std::hint::black_box(Box::new(0u8))));
            super::with_local(|l| l.owner.set(was));
            let on = SAW_TAGS.get();
            KNOWN.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
    }
}

/// An allocation of `size` bytes on a thread in tagged mode: adds it to
/// the owner's counts, and returns the tag to write (null: no owner).
#[inline(always)]
pub(super) fn on_alloc(l: &super::ThreadCounters, size: u64) -> Tag {
    let owner = l.owner.get();
    if owner.tag.is_null() {
        return owner.tag;
    }
    if l.mode.get() & (super::LIBRARY | super::DETACHED) != 0 {
        if owner.tag == PROBE.tag {
            SAW_TAGS.set(true);
        }
        return std::ptr::null();
    }
    // SAFETY: the group layer keeps the owner's counts alive while they
    // are set; only this thread writes them.
    unsafe { &*owner.held }.add(size, 1);
    owner.tag
}

/// The owner's own counts when a block tagged `tag` is the owner's and the
/// thread may write them (not past its exit hook, when its shard may be
/// another thread's by now); `None` otherwise.
#[inline(always)]
fn own_counts(l: &super::ThreadCounters, tag: Tag) -> Option<&HeldCounts> {
    let owner = l.owner.get();
    if tag == owner.tag && l.mode.get() & super::DETACHED == 0 {
        // SAFETY: as in `on_alloc` (a non-null tag equal to the owner's is
        // a set owner, whose counts are alive).
        Some(unsafe { &*owner.held })
    } else {
        None
    }
}

/// A free of `size` bytes of a block tagged `tag` (null: no owner).
#[inline(always)]
pub(super) fn on_free(l: &super::ThreadCounters, tag: Tag, size: u64) {
    if tag.is_null() {
        return;
    }
    if let Some(own) = own_counts(l, tag) {
        own.add(size.wrapping_neg(), u64::MAX); // - size, - 1
        return;
    }
    // SAFETY: a non-null tag is a ledger, which lives as long as a block
    // carries it (the group layer frees a group's ledger only once it
    // holds nothing).
    unsafe { &*tag }.release(l.slot.get(), size as i64, 1);
}

/// A reallocation from `old` to `new` bytes of a block tagged `tag`: it
/// keeps its owner, which now holds the difference.
#[inline(always)]
pub(super) fn on_realloc(l: &super::ThreadCounters, tag: Tag, old: u64, new: u64) {
    if tag.is_null() {
        return;
    }
    if let Some(own) = own_counts(l, tag) {
        own.add(new.wrapping_sub(old), 0);
        return;
    }
    // SAFETY: as in `on_free`.
    unsafe { &*tag }.release(l.slot.get(), (old as i64).wrapping_sub(new as i64), 0);
}

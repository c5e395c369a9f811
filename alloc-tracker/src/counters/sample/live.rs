//! The table of held sampled blocks: each followed block's address and
//! what it stands for, so that a free on a sampling thread finds its sample
//! and takes it out of the held figures, and a leak budget's trace finds
//! what survived its run. A fixed static open-addressing table,
//! [`LIVE_PROBES`] slots probed at most (insert and lookup), with
//! tombstones that later inserts reuse; a block that finds no slot is
//! counted as untracked ([`untracked`]).
//!
//! A free must find out cheaply that its block was not followed (nearly
//! every block): a 4 KiB bitmap filter over the followed addresses
//! ([`FILTER_BITS`]) answers with one load and a bit test, inline in the
//! free's lane; a set bit sends the free to a 128 KiB bitmap of the table's
//! occupied slots, which gives the few slots to compare.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::stacks::{self, MAX_STACKS};

/// Live sampled blocks followed at once.
pub(crate) const MAX_HELD_SAMPLES: usize = 1 << 20;
/// Slots a live block may probe (insert and lookup).
const LIVE_PROBES: usize = 32;

/// A held sampled block: its address (0 empty, [`TOMBSTONE`] removed,
/// [`BUSY`] being written), and what it stands for.
struct Live {
    addr: AtomicUsize,
    /// The stack's index (low 32 bits) and the estimated allocations as
    /// `f32` bits (high 32 bits).
    stack_and_allocs: AtomicU64,
    /// Estimated bytes, as `f64` bits.
    bytes: AtomicU64,
    /// The serial of the group the block was allocated in (0: none).
    group: AtomicU64,
}

const TOMBSTONE: usize = usize::MAX;
const BUSY: usize = usize::MAX - 1;

static LIVE: [Live; MAX_HELD_SAMPLES] = [const {
    Live {
        addr: AtomicUsize::new(0),
        stack_and_allocs: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        group: AtomicU64::new(0),
    }
}; MAX_HELD_SAMPLES];
/// Bit `i` set while `LIVE[i]` holds a live block.
static OCCUPIED: [AtomicU64; MAX_HELD_SAMPLES / 64] = [const { AtomicU64::new(0) }; MAX_HELD_SAMPLES / 64];

/// A filter over the live table, for frees: bit `h` of [`FILTER_BITS`] is
/// set while some followed block's address hashes to `h`, so that a free
/// learns with one load of a 4 KiB bitmap (kept in cache by every free) and
/// a bit test that its block was not sampled; only a set bit sends it to
/// the table. [`FILTER_COUNTS`] counts the followed blocks per bit, to
/// know when a bit can be cleared: it is touched only when a block is
/// followed or unfollowed.
static FILTER_BITS: [AtomicU64; FILTER_LEN / 64] = [const { AtomicU64::new(0) }; FILTER_LEN / 64];
static FILTER_COUNTS: [AtomicU32; FILTER_LEN] = [const { AtomicU32::new(0) }; FILTER_LEN];
const FILTER_LEN: usize = 1 << 15;

#[inline(always)]
fn filter_index(addr: usize) -> usize {
    (addr.wrapping_mul(0xD6E8_FEB8_6659_FD93_u64 as usize) >> 17) % FILTER_LEN
}

/// Whether `ptr` may be a followed block: false for nearly every block.
#[inline(always)]
pub(in crate::counters) fn maybe_followed(ptr: *mut u8) -> bool {
    let h = filter_index(ptr as usize);
    FILTER_BITS[h / 64].load(Ordering::Relaxed) & (1 << (h % 64)) != 0
}

/// One more followed block hashes to `addr`'s filter bit.
fn filter_add(addr: usize) {
    let h = filter_index(addr);
    if FILTER_COUNTS[h].fetch_add(1, Ordering::AcqRel) == 0 {
        FILTER_BITS[h / 64].fetch_or(1 << (h % 64), Ordering::Release);
    }
}

/// One followed block fewer hashes to `addr`'s filter bit. A bit cleared
/// here while another thread sets it again (its count went 0, 1, 0, 1) is
/// set again by that thread's `fetch_or`, which comes after its count's
/// increment; the worst a race leaves is a bit set with no block behind
/// it: one free sent to the table for nothing.
fn filter_remove(addr: usize) {
    let h = filter_index(addr);
    if FILTER_COUNTS[h].fetch_sub(1, Ordering::AcqRel) == 1 {
        FILTER_BITS[h / 64].fetch_and(!(1 << (h % 64)), Ordering::Release);
        // Set again if a follower came in between.
        if FILTER_COUNTS[h].load(Ordering::Acquire) != 0 {
            FILTER_BITS[h / 64].fetch_or(1 << (h % 64), Ordering::Release);
        }
    }
}

/// Samples whose block found no slot in the live table.
static UNTRACKED: AtomicU64 = AtomicU64::new(0);

/// What a followed held block stands for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Followed {
    pub(super) stack: u32,
    /// A leak trace's tag (0: a sample of the heap profile).
    pub(super) tag: u32,
    pub(super) allocs: f32,
    pub(super) bytes: f64,
    /// The serial of the group the block was allocated in (0: none).
    pub(super) group: u64,
}

/// Bits of a live entry's stack index; the leak tag takes the other
/// [`TAG_BITS`] of the low 32 bits.
const STACK_BITS: u32 = MAX_STACKS.trailing_zeros();
pub(super) const TAG_BITS: u32 = 32 - STACK_BITS;
const _: () = assert!(MAX_STACKS.is_power_of_two());

impl Followed {
    fn pack(self) -> u64 {
        u64::from(self.stack | self.tag << STACK_BITS) | u64::from(self.allocs.to_bits()) << 32
    }

    fn unpack(packed: u64, bytes: u64, group: u64) -> Followed {
        let low = packed as u32;
        Followed {
            stack: low & ((1 << STACK_BITS) - 1),
            tag: low >> STACK_BITS,
            allocs: f32::from_bits((packed >> 32) as u32),
            bytes: f64::from_bits(bytes),
            group,
        }
    }

    /// Adds (or, with `sign` -1, takes out) this block's share of its
    /// stack's held figures; a leak trace's entries have none.
    fn add_live(self, sign: f64) {
        if self.tag == 0 {
            stacks::add_live(self.stack as usize, sign * f64::from(self.allocs), sign * self.bytes);
        }
    }
}

/// The first slot of `addr`'s probe window.
fn live_start(addr: usize) -> usize {
    (addr.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize) >> 7) % MAX_HELD_SAMPLES
}

/// The occupied bits of the probe window starting at slot `start`: bit `p`
/// for slot `start + p` (modulo the table). One or two loads.
#[inline(always)]
fn window_bits(start: usize) -> u64 {
    let (word, offset) = (start / 64, start % 64);
    let mut bits = OCCUPIED[word].load(Ordering::Acquire) >> offset;
    if offset > 64 - LIVE_PROBES {
        bits |= OCCUPIED[(word + 1) % OCCUPIED.len()].load(Ordering::Acquire) << (64 - offset);
    }
    bits & ((1 << LIVE_PROBES) - 1)
}

fn set_occupied(i: usize, on: bool) {
    let bit = 1u64 << (i % 64);
    if on {
        OCCUPIED[i / 64].fetch_or(bit, Ordering::Release);
    } else {
        OCCUPIED[i / 64].fetch_and(!bit, Ordering::Release);
    }
}

/// Puts `addr` in the live table; false when its probe window is full.
fn follow(addr: usize, f: Followed) -> bool {
    let start = live_start(addr);
    for probe in 0..LIVE_PROBES {
        let i = (start + probe) % MAX_HELD_SAMPLES;
        let slot = &LIVE[i];
        let cur = slot.addr.load(Ordering::Relaxed);
        if (cur == 0 || cur == TOMBSTONE)
            && slot.addr.compare_exchange(cur, BUSY, Ordering::Acquire, Ordering::Relaxed).is_ok()
        {
            slot.stack_and_allocs.store(f.pack(), Ordering::Relaxed);
            slot.group.store(f.group, Ordering::Relaxed);
            slot.bytes.store(f.bytes.to_bits(), Ordering::Relaxed);
            slot.addr.store(addr, Ordering::Release);
            set_occupied(i, true);
            filter_add(addr);
            return true;
        }
    }
    false
}

/// Takes `addr` out of the live table and its stack's held figures, if it
/// is there; returns what it stood for.
fn unfollow(addr: usize) -> Option<Followed> {
    let start = live_start(addr);
    let mut bits = window_bits(start);
    while bits != 0 {
        let i = (start + bits.trailing_zeros() as usize) % MAX_HELD_SAMPLES;
        bits &= bits - 1;
        if let Some(f) = remove(i, addr) {
            f.add_live(-1.0);
            return Some(f);
        }
    }
    None
}

/// Takes slot `i` out of the live table if it holds `addr`; returns what
/// it stood for.
fn remove(i: usize, addr: usize) -> Option<Followed> {
    let slot = &LIVE[i];
    // Claimed as busy first and only released as a tombstone once its bit
    // is cleared: a follower that reused the slot at once would otherwise
    // have its own bit cleared by us.
    if slot.addr.load(Ordering::Acquire) != addr
        || slot.addr.compare_exchange(addr, BUSY, Ordering::Acquire, Ordering::Relaxed).is_err()
    {
        return None;
    }
    set_occupied(i, false);
    let f = Followed::unpack(
        slot.stack_and_allocs.load(Ordering::Relaxed),
        slot.bytes.load(Ordering::Relaxed),
        slot.group.load(Ordering::Relaxed),
    );
    slot.addr.store(TOMBSTONE, Ordering::Release);
    filter_remove(addr);
    Some(f)
}

/// A free on a sampling thread whose block passed the filter
/// ([`maybe_followed`]): takes it out of the held figures if it was
/// sampled.
#[cold]
#[inline(never)]
pub(in crate::counters) fn on_free(ptr: *mut u8) {
    if window_bits(live_start(ptr as usize)) != 0 {
        unfollow(ptr as usize);
    }
}

/// Before a `realloc` on a sampling thread is forwarded: takes the old
/// block out of the live table while its address is still this caller's
/// (the inner allocator may hand it to another thread once it moved the
/// block). The caller puts it back with [`refollow`] if the reallocation
/// fails.
#[inline(never)]
pub(in crate::counters) fn unfollow_before_realloc(ptr: *mut u8) -> Option<Followed> {
    if !maybe_followed(ptr) {
        return None;
    }
    unfollow(ptr as usize)
}

/// After a failed `realloc`: the old block is still held; follow it again.
#[cold]
#[inline(never)]
pub(in crate::counters) fn refollow(ptr: *mut u8, f: Followed) {
    follow_live(ptr as usize, f);
}

/// Follows `addr` and adds its share to its stack's held figures; a
/// profile sample that finds no room is counted as untracked. False when
/// there was no room.
pub(super) fn follow_live(addr: usize, f: Followed) -> bool {
    let followed = follow(addr, f);
    if followed {
        f.add_live(1.0);
    } else if f.tag == 0 {
        UNTRACKED.fetch_add(1, Ordering::Relaxed);
    }
    followed
}

/// Takes every live entry tagged `tag` out of the table, handing each to
/// `f`. A scan of the occupied bitmap (16 Ki words) and of the occupied
/// slots: for tests, not for the allocator path.
pub(super) fn take_tagged(tag: u32, mut f: impl FnMut(Followed)) {
    for (w, word) in OCCUPIED.iter().enumerate() {
        let mut bits = word.load(Ordering::Acquire);
        while bits != 0 {
            let i = w * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let addr = LIVE[i].addr.load(Ordering::Acquire);
            if addr == 0 || addr == TOMBSTONE || addr == BUSY {
                continue;
            }
            let packed = LIVE[i].stack_and_allocs.load(Ordering::Relaxed);
            if Followed::unpack(packed, 0, 0).tag == tag {
                if let Some(followed) = remove(i, addr) {
                    f(followed);
                }
            }
        }
    }
}

/// The live profile samples (no leak trace's) allocated in the group with
/// serial `group`: their estimated bytes and allocations, and how many. A
/// scan of the occupied bitmap and of the occupied slots, outside the
/// allocator path.
pub(super) fn of_group(group: u64) -> (f64, f64, u64) {
    let mut totals = (0.0, 0.0, 0);
    for (w, word) in OCCUPIED.iter().enumerate() {
        let mut bits = word.load(Ordering::Acquire);
        while bits != 0 {
            let i = w * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let slot = &LIVE[i];
            let addr = slot.addr.load(Ordering::Acquire);
            if addr == 0 || addr == TOMBSTONE || addr == BUSY || slot.group.load(Ordering::Relaxed) != group {
                continue;
            }
            let f = Followed::unpack(
                slot.stack_and_allocs.load(Ordering::Relaxed),
                slot.bytes.load(Ordering::Relaxed),
                group,
            );
            if f.tag == 0 {
                totals = (totals.0 + f.bytes, totals.1 + f64::from(f.allocs), totals.2 + 1);
            }
        }
    }
    totals
}

/// Samples whose block found no slot in the live table.
pub(super) fn untracked() -> u64 {
    UNTRACKED.load(Ordering::Relaxed)
}

/// Clears the table, its filter and the untracked count.
pub(super) fn reset() {
    for l in &LIVE {
        l.addr.store(0, Ordering::Relaxed);
    }
    for word in &OCCUPIED {
        word.store(0, Ordering::Relaxed);
    }
    for word in &FILTER_BITS {
        word.store(0, Ordering::Relaxed);
    }
    for count in &FILTER_COUNTS {
        count.store(0, Ordering::Relaxed);
    }
    UNTRACKED.store(0, Ordering::Relaxed);
}

/// In a `fork`ed child: clears the live slots in `live` that a vanished
/// thread left half written; when the whole table is repaired (a fork, not
/// a test of a few slots), rebuilds the filter from it, since a vanished
/// thread may have been between a slot's write and its filter entry's.
#[cfg_attr(not(unix), allow(dead_code))]
pub(super) fn clear_half_written(live: std::ops::Range<usize>) {
    let whole_table = live.len() == MAX_HELD_SAMPLES;
    for i in live {
        if LIVE[i].addr.compare_exchange(BUSY, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            set_occupied(i, false);
        }
    }
    if whole_table {
        for word in &FILTER_BITS {
            word.store(0, Ordering::Relaxed);
        }
        for count in &FILTER_COUNTS {
            count.store(0, Ordering::Relaxed);
        }
        for l in &LIVE {
            let addr = l.addr.load(Ordering::Relaxed);
            if addr != 0 && addr != TOMBSTONE && addr != BUSY {
                filter_add(addr);
            }
        }
    }
}

/// Whether `ptr` is in the live table now (for tests).
#[cfg(test)]
pub(crate) fn is_followed(ptr: *mut u8) -> bool {
    let addr = ptr as usize;
    let start = live_start(addr);
    (0..LIVE_PROBES).any(|p| LIVE[(start + p) % MAX_HELD_SAMPLES].addr.load(Ordering::Acquire) == addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Addresses whose probe windows all start at slot `target`: the
    /// inverse of `live_start`'s multiplier (odd, so invertible modulo
    /// 2^64) undoes the hash.
    fn colliding(target: usize, n: usize) -> Vec<usize> {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut inv: u64 = 1;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(K.wrapping_mul(inv)));
        }
        let addrs: Vec<usize> =
            (0..n).map(|j| (((target as u64) << 7) + j as u64).wrapping_mul(inv) as usize).collect();
        assert!(addrs.iter().all(|&a| live_start(a) == target));
        addrs
    }

    fn entry() -> Followed {
        Followed { stack: 0, tag: 0, allocs: 1.0, bytes: 8.0, group: 0 }
    }

    /// A full window refuses at once (bounded probes) instead of scanning
    /// the table; a tombstone in the window is reused; a lookup finds every
    /// followed block and clears its occupied bit.
    #[test]
    #[cfg_attr(miri, ignore = "touches the 24 MiB live table, which Miri would track byte by byte for minutes")]
    fn the_live_tables_probe_window_is_bounded_and_reuses_tombstones() {
        // A region of the table no other test touches: the window of slot
        // MAX_HELD_SAMPLES - 8 wraps around the table's end.
        let addrs = colliding(MAX_HELD_SAMPLES - 8, LIVE_PROBES + 2);
        for &a in &addrs[..LIVE_PROBES] {
            assert!(follow(a, entry()), "room in the window");
        }
        assert_eq!(window_bits(MAX_HELD_SAMPLES - 8).count_ones() as usize, LIVE_PROBES);
        assert!(!follow(addrs[LIVE_PROBES], entry()), "the window is full: refused, not searched further");
        assert!(unfollow(addrs[3]).is_some());
        assert!(unfollow(addrs[3]).is_none(), "taken out once");
        assert!(follow(addrs[LIVE_PROBES + 1], entry()), "the tombstone is reused");
        for &a in addrs[..LIVE_PROBES].iter().filter(|&&a| a != addrs[3]).chain([&addrs[LIVE_PROBES + 1]]) {
            assert!(unfollow(a).is_some(), "{a:#x} found within its window");
        }
        assert_eq!(window_bits(MAX_HELD_SAMPLES - 8), 0, "every occupied bit cleared");
    }

    /// In a forked child a slot left half written by a vanished thread
    /// would make probes spin (a stack) or stay taken (a live block).
    #[test]
    #[cfg_attr(miri, ignore = "touches the 24 MiB live table, which Miri would track byte by byte for minutes")]
    fn a_fork_child_clears_half_written_slots() {
        let half_written = stacks::mark_half_written_for_test(MAX_STACKS - 1);
        let live = LIVE.len() - 100;
        LIVE[live].addr.store(BUSY, Ordering::Relaxed);
        set_occupied(live, true);
        // The function the fork handler runs, on these slots only: other
        // tests sample concurrently in this process.
        clear_half_written(live..live + 1);
        stacks::clear_half_written(1);
        assert_eq!(half_written(), 0);
        assert_eq!(LIVE[live].addr.load(Ordering::Relaxed), 0);
        assert_eq!(OCCUPIED[live / 64].load(Ordering::Relaxed) & (1 << (live % 64)), 0);
    }
}

//! The heap sampler's allocator-side lane: the per-thread byte countdown,
//! and the fixed tables of sampled stacks and live sampled blocks. The
//! public API and the profile's writers are in [`crate::profile`].
//!
//! # How
//!
//! A thread that samples (its own [`start`], or every thread at the
//! process-wide rate) has the `SAMPLE` mode bit, which sends its
//! allocations and frees down the sampling lane (threads that do not sample
//! keep the fast path: the feature costs nothing when off). There,
//! sampling is by bytes, as Go's `runtime.MemProfileRate`: each allocation
//! subtracts its size from a countdown kept beside the thread's counters,
//! whose intervals are drawn from an exponential distribution with the rate
//! as mean, so an allocation of `s` bytes is sampled with probability
//! `p = 1 - exp(-s / rate)`. A sample stands for `1 / p` allocations and
//! `s / p` bytes, so the estimates add up to the true totals on average. A
//! rate of 1 samples every allocation: the figures are then exact.
//!
//! A sample records the stack's raw return addresses
//! ([`crate::stack::capture`]) into a fixed static table of stacks, and the
//! block's address into a fixed table of live sampled blocks, so that a
//! free finds its sample and takes it out of the live figures. None of this
//! allocates through the Rust global allocator.
//!
//! # A bounded cost per event
//!
//! Both tables are open-addressing hash tables whose probes are bounded:
//! [`STACK_PROBES`] slots for a stack, [`LIVE_PROBES`] for a live block.
//! A sample that finds no place within its probes is not lost silently:
//! a stack that finds no slot is counted in the dropped samples (its
//! allocation is then missing from the profile), and a block that finds no
//! live slot is counted as untracked (it is in the allocation figures, but
//! never in the live ones, so live figures are flagged incomplete instead
//! of staying high forever). Removed live entries leave tombstones, which
//! later inserts reuse; a lookup looks at most [`LIVE_PROBES`] slots,
//! whatever the tombstones.
//!
//! A free must find out cheaply that its block was not sampled (nearly
//! every block): a 4 KiB bitmap filter over the followed addresses
//! ([`FILTER_BITS`]) answers with one load and a bit test, inline in the
//! free's lane; a set bit sends the free to a 128 KiB bitmap of the table's
//! occupied slots, which gives the few slots to compare.
//!
//! # Limits
//!
//! - At most [`MAX_STACKS`] distinct stacks and [`MAX_LIVE`] live sampled
//!   blocks (and fewer when probe windows fill up first).
//! - A free is matched only on a thread that samples (every thread, with
//!   process-wide sampling).
//! - Stacks deeper than 48 frames are cut at the 48th.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::{with_local, ThreadCounters, DETACHED, FRESH, SAMPLE};

/// Distinct stacks the profile table holds.
pub const MAX_STACKS: usize = 8192;
/// Live sampled blocks followed at once.
pub const MAX_LIVE: usize = 1 << 20;
/// Slots a stack may probe before it is dropped.
const STACK_PROBES: usize = 64;
/// Slots a live block may probe (insert and lookup).
const LIVE_PROBES: usize = 32;
const MAX_DEPTH: usize = 48;

/// Go's default `MemProfileRate`: one sample per 512 KiB on average.
pub const DEFAULT_SAMPLE_RATE: u64 = 512 * 1024;

struct Stack {
    /// 0: empty; 1: being written; otherwise the stack's hash, published
    /// once the frames are written.
    hash: AtomicU64,
    len: AtomicUsize,
    frames: [AtomicUsize; MAX_DEPTH],
    samples: AtomicU64,
    /// Estimated allocations and bytes, and live ones, as `f64` bits.
    allocs: AtomicU64,
    bytes: AtomicU64,
    live_allocs: AtomicU64,
    live_bytes: AtomicU64,
}

static STACKS: [Stack; MAX_STACKS] = [const {
    Stack {
        hash: AtomicU64::new(0),
        len: AtomicUsize::new(0),
        frames: [const { AtomicUsize::new(0) }; MAX_DEPTH],
        samples: AtomicU64::new(0),
        allocs: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        live_allocs: AtomicU64::new(0),
        live_bytes: AtomicU64::new(0),
    }
}; MAX_STACKS];

/// A live sampled block: its address (0 empty, [`TOMBSTONE`] removed,
/// [`BUSY`] being written), and what it stands for.
struct Live {
    addr: AtomicUsize,
    /// The stack's index (low 32 bits) and the estimated allocations as
    /// `f32` bits (high 32 bits).
    stack_and_allocs: AtomicU64,
    /// Estimated bytes, as `f64` bits.
    bytes: AtomicU64,
}

const TOMBSTONE: usize = usize::MAX;
const BUSY: usize = usize::MAX - 1;

static LIVE: [Live; MAX_LIVE] =
    [const { Live { addr: AtomicUsize::new(0), stack_and_allocs: AtomicU64::new(0), bytes: AtomicU64::new(0) } };
        MAX_LIVE];
/// Bit `i` set while `LIVE[i]` holds a live block.
static OCCUPIED: [AtomicU64; MAX_LIVE / 64] = [const { AtomicU64::new(0) }; MAX_LIVE / 64];

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
pub(super) fn maybe_followed(ptr: *mut u8) -> bool {
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

/// Samples taken.
static SAMPLES: AtomicU64 = AtomicU64::new(0);
/// Samples that found no slot in the stack table.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Samples whose block found no slot in the live table.
static UNTRACKED: AtomicU64 = AtomicU64::new(0);
/// The rate last given to [`start`].
static LAST_RATE: AtomicU64 = AtomicU64::new(DEFAULT_SAMPLE_RATE);
/// The smallest and largest rates samples were taken at (`u64::MAX` and 0
/// before the first sample).
static RATE_MIN: AtomicU64 = AtomicU64::new(u64::MAX);
static RATE_MAX: AtomicU64 = AtomicU64::new(0);

/// The process-wide sampling rate: 0 off, else every thread samples at it
/// (unless it chose its own rate with [`start`]).
static PROCESS_RATE: AtomicU64 = AtomicU64::new(0);
/// Bumped at every change of [`PROCESS_RATE`], before the registered
/// threads are poked: a thread whose last applied epoch differs applies it
/// ([`reconcile`]).
static EPOCH: AtomicU64 = AtomicU64::new(0);

struct Sampler {
    /// Whether this thread asked for sampling itself ([`start`]), and at
    /// which rate.
    own: Cell<bool>,
    own_rate: Cell<u64>,
    /// The rate this thread samples at now (the countdown to the next
    /// sample is in the thread's counter block, beside the counters).
    rate: Cell<u64>,
    rng: Cell<u64>,
    /// Set while a sample is being taken, so that anything the unwinder
    /// allocates through us is not sampled in turn.
    busy: Cell<bool>,
    /// While a leak budget traces this thread ([`LeakTrace`]): its tag,
    /// which every allocation's live entry carries (0: no trace).
    leak_tag: Cell<u32>,
    /// Traced allocations that found no place in the tables.
    leak_lost: Cell<u64>,
}

thread_local! {
    static SAMPLER: Sampler = const {
        Sampler {
            own: Cell::new(false),
            own_rate: Cell::new(0),
            rate: Cell::new(0),
            rng: Cell::new(0),
            busy: Cell::new(false),
            leak_tag: Cell::new(0),
            leak_lost: Cell::new(0),
        }
    };
}

impl Stack {
    /// The stack's return addresses, innermost first.
    fn addresses(&self) -> Vec<usize> {
        self.frames[..self.len.load(Ordering::Relaxed)].iter().map(|f| f.load(Ordering::Relaxed)).collect()
    }
}

fn add_f64(cell: &AtomicU64, v: f64) {
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + v).to_bits()));
}

fn load_f64(cell: &AtomicU64) -> f64 {
    f64::from_bits(cell.load(Ordering::Relaxed))
}

impl Sampler {
    /// xorshift64*: a uniform draw in (0, 1].
    fn uniform(&self) -> f64 {
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        ((x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Bytes until the next sample: an exponential draw with the rate as
    /// mean. The lane samples when the countdown goes below zero, so `-1`
    /// at rate 1: every allocation.
    fn next_interval(&self) -> i64 {
        let rate = self.rate.get();
        if rate <= 1 {
            return -1;
        }
        (-self.uniform().ln() * rate as f64) as i64
    }
}

/// Runs `f` with the calling thread's samples paused: what the library
/// allocates to read or write a profile (its vectors, the symbols it
/// resolves) must not change the profile. Counting goes on as usual.
pub(crate) fn paused<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the flag on every exit, a panic's too.
    struct Resume(bool);
    impl Drop for Resume {
        fn drop(&mut self) {
            SAMPLER.with(|s| s.busy.set(self.0));
        }
    }
    let _resume = Resume(SAMPLER.with(|s| s.busy.replace(true)));
    f()
}

/// Starts sampling the current thread, one sample per `rate` bytes on
/// average (the caller checked `rate > 0`), whatever the process-wide rate.
pub(crate) fn start(rate: u64) {
    LAST_RATE.store(rate, Ordering::Relaxed);
    SAMPLER.with(|s| {
        s.own.set(true);
        s.own_rate.set(rate);
    });
    with_local(|l| {
        super::settle(l);
        reconcile(l);
    });
}

/// Stops the current thread's own sampling ([`start`]); it goes on at the
/// process-wide rate if one is set.
pub(crate) fn stop() {
    SAMPLER.with(|s| s.own.set(false));
    with_local(reconcile);
}

/// Samples every thread at `rate` bytes per sample (0: stops): threads
/// registered later from their start, the calling thread at once, and
/// every other running thread at its next call into allocscope that
/// changes its mode (a scope, an `op` guard, a group window, a budget) or
/// takes its cold path. A thread's own [`start`] rate takes precedence.
pub(crate) fn set_process_rate(rate: u64) {
    if rate > 0 {
        LAST_RATE.store(rate, Ordering::Relaxed);
    }
    PROCESS_RATE.store(rate, Ordering::SeqCst);
    EPOCH.fetch_add(1, Ordering::SeqCst);
    with_local(|l| {
        super::settle(l);
    });
}

/// The process-wide rate (0: off).
pub(crate) fn process_rate() -> u64 {
    PROCESS_RATE.load(Ordering::Relaxed)
}

/// The process-wide sampling epoch (see [`EPOCH`]).
#[inline]
pub(super) fn epoch() -> u64 {
    EPOCH.load(Ordering::Relaxed)
}

/// Reads `ALLOCSCOPE_SAMPLE_RATE` (bytes per sample) from the environment,
/// as jemalloc reads `MALLOC_CONF`: called once, by the first thread that
/// registers (in the allocator, so with the C library's `getenv`, which
/// neither allocates nor locks). A value that is not a positive number is
/// ignored.
pub(super) fn read_environment() {
    #[cfg(unix)]
    {
        // SAFETY: a NUL-terminated name; the result is a NUL-terminated
        // string owned by the environment, or null, read at once.
        let value = unsafe { libc::getenv(c"ALLOCSCOPE_SAMPLE_RATE".as_ptr()) };
        if value.is_null() {
            return;
        }
        // SAFETY: non-null, NUL-terminated (above).
        let bytes = unsafe { std::ffi::CStr::from_ptr(value) }.to_bytes();
        let rate = bytes.iter().try_fold(0u64, |acc, &b| {
            b.is_ascii_digit().then(|| acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))).flatten()
        });
        if let Some(rate @ 1..) = rate {
            LAST_RATE.store(rate, Ordering::Relaxed);
            PROCESS_RATE.store(rate, Ordering::SeqCst);
            EPOCH.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Applies the sampling this thread should do now (its own, or the
/// process-wide rate) to its mode.
pub(super) fn reconcile(l: &ThreadCounters) {
    let mode = l.mode.get();
    if mode & FRESH != 0 {
        // Registration applies it.
        return;
    }
    l.sample_epoch.set(EPOCH.load(Ordering::SeqCst));
    let process = PROCESS_RATE.load(Ordering::SeqCst);
    let rate = SAMPLER.with(|s| {
        let rate = if s.own.get() { s.own_rate.get() } else { process };
        if rate != 0 && (rate != s.rate.get() || mode & SAMPLE == 0) {
            s.rate.set(rate);
            // Seed from the thread's sampler address and a process-wide
            // count, so that threads draw different intervals.
            static SEEDS: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
            let seed = SEEDS.fetch_add(0x6A09_E667_F3BC_C909, Ordering::Relaxed) ^ (s as *const Sampler as u64);
            s.rng.set(seed | 1);
            l.until_next.set(s.next_interval());
        }
        rate
    });
    let sampling = rate != 0 && mode & DETACHED == 0;
    l.set_mode(if sampling { mode | SAMPLE } else { mode & !SAMPLE });
}

/// The sampling countdown on the cold path (a sampling thread that is
/// also in a scope or a budget): as the inline lane does.
#[inline(never)]
pub(super) fn tick(l: &ThreadCounters, ptr: *mut u8, size: u64) {
    let left = l.until_next.get().wrapping_sub(size as i64);
    l.until_next.set(left);
    if left < 0 {
        take(l, ptr, size);
    }
}

/// A sample is due: take it and draw the next interval. No allocation
/// through the Rust global allocator.
#[cold]
#[inline(never)]
pub(super) fn take(l: &ThreadCounters, ptr: *mut u8, size: u64) {
    SAMPLER.with(|s| {
        l.until_next.set(s.next_interval());
        if s.busy.get() {
            return;
        }
        s.busy.set(true);
        let tag = s.leak_tag.get();
        if tag != 0 {
            if !trace(ptr as usize, size, tag) {
                s.leak_lost.set(s.leak_lost.get() + 1);
            }
        } else {
            let rate = s.rate.get();
            RATE_MIN.fetch_min(rate, Ordering::Relaxed);
            RATE_MAX.fetch_max(rate, Ordering::Relaxed);
            let p = if rate <= 1 { 1.0 } else { 1.0 - (-(size as f64) / rate as f64).exp() };
            record(ptr as usize, 1.0 / p, size as f64 / p);
        }
        s.busy.set(false);
    })
}

fn hash_frames(frames: &[usize]) -> u64 {
    // FNV-1a over the addresses, never 0 or 1.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &f in frames {
        h = (h ^ f as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h | 2
}

fn record(addr: usize, allocs: f64, bytes: f64) {
    SAMPLES.fetch_add(1, Ordering::Relaxed);
    let Some(index) = capture_stack() else {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let stack = &STACKS[index];
    stack.samples.fetch_add(1, Ordering::Relaxed);
    add_f64(&stack.allocs, allocs);
    add_f64(&stack.bytes, bytes);
    follow_live(addr, Followed { stack: index as u32, tag: 0, allocs: allocs as f32, bytes });
}

/// The calling stack's index in the stack table; `None` when its probe
/// window is full. Inlined: a frame of its own would cost every sample one
/// more frame to unwind (about 1,400 instructions, measured at rate 1).
#[inline(always)]
fn capture_stack() -> Option<usize> {
    let mut frames = [0usize; MAX_DEPTH];
    let n = crate::stack::capture(&mut frames);
    stack_index(&frames[..n])
}

/// Finds or inserts the stack within [`STACK_PROBES`] slots; `None` when
/// they are all taken by other stacks.
fn stack_index(frames: &[usize]) -> Option<usize> {
    let h = hash_frames(frames);
    let start = (h as usize) % MAX_STACKS;
    for probe in 0..STACK_PROBES {
        let i = (start + probe) % MAX_STACKS;
        let slot = &STACKS[i];
        let mut seen = slot.hash.load(Ordering::Acquire);
        if seen == 0 {
            match slot.hash.compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => {
                    for (dst, &f) in slot.frames.iter().zip(frames) {
                        dst.store(f, Ordering::Relaxed);
                    }
                    slot.len.store(frames.len(), Ordering::Relaxed);
                    slot.hash.store(h, Ordering::Release);
                    return Some(i);
                }
                Err(now) => seen = now,
            }
        }
        while seen == 1 {
            std::hint::spin_loop();
            seen = slot.hash.load(Ordering::Acquire);
        }
        if seen == h
            && slot.len.load(Ordering::Relaxed) == frames.len()
            && slot.frames.iter().zip(frames).all(|(a, &b)| a.load(Ordering::Relaxed) == b)
        {
            return Some(i);
        }
    }
    None
}

/// What a followed live block stands for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Followed {
    stack: u32,
    /// A leak trace's tag (0: a sample of the heap profile).
    tag: u32,
    allocs: f32,
    bytes: f64,
}

/// Bits of a live entry's stack index; the leak tag takes the other
/// [`TAG_BITS`] of the low 32 bits.
const STACK_BITS: u32 = MAX_STACKS.trailing_zeros();
const TAG_BITS: u32 = 32 - STACK_BITS;
const _: () = assert!(MAX_STACKS.is_power_of_two());

impl Followed {
    fn pack(self) -> u64 {
        u64::from(self.stack | self.tag << STACK_BITS) | u64::from(self.allocs.to_bits()) << 32
    }

    fn unpack(packed: u64, bytes: u64) -> Followed {
        let low = packed as u32;
        Followed {
            stack: low & ((1 << STACK_BITS) - 1),
            tag: low >> STACK_BITS,
            allocs: f32::from_bits((packed >> 32) as u32),
            bytes: f64::from_bits(bytes),
        }
    }

    /// Adds (or, with `sign` -1, takes out) this block's share of its
    /// stack's live figures; a leak trace's entries have none.
    fn add_live(self, sign: f64) {
        if self.tag == 0 {
            let stack = &STACKS[self.stack as usize];
            add_f64(&stack.live_allocs, sign * f64::from(self.allocs));
            add_f64(&stack.live_bytes, sign * self.bytes);
        }
    }
}

/// The first slot of `addr`'s probe window.
fn live_start(addr: usize) -> usize {
    (addr.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize) >> 7) % MAX_LIVE
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
        let i = (start + probe) % MAX_LIVE;
        let slot = &LIVE[i];
        let cur = slot.addr.load(Ordering::Relaxed);
        if (cur == 0 || cur == TOMBSTONE)
            && slot.addr.compare_exchange(cur, BUSY, Ordering::Acquire, Ordering::Relaxed).is_ok()
        {
            slot.stack_and_allocs.store(f.pack(), Ordering::Relaxed);
            slot.bytes.store(f.bytes.to_bits(), Ordering::Relaxed);
            slot.addr.store(addr, Ordering::Release);
            set_occupied(i, true);
            filter_add(addr);
            return true;
        }
    }
    false
}

/// Takes `addr` out of the live table and its stack's live figures, if it
/// is there; returns what it stood for.
fn unfollow(addr: usize) -> Option<Followed> {
    let start = live_start(addr);
    let mut bits = window_bits(start);
    while bits != 0 {
        let i = (start + bits.trailing_zeros() as usize) % MAX_LIVE;
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
    let f = Followed::unpack(slot.stack_and_allocs.load(Ordering::Relaxed), slot.bytes.load(Ordering::Relaxed));
    slot.addr.store(TOMBSTONE, Ordering::Release);
    filter_remove(addr);
    Some(f)
}

/// A free on a sampling thread whose block passed the filter
/// ([`maybe_followed`]): takes it out of the live figures if it was
/// sampled.
#[cold]
#[inline(never)]
pub(super) fn on_free(ptr: *mut u8) {
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
pub(super) fn unfollow_before_realloc(ptr: *mut u8) -> Option<Followed> {
    if !maybe_followed(ptr) {
        return None;
    }
    unfollow(ptr as usize)
}

/// After a failed `realloc`: the old block is still live; follow it again.
#[cold]
#[inline(never)]
pub(super) fn refollow(ptr: *mut u8, f: Followed) {
    follow_live(ptr as usize, f);
}

/// Follows `addr` and adds its share to its stack's live figures; a
/// profile sample that finds no room is counted as untracked. False when
/// there was no room.
fn follow_live(addr: usize, f: Followed) -> bool {
    let followed = follow(addr, f);
    if followed {
        f.add_live(1.0);
    } else if f.tag == 0 {
        UNTRACKED.fetch_add(1, Ordering::Relaxed);
    }
    followed
}

// ---------------------------------------------------------------------------
// Leak traces: a leak budget's tracked run follows every allocation of its
// thread, in the same tables, tagged.

/// Follows `addr` for a leak trace: its stack and exact size, tagged, out
/// of the profile's figures (no sample counted, no stack live figure).
/// False when the tables had no place for it.
fn trace(addr: usize, size: u64, tag: u32) -> bool {
    capture_stack()
        .is_some_and(|index| follow_live(addr, Followed { stack: index as u32, tag, allocs: 1.0, bytes: size as f64 }))
}

/// A leak budget's trace of the current thread: while it lives, every
/// allocation of the thread is followed in the live table with its stack
/// (as sampling at rate 1 does, but tagged and left out of the heap
/// profile), and every free on the thread takes its block out. What is
/// left when it ends ([`LeakTrace::finish`], or drop) survived the run.
///
/// The thread's own sampling is suspended meanwhile (its allocations are
/// not in the heap profile); its rate is restored at the end.
pub(crate) struct LeakTrace {
    tag: u32,
    own: bool,
    own_rate: u64,
    done: bool,
}

/// The allocations a leak trace followed that were still live at its end.
#[derive(Debug)]
pub(crate) struct Survivors {
    /// How many blocks.
    pub count: u64,
    /// The largest one: its size and its stack's return addresses.
    pub largest: Option<(u64, Vec<usize>)>,
    /// Allocations the tables had no place for (not in `count`).
    pub lost: u64,
}

impl LeakTrace {
    /// Starts tracing the current thread's allocations.
    pub(crate) fn start() -> LeakTrace {
        // 2^TAG_BITS - 1 tags, 0 excluded: a tag is reused only after half
        // a million traces, long after its entries were taken out.
        static TAGS: AtomicU32 = AtomicU32::new(0);
        let tag = loop {
            let t = TAGS.fetch_add(1, Ordering::Relaxed).wrapping_add(1) & ((1 << TAG_BITS) - 1);
            if t != 0 {
                break t;
            }
        };
        let (own, own_rate) = SAMPLER.with(|s| {
            let saved = (s.own.get(), s.own_rate.get());
            assert_eq!(s.leak_tag.get(), 0, "allocscope: a leak budget cannot run inside another one's tracked run");
            s.own.set(true);
            s.own_rate.set(1);
            s.leak_tag.set(tag);
            s.leak_lost.set(0);
            saved
        });
        with_local(|l| {
            super::settle(l);
            reconcile(l);
        });
        LeakTrace { tag, own, own_rate, done: false }
    }

    /// Stops tracing and returns what survived (and forgets it).
    pub(crate) fn finish(mut self) -> Survivors {
        self.stop();
        let mut survivors = Survivors { count: 0, largest: None, lost: SAMPLER.with(|s| s.leak_lost.get()) };
        let mut largest: Option<(u64, u32)> = None;
        for_each_tagged(self.tag, |f| {
            survivors.count += 1;
            let size = f.bytes as u64;
            if largest.is_none_or(|(l, _)| size > l) {
                largest = Some((size, f.stack));
            }
        });
        survivors.largest = largest.map(|(size, stack)| (size, STACKS[stack as usize].addresses()));
        survivors
    }

    fn stop(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        SAMPLER.with(|s| {
            s.leak_tag.set(0);
            s.own.set(self.own);
            s.own_rate.set(self.own_rate);
        });
        with_local(reconcile);
    }
}

impl Drop for LeakTrace {
    /// A run that panicked: the thread samples as before, and the trace's
    /// entries leave the table.
    fn drop(&mut self) {
        if !self.done {
            self.stop();
            for_each_tagged(self.tag, |_| {});
        }
    }
}

/// Takes every live entry tagged `tag` out of the table, handing each to
/// `f`. A scan of the occupied bitmap (16 Ki words) and of the occupied
/// slots: for tests, not for the allocator path.
fn for_each_tagged(tag: u32, mut f: impl FnMut(Followed)) {
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
            if Followed::unpack(packed, 0).tag == tag {
                if let Some(followed) = remove(i, addr) {
                    f(followed);
                }
            }
        }
    }
}

/// One sampled stack, as read from the table: see [`crate::Site`].
pub(crate) struct SampledStack {
    pub addresses: Vec<usize>,
    pub samples: u64,
    pub allocs: f64,
    pub bytes: f64,
    pub live_allocs: f64,
    pub live_bytes: f64,
}

/// Every stack sampled so far.
pub(crate) fn stacks() -> Vec<SampledStack> {
    STACKS
        .iter()
        .filter(|s| s.hash.load(Ordering::Acquire) > 1 && s.samples.load(Ordering::Relaxed) > 0)
        .map(|s| SampledStack {
            addresses: s.addresses(),
            samples: s.samples.load(Ordering::Relaxed),
            allocs: load_f64(&s.allocs),
            bytes: load_f64(&s.bytes),
            live_allocs: load_f64(&s.live_allocs),
            live_bytes: load_f64(&s.live_bytes),
        })
        .collect()
}

/// Samples taken since the last reset.
pub(crate) fn samples() -> u64 {
    SAMPLES.load(Ordering::Relaxed)
}

/// Samples that found no slot in the stack table.
pub(crate) fn dropped_samples() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Samples whose block found no slot in the live table.
pub(crate) fn untracked_live_samples() -> u64 {
    UNTRACKED.load(Ordering::Relaxed)
}

/// The rate every sample so far was taken at; 0 when samples were taken at
/// different rates; the rate last given to [`start`] before any sample.
pub(crate) fn sample_rate() -> u64 {
    match (RATE_MIN.load(Ordering::Relaxed), RATE_MAX.load(Ordering::Relaxed)) {
        (u64::MAX, _) => LAST_RATE.load(Ordering::Relaxed),
        (min, max) if min == max => min,
        _ => 0,
    }
}

/// Clears both tables, the dropped and untracked counts and the rates seen.
pub(crate) fn reset() {
    for s in &STACKS {
        s.hash.store(0, Ordering::Relaxed);
        s.len.store(0, Ordering::Relaxed);
        for v in [&s.samples, &s.allocs, &s.bytes, &s.live_allocs, &s.live_bytes] {
            v.store(0, Ordering::Relaxed);
        }
    }
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
    SAMPLES.store(0, Ordering::Relaxed);
    DROPPED.store(0, Ordering::Relaxed);
    UNTRACKED.store(0, Ordering::Relaxed);
    RATE_MIN.store(u64::MAX, Ordering::Relaxed);
    RATE_MAX.store(0, Ordering::Relaxed);
}

/// In a child process after `fork`: the other threads are gone, and a slot
/// one of them was writing would stay half written (a stack being written,
/// a live block being inserted) and make a probe spin forever. Such slots
/// are cleared.
#[cfg_attr(not(unix), allow(dead_code))]
pub(super) fn after_fork_in_child() {
    clear_half_written(&STACKS, 0..MAX_LIVE);
}

/// Clears the half-written slots among `stacks` and the live slots
/// `live`.
#[cfg_attr(not(unix), allow(dead_code))]
fn clear_half_written(stacks: &[Stack], live: std::ops::Range<usize>) {
    let whole_table = live.len() == MAX_LIVE;
    for s in stacks {
        let _ = s.hash.compare_exchange(1, 0, Ordering::Relaxed, Ordering::Relaxed);
    }
    for i in live {
        if LIVE[i].addr.compare_exchange(BUSY, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            set_occupied(i, false);
        }
    }
    // A vanished thread may have been between a slot's write and its
    // filter entry's: when the whole table is repaired (a fork, not a test
    // of a few slots), the filter is rebuilt from it.
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
    (0..LIVE_PROBES).any(|p| LIVE[(start + p) % MAX_LIVE].addr.load(Ordering::Acquire) == addr)
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
        Followed { stack: 0, tag: 0, allocs: 1.0, bytes: 8.0 }
    }

    /// A full window refuses at once (bounded probes) instead of scanning
    /// the table; a tombstone in the window is reused; a lookup finds every
    /// followed block and clears its occupied bit.
    #[test]
    #[cfg_attr(miri, ignore = "touches the 24 MiB live table, which Miri would track byte by byte for minutes")]
    fn the_live_tables_probe_window_is_bounded_and_reuses_tombstones() {
        // A region of the table no other test touches: the window of slot
        // MAX_LIVE - 8 wraps around the table's end.
        let addrs = colliding(MAX_LIVE - 8, LIVE_PROBES + 2);
        for &a in &addrs[..LIVE_PROBES] {
            assert!(follow(a, entry()), "room in the window");
        }
        assert_eq!(window_bits(MAX_LIVE - 8).count_ones() as usize, LIVE_PROBES);
        assert!(!follow(addrs[LIVE_PROBES], entry()), "the window is full: refused, not searched further");
        assert!(unfollow(addrs[3]).is_some());
        assert!(unfollow(addrs[3]).is_none(), "taken out once");
        assert!(follow(addrs[LIVE_PROBES + 1], entry()), "the tombstone is reused");
        for &a in addrs[..LIVE_PROBES].iter().filter(|&&a| a != addrs[3]).chain([&addrs[LIVE_PROBES + 1]]) {
            assert!(unfollow(a).is_some(), "{a:#x} found within its window");
        }
        assert_eq!(window_bits(MAX_LIVE - 8), 0, "every occupied bit cleared");
    }

    /// In a forked child a slot left half written by a vanished thread
    /// would make probes spin (a stack) or stay taken (a live block).
    #[test]
    #[cfg_attr(miri, ignore = "touches the 24 MiB live table, which Miri would track byte by byte for minutes")]
    fn a_fork_child_clears_half_written_slots() {
        let stack = &STACKS[MAX_STACKS - 1];
        stack.hash.store(1, Ordering::Relaxed);
        let live = LIVE.len() - 100;
        LIVE[live].addr.store(BUSY, Ordering::Relaxed);
        set_occupied(live, true);
        // The function the fork handler runs, on these slots only: other
        // tests sample concurrently in this process.
        clear_half_written(std::slice::from_ref(stack), live..live + 1);
        assert_eq!(stack.hash.load(Ordering::Relaxed), 0);
        assert_eq!(LIVE[live].addr.load(Ordering::Relaxed), 0);
        assert_eq!(OCCUPIED[live / 64].load(Ordering::Relaxed) & (1 << (live % 64)), 0);
    }
}

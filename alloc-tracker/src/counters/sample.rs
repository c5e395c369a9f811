//! The heap sampler's allocator-side lane: the per-thread byte countdown,
//! and the fixed tables of sampled stacks and live sampled blocks. The
//! public API and the profile's writers are in [`crate::profile`].
//!
//! # How
//!
//! A thread that samples has the `SAMPLE` mode bit, which sends its
//! allocations and frees down the sampling lane (threads that do not sample
//! keep the fast path: the feature costs nothing when off). There, sampling
//! is by bytes, as Go's `runtime.MemProfileRate`: each allocation moves a
//! per-thread countdown, whose intervals are drawn from an exponential
//! distribution with the rate as mean, so an allocation of `s` bytes is
//! sampled with probability `p = 1 - exp(-s / rate)`. A sample stands for
//! `1 / p` allocations and `s / p` bytes, so the estimates add up to the
//! true totals on average. A rate of 1 samples every allocation: the
//! figures are then exact.
//!
//! A sample records the stack's raw return addresses
//! ([`crate::stack::capture`]) into a fixed static table of stacks, and the
//! block's address into a fixed table of live sampled blocks, so that a
//! free on a sampling thread finds its sample and takes it out of the live
//! figures. None of this allocates through the Rust global allocator.
//!
//! # Limits
//!
//! - At most [`MAX_STACKS`] distinct stacks and [`MAX_LIVE`] live sampled
//!   blocks; beyond that, samples are counted as dropped and live blocks
//!   are not followed.
//! - A free is matched only on a thread that samples.
//! - Stacks deeper than 48 frames are cut at the 48th.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::SAMPLE;

/// Distinct stacks the profile table holds.
pub const MAX_STACKS: usize = 4096;
/// Live sampled blocks followed at once.
pub const MAX_LIVE: usize = 1 << 16;
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

/// A live sampled block: its address (0 empty, `TOMBSTONE` removed), its
/// stack, and what it stands for.
struct Live {
    addr: AtomicUsize,
    stack: AtomicUsize,
    allocs: AtomicU64,
    bytes: AtomicU64,
}

const TOMBSTONE: usize = usize::MAX;

static LIVE: [Live; MAX_LIVE] = [const {
    Live { addr: AtomicUsize::new(0), stack: AtomicUsize::new(0), allocs: AtomicU64::new(0), bytes: AtomicU64::new(0) }
}; MAX_LIVE];

static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Sampled blocks in `LIVE` now: frees skip the table while it is zero.
static LIVE_COUNT: AtomicUsize = AtomicUsize::new(0);
static LAST_RATE: AtomicU64 = AtomicU64::new(DEFAULT_SAMPLE_RATE);

struct Sampler {
    rate: Cell<u64>,
    until_next: Cell<i64>,
    rng: Cell<u64>,
    /// Set while a sample is being taken, so that anything the unwinder
    /// allocates through us is not sampled in turn.
    busy: Cell<bool>,
}

thread_local! {
    static SAMPLER: Sampler = const {
        Sampler { rate: Cell::new(0), until_next: Cell::new(0), rng: Cell::new(0), busy: Cell::new(false) }
    };
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

    fn next_interval(&self) -> i64 {
        let rate = self.rate.get();
        if rate <= 1 {
            return 0;
        }
        (-self.uniform().ln() * rate as f64) as i64
    }
}

/// Starts sampling the current thread, one sample per `rate` bytes on
/// average (the caller checked `rate > 0`).
pub(crate) fn start(rate: u64) {
    LAST_RATE.store(rate, Ordering::Relaxed);
    SAMPLER.with(|s| {
        s.rate.set(rate);
        // Seed from the thread's sampler address and a process-wide count,
        // so that threads draw different intervals.
        static SEEDS: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
        let seed = SEEDS.fetch_add(0x6A09_E667_F3BC_C909, Ordering::Relaxed) ^ (s as *const Sampler as u64);
        s.rng.set(seed | 1);
        s.until_next.set(s.next_interval());
    });
    super::set_mode_bit(SAMPLE, true);
}

/// Stops sampling the current thread.
pub(crate) fn stop() {
    super::set_mode_bit(SAMPLE, false);
}

/// The sampling countdown, inline in the allocator's sampling lane: one
/// subtraction and a branch until a sample is due.
#[inline(always)]
pub(super) fn tick(ptr: *mut u8, size: u64) {
    SAMPLER.with(|s| {
        let left = s.until_next.get() - size as i64;
        s.until_next.set(left);
        if left <= 0 {
            take_sample(s, ptr, size);
        }
    })
}

/// Called from the allocator's cold path for an allocation on a sampling
/// thread that is also in a scope or a budget.
#[inline(never)]
pub(super) fn on_alloc(ptr: *mut u8, size: u64) {
    tick(ptr, size);
}

/// A sample is due. No allocation through the Rust global allocator.
#[cold]
#[inline(never)]
fn take_sample(s: &Sampler, ptr: *mut u8, size: u64) {
    {
        if s.busy.get() {
            return;
        }
        s.busy.set(true);
        s.until_next.set(s.next_interval());
        let rate = s.rate.get();
        let p = if rate <= 1 { 1.0 } else { 1.0 - (-(size as f64) / rate as f64).exp() };
        record(ptr as usize, 1.0 / p, size as f64 / p);
        s.busy.set(false);
    }
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
    let mut frames = [0usize; MAX_DEPTH];
    let n = crate::stack::capture(&mut frames);
    let frames = &frames[..n];
    let Some(index) = stack_index(frames) else {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let stack = &STACKS[index];
    stack.samples.fetch_add(1, Ordering::Relaxed);
    add_f64(&stack.allocs, allocs);
    add_f64(&stack.bytes, bytes);
    add_f64(&stack.live_allocs, allocs);
    add_f64(&stack.live_bytes, bytes);
    track_live(addr, index, allocs, bytes);
}

/// Finds or inserts the stack; `None` when the table is full.
fn stack_index(frames: &[usize]) -> Option<usize> {
    let h = hash_frames(frames);
    let start = (h as usize) % MAX_STACKS;
    for probe in 0..MAX_STACKS {
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

fn live_start(addr: usize) -> usize {
    (addr.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize) >> 7) % MAX_LIVE
}

fn track_live(addr: usize, stack: usize, allocs: f64, bytes: f64) {
    let start = live_start(addr);
    for probe in 0..MAX_LIVE {
        let slot = &LIVE[(start + probe) % MAX_LIVE];
        let cur = slot.addr.load(Ordering::Relaxed);
        if (cur == 0 || cur == TOMBSTONE)
            && slot.addr.compare_exchange(cur, usize::MAX - 1, Ordering::Acquire, Ordering::Relaxed).is_ok()
        {
            slot.stack.store(stack, Ordering::Relaxed);
            slot.allocs.store(allocs.to_bits(), Ordering::Relaxed);
            slot.bytes.store(bytes.to_bits(), Ordering::Relaxed);
            slot.addr.store(addr, Ordering::Release);
            LIVE_COUNT.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    // Table full: this block's free will not be seen; its bytes stay live.
}

/// A free on a sampling thread: takes a sampled block out of the live
/// figures. Inline, and nothing but one load while no sampled block lives.
#[inline(always)]
pub(super) fn on_free(ptr: *mut u8) {
    if LIVE_COUNT.load(Ordering::Relaxed) != 0 {
        free_sampled(ptr);
    }
}

#[inline(never)]
fn free_sampled(ptr: *mut u8) {
    let addr = ptr as usize;
    let start = live_start(addr);
    for probe in 0..MAX_LIVE {
        let slot = &LIVE[(start + probe) % MAX_LIVE];
        let cur = slot.addr.load(Ordering::Acquire);
        if cur == 0 {
            return;
        }
        if cur == addr && slot.addr.compare_exchange(addr, TOMBSTONE, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            LIVE_COUNT.fetch_sub(1, Ordering::Relaxed);
            let stack = &STACKS[slot.stack.load(Ordering::Relaxed)];
            add_f64(&stack.live_allocs, -f64::from_bits(slot.allocs.load(Ordering::Relaxed)));
            add_f64(&stack.live_bytes, -f64::from_bits(slot.bytes.load(Ordering::Relaxed)));
            return;
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
            addresses: s.frames[..s.len.load(Ordering::Relaxed)].iter().map(|f| f.load(Ordering::Relaxed)).collect(),
            samples: s.samples.load(Ordering::Relaxed),
            allocs: load_f64(&s.allocs),
            bytes: load_f64(&s.bytes),
            live_allocs: load_f64(&s.live_allocs),
            live_bytes: load_f64(&s.live_bytes),
        })
        .collect()
}

/// Samples that found the stack table full.
pub(crate) fn dropped_samples() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// The rate last given to [`start`].
pub(crate) fn last_rate() -> u64 {
    LAST_RATE.load(Ordering::Relaxed)
}

/// Clears both tables and the dropped-sample count.
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
    LIVE_COUNT.store(0, Ordering::Relaxed);
    DROPPED.store(0, Ordering::Relaxed);
}

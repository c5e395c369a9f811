//! The heap profile's table of sampled stacks: each distinct stack's
//! return addresses and what its samples stand for (estimated allocations
//! and bytes, and the share of those still held). A fixed static
//! open-addressing table, [`STACK_PROBES`] slots probed at most: a stack
//! that finds no slot is dropped (counted in [`dropped`]). Written from the
//! allocator's sampling lane; nothing here allocates through the Rust
//! global allocator.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Distinct stacks the profile table holds.
pub(crate) const MAX_STACKS: usize = 8192;
/// Slots a stack may probe before it is dropped.
const STACK_PROBES: usize = 64;
/// Frames kept per stack; deeper stacks are cut.
const MAX_DEPTH: usize = 48;

pub(crate) struct Stack {
    /// 0: empty; 1: being written; otherwise the stack's hash, published
    /// once the frames are written.
    hash: AtomicU64,
    len: AtomicUsize,
    frames: [AtomicUsize; MAX_DEPTH],
    samples: AtomicU64,
    /// Estimated allocations and bytes, and held ones (not freed yet), as
    /// `f64` bits.
    allocs: AtomicU64,
    bytes: AtomicU64,
    held_blocks: AtomicU64,
    held_bytes: AtomicU64,
}

static STACKS: [Stack; MAX_STACKS] = [const {
    Stack {
        hash: AtomicU64::new(0),
        len: AtomicUsize::new(0),
        frames: [const { AtomicUsize::new(0) }; MAX_DEPTH],
        samples: AtomicU64::new(0),
        allocs: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        held_blocks: AtomicU64::new(0),
        held_bytes: AtomicU64::new(0),
    }
}; MAX_STACKS];

/// Samples that found no slot in the stack table.
static DROPPED: AtomicU64 = AtomicU64::new(0);

impl Stack {
    /// The stack's return addresses, innermost first.
    pub(crate) fn addresses(&self) -> Vec<usize> {
        self.frames[..self.len.load(Ordering::Relaxed)].iter().map(|f| f.load(Ordering::Relaxed)).collect()
    }
}

/// A sampled stack's figures, as the heap profile reads them.
impl Stack {
    /// Samples taken with this stack.
    pub(crate) fn samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }

    /// Estimated allocations and bytes made with this stack.
    pub(crate) fn allocated(&self) -> (f64, f64) {
        (load_f64(&self.allocs), load_f64(&self.bytes))
    }

    /// Estimated blocks and bytes made with this stack and not freed yet.
    pub(crate) fn held(&self) -> (f64, f64) {
        (load_f64(&self.held_blocks), load_f64(&self.held_bytes))
    }
}

fn add_f64(cell: &AtomicU64, v: f64) {
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + v).to_bits()));
}

fn load_f64(cell: &AtomicU64) -> f64 {
    f64::from_bits(cell.load(Ordering::Relaxed))
}

fn hash_frames(frames: &[usize]) -> u64 {
    // FNV-1a over the addresses, never 0 or 1.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &f in frames {
        h = (h ^ f as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h | 2
}

/// The calling stack's index in the stack table; `None` (and counted as
/// dropped) when its probe window is full. Inlined: a frame of its own
/// would cost every sample one more frame to unwind (measured in the
/// repository's `docs/heap-profiling.md`).
#[inline(always)]
pub(super) fn capture() -> Option<usize> {
    let mut frames = [0usize; MAX_DEPTH];
    let n = crate::stack::capture(&mut frames);
    let index = stack_index(&frames[..n]);
    if index.is_none() {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
    index
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

/// Adds one sample's estimates to stack `index`.
pub(super) fn add_sample(index: usize, allocs: f64, bytes: f64) {
    let stack = &STACKS[index];
    stack.samples.fetch_add(1, Ordering::Relaxed);
    add_f64(&stack.allocs, allocs);
    add_f64(&stack.bytes, bytes);
}

/// Adds (or, negative, takes out) a followed block's share of stack
/// `index`'s held figures.
pub(super) fn add_live(index: usize, allocs: f64, bytes: f64) {
    let stack = &STACKS[index];
    add_f64(&stack.held_blocks, allocs);
    add_f64(&stack.held_bytes, bytes);
}

/// Stack `index`'s return addresses, innermost first.
pub(super) fn addresses(index: usize) -> Vec<usize> {
    STACKS[index].addresses()
}

/// Every stack sampled so far.
pub(super) fn sampled() -> impl Iterator<Item = &'static Stack> {
    STACKS.iter().filter(|s| s.hash.load(Ordering::Acquire) > 1 && s.samples.load(Ordering::Relaxed) > 0)
}

/// Samples that found no slot in the stack table.
pub(super) fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Clears the table and the dropped count.
pub(super) fn reset() {
    for s in &STACKS {
        s.hash.store(0, Ordering::Relaxed);
        s.len.store(0, Ordering::Relaxed);
        for v in [&s.samples, &s.allocs, &s.bytes, &s.held_blocks, &s.held_bytes] {
            v.store(0, Ordering::Relaxed);
        }
    }
    DROPPED.store(0, Ordering::Relaxed);
}

/// In a `fork`ed child: a stack slot a vanished thread was writing would
/// stay "being written" and make probes spin; such slots are cleared (the
/// last `count` slots only, for tests).
#[cfg_attr(not(unix), allow(dead_code))]
pub(super) fn clear_half_written(count: usize) {
    for s in &STACKS[MAX_STACKS - count..] {
        let _ = s.hash.compare_exchange(1, 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

#[cfg(test)]
pub(super) fn mark_half_written_for_test(index: usize) -> impl Fn() -> u64 {
    STACKS[index].hash.store(1, Ordering::Relaxed);
    move || STACKS[index].hash.load(Ordering::Relaxed)
}

//! The allocator path: what `CountingAlloc` calls after the inner
//! allocator succeeded (and before a free). No allocation, no lock, no
//! panic, no system call. The gates that choose a path, and the thread's
//! block they read, are in the module above.

use std::sync::atomic::Ordering;

use super::*;

/// Marks the branch that calls it as unlikely, so that the compiler lays it
/// out apart from the straight-line code: a call to a `#[cold]` function
/// (this one is empty and vanishes once inlined), the stable-Rust idiom that
/// `hashbrown` uses for its `unlikely` (`std::hint::cold_path` needs Rust
/// 1.95).
#[inline(always)]
#[cold]
pub(super) fn layout_apart() {}

/// Counts one successful `alloc` or `alloc_zeroed` of `size` bytes.
#[inline(always)]
pub(crate) fn on_alloc(ptr: *mut u8, size: usize) {
    with_local(|l| {
        // One compare of the gate with zero and two branches on its flags:
        // negative is the fast path, zero the peak path (inline: it is the
        // measured path of every `measure`), positive the cold path.
        let gate = l.alloc_gate.get();
        if gate < 0 {
            bump(&l.counts[Counter::Allocs], 1);
            bump(&l.counts[Counter::BytesAllocated], size as u64);
        } else if gate == 0 {
            // Laid out after the function's other code, so that the fast
            // path falls straight through, with no taken branch; the peak
            // path's last branch jumps back, so it costs no instruction.
            layout_apart();
            bump(&l.counts[Counter::Allocs], 1);
            bump(&l.counts[Counter::BytesAllocated], size as u64);
            raise_high_water(l);
        } else {
            on_alloc_other(l, ptr, size as u64);
        }
    })
}

/// Counts one `dealloc` of `size` bytes.
#[inline(always)]
pub(crate) fn on_dealloc(ptr: *mut u8, size: usize) {
    with_local(|l| {
        // One compare of the gate with zero, as for `alloc`: negative is
        // the fast path, zero the sampling lane (inline: count, then one
        // bit test of the live table's filter, clear for nearly every
        // block), positive the cold path.
        let gate = l.free_gate.get();
        if gate < 0 {
            bump(&l.counts[Counter::Deallocs], 1);
            bump(&l.counts[Counter::BytesFreed], size as u64);
        } else if gate == 0 {
            layout_apart();
            bump(&l.counts[Counter::Deallocs], 1);
            bump(&l.counts[Counter::BytesFreed], size as u64);
            if sample::maybe_followed(ptr) {
                sample::on_free(ptr);
            }
        } else {
            on_dealloc_cold(l, ptr, size as u64);
        }
    })
}

/// Counts one successful `alloc` of `size` bytes in tagged mode; returns
/// the owner tag to write in the block ([`held`]).
#[inline(always)]
pub(crate) fn on_alloc_tagged(ptr: *mut u8, size: usize) -> held::Tag {
    on_alloc(ptr, size);
    with_local(|l| held::on_alloc(l, size as u64))
}

/// Counts one `dealloc` of `size` bytes of a block tagged `tag`.
#[inline(always)]
pub(crate) fn on_dealloc_tagged(ptr: *mut u8, size: usize, tag: held::Tag) {
    on_dealloc(ptr, size);
    with_local(|l| held::on_free(l, tag, size as u64));
}

/// Counts one successful `realloc` from `old` to `new` bytes of a block
/// tagged `tag`.
#[inline(always)]
pub(crate) fn on_realloc_tagged(new_ptr: *mut u8, old: usize, new: usize, tag: held::Tag) {
    on_realloc(new_ptr, old, new);
    with_local(|l| held::on_realloc(l, tag, old as u64, new as u64));
}

/// Before a `realloc` is forwarded: on a sampling thread, takes a sampled
/// old block out of the live table while its address is still the
/// caller's, as a free is counted before it is forwarded (once the inner
/// allocator has moved the block, it may hand the old address to another
/// thread, whose new sample would then be the one taken out). One compare
/// outside sampling.
#[inline(always)]
pub(crate) fn before_realloc(ptr: *mut u8) -> Option<sample::Followed> {
    with_local(|l| if l.mode.get() & SAMPLE != 0 { sample::unfollow_before_realloc(ptr) } else { None })
}

/// After a failed `realloc`: the old block is still held, and followed
/// again if [`before_realloc`] had taken it out.
#[inline(always)]
pub(crate) fn after_failed_realloc(ptr: *mut u8, followed: Option<sample::Followed>) {
    if let Some(f) = followed {
        sample::refollow(ptr, f);
    }
}

/// Counts one successful `realloc` from `old` to `new` bytes: a block
/// handed out that replaced one.
#[inline(always)]
pub(crate) fn on_realloc(new_ptr: *mut u8, old: usize, new: usize) {
    with_local(|l| {
        if l.alloc_gate.get() < 0 {
            bump(&l.counts[Counter::Allocs], 1);
            bump(&l.counts[Counter::Reallocs], 1);
            bump(&l.counts[Counter::BytesAllocated], new as u64);
            bump(&l.counts[Counter::BytesFreed], old as u64);
        } else {
            on_realloc_cold(l, new_ptr, old as u64, new as u64);
        }
    })
}

/// `alloc` on a thread that samples (the heap profiler's lane: count, then
/// one subtraction and a branch until a sample is due, as Go's sampler) or
/// needs the cold path. Out of line, so that the fast path stays small
/// enough to inline into `__rust_alloc`'s callers (inlining the lane too
/// made `__rust_alloc` a call, and cost the fast path); `cold`, so that the
/// compiler lays the fast path out as the straight line.
#[cold]
#[inline(never)]
pub(super) fn on_alloc_other(l: &'static ThreadCounters, ptr: *mut u8, size: u64) {
    if l.alloc_gate.get() == SAMPLE_GATE {
        bump(&l.counts[Counter::Allocs], 1);
        bump(&l.counts[Counter::BytesAllocated], size);
        let left = l.until_next.get().wrapping_sub(size as i64);
        l.until_next.set(left);
        if left < 0 {
            sample::take(l, ptr, size);
        }
    } else {
        on_alloc_cold(l, ptr, size);
    }
}

#[cold]
#[inline(never)]
pub(super) fn on_dealloc_cold(l: &'static ThreadCounters, ptr: *mut u8, size: u64) {
    let mode = settle(l);
    let counts = Counts::of(&[(Counter::Deallocs, 1), (Counter::BytesFreed, size)]);
    if mode & LIBRARY != 0 {
        registry::count_library(counts);
        return;
    }
    if mode & DETACHED != 0 {
        registry::count_detached(counts);
        return;
    }
    bump(&l.counts[Counter::Deallocs], 1);
    bump(&l.counts[Counter::BytesFreed], size);
    if mode & TRIP != 0 {
        trip::on_free(size);
    }
    if mode & SAMPLE != 0 && sample::maybe_followed(ptr) {
        sample::on_free(ptr);
    }
}

#[cold]
#[inline(never)]
pub(super) fn on_alloc_cold(l: &'static ThreadCounters, ptr: *mut u8, size: u64) {
    let mode = settle(l);
    let counts = Counts::of(&[(Counter::Allocs, 1), (Counter::BytesAllocated, size)]);
    if mode & LIBRARY != 0 {
        registry::count_library(counts);
        return;
    }
    if mode & DETACHED != 0 {
        registry::count_detached(counts);
        return;
    }
    bump(&l.counts[Counter::Allocs], 1);
    let allocated = bump(&l.counts[Counter::BytesAllocated], size);
    if mode & PEAK != 0 {
        raise_high_water(l);
    }
    if mode & TRIP != 0 {
        check_trip(l, allocated, size, 0);
    }
    if mode & SAMPLE != 0 {
        sample::tick(l, ptr, size);
    }
}

/// Hands the thread's figures to the budgets' trip check: an allocation or
/// reallocation of `size` bytes that replaced `freed` bytes.
pub(super) fn check_trip(l: &ThreadCounters, allocated: u64, size: u64, freed: u64) {
    let allocs = l.counts[Counter::Allocs].load(Ordering::Relaxed);
    trip::check(allocs, allocated, l.high_water.get(), size, freed);
}

#[cold]
#[inline(never)]
pub(super) fn on_realloc_cold(l: &'static ThreadCounters, new_ptr: *mut u8, old: u64, new: u64) {
    let mode = settle(l);
    let counts = Counts::of(&[
        (Counter::Allocs, 1),
        (Counter::Reallocs, 1),
        (Counter::BytesAllocated, new),
        (Counter::BytesFreed, old),
    ]);
    if mode & LIBRARY != 0 {
        registry::count_library(counts);
        return;
    }
    if mode & DETACHED != 0 {
        registry::count_detached(counts);
        return;
    }
    bump(&l.counts[Counter::Allocs], 1);
    bump(&l.counts[Counter::Reallocs], 1);
    let allocated = bump(&l.counts[Counter::BytesAllocated], new);
    bump(&l.counts[Counter::BytesFreed], old);
    if mode & PEAK != 0 {
        raise_high_water(l);
    }
    if mode & TRIP != 0 {
        check_trip(l, allocated, new, old);
    }
    if mode & SAMPLE != 0 {
        // A reallocation is a new block replacing the old one (the counting
        // rule): the old one left the live set before the call was
        // forwarded (`before_realloc`), the new one may be sampled.
        sample::tick(l, new_ptr, new);
    }
}

/// Registers the block if it is fresh, applies a process-wide sampling
/// change, and returns its mode.
#[inline]
pub(super) fn settle(l: &'static ThreadCounters) -> u8 {
    if l.mode.get() & FRESH != 0 {
        registry::register(l);
    }
    if sample::epoch() != l.sample_epoch.get() {
        sample::reconcile(l);
    }
    l.mode.get()
}

/// Raises the high-water mark to the held bytes.
///
/// Both counters are read as plain memory, which lets the compiler fold the
/// reads into the `sub` and `cmp` that use them: a volatile read of
/// `bytes_allocated` just written (the compiler keeps it; otherwise it keeps
/// the sum in a register and pays a separate load and store for the add)
/// and a plain read of `bytes_freed`.
#[inline(always)]
pub(super) fn raise_high_water(l: &ThreadCounters) {
    let (allocated, freed) = (&l.counts[Counter::BytesAllocated], &l.counts[Counter::BytesFreed]);
    // SAFETY: both pointers come from live atomics of this thread's block.
    // Only the owning thread (this one) writes them, so these reads cannot
    // race with a write; other threads only read them, and reads do not
    // race with reads.
    let live = unsafe { allocated.as_ptr().read_volatile().wrapping_sub(*freed.as_ptr()) } as i64;
    if live > l.high_water.get() {
        l.high_water.set(live);
    }
}

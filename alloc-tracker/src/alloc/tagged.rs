//! Owner tags: the trailer that carries a block's owner.
//!
//! [`CountingAlloc::with_owner_tags`] makes every block carry its owner:
//! the [`Group`](crate::Group) that was its thread's innermost when it was
//! allocated, or none. The tag is a trailer of one word after the caller's
//! bytes, at the first multiple of 8 at or past its size (so a block of any
//! alignment keeps it, and nothing moves the caller's bytes): each method
//! still calls the inner allocator's same method, with the size grown to
//! hold the trailer and the alignment raised to at least 8. A free reads
//! the trailer and lowers its owner's held bytes, on whichever thread it
//! happens ([`Group::held`](crate::Group::held)); a reallocation keeps the
//! owner. Every figure the program sees counts the caller's sizes: the
//! trailer is in none. The choice is fixed for the process (the `static`
//! is a constant), and a process without tags runs the path above,
//! unchanged.
//!
//! The trailer is read through the pointer the caller hands back, past the
//! bytes it was given: what any allocator that hands out less than it
//! allocates does. Miri's Stacked Borrows model rejects that for every
//! such allocator (a `Box` is retagged over its own bytes only, a known
//! limit of that model); its Tree Borrows model accepts it, and CI runs
//! the tagged tests under Tree Borrows. The tag is stored as a pointer, so
//! a free reaches the ledger with its provenance (no integer casts).

use std::alloc::{GlobalAlloc, Layout};

use super::CountingAlloc;
use crate::counters::{self, held::Tag};

/// Bytes of an owner tag.
const TAG: usize = std::mem::size_of::<Tag>();

/// Where a block of `size` caller's bytes keeps its tag: the next multiple
/// of 8.
#[inline(always)]
const fn tag_offset(size: usize) -> usize {
    (size + (TAG - 1)) & !(TAG - 1)
}

/// The inner allocator's layout of a tagged block: the caller's bytes,
/// padding to a multiple of 8, the tag; alignment at least 8. `None` when
/// that could exceed a layout's limits (the allocation then fails: only
/// sizes within a few bytes of `isize::MAX`, which no allocator can
/// serve).
#[inline(always)]
fn tagged(layout: Layout) -> Option<Layout> {
    let align = layout.align().max(TAG);
    // `tag_offset(size) + TAG <= size + 15`, which rounded up to `align`
    // stays within `isize::MAX` when `size + 15 <= isize::MAX + 1 - align`.
    if layout.size() > isize::MAX as usize - 14 - align {
        return None;
    }
    // SAFETY: `align` is a power of two (the caller's, or 8), and the size
    // rounded up to it does not exceed `isize::MAX` (checked above).
    Some(unsafe { tagged_unchecked(layout) })
}

/// [`tagged`] for a layout it has accepted before (a live block's).
///
/// # Safety
///
/// `tagged(layout)` is `Some`.
#[inline(always)]
unsafe fn tagged_unchecked(layout: Layout) -> Layout {
    // SAFETY: the caller's.
    unsafe { Layout::from_size_align_unchecked(tag_offset(layout.size()) + TAG, layout.align().max(TAG)) }
}

/// Where a tagged block of `size` caller's bytes keeps its tag.
///
/// # Safety
///
/// `block` must be a tagged block of `size` caller's bytes (aligned to at
/// least 8, with room for the trailer).
#[inline(always)]
unsafe fn tag_of(block: *mut u8, size: usize) -> *mut Tag {
    // SAFETY: the trailer is inside the block (`tagged`), at a multiple of
    // 8 from its start, which is aligned to at least 8.
    unsafe { block.add(tag_offset(size)).cast::<Tag>() }
}

impl<A: GlobalAlloc> CountingAlloc<A> {
    /// `alloc` or `alloc_zeroed` of a tagged block: the owner written in
    /// the trailer, the caller's size counted.
    ///
    /// # Safety
    ///
    /// `GlobalAlloc::alloc`'s contract.
    #[inline]
    pub(super) unsafe fn alloc_tagged(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        let Some(inner) = tagged(layout) else { return std::ptr::null_mut() };
        // SAFETY: `inner` has a non-zero size (the trailer).
        let p = unsafe {
            if zeroed {
                self.inner.alloc_zeroed(inner)
            } else {
                self.inner.alloc(inner)
            }
        };
        if !p.is_null() {
            let owner = counters::on_alloc_tagged(p, layout.size());
            // SAFETY: a tagged block of `layout.size()` caller's bytes.
            unsafe { tag_of(p, layout.size()).write(owner) };
        }
        p
    }

    /// `dealloc` of a tagged block: its owner no longer holds it.
    ///
    /// # Safety
    ///
    /// `GlobalAlloc::dealloc`'s contract.
    #[inline]
    pub(super) unsafe fn dealloc_tagged(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a tagged block of `layout.size()` caller's bytes
        // (made by `alloc_tagged` or `realloc_tagged` with this layout).
        let owner = unsafe { tag_of(ptr, layout.size()).read() };
        counters::on_dealloc_tagged(ptr, layout.size(), owner);
        // SAFETY: `tagged` accepted this layout when the block was made,
        // which was allocated with the layout it gave.
        unsafe { self.inner.dealloc(ptr, tagged_unchecked(layout)) };
    }

    /// `realloc` of a tagged block: the same owner, written at the new
    /// size's trailer.
    ///
    /// # Safety
    ///
    /// `GlobalAlloc::realloc`'s contract.
    #[inline]
    pub(super) unsafe fn realloc_tagged(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `realloc`'s contract: `new_size` rounded up to the
        // block's alignment does not overflow `isize`.
        let wanted = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let Some(new) = tagged(wanted) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `tagged` accepted the block's layout when it was made.
        let old = unsafe { tagged_unchecked(layout) };
        // SAFETY: `ptr` is a tagged block of `layout.size()` caller's bytes.
        let owner = unsafe { tag_of(ptr, layout.size()).read() };
        let followed = counters::before_realloc(ptr);
        // SAFETY: the block was allocated with `old`; `new.size()` is
        // non-zero and a valid layout's size with `old`'s alignment.
        let p = unsafe { self.inner.realloc(ptr, old, new.size()) };
        if p.is_null() {
            counters::after_failed_realloc(ptr, followed);
        } else {
            counters::on_realloc_tagged(p, layout.size(), new_size, owner);
            // SAFETY: a tagged block of `new_size` caller's bytes now.
            unsafe { tag_of(p, new_size).write(owner) };
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use std::alloc::System;

    use super::*;

    /// Tagged blocks of every shape keep the caller's alignment and bytes
    /// through growing, shrinking and moving reallocations, and the
    /// trailer never overlaps them (Miri checks every access against the
    /// inner layouts). Outside any group the tag is 0.
    #[test]
    fn tagged_blocks_keep_alignment_bytes_and_trailer_apart() {
        let a = CountingAlloc::new(System).with_owner_tags();
        for align in [1, 2, 8, 16, 64, 4096] {
            for size in [0, 1, 7, 8, 9, 63, 64, 100] {
                let layout = Layout::from_size_align(size, align).unwrap();
                for zeroed in [false, true] {
                    // SAFETY: every block is used within its caller's size
                    // and freed with the layout it has then.
                    unsafe {
                        let p = if zeroed { a.alloc_zeroed(layout) } else { a.alloc(layout) };
                        assert!(!p.is_null());
                        assert_eq!(p as usize % align, 0, "{layout:?}");
                        if zeroed {
                            assert!((0..size).all(|i| *p.add(i) == 0), "{layout:?} zeroed");
                        }
                        p.write_bytes(0xAB, size);
                        assert!(tag_of(p, size).read().is_null(), "no group: no owner");
                        let mut block = p;
                        let mut now = size;
                        for new in [size + 1, size * 3 + 5, (size / 2).max(1), 4097, 1] {
                            let q = a.realloc(block, Layout::from_size_align(now, align).unwrap(), new);
                            assert!(!q.is_null());
                            assert_eq!(q as usize % align, 0, "{layout:?} to {new}");
                            let kept = now.min(new);
                            assert!((0..kept).all(|i| *q.add(i) == 0xAB), "{layout:?} to {new}: bytes kept");
                            q.write_bytes(0xAB, new);
                            assert!(tag_of(q, new).read().is_null());
                            (block, now) = (q, new);
                        }
                        a.dealloc(block, Layout::from_size_align(now, align).unwrap());
                    }
                }
            }
        }
    }

    /// A layout whose tagged form would not fit `isize` fails like any
    /// allocation the inner allocator cannot serve: null, nothing counted.
    #[test]
    fn a_layout_too_large_for_its_trailer_gets_null() {
        let a = CountingAlloc::new(System).with_owner_tags();
        let huge = Layout::from_size_align(isize::MAX as usize - 15, 8).unwrap();
        let before = crate::thread_stats();
        // SAFETY: a non-zero size; the result is null (checked).
        assert!(unsafe { a.alloc(huge) }.is_null());
        assert_eq!(crate::thread_stats().allocs, before.allocs);
    }
}

//! [`CountingAlloc`]: the `GlobalAlloc` wrapper, forwarding, nothing else.
//!
//! # Implementation
//!
//! Each method calls the inner allocator with the caller's arguments
//! unchanged and, on success, adds to the calling thread's counters
//! ([`crate::counters`]; a free is counted just before it is forwarded). On
//! x86-64 with the default `release` settings of this workspace, outside any
//! scope, that is one compare of a per-thread byte with zero, a branch and
//! two `add`s to thread-local memory, per `alloc` and per `dealloc`; inside
//! a [`measure`](crate::measure) scope, `alloc` also updates a high-water
//! mark of held bytes (still inline; `realloc` does it out of line).
//! Threads that sample call sites
//! ([`start_thread_sampling`](crate::profile::start_thread_sampling)) take
//! an out-of-line lane. The measured cost of each path is in the
//! repository's `docs/overhead.md` and `docs/heap-profiling.md`, and only
//! there.
//!
//! What is not seen: memory that does not go through the Rust global
//! allocator (C libraries calling `malloc`, `mmap`, thread stacks), and the
//! inner allocator's own metadata.
//!
//!
//! # Owner tags
//!
//! With [`CountingAlloc::with_owner_tags`], each block carries its owner in
//! a trailer: `tagged.rs` has the layout and the four tagged methods.

use std::alloc::{GlobalAlloc, Layout};

use crate::counters;

mod tagged;

/// A [`GlobalAlloc`] that counts every allocation, reallocation and free,
/// per thread, and forwards each call unchanged to the inner allocator `A`.
///
/// # Examples
///
/// With jemalloc (feature `jemalloc`, on by default):
///
#[cfg_attr(feature = "jemalloc", doc = "```")]
#[cfg_attr(not(feature = "jemalloc"), doc = "```ignore")]
/// use allocscope::{CountingAlloc, Jemalloc};
///
/// #[global_allocator]
/// static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);
///
/// let (_, stats) = allocscope::measure(|| std::hint::black_box(vec![0u8; 4096]));
/// assert_eq!((stats.allocs, stats.bytes_allocated), (1, 4096));
/// ```
///
/// With the system allocator:
///
/// ```
/// use allocscope::CountingAlloc;
/// use std::alloc::System;
///
/// #[global_allocator]
/// static GLOBAL: CountingAlloc<System> = CountingAlloc::new(System);
///
/// assert!(allocscope::is_installed());
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc<A> {
    inner: A,
    /// Whether blocks carry their owner (see the module docs).
    tags: bool,
}

impl<A> CountingAlloc<A> {
    /// Wraps `inner`. `const`, so it can initialise a `static`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use allocscope::CountingAlloc;
    /// #[global_allocator]
    /// static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);
    /// # fn main() {}
    /// ```
    pub const fn new(inner: A) -> Self {
        CountingAlloc { inner, tags: false }
    }

    /// The same allocator, with every block carrying its owner, so that
    /// each [`Group`](crate::Group) knows exactly what it still holds
    /// ([`Group::held`](crate::Group::held)), whichever thread frees its
    /// memory. Each block takes one word more from the inner allocator (and
    /// so may take a larger size class: the `docs/overhead.md` of the
    /// repository measures what that costs); no figure the program sees
    /// counts it. `const`, so the choice is made once, for the process.
    ///
    /// # Examples
    ///
    /// ```
    /// use allocscope::{CountingAlloc, Group};
    ///
    /// #[global_allocator]
    /// static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System).with_owner_tags();
    ///
    /// let cache = Group::new("cache");
    /// let entry = cache.run(|| vec![0u8; 100]);
    /// // Freed on another thread, outside any group: the cache no longer
    /// // holds it.
    /// assert_eq!(cache.held().bytes, 100);
    /// std::thread::spawn(move || drop(entry)).join().unwrap();
    /// assert_eq!((cache.held().bytes, cache.held().exact), (0, true));
    /// ```
    pub const fn with_owner_tags(mut self) -> Self {
        self.tags = true;
        self
    }

    /// The wrapped allocator.
    ///
    /// # Examples
    ///
    /// ```
    /// # use allocscope::CountingAlloc;
    /// let a = CountingAlloc::new(std::alloc::System);
    /// let _system: &std::alloc::System = a.inner();
    /// ```
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

// SAFETY: every method forwards the caller's pointer and layout unchanged to
// the inner allocator's same method, which upholds `GlobalAlloc`'s
// contract (with owner tags: the layout grown by the trailer, the same
// grown layout for a block's every call, and the caller handed the block's
// start, aligned as the caller asked); the counting around it neither
// allocates, panics nor unwinds, and touches no byte of the caller's.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.tags {
            // SAFETY: the caller's contract, forwarded.
            return unsafe { self.alloc_tagged(layout, false) };
        }
        // SAFETY: the caller's contract for `alloc` is forwarded unchanged.
        let p = unsafe { self.inner.alloc(layout) };
        if !p.is_null() {
            counters::on_alloc(p, layout.size());
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if self.tags {
            // SAFETY: the caller's contract, forwarded.
            return unsafe { self.alloc_tagged(layout, true) };
        }
        // SAFETY: the caller's contract for `alloc_zeroed` is forwarded
        // unchanged, so the inner allocator's zeroing fast path is kept.
        let p = unsafe { self.inner.alloc_zeroed(layout) };
        if !p.is_null() {
            counters::on_alloc(p, layout.size());
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.tags {
            // SAFETY: the caller's contract, forwarded.
            return unsafe { self.dealloc_tagged(ptr, layout) };
        }
        // Counted first: a free cannot fail, the pointer need not survive
        // the call (one register fewer), and a sampled block leaves the
        // profile's live table before another thread can be handed its
        // address.
        counters::on_dealloc(ptr, layout.size());
        // SAFETY: the caller's contract for `dealloc` is forwarded unchanged.
        unsafe { self.inner.dealloc(ptr, layout) };
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.tags {
            // SAFETY: the caller's contract, forwarded.
            return unsafe { self.realloc_tagged(ptr, layout, new_size) };
        }
        // A sampled block leaves the profile's live table before the inner
        // allocator can hand its address to another thread (as `dealloc`
        // does), and comes back if the reallocation fails.
        let followed = counters::before_realloc(ptr);
        // SAFETY: the caller's contract for `realloc` is forwarded unchanged,
        // so in-place growth stays available.
        let p = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if p.is_null() {
            counters::after_failed_realloc(ptr, followed);
        } else {
            counters::on_realloc(p, layout.size(), new_size);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::sample;
    use std::alloc::System;
    use std::cell::Cell;

    thread_local! {
        /// Whether the old block was still in the heap profile's live table
        /// when the inner `realloc` ran.
        static FOLLOWED_DURING_REALLOC: Cell<Option<bool>> = const { Cell::new(None) };
        static FAIL_NEXT_REALLOC: Cell<bool> = const { Cell::new(false) };
    }

    /// `System`, with a `realloc` that looks at the live table first.
    struct Inspecting;

    // SAFETY: every method forwards to `System` unchanged, except that
    // `realloc` may fail (return null), which the contract allows.
    unsafe impl GlobalAlloc for Inspecting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: the caller's contract, forwarded.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the caller's contract, forwarded.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            FOLLOWED_DURING_REALLOC.set(Some(sample::is_followed(ptr)));
            if FAIL_NEXT_REALLOC.replace(false) {
                return std::ptr::null_mut();
            }
            // SAFETY: the caller's contract, forwarded.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    /// Once the inner allocator has moved a block, it may hand the old
    /// address to another thread, whose new sample must not be the one a
    /// late removal takes out: the old block leaves the live table before
    /// the inner `realloc` runs, and comes back if it fails.
    #[test]
    #[cfg_attr(miri, ignore = "touches the 24 MiB live table, which Miri would track byte by byte for minutes")]
    fn a_sampled_block_leaves_the_live_table_before_the_inner_realloc_runs() {
        std::thread::spawn(|| {
            let a = CountingAlloc::new(Inspecting);
            let small = Layout::from_size_align(64, 8).unwrap();
            sample::start(1);
            // SAFETY: a non-zero size; every block is freed below with its
            // layout.
            unsafe {
                let p = a.alloc(small);
                assert!(!p.is_null() && sample::is_followed(p));
                let q = a.realloc(p, small, 1 << 16);
                assert_eq!(FOLLOWED_DURING_REALLOC.get(), Some(false), "taken out before forwarding");
                assert!(!q.is_null() && sample::is_followed(q), "the new block is sampled (rate 1)");
                let big = Layout::from_size_align(1 << 16, 8).unwrap();
                FAIL_NEXT_REALLOC.set(true);
                assert!(a.realloc(q, big, 1 << 20).is_null());
                assert_eq!(FOLLOWED_DURING_REALLOC.get(), Some(false));
                assert!(sample::is_followed(q), "a failed reallocation leaves the old block followed");
                a.dealloc(q, big);
                assert!(!sample::is_followed(q));
            }
            sample::stop();
        })
        .join()
        .unwrap();
    }
}

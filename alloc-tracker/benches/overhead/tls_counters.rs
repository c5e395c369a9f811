//! Reference points for the overhead table, not products: the bare
//! thread-local counters that `allocscope` builds on, with nothing else. No
//! registry (so no process totals: a thread's counts die with it), no check
//! of any kind on the path (so no scopes, no peak, no budgets, no sampling),
//! and, with `FREES = false`, frees not counted at all. They show the floor
//! that counting alone costs around jemalloc on this loop.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts allocations and bytes (and, if `FREES`, frees and bytes freed) in
/// const thread-locals, written the way `allocscope` writes its own: a
/// relaxed load and store by the only writer.
pub struct TlsCounters<const FREES: bool>;

struct Block {
    allocs: AtomicU64,
    bytes: AtomicU64,
    frees: AtomicU64,
    bytes_freed: AtomicU64,
}

thread_local! {
    static BLOCK: Block = const {
        Block {
            allocs: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            bytes_freed: AtomicU64::new(0),
        }
    };
}

#[inline(always)]
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

// SAFETY: `alloc` and `dealloc` forward to jemalloc unchanged; the counting
// neither allocates nor touches the memory. `alloc_zeroed` and `realloc`
// keep their default implementations, which go through these two.
unsafe impl<const FREES: bool> GlobalAlloc for TlsCounters<FREES> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is forwarded unchanged.
        let p = unsafe { tikv_jemallocator::Jemalloc.alloc(layout) };
        if !p.is_null() {
            BLOCK.with(|b| {
                bump(&b.allocs, 1);
                bump(&b.bytes, layout.size() as u64);
            });
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if FREES {
            BLOCK.with(|b| {
                bump(&b.frees, 1);
                bump(&b.bytes_freed, layout.size() as u64);
            });
        }
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { tikv_jemallocator::Jemalloc.dealloc(ptr, layout) }
    }
}

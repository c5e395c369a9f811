//! The thread-exit hook that retires a thread's block, per platform.
//!
//! - Unix: a `pthread_key_create` destructor. glibc and the BSDs run key
//!   destructors after the C++/Rust thread-local destructors, so frees made
//!   by those are still counted in the thread's block. Creating the key and
//!   setting its value never call the Rust global allocator.
//! - Elsewhere: a `thread_local!` with `Drop` (the portable hook, compiled
//!   and tested on every platform). Arming it may allocate, to register the
//!   destructor; registration clears the block's `FRESH` bit before arming,
//!   so such an allocation is counted in the block and does not recurse.

use super::registry::retire;
use super::ThreadCounters;

/// Arranges for `block` to be retired when this thread exits; false if the
/// platform refused. The block is already registered (not `FRESH`), so an
/// allocation made while arming is counted in it.
pub(super) fn arm(block: *mut ThreadCounters) -> bool {
    // SAFETY: `block` is the calling thread's live block.
    debug_assert!(unsafe { &*block }.mode.get() & super::FRESH == 0, "registered before arming");
    #[cfg(unix)]
    return pthread_key::arm(block);
    #[cfg(not(unix))]
    return thread_local_drop::arm(block);
}

#[cfg(unix)]
mod pthread_key {
    use super::{retire, ThreadCounters};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// `pthread_key_t` plus one, zero until created.
    static KEY: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn on_exit(block: *mut libc::c_void) {
        // SAFETY: the value was set by `arm` to this thread's block, which is
        // still alive: pthread key destructors run before the thread's TLS
        // memory is released.
        retire(unsafe { &*block.cast::<ThreadCounters>() });
    }

    fn key() -> Option<libc::pthread_key_t> {
        let k = KEY.load(Ordering::Acquire);
        if k != 0 {
            return Some((k - 1) as libc::pthread_key_t);
        }
        let mut new: libc::pthread_key_t = 0;
        // SAFETY: `new` is a valid out-pointer; `on_exit` matches the
        // destructor signature. glibc allocates keys without calling the
        // Rust global allocator.
        if unsafe { libc::pthread_key_create(&mut new, Some(on_exit)) } != 0 {
            return None;
        }
        match KEY.compare_exchange(0, new as usize + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Some(new),
            Err(winner) => {
                // SAFETY: `new` was created above and never used.
                unsafe { libc::pthread_key_delete(new) };
                Some((winner - 1) as libc::pthread_key_t)
            }
        }
    }

    pub(super) fn arm(block: *mut ThreadCounters) -> bool {
        let Some(key) = key() else { return false };
        // SAFETY: `key` is a live key; storing a non-null value makes the
        // destructor run at thread exit. The C library's own allocator backs
        // the key's storage, not the Rust global allocator.
        unsafe { libc::pthread_setspecific(key, block.cast()) == 0 }
    }
}

/// The portable hook. Used where there is no pthread; compiled everywhere
/// so that every build checks it, and tested on Unix too.
#[cfg_attr(unix, allow(dead_code))]
mod thread_local_drop {
    use super::{retire, ThreadCounters};
    use std::cell::Cell;

    struct Retire(Cell<*const ThreadCounters>);

    impl Drop for Retire {
        fn drop(&mut self) {
            let block = self.0.get();
            if !block.is_null() {
                // SAFETY: set by `arm` to this thread's block, which outlives
                // its thread-local destructors (`LOCAL` has none).
                retire(unsafe { &*block });
            }
        }
    }

    thread_local! {
        static HOOK: Retire = const { Retire(Cell::new(std::ptr::null())) };
    }

    pub(super) fn arm(block: *mut ThreadCounters) -> bool {
        HOOK.try_with(|h| h.0.set(block)).is_ok()
    }

    #[cfg(test)]
    mod tests {
        use super::super::super::{registry, Counter, CounterSet, ThreadCounters, DETACHED, READY};
        use std::cell::Cell;

        /// The portable hook retires its block when the thread exits: the
        /// block ends up detached and its counts reach the process totals.
        /// (A block of its own, so the platform's hook does not interfere.)
        #[test]
        fn the_thread_local_hook_retires_its_block_at_thread_exit() {
            const MARK: u64 = 1 << 40;
            struct Block(*mut ThreadCounters);
            // SAFETY: the block is only touched by the spawned thread's hook
            // until the join, and by this thread after it.
            unsafe impl Send for Block {}
            let block = Block(Box::into_raw(Box::new(ThreadCounters {
                mode: Cell::new(READY),
                alloc_gate: Cell::new(0),
                free_gate: Cell::new(0),
                counts: CounterSet::zero(),
                high_water: Cell::new(0),
                until_next: Cell::new(0),
                slot: Cell::new(usize::MAX),
                sample_epoch: Cell::new(0),
                serial: Cell::new(0),
            })));
            // SAFETY: `block.0` is the live box created above.
            unsafe { &*block.0 }.counts[Counter::BytesAllocated].store(MARK, std::sync::atomic::Ordering::Relaxed);
            let before = registry::process_counts();
            let block = std::thread::spawn(move || {
                assert!(super::arm(block.0));
                block
            })
            .join()
            .unwrap();
            let after = registry::process_counts();
            // SAFETY: the hook ran at the thread's exit; nothing else holds
            // the box, which is freed here.
            let block = unsafe { Box::from_raw(block.0) };
            assert_eq!(block.mode.get(), DETACHED);
            let grown = after[Counter::BytesAllocated].wrapping_sub(before[Counter::BytesAllocated]);
            assert!((MARK..MARK + (1 << 30)).contains(&grown), "retired exactly once: {grown}");
        }
    }
}

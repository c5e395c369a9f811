//! The thread-exit hook, per platform: calls a function with a value when
//! the calling thread exits, after the thread's other thread-local
//! destructors where the platform allows. A leaf: the registry hands it
//! the function that retires a thread's block ([`super::registry`]).
//!
//! - Unix: a `pthread_key_create` destructor. glibc and the BSDs run key
//!   destructors after the C++/Rust thread-local destructors, so frees made
//!   by those are still counted in the thread's block. Creating the key and
//!   setting its value never call the Rust global allocator.
//! - Elsewhere: a `thread_local!` with `Drop` (the portable hook, compiled
//!   and tested on every platform). Arming it may allocate, to register the
//!   destructor; the registry arms it only once the block can count such an
//!   allocation.

use std::ffi::c_void;

/// What runs at thread exit, with the value given to [`arm`]. One function
/// for the whole process: the first [`arm`] fixes it.
pub(super) type OnExit = unsafe extern "C" fn(*mut c_void);

/// Arranges for `on_exit(value)` to run when this thread exits; false if
/// the platform refused.
pub(super) fn arm(value: *mut c_void, on_exit: OnExit) -> bool {
    #[cfg(unix)]
    return pthread_key::arm(value, on_exit);
    #[cfg(not(unix))]
    return thread_local_drop::arm(value, on_exit);
}

#[cfg(unix)]
mod pthread_key {
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::OnExit;

    /// `pthread_key_t` plus one, zero until created.
    static KEY: AtomicUsize = AtomicUsize::new(0);

    fn key(on_exit: OnExit) -> Option<libc::pthread_key_t> {
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

    pub(super) fn arm(value: *mut c_void, on_exit: OnExit) -> bool {
        let Some(key) = key(on_exit) else { return false };
        // SAFETY: `key` is a live key; storing a non-null value makes the
        // destructor run at thread exit. The C library's own allocator backs
        // the key's storage, not the Rust global allocator.
        unsafe { libc::pthread_setspecific(key, value) == 0 }
    }
}

/// The portable hook. Used where there is no pthread; compiled everywhere
/// so that every build checks it, and tested on Unix too.
#[cfg_attr(unix, allow(dead_code))]
pub(super) mod thread_local_drop {
    use std::cell::Cell;
    use std::ffi::c_void;

    use super::OnExit;

    struct Hook(Cell<Option<(*mut c_void, OnExit)>>);

    impl Drop for Hook {
        fn drop(&mut self) {
            if let Some((value, on_exit)) = self.0.get() {
                // SAFETY: `arm`'s caller vouched that `on_exit(value)` may
                // run when the thread exits.
                unsafe { on_exit(value) };
            }
        }
    }

    thread_local! {
        static HOOK: Hook = const { Hook(Cell::new(None)) };
    }

    pub(in crate::counters) fn arm(value: *mut c_void, on_exit: OnExit) -> bool {
        HOOK.try_with(|h| h.0.set(Some((value, on_exit)))).is_ok()
    }
}

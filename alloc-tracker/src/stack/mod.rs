//! Call stacks: capture return addresses (inside the allocator), and the
//! resolved [`Frame`]; naming and classifying frames, and keeping the code
//! under test's, is `frames.rs`.
//! Resolving addresses into frames is `crate::symbols`'s, under this
//! module's lock. A leaf: it uses nothing else of the crate.
//!
//! The walk uses the platform unwinder (`backtrace`'s
//! `trace_unsynchronized`: libgcc's `_Unwind_Backtrace` on Linux), which
//! needs no frame pointers, allocates (if at all) through the C library's
//! `malloc` rather than the Rust global allocator, and may take the C
//! library's loader lock on old C libraries: that is why it runs only when
//! a budget trips or a sample is taken, never when counting.
//!
//! Resolution (`crate::symbols`) runs under a lock of this crate's own,
//! which a `pthread_atfork` handler takes before the fork and releases on
//! both sides ([`before_fork`], [`after_fork`]): a fork waits for a
//! resolution in progress to end. On Linux it takes no other lock: the
//! `backtrace` crate's global lock is shared with the application (its own
//! backtraces, panic hooks, loggers), and a child forked while an
//! application thread held it would wait for it for ever; so neither the
//! walk (`trace_unsynchronized`) nor the resolution (the library's own
//! reader) takes it.

use std::sync::atomic::{AtomicBool, Ordering};

/// Held while this crate resolves symbols, and across a `fork`.
static RESOLVING: AtomicBool = AtomicBool::new(false);

/// Takes [`RESOLVING`]; waits (yielding) while another thread holds it.
fn lock_resolution() {
    while RESOLVING.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        std::thread::yield_now();
    }
}

fn unlock_resolution() {
    RESOLVING.store(false, Ordering::Release);
}

/// The resolution lock, held while it lives: symbols are resolved, and the
/// resolved frames kept (`crate::symbols`), only under it.
pub(crate) struct ResolutionLock(());

impl ResolutionLock {
    /// Takes the lock; waits (yielding) while another thread holds it.
    pub(crate) fn take() -> ResolutionLock {
        lock_resolution();
        ResolutionLock(())
    }
}

impl Drop for ResolutionLock {
    /// Releases the lock on every exit, a panic's too.
    fn drop(&mut self) {
        unlock_resolution();
    }
}

/// The `pthread_atfork` prepare handler's part: no thread is resolving
/// symbols while the process forks.
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn before_fork() {
    lock_resolution();
}

/// The `pthread_atfork` parent and child handlers' part.
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn after_fork() {
    unlock_resolution();
}

/// Writes the current stack's return addresses, innermost first, into
/// `buf`; returns how many. No allocation through the Rust global allocator:
/// callable from the allocator's cold paths (budget trips, samples).
pub(crate) fn capture(buf: &mut [usize]) -> usize {
    let mut n = 0;
    // Under Miri, `backtrace` walks the stack with an allocation of its
    // own, through the global allocator: the tests Miri runs would see it.
    if buf.is_empty() || cfg!(miri) {
        return 0;
    }
    // SAFETY: `trace_unsynchronized` is unsafe only because some platforms'
    // unwinders are not thread-safe; on those (Windows' dbghelp) the callers
    // would need the crate's lock, which may allocate. The callback only
    // stores integers into `buf`, within its bounds.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            buf[n] = frame.ip() as usize;
            n += 1;
            n < buf.len()
        });
    }
    n
}

/// One resolved frame of the code under test; see
/// [`Site::user_frames`](crate::profile::Site::user_frames).
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// #[inline(never)]
/// fn build_index() -> Vec<u64> {
///     std::hint::black_box(vec![0u64; 512])
/// }
/// allocscope::profile::start_thread_sampling(1);
/// let index = build_index();
/// allocscope::profile::stop_thread_sampling();
/// let frames: Vec<allocscope::profile::Frame> =
///     allocscope::profile::heap_profile().user_frames().into_iter().flatten().collect();
/// let frame = frames.iter().find(|f| f.name.ends_with("build_index")).expect("the function's frame");
/// assert_ne!(frame.address, 0);
/// # drop(index);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Frame {
    /// The return address.
    pub address: usize,
    /// The demangled function name, without its hash.
    pub name: String,
    /// The source file, or empty without debug info.
    pub file: String,
    /// The source line, or 0 without debug info.
    pub line: u32,
}

mod frames;

#[cfg(feature = "pprof")]
pub(crate) use frames::go_name;
pub(crate) use frames::{describe_frames, keep_user_frames, origin, with_module_path, without_generics, Origin};

//! jemalloc-only figures: the size-class rounded bytes a thread was handed,
//! and the allocator-wide statistics (`allocated`, `active`, `resident`,
//! `mapped`, `retained`, `metadata`).
//!
//! Everything here reads jemalloc's own counters through its `mallctl`;
//! nothing is called from the allocator path. The `jemalloc` feature links
//! one (tikv-jemalloc-sys 0.7, the jemalloc under [`Jemalloc`]); an
//! application that brings its own `tikv-jemallocator`, of any version,
//! hands its `mallctl` over with [`use_jemalloc_mallctl`] instead, so that
//! one jemalloc serves the allocations and answers the questions. Without
//! a `mallctl`, or when jemalloc does not serve the program's allocations,
//! the figures are absent (`None`), never zero. It uses nothing else of
//! the crate but the counters' library mode (`as_library`), for its one probe block.
//!
#![cfg_attr(feature = "jemalloc", doc = "[`Jemalloc`]: crate::Jemalloc")]
#![cfg_attr(not(feature = "jemalloc"), doc = "[`Jemalloc`]: crate#feature-flags")]

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// jemalloc's `mallctl`, as every version of `tikv-jemalloc-sys` declares
/// it (`tikv_jemalloc_sys::mallctl`): read or write one named setting.
///
/// # Examples
///
/// ```
/// use std::ffi::{c_char, c_int, c_void};
///
/// // A stand-in with the same signature (a real one comes from
/// // `tikv-jemalloc-sys`): it answers nothing.
/// unsafe extern "C" fn no_settings(_: *const c_char, _: *mut c_void, _: *mut usize, _: *mut c_void, _: usize) -> c_int {
///     2 // ENOENT
/// }
/// let mallctl: allocscope::jemalloc::Mallctl = no_settings;
/// # let _ = mallctl;
/// ```
pub type Mallctl = unsafe extern "C" fn(
    name: *const c_char,
    oldp: *mut c_void,
    oldlenp: *mut usize,
    newp: *mut c_void,
    newlen: usize,
) -> c_int;

/// The `mallctl` handed over by [`use_jemalloc_mallctl`], as an address; 0
/// when none was.
static HANDED_OVER: AtomicUsize = AtomicUsize::new(0);

/// Reads jemalloc's figures through `mallctl`: the rounded bytes of thread
/// scopes ([`AllocStats::rounded_bytes_allocated`]) and
/// [`JemallocStats::read`].
///
/// For an application whose global allocator wraps its own
/// `tikv-jemallocator` (for example 0.6, which cannot be linked beside the
/// 0.7 one that allocscope's default `jemalloc` feature brings): build
/// allocscope with `default-features = false`, wrap that `Jemalloc` in
/// [`CountingAlloc`](crate::CountingAlloc), and hand over the `mallctl` of
/// the same `tikv-jemalloc-sys` version, once, before reading figures.
/// With the `jemalloc` feature, allocscope uses its own linked `mallctl`
/// unless one is handed over.
///
/// # Safety
///
/// `mallctl` must be the `mallctl` of the jemalloc that serves the
/// program's global allocations, or a function with its contract: it is
/// called with jemalloc's setting names and buffers of the types jemalloc
/// documents for them.
///
/// # Examples
///
/// Handing over the `mallctl` of the jemalloc allocscope links itself
/// (with the `jemalloc` feature; what allocscope does by default):
///
#[cfg_attr(feature = "jemalloc", doc = "```")]
#[cfg_attr(not(feature = "jemalloc"), doc = "```ignore")]
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> =
/// #     allocscope::CountingAlloc::new(allocscope::Jemalloc);
/// // SAFETY: tikv-jemalloc-sys 0.7 is the jemalloc under allocscope::Jemalloc.
/// unsafe { allocscope::jemalloc::use_jemalloc_mallctl(tikv_jemalloc_sys::mallctl) };
/// assert!(allocscope::jemalloc::JemallocStats::read().is_some());
/// ```
///
/// An application on tikv-jemallocator 0.6:
///
/// ```ignore
/// // Cargo.toml: allocscope = { version = "0.1", default-features = false }
/// //             tikv-jemallocator = "0.6"
/// //             tikv-jemalloc-sys = { version = "0.6", features = ["stats"] }
/// #[global_allocator]
/// static GLOBAL: allocscope::CountingAlloc<tikv_jemallocator::Jemalloc> =
///     allocscope::CountingAlloc::new(tikv_jemallocator::Jemalloc);
///
/// fn main() {
///     // SAFETY: tikv-jemalloc-sys 0.6 is the jemalloc under
///     // tikv-jemallocator 0.6, the global allocator.
///     unsafe { allocscope::jemalloc::use_jemalloc_mallctl(tikv_jemalloc_sys::mallctl) };
///     let stats = allocscope::jemalloc::JemallocStats::read().expect("jemalloc answers");
///     assert!(stats.allocated > 0);
/// }
/// ```
///
/// [`AllocStats::rounded_bytes_allocated`]: crate::AllocStats::rounded_bytes_allocated
pub unsafe fn use_jemalloc_mallctl(mallctl: Mallctl) {
    HANDED_OVER.store(mallctl as usize, Ordering::SeqCst);
    // Whether jemalloc serves the allocations is asked again, through it,
    // and every thread looks its counter up again.
    SERVES.store(0, Ordering::SeqCst);
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Bumped whenever the `mallctl` to read through changes: a thread's
/// cached counter pointer ([`rounded_thread_allocated`]) is good while its
/// generation is the current one.
static GENERATION: AtomicUsize = AtomicUsize::new(1);

/// The `mallctl` to read through, if any.
fn mallctl() -> Option<Mallctl> {
    match HANDED_OVER.load(Ordering::SeqCst) {
        0 => linked_mallctl(),
        // SAFETY: a non-zero value was stored by `use_jemalloc_mallctl`
        // from a `Mallctl`, whose caller vouched for it.
        addr => Some(unsafe { std::mem::transmute::<usize, Mallctl>(addr) }),
    }
}

#[cfg(feature = "jemalloc")]
fn linked_mallctl() -> Option<Mallctl> {
    Some(tikv_jemalloc_sys::mallctl)
}

#[cfg(not(feature = "jemalloc"))]
fn linked_mallctl() -> Option<Mallctl> {
    None
}

/// Reads the setting `name` (NUL-terminated) as a `T`.
fn read<T: Copy + Default>(name: &[u8]) -> Option<T> {
    debug_assert_eq!(name.last(), Some(&0));
    let mallctl = mallctl()?;
    let mut value = T::default();
    let mut len = std::mem::size_of::<T>();
    // SAFETY: `name` is NUL-terminated; `value` and `len` describe a buffer
    // of exactly `T`, the type jemalloc documents for the names used here;
    // nothing is written (`newp` null).
    let rc = unsafe {
        mallctl(name.as_ptr().cast(), std::ptr::from_mut(&mut value).cast(), &mut len, std::ptr::null_mut(), 0)
    };
    (rc == 0 && len == std::mem::size_of::<T>()).then_some(value)
}

/// Where jemalloc keeps the current thread's cumulative
/// `thread.allocated` (bytes handed out, rounded up to size classes), from
/// `thread.allocatedp`. `None` without jemalloc.
fn thread_allocated_pointer() -> Option<*mut u64> {
    read::<usize>(b"thread.allocatedp\0").filter(|&p| p != 0).map(|p| p as *mut u64)
}

/// jemalloc's cumulative `thread.allocated` for the current thread, read
/// now. `None` without jemalloc.
fn thread_allocated() -> Option<u64> {
    // SAFETY: jemalloc keeps this thread's counter there for the thread's
    // life; only this thread's allocations write it.
    thread_allocated_pointer().map(|p| unsafe { p.read_volatile() })
}

/// Whether jemalloc serves the program's global allocations: 0 not yet
/// probed, 1 no, 2 yes.
static SERVES: AtomicU8 = AtomicU8::new(0);

/// Runs `allocate_and_free`, which must allocate and free one block of
/// `size` bytes through the global allocator, and records whether jemalloc
/// served it: its own per-thread counter moved by at least `size`. The
/// installation probe calls it around its own block, so one allocation
/// answers both questions.
pub(crate) fn probe_with(size: usize, allocate_and_free: impl FnOnce()) {
    let before = thread_allocated();
    allocate_and_free();
    let serves = thread_allocated().zip(before).is_some_and(|(a, b)| a.wrapping_sub(b) >= size as u64);
    SERVES.store(if serves { 2 } else { 1 }, Ordering::Relaxed);
}

/// Whether jemalloc serves the program's global allocations (under
/// [`CountingAlloc`](crate::CountingAlloc) or not); see [`probe_with`].
fn serves_global_allocator() -> bool {
    if SERVES.load(Ordering::Relaxed) == 0 {
        // The library's own block: in no figure of the program's (this can
        // run inside a scope or a group window).
        crate::counters::as_library(|| probe_with(24, || drop(std::hint::black_box(Box::new([0u8; 24])))));
    }
    SERVES.load(Ordering::Relaxed) == 2
}

std::thread_local! {
    /// This thread's answer to [`rounded_thread_allocated`], looked up once
    /// per generation: the generation, and jemalloc's counter of this
    /// thread (null: no figure).
    static ROUNDED: std::cell::Cell<(usize, *const u64)> = const { std::cell::Cell::new((0, std::ptr::null())) };
}

std::thread_local! {
    /// Rounded bytes jemalloc handed this thread for the library's own
    /// work ([`library_work`]), taken out of [`rounded_thread_allocated`].
    static LIBRARY_ROUNDED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Runs `f` as the library's own work ([`counters::as_library`]: in no
/// figure of the program's), and keeps the rounded bytes jemalloc hands
/// the thread meanwhile out of [`rounded_thread_allocated`], so that a
/// scope's or a group's rounded bytes leave out the library's blocks as
/// every other figure does (a thread's first entry into a group makes its
/// shard inside the caller's scope, say). Nested calls are measured once,
/// by the outermost.
///
/// [`counters::as_library`]: crate::counters::as_library
pub(crate) fn library_work<R>(f: impl FnOnce() -> R) -> R {
    if crate::counters::is_library_work() {
        return f();
    }
    /// Adds what `f` was handed on every exit, a panic's too.
    struct Measure(Option<u64>);
    impl Drop for Measure {
        fn drop(&mut self) {
            if let (Some(before), Some(after)) = (self.0, jemalloc_thread_allocated()) {
                LIBRARY_ROUNDED.set(LIBRARY_ROUNDED.get().wrapping_add(after.wrapping_sub(before)));
            }
        }
    }
    let _measure = Measure(jemalloc_thread_allocated());
    crate::counters::as_library(f)
}

/// The current thread's cumulative rounded bytes, when jemalloc serves the
/// program's allocations, the library's own work's left out
/// ([`library_work`]): two thread-local reads and one load once looked up
/// (every scope's and group window's start and end reads it).
#[inline]
pub(crate) fn rounded_thread_allocated() -> Option<u64> {
    jemalloc_thread_allocated().map(|all| all.wrapping_sub(LIBRARY_ROUNDED.get()))
}

/// jemalloc's own counter of the rounded bytes it handed this thread.
#[inline]
fn jemalloc_thread_allocated() -> Option<u64> {
    let (generation, p) = ROUNDED.get();
    if generation == GENERATION.load(Ordering::Relaxed) {
        // SAFETY: jemalloc keeps this thread's counter at `p` for the
        // thread's life; only this thread reads it, and only this thread's
        // allocations write it.
        return (!p.is_null()).then(|| unsafe { p.read_volatile() });
    }
    rounded_thread_allocated_slow()
}

#[cold]
fn rounded_thread_allocated_slow() -> Option<u64> {
    let generation = GENERATION.load(Ordering::SeqCst);
    let p = if serves_global_allocator() { thread_allocated_pointer() } else { None };
    ROUNDED.set((generation, p.map_or(std::ptr::null(), |p| p.cast_const())));
    // SAFETY: as above.
    p.map(|p| unsafe { p.read_volatile() })
}

/// Allocator-wide figures from jemalloc's `stats.*` (bytes).
///
/// # Examples
///
#[cfg_attr(feature = "jemalloc", doc = "```")]
#[cfg_attr(not(feature = "jemalloc"), doc = "```ignore")]
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> =
/// #     allocscope::CountingAlloc::new(allocscope::Jemalloc);
/// let stats = allocscope::jemalloc::JemallocStats::read().expect("jemalloc is the inner allocator");
/// assert!(stats.allocated <= stats.active && stats.active <= stats.resident);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct JemallocStats {
    /// `stats.allocated`: bytes in live allocations, size-class rounded.
    pub allocated: u64,
    /// `stats.active`: bytes in active pages (a multiple of the page size).
    pub active: u64,
    /// `stats.resident`: bytes in physically resident pages that jemalloc
    /// maps, including its metadata.
    pub resident: u64,
    /// `stats.mapped`: bytes in extents mapped by jemalloc.
    pub mapped: u64,
    /// `stats.retained`: bytes in virtual memory mappings jemalloc kept for
    /// reuse rather than returned to the system.
    pub retained: u64,
    /// `stats.metadata`: bytes of jemalloc's own metadata.
    pub metadata: u64,
}

impl JemallocStats {
    /// Refreshes jemalloc's statistics epoch and reads them.
    ///
    /// Returns `None` when there is no `mallctl` to read through (see
    /// [`use_jemalloc_mallctl`]), when jemalloc does not serve the program's
    /// allocations (for example `CountingAlloc<System>`), or when the
    /// figures cannot be read (a jemalloc built without statistics).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// // The system allocator serves this program: no jemalloc figures.
    /// assert_eq!(allocscope::jemalloc::JemallocStats::read(), None);
    /// ```
    pub fn read() -> Option<JemallocStats> {
        if !serves_global_allocator() {
            return None;
        }
        advance_epoch()?;
        let stat = |name: &[u8]| read::<usize>(name).map(|v| v as u64);
        Some(JemallocStats {
            allocated: stat(b"stats.allocated\0")?,
            active: stat(b"stats.active\0")?,
            resident: stat(b"stats.resident\0")?,
            mapped: stat(b"stats.mapped\0")?,
            retained: stat(b"stats.retained\0")?,
            metadata: stat(b"stats.metadata\0")?,
        })
    }
}

/// Refreshes jemalloc's cached statistics (`epoch`).
fn advance_epoch() -> Option<()> {
    let mallctl = mallctl()?;
    let (mut old, mut new) = (0u64, 1u64);
    let mut len = std::mem::size_of::<u64>();
    // SAFETY: `epoch` is a read-write `uint64_t`: `old`/`len` and `new`
    // describe buffers of exactly that type.
    let rc = unsafe {
        mallctl(
            c"epoch".as_ptr(),
            std::ptr::from_mut(&mut old).cast(),
            &mut len,
            std::ptr::from_mut(&mut new).cast(),
            std::mem::size_of::<u64>(),
        )
    };
    (rc == 0).then_some(())
}

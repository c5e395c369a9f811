//! jemalloc-only figures: the size-class rounded bytes a thread was handed,
//! and the allocator-wide statistics (`allocated`, `active`, `resident`).
//!
//! Everything here reads jemalloc's own counters through `mallctl`
//! (`tikv-jemalloc-ctl`); nothing is called from the allocator path. With the
//! `jemalloc` feature off, or when jemalloc is not the allocator that serves
//! the program's allocations, the figures are absent (`None`), never zero.
//! A leaf: it uses nothing else of the crate.

/// jemalloc's cumulative `thread.allocated` for the current thread: bytes
/// handed out, rounded up to size classes. `None` without jemalloc.
#[cfg(feature = "jemalloc")]
fn thread_allocated() -> Option<u64> {
    use std::cell::Cell;
    thread_local! {
        // `thread.allocatedp` returns a pointer into jemalloc's per-thread
        // data; look it up once per thread.
        static ALLOCATEDP: Cell<Option<*mut u64>> = const { Cell::new(None) };
    }
    let p = match ALLOCATEDP.get() {
        Some(p) => p,
        None => {
            // SAFETY: "thread.allocatedp" is a read-only `uint64_t *` entry,
            // read here as exactly that type.
            let p = unsafe { tikv_jemalloc_ctl::raw::read::<*mut u64>(b"thread.allocatedp\0") }.ok()?;
            if p.is_null() {
                return None;
            }
            ALLOCATEDP.set(Some(p));
            p
        }
    };
    // SAFETY: jemalloc keeps this thread's counter at `p` for the thread's
    // life; only this thread reads it, and only this thread's allocations
    // write it.
    Some(unsafe { p.read_volatile() })
}

#[cfg(not(feature = "jemalloc"))]
fn thread_allocated() -> Option<u64> {
    None
}

/// Whether jemalloc serves the program's global allocations: 0 not yet
/// probed, 1 no, 2 yes.
static SERVES: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Runs `allocate_and_free`, which must allocate and free one block of
/// `size` bytes through the global allocator, and records whether jemalloc
/// served it: its own per-thread counter moved by at least `size`. The
/// installation probe calls it around its own block, so one allocation
/// answers both questions.
pub(crate) fn probe_with(size: usize, allocate_and_free: impl FnOnce()) {
    use std::sync::atomic::Ordering;
    let before = thread_allocated();
    allocate_and_free();
    let serves = thread_allocated().zip(before).is_some_and(|(a, b)| a.wrapping_sub(b) >= size as u64);
    SERVES.store(if serves { 2 } else { 1 }, Ordering::Relaxed);
}

/// Whether jemalloc serves the program's global allocations (under
/// [`CountingAlloc`](crate::CountingAlloc) or not); see [`probe_with`].
fn serves_global_allocator() -> bool {
    use std::sync::atomic::Ordering;
    if SERVES.load(Ordering::Relaxed) == 0 {
        probe_with(24, || drop(std::hint::black_box(Box::new([0u8; 24]))));
    }
    SERVES.load(Ordering::Relaxed) == 2
}

/// The current thread's cumulative rounded bytes, when jemalloc serves the
/// program's allocations.
pub(crate) fn rounded_thread_allocated() -> Option<u64> {
    if serves_global_allocator() {
        thread_allocated()
    } else {
        None
    }
}

/// Allocator-wide figures from jemalloc's `stats.*` (bytes).
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> =
/// #     allocscope::CountingAlloc::new(allocscope::Jemalloc);
/// let stats = allocscope::JemallocStats::read().expect("jemalloc is the inner allocator");
/// assert!(stats.allocated <= stats.active && stats.active <= stats.resident);
/// ```
#[cfg(feature = "jemalloc")]
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
    /// `stats.metadata`: bytes of jemalloc's own metadata.
    pub metadata: u64,
}

#[cfg(feature = "jemalloc")]
impl JemallocStats {
    /// Refreshes jemalloc's statistics epoch and reads them.
    ///
    /// Returns `None` when jemalloc does not serve the program's
    /// allocations (for example `CountingAlloc<System>`), or when the
    /// figures cannot be read.
    pub fn read() -> Option<JemallocStats> {
        use tikv_jemalloc_ctl::{epoch, stats};
        if !serves_global_allocator() {
            return None;
        }
        epoch::advance().ok()?;
        Some(JemallocStats {
            allocated: stats::allocated::read().ok()? as u64,
            active: stats::active::read().ok()? as u64,
            resident: stats::resident::read().ok()? as u64,
            mapped: stats::mapped::read().ok()? as u64,
            metadata: stats::metadata::read().ok()? as u64,
        })
    }
}

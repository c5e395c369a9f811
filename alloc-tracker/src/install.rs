//! Whether a [`CountingAlloc`](crate::CountingAlloc) is the global
//! allocator ([`is_installed`]), and the loud refusal of every entry point
//! when it is not: figures that would silently read zero would pass any
//! budget.

use std::alloc::Layout;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::counters::{self, registry, Counter};

/// What the installation probe found: 0 not yet probed.
static PROBE: AtomicU8 = AtomicU8::new(0);
const NOT_INSTALLED: u8 = 1;
const INSTALLED: u8 = 2;

#[cold]
fn probe() -> u8 {
    let known = PROBE.load(Ordering::Relaxed);
    if known != 0 {
        return known;
    }
    registry::prepare_for_fork();
    // Process totals, not the thread's: they move whenever a `CountingAlloc`
    // counts, even on a thread beyond the registry, and never otherwise.
    let before = registry::process_counts();
    // One block answers two questions: whether we count (the process
    // totals moved) and whether jemalloc serves the allocations.
    const PROBE_SIZE: usize = 24;
    crate::jemalloc::probe_with(PROBE_SIZE, || {
        let layout = Layout::new::<[u8; PROBE_SIZE]>();
        // SAFETY: the layout has a non-zero size; the block is freed at
        // once with the same layout.
        unsafe {
            let p = std::alloc::alloc(layout);
            if p.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            std::alloc::dealloc(std::hint::black_box(p), layout);
        }
    });
    let moved = registry::process_counts()[Counter::Allocs] != before[Counter::Allocs];
    let found = if moved { INSTALLED } else { NOT_INSTALLED };
    PROBE.store(found, Ordering::Relaxed);
    found
}

/// Whether a [`CountingAlloc`](crate::CountingAlloc) is the program's global allocator.
///
/// The first call finds out by allocating and freeing one small block and
/// checking that the process counters moved; the answer is cached.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// assert!(allocscope::is_installed());
/// ```
#[inline]
pub fn is_installed() -> bool {
    match PROBE.load(Ordering::Relaxed) {
        INSTALLED => true,
        NOT_INSTALLED => false,
        _ => probe() != NOT_INSTALLED,
    }
}

/// The install line, shown in every refusal.
pub(crate) const INSTALL_HINT: &str = "allocscope::CountingAlloc is not the global allocator, so nothing is counted; \
     install it once in the binary or test crate: \
     `#[global_allocator] static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> = \
     allocscope::CountingAlloc::new(allocscope::Jemalloc);`";

/// Panics with the install line unless the tracker is installed, and unless
/// the current thread's counters are registered.
#[track_caller]
pub(crate) fn require_installed(what: impl std::fmt::Display) {
    if !is_installed() {
        panic!("{what}: {INSTALL_HINT}");
    }
    if counters::current_tracking() == counters::Tracking::Detached {
        panic!(
            "{what}: this thread is beyond the {} threads allocscope tracks at once (or is exiting); \
             its allocations are counted only in process totals",
            registry::MAX_THREADS
        );
    }
}

//! Call sites: the stack of the first allocation that took a [`Budget`]
//! over its limit, so that a failing budget names the line that allocated.
//!
//! # How
//!
//! While a budget's closure runs, its thread is in *trip* mode: the
//! allocator sends that thread's allocations down its cold path, which
//! compares the thread's cumulative counters with the budget's absolute
//! thresholds (start plus limit). The first allocation that crosses one
//! records the raw return addresses of its stack into a fixed thread-local
//! array: no Rust allocation, once per check. Symbols are resolved only
//! after the closure has returned, when allocating is fine.
//!
//! The stack walk uses the platform unwinder (`backtrace`'s
//! `trace_unsynchronized`: libgcc's `_Unwind_Backtrace` on Linux), which
//! needs no frame pointers, allocates (if at all) through the C library's
//! `malloc` rather than the Rust global allocator, and may take the C
//! library's loader lock: that is why it runs only on this trip path,
//! never when counting.
//!
//! Per thread, like every budget: it works in ordinary parallel tests.
//! Nested budgets: while an inner budget runs, its limits are the ones
//! watched; an outer budget's site is the first crossing seen after that.
//!
//! [`Budget`]: crate::Budget

use std::cell::Cell;

pub mod export;
pub mod profile;

/// Return addresses kept for a trip.
const MAX_FRAMES: usize = 64;

/// Absolute thresholds of the budget armed on this thread, and what the
/// first crossing recorded.
struct Trip {
    /// Trips when `allocs + reallocs` exceeds this.
    max_allocs_total: Cell<u64>,
    /// Trips when `bytes_allocated` exceeds this.
    max_bytes: Cell<u64>,
    /// Trips when the high-water mark of live bytes exceeds this.
    max_high_water: Cell<i64>,
    frames: [Cell<usize>; MAX_FRAMES],
    len: Cell<usize>,
    /// Set once the first crossing has been recorded (or is being).
    tripped: Cell<bool>,
}

thread_local! {
    // Const-initialised, no destructor: usable from the allocator.
    static TRIP: Trip = const {
        Trip {
            max_allocs_total: Cell::new(u64::MAX),
            max_bytes: Cell::new(u64::MAX),
            max_high_water: Cell::new(i64::MAX),
            frames: [const { Cell::new(0) }; MAX_FRAMES],
            len: Cell::new(0),
            tripped: Cell::new(false),
        }
    };
}

/// A budget's absolute thresholds, in the thread's cumulative counters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Thresholds {
    pub allocs_total: u64,
    pub bytes: u64,
    pub high_water: i64,
}

/// What an enclosing budget had armed, restored by [`disarm`].
#[derive(Debug)]
pub(crate) struct Saved {
    thresholds: Thresholds,
    tripped: bool,
}

/// Arms trip detection on this thread (the caller sets the mode bit).
pub(crate) fn arm(t: Thresholds) -> Saved {
    TRIP.with(|trip| {
        let saved = Saved {
            thresholds: Thresholds {
                allocs_total: trip.max_allocs_total.get(),
                bytes: trip.max_bytes.get(),
                high_water: trip.max_high_water.get(),
            },
            tripped: trip.tripped.get(),
        };
        trip.max_allocs_total.set(t.allocs_total);
        trip.max_bytes.set(t.bytes);
        trip.max_high_water.set(t.high_water);
        trip.tripped.set(false);
        trip.len.set(0);
        saved
    })
}

/// Writes the current stack's return addresses, innermost first, into
/// `buf`; returns how many. No allocation through the Rust global allocator:
/// callable from the allocator's cold paths (budget trips, samples).
pub(crate) fn capture(buf: &mut [usize]) -> usize {
    let mut n = 0;
    if buf.is_empty() {
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

/// Return addresses recorded at a trip, in a fixed array: handed out while
/// the budget's scope is still open, where a `Vec` would count.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Recorded {
    frames: [usize; MAX_FRAMES],
    len: usize,
}

impl Recorded {
    pub(crate) fn frames(&self) -> &[usize] {
        &self.frames[..self.len]
    }
}

/// Disarms, returning the recorded return addresses (none if nothing
/// tripped), and restores the enclosing budget's thresholds.
pub(crate) fn disarm(saved: Saved) -> Recorded {
    TRIP.with(|trip| {
        let mut frames = Recorded { frames: [0; MAX_FRAMES], len: 0 };
        if trip.tripped.get() {
            frames.len = trip.len.get();
            for (dst, src) in frames.frames.iter_mut().zip(&trip.frames[..frames.len]) {
                *dst = src.get();
            }
        }
        trip.max_allocs_total.set(saved.thresholds.allocs_total);
        trip.max_bytes.set(saved.thresholds.bytes);
        trip.max_high_water.set(saved.thresholds.high_water);
        trip.tripped.set(saved.tripped);
        frames
    })
}

/// Called from the allocator's cold path, after counting, while trip mode
/// is on: records the stack at the first crossing. Never allocates through
/// the Rust global allocator.
#[inline(never)]
pub(crate) fn check(allocs_total: u64, bytes_allocated: u64, high_water: i64) {
    TRIP.with(|trip| {
        if trip.tripped.get() {
            return;
        }
        if allocs_total <= trip.max_allocs_total.get()
            && bytes_allocated <= trip.max_bytes.get()
            && high_water <= trip.max_high_water.get()
        {
            return;
        }
        // Set first: if the unwinder allocated through us, the nested call
        // returns above instead of walking again.
        trip.tripped.set(true);
        let mut frames = [0usize; MAX_FRAMES];
        let n = capture(&mut frames);
        for (cell, &ip) in trip.frames.iter().zip(&frames[..n]) {
            cell.set(ip);
        }
        trip.len.set(n);
    })
}

/// Whether a frame belongs to the allocation machinery (the standard
/// library, this crate, the unwinder, the global allocator shim) rather
/// than to the code under test: by symbol name, or by source file. (The
/// shim `__rust_alloc` is attributed to the user's `#[global_allocator]`
/// line, so the name decides there.)
pub(crate) fn is_machinery(name: &str, file: Option<&std::path::Path>) -> bool {
    if MACHINERY.iter().any(|prefix| name.starts_with(prefix)) || C_RUNTIME.contains(&name) {
        return true;
    }
    file.is_some_and(|file| {
        let own = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");
        file.starts_with("/rustc/")
            || file.starts_with(own)
            || file.components().any(|c| {
                let c = c.as_os_str().to_string_lossy();
                c.starts_with("backtrace-0.") || c.starts_with("tikv-jemallocator-") || c.starts_with("allocscope-")
            })
    })
}

/// The C runtime's frames at the bottom of every stack.
const C_RUNTIME: &[&str] =
    &["_start", "__libc_start_main_impl", "__libc_start_call_main", "start_thread", "clone3", "__clone3", "__clone"];

/// Symbol name prefixes of the machinery.
const MACHINERY: &[&str] = &[
    "backtrace::",
    "allocscope::",
    "<allocscope::",
    "__rust",
    "__rustc::",
    "__rg_",
    "__rdl_",
    "alloc::",
    "<alloc::",
    "core::",
    "<core::",
    "std::",
    "<std::",
    "tikv_jemallocator::",
    "<tikv_jemallocator::",
];

/// Resolves recorded return addresses into lines `  at NAME (FILE:LINE)`,
/// innermost first, keeping the frames of the code under test (not the
/// standard library's or the allocator's), at most `max` of them.
pub(crate) fn describe(frames: &[usize], max: usize) -> String {
    let lines: Vec<String> = export::resolve_user_frames(frames)
        .into_iter()
        .take(max)
        .map(|f| {
            if f.file.is_empty() || f.line == 0 {
                format!("  at {}", f.name)
            } else {
                format!("  at {} ({}:{})", f.name, f.file, f.line)
            }
        })
        .collect();
    lines.join("\n")
}

//! Call stacks: capture return addresses (inside the allocator), resolve
//! them into frames (outside it), and keep the frames of the code under
//! test. A leaf: it uses nothing else of the crate.
//!
//! The walk uses the platform unwinder (`backtrace`'s
//! `trace_unsynchronized`: libgcc's `_Unwind_Backtrace` on Linux), which
//! needs no frame pointers, allocates (if at all) through the C library's
//! `malloc` rather than the Rust global allocator, and may take the C
//! library's loader lock on old C libraries: that is why it runs only when
//! a budget trips or a sample is taken, never when counting.

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

/// One resolved frame of the code under test; see
/// [`Site::user_frames`](crate::Site::user_frames).
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

/// Resolves return addresses, innermost first, keeping the frames of the
/// code under test (an address that inlines several functions gives
/// several frames).
pub(crate) fn user_frames(addresses: &[usize]) -> Vec<Frame> {
    let mut frames = Vec::new();
    for &ip in addresses {
        backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
            let name = symbol.name().map(|n| format!("{n:#}")).unwrap_or_else(|| format!("{ip:#x}"));
            if is_machinery(&name, symbol.filename()) {
                return;
            }
            frames.push(Frame {
                address: ip,
                name,
                file: symbol.filename().map(|f| f.display().to_string()).unwrap_or_default(),
                line: symbol.lineno().unwrap_or(0),
            });
        });
    }
    frames
}

/// Whether a frame belongs to the allocation machinery (the standard
/// library, this crate, the unwinder, the global allocator shim) rather
/// than to the code under test: by symbol name, or by source file. (The
/// shim `__rust_alloc` is attributed to the user's `#[global_allocator]`
/// line, so the name decides there.)
fn is_machinery(name: &str, file: Option<&std::path::Path>) -> bool {
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
/// innermost first, keeping the frames of the code under test, at most
/// `max` of them.
pub(crate) fn describe(frames: &[usize], max: usize) -> String {
    let lines: Vec<String> = user_frames(frames)
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

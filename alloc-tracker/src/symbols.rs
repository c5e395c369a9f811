//! Resolving captured stacks into frames, as the library's own work: the
//! memory the symbolizer uses is in no figure of the program's.
//!
//! Resolution (`backtrace`'s gimli and addr2line) parses the program's
//! debug info, tens of megabytes for a service, and keeps what it parsed.
//! Left to itself that would sit in the very heap profile it names and in
//! the held bytes a service reports, forever after the first profile. So:
//!
//! - every resolution runs with the thread's events counted as the
//!   library's (`counters::as_library`: in no thread, scope, group, op,
//!   budget or profile of the program's, and reported apart as
//!   `allocscope_library_*`), and with the thread's sampling paused;
//! - the frames of each address resolved are kept in a cache of at most
//!   [`MAX_CACHED_ADDRESSES`] addresses (emptied when a resolution would
//!   pass that, unless one request needs more), so that a second profile
//!   of the same stacks parses nothing;
//! - after each resolution the parsed debug info is freed (on Linux the
//!   library reads the program's objects itself, [`objects`], sharing no
//!   lock or cache with the application's `backtrace`; elsewhere
//!   `backtrace::clear_symbol_cache`): between profiles the symbolizer
//!   holds only the cache;
//! - what a caller gets back (frames, a profile's bytes) is copied out of
//!   the library's memory by the caller ([`produce`]), so that every block
//!   is freed in the mode it was allocated in.
//!
//! Everything here runs under the resolution lock of [`crate::stack`],
//! which a `fork` waits for; on Linux no other lock is taken, so a child
//! forked while an application thread held `backtrace`'s lock still
//! resolves.

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::counters::{self, sample};
use crate::stack::{self, Frame, Origin, ResolutionLock};

#[cfg(target_os = "linux")]
mod objects;

/// One executable segment of a loaded object (the program, a shared
/// library), for pprof's `Mapping`: where it is mapped, from which offset
/// of which file, and the file's GNU build id (empty when it has none).
#[cfg(feature = "pprof")]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // made on Linux only
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mapping {
    pub(crate) start: u64,
    pub(crate) limit: u64,
    pub(crate) offset: u64,
    pub(crate) file: String,
    pub(crate) build_id: String,
}

/// The process's executable mappings now (none where the platform's
/// loader is not read: outside Linux). No symbol is resolved, no debug
/// info read.
#[cfg(feature = "pprof")]
pub(crate) fn mappings() -> Vec<Mapping> {
    #[cfg(target_os = "linux")]
    return objects::mappings();
    #[cfg(not(target_os = "linux"))]
    Vec::new()
}

/// The most addresses whose frames are kept between resolutions.
pub(crate) const MAX_CACHED_ADDRESSES: usize = 1 << 14;

/// One resolved frame, as the cache keeps it.
struct Resolved {
    /// With its module path ([`stack::with_module_path`]).
    name: Box<str>,
    file: Box<str>,
    line: u32,
    origin: Origin,
}

/// Each address's frames (several for inlined functions), innermost first.
type Table = HashMap<usize, Box<[Resolved]>>;

/// The cache: touched only under the resolution lock, and only in the
/// library's mode (its blocks are the library's).
struct Cache(UnsafeCell<Option<Table>>);

// SAFETY: the cell is read and written only while the resolution lock is
// held ([`with_table`]), so by one thread at a time.
unsafe impl Sync for Cache {}

static CACHE: Cache = Cache(UnsafeCell::new(None));

/// Addresses resolved (cache misses) and resolutions run (parses of the
/// debug info) since the process started, and addresses cached now.
static RESOLVED: AtomicU64 = AtomicU64::new(0);
static RESOLUTIONS: AtomicU64 = AtomicU64::new(0);
static CACHED: AtomicU64 = AtomicU64::new(0);

/// What the symbolizer did since the process started: addresses resolved,
/// resolutions (each a parse of the debug info, for a batch of addresses),
/// and addresses whose frames are cached now. No lock: a metrics scrape
/// never waits for a profile being written.
pub(crate) fn stats() -> (u64, u64, u64) {
    (RESOLVED.load(Ordering::Relaxed), RESOLUTIONS.load(Ordering::Relaxed), CACHED.load(Ordering::Relaxed))
}

/// Runs `f` with every address of `stacks` in the table, resolving those
/// missing in one batch as the library's own work.
fn with_table<R>(stacks: &[&[usize]], f: impl FnOnce(&Table) -> R) -> R {
    let _lock = ResolutionLock::take();
    sample::paused(|| {
        // SAFETY: the resolution lock is held until `_lock` drops, after
        // the last use of `cache`.
        let cache = unsafe { &mut *CACHE.0.get() };
        crate::jemalloc::library_work(|| fill(cache, stacks));
        f(cache.as_ref().expect("filled above"))
    })
}

/// Resolves the addresses of `stacks` that `cache` lacks, then frees the
/// parsed debug info. In the library's mode, under the resolution lock.
fn fill(cache: &mut Option<Table>, stacks: &[&[usize]]) {
    let table = cache.get_or_insert_with(HashMap::new);
    let mut missing: Vec<usize> =
        stacks.iter().flat_map(|s| s.iter().copied()).filter(|ip| !table.contains_key(ip)).collect();
    if missing.is_empty() {
        return;
    }
    missing.sort_unstable();
    missing.dedup();
    if table.len() + missing.len() > MAX_CACHED_ADDRESSES {
        *table = HashMap::new();
    }
    let mut reader = Reader::new();
    for &ip in &missing {
        table.insert(ip, reader.resolve(ip));
    }
    drop(reader);
    RESOLVED.fetch_add(missing.len() as u64, Ordering::Relaxed);
    RESOLUTIONS.fetch_add(1, Ordering::Relaxed);
    CACHED.store(table.len() as u64, Ordering::Relaxed);
}

/// Resolves addresses for one batch, and frees what it parsed when dropped.
/// On Linux the library's own reader ([`objects`]): no lock or cache
/// shared with the application's `backtrace`, so a forked child never
/// waits for a lock an application thread held. Elsewhere `backtrace`'s
/// resolver, whose parsed debug info is dropped after each batch.
struct Reader {
    #[cfg(target_os = "linux")]
    objects: objects::Objects,
}

impl Reader {
    fn new() -> Reader {
        Reader {
            #[cfg(target_os = "linux")]
            objects: objects::Objects::new(),
        }
    }

    #[cfg(target_os = "linux")]
    fn resolve(&mut self, ip: usize) -> Box<[Resolved]> {
        let mut frames = Vec::new();
        self.objects.resolve(ip, |frame| {
            let raw = frame.name.unwrap_or_else(|| format!("{ip:#x}"));
            let file = frame.file.map(std::path::Path::new);
            frames.push(resolved(&raw, file, frame.line));
        });
        frames.into()
    }

    #[cfg(not(target_os = "linux"))]
    fn resolve(&mut self, ip: usize) -> Box<[Resolved]> {
        let mut frames = Vec::new();
        backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
            let raw = symbol.name().map(|n| format!("{n:#}")).unwrap_or_else(|| format!("{ip:#x}"));
            frames.push(resolved(&raw, symbol.filename(), symbol.lineno()));
        });
        frames.into()
    }
}

#[cfg(not(target_os = "linux"))]
impl Drop for Reader {
    fn drop(&mut self) {
        backtrace::clear_symbol_cache();
    }
}

fn resolved(raw: &str, file: Option<&std::path::Path>, line: Option<u32>) -> Resolved {
    Resolved {
        name: stack::with_module_path(raw, file).into(),
        file: file.map(|f| f.display().to_string()).unwrap_or_default().into(),
        line: line.unwrap_or(0),
        origin: stack::origin(raw, file),
    }
}

/// The frames of the code under test in `addresses` (innermost first); an
/// address that inlines several functions gives several frames. The
/// frames are the caller's memory.
pub(crate) fn user_frames(addresses: &[usize]) -> Vec<Frame> {
    with_table(&[addresses], |table| frames_in(table, addresses))
}

/// [`user_frames`] of each of `stacks`, resolved in one batch: one parse of
/// the debug info for all of them.
pub(crate) fn user_frames_of_each(stacks: &[&[usize]]) -> Vec<Vec<Frame>> {
    with_table(stacks, |table| stacks.iter().map(|addresses| frames_in(table, addresses)).collect())
}

fn frames_in(table: &Table, addresses: &[usize]) -> Vec<Frame> {
    let frames = addresses
        .iter()
        .flat_map(|ip| table[ip].iter().map(move |r| (r, *ip)))
        .map(|(r, ip)| {
            (Frame { address: ip, name: r.name.to_string(), file: r.file.to_string(), line: r.line }, r.origin)
        })
        .collect();
    stack::keep_user_frames(frames)
}

/// Resolves every address of `stacks` in one batch (one parse of the
/// debug info), so that the [`user_frames`] calls that follow find them.
pub(crate) fn prepare(stacks: &[&[usize]]) {
    with_table(stacks, |_| ());
}

/// Describes a captured stack as lines `  at NAME (FILE:LINE)`, innermost
/// first, at most `max` frames of the code under test; see
/// [`stack::describe_frames`].
pub(crate) fn describe(addresses: &[usize], max: usize) -> Result<String, String> {
    stack::describe_frames(user_frames(addresses), max)
}

/// The standard library's printing functions (`print!`, `println!`,
/// `eprint!`, `eprintln!`): under `cargo test`, the test harness captures
/// what they print in a buffer that grows as they write.
const PRINTING: &[&str] = &["std::io::stdio::_print", "std::io::stdio::_eprint", "std::io::stdio::print_to"];

/// Whether the captured stack passes through the standard library's
/// printing into the test harness's output capture (the frame that writes
/// into the capture buffer, or, where it was inlined away, the printing
/// function).
pub(crate) fn prints_into_capture(addresses: &[usize]) -> bool {
    with_table(&[addresses], |table| {
        addresses.iter().flat_map(|ip| table[ip].iter()).any(|r| {
            let bare = r.name.strip_prefix('<').unwrap_or(&r.name);
            bare.starts_with("std::io::stdio::print_to_buffer_if_capture_used")
                || PRINTING.iter().any(|p| bare.starts_with(p))
        })
    })
}

/// Runs `f` as the library's own work (its memory in no figure of the
/// program's, its allocations not sampled) and returns a copy of what it
/// made, allocated by the caller; the original is freed as the library's.
/// For a profile's writers: everything they resolve, build and compress
/// stays out of the program's figures but the answer itself.
pub(crate) fn produce<T: Clone>(f: impl FnOnce() -> T) -> T {
    sample::paused(|| {
        let made = crate::jemalloc::library_work(f);
        let copy = made.clone();
        counters::as_library(|| drop(made));
        copy
    })
}

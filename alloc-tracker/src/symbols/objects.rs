//! The symbolizer's own reader of the program's objects (Linux): names from
//! DWARF (inlined frames included) or, without debug info, from the ELF
//! symbol table, through `addr2line`'s loader, with no state shared with
//! any other user of `backtrace` or `addr2line` in the process.
//!
//! Why not `backtrace::resolve`: it takes the `backtrace` crate's global
//! lock and fills its global cache, both shared with the application (its
//! own `Backtrace::new()`, a panic hook, a logger). A child `fork`ed while
//! an application thread held that lock would wait for it for ever when it
//! writes a profile or names a budget's site. Everything here is made for
//! one batch of addresses ([`Objects::new`]), used by the thread that holds
//! the library's resolution lock (which a `fork` waits for), and dropped
//! after it: the objects' files are mapped, not copied, and unmapped again.

use std::ffi::CStr;
use std::os::raw::{c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// One loaded object (the executable, a shared library): where its
/// segments are, and its DWARF once a lookup needed it.
struct Object {
    path: PathBuf,
    /// What the loader added to the object's virtual addresses.
    bias: usize,
    /// Its loaded segments' address ranges (start, end), with the bias.
    segments: Vec<(usize, usize)>,
    /// `None` until first used; `Some(None)` when it cannot be read (the
    /// vDSO, a deleted file).
    loader: Option<Option<addr2line::Loader>>,
}

/// The process's loaded objects, read once per batch.
pub(crate) struct Objects(Vec<Object>);

/// One frame at an address, as [`Objects::resolve`] hands it out.
pub(crate) struct RawFrame<'a> {
    /// The symbol's name, demangled, without its hash.
    pub(crate) name: Option<String>,
    pub(crate) file: Option<&'a str>,
    pub(crate) line: Option<u32>,
}

impl Objects {
    /// The objects loaded now (`dl_iterate_phdr`).
    pub(crate) fn new() -> Objects {
        let mut objects: Vec<Object> = Vec::new();
        // SAFETY: the callback receives `&mut objects` as its data pointer,
        // for the duration of this call only.
        unsafe { libc::dl_iterate_phdr(Some(each_object), (&raw mut objects).cast::<c_void>()) };
        Objects(objects)
    }

    /// The frames at return address `ip`, innermost (inlined) first, to
    /// `f`; nothing when no object covers it.
    pub(crate) fn resolve(&mut self, ip: usize, mut f: impl FnMut(RawFrame<'_>)) {
        // A return address is the instruction after the call: look up the
        // call itself (as `backtrace` does).
        let Some(at) = ip.checked_sub(1) else { return };
        let Some(object) = self.0.iter_mut().find(|o| o.segments.iter().any(|&(s, e)| (s..e).contains(&at))) else {
            return;
        };
        let probe = (at - object.bias) as u64;
        let path = &object.path;
        let Some(loader) = object.loader.get_or_insert_with(|| addr2line::Loader::new(path).ok()) else { return };
        let mut any = false;
        if let Ok(mut frames) = loader.find_frames(probe) {
            while let Ok(Some(frame)) = frames.next() {
                let name = frame
                    .function
                    .as_ref()
                    .and_then(|n| n.raw_name().ok())
                    .map(|raw| format!("{:#}", rustc_demangle::demangle(&raw)));
                let (file, line) = frame.location.map_or((None, None), |l| (l.file, l.line));
                if name.is_some() || file.is_some() {
                    any = true;
                    f(RawFrame { name, file, line });
                }
            }
        }
        if !any {
            // No debug info here: the symbol table names the function.
            if let Some(name) = loader.find_symbol(probe) {
                f(RawFrame { name: Some(format!("{:#}", rustc_demangle::demangle(name))), file: None, line: None });
            }
        }
    }
}

/// What `dl_iterate_phdr` says of one object: its name (empty for the
/// program, and for the vDSO), the loader's bias, its program headers.
///
/// # Safety
///
/// `info` must be the C library's description of a loaded object, valid
/// while the borrow lasts (the callback's duration).
unsafe fn loaded(info: &libc::dl_phdr_info) -> (&[u8], usize, &[libc::Elf64_Phdr]) {
    let name = if info.dlpi_name.is_null() {
        &[][..]
    } else {
        // SAFETY: a NUL-terminated string of the C library's.
        unsafe { CStr::from_ptr(info.dlpi_name) }.to_bytes()
    };
    let headers = if info.dlpi_phdr.is_null() {
        &[][..]
    } else {
        // SAFETY: `dlpi_phnum` program headers at `dlpi_phdr`.
        unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
    };
    (name, info.dlpi_addr as usize, headers)
}

/// `dl_iterate_phdr`'s callback: records one object.
unsafe extern "C" fn each_object(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> c_int {
    // SAFETY: `data` is the `Vec` passed by `Objects::new`, and `info` the C
    // library's description of one object, both valid during the call.
    let (objects, info) = unsafe { (&mut *data.cast::<Vec<Object>>(), &*info) };
    // SAFETY: the C library's description of one object, during the call.
    let (name, bias, headers) = unsafe { loaded(info) };
    let path = if name.is_empty() {
        if !objects.is_empty() {
            return 0; // an unnamed object other than the program
        }
        PathBuf::from("/proc/self/exe")
    } else {
        PathBuf::from(std::ffi::OsStr::from_bytes(name))
    };
    let segments = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD)
        .map(|h| (bias.wrapping_add(h.p_vaddr as usize), bias.wrapping_add((h.p_vaddr + h.p_memsz) as usize)))
        .collect();
    objects.push(Object { path, bias, segments, loader: None });
    0
}

/// The executable segments of the loaded objects (each segment's own
/// start, end and file offset), with each object's file and GNU build id:
/// what pprof's
/// `Mapping` carries, so that a tool holding the binary symbolizes the
/// profile's addresses itself.
#[cfg(feature = "pprof")]
pub(crate) fn mappings() -> Vec<super::Mapping> {
    let mut mappings: Vec<super::Mapping> = Vec::new();
    // SAFETY: the callback receives `&mut mappings` as its data pointer,
    // for the duration of this call only.
    unsafe { libc::dl_iterate_phdr(Some(each_mapping), (&raw mut mappings).cast::<c_void>()) };
    mappings
}

/// `dl_iterate_phdr`'s callback for [`mappings`]: one object's executable
/// segments.
#[cfg(feature = "pprof")]
unsafe extern "C" fn each_mapping(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> c_int {
    // SAFETY: as in `each_object`.
    let (mappings, info) = unsafe { (&mut *data.cast::<Vec<super::Mapping>>(), &*info) };
    // SAFETY: the C library's description of one object, during the call.
    let (name, bias, headers) = unsafe { loaded(info) };
    let file = if name.is_empty() {
        if !mappings.is_empty() {
            return 0; // an unnamed object other than the program (the vDSO)
        }
        match std::env::current_exe() {
            Ok(path) => path.display().to_string(),
            Err(_) => return 0,
        }
    } else {
        String::from_utf8_lossy(name).into_owned()
    };
    let build_id = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_NOTE)
        // SAFETY: a note segment is loaded (inside a `PT_LOAD` segment of
        // the object, mapped readable for the process's life) at `bias +
        // p_vaddr`, `p_memsz` bytes long.
        .find_map(|h| unsafe { gnu_build_id(bias.wrapping_add(h.p_vaddr as usize) as *const u8, h.p_memsz as usize) })
        .unwrap_or_default();
    for h in headers.iter().filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_X != 0) {
        // The segment itself, not the pages around it: at a page-aligned
        // start and offset, the offset falls in the file's previous
        // segment, and pprof's reader (Go 1.19's) then takes that segment
        // for the base and resolves every address a page off.
        let start = bias.wrapping_add(h.p_vaddr as usize);
        mappings.push(super::Mapping {
            start: start as u64,
            limit: start.wrapping_add(h.p_memsz as usize) as u64,
            offset: h.p_offset,
            file: file.clone(),
            build_id: build_id.clone(),
        });
    }
    0
}

/// The GNU build id (`NT_GNU_BUILD_ID`) among the notes at `notes`, in
/// lower-case hexadecimal, as `readelf -n` and pprof write it.
///
/// # Safety
///
/// `notes` must point to `len` readable bytes of ELF notes.
#[cfg(feature = "pprof")]
unsafe fn gnu_build_id(notes: *const u8, len: usize) -> Option<String> {
    const NT_GNU_BUILD_ID: u32 = 3;
    // SAFETY: the caller's.
    let notes = unsafe { std::slice::from_raw_parts(notes, len) };
    let word = |at: usize| Some(u32::from_ne_bytes(notes.get(at..at + 4)?.try_into().ok()?));
    let aligned = |n: usize| n.checked_add(3).map(|n| n & !3);
    let mut at = 0;
    while at + 12 <= notes.len() {
        let (name_len, desc_len, kind) = (word(at)? as usize, word(at + 4)? as usize, word(at + 8)?);
        let name_at = at + 12;
        let desc_at = name_at.checked_add(aligned(name_len)?)?;
        let next = desc_at.checked_add(aligned(desc_len)?)?;
        if kind == NT_GNU_BUILD_ID && notes.get(name_at..name_at + name_len)? == b"GNU\0" {
            let id = notes.get(desc_at..desc_at + desc_len)?;
            return Some(id.iter().map(|b| format!("{b:02x}")).collect());
        }
        at = next;
    }
    None
}

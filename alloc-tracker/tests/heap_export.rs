//! The profile writers: pprof (decoded back here with a minimal protobuf
//! reader) and the flame graph SVG.
#![cfg(all(feature = "jemalloc", feature = "pprof", feature = "flamegraph"))]

use std::hint::black_box;

use allocscope::profile::{heap_profile, start_thread_sampling, stop_thread_sampling};
use allocscope::{CountingAlloc, Jemalloc};

#[path = "support/protobuf.rs"]
mod protobuf;
use protobuf::{bytes_of, fields, gunzip, packed, strings, varint_of};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

/// One test at a time: the addresses-only test checks that nothing was
/// resolved while it wrote, which another test resolving meanwhile would
/// blur.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[inline(never)]
fn export_outer() -> Vec<Vec<u8>> {
    (0..10).map(|_| export_inner()).collect()
}

#[inline(never)]
fn export_inner() -> Vec<u8> {
    black_box(vec![5u8; 256])
}

#[test]
fn the_pprof_file_decodes_with_gos_sample_types_and_the_sites() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    start_thread_sampling(1);
    let kept = export_outer();
    stop_thread_sampling();
    let top = fields(&gunzip(&heap_profile().pprof_gz()));
    let strings = strings(&top);
    assert_eq!(strings[0], "", "string_table[0] is empty");
    let types: Vec<(String, String)> = top
        .iter()
        .filter(|(f, _)| *f == 1)
        .map(|(_, v)| {
            let vt = fields(bytes_of(v));
            let s = |n: usize| strings[varint_of(&vt[n].1) as usize].clone();
            (s(0), s(1))
        })
        .collect();
    let expected =
        [("alloc_objects", "count"), ("alloc_space", "bytes"), ("inuse_objects", "count"), ("inuse_space", "bytes")];
    assert_eq!(types, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));

    // Function names, and a sample whose innermost location is export_inner
    // with 10 allocations of 256 bytes, all live.
    let functions: Vec<(u64, String)> = top
        .iter()
        .filter(|(f, _)| *f == 5)
        .map(|(_, v)| {
            let fs = fields(bytes_of(v));
            (varint_of(&fs[0].1), strings[varint_of(&fs[1].1) as usize].clone())
        })
        .collect();
    let inner_fn = functions.iter().find(|(_, n)| n.contains("export_inner")).expect("export_inner named").0;
    let locations: Vec<(u64, u64)> = top
        .iter()
        .filter(|(f, _)| *f == 4)
        .map(|(_, v)| {
            let ls = fields(bytes_of(v));
            let id = varint_of(&ls[0].1);
            let line = ls.iter().find(|(f, _)| *f == 4).expect("a line");
            (id, varint_of(&fields(bytes_of(&line.1))[0].1))
        })
        .collect();
    let samples: Vec<(Vec<u64>, Vec<u64>)> = top
        .iter()
        .filter(|(f, _)| *f == 2)
        .map(|(_, v)| {
            let ss = fields(bytes_of(v));
            (packed(bytes_of(&ss[0].1)), packed(bytes_of(&ss[1].1)))
        })
        .collect();
    let ours = samples
        .iter()
        .find(|(locs, _)| locations.iter().any(|&(id, f)| id == locs[0] && f == inner_fn))
        .expect("a sample at export_inner");
    assert_eq!(ours.1, vec![10, 2560, 10, 2560]);
    let period = top.iter().find(|(f, _)| *f == 12).map(|(_, v)| varint_of(v));
    assert_eq!(period, Some(1));
    drop(kept);
}

#[test]
fn the_flame_graph_is_well_formed_svg_naming_the_sites() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    start_thread_sampling(1);
    let kept = export_outer();
    stop_thread_sampling();
    let svg = heap_profile().flamegraph_svg("test").unwrap();
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"), "an SVG document");
    assert!(svg.contains("export_inner") && svg.contains("export_outer"), "names the sites");
    // Every opened element is closed: count tags roughly.
    assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
    drop(kept);
}

/// The GNU build id of the ELF file at `path`, read from the file's note
/// segments (ELF64, little-endian), in hexadecimal: independent of the
/// library's reading of its loaded notes.
#[cfg(target_os = "linux")]
fn build_id_of(path: &std::path::Path) -> String {
    let elf = std::fs::read(path).unwrap();
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    for h in (0..phnum).map(|i| phoff + i * phentsize) {
        if u32_at(h) != 4 {
            continue; // not PT_NOTE
        }
        let (mut at, end) = (u64_at(h + 8), u64_at(h + 8) + u64_at(h + 32));
        while at + 12 <= end {
            let (namesz, descsz, kind) = (u32_at(at), u32_at(at + 4), u32_at(at + 8));
            let desc = at + 12 + namesz.div_ceil(4) * 4;
            if kind == 3 && &elf[at + 12..at + 12 + namesz] == b"GNU\0" {
                return elf[desc..desc + descsz].iter().map(|b| format!("{b:02x}")).collect();
            }
            at = desc + descsz.div_ceil(4) * 4;
        }
    }
    panic!("{} has no GNU build id", path.display());
}

/// An addresses-only profile: every location an address in a mapping of
/// the program (its file and GNU build id, for a tool holding the binary
/// to resolve), no function, no line; and nothing was resolved to write it.
#[cfg(target_os = "linux")]
#[test]
fn an_addresses_only_profile_carries_the_programs_mapping_and_resolves_nothing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    start_thread_sampling(1);
    let kept = export_outer();
    stop_thread_sampling();
    let profile = heap_profile();
    let resolved_before = allocscope::serve::snapshot().sampler.resolved_addresses;
    let gz = profile.pprof_gz_addresses_only(allocscope::profile::SampleType::InuseSpace);
    let top = fields(&gunzip(&gz));
    let strings = strings(&top);
    assert!(top.iter().all(|(f, _)| *f != 5), "no function");
    assert!(!strings.iter().any(|s| s.contains("export_inner")), "no name resolved");

    let exe = std::env::current_exe().unwrap();
    let build_id = build_id_of(&exe);
    let mappings: Vec<(u64, u64, u64, String, String)> = top
        .iter()
        .filter(|(f, _)| *f == 3)
        .map(|(_, v)| {
            let ms = fields(bytes_of(v));
            let n = |field: u64| ms.iter().find(|(f, _)| *f == field).map_or(0, |(_, v)| varint_of(v));
            (n(1), n(2), n(3), strings[n(5) as usize].clone(), strings[n(6) as usize].clone())
        })
        .collect();
    let program = mappings
        .iter()
        .find(|m| std::path::Path::new(&m.3) == exe)
        .unwrap_or_else(|| panic!("a mapping of {}: {mappings:?}", exe.display()));
    assert_eq!(program.4, build_id, "the program's GNU build id");
    assert!(program.1 < program.2, "{program:?}");

    // Every location: an address, in a mapping, with no line.
    let mut in_program = 0;
    for (_, v) in top.iter().filter(|(f, _)| *f == 4) {
        let ls = fields(bytes_of(v));
        assert!(ls.iter().all(|(f, _)| *f != 4), "no line in an addresses-only location");
        let field = |f: u64| ls.iter().find(|(g, _)| *g == f).map_or(0, |(_, v)| varint_of(v));
        let (mapping, address) = (field(2), field(3));
        if mapping == program.0 {
            assert!((program.1..program.2).contains(&address));
            in_program += 1;
        }
    }
    assert!(in_program > 0, "the program's own frames are in its mapping");
    // Writing it resolved no address (the other tests wait for this one).
    assert_eq!(allocscope::serve::snapshot().sampler.resolved_addresses, resolved_before, "resolved while writing");
    drop(kept);
}

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

//! The profile writers: pprof (decoded back here with a minimal protobuf
//! reader) and the flame graph SVG.
#![cfg(all(feature = "jemalloc", feature = "pprof", feature = "flamegraph"))]

use std::hint::black_box;
use std::io::Read;

use allocscope::{heap_profile, start_sampling, stop_sampling, CountingAlloc, Jemalloc};

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

/// Top-level fields of a protobuf message: (field, wire type, payload).
/// Varints come back as their value; length-delimited fields as bytes.
#[derive(Debug)]
enum Value {
    Varint(u64),
    Bytes(Vec<u8>),
}

fn read_varint(b: &[u8], i: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let byte = b[*i];
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return v;
        }
        shift += 7;
    }
}

fn fields(b: &[u8]) -> Vec<(u64, Value)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let key = read_varint(b, &mut i);
        let value = match key & 7 {
            0 => Value::Varint(read_varint(b, &mut i)),
            2 => {
                let len = read_varint(b, &mut i) as usize;
                let v = b[i..i + len].to_vec();
                i += len;
                Value::Bytes(v)
            }
            w => panic!("unexpected wire type {w}"),
        };
        out.push((key >> 3, value));
    }
    out
}

fn bytes_of(v: &Value) -> &[u8] {
    match v {
        Value::Bytes(b) => b,
        Value::Varint(_) => panic!("expected bytes"),
    }
}

fn varint_of(v: &Value) -> u64 {
    match v {
        Value::Varint(x) => *x,
        Value::Bytes(_) => panic!("expected a varint"),
    }
}

fn packed(b: &[u8]) -> Vec<u64> {
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        out.push(read_varint(b, &mut i));
    }
    out
}

#[test]
fn the_pprof_file_decodes_with_gos_sample_types_and_the_sites() {
    start_sampling(1);
    let kept = export_outer();
    stop_sampling();
    let gz = heap_profile().pprof_gz();
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut raw).expect("valid gzip");
    let top = fields(&raw);
    let strings: Vec<String> =
        top.iter().filter(|(f, _)| *f == 6).map(|(_, v)| String::from_utf8(bytes_of(v).to_vec()).unwrap()).collect();
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
    start_sampling(1);
    let kept = export_outer();
    stop_sampling();
    let svg = heap_profile().flamegraph_svg("test").unwrap();
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"), "an SVG document");
    assert!(svg.contains("export_inner") && svg.contains("export_outer"), "names the sites");
    // Every opened element is closed: count tags roughly.
    assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
    drop(kept);
}

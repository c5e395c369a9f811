//! A minimal protobuf reader for the pprof tests: enough of the wire
//! format (varints and length-delimited fields) to decode a profile.
#![allow(dead_code)] // each test binary uses part of it

use std::io::Read;

/// Top-level fields of a protobuf message: (field, wire type, payload).
/// Varints come back as their value; length-delimited fields as bytes.
#[derive(Debug)]
pub enum Value {
    Varint(u64),
    Bytes(Vec<u8>),
}

pub fn read_varint(b: &[u8], i: &mut usize) -> u64 {
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

pub fn fields(b: &[u8]) -> Vec<(u64, Value)> {
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

pub fn bytes_of(v: &Value) -> &[u8] {
    match v {
        Value::Bytes(b) => b,
        Value::Varint(_) => panic!("expected bytes"),
    }
}

pub fn varint_of(v: &Value) -> u64 {
    match v {
        Value::Varint(x) => *x,
        Value::Bytes(_) => panic!("expected a varint"),
    }
}

pub fn packed(b: &[u8]) -> Vec<u64> {
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        out.push(read_varint(b, &mut i));
    }
    out
}

/// The gunzipped bytes of a `.pb.gz`.
pub fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut raw).expect("valid gzip");
    raw
}

/// A profile's string table (field 6), in order.
pub fn strings(top: &[(u64, Value)]) -> Vec<String> {
    top.iter().filter(|(f, _)| *f == 6).map(|(_, v)| String::from_utf8(bytes_of(v).to_vec()).unwrap()).collect()
}

/// Each sample of a profile: the names of its functions (innermost first)
/// and its values, as pprof's int64s.
pub fn samples(top: &[(u64, Value)]) -> Vec<(Vec<String>, Vec<i64>)> {
    let strings = strings(top);
    let of = |field: u64| top.iter().filter(move |(f, _)| *f == field).map(|(_, v)| fields(bytes_of(v)));
    let functions: std::collections::HashMap<u64, String> = of(5)
        .map(|f| {
            let id = f.iter().find(|(n, _)| *n == 1).map(|(_, v)| varint_of(v)).unwrap();
            let name = f.iter().find(|(n, _)| *n == 2).map(|(_, v)| varint_of(v)).unwrap();
            (id, strings[name as usize].clone())
        })
        .collect();
    let locations: std::collections::HashMap<u64, Vec<String>> = of(4)
        .map(|l| {
            let id = l.iter().find(|(n, _)| *n == 1).map(|(_, v)| varint_of(v)).unwrap();
            let names = l
                .iter()
                .filter(|(n, _)| *n == 4)
                .map(|(_, line)| {
                    let line = fields(bytes_of(line));
                    functions[&line.iter().find(|(n, _)| *n == 1).map(|(_, v)| varint_of(v)).unwrap()].clone()
                })
                .collect();
            (id, names)
        })
        .collect();
    of(2)
        .map(|s| {
            let ids = s.iter().find(|(n, _)| *n == 1).map(|(_, v)| packed(bytes_of(v))).unwrap_or_default();
            let values = s.iter().find(|(n, _)| *n == 2).map(|(_, v)| packed(bytes_of(v))).unwrap_or_default();
            (ids.iter().flat_map(|id| locations[id].clone()).collect(), values.iter().map(|&v| v as i64).collect())
        })
        .collect()
}

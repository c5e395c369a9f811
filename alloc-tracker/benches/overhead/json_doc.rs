//! A deterministic JSON document of about `bytes` bytes, shaped like an API
//! response: an array of records with strings, numbers, a nested array and
//! an object each. Shared by the heap-profiling programs and tests.

#[allow(dead_code)]
pub fn document(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 1024);
    out.push('[');
    let mut i: u64 = 0;
    while out.len() < bytes {
        if i > 0 {
            out.push(',');
        }
        let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        out.push_str(&format!(
            "{{\"id\":{i},\"name\":\"item-{x:06x}\",\"price\":{}.{:02},\"tags\":[\"t{}\",\"t{}\",\"t{}\"],\
             \"owner\":{{\"login\":\"user{}\",\"active\":{}}},\"note\":\"{}\"}}",
            x % 1000,
            x % 100,
            x % 7,
            x % 11,
            x % 13,
            x % 5000,
            x.is_multiple_of(2),
            "lorem ipsum ".repeat((x % 4) as usize)
        ));
        i += 1;
    }
    out.push(']');
    out
}

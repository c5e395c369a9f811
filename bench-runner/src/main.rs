//! bench-runner (issue 4).
#![forbid(unsafe_code)]

fn main() {}

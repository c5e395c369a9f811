//! Overhead program, a reference point: 4 bare thread-local counters over
//! jemalloc, allocations, bytes, frees and bytes freed, and nothing else. See `tls_counters.rs` and `common.rs`.

#[path = "common.rs"]
mod common;
#[path = "tls_counters.rs"]
mod tls_counters;

#[global_allocator]
static GLOBAL: tls_counters::TlsCounters<true> = tls_counters::TlsCounters;

fn main() {
    common::run(&[]);
}

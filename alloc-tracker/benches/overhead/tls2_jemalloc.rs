//! Overhead program, a reference point: 2 bare thread-local counters over
//! jemalloc, allocations and bytes (frees not counted), and nothing else. See `tls_counters.rs` and `common.rs`.

#[path = "common.rs"]
mod common;
#[path = "tls_counters.rs"]
mod tls_counters;

#[global_allocator]
static GLOBAL: tls_counters::TlsCounters<false> = tls_counters::TlsCounters;

/// The flags of this program and the wrappers they select.
const WRAPPERS: &[(&str, common::Wrapper)] = &[];

common::instruction_counts!(plain_n = ("", 1), plain_2n = ("", 2),);

fn main() {
    common::run(WRAPPERS, ir::run);
}

//! Overhead program: `divan::AllocProfiler<tikv_jemallocator::Jemalloc>` as the global allocator. See `common.rs`.

#[path = "common.rs"]
mod common;

#[global_allocator]
static GLOBAL: divan::AllocProfiler<tikv_jemallocator::Jemalloc> =
    divan::AllocProfiler::new(tikv_jemallocator::Jemalloc);

fn main() {
    common::run(&[]);
}

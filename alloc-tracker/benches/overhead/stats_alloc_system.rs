//! Overhead program: `stats_alloc::StatsAlloc<std::alloc::System>` as the global allocator. See `common.rs`.

#[path = "common.rs"]
mod common;

#[global_allocator]
static GLOBAL: stats_alloc::StatsAlloc<std::alloc::System> = stats_alloc::StatsAlloc::system();

fn main() {
    common::run(&[]);
}

//! Overhead program: `stats_alloc::StatsAlloc<std::alloc::System>` as the global allocator. See `common.rs`.

#[path = "common.rs"]
mod common;

#[global_allocator]
static GLOBAL: stats_alloc::StatsAlloc<std::alloc::System> = stats_alloc::StatsAlloc::system();

/// The flags of this program and the wrappers they select.
const WRAPPERS: &[(&str, common::Wrapper)] = &[];

common::instruction_counts!(plain_n = ("", 1), plain_2n = ("", 2),);

fn main() {
    common::run(WRAPPERS, ir::run);
}

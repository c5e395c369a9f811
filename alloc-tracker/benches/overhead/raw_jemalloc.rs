//! Overhead program: `tikv_jemallocator::Jemalloc` as the global allocator. See `common.rs`.

#[path = "common.rs"]
mod common;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The flags of this program and the wrappers they select.
const WRAPPERS: &[(&str, common::Wrapper)] = &[];

common::instruction_counts!(plain_n = ("", 1), plain_2n = ("", 2),);

fn main() {
    common::run(WRAPPERS, ir::run);
}

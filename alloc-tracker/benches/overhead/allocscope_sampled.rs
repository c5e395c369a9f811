//! Overhead program: `allocscope::CountingAlloc<Jemalloc>` with the heap
//! profiler sampling each worker thread (`--scoped`). See `common.rs`.

#[path = "common.rs"]
mod common;

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> = allocscope::CountingAlloc::new(allocscope::Jemalloc);

/// The flags of this program and the wrappers they select.
const WRAPPERS: &[(&str, common::Wrapper)] =
    &[("--scoped", common::allocscope_sampled), ("--exact", common::allocscope_exact)];

common::instruction_counts!(
    scoped_n = ("--scoped", 1),
    scoped_2n = ("--scoped", 2),
    exact_n = ("--exact", 1),
    exact_2n = ("--exact", 2),
);

fn main() {
    common::run(WRAPPERS, ir::run);
}

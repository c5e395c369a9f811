//! Overhead program: `allocscope::CountingAlloc<allocscope::Jemalloc>` as the global allocator. See `common.rs`.

#[path = "common.rs"]
mod common;

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> = allocscope::CountingAlloc::new(allocscope::Jemalloc);

fn main() {
    common::run(&[("--scoped", common::allocscope_scope), ("--grouped", common::allocscope_group)]);
}

//! Overhead program: `allocscope::CountingAlloc<std::alloc::System>` as the global allocator. See `common.rs`.

#[path = "common.rs"]
mod common;

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<std::alloc::System> = allocscope::CountingAlloc::new(std::alloc::System);

fn main() {
    common::run(&[("--scoped", common::allocscope_scope), ("--grouped", common::allocscope_group)]);
}

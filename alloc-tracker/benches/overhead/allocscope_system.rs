//! Overhead program: `allocscope::CountingAlloc<std::alloc::System>` as the global allocator. See `common.rs`.

#[path = "common.rs"]
mod common;

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<std::alloc::System> = allocscope::CountingAlloc::new(std::alloc::System);

/// The flags of this program and the wrappers they select.
const WRAPPERS: &[(&str, common::Wrapper)] =
    &[("--scoped", common::allocscope_scope), ("--grouped", common::allocscope_group)];

common::instruction_counts!(
    plain_n = ("", 1),
    plain_2n = ("", 2),
    scoped_n = ("--scoped", 1),
    scoped_2n = ("--scoped", 2),
    grouped_n = ("--grouped", 1),
    grouped_2n = ("--grouped", 2),
);

fn main() {
    common::run(WRAPPERS, ir::run);
}

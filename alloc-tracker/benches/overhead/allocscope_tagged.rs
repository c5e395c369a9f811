//! Overhead program: `allocscope::CountingAlloc<allocscope::Jemalloc>` with owner tags as the global allocator: every block one word longer, its owner in the trailer. See `common.rs`.

#[path = "common.rs"]
mod common;

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> =
    allocscope::CountingAlloc::new(allocscope::Jemalloc).with_owner_tags();

/// The flags of this program and the wrappers they select.
const WRAPPERS: &[(&str, common::Wrapper)] = &[
    ("--scoped", common::allocscope_scope),
    ("--grouped", common::allocscope_group),
    ("--every-thread", common::allocscope_every_thread),
];

common::instruction_counts!(
    plain_n = ("", 1),
    plain_2n = ("", 2),
    scoped_n = ("--scoped", 1),
    scoped_2n = ("--scoped", 2),
    grouped_n = ("--grouped", 1),
    grouped_2n = ("--grouped", 2),
    every_thread_n = ("--every-thread", 1),
    every_thread_2n = ("--every-thread", 2),
);

fn main() {
    common::run(WRAPPERS, ir::run);
}

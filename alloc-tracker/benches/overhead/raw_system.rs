//! Overhead program: `std::alloc::System` as the global allocator. See `common.rs`.

#[path = "common.rs"]
mod common;

#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

fn main() {
    common::run(&[]);
}

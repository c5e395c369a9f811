//! Overhead program: `allocscope::CountingAlloc<Jemalloc>` with the heap
//! profiler sampling each worker thread (`--scoped`). See `common.rs`.

#[path = "common.rs"]
mod common;

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> = allocscope::CountingAlloc::new(allocscope::Jemalloc);

fn main() {
    common::run(&[("--scoped", common::allocscope_sampled)]);
}

//! Overhead program: `allocscope::CountingAlloc<allocscope::Jemalloc>` as the global allocator. See `common.rs`.

#[path = "common.rs"]
mod common;

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> = allocscope::CountingAlloc::new(allocscope::Jemalloc);

/// The loop inside a `measure` scope (peak tracking on) and an `op` guard.
fn scoped(body: &dyn Fn()) {
    let _op = allocscope::op("overhead");
    let ((), stats) = allocscope::measure(body);
    eprintln!("{stats}");
}

fn main() {
    common::run(Some(scoped));
}

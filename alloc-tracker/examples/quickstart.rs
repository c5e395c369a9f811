//! The README example: `cargo run --release -p allocscope --example quickstart`.

use allocscope::{assert_no_alloc, assert_no_leaks, Budget, CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

fn main() {
    // What a closure allocates on this thread; other threads never leak in.
    let (_, stats) = allocscope::measure(|| format!("order-{}", 42));
    println!("{stats}");

    // Per-operation figures for reports: B/op and allocs/op.
    for i in 0..1000 {
        let _op = allocscope::op("enqueue");
        std::hint::black_box(vec![i; 4]);
    }
    print!("{}", allocscope::op_table());

    // Budgets, for tests: fail with every exceeded limit, the budget's
    // location, and the stack of the first allocation over the limit.
    Budget::new().max_allocs(1).max_bytes_allocated(64).assert(|| vec![0u8; 64]);
    let mut buf = Vec::with_capacity(16);
    assert_no_alloc(|| buf.push(1u8));
    // Leaks: a warm-up run, then a measured one that must keep nothing.
    let mut seen = std::collections::HashSet::new();
    assert_no_leaks(|| seen.insert("order-42".to_owned()));
}

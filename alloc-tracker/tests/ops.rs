//! Named operations: calls, per-call figures, attribution across threads and
//! nesting (each allocation goes to the innermost operation only).
#![cfg(feature = "jemalloc")]

use std::hint::black_box;

use allocscope::{measure, op, op_stats, CountingAlloc, Jemalloc, OpStats};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

fn row(name: &str) -> OpStats {
    op_stats().into_iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no row {name}"))
}

#[test]
fn each_guard_is_one_call_and_its_allocations_go_to_its_row() {
    for i in 0..10u64 {
        let _op = op("ops.single");
        drop(black_box(Box::new([i; 4])));
    }
    let r = row("ops.single");
    assert_eq!(r.calls, 10);
    assert_eq!((r.stats.allocs, r.stats.deallocs, r.stats.bytes_allocated), (10, 10, 320));
    assert_eq!(r.per_call().bytes_allocated, 32.0);
    assert_eq!(r.stats.peak_bytes, 32);
}

#[test]
fn rows_sum_over_threads() {
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..250 {
                    let _op = op("ops.threads");
                    drop(black_box(vec![0u8; 16]));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let r = row("ops.threads");
    assert_eq!((r.calls, r.stats.allocs, r.stats.bytes_allocated), (1_000, 1_000, 16_000));
}

#[test]
fn nesting_attributes_each_allocation_to_the_innermost_operation() {
    let ((), scope) = measure(|| {
        for _ in 0..3 {
            let _outer = op("ops.outer");
            drop(black_box(vec![0u8; 100])); // outer's own
            {
                let _inner = op("ops.inner");
                drop(black_box(vec![0u8; 1000])); // inner's
                let _innermost = op("ops.innermost");
                drop(black_box(vec![0u8; 7]));
            }
            drop(black_box(vec![0u8; 10])); // outer's own again
        }
    });
    let (outer, inner, innermost) = (row("ops.outer"), row("ops.inner"), row("ops.innermost"));
    assert_eq!((outer.calls, inner.calls, innermost.calls), (3, 3, 3));
    assert_eq!((outer.stats.allocs, outer.stats.bytes_allocated), (6, 330));
    assert_eq!((inner.stats.allocs, inner.stats.bytes_allocated), (3, 3_000));
    assert_eq!((innermost.stats.allocs, innermost.stats.bytes_allocated), (3, 21));
    // Nothing counted twice: the rows add up to what the thread did.
    let sum = outer.stats + inner.stats + innermost.stats;
    assert_eq!((sum.allocs, sum.bytes_allocated), (scope.allocs, scope.bytes_allocated));
    // A row's peak is one call's peak, nested operations included.
    assert_eq!(outer.stats.peak_bytes, 1_000);
}

#[test]
fn starting_and_ending_an_operation_allocates_nothing_after_first_use() {
    drop(op("ops.free_of_charge"));
    let ((), s) = measure(|| drop(op("ops.free_of_charge")));
    assert!(s.is_empty(), "{s}");
}

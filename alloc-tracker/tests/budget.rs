//! Budgets: pass and fail cases, the exact message, and the zero budget.
#![cfg(feature = "jemalloc")]

use std::hint::black_box;

use allocscope::{assert_no_alloc, Budget, CountingAlloc, Jemalloc, Limit};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

/// Three allocations, 248 bytes: two 100-byte buffers and the outer `Vec`'s
/// 2 x 24 bytes; all three live at once, so the peak is 248 too.
fn three_allocs_of_248_bytes() -> Vec<Vec<u8>> {
    vec![black_box(vec![0u8; 100]), black_box(vec![0u8; 100])]
}

#[test]
fn a_budget_that_holds_returns_the_value() {
    let v = Budget::new().max_allocs(3).max_bytes_allocated(248).max_peak_bytes(248).assert(three_allocs_of_248_bytes);
    assert_eq!(v.len(), 2);
}

#[test]
fn an_exceeded_budget_names_every_exceeded_limit_with_both_values() {
    let budget = Budget::new().max_allocs(2).max_bytes_allocated(200).max_peak_bytes(1024);
    let (line, result) = (line!(), budget.check(three_allocs_of_248_bytes));
    let err = result.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("allocation budget exceeded: allocs 3 > 2, bytes_allocated 248 > 200 (budget at "),
        "{msg}"
    );
    assert!(msg.contains(&format!("tests/budget.rs:{line}:")), "{msg}");
    assert!(!msg.contains("peak_bytes 248 >"), "the peak limit held: {msg}");
    assert_eq!(err.overruns().len(), 2);
    assert_eq!(err.overruns()[0].limit, Limit::Allocs);
    assert_eq!((err.overruns()[1].max, err.overruns()[1].actual), (200, 248));
    assert_eq!(err.stats().allocs, 3);
}

#[test]
fn the_peak_limit_is_checked() {
    let err = Budget::new().max_peak_bytes(100).check(|| drop(black_box(vec![0u8; 101]))).unwrap_err();
    assert!(err.to_string().starts_with("allocation budget exceeded: peak_bytes 101 > 100 "), "{err}");
}

#[test]
fn reallocations_count_against_max_allocs() {
    let err = Budget::new()
        .max_allocs(1)
        .check(|| {
            let mut v: Vec<u8> = Vec::with_capacity(1);
            v.extend_from_slice(black_box(&[0u8; 64]));
            v
        })
        .unwrap_err();
    assert!(err.to_string().starts_with("allocation budget exceeded: allocs 2 > 1 (budget at "), "{err}");
}

#[test]
#[should_panic(expected = "allocation budget exceeded: allocs 3 > 2")]
fn assert_panics_with_the_message() {
    Budget::new().max_allocs(2).assert(three_allocs_of_248_bytes);
}

#[test]
fn assert_no_alloc_passes_when_nothing_is_allocated() {
    let mut buf = Vec::with_capacity(64);
    let n = assert_no_alloc(|| {
        buf.extend_from_slice(black_box(b"steady state"));
        buf.len()
    });
    assert_eq!(n, 12);
}

#[test]
fn assert_no_alloc_allows_frees() {
    let v = black_box(vec![1u8; 10]);
    assert_no_alloc(|| drop(v));
}

#[test]
#[should_panic(expected = "allocation budget exceeded: allocs 1 > 0, bytes_allocated 16 > 0 (budget at ")]
fn assert_no_alloc_fails_when_something_is_allocated() {
    assert_no_alloc(|| drop(black_box(Box::new([0u8; 16]))));
}

#[test]
fn unwrap_on_a_failed_budget_prints_the_report_not_a_struct_dump() {
    let err = Budget::new().max_allocs(2).check(three_allocs_of_248_bytes).unwrap_err();
    assert_eq!(format!("{err:?}"), err.to_string());
    let payload = std::panic::catch_unwind(|| Budget::new().max_allocs(2).check(three_allocs_of_248_bytes).unwrap())
        .expect_err("unwrap panics");
    let message = payload.downcast_ref::<String>().expect("a formatted panic message");
    assert!(
        message.starts_with("called `Result::unwrap()` on an `Err` value: allocation budget exceeded: allocs 3 > 2"),
        "{message}"
    );
    assert!(!message.contains("Details {") && !message.contains("AllocStats {"), "{message}");
}

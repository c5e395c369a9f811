//! A failing budget names where the first allocation over the limit came
//! from: a known three-level call chain, in parallel tests (per thread).
#![cfg(feature = "jemalloc")]

use std::hint::black_box;

use allocscope::{assert_no_alloc, Budget, CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

#[inline(never)]
fn outer_layer(n: usize) -> Vec<Vec<u8>> {
    middle_layer(n)
}

#[inline(never)]
fn middle_layer(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| innermost_allocation()).collect()
}

#[inline(never)]
fn innermost_allocation() -> Vec<u8> {
    black_box(vec![7u8; 48])
}

#[test]
fn an_exceeded_budget_names_the_allocating_function_and_its_callers() {
    // The outer Vec (1 allocation) and 3 inner ones: the third allocation,
    // the second inner Vec, is the first over a limit of 2.
    let err = Budget::new().max_allocs(2).check(|| outer_layer(3)).unwrap_err();
    let site = err.site().expect("the site was captured and resolved");
    let lines: Vec<&str> = site.lines().collect();
    assert!(lines[0].contains("innermost_allocation"), "innermost frame first:\n{site}");
    assert!(site.contains("middle_layer") && site.contains("outer_layer"), "{site}");
    assert!(site.contains(" (tests/budget_site.rs:"), "file and line:\n{site}");
    // `cargo test` runs in the package's directory: its files are shown
    // relative to it, not with the checkout's absolute path.
    assert!(!site.contains(env!("CARGO_MANIFEST_DIR")), "relative paths:\n{site}");
    assert!(!site.contains("allocscope::"), "no allocator machinery:\n{site}");
    let msg = err.to_string();
    assert!(msg.starts_with("allocation budget exceeded: allocs 4 > 2 "), "{msg}");
    assert!(msg.contains("\nfirst allocation over the limit:\n  at "), "{msg}");
}

#[test]
fn the_byte_limit_trips_at_the_allocation_that_crosses_it() {
    let err = Budget::new().max_bytes_allocated(100).check(|| {
        let small = black_box(vec![0u8; 60]);
        let crossing = innermost_allocation(); // 60 + 48 > 100
        (small, crossing)
    });
    let site = err.unwrap_err().site().map(str::to_owned).unwrap();
    assert!(site.lines().next().unwrap().contains("innermost_allocation"), "{site}");
}

#[test]
#[should_panic(expected = "first allocation over the limit:\n  at ")]
fn assert_no_alloc_shows_the_site_in_its_panic() {
    assert_no_alloc(|| drop(outer_layer(1)));
}

#[test]
fn a_budget_that_holds_has_no_site_and_restores_the_thread() {
    let v = Budget::new().max_allocs(10).assert(|| outer_layer(2));
    assert_eq!(v.len(), 2);
    // After a check, allocation counting is back on its fast path: a plain
    // scope still measures exactly.
    let ((), s) = allocscope::measure(|| drop(black_box(Box::new(1u64))));
    assert_eq!((s.allocs, s.deallocs), (1, 1));
}

#[test]
fn an_outer_budget_reports_its_own_site_after_an_inner_one_held() {
    let outer = Budget::new().max_allocs(5).check(|| {
        let inner = Budget::new().max_allocs(1).check(innermost_allocation);
        assert!(inner.is_ok(), "the inner budget holds");
        outer_layer(10)
    });
    let site = outer.unwrap_err().site().map(str::to_owned).unwrap();
    assert!(site.lines().next().unwrap().contains("innermost_allocation"), "{site}");
    assert!(site.contains("outer_layer"), "{site}");
}

#[test]
fn a_nested_budget_keeps_the_outer_budgets_recorded_site() {
    let outer = Budget::new().max_allocs(0).check(|| {
        let first = innermost_allocation(); // trips the outer budget
        Budget::new().check(|| ()).unwrap();
        first
    });
    let site = outer.unwrap_err().site().map(str::to_owned).expect("the outer site survives the inner budget");
    assert!(site.lines().next().unwrap().contains("innermost_allocation"), "{site}");
}

#[inline(never)]
fn first_allocation() -> Vec<u8> {
    black_box(vec![1u8; 16])
}

#[test]
fn a_peak_limit_beyond_i64_max_is_no_limit_and_does_not_trip() {
    // The second allocation breaks max_allocs(1); a peak limit of u64::MAX
    // once wrapped negative and tripped at the first one.
    let err = Budget::new()
        .max_allocs(1)
        .max_peak_bytes(u64::MAX)
        .check(|| (first_allocation(), innermost_allocation()))
        .unwrap_err();
    assert_eq!(err.overruns().len(), 1, "{err}");
    let site = err.site().unwrap();
    assert!(site.lines().next().unwrap().contains("innermost_allocation"), "{site}");
    assert!(Budget::new().max_peak_bytes(u64::MAX).check(|| vec![0u8; 1 << 20]).is_ok());
}

/// A `HashMap` grows inside std's vendored `hashbrown` (its frames are in
/// `/rust/deps/hashbrown-*/`): std's code, not the program's, so the site
/// reaches the line that inserted.
#[test]
fn a_hash_map_growing_inside_std_names_the_line_that_inserts() {
    let err = Budget::new()
        .max_allocs(1)
        .check(|| {
            let mut m = std::collections::HashMap::new();
            for i in 0..100u32 {
                m.insert(i, i); // the insert line
            }
            m
        })
        .unwrap_err();
    let site = err.site().expect("the site was captured and resolved");
    let first = site.lines().next().unwrap();
    assert!(first.contains("tests/budget_site.rs:"), "the user's line first, not std's vendored crates:\n{site}");
    assert!(!site.contains("hashbrown"), "{site}");
}

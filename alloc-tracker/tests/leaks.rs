//! Leak budgets: what survives a measured run after warm-ups, exact to the
//! byte, and the site of the largest allocation still held.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};

use allocscope::{assert_no_leaks, Budget, CountingAlloc, Limit};

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

#[inline(never)]
fn keep_large(kept: &mut Vec<Box<[u8]>>) {
    kept.push(black_box(vec![1u8; 4096]).into_boxed_slice());
}

#[inline(never)]
fn keep_small(kept: &mut Vec<Box<[u8]>>, n: usize) {
    kept.push(black_box(vec![2u8; n]).into_boxed_slice());
}

#[test]
fn the_largest_surviving_allocation_is_named_with_its_stack_and_the_leak_is_exact() {
    let mut kept: Vec<Box<[u8]>> = Vec::with_capacity(64);
    let err = Budget::new()
        .max_leaked_bytes(100)
        .check_steady(|| {
            keep_small(&mut kept, 16);
            drop(black_box(vec![0u8; 10_000])); // allocated and freed: not a leak
            keep_large(&mut kept);
            keep_small(&mut kept, 100);
        })
        .unwrap_err();
    let e = err.overruns();
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].limit, e[0].max, e[0].actual), (Limit::LeakedBytes, 100, 16 + 4096 + 100));
    let (size, site) = err.largest_held().expect("a survivor");
    assert_eq!(size, 4096);
    let site = site.expect("resolved to source lines");
    assert!(site.lines().next().unwrap().contains("keep_large"), "innermost frame first:\n{site}");
    assert!(site.contains("tests/leaks.rs:"), "{site}");
    assert!(!site.contains("allocscope::"), "no allocator machinery:\n{site}");
    let msg = err.to_string();
    assert!(msg.starts_with("allocation budget exceeded: leaked_bytes 4212 > 100 (budget at "), "{msg}");
    assert!(msg.contains("tests/leaks.rs:29:"), "the check's location:\n{msg}");
    assert!(msg.contains("\nlargest allocation still held (4096 bytes; 1 of 3 blocks still held):\n  at "), "{msg}");
    assert!(!msg.contains("first allocation over the limit"), "no allocation limit was set:\n{msg}");
}

#[test]
fn warm_ups_are_not_measured_and_the_value_is_dropped_inside_the_run() {
    let cache: RefCell<HashMap<u32, String>> = RefCell::new(HashMap::new());
    let lookup = || cache.borrow_mut().entry(7).or_insert_with(|| "seven".repeat(10)).len();
    // Without a warm-up the measured run fills the cache: the String's 50
    // bytes and the table's allocation survive.
    let err = Budget::new().max_leaked_bytes(0).check_steady(lookup).unwrap_err();
    assert!(err.overruns()[0].actual > 50, "{err}");
    cache.borrow_mut().clear();
    cache.borrow_mut().shrink_to_fit();
    // One warm-up fills it; the measured run only reads.
    Budget::new().max_leaked_bytes(0).max_allocs(0).warmups(1).assert_steady(lookup);
    // A returned value is dropped inside the measured run, so it is no leak.
    assert_no_leaks(|| vec![0u8; 1 << 20]);
    let runs = RefCell::new(0);
    assert_no_leaks(|| *runs.borrow_mut() += 1);
    assert_eq!(*runs.borrow(), 2, "one warm-up and one measured run");
}

#[test]
fn every_limit_is_checked_against_the_measured_run_only() {
    let mut buf: Vec<u8> = Vec::new();
    let mut fill = || {
        buf.clear();
        buf.extend_from_slice(&[7u8; 300]);
    };
    let err = Budget::new().max_allocs(0).max_bytes_allocated(0).check_steady(&mut fill).unwrap_err();
    assert_eq!(err.stats().allocs, 1, "{err}");
    assert_eq!(err.stats().bytes_allocated, 300);
    assert!(err
        .to_string()
        .starts_with("allocation budget exceeded: allocs 1 > 0, bytes_allocated 300 > 0 (budget at "));
    // The buffer keeps its capacity: the next runs allocate nothing.
    Budget::new().max_allocs(0).max_bytes_allocated(0).max_leaked_bytes(0).assert_steady(&mut fill);
    let msg = catch_unwind(AssertUnwindSafe(|| {
        let mut kept = Vec::with_capacity(8);
        Budget::new().max_leaked_bytes(0).warmups(3).assert_steady(|| kept.push(Box::new(0u64)));
    }))
    .unwrap_err();
    let msg = msg.downcast_ref::<String>().expect("a formatted message");
    assert!(msg.contains(", after 3 warm-up runs; measured allocs 1, "), "{msg}");
    assert!(msg.contains("leaked_bytes 8 > 0"), "{msg}");
    assert!(msg.contains("largest allocation still held (8 bytes; 1 of 1 block still held):"), "{msg}");
}

#[test]
fn one_shot_checks_refuse_settings_they_cannot_honour() {
    for budget in [Budget::new().max_leaked_bytes(0), Budget::new().warmups(1)] {
        let msg = catch_unwind(|| budget.check(|| ())).unwrap_err();
        let msg = msg.downcast_ref::<String>().map(String::as_str).or(msg.downcast_ref::<&str>().copied()).unwrap();
        assert_eq!(
            msg,
            "allocscope: Budget::check runs its closure once and returns its value, so it cannot check \
             `max_leaked_bytes` or run `warmups`: use `check_steady` or `assert_steady`"
        );
    }
}

#[test]
fn a_trace_leaves_the_heap_profile_and_the_threads_own_sampling_as_they_were() {
    // Only this test samples in this binary, on this thread only.
    allocscope::profile::stop_thread_sampling();
    let samples = || allocscope::profile::heap_profile().sites.iter().map(|s| s.samples).sum::<u64>();
    let before = samples();
    allocscope::profile::start_thread_sampling(1);
    Budget::new().max_leaked_bytes(0).assert_steady(|| drop(black_box(Box::new(5u8))));
    // A panicking run ends its trace too.
    let _ = catch_unwind(|| Budget::new().max_leaked_bytes(0).check_steady(|| panic!("in the run")));
    // Sampling at rate 1 again: this box is the one sample since `before`.
    let kept = black_box(Box::new(6u8));
    allocscope::profile::stop_thread_sampling();
    assert_eq!(samples() - before, 1, "the traced runs took no sample");
    drop(kept);
}

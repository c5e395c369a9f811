//! Guards (scopes, `op` guards, budgets) restore only what they set: a
//! scope's end neither undoes `start_thread_sampling`/`stop_thread_sampling` called inside
//! it, nor another scope's peak tracking; scopes may end in any order and
//! each keeps its own peak.
#![cfg(feature = "jemalloc")]

use std::hint::black_box;

use allocscope::profile::{heap_profile, start_thread_sampling, stop_thread_sampling};
use allocscope::{measure, Budget, CountingAlloc, Jemalloc, Scope};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

/// Samples taken at sites whose frames name `function`.
fn samples_in(function: &str) -> u64 {
    let profile = heap_profile();
    profile
        .sites
        .iter()
        .zip(profile.user_frames())
        .filter(|(_, frames)| frames.iter().any(|f| f.name.ends_with(function)))
        .map(|(s, _)| s.samples)
        .sum()
}

#[inline(never)]
fn after_sampling_started_in_a_scope() -> Box<[u8; 40]> {
    black_box(Box::new([1u8; 40]))
}

#[inline(never)]
fn after_sampling_stopped_in_a_scope() -> Box<[u8; 40]> {
    black_box(Box::new([2u8; 40]))
}

#[inline(never)]
fn after_sampling_started_in_a_budget() -> Box<[u8; 40]> {
    black_box(Box::new([3u8; 40]))
}

#[inline(never)]
fn after_sampling_started_in_an_op() -> Box<[u8; 40]> {
    black_box(Box::new([4u8; 40]))
}

#[test]
fn sampling_started_inside_a_scope_stays_on_after_it() {
    measure(|| start_thread_sampling(1));
    let kept = after_sampling_started_in_a_scope();
    stop_thread_sampling();
    assert_eq!(samples_in("after_sampling_started_in_a_scope"), 1);
    drop(kept);
}

#[test]
fn sampling_stopped_inside_a_scope_stays_off_after_it() {
    start_thread_sampling(1);
    let scope = Scope::start();
    stop_thread_sampling();
    let _ = scope.finish();
    let kept: Vec<_> = (0..3).map(|_| after_sampling_stopped_in_a_scope()).collect();
    assert_eq!(samples_in("after_sampling_stopped_in_a_scope"), 0);
    drop(kept);
}

#[test]
fn sampling_started_inside_a_budget_or_an_op_stays_on_after_it() {
    Budget::new().max_allocs(10).assert(|| start_thread_sampling(1));
    let a = after_sampling_started_in_a_budget();
    {
        let _op = allocscope::op("guards.sampling");
        stop_thread_sampling();
        start_thread_sampling(1);
    }
    let b = after_sampling_started_in_an_op();
    stop_thread_sampling();
    assert_eq!(samples_in("after_sampling_started_in_a_budget"), 1);
    assert_eq!(samples_in("after_sampling_started_in_an_op"), 1);
    drop((a, b));
}

#[test]
fn an_outer_scope_sees_its_peak_while_an_inner_one_is_open() {
    let outer = Scope::start();
    drop(black_box(vec![0u8; 1000]));
    let inner = Scope::start();
    assert_eq!(outer.current().peak_bytes, 1000);
    drop(black_box(vec![0u8; 300]));
    assert_eq!(inner.current().peak_bytes, 300);
    assert_eq!(outer.current().peak_bytes, 1000);
    let v = black_box(vec![0u8; 2000]);
    assert_eq!((inner.finish().peak_bytes, outer.current().peak_bytes), (2000, 2000));
    drop(v);
    assert_eq!(outer.finish().peak_bytes, 2000);
}

#[test]
fn scopes_that_end_out_of_order_each_keep_their_own_peak() {
    let a = Scope::start();
    drop(black_box(vec![0u8; 700]));
    let b = Scope::start();
    drop(black_box(vec![0u8; 100]));
    let a = a.finish();
    assert_eq!(a.peak_bytes, 700);
    drop(black_box(vec![0u8; 5000]));
    let b = b.finish();
    assert_eq!((b.peak_bytes, b.allocs, b.bytes_allocated), (5000, 2, 5100));
    // Afterwards a new scope measures from scratch.
    let ((), c) = measure(|| drop(black_box(vec![0u8; 64])));
    assert_eq!(c.peak_bytes, 64);
}

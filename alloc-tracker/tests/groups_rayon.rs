//! What a scope and a group see of work handed to rayon's thread pool. A
//! `measure` (or a group entered only on the calling thread) sees the
//! calling thread alone: the pool's threads run the items, so none of
//! their allocations appear. Entering the group in each item's closure
//! counts every one of them.
#![cfg(feature = "jemalloc")]

use std::hint::black_box;

use allocscope::{measure, CountingAlloc, Group, Jemalloc};
use rayon::prelude::*;

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

fn work(i: u64) -> u64 {
    *black_box(Box::new(i))
}

#[test]
fn the_pools_work_is_counted_only_where_the_group_is_entered_in_each_item() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    let items: Vec<u64> = (0..10_000).collect();
    // Warm up: the pool's threads start and its queues grow.
    pool.install(|| items.par_iter().map(|&i| work(i)).sum::<u64>());

    // A scope around the parallel loop sees the calling thread only, which
    // hands the loop to the pool and waits: at most one block of the pool's
    // job queue, none of the 10,000 items.
    let (sum, seen) = measure(|| pool.install(|| items.par_iter().map(|&i| work(i)).sum::<u64>()));
    assert_eq!(sum, (0..10_000u64).sum::<u64>());
    assert!(seen.allocs <= 1, "{seen}");

    // Likewise a group entered on the calling thread only.
    let caller_only = Group::new("rayon.caller_only");
    caller_only.run(|| pool.install(|| items.par_iter().map(|&i| work(i)).sum::<u64>()));
    assert!(caller_only.stats().allocs <= 1, "{}", caller_only.stats());

    // Entering the group in each item's closure: every item counted, on
    // whichever pool thread ran it.
    let per_item = Group::new("rayon.per_item");
    pool.install(|| items.par_iter().map(|&i| per_item.run(|| work(i))).sum::<u64>());
    let s = per_item.stats();
    assert_eq!((s.allocs, s.deallocs, s.bytes_allocated), (10_000, 10_000, 80_000));
    assert_eq!(per_item.windows(), 10_000);
}

/// One job of the work-stealing test: two allocations of 100 bytes in
/// `group`, and, between them, a wait during which rayon runs whatever is
/// queued on this worker (as it does while `join` waits for a stolen half).
fn job(group: &Group, wait: bool) {
    group.run(|| {
        drop(black_box(vec![0u8; 100]));
        if wait {
            assert_eq!(rayon::yield_now(), Some(rayon::Yield::Executed), "the other job ran meanwhile");
        }
        drop(black_box(vec![0u8; 100]));
    });
}

/// While a worker waits inside job 0's window, rayon runs job 1 on it:
/// job 1's work belongs to job 1 only (the thread's innermost group), so
/// each job counts its own two allocations and the jobs add up to the
/// truth.
#[test]
fn work_stolen_into_another_groups_window_counts_only_in_its_own_group() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let (first, second) = (Group::new("rayon.job0"), Group::new("rayon.job1"));
    pool.install(|| rayon::join(|| job(&first, true), || job(&second, false)));
    for g in [&first, &second] {
        let s = g.stats();
        assert_eq!((s.allocs, s.bytes_allocated, s.deallocs, s.bytes_freed), (2, 200, 2, 200), "{}", g.name());
    }
}

//! Groups across threads: a unit of work's allocations counted exactly,
//! wherever its threads run, and nothing of unrelated threads.
#![cfg(feature = "jemalloc")]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use allocscope::{measure, op, Budget, CountingAlloc, Group, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

fn boxes(n: u64) {
    for i in 0..n {
        drop(black_box(Box::new(i)));
    }
}

#[test]
fn a_group_wrapped_into_four_threads_sees_exactly_their_work_and_nothing_of_others() {
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let noisy: Vec<_> = (0..2)
        .map(|_| {
            let (stop, progress) = (Arc::clone(&stop), Arc::clone(&progress));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    drop(black_box(vec![0u8; 24]));
                    progress.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    while progress.load(Ordering::Relaxed) < 1000 {
        std::hint::spin_loop();
    }
    let group = Group::new("groups.four_threads");
    let workers: Vec<_> = (0..4).map(|_| std::thread::spawn(group.wrap(|| boxes(1000)))).collect();
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for t in noisy {
        t.join().unwrap();
    }
    let s = group.stats();
    assert_eq!((s.allocs, s.deallocs, s.reallocs), (4000, 4000, 0));
    assert_eq!((s.bytes_allocated, s.bytes_freed), (32_000, 32_000));
    assert_eq!(s.peak_bytes, 8, "one box live at a time on each thread, the threads' windows apart or not");
    assert_eq!(group.windows(), 4);
}

#[test]
fn a_thread_that_exits_inside_a_group_keeps_its_counts_in_it() {
    let group = Group::new("groups.exit");
    let g = group.clone();
    std::thread::spawn(move || {
        let _in_group = g.enter();
        boxes(10);
        std::mem::forget(black_box(vec![0u8; 100])); // still live at exit
    })
    .join()
    .unwrap();
    let s = group.stats();
    assert_eq!((s.allocs, s.deallocs, s.bytes_allocated, s.net_bytes()), (11, 10, 180, 100));
}

#[test]
fn group_counts_also_count_on_the_thread_and_in_its_scopes() {
    let group = Group::new("groups.also_thread");
    let ((), scope) = measure(|| group.run(|| boxes(5)));
    assert_eq!((scope.allocs, group.stats().allocs), (5, 5));
}

#[test]
fn nested_groups_count_each_allocation_in_the_innermost_group_only() {
    let (outer, inner) = (Group::new("groups.outer"), Group::new("groups.inner"));
    outer.run(|| {
        boxes(1);
        inner.run(|| {
            boxes(2);
            outer.run(|| boxes(3)); // outer is the innermost group again
        });
        boxes(4); // back in outer
    });
    assert_eq!(outer.stats().allocs, 1 + 3 + 4, "none of inner's own work");
    assert_eq!(inner.stats().allocs, 2, "none of the work of outer entered inside it");
}

#[test]
fn stats_include_the_callers_open_window_and_current_finds_the_group() {
    let group = Group::new("groups.open");
    let current = {
        let _in_group = group.enter();
        boxes(3);
        assert_eq!(group.stats().allocs, 3);
        Group::current().expect("in a group")
    };
    assert_eq!(current.name(), "groups.open");
    assert!(Group::current().is_none());
    // Spawned outside the group (spawning allocates), run inside it.
    std::thread::spawn(current.wrap(|| boxes(2))).join().unwrap();
    assert_eq!(group.stats().allocs, 5);
}

#[test]
fn operation_rows_are_kept_per_group() {
    let (a, b) = (Group::new("groups.ops_a"), Group::new("groups.ops_b"));
    for (group, n) in [(&a, 2u64), (&b, 3)] {
        group.run(|| {
            for _ in 0..n {
                let _op = op("groups.op");
                black_box(vec![0u8; 10]);
            }
        });
    }
    let row = |g: &Group| g.op_stats().into_iter().find(|r| r.name == "groups.op").unwrap();
    assert_eq!((row(&a).calls, row(&a).stats.bytes_allocated), (2, 20));
    assert_eq!((row(&b).calls, row(&b).stats.bytes_allocated), (3, 30));
}

#[test]
fn the_group_peak_is_the_highest_live_level_of_its_windows() {
    let group = Group::new("groups.peak");
    let kept = group.run(|| black_box(vec![0u8; 1000]));
    group.run(|| drop(black_box(vec![0u8; 500]))); // 1000 + 500 live at once
    drop(kept); // outside the group
    assert_eq!(group.stats().peak_bytes, 1500);
}

#[inline(never)]
fn the_extra_allocation() -> Box<u64> {
    black_box(Box::new(7))
}

#[test]
fn a_budget_over_a_group_fails_on_another_thread_and_names_the_site() {
    let group = Group::new("groups.budget");
    // A worker started before the check (starting a thread allocates),
    // which does the group's work when the check lets it.
    let (go, done) = (Arc::new(std::sync::Barrier::new(2)), Arc::new(std::sync::Barrier::new(2)));
    let worker = {
        let (go, done, group) = (Arc::clone(&go), Arc::clone(&done), group.clone());
        std::thread::spawn(move || {
            go.wait();
            group.run(|| {
                boxes(4);
                drop(the_extra_allocation());
            });
            done.wait();
        })
    };
    let err = Budget::new()
        .max_allocs(4)
        .check_group(&group, || {
            go.wait();
            done.wait();
        })
        .unwrap_err();
    worker.join().unwrap();
    assert_eq!((err.overruns()[0].max, err.overruns()[0].actual), (4, 5));
    let site = err.site().expect("the site, from the other thread");
    assert!(site.lines().next().unwrap().contains("the_extra_allocation"), "{site}");
    assert!(Budget::new().max_allocs(5).check_group(&group, || group.run(|| boxes(5))).is_ok());
}

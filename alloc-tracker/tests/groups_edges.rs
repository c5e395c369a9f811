//! Groups at their edges: guards dropped in any order, re-entry, budgets
//! nested, inside their own group or panicking, guards dropped while the
//! thread's locals are destroyed. Each test pins a defect an outside review
//! found; every figure is exact.

use std::hint::black_box;
use std::sync::Arc;

use allocscope::{Budget, CountingAlloc, Group};

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

fn boxes(n: u64) {
    for i in 0..n {
        drop(black_box(Box::new(i)));
    }
}

/// Two groups under budgets, entered a then b on a thread and left a then
/// b: the thread must not keep watching a budget that has ended. Before
/// the fix, leaving b restored a's shared trip after a's window had gone,
/// and once the budgets ended the thread's next allocations wrote into the
/// freed trip: zeroed buffers that reused its memory held non-zero bytes.
#[test]
fn budgets_over_groups_left_in_the_order_they_were_entered_leave_nothing_behind() {
    use std::sync::Barrier;
    let (a, b) = (Group::new("edges.uaf_a"), Group::new("edges.uaf_b"));
    let steps = Arc::new(Barrier::new(2));
    let worker = {
        let (a, b, steps) = (a.clone(), b.clone(), Arc::clone(&steps));
        std::thread::spawn(move || {
            steps.wait(); // both budgets run
            let in_a = a.enter();
            let in_b = b.enter();
            drop(in_a);
            drop(in_b);
            steps.wait(); // done with the groups
            steps.wait(); // the budgets have ended and their memory is reused
            for _ in 0..100 {
                drop(black_box(Box::new(1u64)));
            }
            steps.wait();
        })
    };
    Budget::new()
        .check_group(&a, || {
            Budget::new()
                .check_group(&b, || {
                    steps.wait();
                    steps.wait();
                })
                .unwrap();
        })
        .unwrap();
    // Reuse the freed memory of both budgets with zeroed buffers of every
    // small size class (through `malloc`, not `calloc`, which would not
    // reuse the freed blocks); then the worker allocates: a thread still
    // pointing at a freed budget would write its count into one of them.
    #[allow(clippy::slow_vector_initialization)] // `vec![0; n]` is `calloc`
    let zeroed: Vec<Vec<u8>> = (1..=256)
        .map(|k| {
            let mut buf = Vec::with_capacity(k * 8);
            buf.resize(k * 8, 0u8);
            buf
        })
        .collect();
    steps.wait();
    steps.wait();
    worker.join().unwrap();
    for (k, buf) in zeroed.iter().enumerate() {
        assert!(buf.iter().all(|&byte| byte == 0), "a {}-byte buffer was written to after it was zeroed", (k + 1) * 8);
    }
}

/// Recursion through `run` on one group: re-entry opens no second window,
/// so no depth is too deep.
#[test]
fn re_entering_a_group_any_number_of_times_takes_no_window_slot() {
    fn recurse(g: &Group, depth: u32) {
        if depth > 0 {
            g.run(|| {
                drop(black_box(Box::new(depth)));
                recurse(g, depth - 1);
            });
        }
    }
    let g = Group::new("edges.recursion");
    recurse(&g, 200);
    let s = g.stats();
    assert_eq!((s.allocs, s.deallocs, s.bytes_allocated), (200, 200, 800));
    assert_eq!(g.windows(), 1, "one window, entered 200 times");
}

/// Guards of a re-entered group dropped out of order: the thread stays in
/// the group until its last guard goes, and every allocation meanwhile
/// counts.
#[test]
fn guards_of_a_re_entered_group_dropped_out_of_order_lose_nothing() {
    let a = Group::new("edges.reentered");
    let first = a.enter();
    let second = a.enter();
    drop(black_box(vec![0u8; 100]));
    drop(first);
    assert_eq!(Group::current().map(|g| g.name()), Some("edges.reentered"));
    drop(black_box(vec![0u8; 50]));
    drop(second);
    assert!(Group::current().is_none());
    drop(black_box(vec![0u8; 25])); // outside
    assert_eq!(a.stats().bytes_allocated, 150);
}

/// Guards of different groups dropped out of order: the work between the
/// two drops belongs to the group still entered.
#[test]
fn guards_of_different_groups_dropped_out_of_order_attribute_each_allocation_once() {
    let (a, b) = (Group::new("edges.order_a"), Group::new("edges.order_b"));
    let in_a = a.enter();
    drop(black_box(vec![0u8; 1]));
    let in_b = b.enter();
    drop(black_box(vec![0u8; 10]));
    drop(in_a);
    assert_eq!(Group::current().map(|g| g.name()), Some("edges.order_b"));
    drop(black_box(vec![0u8; 100]));
    drop(in_b);
    drop(black_box(vec![0u8; 1000])); // outside both
    assert_eq!((a.stats().bytes_allocated, b.stats().bytes_allocated), (1, 110));
}

/// `check_group` called while the thread is already in the group checks
/// the body as it does from outside: its peak and its first allocation
/// over the limit.
#[test]
fn a_budget_over_the_group_the_thread_is_in_checks_the_body() {
    #[inline(never)]
    fn grow_to_5000() -> Vec<u8> {
        black_box(vec![0u8; 5000])
    }
    let g = Group::new("edges.inside");
    let err =
        g.run(|| Budget::new().max_peak_bytes(100).max_allocs(0).check_group(&g, || drop(grow_to_5000()))).unwrap_err();
    assert_eq!(err.stats().peak_bytes, 5000, "{err}");
    assert_eq!(err.stats().allocs, 1, "{err}");
    let site = err.site().expect("the first allocation over the limit");
    assert!(site.lines().next().unwrap().contains("grow_to_5000"), "{site}");
}

/// A body that panics ends its budget: the group can be checked again.
#[test]
fn a_panicking_budget_body_leaves_its_group_checkable() {
    let g = Group::new("edges.panicking");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Budget::new().max_allocs(10).check_group(&g, || panic!("the body fails"))
    }));
    assert!(caught.is_err());
    let err = Budget::new().max_allocs(0).check_group(&g, || boxes(1)).unwrap_err();
    assert_eq!(err.overruns()[0].actual, 1);
    assert!(Group::current().is_none(), "the panicking body's window ended with it");
}

/// Nested budgets over groups: the outer one counts its own group's
/// allocation exactly (none of the inner check's machinery, none of the
/// inner group's work) and names it.
#[test]
fn nested_group_budgets_count_only_their_own_groups_work() {
    #[inline(never)]
    fn outer_allocation() -> Box<u64> {
        black_box(Box::new(1))
    }
    let (outer, inner) = (Group::new("edges.nested_outer"), Group::new("edges.nested_inner"));
    let mut inner_result = None;
    let err = Budget::new()
        .max_allocs(0)
        .check_group(&outer, || {
            drop(outer_allocation());
            inner_result = Some(Budget::new().max_allocs(2).check_group(&inner, || boxes(2)));
        })
        .unwrap_err();
    assert!(inner_result.unwrap().is_ok());
    assert_eq!((err.overruns()[0].actual, err.stats().bytes_allocated), (1, 8), "{err}");
    let site = err.site().expect("the outer group's allocation");
    assert!(site.lines().next().unwrap().contains("outer_allocation"), "{site}");
}

/// A guard kept in a thread-local is dropped while the thread's locals are
/// destroyed: the thread ends quietly, and the window counts.
#[test]
fn a_group_guard_dropped_while_thread_locals_are_destroyed_ends_quietly() {
    use std::cell::RefCell;
    thread_local! {
        static KEPT: RefCell<Option<allocscope::GroupGuard>> = const { RefCell::new(None) };
    }
    let g = Arc::new(Group::new("edges.tls"));
    let inner = Arc::clone(&g);
    std::thread::spawn(move || {
        KEPT.with(|k| *k.borrow_mut() = Some(inner.enter()));
        boxes(4);
    })
    .join()
    .expect("the thread ends without aborting");
    let s = g.stats();
    assert_eq!((s.allocs, s.bytes_allocated), (4, 32));
}

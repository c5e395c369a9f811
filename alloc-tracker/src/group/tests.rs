//! The group and budget state machines: edge cases. The model test over
//! random sequences is in `model_tests.rs`. Miri runs these too
//! (`.ci/run`).

use std::hint::black_box;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Barrier};

use super::Group;
use crate::budget::Budget;

/// Two groups under budgets started on another thread, entered a then b
/// and left a then b: once the budgets end, the thread's allocations must
/// not touch their freed state (Miri reports a use-after-free otherwise).
#[test]
fn leaving_budgeted_groups_in_entry_order_never_watches_an_ended_budget() {
    let (a, b) = (Group::new("unit.uaf_a"), Group::new("unit.uaf_b"));
    let steps = Arc::new(Barrier::new(2));
    let worker = {
        let (a, b, steps) = (a.clone(), b.clone(), Arc::clone(&steps));
        std::thread::spawn(move || {
            steps.wait();
            let in_a = a.enter();
            let in_b = b.enter();
            drop(in_a);
            drop(in_b);
            steps.wait();
            steps.wait(); // the budgets have ended
            drop(black_box(Box::new(1u64)));
        })
    };
    let check = |g: &Group, f: &dyn Fn()| Budget::new().check_group(g, f).unwrap();
    check(&a, &|| {
        check(&b, &|| {
            steps.wait();
            steps.wait();
        })
    });
    steps.wait();
    worker.join().unwrap();
}

/// Recursion through `run` on the innermost group takes no room.
#[test]
fn re_entering_the_innermost_group_takes_no_room() {
    fn recurse(g: &Group, depth: u32) {
        if depth > 0 {
            g.run(|| recurse(g, depth - 1));
        }
    }
    let g = Group::new("unit.recursion");
    recurse(&g, 3 * super::MAX_OPEN_GROUPS as u32);
    assert_eq!(g.windows(), 1);
}

/// A guard kept in a thread-local ends while the thread's locals are
/// destroyed: quietly, and counted.
#[test]
fn a_guard_dropped_by_a_thread_local_destructor_ends_quietly() {
    use std::cell::RefCell;
    thread_local! {
        static KEPT: RefCell<Option<super::GroupGuard>> = const { RefCell::new(None) };
    }
    let g = Group::new("unit.tls");
    let inner = g.clone();
    std::thread::spawn(move || {
        KEPT.with(|k| *k.borrow_mut() = Some(inner.enter()));
        drop(black_box(Box::new(7u32)));
    })
    .join()
    .unwrap();
    assert_eq!((g.stats().allocs, g.windows()), (1, 1));
}

/// A guard that is forgotten keeps its entry, and so its group's memory,
/// after the group's last handle is gone: the entry, `Group::current` and
/// the window's end never touch freed memory (Miri checks it; the group is
/// leaked on purpose, so Miri runs this one alone, with its leak check off:
/// `.ci/run`).
#[test]
#[cfg_attr(miri, ignore = "leaks on purpose: run alone with -Zmiri-ignore-leaks")]
fn a_forgotten_guard_keeps_its_groups_memory() {
    std::thread::spawn(|| {
        let g = Group::new("unit.forgotten");
        std::mem::forget(g.enter());
        drop(g); // the last handle
        drop(black_box(Box::new(1u8)));
        let current = Group::current().expect("still in the group");
        assert_eq!((current.name(), current.stats().allocs), ("unit.forgotten", 1));
        drop(current);
        // A scope of the thread still works around the leaked entry.
        let ((), s) = crate::scope::measure(|| drop(black_box(Box::new(2u8))));
        assert_eq!(s.allocs, 1);
    })
    .join()
    .unwrap();
}

/// A panicking body ends its check and its window.
#[test]
fn a_panicking_budget_body_ends_its_check_and_its_window() {
    let g = Group::new("unit.panicking");
    let r = catch_unwind(AssertUnwindSafe(|| Budget::new().check_group(&g, || resume_unwind(Box::new(())))));
    assert!(r.is_err());
    assert!(Group::current().is_none());
    assert!(Budget::new().max_allocs(0).check_group(&g, || ()).is_ok(), "checkable again");
}

// ---------------------------------------------------------------------------
// The model test.

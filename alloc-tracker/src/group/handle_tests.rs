//! Handles in any order: clones, handles from `Group::current()` and the
//! handles that `Grouped` futures keep, dropped in every order, with the
//! group entered and left in between. The last handle frees the group's
//! block, whichever it is; Miri (Stacked and Tree Borrows, `.ci/run`)
//! checks that it frees it through a pointer allowed to, and that nothing
//! leaks.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use proptest::prelude::*;

use super::{Group, GroupGuard, InGroup};

/// The three lines that freed the block through a pointer made from a
/// shared reference.
#[test]
fn a_clone_may_be_the_last_handle() {
    let g = Group::new("handles.clone");
    let c = g.clone();
    drop(g);
    drop(c);
}

#[test]
fn a_handle_from_current_may_be_the_last_handle() {
    let g = Group::new("handles.current");
    let guard = g.enter();
    let c = Group::current().expect("in the group");
    drop(guard);
    drop(g);
    assert_eq!(c.windows(), 1);
    drop(c);
}

#[test]
fn a_futures_handle_may_be_the_last_handle() {
    let g = Group::new("handles.future");
    let mut fut = Box::pin(async { drop(black_box(Box::new(7u8))) }.in_group(&g));
    assert!(poll_once(fut.as_mut()).is_ready());
    drop(g);
    drop(fut);
}

/// Polls once with a waker that allocates nothing.
fn poll_once<F: Future + ?Sized>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

const GROUPS: usize = 2;

#[derive(Clone, Debug)]
enum Op {
    /// Clones the k-th handle.
    Clone(usize),
    /// Keeps the handle `Group::current()` gives.
    Current,
    /// Drops the k-th handle.
    Drop(usize),
    /// Enters the group of the k-th handle.
    Enter(usize),
    /// Drops the k-th guard.
    Leave(usize),
    /// Polls a future in the group of the k-th handle to its end, and
    /// keeps it (with its handle and its shard cache) to drop later.
    Poll(usize),
    /// Drops the k-th kept future.
    DropFuture(usize),
    /// Allocates and frees one block.
    Alloc,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => (0..16usize).prop_map(Op::Clone),
        2 => Just(Op::Current),
        4 => (0..16usize).prop_map(Op::Drop),
        3 => (0..16usize).prop_map(Op::Enter),
        3 => (0..16usize).prop_map(Op::Leave),
        2 => (0..16usize).prop_map(Op::Poll),
        2 => (0..16usize).prop_map(Op::DropFuture),
        2 => Just(Op::Alloc),
    ];
    prop::collection::vec(op, 0..if cfg!(miri) { 24 } else { 64 })
}

type Kept = std::pin::Pin<Box<dyn Future<Output = ()>>>;

/// Runs `ops` against `GROUPS` groups, the model being which group each
/// handle, guard and future belongs to, and the allocations each group
/// counted. Every handle dropped, in the order the sequence says, then the
/// rest in the reverse order of their making.
fn case(ops: &[Op]) {
    let names = ["handles.model_a", "handles.model_b"];
    // Room made beforehand: the model allocates nothing inside the groups
    // but what it counts.
    let mut handles: Vec<(usize, Group)> = Vec::with_capacity(GROUPS + ops.len());
    handles.extend((0..GROUPS).map(|i| (i, Group::new(names[i]))));
    let mut guards: Vec<(usize, GroupGuard)> = Vec::with_capacity(8);
    let mut futures: Vec<(usize, Kept)> = Vec::with_capacity(ops.len());
    let mut allocs = [0u64; GROUPS];
    // Entries in the order they were made: the innermost is the last.
    let innermost = |guards: &[(usize, GroupGuard)]| guards.last().map(|&(g, _)| g);
    for op in ops {
        match *op {
            Op::Clone(k) if !handles.is_empty() => {
                let (g, h) = &handles[k % handles.len()];
                handles.push((*g, h.clone()));
            }
            Op::Current => match (Group::current(), innermost(&guards)) {
                (Some(h), Some(g)) => {
                    assert_eq!(h.name(), names[g]);
                    handles.push((g, h));
                }
                (None, None) => {}
                (real, model) => panic!("current {:?}, model {model:?}", real.map(|h| h.name())),
            },
            Op::Drop(k) if !handles.is_empty() => {
                let (g, _) = handles[k % handles.len()];
                let others = handles.iter().filter(|(h, _)| *h == g).count() > 1;
                // The last handle of a group still entered would keep the
                // group's memory for good (see the module docs): not a case
                // for Miri's leak check.
                if others || guards.iter().all(|(e, _)| *e != g) {
                    let (_, h) = handles.remove(k % handles.len());
                    assert_eq!(h.stats().allocs, allocs[g]);
                    drop(h);
                }
            }
            Op::Enter(k) if !handles.is_empty() && guards.len() < 8 => {
                let (g, h) = &handles[k % handles.len()];
                // Entering the innermost group again re-enters its entry:
                // the model keeps one guard per `enter` all the same.
                guards.push((*g, h.enter()));
            }
            Op::Leave(k) if !guards.is_empty() => {
                let (g, guard) = guards.remove(k % guards.len());
                drop(guard);
                // A group whose handles all went while it was entered is
                // never left in the model (see `Op::Drop`).
                assert!(handles.iter().any(|(h, _)| *h == g));
            }
            Op::Poll(k) if !handles.is_empty() => {
                let (g, h) = &handles[k % handles.len()];
                // The future's box in the innermost group, its block in its own.
                let mut fut: Kept = Box::pin(async { drop(black_box(Box::new(1u8))) }.in_group(h));
                if let Some(i) = innermost(&guards) {
                    allocs[i] += 1;
                }
                assert!(poll_once(fut.as_mut()).is_ready());
                allocs[*g] += 1;
                futures.push((*g, fut));
            }
            Op::DropFuture(k) if !futures.is_empty() => drop(futures.remove(k % futures.len())),
            Op::Alloc => {
                drop(black_box(Box::new(0u64)));
                if let Some(g) = innermost(&guards) {
                    allocs[g] += 1;
                }
            }
            _ => {}
        }
    }
    // The guards first (in reverse, so every entry is left while a handle
    // of its group is alive), then handles and futures interleaved.
    while let Some((_, guard)) = guards.pop() {
        drop(guard);
    }
    for (g, h) in &handles {
        assert_eq!(h.stats().allocs, allocs[*g], "{}", h.name());
    }
    while !handles.is_empty() || !futures.is_empty() {
        if futures.len() > handles.len() {
            drop(futures.pop());
        } else {
            drop(handles.remove(handles.len() / 2));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 8 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Whichever handle goes last frees the group, and every handle reads
    /// the same figures until then.
    #[test]
    fn handles_dropped_in_any_order_free_their_group_once(ops in ops()) {
        case(&ops);
    }
}

/// Under the model's own allocations: a pinned future on the stack too.
#[test]
fn a_pinned_future_on_the_stack_keeps_its_group() {
    let g = Group::new("handles.stack_future");
    let fut = pin!(async {}.in_group(&g));
    drop(g);
    assert!(poll_once(fut).is_ready());
}

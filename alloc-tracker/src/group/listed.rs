//! The process-wide list of [`Group::listed`] groups: a list that only
//! grows, pushed with a compare-and-swap, so that no lock can be left held
//! by a thread that vanished in a `fork`.

use std::sync::atomic::{AtomicPtr, Ordering};

use super::Group;
use crate::counters;

struct Node {
    group: Group,
    next: *const Node,
}

static HEAD: AtomicPtr<Node> = AtomicPtr::new(std::ptr::null_mut());

fn nodes() -> impl Iterator<Item = &'static Node> {
    let mut p = HEAD.load(Ordering::Acquire).cast_const();
    std::iter::from_fn(move || {
        // SAFETY: nodes are never freed, and `next` is fixed before a
        // node is published.
        let node = unsafe { p.as_ref() }?;
        p = node.next;
        Some(node)
    })
}

pub(super) fn get_or_insert(name: &'static str) -> Group {
    let mut new: *mut Node = std::ptr::null_mut();
    loop {
        let head = HEAD.load(Ordering::Acquire);
        if let Some(node) = nodes().find(|n| n.group.name() == name) {
            if !new.is_null() {
                // SAFETY: made below by `Box::into_raw`, never published.
                counters::as_library(|| drop(unsafe { Box::from_raw(new) }));
            }
            return node.group.clone();
        }
        if new.is_null() {
            new = crate::jemalloc::library_work(|| {
                Box::into_raw(Box::new(Node { group: Group::new(name), next: std::ptr::null() }))
            });
        }
        // SAFETY: `new` is ours until published.
        unsafe { (*new).next = head };
        if HEAD.compare_exchange(head, new, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            // SAFETY: published; never freed.
            return unsafe { &*new }.group.clone();
        }
    }
}

/// Every listed group, oldest first.
pub(super) fn all() -> Vec<Group> {
    let mut all: Vec<Group> = nodes().map(|n| n.group.clone()).collect();
    all.reverse();
    all
}

//! What each group holds, with owner tags: exact wherever its memory is
//! freed, through reallocations, over-aligned and zeroed blocks, and tokio
//! tasks that move between workers; the tag never shows in a figure.

use std::alloc::{alloc, alloc_zeroed, dealloc, realloc, Layout};
use std::hint::black_box;

use allocscope::{measure, CountingAlloc, Group, Held};

// Over jemalloc when it is built in: its sized frees then check the layout
// the trailer grows (`.ci/run` runs these tests over a jemalloc with its
// debug assertions, where a wrong size aborts); over the system allocator
// without it (Miri).
#[cfg(feature = "jemalloc")]
type Inner = allocscope::Jemalloc;
#[cfg(not(feature = "jemalloc"))]
type Inner = std::alloc::System;

#[global_allocator]
static GLOBAL: CountingAlloc<Inner> = CountingAlloc::new(Inner {}).with_owner_tags();

fn exact(bytes: u64, blocks: u64) -> (u64, u64, bool) {
    (bytes, blocks, true)
}

fn figures(h: Held) -> (u64, u64, bool) {
    (h.bytes, h.blocks, h.exact)
}

/// 100 boxes allocated in a group; half freed on another thread outside
/// any group, then the rest: exact at each step.
#[test]
fn held_bytes_follow_frees_on_another_thread_outside_any_group() {
    let g = Group::new("held.cross_thread");
    let mut boxes: Vec<Box<[u8; 64]>> = Vec::with_capacity(100); // outside the group
    g.run(|| {
        for i in 0..100 {
            boxes.push(black_box(Box::new([i as u8; 64])));
        }
    });
    assert_eq!(figures(g.held()), exact(100 * 64, 100));
    let second_half = boxes.split_off(50);
    std::thread::spawn(move || drop(second_half)).join().unwrap();
    assert_eq!(figures(g.held()), exact(50 * 64, 50));
    drop(boxes);
    assert_eq!(figures(g.held()), exact(0, 0));
}

/// Frees inside the owner group itself, on the allocating thread and on
/// another thread that entered the group (each takes the blocks off its
/// own figures), and outside it: exact at each step.
#[test]
fn frees_inside_the_owner_group_on_any_thread_lower_what_it_holds() {
    let g = Group::new("held.own_frees");
    let mut boxes: Vec<Box<[u8; 40]>> = Vec::with_capacity(100);
    g.run(|| boxes.extend((0..100).map(|i| black_box(Box::new([i as u8; 40])))));
    assert_eq!(figures(g.held()), exact(100 * 40, 100));
    g.run(|| boxes.truncate(70));
    assert_eq!(figures(g.held()), exact(70 * 40, 70));
    let moved = boxes.split_off(40); // outside the group: no block
    std::thread::scope(|s| {
        s.spawn(|| g.run(move || drop(moved)));
    });
    assert_eq!(figures(g.held()), exact(40 * 40, 40));
    g.run(|| boxes.shrink_to_fit()); // a reallocation of the vector, which is no block of the group's
    assert_eq!(figures(g.held()), exact(40 * 40, 40));
    drop(boxes);
    assert_eq!(figures(g.held()), exact(0, 0));
}

/// Blocks allocated in one group and freed inside another count against
/// the first, and are not the second's.
#[test]
fn a_free_inside_another_group_lowers_the_owners_held_bytes_only() {
    let (maker, taker) = (Group::new("held.maker"), Group::new("held.taker"));
    let block = maker.run(|| black_box(vec![0u8; 300]));
    taker.run(|| drop(block));
    assert_eq!(figures(maker.held()), exact(0, 0));
    assert_eq!(figures(taker.held()), exact(0, 0));
    assert_eq!((maker.stats().bytes_allocated, taker.stats().bytes_freed), (300, 300), "counts stay where they happen");
}

/// A reallocation keeps its block's owner, whichever thread and group
/// reallocate it.
#[test]
fn reallocations_keep_the_blocks_owner() {
    let (g, other) = (Group::new("held.realloc"), Group::new("held.realloc_other"));
    let mut v: Vec<u8> = g.run(|| {
        let mut v = Vec::with_capacity(1);
        for i in 0..1000 {
            v.push(i as u8); // 1 -> 8 -> 16 -> ... -> 1024
        }
        v
    });
    assert_eq!(figures(g.held()), exact(1024, 1));
    v.truncate(10);
    other.run(|| v.shrink_to_fit()); // shrinks in another group
    assert_eq!(figures(g.held()), exact(10, 1));
    assert_eq!(figures(other.held()), exact(0, 0));
    let v = std::thread::spawn(move || {
        v.reserve_exact(4990); // grows on another thread, in no group
        v
    })
    .join()
    .unwrap();
    assert_eq!(figures(g.held()), exact(5000, 1));
    drop(v);
    assert_eq!(figures(g.held()), exact(0, 0));
}

/// Over-aligned and zeroed blocks keep the caller's alignment and zeros,
/// and their trailer, through growing, shrinking and moving
/// reallocations.
#[test]
fn over_aligned_and_zeroed_blocks_keep_their_alignment_and_owner() {
    let g = Group::new("held.aligned");
    for (size, align) in [(8, 16), (24, 64), (100, 128), (4096, 4096), (1, 1), (7, 8)] {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: non-zero sizes; every block is freed with its layout.
        unsafe {
            let p = g.run(|| alloc_zeroed(layout));
            assert!(!p.is_null() && (p as usize).is_multiple_of(align), "{size}/{align}");
            assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == 0), "zeroed {size}/{align}");
            std::ptr::write_bytes(p, 0xAB, size);
            assert_eq!(figures(g.held()), exact(size as u64, 1), "{size}/{align}");
            // Grow (likely moving), then shrink.
            let q = realloc(p, layout, size * 3 + 17);
            assert!(!q.is_null() && (q as usize).is_multiple_of(align));
            assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 0xAB), "kept {size}/{align}");
            assert_eq!(figures(g.held()), exact((size * 3 + 17) as u64, 1));
            let grown = Layout::from_size_align(size * 3 + 17, align).unwrap();
            let r = realloc(q, grown, size);
            assert!(!r.is_null() && (r as usize).is_multiple_of(align));
            assert_eq!(figures(g.held()), exact(size as u64, 1));
            dealloc(r, layout);
        }
        assert_eq!(figures(g.held()), exact(0, 0));
    }
    // Plain `alloc` too, outside and inside.
    let layout = Layout::from_size_align(40, 32).unwrap();
    // SAFETY: as above.
    unsafe {
        let outside = alloc(layout);
        let inside = g.run(|| alloc(layout));
        assert_eq!(figures(g.held()), exact(40, 1));
        dealloc(outside, layout);
        dealloc(inside, layout);
    }
    assert_eq!(figures(g.held()), exact(0, 0));
}

/// The trailer is in no figure the program sees.
#[test]
fn the_tag_is_in_no_figure() {
    let ((), s) = measure(|| drop(black_box(Box::new([0u8; 10]))));
    assert_eq!((s.bytes_allocated, s.bytes_freed, s.peak_bytes), (10, 10, 10));
    let g = Group::new("held.no_tag_in_stats");
    let kept = g.run(|| black_box(vec![0u8; 3]));
    assert_eq!((g.stats().bytes_allocated, g.held().bytes), (3, 3));
    drop(kept);
}

/// Tasks that move between a runtime's workers hold exactly what they
/// allocated, until it is freed elsewhere.
#[test]
fn tasks_moving_between_workers_hold_exactly_what_they_keep() {
    use allocscope::InGroup;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).build().unwrap();
    let groups: Vec<Group> = (0..64).map(|_| Group::new("held.task")).collect();
    let kept: Vec<Vec<Box<[u8; 100]>>> = rt.block_on(async {
        let tasks: Vec<_> = groups
            .iter()
            .map(|g| {
                tokio::spawn(
                    async {
                        let mut kept = Vec::with_capacity(10);
                        for i in 0..10u8 {
                            kept.push(Box::new([i; 100]));
                            drop(black_box(vec![i; 50])); // freed at once
                            tokio::task::yield_now().await;
                        }
                        kept
                    }
                    .in_group(g),
                )
            })
            .collect();
        let mut kept = Vec::new();
        for t in tasks {
            kept.push(t.await.unwrap());
        }
        kept
    });
    let before: Vec<Held> = groups.iter().map(Group::held).collect();
    drop(kept); // on this thread, in no group
    for (g, before) in groups.iter().zip(before) {
        // Ten boxes and the vector that held them left each group. (A
        // group may hold more: the runtime grows its own queues inside
        // whichever task's poll needs it first, and that memory is held by
        // the task's group, as it would be in a service.)
        let after = g.held();
        assert!(before.exact && after.exact);
        assert_eq!((before.bytes - after.bytes, before.blocks - after.blocks), (10 * 100 + 10 * 8, 11));
    }
}

/// A soft limit is read, never enforced by the allocator.
#[test]
fn a_held_limit_says_when_it_is_crossed() {
    let g = Group::new("held.limit").with_held_limit(1000);
    assert_eq!((g.held_limit(), g.headroom(), g.over_limit()), (Some(1000), Some(1000), false));
    let rows = g.run(|| black_box(vec![0u8; 1500]));
    assert_eq!((g.headroom(), g.over_limit()), (Some(0), true));
    drop(rows);
    assert_eq!((g.headroom(), g.over_limit()), (Some(1000), false));
}

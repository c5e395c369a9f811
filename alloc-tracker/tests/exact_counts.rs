//! The exact figures promised by `AllocStats`'s documentation, on the
//! calling thread, under jemalloc.
#![cfg(feature = "jemalloc")]

use std::hint::black_box;

use allocscope::{measure, CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

#[test]
fn box_of_u64_is_one_alloc_and_one_free_of_8_bytes() {
    let ((), s) = measure(|| drop(black_box(Box::new(7u64))));
    assert_eq!((s.allocs, s.deallocs, s.reallocs), (1, 1, 0));
    assert_eq!((s.bytes_allocated, s.bytes_freed), (8, 8));
    assert_eq!(s.peak_bytes, 8);
    assert_eq!(s.net_bytes(), 0);
}

#[test]
fn string_grown_by_100_pushes_reallocates_four_times() {
    let ((), s) = measure(|| {
        let mut text = String::new();
        for _ in 0..100 {
            text.push(black_box('x'));
        }
        assert_eq!(text.capacity(), 128);
        drop(text);
    });
    // Five blocks handed out, four of them by reallocation; one freed.
    assert_eq!((s.allocs, s.reallocs, s.deallocs, s.net_blocks()), (5, 4, 1, 0));
    // 8 -> 16 -> 32 -> 64 -> 128: each realloc allocates its new size and
    // frees its old one.
    assert_eq!(s.bytes_allocated, 8 + 16 + 32 + 64 + 128);
    assert_eq!(s.bytes_freed, 8 + 16 + 32 + 64 + 128);
    assert_eq!(s.peak_bytes, 128);
}

#[test]
fn zeroed_vec_is_one_alloc_of_its_size() {
    let (v, s) = measure(|| black_box(vec![0u8; 4096]));
    assert_eq!((s.allocs, s.deallocs, s.bytes_allocated), (1, 0, 4096));
    assert_eq!(s.peak_bytes, 4096);
    drop(v);
}

#[test]
fn rounded_bytes_follow_jemalloc_size_classes() {
    // jemalloc's small size classes around 100 bytes are 96, 112, 128.
    let ((), s) = measure(|| drop(black_box(Box::new([0u8; 100]))));
    assert_eq!(s.bytes_allocated, 100);
    assert_eq!(s.rounded_bytes_allocated, Some(112));
}

#[test]
fn peak_is_the_highest_live_level_above_the_start() {
    let kept = black_box(vec![0u8; 10_000]); // before the scope: not in its peak
    let ((), s) = measure(|| {
        let a = black_box(vec![0u8; 300]);
        let b = black_box(vec![0u8; 200]);
        drop(a);
        drop(b);
        drop(black_box(vec![0u8; 400]));
    });
    assert_eq!(s.bytes_allocated, 900);
    assert_eq!(s.peak_bytes, 500);
    drop(kept);
}

#[test]
fn nested_scopes_each_get_their_own_peak_and_the_outer_sees_the_inner() {
    let ((inner, after_inner), outer) = measure(|| {
        let ((), inner) = measure(|| drop(black_box(vec![0u8; 1000])));
        let ((), after_inner) = measure(|| drop(black_box(vec![0u8; 10])));
        (inner, after_inner)
    });
    assert_eq!(inner.peak_bytes, 1000);
    assert_eq!(after_inner.peak_bytes, 10);
    assert_eq!(outer.peak_bytes, 1000);
    assert_eq!(outer.allocs, 2);
}

#[test]
fn freeing_what_was_allocated_before_the_scope_counts_negative_net() {
    let v = black_box(vec![0u8; 640]);
    let ((), s) = measure(|| drop(v));
    assert_eq!((s.allocs, s.deallocs, s.bytes_freed), (0, 1, 640));
    assert_eq!(s.net_bytes(), -640);
    assert_eq!(s.peak_bytes, 0);
}

#[test]
fn snapshot_difference_matches_a_scope() {
    let before = allocscope::thread_stats();
    let v = black_box(vec![1u64; 32]);
    let d = allocscope::thread_stats() - before;
    assert_eq!((d.allocs, d.bytes_allocated), (1, 256));
    assert_eq!(d.rounded_bytes_allocated, Some(256));
    drop(v);
}

#[test]
fn rounded_bytes_leave_out_the_librarys_own_blocks() {
    // A thread's first entry into a group makes the thread's shard of it
    // (the library's own block, 128 bytes): inside the scope, but in none
    // of its figures, rounded bytes included.
    std::thread::spawn(|| {
        let g = allocscope::Group::new("exact.rounded");
        for entry in ["first", "second"] {
            let ((), s) = measure(|| g.run(|| drop(black_box(Box::new([0u8; 100])))));
            assert_eq!((s.allocs, s.bytes_allocated), (1, 100), "{entry} entry");
            assert_eq!(s.rounded_bytes_allocated, Some(112), "{entry} entry");
        }
        // And a group made inside the scope, with its first entry.
        let ((), s) = measure(|| allocscope::Group::new("exact.rounded_new").run(|| drop(black_box(vec![0u8; 100]))));
        assert_eq!(s.rounded_bytes_allocated, Some(112));
    })
    .join()
    .unwrap();
}

//! allocscope counts exactly over the application's own tikv-jemallocator
//! 0.6, and reads jemalloc's rounded bytes and statistics through that
//! jemalloc's `mallctl`.

use std::hint::black_box;

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<tikv_jemallocator::Jemalloc> =
    allocscope::CountingAlloc::new(tikv_jemallocator::Jemalloc);

fn hand_over_mallctl() {
    // SAFETY: tikv-jemalloc-sys 0.6 is the jemalloc under tikv-jemallocator
    // 0.6, the global allocator.
    unsafe { allocscope::jemalloc::use_jemalloc_mallctl(tikv_jemalloc_sys::mallctl) };
}

#[test]
fn counts_are_exact_over_tikv_jemallocator_0_6() {
    let ((), s) = allocscope::measure(|| {
        let mut text = String::new();
        for _ in 0..100 {
            text.push(black_box('x'));
        }
        drop(text);
    });
    assert_eq!((s.allocs, s.reallocs, s.deallocs), (5, 4, 1), "one allocation and four reallocations");
    assert_eq!(s.bytes_allocated, 8 + 16 + 32 + 64 + 128);
}

#[test]
fn jemalloc_figures_come_through_the_applications_mallctl() {
    hand_over_mallctl();
    // jemalloc's small size classes around 100 bytes are 96, 112, 128.
    let ((), s) = allocscope::measure(|| drop(black_box(Box::new([0u8; 100]))));
    assert_eq!((s.bytes_allocated, s.rounded_bytes_allocated), (100, Some(112)));
    let stats = allocscope::jemalloc::JemallocStats::read().expect("jemalloc 0.6 answers");
    assert!(stats.allocated > 0 && stats.allocated <= stats.active && stats.active <= stats.resident, "{stats:?}");
}

//! A thread scope sees only its own thread, however busy the others are.
#![cfg(feature = "jemalloc")]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use allocscope::{measure, CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

#[test]
fn background_threads_never_leak_into_a_thread_scope() {
    let stop = Arc::new(AtomicBool::new(false));
    let progress: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let noisy: Vec<_> = (0..2)
        .map(|t| {
            let (stop, progress) = (Arc::clone(&stop), Arc::clone(&progress));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    drop(black_box(vec![0u8; 24]));
                    progress[t].fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Measure only once both background threads are allocating.
    while progress.iter().any(|p| p.load(Ordering::Relaxed) == 0) {
        std::hint::spin_loop();
    }

    let at_start: Vec<u64> = progress.iter().map(|p| p.load(Ordering::Relaxed)).collect();
    let ((), s) = measure(|| {
        for i in 0..1_000u64 {
            drop(black_box(Box::new(i)));
        }
        // Keep the window open until each background thread has allocated
        // inside it too.
        while progress.iter().zip(&at_start).any(|(p, &s)| p.load(Ordering::Relaxed) < s + 100) {
            std::hint::spin_loop();
        }
    });

    stop.store(true, Ordering::Relaxed);
    for t in noisy {
        t.join().unwrap();
    }
    assert_eq!((s.allocs, s.deallocs, s.reallocs), (1_000, 1_000, 0));
    assert_eq!((s.bytes_allocated, s.bytes_freed), (8_000, 8_000));
}

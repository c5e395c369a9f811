//! A snapshot knows whose it is: subtracting snapshots of different threads
//! (a task that moved to another worker thread at an `.await`), or a
//! thread's from the process's, is refused instead of giving a wrapped
//! figure like 18446744073709551613 allocations.

use std::hint::black_box;
use std::panic::catch_unwind;

use allocscope::{process_stats, thread_stats, CountingAlloc};

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let payload = catch_unwind(f).expect_err("must refuse");
    payload.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn snapshots_of_one_thread_subtract() {
    let before = thread_stats();
    let v = black_box(vec![0u8; 100]);
    let after = thread_stats();
    let d = after.checked_sub(&before).expect("same thread");
    assert_eq!((d.allocs, d.bytes_allocated), (1, 100));
    assert_eq!(after - before, d);
    let p = process_stats();
    assert!((process_stats() - p).allocs < 1_000_000);
    drop(v);
}

#[test]
fn snapshots_of_different_threads_are_refused() {
    let before = thread_stats();
    // The "after" of a task that resumed on another worker thread.
    let after = std::thread::spawn(|| {
        drop(black_box(vec![0u8; 8]));
        thread_stats()
    })
    .join()
    .unwrap();
    assert_eq!(after.checked_sub(&before), None);
    let msg = panic_message(|| {
        let _ = after - before;
    });
    assert!(msg.starts_with("allocscope: cannot subtract a snapshot of thread #"), "{msg}");
    assert!(msg.contains("Group"), "says what to use instead: {msg}");
}

#[test]
fn a_thread_snapshot_and_a_process_snapshot_are_refused() {
    let t = thread_stats();
    let p = process_stats();
    assert_eq!(p.checked_sub(&t), None);
    assert_eq!(t.checked_sub(&p), None);
    let msg = panic_message(|| {
        let _ = p - t;
    });
    assert!(msg.contains("from a snapshot of the process"), "{msg}");
}

#[test]
fn a_later_before_is_refused_rather_than_wrapped() {
    let early = thread_stats();
    drop(black_box(Box::new(1u64)));
    let late = thread_stats();
    assert_eq!(early.checked_sub(&late), None);
    let msg = panic_message(|| {
        let _ = early - late;
    });
    assert!(msg.contains("was `before` taken later?"), "{msg}");
}

#[test]
fn live_bytes_name_a_snapshots_live_figure() {
    let before = thread_stats().net_bytes();
    let kept = black_box(vec![0u8; 3000]);
    assert_eq!(thread_stats().net_bytes() - before, 3000);
    let p = process_stats();
    assert!(p.peak_bytes as i64 >= p.net_bytes(), "the process peak seen is at least the live bytes now");
    drop(kept);
}

//! Process-wide sampling: one call (or ALLOCSCOPE_SAMPLE_RATE at start-up)
//! samples every thread, runtime workers included, and frees made on any
//! thread take their blocks out of the live figures. Its own process: the
//! rate and the profile are process-wide.
#![cfg(feature = "jemalloc")]

use std::hint::black_box;
use std::process::Command;

use allocscope::profile::{heap_profile, HeapProfile};
use allocscope::{CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

/// Samples and live bytes at sites whose innermost frame is `function`.
fn at(profile: &HeapProfile, function: &str) -> (u64, f64) {
    profile
        .sites
        .iter()
        .zip(profile.user_frames())
        .filter(|(_, frames)| frames.first().is_some_and(|f| f.name.ends_with(function)))
        .fold((0, 0.0), |(n, live), (s, _)| (n + s.samples, live + s.held_bytes))
}

#[inline(never)]
fn on_a_later_thread() -> Vec<u8> {
    black_box(vec![1u8; 1000])
}

#[inline(never)]
fn on_a_worker(i: u64) -> Box<[u64; 16]> {
    black_box(Box::new([i; 16]))
}

#[inline(never)]
fn after_stopping() -> Vec<u8> {
    black_box(vec![2u8; 1000])
}

#[inline(never)]
fn from_the_environment() -> Vec<u8> {
    black_box(vec![3u8; 100])
}

#[test]
fn every_thread_samples_and_frees_anywhere_are_matched() {
    allocscope::profile::start_process_sampling(1);
    assert_eq!(allocscope::profile::process_sample_rate(), 1);

    // A thread started after the call.
    let kept = std::thread::spawn(on_a_later_thread).join().unwrap();
    assert_eq!(at(&heap_profile(), "on_a_later_thread"), (1, 1000.0));
    drop(kept); // freed on this thread, which samples too

    // A tokio runtime's workers; the boxes are freed on whichever worker.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).build().unwrap();
    let boxes = rt.block_on(async {
        let tasks: Vec<_> = (0..64).map(|i| tokio::spawn(async move { on_a_worker(i) })).collect();
        let mut boxes = Vec::new();
        for t in tasks {
            boxes.push(t.await.unwrap());
        }
        boxes
    });
    assert_eq!(at(&heap_profile(), "on_a_worker"), (64, 64.0 * 128.0));
    rt.block_on(async move {
        tokio::spawn(async move { drop(boxes) }).await.unwrap();
    });
    drop(rt);

    allocscope::profile::stop_process_sampling();
    assert_eq!(allocscope::profile::process_sample_rate(), 0);
    let profile = heap_profile();
    assert_eq!(at(&profile, "on_a_later_thread").1, 0.0, "its free, on another thread, was matched");
    assert_eq!(at(&profile, "on_a_worker").1, 0.0, "freed on a worker: matched");
    let not_sampled = std::thread::spawn(after_stopping).join().unwrap();
    assert_eq!(at(&heap_profile(), "after_stopping").0, 0);
    drop(not_sampled);
}

/// Run in a child process with `ALLOCSCOPE_SAMPLE_RATE=1`: the variable
/// alone samples the main thread from the start.
#[test]
fn the_environment_variable_samples_from_the_start() {
    if std::env::var_os("ALLOCSCOPE_TEST_CHILD").is_some() {
        assert_eq!(allocscope::profile::process_sample_rate(), 1);
        let v = from_the_environment();
        assert_eq!(at(&heap_profile(), "from_the_environment"), (1, 100.0));
        drop(v);
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "the_environment_variable_samples_from_the_start", "--nocapture", "--test-threads", "1"])
        .env("ALLOCSCOPE_SAMPLE_RATE", "1")
        .env("ALLOCSCOPE_TEST_CHILD", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
}

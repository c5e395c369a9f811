//! A `fork` without `exec` from a process whose threads read process
//! totals, exit, sample, look up named groups, take snapshots, fail budgets
//! (resolving the site's symbols) and write profiles all the time: the
//! child must not inherit a registry or profile state that another thread
//! would have taken back (a reader's or an exiting thread's count, a
//! half-written slot), nor a lock another thread held, or it hangs. Each
//! child does all of it and exits; the parent gives it 10 seconds.
#![cfg(unix)]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use allocscope::CountingAlloc;

#[path = "support/forked.rs"]
mod forked;

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

/// Allocations whose stacks differ with `depth`, so that sampling keeps
/// writing new stack slots.
#[inline(never)]
fn nested(depth: u32) -> usize {
    if depth == 0 {
        return black_box(vec![0u8; 48]).len();
    }
    nested(depth - 1) + black_box(Box::new(depth)).as_ref().to_owned() as usize
}

/// A budget that fails, and its message, whose site is resolved to symbols.
fn failing_budget_message() -> String {
    let err = allocscope::Budget::new().max_allocs(0).check(|| nested(2)).unwrap_err();
    err.to_string()
}

/// What a child does: read the totals, start and join a thread (its exit
/// hook waits for readers), sample new stacks, read and write the profile,
/// count in a named group, take a snapshot, fail a budget.
fn child() -> ! {
    let before = allocscope::process_stats();
    std::thread::spawn(|| drop(black_box(vec![0u8; 100]))).join().unwrap();
    allocscope::profile::start_thread_sampling(1);
    for depth in 0..20 {
        nested(depth);
    }
    allocscope::profile::stop_thread_sampling();
    let grown = (allocscope::process_stats() - before).allocs > 0;
    let profile = allocscope::profile::heap_profile();
    let sampled = profile.total_allocs() > 0.0 && profile.folded().contains("nested");
    let group = allocscope::Group::listed("fork.child");
    group.run(|| drop(black_box(vec![0u8; 10])));
    let counted = group.stats().bytes_allocated >= 10;
    let snapshot = allocscope::serve::snapshot().groups.iter().any(|g| g.name == "fork.child");
    let failed = failing_budget_message().contains("nested");
    let sampled = sampled && counted && snapshot && failed;
    // SAFETY: `_exit` ends the child at once, without running the parent's
    // atexit handlers or destructors.
    unsafe { libc::_exit(if grown && sampled { 0 } else { 3 }) }
}

#[test]
fn a_child_forked_while_other_threads_use_every_part_of_the_library_does_not_hang() {
    let stop = Arc::new(AtomicBool::new(false));
    let mut busy = Vec::new();
    // Readers: `process_stats` in a loop (a reader's count in READERS).
    for _ in 0..2 {
        let stop = Arc::clone(&stop);
        busy.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                black_box(allocscope::process_stats());
            }
        }));
    }
    // Exits: short threads, one after another (EXITING during their hooks).
    let churn = Arc::clone(&stop);
    busy.push(std::thread::spawn(move || {
        while !churn.load(Ordering::Relaxed) {
            std::thread::spawn(|| drop(black_box(vec![0u8; 64]))).join().unwrap();
        }
    }));
    // Sampling: new stacks written all the time.
    let sampler = Arc::clone(&stop);
    busy.push(std::thread::spawn(move || {
        allocscope::profile::start_thread_sampling(1);
        let mut depth = 0;
        while !sampler.load(Ordering::Relaxed) {
            nested(depth % 40);
            depth += 1;
        }
        allocscope::profile::stop_thread_sampling();
    }));

    // Named groups looked up and made, snapshots taken.
    let lookups = Arc::clone(&stop);
    busy.push(std::thread::spawn(move || {
        let names = ["fork.a", "fork.b", "fork.c", "fork.d"];
        let mut i = 0;
        while !lookups.load(Ordering::Relaxed) {
            allocscope::Group::listed(names[i % names.len()]).run(|| drop(black_box(vec![0u8; 16])));
            black_box(allocscope::serve::snapshot());
            i += 1;
        }
    }));
    // Budgets failing and profiles written: symbols resolved all the time.
    let symbols = Arc::clone(&stop);
    busy.push(std::thread::spawn(move || {
        while !symbols.load(Ordering::Relaxed) {
            black_box(failing_budget_message());
            black_box(allocscope::profile::heap_profile().folded());
        }
    }));

    let forks = if cfg!(miri) { 1 } else { 40 };
    let mut hung = 0;
    for _ in 0..forks {
        std::thread::sleep(Duration::from_millis(2));
        // SAFETY: the child only calls allocscope and the C library, then
        // `_exit`s; the parent waits for it below.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            child();
        }
        match forked::wait_at_most(pid, Duration::from_secs(10)) {
            Some(status) => {
                assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child status {status:#x}")
            }
            None => hung += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in busy {
        t.join().unwrap();
    }
    assert_eq!(hung, 0, "{hung} of {forks} children hung");
}

//! A child forked while an application thread holds the `backtrace`
//! crate's global lock (its own `Backtrace::new()`, a panic hook, a logger
//! in the middle of a backtrace) writes a heap profile and names a failed
//! budget's site: the library's stack walking and symbol resolution take
//! only its own, fork-aware lock. Before, every such child hung for ever.
#![cfg(target_os = "linux")]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use allocscope::CountingAlloc;

#[path = "support/forked.rs"]
mod forked;

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

#[inline(never)]
fn made_in_the_child() -> usize {
    black_box(vec![0u8; 48]).len() + black_box(Box::new(7u64)).as_ref().to_owned() as usize
}

/// What the child does: samples, writes the profile with its symbols, and
/// fails a budget whose message names the site; exit status 0 when both
/// name `made_in_the_child`.
fn child() -> ! {
    allocscope::profile::start_thread_sampling(1);
    made_in_the_child();
    allocscope::profile::stop_thread_sampling();
    let profile = allocscope::profile::heap_profile();
    let named = profile.folded().contains("made_in_the_child");
    let budget = allocscope::Budget::new().max_allocs(0).check(made_in_the_child).unwrap_err().to_string();
    let sited = budget.contains("made_in_the_child");
    // SAFETY: `_exit` ends the child at once, without the parent's atexit
    // handlers or destructors.
    unsafe { libc::_exit(if named && sited { 0 } else { 3 }) }
}

#[test]
fn a_child_forked_while_the_application_holds_backtraces_lock_writes_a_profile_and_names_a_site() {
    let (held, release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let holder = {
        let (held, release) = (Arc::clone(&held), Arc::clone(&release));
        // The application's thread: `backtrace::trace` holds the crate's
        // lock while its callback runs.
        std::thread::spawn(move || {
            backtrace::trace(|_| {
                held.store(true, Ordering::Release);
                while !release.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                false
            })
        })
    };
    while !held.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        // SAFETY: the child calls allocscope and the C library only, then
        // `_exit`s; the parent waits for it below.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            child();
        }
        outcomes.push(
            forked::wait_at_most(pid, Duration::from_secs(10)).map(|s| libc::WIFEXITED(s) && libc::WEXITSTATUS(s) == 0),
        );
    }
    release.store(true, Ordering::Release);
    holder.join().unwrap();
    assert_eq!(
        outcomes,
        vec![Some(true); 5],
        "None: the child hung (killed after 10 s); false: it could not name the site"
    );
}

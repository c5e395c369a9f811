//! The canary of the CI step that runs the owner-tag and group tests over
//! jemalloc built with its debug assertions (`--features
//! tikv-jemalloc-sys/debug`): there, a sized free of the wrong size class
//! aborts the process, so a wrong size that allocscope handed jemalloc
//! would fail those tests. Ignored elsewhere (a release jemalloc does not
//! check, and the process would corrupt its heap): `.ci/run` runs it with
//! `--ignored` in that step only.
#![cfg(all(feature = "jemalloc", unix))]

use allocscope::{CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

#[test]
#[ignore = "only with jemalloc's debug assertions (tikv-jemalloc-sys/debug): see .ci/run"]
fn a_sized_free_of_the_wrong_size_aborts_under_jemallocs_debug_assertions() {
    // SAFETY: the child calls jemalloc and `_exit` only; the parent waits
    // for it.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: not safe on purpose: a block of 16 bytes freed as if it
        // were 4096 (the defect the check exists for), in a process of its
        // own that ends at once.
        unsafe {
            let p = tikv_jemalloc_sys::malloc(16);
            tikv_jemalloc_sys::sdallocx(p, 4096, 0);
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: our own child; `status` is a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGABRT,
        "the child was not aborted (status {status:#x}): this jemalloc does not check sized frees"
    );
}

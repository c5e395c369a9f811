//! Waiting for a forked child with a deadline, for the fork tests.

use std::time::{Duration, Instant};

/// Waits up to `limit` for the child `pid`: its wait status, or `None`
/// when it hung (it is killed and reaped then).
pub fn wait_at_most(pid: libc::pid_t, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    let mut status = 0;
    loop {
        // SAFETY: `pid` is the caller's child; `status` is a valid
        // out-pointer.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            return Some(status);
        }
        if Instant::now() > deadline {
            // SAFETY: the caller's own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

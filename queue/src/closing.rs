//! Closing a queue whose transport cannot be closed itself (a channel we
//! keep both ends of, a lock-free ring), without losing a message that a
//! producer pushes while the queue closes; and waiting for such a transport.
//!
//! A producer announces itself (`inflight += 1`) before it checks the
//! closed flag and withdraws after its push. A consumer reports "closed"
//! only when the flag is set, no producer is in flight and the transport is
//! empty. With sequentially consistent operations, a producer either sees
//! the flag (and gives up without pushing) or is seen in flight (and the
//! consumer waits for its message).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crossbeam_utils::{Backoff, CachePadded};

use crate::QueueError;

#[derive(Debug, Default)]
pub(crate) struct Closing {
    closed: AtomicBool,
    /// On a cache line of its own: every enqueue writes it twice, and a
    /// consumer reading a neighbouring field (the channel's receiver, the
    /// ring's slots) would otherwise pull the line across cores each time
    /// (measured: the two writes were 17 % of `pooled`'s threads mode).
    inflight: CachePadded<AtomicUsize>,
}

/// A producer in flight; withdraws on drop.
pub(crate) struct InFlight<'a>(&'a Closing);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Closing {
    /// Announces a producer; fails if the queue is closed.
    pub(crate) fn enter(&self) -> Result<InFlight<'_>, QueueError> {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(self);
        if self.closed.load(Ordering::SeqCst) {
            return Err(QueueError::Closed);
        }
        Ok(guard)
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Closed, no producer in flight, and `is_empty` holds: nothing more
    /// can arrive.
    pub(crate) fn finished(&self, is_empty: impl Fn() -> bool) -> bool {
        self.is_closed() && self.inflight.load(Ordering::SeqCst) == 0 && is_empty()
    }
}

/// Blocking for a lock-free transport: spin and yield briefly
/// (`crossbeam_utils::Backoff`), then sleep on a condition variable.
///
/// Sleepers wake when notified, and at the latest after
/// [`Signal::MAX_SLEEP`]: `notify` reads the sleeper count without a fence
/// (a fence on every message would cost more than it saves), so a wake-up
/// that races with a sleeper going to sleep can be missed, and the timeout
/// bounds the delay that causes.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
    /// Calls that found the condition false at first and had to wait.
    waits: AtomicU64,
    /// Condition-variable sleeps (each ends in a wake-up or the timeout).
    sleeps: AtomicU64,
}

impl Signal {
    pub(crate) const MAX_SLEEP: Duration = Duration::from_millis(1);

    /// Returns once `ready()` returns `Some`, with that value.
    pub(crate) fn wait_for<T>(&self, mut ready: impl FnMut() -> Option<T>) -> T {
        if let Some(v) = ready() {
            return v;
        }
        // Counted only once a call has to wait, so the common case pays
        // nothing for it.
        self.waits.fetch_add(1, Ordering::Relaxed);
        let backoff = Backoff::new();
        loop {
            backoff.snooze();
            if let Some(v) = ready() {
                return v;
            }
            if backoff.is_completed() {
                break;
            }
        }
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let v = loop {
            if let Some(v) = ready() {
                break v;
            }
            self.sleeps.fetch_add(1, Ordering::Relaxed);
            guard = self.cv.wait_timeout(guard, Self::MAX_SLEEP).unwrap_or_else(|e| e.into_inner()).0;
        };
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        v
    }

    /// (waits, sleeps) so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.waits.load(Ordering::Relaxed), self.sleeps.load(Ordering::Relaxed))
    }

    pub(crate) fn notify(&self) {
        if self.sleepers.load(Ordering::Relaxed) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.cv.notify_all();
        }
    }
}

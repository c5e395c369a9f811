//! The recycling pool: message objects with their buffers, handed out and
//! taken back, under the crate's one recycling policy
//! ([`crate::recycling`]: create once, clear on reuse, cap the retained
//! capacity).
//!
//! - [`Pool::take`] pops a retained message (or creates one: an allocation)
//!   and copies the producer's message into its buffers, which allocates
//!   nothing unless the payload is larger than the buffer.
//! - [`PooledMessage`] returns the message when dropped: the Go code's
//!   `Get`/`defer Put` pairing, enforced by the type system.
//! - A message whose buffers grew past [`PoolConfig::retention_factor`] times
//!   their initial capacity is freed instead of retained, so one oversized
//!   payload does not pin its memory forever.
//! - At most [`PoolConfig::max_retained`] messages are retained; the pool
//!   frees the rest. It never grows without bound.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use crate::recycling::Recycling;
use crate::{Message, MessageRef};

/// How a [`Pool`] sizes its messages and what it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Initial capacity of a new message's id buffer. Default 32.
    pub id_capacity: usize,
    /// Initial capacity of a new message's payload buffer. Default 64.
    pub payload_capacity: usize,
    /// A returned message is freed instead of retained when a buffer's
    /// capacity exceeds this many times its initial capacity. Default 4, the
    /// source material's rule.
    pub retention_factor: usize,
    /// The most messages the pool retains. Default 4096; must cover the
    /// queue's capacity plus the messages producers and consumers hold, or
    /// the steady state allocates.
    pub max_retained: usize,
    /// Messages created when the pool is built (at most `max_retained`), so
    /// that the steady state starts at once instead of after the pool has
    /// grown to the queue's working set. Default 0.
    pub prefill: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig { id_capacity: 32, payload_capacity: 64, retention_factor: 4, max_retained: 4096, prefill: 0 }
    }
}

/// What a pool did, for tests and reports. Counted only on the rare paths
/// (creation and discarding), so that counting costs nothing per message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Messages created because the pool was empty (each one allocation of
    /// two buffers).
    pub created: u64,
    /// Returned messages freed because a buffer outgrew the retention cap.
    pub discarded_oversize: u64,
    /// Returned messages freed because the pool already held `max_retained`.
    pub discarded_full: u64,
    /// Messages retained now.
    pub retained: usize,
}

/// A bounded pool of reusable [`Message`]s.
///
/// # Examples
///
/// ```
/// use queue::{MessageRef, Pool, PoolConfig};
///
/// let pool = Pool::new(PoolConfig::default());
/// let m = pool.take(&MessageRef { id: "a", payload: b"xyz", seq: 1, stamp_ns: 0 });
/// assert_eq!(m.payload(), b"xyz");
/// drop(m); // back to the pool
/// let again = pool.take(&MessageRef { id: "b", payload: b"", seq: 2, stamp_ns: 0 });
/// assert_eq!(pool.stats().created, 1, "the first message was reused");
/// # drop(again);
/// ```
pub struct Pool {
    free: ArrayQueue<Message>,
    config: PoolConfig,
    recycling: Recycling,
    created: AtomicU64,
    discarded_oversize: AtomicU64,
    discarded_full: AtomicU64,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("config", &self.config).field("stats", &self.stats()).finish()
    }
}

impl Pool {
    /// A pool holding `config.prefill` new messages (counted as created).
    ///
    /// # Panics
    ///
    /// If `config.max_retained` is zero.
    pub fn new(config: PoolConfig) -> Pool {
        assert!(config.max_retained > 0, "PoolConfig::max_retained must be at least 1");
        let pool = Pool {
            free: ArrayQueue::new(config.max_retained),
            config,
            recycling: Recycling::new(&config),
            created: AtomicU64::new(0),
            discarded_oversize: AtomicU64::new(0),
            discarded_full: AtomicU64::new(0),
        };
        for _ in 0..config.prefill.min(config.max_retained) {
            pool.give_back(pool.create());
        }
        pool
    }

    fn create(&self) -> Message {
        self.created.fetch_add(1, Ordering::Relaxed);
        self.recycling.new_message()
    }

    /// The configuration.
    pub fn config(&self) -> PoolConfig {
        self.config
    }

    /// A message from the pool (or a new one) holding a copy of `m`.
    pub fn take(&self, m: &MessageRef<'_>) -> PooledMessage<'_> {
        let mut msg = self.free.pop().unwrap_or_else(|| self.create());
        msg.copy_from(m);
        PooledMessage { msg, pool: self }
    }

    /// Wraps a message taken out of this pool (with
    /// [`PooledMessage::into_inner`]) so that it comes back when dropped.
    pub fn lend(&self, msg: Message) -> PooledMessage<'_> {
        PooledMessage { msg, pool: self }
    }

    /// Takes `msg` back: retained if its buffers are within the cap and the
    /// pool has room, freed otherwise.
    pub fn give_back(&self, msg: Message) {
        if !self.recycling.keeps(&msg) {
            self.discarded_oversize.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.free.push(msg).is_err() {
            self.discarded_full.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The pool's figures so far.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            created: self.created.load(Ordering::Relaxed),
            discarded_oversize: self.discarded_oversize.load(Ordering::Relaxed),
            discarded_full: self.discarded_full.load(Ordering::Relaxed),
            retained: self.free.len(),
        }
    }
}

/// A message on loan from a [`Pool`]; dropping it gives it back.
pub struct PooledMessage<'p> {
    msg: Message,
    pool: &'p Pool,
}

impl PooledMessage<'_> {
    /// Takes the message off loan: it will not return to the pool unless
    /// handed back with [`Pool::give_back`] or re-wrapped with [`Pool::lend`]
    /// (the queues move messages through their transport this way).
    pub fn into_inner(mut self) -> Message {
        std::mem::take(&mut self.msg)
    }
}

impl Deref for PooledMessage<'_> {
    type Target = Message;

    fn deref(&self) -> &Message {
        &self.msg
    }
}

impl Drop for PooledMessage<'_> {
    fn drop(&mut self) {
        let msg = std::mem::take(&mut self.msg);
        // `into_inner` leaves an empty message with no buffers: nothing to
        // give back.
        if msg.capacities() != (0, 0) {
            self.pool.give_back(msg);
        }
    }
}

impl fmt::Debug for PooledMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.msg.fmt(f)
    }
}

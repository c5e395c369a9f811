//! [`Batched`]: pooled messages through a mutex-guarded ring whose batch
//! operations take the lock once per batch, amortising the synchronisation
//! that single operations pay per message (the source material's "batch
//! operations"). Single operations work too. Steady state: 0 allocations
//! per message.
//!
//! Producers and consumers wait on condition variables, and are notified
//! only when someone waits (a notification is a system call).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::{Message, MessageRef, Pool, PoolStats, PooledMessage, Queue, QueueConfig, QueueError};

#[derive(Debug)]
struct Ring {
    items: VecDeque<Box<Message>>,
    closed: bool,
    waiting_producers: usize,
    waiting_consumers: usize,
}

/// Pooled messages through a locked ring with batch operations. See the
/// [module docs](self).
///
/// # Examples
///
/// ```
/// use queue::{Batched, MessageRef, Queue, QueueConfig};
///
/// let q = Batched::new(QueueConfig::default());
/// let batch: Vec<MessageRef> =
///     (0..8).map(|seq| MessageRef { id: "id", payload: b"data", seq, stamp_ns: 0 }).collect();
/// assert_eq!(q.enqueue_batch(&batch), Ok(8));
/// let mut out = Vec::with_capacity(16);
/// assert_eq!(q.dequeue_batch(&mut out, 16), Ok(8));
/// assert_eq!(out.iter().map(|m| m.seq()).collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
/// ```
#[derive(Debug)]
pub struct Batched {
    ring: Mutex<Ring>,
    not_empty: Condvar,
    not_full: Condvar,
    pool: Pool,
    capacity: usize,
}

impl Batched {
    /// An empty queue with an empty pool. The ring's storage is allocated
    /// here, once.
    ///
    /// # Panics
    ///
    /// If `config.capacity` or `config.pool.max_retained` is zero.
    pub fn new(config: QueueConfig) -> Batched {
        assert!(config.capacity > 0, "QueueConfig::capacity must be at least 1");
        Batched {
            ring: Mutex::new(Ring {
                items: VecDeque::with_capacity(config.capacity),
                closed: false,
                waiting_producers: 0,
                waiting_consumers: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            pool: Pool::new(config.pool),
            capacity: config.capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // A panic while holding the lock cannot leave the ring inconsistent:
        // every critical section is a sequence of single `VecDeque` calls.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until there is room (or the queue closed).
    fn lock_with_room(&self) -> MutexGuard<'_, Ring> {
        let mut ring = self.lock();
        while ring.items.len() == self.capacity && !ring.closed {
            ring.waiting_producers += 1;
            ring = self.not_full.wait(ring).unwrap_or_else(|e| e.into_inner());
            ring.waiting_producers -= 1;
        }
        ring
    }

    /// Waits until there is a message (or the queue closed).
    fn lock_with_message(&self) -> MutexGuard<'_, Ring> {
        let mut ring = self.lock();
        while ring.items.is_empty() && !ring.closed {
            ring.waiting_consumers += 1;
            ring = self.not_empty.wait(ring).unwrap_or_else(|e| e.into_inner());
            ring.waiting_consumers -= 1;
        }
        ring
    }

    fn push(&self, ring: &mut Ring, msg: &MessageRef<'_>) {
        ring.items.push_back(self.pool.take(msg).into_inner());
    }

    fn pushed(&self, ring: MutexGuard<'_, Ring>) {
        let wake = ring.waiting_consumers > 0;
        drop(ring);
        if wake {
            self.not_empty.notify_all();
        }
    }

    fn popped(&self, ring: MutexGuard<'_, Ring>) {
        let wake = ring.waiting_producers > 0;
        drop(ring);
        if wake {
            self.not_full.notify_all();
        }
    }
}

impl Queue for Batched {
    type Received<'q> = PooledMessage<'q>;

    /// 64 messages per lock: enough to amortise the lock and the wake-up
    /// to a few nanoseconds per message, small enough to stay in cache.
    const BATCH: usize = 64;

    fn from_config(config: QueueConfig) -> Batched {
        Batched::new(config)
    }

    fn name(&self) -> &'static str {
        "batched"
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn enqueue(&self, msg: &MessageRef<'_>) -> Result<(), QueueError> {
        let mut ring = self.lock_with_room();
        if ring.closed {
            return Err(QueueError::Closed);
        }
        self.push(&mut ring, msg);
        self.pushed(ring);
        Ok(())
    }

    fn try_enqueue(&self, msg: &MessageRef<'_>) -> Result<(), QueueError> {
        let mut ring = self.lock();
        if ring.closed {
            return Err(QueueError::Closed);
        }
        if ring.items.len() == self.capacity {
            return Err(QueueError::Full);
        }
        self.push(&mut ring, msg);
        self.pushed(ring);
        Ok(())
    }

    fn enqueue_batch(&self, msgs: &[MessageRef<'_>]) -> Result<usize, QueueError> {
        let mut done = 0;
        while done < msgs.len() {
            let mut ring = self.lock_with_room();
            if ring.closed {
                return if done == 0 { Err(QueueError::Closed) } else { Ok(done) };
            }
            let room = self.capacity - ring.items.len();
            let chunk = &msgs[done..msgs.len().min(done + room)];
            self.pool.take_each(chunk, |m| ring.items.push_back(m));
            done += chunk.len();
            self.pushed(ring);
        }
        Ok(done)
    }

    fn dequeue(&self) -> Result<PooledMessage<'_>, QueueError> {
        let mut ring = self.lock_with_message();
        let m = ring.items.pop_front().ok_or(QueueError::Closed)?;
        self.popped(ring);
        Ok(self.pool.lend(m))
    }

    fn try_dequeue(&self) -> Result<PooledMessage<'_>, QueueError> {
        let mut ring = self.lock();
        match ring.items.pop_front() {
            Some(m) => {
                self.popped(ring);
                Ok(self.pool.lend(m))
            }
            None if ring.closed => Err(QueueError::Closed),
            None => Err(QueueError::Empty),
        }
    }

    fn dequeue_batch<'q>(&'q self, out: &mut Vec<PooledMessage<'q>>, max: usize) -> Result<usize, QueueError> {
        if max == 0 {
            return Ok(0);
        }
        let mut ring = self.lock_with_message();
        let n = ring.items.len().min(max);
        if n == 0 {
            return Err(QueueError::Closed);
        }
        out.extend(ring.items.drain(..n).map(|m| self.pool.lend(m)));
        self.popped(ring);
        Ok(n)
    }

    fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn len(&self) -> usize {
        self.lock().items.len()
    }

    fn pool_stats(&self) -> Option<PoolStats> {
        Some(self.pool.stats())
    }
}

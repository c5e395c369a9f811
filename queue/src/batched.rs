//! [`Batched`]: pooled messages through a mutex-guarded ring whose batch
//! operations take the lock once per batch, amortising the synchronisation
//! that single operations pay per message (the source material's "batch
//! operations"). Single operations work too. Steady state: 0 allocations
//! per message.
//!
//! Producers and consumers that find the ring full or empty spin and yield
//! briefly, then wait on condition variables, and are notified only when
//! someone waits (a notification is a system call).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

use crossbeam_utils::Backoff;

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

    /// Locks the ring once `ready` holds, spinning and yielding briefly
    /// (`crossbeam_utils::Backoff`) before the caller sleeps on a condition
    /// variable: the other side usually makes it true within microseconds,
    /// and a sleep costs both sides a system call.
    fn lock_when(&self, ready: impl Fn(&Ring) -> bool) -> MutexGuard<'_, Ring> {
        let backoff = Backoff::new();
        loop {
            let ring = self.lock();
            if ready(&ring) || backoff.is_completed() {
                return ring;
            }
            drop(ring);
            backoff.snooze();
        }
    }

    /// Waits until there is room (or the queue closed).
    fn lock_with_room(&self) -> MutexGuard<'_, Ring> {
        let mut ring = self.lock_when(|r| r.items.len() < self.capacity || r.closed);
        while ring.items.len() == self.capacity && !ring.closed {
            ring.waiting_producers += 1;
            ring = self.not_full.wait(ring).unwrap_or_else(|e| e.into_inner());
            ring.waiting_producers -= 1;
        }
        ring
    }

    /// Waits until there is a message (or the queue closed).
    fn lock_with_message(&self) -> MutexGuard<'_, Ring> {
        let mut ring = self.lock_when(|r| !r.items.is_empty() || r.closed);
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
        for chunk in msgs.chunks(Self::BATCH) {
            // Copied in before the lock is taken, so that the lock is held
            // only to move pointers.
            let mut staged: [Option<Box<Message>>; Self::BATCH] = [const { None }; Self::BATCH];
            let mut n = 0;
            self.pool.take_each(chunk, |m| {
                staged[n] = Some(m);
                n += 1;
            });
            let mut next = 0;
            while next < n {
                let mut ring = self.lock_with_room();
                if ring.closed {
                    drop(ring);
                    staged.into_iter().flatten().for_each(|m| self.pool.give_back(m));
                    return if done == 0 { Err(QueueError::Closed) } else { Ok(done) };
                }
                let k = (self.capacity - ring.items.len()).min(n - next);
                ring.items.extend(staged[next..next + k].iter_mut().flat_map(Option::take));
                next += k;
                done += k;
                self.pushed(ring);
            }
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

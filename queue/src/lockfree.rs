//! [`LockFree`]: pooled messages through a typed bounded lock-free ring,
//! `crossbeam_queue::ArrayQueue` (Dmitry Vyukov's bounded MPMC queue, as
//! crossbeam implements and tests it; this crate adds no unsafe code).
//! Blocking operations spin and yield briefly, then sleep (see
//! `closing::Signal`). Steady state: 0 allocations per message.

use crossbeam_queue::ArrayQueue;

use crate::closing::{Closing, Signal};
use crate::{Message, MessageRef, Pool, PoolStats, PooledMessage, Queue, QueueConfig, QueueError};

/// Pooled messages through `ArrayQueue`. See the [module docs](self).
///
/// # Examples
///
/// ```
/// use queue::{LockFree, MessageRef, Queue, QueueConfig, QueueError};
///
/// let q = LockFree::new(QueueConfig { capacity: 1, ..QueueConfig::default() });
/// let m = MessageRef { id: "id", payload: b"data", seq: 1, stamp_ns: 0 };
/// q.try_enqueue(&m).unwrap();
/// assert_eq!(q.try_enqueue(&m), Err(QueueError::Full));
/// ```
#[derive(Debug)]
pub struct LockFree {
    ring: ArrayQueue<Message>,
    pool: Pool,
    closing: Closing,
    not_empty: Signal,
    not_full: Signal,
}

impl LockFree {
    /// An empty queue with an empty pool.
    ///
    /// # Panics
    ///
    /// If `config.capacity` or `config.pool.max_retained` is zero.
    pub fn new(config: QueueConfig) -> LockFree {
        assert!(config.capacity > 0, "QueueConfig::capacity must be at least 1");
        LockFree {
            ring: ArrayQueue::new(config.capacity),
            pool: Pool::new(config.pool),
            closing: Closing::default(),
            not_empty: Signal::default(),
            not_full: Signal::default(),
        }
    }

    fn received(&self, m: Message) -> PooledMessage<'_> {
        self.not_full.notify();
        self.pool.lend(m)
    }
}

impl Queue for LockFree {
    type Received<'q> = PooledMessage<'q>;

    fn from_config(config: QueueConfig) -> LockFree {
        LockFree::new(config)
    }

    fn name(&self) -> &'static str {
        "lockfree"
    }

    fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    fn enqueue(&self, msg: &MessageRef<'_>) -> Result<(), QueueError> {
        let _in_flight = self.closing.enter()?;
        let mut item = Some(self.pool.take(msg).into_inner());
        let pushed = self.not_full.wait_for(|| match self.ring.push(item.take().expect("item is put back")) {
            Ok(()) => Some(Ok(())),
            Err(back) if self.closing.is_closed() => {
                self.pool.give_back(back);
                Some(Err(QueueError::Closed))
            }
            Err(back) => {
                item = Some(back);
                None
            }
        });
        if pushed.is_ok() {
            self.not_empty.notify();
        }
        pushed
    }

    fn try_enqueue(&self, msg: &MessageRef<'_>) -> Result<(), QueueError> {
        let _in_flight = self.closing.enter()?;
        if self.ring.is_full() {
            return Err(QueueError::Full);
        }
        match self.ring.push(self.pool.take(msg).into_inner()) {
            Ok(()) => {
                self.not_empty.notify();
                Ok(())
            }
            Err(back) => {
                self.pool.give_back(back);
                Err(QueueError::Full)
            }
        }
    }

    fn dequeue(&self) -> Result<PooledMessage<'_>, QueueError> {
        let m = self.not_empty.wait_for(|| match self.ring.pop() {
            Some(m) => Some(Ok(m)),
            None if self.closing.finished(|| self.ring.is_empty()) => Some(Err(QueueError::Closed)),
            None => None,
        })?;
        Ok(self.received(m))
    }

    fn try_dequeue(&self) -> Result<PooledMessage<'_>, QueueError> {
        match self.ring.pop() {
            Some(m) => Ok(self.received(m)),
            None if self.closing.finished(|| self.ring.is_empty()) => Err(QueueError::Closed),
            None => Err(QueueError::Empty),
        }
    }

    fn close(&self) {
        self.closing.close();
        self.not_empty.notify();
        self.not_full.notify();
    }

    fn is_closed(&self) -> bool {
        self.closing.is_closed()
    }

    fn len(&self) -> usize {
        self.ring.len()
    }

    fn pool_stats(&self) -> Option<PoolStats> {
        Some(self.pool.stats())
    }
}

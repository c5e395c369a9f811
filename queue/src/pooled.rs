//! [`Pooled`]: the source material's first two recommendations, object
//! pooling and typed channels. Message objects and their buffers come from
//! a [`Pool`] and go back to it when the consumer drops its handle; the
//! channel carries the message type itself, so nothing is boxed. Steady
//! state: 0 allocations per message.

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::closing::Closing;
use crate::{Message, MessageRef, Pool, PoolStats, PooledMessage, Queue, QueueConfig, QueueError};

const CLOSE_POLL: Duration = Duration::from_millis(1);

/// Pooled messages through a typed bounded channel. See the [module
/// docs](self).
///
/// # Examples
///
/// ```
/// use queue::{MessageRef, Pooled, Queue, QueueConfig};
///
/// let q = Pooled::new(QueueConfig::default());
/// for seq in 0..3 {
///     q.enqueue(&MessageRef { id: "id", payload: b"data", seq, stamp_ns: 0 }).unwrap();
///     drop(q.dequeue().unwrap()); // the message object goes back to the pool
/// }
/// assert_eq!(q.pool_stats().unwrap().created, 1);
/// ```
#[derive(Debug)]
pub struct Pooled {
    tx: Sender<Message>,
    rx: Receiver<Message>,
    pool: Pool,
    closing: Closing,
    capacity: usize,
}

impl Pooled {
    /// An empty queue with an empty pool.
    ///
    /// # Panics
    ///
    /// If `config.capacity` or `config.pool.max_retained` is zero.
    pub fn new(config: QueueConfig) -> Pooled {
        assert!(config.capacity > 0, "QueueConfig::capacity must be at least 1");
        let (tx, rx) = crossbeam_channel::bounded(config.capacity);
        Pooled { tx, rx, pool: Pool::new(config.pool), closing: Closing::default(), capacity: config.capacity }
    }

    fn loan(&self, msg: Message) -> PooledMessage<'_> {
        self.pool.lend(msg)
    }
}

impl Queue for Pooled {
    type Received<'q> = PooledMessage<'q>;

    fn from_config(config: QueueConfig) -> Pooled {
        Pooled::new(config)
    }

    fn name(&self) -> &'static str {
        "pooled"
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn enqueue(&self, msg: &MessageRef<'_>) -> Result<(), QueueError> {
        let _in_flight = self.closing.enter()?;
        let mut item = self.pool.take(msg).into_inner();
        // Try first: a timed send reads the clock, which costs more than
        // the whole non-blocking send.
        item = match self.tx.try_send(item) {
            Ok(()) => return Ok(()),
            Err(e) => e.into_inner(),
        };
        loop {
            match self.tx.send_timeout(item, CLOSE_POLL) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    item = e.into_inner();
                    if self.closing.is_closed() {
                        self.pool.give_back(item);
                        return Err(QueueError::Closed);
                    }
                }
            }
        }
    }

    fn try_enqueue(&self, msg: &MessageRef<'_>) -> Result<(), QueueError> {
        let _in_flight = self.closing.enter()?;
        if self.tx.is_full() {
            return Err(QueueError::Full);
        }
        self.tx.try_send(self.pool.take(msg).into_inner()).map_err(|e| {
            self.pool.give_back(e.into_inner());
            QueueError::Full
        })
    }

    fn dequeue(&self) -> Result<PooledMessage<'_>, QueueError> {
        if let Ok(m) = self.rx.try_recv() {
            return Ok(self.loan(m));
        }
        loop {
            if let Ok(m) = self.rx.recv_timeout(CLOSE_POLL) {
                return Ok(self.loan(m));
            }
            if self.closing.finished(|| self.rx.is_empty()) {
                return Err(QueueError::Closed);
            }
        }
    }

    fn try_dequeue(&self) -> Result<PooledMessage<'_>, QueueError> {
        match self.rx.try_recv() {
            Ok(m) => Ok(self.loan(m)),
            Err(_) if self.closing.finished(|| self.rx.is_empty()) => Err(QueueError::Closed),
            Err(_) => Err(QueueError::Empty),
        }
    }

    fn close(&self) {
        self.closing.close();
    }

    fn is_closed(&self) -> bool {
        self.closing.is_closed()
    }

    fn len(&self) -> usize {
        self.rx.len()
    }

    fn pool_stats(&self) -> Option<PoolStats> {
        Some(self.pool.stats())
    }
}

//! [`Pooled`]: the source material's first two recommendations, object
//! pooling and typed channels. Message objects and their buffers come from
//! a [`Pool`] (cached per thread, as Go's `sync.Pool`) and go back to it
//! when the consumer drops its handle; the channel is typed, so nothing is
//! boxed into a `dyn Any`, and it carries the pooled object's pointer, not
//! the 64-byte message. Steady state: 0 allocations per message.

use crate::channel::ClosableChannel;
use crate::{Message, MessageRef, Pool, PoolStats, PooledMessage, Queue, QueueConfig, QueueError};

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
    channel: ClosableChannel<Box<Message>>,
    pool: Pool,
}

impl Pooled {
    /// An empty queue; its pool holds `config.pool.prefill` messages.
    ///
    /// # Panics
    ///
    /// If `config.capacity` or `config.pool.max_retained` is zero.
    pub fn new(config: QueueConfig) -> Pooled {
        Pooled { channel: ClosableChannel::new(config.capacity), pool: Pool::new(config.pool) }
    }

    fn copy(&self, msg: &MessageRef<'_>) -> Box<Message> {
        self.pool.take(msg).into_inner()
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
        self.channel.capacity()
    }

    fn enqueue(&self, msg: &MessageRef<'_>) -> Result<(), QueueError> {
        self.channel.send(|| self.copy(msg), |m| self.pool.give_back(m))
    }

    fn try_enqueue(&self, msg: &MessageRef<'_>) -> Result<(), QueueError> {
        self.channel.try_send(|| self.copy(msg), |m| self.pool.give_back(m))
    }

    /// 64 messages per call: one announcement to the close protocol and
    /// one look-up of the thread's pool cache per batch; each message still
    /// goes through the channel on its own.
    const BATCH: usize = 64;

    fn enqueue_batch(&self, msgs: &[MessageRef<'_>]) -> Result<usize, QueueError> {
        let _in_flight = self.channel.enter()?;
        let mut sent = 0;
        let mut closed = false;
        self.pool.take_each(msgs, |m| {
            if closed {
                self.pool.give_back(m);
            } else if let Err(m) = self.channel.send_announced(m) {
                closed = true;
                self.pool.give_back(m);
            } else {
                sent += 1;
            }
        });
        if sent == 0 && closed {
            Err(QueueError::Closed)
        } else {
            Ok(sent)
        }
    }

    fn dequeue(&self) -> Result<PooledMessage<'_>, QueueError> {
        self.channel.recv().map(|m| self.pool.lend(m))
    }

    fn try_dequeue(&self) -> Result<PooledMessage<'_>, QueueError> {
        self.channel.try_recv().map(|m| self.pool.lend(m))
    }

    fn close(&self) {
        self.channel.close();
    }

    fn is_closed(&self) -> bool {
        self.channel.is_closed()
    }

    fn len(&self) -> usize {
        self.channel.len()
    }

    fn pool_stats(&self) -> Option<PoolStats> {
        Some(self.pool.stats())
    }
}

//! [`Baseline`]: the Go MemoryQueue, allocation for allocation.
//!
//! `enqueue` makes a defensive copy the way the Go code did: a boxed message
//! struct (allocation 1, 64 bytes), an owned copy of the id (2), an owned
//! copy of the payload (3), and boxing into `Box<dyn Any + Send>` for an
//! untyped channel, Go's `interface{}` (4, 8 bytes). With a 16-byte id and a
//! 32-byte payload that is 4 allocations and 120 requested bytes per message
//! (Go reported 152 B/op, size-class rounded). The consumer's handle frees
//! all four.

use std::any::Any;

use crate::channel::ClosableChannel;
use crate::{Message, MessageRef, Queue, QueueConfig, QueueError};

type Boxed = Box<dyn Any + Send>;

/// The Go MemoryQueue: 4 allocations per message. See the [module
/// docs](self).
///
/// # Examples
///
/// ```
/// use queue::{Baseline, MessageRef, Queue, QueueConfig};
///
/// let q = Baseline::new(QueueConfig::default());
/// q.enqueue(&MessageRef { id: "id-1", payload: b"data", seq: 7, stamp_ns: 0 }).unwrap();
/// assert_eq!(q.dequeue().unwrap().seq(), 7);
/// ```
#[derive(Debug)]
pub struct Baseline {
    channel: ClosableChannel<Boxed>,
}

impl Baseline {
    /// An empty queue.
    ///
    /// # Panics
    ///
    /// If `config.capacity` is zero.
    pub fn new(config: QueueConfig) -> Baseline {
        Baseline { channel: ClosableChannel::new(config.capacity) }
    }

    fn boxed(msg: &MessageRef<'_>) -> Boxed {
        // One allocation per line, so that heap profiles tell them apart:
        // the message struct, then Go's interface boxing.
        let message = Box::new(Message::copied_from(msg));
        Box::new(message)
    }

    fn unboxed(b: Boxed) -> Box<Message> {
        *b.downcast::<Box<Message>>().expect("the channel carries only boxed messages")
    }
}

impl Queue for Baseline {
    type Received<'q> = Box<Message>;

    fn from_config(config: QueueConfig) -> Baseline {
        Baseline::new(config)
    }

    fn name(&self) -> &'static str {
        "baseline"
    }

    fn capacity(&self) -> usize {
        self.channel.capacity()
    }

    fn enqueue(&self, msg: &MessageRef<'_>) -> Result<(), QueueError> {
        self.channel.send(|| Self::boxed(msg), drop)
    }

    fn try_enqueue(&self, msg: &MessageRef<'_>) -> Result<(), QueueError> {
        self.channel.try_send(|| Self::boxed(msg), drop)
    }

    fn dequeue(&self) -> Result<Box<Message>, QueueError> {
        self.channel.recv().map(Self::unboxed)
    }

    fn try_dequeue(&self) -> Result<Box<Message>, QueueError> {
        self.channel.try_recv().map(Self::unboxed)
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
}

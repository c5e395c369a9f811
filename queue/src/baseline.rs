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
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::closing::Closing;
use crate::{Message, MessageRef, Queue, QueueConfig, QueueError};

type Boxed = Box<dyn Any + Send>;

/// How often a blocked channel operation looks at the closed flag.
const CLOSE_POLL: Duration = Duration::from_millis(1);

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
    tx: Sender<Boxed>,
    rx: Receiver<Boxed>,
    closing: Closing,
    capacity: usize,
}

impl Baseline {
    /// An empty queue.
    ///
    /// # Panics
    ///
    /// If `config.capacity` is zero.
    pub fn new(config: QueueConfig) -> Baseline {
        assert!(config.capacity > 0, "QueueConfig::capacity must be at least 1");
        let (tx, rx) = crossbeam_channel::bounded(config.capacity);
        Baseline { tx, rx, closing: Closing::default(), capacity: config.capacity }
    }

    fn boxed(msg: &MessageRef<'_>) -> Boxed {
        Box::new(Box::new(Message::copied_from(msg)))
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
        self.capacity
    }

    fn enqueue(&self, msg: &MessageRef<'_>) -> Result<(), QueueError> {
        let _in_flight = self.closing.enter()?;
        let mut item = Self::boxed(msg);
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
                    if self.closing.is_closed() {
                        return Err(QueueError::Closed);
                    }
                    item = e.into_inner();
                }
            }
        }
    }

    fn try_enqueue(&self, msg: &MessageRef<'_>) -> Result<(), QueueError> {
        let _in_flight = self.closing.enter()?;
        if self.tx.is_full() {
            return Err(QueueError::Full);
        }
        self.tx.try_send(Self::boxed(msg)).map_err(|_| QueueError::Full)
    }

    fn dequeue(&self) -> Result<Box<Message>, QueueError> {
        if let Ok(b) = self.rx.try_recv() {
            return Ok(Self::unboxed(b));
        }
        loop {
            if let Ok(b) = self.rx.recv_timeout(CLOSE_POLL) {
                return Ok(Self::unboxed(b));
            }
            if self.closing.finished(|| self.rx.is_empty()) {
                return Err(QueueError::Closed);
            }
        }
    }

    fn try_dequeue(&self) -> Result<Box<Message>, QueueError> {
        match self.rx.try_recv() {
            Ok(b) => Ok(Self::unboxed(b)),
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
}

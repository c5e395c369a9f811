//! A bounded crossbeam channel with the close protocol of `closing`: the
//! transport of [`Baseline`](crate::Baseline) and [`Pooled`](crate::Pooled),
//! which differ only in what travels through it.

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::closing::{Closing, InFlight};
use crate::QueueError;

/// How often a blocked send or receive looks at the closed flag.
const CLOSE_POLL: Duration = Duration::from_millis(1);

#[derive(Debug)]
pub(crate) struct ClosableChannel<T> {
    tx: Sender<T>,
    rx: Receiver<T>,
    closing: Closing,
}

impl<T> ClosableChannel<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "QueueConfig::capacity must be at least 1");
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        ClosableChannel { tx, rx, closing: Closing::default() }
    }

    /// Sends the item `make` builds (only once the queue is known to be
    /// open), blocking while the channel is full. An item the queue closes
    /// on goes to `refused`.
    pub(crate) fn send(&self, make: impl FnOnce() -> T, refused: impl FnOnce(T)) -> Result<(), QueueError> {
        let _in_flight = self.closing.enter()?;
        self.send_announced(make()).map_err(|item| {
            refused(item);
            QueueError::Closed
        })
    }

    /// Announces a producer for several sends ([`Closing::enter`]); fails
    /// if the queue is closed.
    pub(crate) fn enter(&self) -> Result<InFlight<'_>, QueueError> {
        self.closing.enter()
    }

    /// Sends `item` for a producer announced with [`enter`](Self::enter),
    /// blocking while the channel is full; hands `item` back if the queue
    /// closes meanwhile.
    pub(crate) fn send_announced(&self, item: T) -> Result<(), T> {
        // Try first: a timed send reads the clock, which costs more than the
        // whole non-blocking send.
        let mut item = match self.tx.try_send(item) {
            Ok(()) => return Ok(()),
            Err(e) => e.into_inner(),
        };
        loop {
            match self.tx.send_timeout(item, CLOSE_POLL) {
                Ok(()) => return Ok(()),
                Err(e) if self.closing.is_closed() => return Err(e.into_inner()),
                Err(e) => item = e.into_inner(),
            }
        }
    }

    /// Sends the item `make` builds if there is room now (nothing is built
    /// when the channel is visibly full).
    pub(crate) fn try_send(&self, make: impl FnOnce() -> T, refused: impl FnOnce(T)) -> Result<(), QueueError> {
        let _in_flight = self.closing.enter()?;
        if self.tx.is_full() {
            return Err(QueueError::Full);
        }
        self.tx.try_send(make()).map_err(|e| {
            refused(e.into_inner());
            QueueError::Full
        })
    }

    /// The oldest item, blocking while the channel is empty and open.
    pub(crate) fn recv(&self) -> Result<T, QueueError> {
        if let Ok(item) = self.rx.try_recv() {
            return Ok(item);
        }
        loop {
            if let Ok(item) = self.rx.recv_timeout(CLOSE_POLL) {
                return Ok(item);
            }
            if self.closing.finished(|| self.rx.is_empty()) {
                return Err(QueueError::Closed);
            }
        }
    }

    pub(crate) fn try_recv(&self) -> Result<T, QueueError> {
        match self.rx.try_recv() {
            Ok(item) => Ok(item),
            Err(_) if self.closing.finished(|| self.rx.is_empty()) => Err(QueueError::Closed),
            Err(_) => Err(QueueError::Empty),
        }
    }

    pub(crate) fn close(&self) {
        self.closing.close();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closing.is_closed()
    }

    pub(crate) fn len(&self) -> usize {
        self.rx.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.tx.capacity().expect("the channel is bounded")
    }
}

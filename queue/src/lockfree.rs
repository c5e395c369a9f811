//! [`LockFree`]: a typed bounded lock-free ring whose slots *are* the pooled
//! messages: `thingbuf::ThingBuf` (Eliza Weisman's MPMC ring after Dmitry
//! Vyukov's bounded queue, loom-tested by its authors; this crate adds no
//! unsafe code).
//!
//! A producer claims a slot and copies the message into that slot's own
//! buffers, in place; a consumer reads the slot in place and releases it when
//! it drops its handle. Nothing moves through a separate pool, so a message
//! costs two atomic claims and no allocation; batch calls announce
//! themselves to the close protocol and check for sleepers once per batch.
//!
//! Buffers grown past the retention cap are freed (and replaced by fresh
//! ones of the initial size) when their slot is next written. Slots are
//! created on their first use, so the steady state begins once every slot
//! has been written once (`capacity` messages). Blocking operations spin and
//! yield briefly, then sleep (see `closing::Signal`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use thingbuf::recycling::Recycle;
use thingbuf::ThingBuf;

use crate::closing::{Closing, Signal};
use crate::recycling::Recycling;
use crate::{Message, MessageRef, PoolStats, Queue, QueueConfig, QueueError};

/// The ring's slots under the crate's recycling policy, as thingbuf's
/// `Recycle`.
#[derive(Debug)]
struct Slots {
    recycling: Recycling,
    counts: Arc<SlotCounts>,
}

/// Counted on the rare paths only (slot creation, oversize discards).
#[derive(Debug, Default)]
struct SlotCounts {
    created: AtomicU64,
    discarded_oversize: AtomicU64,
}

impl Recycle<Message> for Slots {
    fn new_element(&self) -> Message {
        self.counts.created.fetch_add(1, Ordering::Relaxed);
        self.recycling.new_message()
    }

    fn recycle(&self, m: &mut Message) {
        if !self.recycling.keeps(m) {
            self.counts.discarded_oversize.fetch_add(1, Ordering::Relaxed);
            *m = self.new_element();
        }
    }
}

/// Waits of a [`LockFree`] queue's blocking calls; see
/// [`LockFree::wait_counts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitCounts {
    /// `enqueue` calls that found the ring full.
    pub full_waits: u64,
    /// Sleeps of those calls on the condition variable.
    pub full_sleeps: u64,
    /// `dequeue` calls that found the ring empty.
    pub empty_waits: u64,
    /// Sleeps of those calls on the condition variable.
    pub empty_sleeps: u64,
}

/// Messages written and read in place in a lock-free ring. See the [module
/// docs](self).
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
pub struct LockFree {
    ring: ThingBuf<Message, Slots>,
    counts: Arc<SlotCounts>,
    closing: Closing,
    not_empty: Signal,
    not_full: Signal,
}

impl std::fmt::Debug for LockFree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockFree").field("len", &self.ring.len()).field("capacity", &self.ring.capacity()).finish()
    }
}

impl LockFree {
    /// An empty queue; its slots are created on first use. `config.pool`
    /// gives the slots' initial buffer sizes and retention factor
    /// (`max_retained` and `prefill` do not apply: the slots are the pool).
    ///
    /// # Panics
    ///
    /// If `config.capacity` is zero.
    pub fn new(config: QueueConfig) -> LockFree {
        assert!(config.capacity > 0, "QueueConfig::capacity must be at least 1");
        let counts = Arc::new(SlotCounts::default());
        let slots = Slots { recycling: Recycling::new(&config.pool), counts: Arc::clone(&counts) };
        LockFree {
            ring: ThingBuf::with_recycle(config.capacity, slots),
            counts,
            closing: Closing::default(),
            not_empty: Signal::default(),
            not_full: Signal::default(),
        }
    }

    /// How often producers found the ring full and consumers found it empty
    /// and had to wait, and how often those waits went to sleep: the
    /// wake-ups that cross-thread figures pay for.
    ///
    /// # Examples
    ///
    /// ```
    /// use queue::{LockFree, QueueConfig};
    /// let q = LockFree::new(QueueConfig::default());
    /// assert_eq!(q.wait_counts(), queue::WaitCounts::default());
    /// ```
    pub fn wait_counts(&self) -> WaitCounts {
        let (full_waits, full_sleeps) = self.not_full.counts();
        let (empty_waits, empty_sleeps) = self.not_empty.counts();
        WaitCounts { full_waits, full_sleeps, empty_waits, empty_sleeps }
    }

    fn try_write(&self, msg: &MessageRef<'_>) -> Result<(), QueueError> {
        self.write(msg)?;
        self.not_empty.notify();
        Ok(())
    }

    /// Copies `msg` into a free slot, in place; wakes nobody.
    #[inline]
    fn write(&self, msg: &MessageRef<'_>) -> Result<(), QueueError> {
        let mut slot = self.ring.push_ref().map_err(|_| QueueError::Full)?;
        slot.copy_from(msg);
        Ok(())
    }
}

impl Queue for LockFree {
    type Received<'q> = thingbuf::Ref<'q, Message>;

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
        self.not_full.wait_for(|| match self.try_write(msg) {
            Ok(()) => Some(Ok(())),
            Err(_) if self.closing.is_closed() => Some(Err(QueueError::Closed)),
            Err(_) => None,
        })
    }

    fn try_enqueue(&self, msg: &MessageRef<'_>) -> Result<(), QueueError> {
        let _in_flight = self.closing.enter()?;
        self.try_write(msg)
    }

    /// 64 messages per call: one announcement to the close protocol and
    /// one wake-up check per batch instead of per message; each message
    /// still claims its own slot.
    const BATCH: usize = 64;

    fn enqueue_batch(&self, msgs: &[MessageRef<'_>]) -> Result<usize, QueueError> {
        let _in_flight = self.closing.enter()?;
        for (done, msg) in msgs.iter().enumerate() {
            if self.write(msg).is_ok() {
                continue;
            }
            // Full: let the consumers see what this call wrote, then wait
            // for room as `enqueue` does.
            if done > 0 {
                self.not_empty.notify();
            }
            let written = self.not_full.wait_for(|| match self.write(msg) {
                Ok(()) => Some(true),
                Err(_) if self.closing.is_closed() => Some(false),
                Err(_) => None,
            });
            if !written {
                return if done == 0 { Err(QueueError::Closed) } else { Ok(done) };
            }
        }
        self.not_empty.notify();
        Ok(msgs.len())
    }

    fn dequeue_batch<'q>(&'q self, out: &mut Vec<thingbuf::Ref<'q, Message>>, max: usize) -> Result<usize, QueueError> {
        if max == 0 {
            return Ok(0);
        }
        let before = out.len();
        out.extend(std::iter::from_fn(|| self.ring.pop_ref()).take(max));
        if out.len() == before {
            // Empty: block for one message as `dequeue` does (it wakes a
            // waiting producer), then take what else is there.
            out.push(self.dequeue()?);
            out.extend(std::iter::from_fn(|| self.ring.pop_ref()).take(max - 1));
        }
        self.not_full.notify();
        Ok(out.len() - before)
    }

    fn dequeue(&self) -> Result<thingbuf::Ref<'_, Message>, QueueError> {
        let m = self.not_empty.wait_for(|| match self.ring.pop_ref() {
            Some(m) => Some(Ok(m)),
            None if self.closing.finished(|| self.ring.is_empty()) => Some(Err(QueueError::Closed)),
            None => None,
        })?;
        self.not_full.notify();
        Ok(m)
    }

    fn try_dequeue(&self) -> Result<thingbuf::Ref<'_, Message>, QueueError> {
        match self.ring.pop_ref() {
            Some(m) => {
                self.not_full.notify();
                Ok(m)
            }
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
        let created = self.counts.created.load(Ordering::Relaxed);
        Some(PoolStats {
            created,
            discarded_oversize: self.counts.discarded_oversize.load(Ordering::Relaxed),
            discarded_full: 0,
            retained: created as usize,
        })
    }
}

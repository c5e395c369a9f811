//! The MemoryQueue workload: an in-memory, bounded, multi-producer
//! multi-consumer message queue in four variants that differ in how they
//! allocate, so that `allocscope` and the bench runner can show the effect.
//!
//! # The Go original
//!
//! Our source material profiled a Go `MemoryQueue` whose `Enqueue` copied
//! each `DataMessage { id: string, payload: []byte }` defensively: a new
//! message struct, a copy of the id, a copy of the payload, and boxing into
//! an `interface{}` for the channel: **4 allocations per message**. Measured
//! there: 2.6 M ops/s, 376 ns/op, 152 B/op, 4 allocs/op. Recommended there:
//! object pooling with `Get`/`Put` always paired, pre-allocated buffers with a
//! cap on what a pooled buffer may keep (not returned once grown past 4x its
//! initial capacity), typed channels instead of interface boxing, batching,
//! and lock-free queues; targets < 50 B/op and < 2 allocs/op.
//!
//! # The variants
//!
//! | variant | transport | per message, steady state |
//! |---|---|---|
//! | [`Baseline`] | bounded channel of `Box<dyn Any + Send>` | 4 allocations on enqueue (message box, id `String`, payload `Vec`, the `dyn Any` box), 4 frees on dequeue |
//! | [`Pooled`] | typed bounded channel of pooled message objects (a pointer each), from a [`Pool`] cached per thread | 0: message objects and their buffers are reused |
//! | [`Batched`] | a mutex-guarded ring of pooled message objects, one lock per batch | 0 |
//! | [`LockFree`] | `thingbuf`'s lock-free ring; each slot keeps its buffers, written and read in place | 0 |
//!
//! Pooled messages go back to their [`Pool`] (or, for [`LockFree`], their
//! ring slot) when the consumer drops the [`Received`](Queue::Received) handle (RAII: the pairing Go needed `defer`
//! for cannot be forgotten). Payloads larger than a pooled buffer still work;
//! growing a buffer allocates, and a buffer grown past the retention cap is
//! freed instead of pooled.
//!
//! # Semantics shared by every variant
//!
//! - Bounded: `enqueue` blocks while the queue is full, `try_enqueue` returns
//!   [`QueueError::Full`].
//! - The message is copied in from a borrowed [`MessageRef`], as the Go
//!   original copied it; a failed enqueue never takes the caller's message,
//!   so nothing is lost.
//! - [`close`](Queue::close): further enqueues fail with
//!   [`QueueError::Closed`]; dequeues drain what is left, then report
//!   `Closed`. Blocked callers wake up.
//! - No message is lost or delivered twice, and each producer's messages
//!   come out in the order it enqueued them.
//!
//! # Examples
//!
//! ```
//! use queue::{LockFree, MessageRef, Queue, QueueConfig};
//!
//! let q = LockFree::new(QueueConfig::default());
//! q.enqueue(&MessageRef { id: "order-1", payload: b"{\"qty\":1}", seq: 1, stamp_ns: 0 }).unwrap();
//! let m = q.dequeue().unwrap();
//! assert_eq!((m.id(), m.payload(), m.seq()), ("order-1", &b"{\"qty\":1}"[..], 1));
//! drop(m); // releases the slot, buffers kept for the next message
//! q.close();
//! assert!(q.dequeue().is_err());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod baseline;
pub mod batched;
mod channel;
mod closing;
pub mod lockfree;
mod message;
mod pool;
pub mod pooled;
mod recycling;

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

pub use crate::baseline::Baseline;
pub use crate::batched::Batched;
pub use crate::lockfree::{LockFree, WaitCounts};
pub use crate::message::{Message, MessageRef};
pub use crate::pool::{Pool, PoolConfig, PoolStats, PooledMessage, THREAD_CACHE, TRANSFER};
pub use crate::pooled::Pooled;

/// Why an enqueue or dequeue did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum QueueError {
    /// `try_enqueue` on a full queue, or `try_dequeue` on an empty one. The
    /// caller still has its message: nothing was taken.
    #[error("queue is full")]
    Full,
    /// `try_dequeue` on an empty, open queue.
    #[error("queue is empty")]
    Empty,
    /// The queue was closed: enqueues fail, and dequeues fail once drained.
    #[error("queue is closed")]
    Closed,
}

/// A queue's sizes: its capacity and its pool's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Messages the queue holds at most. Default 1024.
    pub capacity: usize,
    /// How pooled variants size and cap their message pool.
    pub pool: PoolConfig,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { capacity: 1024, pool: PoolConfig::default() }
    }
}

/// The operations every variant implements, so that the bench runner and
/// the tests drive all of them through identical code.
pub trait Queue: Send + Sync {
    /// A dequeued message. For pooled variants, dropping it returns the
    /// message object and its buffers to the pool.
    type Received<'q>: Deref<Target = Message> + Send
    where
        Self: 'q;

    /// A new, empty queue of this variant.
    ///
    /// # Panics
    ///
    /// If `config.capacity` or `config.pool.max_retained` is zero.
    fn from_config(config: QueueConfig) -> Self
    where
        Self: Sized;

    /// The variant's name, as [`Variant`] spells it.
    fn name(&self) -> &'static str;

    /// The most messages the queue holds.
    fn capacity(&self) -> usize;

    /// Copies `msg` in, blocking while the queue is full.
    ///
    /// # Errors
    ///
    /// [`QueueError::Closed`] once the queue is closed (also when it closes
    /// while this call waits).
    fn enqueue(&self, msg: &MessageRef<'_>) -> Result<(), QueueError>;

    /// Copies `msg` in if there is room now.
    ///
    /// # Errors
    ///
    /// [`QueueError::Full`] or [`QueueError::Closed`].
    fn try_enqueue(&self, msg: &MessageRef<'_>) -> Result<(), QueueError>;

    /// Takes the oldest message, blocking while the queue is empty and open.
    ///
    /// # Errors
    ///
    /// [`QueueError::Closed`] once the queue is closed and drained.
    fn dequeue(&self) -> Result<Self::Received<'_>, QueueError>;

    /// Takes the oldest message if there is one now.
    ///
    /// # Errors
    ///
    /// [`QueueError::Empty`], or [`QueueError::Closed`] once closed and
    /// drained.
    fn try_dequeue(&self) -> Result<Self::Received<'_>, QueueError>;

    /// Enqueues every message of `msgs` in order, blocking as needed.
    /// Returns how many were enqueued; fewer than `msgs.len()` only if the
    /// queue closed on the way (the rest were not taken).
    ///
    /// # Errors
    ///
    /// [`QueueError::Closed`] if the queue was closed before the first one.
    fn enqueue_batch(&self, msgs: &[MessageRef<'_>]) -> Result<usize, QueueError> {
        for (i, m) in msgs.iter().enumerate() {
            if let Err(e) = self.enqueue(m) {
                return if i == 0 { Err(e) } else { Ok(i) };
            }
        }
        Ok(msgs.len())
    }

    /// Messages this queue moves per call at its best: callers that can
    /// batch send and receive this many at a time with
    /// [`enqueue_batch`](Queue::enqueue_batch) and
    /// [`dequeue_batch`](Queue::dequeue_batch); 1 for a queue that moves
    /// one message per call.
    const BATCH: usize = 1;

    /// Blocks until at least one message is available, then moves up to
    /// `max` messages into `out` (appending; `out` keeps its capacity, so a
    /// reused buffer allocates nothing). Returns how many were moved.
    ///
    /// # Errors
    ///
    /// [`QueueError::Closed`] once the queue is closed and drained.
    fn dequeue_batch<'q>(&'q self, out: &mut Vec<Self::Received<'q>>, max: usize) -> Result<usize, QueueError> {
        if max == 0 {
            return Ok(0);
        }
        out.push(self.dequeue()?);
        let mut n = 1;
        while n < max {
            match self.try_dequeue() {
                Ok(m) => out.push(m),
                Err(_) => break,
            }
            n += 1;
        }
        Ok(n)
    }

    /// Closes the queue: see the [crate docs](crate#semantics-shared-by-every-variant).
    fn close(&self);

    /// Whether [`close`](Queue::close) was called.
    fn is_closed(&self) -> bool;

    /// Messages in the queue now (a snapshot).
    fn len(&self) -> usize;

    /// Whether the queue holds no message now.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The message pool's figures, for pooled variants.
    fn pool_stats(&self) -> Option<PoolStats> {
        None
    }
}

/// Declares the variants once: the [`Variant`] enum, its names, its list
/// ([`Variant::ALL`]), the names an unknown name is told about, and the
/// dispatch from a variant to its queue type ([`Variant::visit`]) all
/// derive from this one table, so a new variant is a line here and a type.
macro_rules! variants {
    ($($(#[$doc:meta])* $variant:ident($ty:ty) = $name:literal,)*) => {
        /// The variants, by name, for command lines and reports.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Variant {
            $($(#[$doc])* $variant,)*
        }

        impl Variant {
            /// Every variant, baseline first.
            pub const ALL: &'static [Variant] = &[$(Variant::$variant),*];

            /// The name used on command lines and in reports.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Variant::$variant => $name,)*
                }
            }

            /// Runs `visitor` with this variant's queue type.
            pub fn visit<V: VariantVisitor>(self, visitor: V) -> V::Output {
                match self {
                    $(Variant::$variant => visitor.visit::<$ty>(),)*
                }
            }
        }
    };
}

variants! {
    /// [`Baseline`].
    Baseline(Baseline) = "baseline",
    /// [`Pooled`].
    Pooled(Pooled) = "pooled",
    /// [`Batched`].
    Batched(Batched) = "batched",
    /// [`LockFree`].
    LockFree(LockFree) = "lockfree",
}

/// Code generic over the queue type, run for a [`Variant`] by
/// [`Variant::visit`]: the one place where a variant meets its type.
///
/// # Examples
///
/// ```
/// use queue::{Queue, QueueConfig, Variant, VariantVisitor};
///
/// struct Capacity;
/// impl VariantVisitor for Capacity {
///     type Output = usize;
///     fn visit<Q: Queue + 'static>(self) -> usize {
///         Q::from_config(QueueConfig { capacity: 8, ..QueueConfig::default() }).capacity()
///     }
/// }
/// assert!(Variant::ALL.iter().all(|v| v.visit(Capacity) == 8));
/// ```
pub trait VariantVisitor {
    /// What the code returns.
    type Output;
    /// Runs the code with queue type `Q`.
    fn visit<Q: Queue + 'static>(self) -> Self::Output;
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A variant name that names none, quoting it and listing the valid ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownVariant(pub String);

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
        write!(f, "unknown queue variant {:?} (expected one of: {})", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownVariant {}

#[cfg(feature = "serde")]
impl serde::Serialize for Variant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Variant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Variant, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for Variant {
    type Err = UnknownVariant;

    /// # Examples
    ///
    /// ```
    /// use queue::Variant;
    /// assert_eq!("lockfree".parse::<Variant>(), Ok(Variant::LockFree));
    /// assert_eq!(
    ///     "ring".parse::<Variant>().unwrap_err().to_string(),
    ///     "unknown queue variant \"ring\" (expected one of: baseline, pooled, batched, lockfree)"
    /// );
    /// ```
    fn from_str(s: &str) -> Result<Variant, UnknownVariant> {
        Variant::ALL.iter().copied().find(|v| v.name() == s).ok_or_else(|| UnknownVariant(s.to_owned()))
    }
}

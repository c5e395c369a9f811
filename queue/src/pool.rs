//! The recycling pool: message objects with their buffers, handed out and
//! taken back, under the crate's one recycling policy
//! ([`crate::recycling`]: create once, clear on reuse, cap the retained
//! capacity).
//!
//! - [`Pool::take`] pops a retained message (or creates one: an allocation)
//!   and copies the producer's message into its buffers, which allocates
//!   nothing unless the payload is larger than the buffer.
//! - [`PooledMessage`] returns the message when dropped: the Go code's
//!   `Get`/`defer Put` pairing, enforced by the type system.
//! - A message whose buffers grew past [`PoolConfig::retention_factor`] times
//!   their initial capacity is freed instead of retained, so one oversized
//!   payload does not pin its memory forever.
//! - At most [`PoolConfig::max_retained`] messages are retained; the pool
//!   frees the rest. It never grows without bound.

use std::cell::RefCell;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_utils::CachePadded;
use thread_local::ThreadLocal;

use crate::recycling::Recycling;
use crate::{Message, MessageRef};

/// How a [`Pool`] sizes its messages and what it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Initial capacity of a new message's id buffer. Default 32.
    pub id_capacity: usize,
    /// Initial capacity of a new message's payload buffer. Default 64.
    pub payload_capacity: usize,
    /// A returned message is freed instead of retained when a buffer's
    /// capacity exceeds this many times its initial capacity. Default 4, the
    /// source material's rule.
    pub retention_factor: usize,
    /// The most messages the pool retains. Default 4096; must cover the
    /// queue's capacity plus the messages producers and consumers hold, or
    /// the steady state allocates.
    pub max_retained: usize,
    /// Messages created when the pool is built (at most `max_retained`), so
    /// that the steady state starts at once instead of after the pool has
    /// grown to the queue's working set. Default 0.
    pub prefill: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig { id_capacity: 32, payload_capacity: 64, retention_factor: 4, max_retained: 4096, prefill: 0 }
    }
}

/// What a pool did, for tests and reports. Counted only on the rare paths
/// (creation and discarding), so that counting costs nothing per message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Messages created because the pool was empty (each one allocation of
    /// two buffers).
    pub created: u64,
    /// Returned messages freed because a buffer outgrew the retention cap.
    pub discarded_oversize: u64,
    /// Returned messages freed because the pool already held `max_retained`.
    pub discarded_full: u64,
    /// Messages retained now.
    pub retained: usize,
}

/// Messages moved at once between a thread's cache and the pool's shared
/// store (a refill of an empty cache, or a flush of a full one), as
/// jemalloc's thread cache fills and flushes its bins in batches and Go's
/// `sync.Pool` moves objects between its per-P private slots and shared
/// chains.
pub const TRANSFER: usize = 32;

/// The most messages one thread's cache keeps (at most
/// [`PoolConfig::max_retained`] altogether).
pub const THREAD_CACHE: usize = 2 * TRANSFER;

/// One thread's cache of a pool, on its own cache line.
struct ThreadCache {
    #[expect(clippy::vec_box, reason = "message objects travel as pointers, through the queues too")]
    items: RefCell<Vec<Box<Message>>>,
    /// `items.len()`, for [`Pool::stats`] on any thread.
    len: Arc<AtomicUsize>,
    /// How many messages this cache may keep: its share of
    /// `max_retained`, reserved when the cache was made.
    quota: usize,
}

/// A bounded pool of reusable [`Message`]s, cached per thread.
///
/// Each thread that takes or gives back messages has a cache of its own
/// (at most [`THREAD_CACHE`] messages), which [`take`](Pool::take) and
/// [`give_back`](Pool::give_back) use without any atomic operation or lock;
/// a cache that runs empty takes [`TRANSFER`] messages from the pool's
/// shared store at once, and a full one moves [`TRANSFER`] there, so a
/// message that a consumer thread gives back reaches a producer thread in
/// batches, one lock per [`TRANSFER`] messages. As Go's `sync.Pool`: an
/// object may come back on another thread than the one that took it, and
/// the pool may drop what it does not want to keep.
///
/// What it keeps is capped: the shared store and the threads' caches
/// together hold at most [`PoolConfig::max_retained`] messages (each cache
/// reserves its share when a thread first uses the pool; a thread that
/// finds nothing left to reserve uses the shared store directly). A
/// thread's cache is freed with the pool, not when the thread exits; a new
/// thread may inherit an exited one's cache.
///
/// # Examples
///
/// ```
/// use queue::{MessageRef, Pool, PoolConfig};
///
/// let pool = Pool::new(PoolConfig::default());
/// let m = pool.take(&MessageRef { id: "a", payload: b"xyz", seq: 1, stamp_ns: 0 });
/// assert_eq!(m.payload(), b"xyz");
/// drop(m); // back to this thread's cache
/// let again = pool.take(&MessageRef { id: "b", payload: b"", seq: 2, stamp_ns: 0 });
/// assert_eq!(pool.stats().created, 1, "the first message was reused");
/// # drop(again);
/// ```
pub struct Pool {
    caches: ThreadLocal<CachePadded<ThreadCache>>,
    /// Every cache's length, for [`Pool::stats`] (a cache's `RefCell` can
    /// only be read by its own thread).
    cache_lens: Mutex<Vec<Arc<AtomicUsize>>>,
    #[expect(clippy::vec_box, reason = "message objects travel as pointers, through the queues too")]
    shared: Mutex<Vec<Box<Message>>>,
    /// The caches' quotas, reserved out of `max_retained`.
    reserved: AtomicUsize,
    config: PoolConfig,
    recycling: Recycling,
    created: AtomicU64,
    discarded_oversize: AtomicU64,
    discarded_full: AtomicU64,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("config", &self.config).field("stats", &self.stats()).finish()
    }
}

/// Locks `m`, whatever a panicking holder left: every critical section
/// here is a sequence of whole `Vec` calls, which a panic cannot leave half
/// done.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pool {
    /// A pool holding `config.prefill` new messages (counted as created)
    /// in its shared store.
    ///
    /// # Panics
    ///
    /// If `config.max_retained` is zero.
    pub fn new(config: PoolConfig) -> Pool {
        assert!(config.max_retained > 0, "PoolConfig::max_retained must be at least 1");
        let pool = Pool {
            caches: ThreadLocal::new(),
            cache_lens: Mutex::new(Vec::new()),
            shared: Mutex::new(Vec::with_capacity(config.max_retained)),
            reserved: AtomicUsize::new(0),
            config,
            recycling: Recycling::new(&config),
            created: AtomicU64::new(0),
            discarded_oversize: AtomicU64::new(0),
            discarded_full: AtomicU64::new(0),
        };
        let prefill: Vec<Box<Message>> = (0..config.prefill.min(config.max_retained)).map(|_| pool.create()).collect();
        lock(&pool.shared).extend(prefill);
        pool
    }

    fn create(&self) -> Box<Message> {
        self.created.fetch_add(1, Ordering::Relaxed);
        Box::new(self.recycling.new_message())
    }

    /// The calling thread's cache.
    #[inline]
    fn cache(&self) -> &ThreadCache {
        match self.caches.get() {
            Some(cache) => cache,
            None => self.new_cache(),
        }
    }

    /// Makes the calling thread's cache, on its first use of the pool (one
    /// allocation for the cache, one for its length, and its buffer), and
    /// reserves its quota.
    #[cold]
    #[inline(never)]
    fn new_cache(&self) -> &ThreadCache {
        self.caches.get_or(|| {
            let quota = self
                .reserved
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                    Some(r + THREAD_CACHE.min(self.config.max_retained.saturating_sub(r)))
                })
                .map_or(0, |before| THREAD_CACHE.min(self.config.max_retained.saturating_sub(before)));
            let len = Arc::new(AtomicUsize::new(0));
            lock(&self.cache_lens).push(Arc::clone(&len));
            CachePadded::new(ThreadCache { items: RefCell::new(Vec::with_capacity(quota)), len, quota })
        })
    }

    /// Room in the shared store: `max_retained` less the caches' quotas.
    fn shared_cap(&self) -> usize {
        self.config.max_retained.saturating_sub(self.reserved.load(Ordering::Relaxed))
    }

    /// The configuration.
    pub fn config(&self) -> PoolConfig {
        self.config
    }

    /// A message from the pool (or a new one) holding a copy of `m`.
    #[inline]
    pub fn take(&self, m: &MessageRef<'_>) -> PooledMessage<'_> {
        let mut msg = self.take_from(self.cache());
        msg.copy_from(m);
        PooledMessage { msg: Some(msg), pool: self }
    }

    /// Copies each of `msgs` into a message of the pool (or a new one), in
    /// order, and hands it to `put` off loan (as
    /// [`PooledMessage::into_inner`]): one look-up of the thread's cache
    /// for the whole batch.
    pub fn take_each(&self, msgs: &[MessageRef<'_>], mut put: impl FnMut(Box<Message>)) {
        let cache = self.cache();
        for m in msgs {
            let mut msg = self.take_from(cache);
            msg.copy_from(m);
            put(msg);
        }
    }

    /// A retained message (from this thread's cache, refilled from the
    /// shared store when empty), or a new one.
    #[inline]
    fn take_from(&self, cache: &ThreadCache) -> Box<Message> {
        let mut items = cache.items.borrow_mut();
        if let Some(msg) = items.pop() {
            cache.len.store(items.len(), Ordering::Relaxed);
            return msg;
        }
        drop(items);
        self.take_refill(cache)
    }

    /// `take` from an empty cache: refills it with up to [`TRANSFER`]
    /// messages from the shared store (within its quota: no allocation),
    /// or takes one from the store directly (no quota), or creates one.
    #[cold]
    #[inline(never)]
    fn take_refill(&self, cache: &ThreadCache) -> Box<Message> {
        let mut items = cache.items.borrow_mut();
        let mut shared = lock(&self.shared);
        let msg = if cache.quota == 0 {
            shared.pop()
        } else {
            let from = shared.len() - TRANSFER.min(cache.quota).min(shared.len());
            items.extend(shared.drain(from..));
            items.pop()
        };
        drop(shared);
        cache.len.store(items.len(), Ordering::Relaxed);
        drop(items);
        msg.unwrap_or_else(|| self.create())
    }

    /// Wraps a message taken out of this pool (with
    /// [`PooledMessage::into_inner`]) so that it comes back when dropped.
    #[inline]
    pub fn lend(&self, msg: Box<Message>) -> PooledMessage<'_> {
        PooledMessage { msg: Some(msg), pool: self }
    }

    /// Takes `msg` back: kept (in this thread's cache, which moves
    /// [`TRANSFER`] messages to the shared store when full) if its buffers
    /// are within the cap and the pool has room, freed otherwise.
    #[inline]
    pub fn give_back(&self, msg: Box<Message>) {
        if !self.recycling.keeps(&msg) {
            self.discarded_oversize.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let cache = self.cache();
        let mut items = cache.items.borrow_mut();
        if items.len() < cache.quota {
            items.push(msg);
            cache.len.store(items.len(), Ordering::Relaxed);
        } else {
            drop(items);
            self.give_back_full(cache, msg);
        }
    }

    /// `give_back` to a full cache (or a thread with no quota): moves the
    /// oldest messages to the shared store, as many as it has room for,
    /// and keeps `msg` in the cache if that made room (else it goes to the
    /// store, or is dropped).
    #[cold]
    #[inline(never)]
    fn give_back_full(&self, cache: &ThreadCache, msg: Box<Message>) {
        let mut items = cache.items.borrow_mut();
        let mut shared = lock(&self.shared);
        let room = self.shared_cap().saturating_sub(shared.len());
        let n = TRANSFER.min(items.len()).min(room);
        shared.extend(items.drain(..n));
        let refused = if items.len() < cache.quota {
            items.push(msg);
            None
        } else if shared.len() < self.shared_cap() {
            shared.push(msg);
            None
        } else {
            Some(msg)
        };
        drop(shared);
        cache.len.store(items.len(), Ordering::Relaxed);
        drop(items);
        if let Some(msg) = refused {
            self.discarded_full.fetch_add(1, Ordering::Relaxed);
            drop(msg);
        }
    }

    /// The pool's figures so far (`retained` is a snapshot: other threads'
    /// caches may be changing).
    pub fn stats(&self) -> PoolStats {
        let cached: usize = lock(&self.cache_lens).iter().map(|l| l.load(Ordering::Relaxed)).sum();
        PoolStats {
            created: self.created.load(Ordering::Relaxed),
            discarded_oversize: self.discarded_oversize.load(Ordering::Relaxed),
            discarded_full: self.discarded_full.load(Ordering::Relaxed),
            retained: lock(&self.shared).len() + cached,
        }
    }
}

/// A message on loan from a [`Pool`]; dropping it gives it back.
pub struct PooledMessage<'p> {
    /// `None` only once [`into_inner`](PooledMessage::into_inner) took it.
    msg: Option<Box<Message>>,
    pool: &'p Pool,
}

impl PooledMessage<'_> {
    /// Takes the message object off loan: it will not return to the pool
    /// unless handed back with [`Pool::give_back`] or re-wrapped with
    /// [`Pool::lend`] (the queues move message objects through their
    /// transport this way: a pointer, not the message).
    pub fn into_inner(mut self) -> Box<Message> {
        self.msg.take().expect("a loan holds its message until it ends")
    }
}

impl Deref for PooledMessage<'_> {
    type Target = Message;

    #[inline]
    fn deref(&self) -> &Message {
        self.msg.as_deref().expect("a loan holds its message until it ends")
    }
}

impl Drop for PooledMessage<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(msg) = self.msg.take() {
            self.pool.give_back(msg);
        }
    }
}

impl fmt::Debug for PooledMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

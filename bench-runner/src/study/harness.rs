//! What every measured pass shares: the messages' contents, queue creation,
//! latency histograms, producing and receiving, the pair-mode loop, and the
//! one dispatch from a [`Variant`] to its queue type.

use std::sync::OnceLock;
use std::time::Instant;

use hdrhistogram::Histogram;
use queue::{MessageRef, Queue, QueueConfig, QueueError, Variant, VariantVisitor};

use crate::plan::{Sizes, WorkloadPlan};

/// Every this many messages, the latency is timed. A timed message costs
/// three clock reads (about 20 ns each on the 2-core VM the reference
/// reports come from): timing every 8th cost about 7 ns per message, 11 %
/// of `baseline`'s pair-mode time and a quarter of the fastest variant's,
/// the same for every variant, which squeezed their ratios. Every 32nd
/// still gives 15,625 timings per default run (p99.9 from the slowest 15).
pub const LATENCY_SAMPLE_EVERY: u64 = 32;
/// The most messages one batch call takes here: room for any queue's
/// [`Queue::BATCH`], and the capacity of the callers' receive buffers.
pub const BATCH: usize = 64;
/// Marks the end of the warm-up in `threads` mode.
pub const MARKER: u64 = u64::MAX;

/// Code generic over the queue type, run for one [`Variant`] with its
/// harness by [`with_queue`] (through [`Variant::visit`], the queue crate's
/// one place that matches a variant to its type).
pub trait WithQueue {
    type Output;
    fn run<Q: Queue + 'static>(self, harness: &Harness<'_>) -> Self::Output;
}

/// Runs `work` with `variant`'s queue type.
pub fn with_queue<W: WithQueue>(variant: Variant, harness: &Harness<'_>, work: W) -> W::Output {
    struct Visit<'h, 'w, W>(&'h Harness<'w>, W);
    impl<W: WithQueue> VariantVisitor for Visit<'_, '_, W> {
        type Output = W::Output;
        fn visit<Q: Queue + 'static>(self) -> W::Output {
            self.1.run::<Q>(self.0)
        }
    }
    variant.visit(Visit(harness, work))
}

/// Nanoseconds since the study started; never 0 (0 means "not timed").
pub fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1
}

/// A latency histogram: 1 ns to 100 s, 2 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 2).expect("valid histogram bounds")
}

/// The enqueue and end-to-end latency histograms of one pass.
pub struct Latencies {
    pub enqueue: Histogram<u64>,
    pub end_to_end: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Latencies {
        Latencies::new()
    }
}

impl Latencies {
    pub fn new() -> Latencies {
        Latencies { enqueue: histogram(), end_to_end: histogram() }
    }

    pub fn reset(&mut self) {
        self.enqueue.reset();
        self.end_to_end.reset();
    }

    pub fn add(&mut self, other: &Latencies) {
        self.enqueue.add(&other.enqueue).expect("same histogram bounds");
        self.end_to_end.add(&other.end_to_end).expect("same histogram bounds");
    }
}

/// One variant's workload: the messages' contents (built before any
/// measurement) and how to send them.
pub struct Harness<'a> {
    pub workload: &'a WorkloadPlan,
    id: String,
    payload: Vec<u8>,
    sizes: Sizes,
}

impl<'a> Harness<'a> {
    pub fn new(workload: &'a WorkloadPlan) -> Harness<'a> {
        Harness {
            workload,
            id: "m".repeat(workload.id_bytes),
            payload: vec![0xA5; workload.payload_bytes.max],
            sizes: workload.payload_bytes,
        }
    }

    /// Message `seq`, stamped with `stamp_ns` (0: not timed).
    pub fn message(&self, seq: u64, stamp_ns: u64) -> MessageRef<'_> {
        MessageRef { id: &self.id, payload: &self.payload[..self.sizes.of(seq)], seq, stamp_ns }
    }

    /// A new queue sized for the workload: pooled variants retain every
    /// message that can be in flight at once (the queue full, a batch in
    /// each producer's and each consumer's hands, and each thread's pool
    /// cache full), prefilled.
    pub fn queue<Q: Queue>(&self) -> Q {
        let w = self.workload;
        let mut c = QueueConfig { capacity: w.capacity as usize, ..QueueConfig::default() };
        let in_flight = c.capacity + (BATCH + queue::THREAD_CACHE) * (w.producers + w.consumers) as usize;
        c.pool.max_retained = c.pool.max_retained.max(2 * in_flight);
        c.pool.prefill = in_flight;
        c.pool.payload_capacity = c.pool.payload_capacity.max(w.payload_bytes.max);
        c.pool.id_capacity = c.pool.id_capacity.max(w.id_bytes);
        Q::from_config(c)
    }

    /// Enqueues `n` messages from `first`, [`Queue::BATCH`] per call,
    /// timing every call that carries a sampled message.
    pub fn produce<Q: Queue>(&self, q: &Q, first: u64, n: u64, enqueue: &mut Histogram<u64>) {
        debug_assert!((1..=BATCH).contains(&Q::BATCH));
        let end = first + n;
        let mut seq = first;
        while seq < end {
            let k = ((end - seq) as usize).min(Q::BATCH);
            let timed = (seq..seq + k as u64).any(|s| s % LATENCY_SAMPLE_EVERY == 0);
            let t0 = if timed { now_ns() } else { 0 };
            let message = |s: u64| self.message(s, if s.is_multiple_of(LATENCY_SAMPLE_EVERY) { t0 } else { 0 });
            let sent = if k == 1 {
                q.enqueue(&message(seq))
            } else {
                let batch: [MessageRef<'_>; BATCH] = std::array::from_fn(|i| message(seq + i as u64));
                q.enqueue_batch(&batch[..k]).map(drop)
            };
            sent.expect("queue open while producing");
            if timed {
                enqueue.saturating_record((now_ns() - t0) / k as u64);
            }
            seq += k as u64;
        }
    }

    /// Each message enqueued then dequeued on this thread,
    /// [`Queue::BATCH`] at a time. `out` is the receive buffer, allocated by
    /// the caller outside any measured window.
    pub fn pair<'q, Q: Queue>(
        &self,
        q: &'q Q,
        first: u64,
        n: u64,
        latencies: &mut Latencies,
        out: &mut Vec<Q::Received<'q>>,
    ) {
        let mut seq = first;
        while seq < first + n {
            let k = (Q::BATCH as u64).min(first + n - seq);
            self.produce(q, seq, k, &mut latencies.enqueue);
            receive(q, k as usize, out, &mut latencies.end_to_end).expect("queue open");
            seq += k;
        }
    }

    /// The warm-up in pair mode: `workload.warmup` messages, timings
    /// dropped.
    pub fn warm_up_pair<'q, Q: Queue>(&self, q: &'q Q, out: &mut Vec<Q::Received<'q>>) {
        self.pair(q, 0, self.workload.warmup, &mut Latencies::new(), out);
    }
}

/// Receives up to `max` messages (at least one: blocks for it), one call
/// for a queue that moves one message per call, a batch call otherwise,
/// recording their end-to-end latencies. `out` is the receive buffer.
///
/// # Errors
///
/// [`QueueError::Closed`] once the queue is closed and drained.
pub fn receive<'q, Q: Queue>(
    q: &'q Q,
    max: usize,
    out: &mut Vec<Q::Received<'q>>,
    end_to_end: &mut Histogram<u64>,
) -> Result<(), QueueError> {
    if max == 1 {
        let m = q.dequeue()?;
        received(&m, end_to_end);
    } else {
        q.dequeue_batch(out, max)?;
        // The messages of one call arrive together: one clock read for the
        // batch's timed messages.
        let mut now = None;
        let mut arrival = || *now.get_or_insert_with(now_ns);
        for m in out.drain(..) {
            received_at(&m, end_to_end, &mut arrival);
        }
    }
    Ok(())
}

/// Records a received message's end-to-end latency; returns false for the
/// warm-up marker.
pub fn received(m: &queue::Message, end_to_end: &mut Histogram<u64>) -> bool {
    received_at(m, end_to_end, &mut now_ns)
}

/// [`received`], with the arrival time from `arrival` (read only for a
/// timed message).
fn received_at(m: &queue::Message, end_to_end: &mut Histogram<u64>, arrival: &mut impl FnMut() -> u64) -> bool {
    if m.seq() == MARKER {
        return false;
    }
    if m.stamp_ns() != 0 {
        end_to_end.saturating_record(arrival().saturating_sub(m.stamp_ns()));
    }
    true
}

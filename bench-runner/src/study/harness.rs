//! What every measured pass shares: the messages' contents, queue creation,
//! latency histograms, producing and receiving, the pair-mode loop, and the
//! one dispatch from a [`Variant`] to its queue type.

use std::sync::OnceLock;
use std::time::Instant;

use hdrhistogram::Histogram;
use queue::{Baseline, Batched, LockFree, MessageRef, Pooled, Queue, QueueConfig, Variant};

use crate::plan::{Sizes, WorkloadPlan};

/// Every this many messages, the latency is timed.
pub const LATENCY_SAMPLE_EVERY: u64 = 8;
/// Batch size of the batched variant.
pub const BATCH: usize = 64;
/// Marks the end of the warm-up in `threads` mode.
pub const MARKER: u64 = u64::MAX;

/// Code generic over the queue type, run for one [`Variant`] by
/// [`with_queue`]: the only place that matches a variant to its type.
pub trait WithQueue {
    type Output;
    fn run<Q: Queue + 'static>(self, harness: &Harness<'_>) -> Self::Output;
}

/// Runs `work` with `variant`'s queue type.
pub fn with_queue<W: WithQueue>(variant: Variant, harness: &Harness<'_>, work: W) -> W::Output {
    match variant {
        Variant::Baseline => work.run::<Baseline>(harness),
        Variant::Pooled => work.run::<Pooled>(harness),
        Variant::Batched => work.run::<Batched>(harness),
        Variant::LockFree => work.run::<LockFree>(harness),
    }
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
    /// The batched variant sends and receives 64 messages per call.
    pub batched: bool,
}

impl<'a> Harness<'a> {
    pub fn new(workload: &'a WorkloadPlan, variant: Variant) -> Harness<'a> {
        Harness {
            workload,
            id: "m".repeat(workload.id_bytes),
            payload: vec![0xA5; workload.payload_bytes.max],
            sizes: workload.payload_bytes,
            batched: variant == Variant::Batched,
        }
    }

    /// Message `seq`, stamped with `stamp_ns` (0: not timed).
    pub fn message(&self, seq: u64, stamp_ns: u64) -> MessageRef<'_> {
        MessageRef { id: &self.id, payload: &self.payload[..self.sizes.of(seq)], seq, stamp_ns }
    }

    /// A new queue sized for the workload: pooled variants retain every
    /// message that can be in flight at once (the queue full, a batch in
    /// each producer's and each consumer's hands), prefilled.
    pub fn queue<Q: Queue>(&self) -> Q {
        let w = self.workload;
        let mut c = QueueConfig { capacity: w.capacity as usize, ..QueueConfig::default() };
        let in_flight = c.capacity + BATCH * (w.producers + w.consumers) as usize;
        c.pool.max_retained = c.pool.max_retained.max(2 * in_flight);
        c.pool.prefill = in_flight;
        c.pool.payload_capacity = c.pool.payload_capacity.max(w.payload_bytes.max);
        c.pool.id_capacity = c.pool.id_capacity.max(w.id_bytes);
        Q::from_config(c)
    }

    /// Enqueues `n` messages from `first`, timing every sampled one.
    pub fn produce<Q: Queue>(&self, q: &Q, first: u64, n: u64, enqueue: &mut Histogram<u64>) {
        let end = first + n;
        if self.batched {
            let mut seq = first;
            while seq < end {
                let k = ((end - seq) as usize).min(BATCH);
                let t0 = now_ns();
                let batch: [MessageRef<'_>; BATCH] = std::array::from_fn(|i| {
                    let s = seq + i as u64;
                    self.message(s, if s % LATENCY_SAMPLE_EVERY == 0 { t0 } else { 0 })
                });
                q.enqueue_batch(&batch[..k]).expect("queue open while producing");
                enqueue.saturating_record((now_ns() - t0) / k as u64);
                seq += k as u64;
            }
        } else {
            for seq in first..end {
                if seq % LATENCY_SAMPLE_EVERY == 0 {
                    let t0 = now_ns();
                    q.enqueue(&self.message(seq, t0)).expect("queue open while producing");
                    enqueue.saturating_record(now_ns() - t0);
                } else {
                    q.enqueue(&self.message(seq, 0)).expect("queue open while producing");
                }
            }
        }
    }

    /// Each message enqueued then dequeued on this thread (the batched
    /// variant: 64 at a time). `out` is the batch buffer, allocated by the
    /// caller outside any measured window.
    pub fn pair<'q, Q: Queue>(
        &self,
        q: &'q Q,
        first: u64,
        n: u64,
        latencies: &mut Latencies,
        out: &mut Vec<Q::Received<'q>>,
    ) {
        let step = if self.batched { BATCH as u64 } else { 1 };
        let mut seq = first;
        while seq < first + n {
            let k = step.min(first + n - seq);
            self.produce(q, seq, k, &mut latencies.enqueue);
            if self.batched {
                q.dequeue_batch(out, k as usize).expect("queue open");
                for m in out.drain(..) {
                    received(&m, &mut latencies.end_to_end);
                }
            } else {
                let m = q.dequeue().expect("queue open");
                received(&m, &mut latencies.end_to_end);
            }
            seq += k;
        }
    }

    /// The warm-up in pair mode: `workload.warmup` messages, timings
    /// dropped.
    pub fn warm_up_pair<'q, Q: Queue>(&self, q: &'q Q, out: &mut Vec<Q::Received<'q>>) {
        self.pair(q, 0, self.workload.warmup, &mut Latencies::new(), out);
    }
}

/// Records a received message's end-to-end latency; returns false for the
/// warm-up marker.
pub fn received(m: &queue::Message, end_to_end: &mut Histogram<u64>) -> bool {
    if m.seq() == MARKER {
        return false;
    }
    if m.stamp_ns() != 0 {
        end_to_end.saturating_record(now_ns().saturating_sub(m.stamp_ns()));
    }
    true
}

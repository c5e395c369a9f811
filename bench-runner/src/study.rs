//! The workload driver: warm-up, interleaved repeats, measurement windows.
//!
//! Every variant runs the same code (generic over [`Queue`]). For each
//! repeat, variants run one after another (baseline, pooled, ... then again),
//! so that drift on a shared machine hits them alike.
//!
//! - `pair`: one thread enqueues each message and dequeues it (the batched
//!   variant: 64 at a time). The allocation figures come from a thread
//!   [`Scope`] around the measured loop: exact, peak included.
//! - `threads`: P producers and C consumers. All of them warm up first; then
//!   each opens its own [`Scope`] around its share of the measured messages,
//!   and the figures are summed. Peak live heap is sampled every millisecond
//!   from the process totals (an estimate; exact only in `pair` mode).
//! - Latency: every [`LATENCY_SAMPLE_EVERY`]th message is timed (enqueue call
//!   and end to end) into histograms allocated before the window; reading the
//!   clock for every message would cost more than some variants' whole
//!   operation.
//! - Per-operation figures come from one extra, untimed pass with
//!   `allocscope::op` guards around each enqueue and dequeue.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use allocscope::{AllocStats, Scope};
use hdrhistogram::Histogram;
use queue::{Baseline, Batched, LockFree, MessageRef, Pooled, Queue, QueueConfig, Variant};

use crate::cli::{Mode, RunArgs};
use crate::report::{
    BeforeAfter, HeapFigures, Improvement, Latency, OpFigures, Percentiles, Spread, VariantResult, Workload,
};

/// Every this many messages, the latency is timed.
pub const LATENCY_SAMPLE_EVERY: u64 = 8;
/// Batch size of the batched variant.
pub const BATCH: usize = 64;
/// Messages in the untimed per-operation pass (at most `--messages`).
const OP_PASS_MESSAGES: u64 = 100_000;
/// Marks the end of the warm-up in `threads` mode.
const MARKER: u64 = u64::MAX;

/// Nanoseconds since the study started; never 0 (0 means "not timed").
fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1
}

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 2).expect("valid histogram bounds")
}

/// The messages' contents, built before any measurement.
pub(crate) struct Contents {
    id: String,
    payload: Vec<u8>,
    sizes: crate::cli::Sizes,
}

impl Contents {
    pub(crate) fn new(args: &RunArgs) -> Contents {
        Contents {
            id: "m".repeat(args.id_bytes),
            payload: vec![0xA5; args.payload_bytes.max],
            sizes: args.payload_bytes,
        }
    }

    fn message(&self, seq: u64, stamp_ns: u64) -> MessageRef<'_> {
        MessageRef { id: &self.id, payload: &self.payload[..self.sizes.of(seq)], seq, stamp_ns }
    }
}

/// What one measured run produced.
struct RunFigures {
    elapsed: Duration,
    stats: AllocStats,
    peak_bytes: u64,
    live_after_drain: i64,
    enqueue: Histogram<u64>,
    end_to_end: Histogram<u64>,
    heap: Option<BeforeAfter<HeapFigures>>,
    rss: Option<BeforeAfter<u64>>,
}

pub(crate) struct Job<'a> {
    pub(crate) args: &'a RunArgs,
    pub(crate) contents: &'a Contents,
    pub(crate) batched: bool,
}

fn heap_figures() -> Option<HeapFigures> {
    allocscope::JemallocStats::read().map(|s| HeapFigures {
        allocated: s.allocated,
        active: s.active,
        resident: s.resident,
    })
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Enqueues `n` messages from `first`, timing every sampled one.
fn produce<Q: Queue>(q: &Q, job: &Job<'_>, first: u64, n: u64, enq: &mut Histogram<u64>) {
    let end = first + n;
    if job.batched {
        let mut seq = first;
        while seq < end {
            let k = ((end - seq) as usize).min(BATCH);
            let t0 = now_ns();
            let batch: [MessageRef<'_>; BATCH] = std::array::from_fn(|i| {
                let s = seq + i as u64;
                job.contents.message(s, if s % LATENCY_SAMPLE_EVERY == 0 { t0 } else { 0 })
            });
            q.enqueue_batch(&batch[..k]).expect("queue open while producing");
            enq.saturating_record((now_ns() - t0) / k as u64);
            seq += k as u64;
        }
    } else {
        for seq in first..end {
            if seq % LATENCY_SAMPLE_EVERY == 0 {
                let t0 = now_ns();
                q.enqueue(&job.contents.message(seq, t0)).expect("queue open while producing");
                enq.saturating_record(now_ns() - t0);
            } else {
                q.enqueue(&job.contents.message(seq, 0)).expect("queue open while producing");
            }
        }
    }
}

/// Records a received message's end-to-end latency; returns false for the
/// warm-up marker.
fn received(m: &queue::Message, e2e: &mut Histogram<u64>) -> bool {
    if m.seq() == MARKER {
        return false;
    }
    if m.stamp_ns() != 0 {
        e2e.saturating_record(now_ns().saturating_sub(m.stamp_ns()));
    }
    true
}

/// Each message enqueued then dequeued on this thread. `out` is the batch
/// buffer, allocated by the caller outside any measured window.
pub(crate) fn pair<'q, Q: Queue>(
    job: &Job<'_>,
    first: u64,
    n: u64,
    hist: (&mut Histogram<u64>, &mut Histogram<u64>),
    q: &'q Q,
    out: &mut Vec<Q::Received<'q>>,
) {
    let (enq, e2e) = hist;
    let step = if job.batched { BATCH as u64 } else { 1 };
    let mut seq = first;
    while seq < first + n {
        let k = step.min(first + n - seq);
        produce(q, job, seq, k, enq);
        if job.batched {
            q.dequeue_batch(out, k as usize).expect("queue open");
            for m in out.drain(..) {
                received(&m, e2e);
            }
        } else {
            let m = q.dequeue().expect("queue open");
            received(&m, e2e);
        }
        seq += k;
    }
}

pub(crate) fn config(args: &RunArgs) -> QueueConfig {
    let mut c = QueueConfig { capacity: args.capacity as usize, ..QueueConfig::default() };
    // Every message that can be in flight at once: the queue full, a batch
    // in each producer's hands and in each consumer's.
    let in_flight = c.capacity + BATCH * (args.producers + args.consumers) as usize;
    c.pool.max_retained = c.pool.max_retained.max(2 * in_flight);
    c.pool.prefill = in_flight;
    c.pool.payload_capacity = c.pool.payload_capacity.max(args.payload_bytes.max);
    c.pool.id_capacity = c.pool.id_capacity.max(args.id_bytes);
    c
}

fn run_pair<Q: Queue>(job: &Job<'_>) -> RunFigures {
    // Everything that outlives the run is allocated before the leak check's
    // starting point; everything the run creates is dropped before its end.
    let (mut enq, mut e2e) = (histogram(), histogram());
    let heap_before = heap_figures();
    let rss_before = rss_bytes();
    let process_before = allocscope::process_stats();
    let q = Q::from_config(config(job.args));
    let mut out = Vec::with_capacity(BATCH);
    pair(job, 0, job.args.warmup, (&mut enq, &mut e2e), &q, &mut out);
    enq.reset();
    e2e.reset();
    let scope = Scope::start();
    let start = Instant::now();
    pair(job, job.args.warmup, job.args.messages, (&mut enq, &mut e2e), &q, &mut out);
    let elapsed = start.elapsed();
    let stats = scope.finish();
    drop(out);
    drop(q);
    let live_after_drain = (allocscope::process_stats() - process_before).net_bytes();
    RunFigures {
        elapsed,
        peak_bytes: stats.peak_bytes,
        stats,
        live_after_drain,
        enqueue: enq,
        end_to_end: e2e,
        heap: heap_before.zip(heap_figures()).map(|(before, after)| BeforeAfter { before, after }),
        rss: rss_before.zip(rss_bytes()).map(|(before, after)| BeforeAfter { before, after }),
    }
}

struct WorkerFigures {
    stats: AllocStats,
    enqueue: Histogram<u64>,
    end_to_end: Histogram<u64>,
}

fn run_threads<Q: Queue + 'static>(job: &Job<'_>) -> RunFigures {
    let args = job.args;
    let (p, c) = (args.producers, args.consumers);
    // Outlives the run: allocated before the leak check's starting point.
    let (mut enq, mut e2e) = (histogram(), histogram());
    let heap_before = heap_figures();
    let rss_before = rss_bytes();
    let process_before = allocscope::process_stats();
    let q = Arc::new(Q::from_config(config(args)));
    let warmed = Arc::new(Barrier::new(p as usize + 1));
    let go = Arc::new(Barrier::new((p + c) as usize + 1));

    // Producer i's share of `total` messages, and where it starts.
    let share = move |total: u64, i: u64| total / p + u64::from(i < total % p);
    let offset = move |total: u64, i: u64| (0..i).map(|j| share(total, j)).sum::<u64>();
    let stop = AtomicBool::new(false);
    let peak = AtomicI64::new(0);
    let mut live_start = allocscope::process_stats();

    let mut figures = std::thread::scope(|s| {
        let producers: Vec<_> = (0..p)
            .map(|i| {
                let (q, warmed, go) = (Arc::clone(&q), Arc::clone(&warmed), Arc::clone(&go));
                s.spawn(move || {
                    let mut enq = histogram();
                    produce(&*q, job, offset(args.warmup, i), share(args.warmup, i), &mut enq);
                    let mut enq = histogram();
                    warmed.wait();
                    go.wait();
                    let scope = Scope::start();
                    let first = args.warmup + offset(args.messages, i);
                    produce(&*q, job, first, share(args.messages, i), &mut enq);
                    WorkerFigures { stats: scope.finish(), enqueue: enq, end_to_end: histogram() }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..c)
            .map(|_| {
                let (q, go) = (Arc::clone(&q), Arc::clone(&go));
                s.spawn(move || {
                    let mut e2e = histogram();
                    let mut out: Vec<Q::Received<'_>> = Vec::with_capacity(BATCH);
                    // Warm-up: until this consumer's end-of-warm-up marker.
                    // Single dequeues here, so that no consumer takes two
                    // markers and leaves another without one.
                    while received(&q.dequeue().expect("queue open during warm-up"), &mut e2e) {}
                    let mut e2e = histogram();
                    go.wait();
                    let scope = Scope::start();
                    loop {
                        if job.batched {
                            if q.dequeue_batch(&mut out, BATCH).is_err() {
                                break;
                            }
                            for m in out.drain(..) {
                                received(&m, &mut e2e);
                            }
                        } else {
                            match q.dequeue() {
                                Ok(m) => {
                                    received(&m, &mut e2e);
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    WorkerFigures { stats: scope.finish(), enqueue: histogram(), end_to_end: e2e }
                })
            })
            .collect();

        // End of warm-up: once every producer is done with it, one marker
        // per consumer (a consumer stops at its first, so each gets one).
        warmed.wait();
        for _ in 0..c {
            q.enqueue(&MessageRef { id: "", payload: &[], seq: MARKER, stamp_ns: 0 }).expect("queue open");
        }
        while !q.is_empty() {
            std::thread::yield_now();
        }

        // The measured window, with a sampler of the process's live heap.
        live_start = allocscope::process_stats();
        let (stop, peak, live_start) = (&stop, &peak, &live_start);
        let sampler = s.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let live = (allocscope::process_stats() - *live_start).net_bytes();
                peak.fetch_max(live, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        go.wait();
        let start = Instant::now();
        let mut figures: Vec<WorkerFigures> = producers.into_iter().map(|h| h.join().expect("producer")).collect();
        q.close();
        figures.extend(consumers.into_iter().map(|h| h.join().expect("consumer")));
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        sampler.join().expect("sampler");

        let mut stats = AllocStats::default();
        for f in &figures {
            stats = stats + f.stats;
            enq.add(&f.enqueue).expect("same histogram bounds");
            e2e.add(&f.end_to_end).expect("same histogram bounds");
        }
        drop(figures);
        drop(q);
        drop((warmed, go));
        RunFigures {
            elapsed,
            stats,
            peak_bytes: peak.load(Ordering::Relaxed).max(0) as u64,
            // Set below, once the thread scope's own bookkeeping is freed.
            live_after_drain: 0,
            enqueue: enq,
            end_to_end: e2e,
            heap: heap_before.zip(heap_figures()).map(|(before, after)| BeforeAfter { before, after }),
            rss: rss_before.zip(rss_bytes()).map(|(before, after)| BeforeAfter { before, after }),
        }
    });
    figures.live_after_drain = (allocscope::process_stats() - process_before).net_bytes();
    figures
}

/// The untimed pass: per-operation figures from `op` guards.
fn op_pass<Q: Queue>(job: &Job<'_>) -> Vec<OpFigures> {
    let q = Q::from_config(config(job.args));
    let (mut enq, mut e2e) = (histogram(), histogram());
    let mut out = Vec::with_capacity(BATCH);
    pair(job, 0, job.args.warmup.min(OP_PASS_MESSAGES), (&mut enq, &mut e2e), &q, &mut out);
    let n = job.args.messages.min(OP_PASS_MESSAGES);
    allocscope::reset_op_stats();
    for seq in 0..n {
        {
            let _op = allocscope::op("enqueue");
            q.enqueue(&job.contents.message(seq, 0)).expect("queue open");
        }
        let _op = allocscope::op("dequeue");
        drop(q.dequeue().expect("queue open"));
    }
    allocscope::op_stats()
        .into_iter()
        .filter(|r| r.calls > 0)
        .map(|r| {
            let per = r.per_call();
            OpFigures {
                name: r.name.to_owned(),
                calls: r.calls,
                bytes_per_op: per.bytes_allocated,
                allocs_per_op: per.allocs_total,
                deallocs_per_op: per.deallocs,
            }
        })
        .collect()
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    Percentiles {
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

fn dispatch(variant: Variant, mode: Mode, job: &Job<'_>) -> RunFigures {
    fn go<Q: Queue + 'static>(mode: Mode, job: &Job<'_>) -> RunFigures {
        match mode {
            Mode::Pair => run_pair::<Q>(job),
            Mode::Threads => run_threads::<Q>(job),
        }
    }
    match variant {
        Variant::Baseline => go::<Baseline>(mode, job),
        Variant::Pooled => go::<Pooled>(mode, job),
        Variant::Batched => go::<Batched>(mode, job),
        Variant::LockFree => go::<LockFree>(mode, job),
    }
}

fn dispatch_ops(variant: Variant, job: &Job<'_>) -> Vec<OpFigures> {
    match variant {
        Variant::Baseline => op_pass::<Baseline>(job),
        Variant::Pooled => op_pass::<Pooled>(job),
        Variant::Batched => op_pass::<Batched>(job),
        Variant::LockFree => op_pass::<LockFree>(job),
    }
}

/// Runs the study; `tick` is called between runs (outside every window).
pub fn run(args: &RunArgs, variants: &[Variant], mut tick: impl FnMut(&str)) -> (Workload, Vec<VariantResult>) {
    let contents = Contents::new(args);
    let job = |v: Variant| Job { args, contents: &contents, batched: v == Variant::Batched };
    let mut runs: Vec<Vec<RunFigures>> = Vec::new();
    let cells: Vec<(Variant, Mode)> = variants.iter().flat_map(|&v| args.mode.iter().map(move |&m| (v, m))).collect();
    runs.resize_with(cells.len(), Vec::new);
    for repeat in 0..args.repeat {
        for (i, &(v, m)) in cells.iter().enumerate() {
            tick(&format!("repeat {}/{} {v} {m:?}", repeat + 1, args.repeat));
            runs[i].push(dispatch(v, m, &job(v)));
        }
    }
    let ops: Vec<(Variant, Vec<OpFigures>)> = variants
        .iter()
        .map(|&v| {
            tick(&format!("per-operation pass {v}"));
            (v, dispatch_ops(v, &job(v)))
        })
        .collect();

    let mut results: Vec<VariantResult> = cells
        .iter()
        .zip(runs)
        .map(|(&(v, m), runs)| {
            summarise(v, m, args.messages, &runs, ops.iter().find(|o| o.0 == v).map(|o| o.1.clone()))
        })
        .collect();
    improvements(&mut results);
    let workload = Workload {
        messages: args.messages,
        warmup: args.warmup,
        repeats: args.repeat,
        producers: args.producers,
        consumers: args.consumers,
        id_bytes: args.id_bytes,
        payload_bytes: args.payload_bytes,
        capacity: args.capacity,
        modes: args.mode.clone(),
        latency_sample_every: LATENCY_SAMPLE_EVERY,
        separate_processes: false,
    };
    (workload, results)
}

/// Each variant's improvement over `baseline` in the same mode.
fn improvements(results: &mut [VariantResult]) {
    let baselines: Vec<VariantResult> = results.iter().filter(|r| r.variant == "baseline").cloned().collect();
    for r in results.iter_mut() {
        if let Some(b) = baselines.iter().find(|b| b.mode == r.mode) {
            r.improvement_pct = Some(Improvement {
                throughput: (r.ops_per_sec.median / b.ops_per_sec.median - 1.0) * 100.0,
                bytes_per_op: if b.bytes_per_op > 0.0 { (1.0 - r.bytes_per_op / b.bytes_per_op) * 100.0 } else { 0.0 },
                allocs_per_op: if b.allocs_per_op > 0.0 {
                    (1.0 - r.allocs_per_op / b.allocs_per_op) * 100.0
                } else {
                    0.0
                },
            });
        }
    }
}

/// Merges single-repeat results, one per process, into one result per
/// variant and mode: time samples are concatenated; allocation figures per
/// message are averaged (the processes ran the same number of messages);
/// peak and live-after-drain take the largest; latency percentiles take the
/// median over the repeats (the maximum for `max`).
pub fn merge(repeats: Vec<(Workload, Vec<VariantResult>)>) -> (Workload, Vec<VariantResult>) {
    let n = repeats.len() as f64;
    let mut iter = repeats.into_iter();
    let (mut workload, first) = iter.next().expect("at least one repeat");
    let rest: Vec<Vec<VariantResult>> = iter.map(|(_, r)| r).collect();
    workload.repeats = n as u64;
    workload.separate_processes = true;
    let mut merged = Vec::new();
    for base in first {
        let all: Vec<&VariantResult> = std::iter::once(&base)
            .chain(rest.iter().filter_map(|r| r.iter().find(|x| x.variant == base.variant && x.mode == base.mode)))
            .collect();
        let mean = |f: &dyn Fn(&VariantResult) -> f64| all.iter().map(|r| f(r)).sum::<f64>() / all.len() as f64;
        let samples = |f: &dyn Fn(&VariantResult) -> &Spread| all.iter().flat_map(|r| f(r).samples.clone()).collect();
        let med =
            |f: &dyn Fn(&VariantResult) -> u64| Spread::of(all.iter().map(|r| f(r) as f64).collect()).median as u64;
        let pct = |f: &dyn Fn(&VariantResult) -> Percentiles| Percentiles {
            p50: med(&|r| f(r).p50),
            p90: med(&|r| f(r).p90),
            p99: med(&|r| f(r).p99),
            p999: med(&|r| f(r).p999),
            max: all.iter().map(|r| f(r).max).max().unwrap_or(0),
        };
        merged.push(VariantResult {
            ns_per_op: Spread::of(samples(&|r| &r.ns_per_op)),
            ops_per_sec: Spread::of(samples(&|r| &r.ops_per_sec)),
            bytes_per_op: mean(&|r| r.bytes_per_op),
            rounded_bytes_per_op: all
                .iter()
                .map(|r| r.rounded_bytes_per_op)
                .sum::<Option<f64>>()
                .map(|total| total / all.len() as f64),
            allocs_per_op: mean(&|r| r.allocs_per_op),
            reallocs_per_op: mean(&|r| r.reallocs_per_op),
            deallocs_per_op: mean(&|r| r.deallocs_per_op),
            alloc_rate_mb_per_sec: Spread::of(all.iter().map(|r| r.alloc_rate_mb_per_sec).collect()).median,
            peak_bytes: all.iter().map(|r| r.peak_bytes).max().unwrap_or(0),
            live_after_drain_bytes: all.iter().map(|r| r.live_after_drain_bytes).max().unwrap_or(0),
            latency_ns: Latency {
                enqueue: pct(&|r| r.latency_ns.enqueue),
                end_to_end: pct(&|r| r.latency_ns.end_to_end),
            },
            jemalloc: all.last().and_then(|r| r.jemalloc.clone()),
            rss_bytes: all.last().and_then(|r| r.rss_bytes.clone()),
            improvement_pct: None,
            ..base.clone()
        });
    }
    improvements(&mut merged);
    (workload, merged)
}

fn summarise(v: Variant, mode: Mode, messages: u64, runs: &[RunFigures], ops: Option<Vec<OpFigures>>) -> VariantResult {
    let n = messages as f64;
    let ns: Vec<f64> = runs.iter().map(|r| r.elapsed.as_nanos() as f64 / n).collect();
    let total = runs.iter().fold(AllocStats::default(), |acc, r| acc + r.stats);
    let per = total.per_op(messages * runs.len() as u64);
    let rate: Vec<f64> = runs.iter().map(|r| r.stats.bytes_allocated as f64 / r.elapsed.as_secs_f64() / 1e6).collect();
    let (mut enq, mut e2e) = (histogram(), histogram());
    for r in runs {
        enq.add(&r.enqueue).expect("same bounds");
        e2e.add(&r.end_to_end).expect("same bounds");
    }
    let last = runs.last();
    VariantResult {
        variant: v.name().to_owned(),
        mode,
        ops_per_sec: Spread::of(ns.iter().map(|ns| 1e9 / ns).collect()),
        ns_per_op: Spread::of(ns),
        bytes_per_op: per.bytes_allocated,
        rounded_bytes_per_op: per.rounded_bytes_allocated,
        allocs_per_op: per.allocs_total,
        reallocs_per_op: per.reallocs,
        deallocs_per_op: per.deallocs,
        alloc_rate_mb_per_sec: Spread::of(rate).median,
        peak_bytes: runs.iter().map(|r| r.peak_bytes).max().unwrap_or(0),
        live_after_drain_bytes: runs.iter().map(|r| r.live_after_drain).max().unwrap_or(0),
        latency_ns: Latency { enqueue: percentiles(&enq), end_to_end: percentiles(&e2e) },
        ops: ops.unwrap_or_default(),
        jemalloc: last.and_then(|r| r.heap.clone()),
        rss_bytes: last.and_then(|r| r.rss.clone()),
        improvement_pct: None,
        top_sites: Vec::new(),
    }
}

//! `threads` mode: P producers and C consumers. All of them warm up first;
//! then every producer works its share of the measured messages in the
//! `producers` [`Group`], every consumer in the `consumers` group, and the
//! two groups' exact totals are the run's allocation figures, and, per
//! message, its per-operation figures (`enqueue` and `dequeue`), whatever
//! the numbers of threads. Peak live heap is sampled every millisecond from
//! the process totals (an estimate; exact only in `pair` mode).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use allocscope::{AllocStats, Group};
use queue::{MessageRef, Queue};

use super::harness::{receive, received, Harness, Latencies, BATCH, MARKER};
use super::RunFigures;
use crate::report::OpFigures;

/// One operation's figures per message, from its group's figures.
fn per_message(name: &str, stats: AllocStats, messages: u64) -> OpFigures {
    let per = stats.per_op(messages);
    OpFigures {
        name: name.to_owned(),
        calls: messages,
        bytes_per_op: per.bytes_allocated,
        allocs_per_op: per.allocs,
        deallocs_per_op: per.deallocs,
    }
}

/// The pools' per-thread caches (`thread_local::ThreadLocal`) number
/// threads through a process-wide list of free thread ids, which grows
/// (and stays) when threads that used a cache exit: 32 bytes for the first
/// two or more, and more for more threads. Done here, by as many threads
/// as the run will have, before the leak check starts, so that what the
/// check finds is the queue's.
fn warm_up_thread_ids(threads: u64) {
    let pool = queue::Pool::new(queue::PoolConfig::default());
    let all_in = Barrier::new(threads as usize);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    drop(pool.take(&MessageRef { id: "", payload: &[], seq: 0, stamp_ns: 0 }));
                    all_in.wait();
                })
            })
            .collect();
        // Joined one by one: a join waits until the thread has exited, its
        // thread-local destructors (which free the ids) included; the
        // scope's own wait ends before them.
        for w in workers {
            w.join().expect("warm-up thread");
        }
    });
}

pub fn run<Q: Queue + 'static>(h: &Harness<'_>) -> RunFigures {
    let w = h.workload;
    let (p, c) = (w.producers, w.consumers);
    // Outlives the run: allocated before the leak check's starting point.
    let mut latencies = Latencies::new();
    warm_up_thread_ids(p + c);
    let before = super::Surroundings::read();
    let q: Arc<Q> = Arc::new(h.queue());
    let warmed = Arc::new(Barrier::new(p as usize + 1));
    let go = Arc::new(Barrier::new((p + c) as usize + 1));

    // Producer i's share of `total` messages, and where it starts.
    let share = move |total: u64, i: u64| total / p + u64::from(i < total % p);
    let offset = move |total: u64, i: u64| (0..i).map(|j| share(total, j)).sum::<u64>();
    let stop = AtomicBool::new(false);
    let peak = AtomicI64::new(0);
    let (producing, consuming) = (Group::new("producers"), Group::new("consumers"));

    let (elapsed, workers) = std::thread::scope(|s| {
        let producers: Vec<_> = (0..p)
            .map(|i| {
                let (q, warmed, go, group) = (Arc::clone(&q), Arc::clone(&warmed), Arc::clone(&go), &producing);
                s.spawn(move || {
                    let mut latencies = Latencies::new();
                    h.produce(&*q, offset(w.warmup, i), share(w.warmup, i), &mut latencies.enqueue);
                    latencies.reset();
                    warmed.wait();
                    go.wait();
                    group.run(|| {
                        h.produce(&*q, w.warmup + offset(w.messages, i), share(w.messages, i), &mut latencies.enqueue)
                    });
                    latencies
                })
            })
            .collect();
        let consumers: Vec<_> = (0..c)
            .map(|_| {
                let (q, go, group) = (Arc::clone(&q), Arc::clone(&go), &consuming);
                s.spawn(move || {
                    let mut latencies = Latencies::new();
                    let mut out: Vec<Q::Received<'_>> = Vec::with_capacity(BATCH);
                    // Warm-up: until this consumer's end-of-warm-up marker.
                    // Single dequeues here, so that no consumer takes two
                    // markers and leaves another without one.
                    while received(&q.dequeue().expect("queue open during warm-up"), &mut latencies.end_to_end) {}
                    latencies.reset();
                    go.wait();
                    let in_group = group.enter();
                    while receive(&*q, Q::BATCH, &mut out, &mut latencies.end_to_end).is_ok() {}
                    drop(in_group);
                    latencies
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
        let live_start = allocscope::process_stats();
        let (stop, peak) = (&stop, &peak);
        let sampler = s.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let live = (allocscope::process_stats() - live_start).net_bytes();
                peak.fetch_max(live, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        go.wait();
        let start = Instant::now();
        let mut workers: Vec<Latencies> = producers.into_iter().map(|h| h.join().expect("producer")).collect();
        q.close();
        workers.extend(consumers.into_iter().map(|h| h.join().expect("consumer")));
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        sampler.join().expect("sampler");
        (elapsed, workers)
    });

    for worker in &workers {
        latencies.add(worker);
    }
    let (enqueue, dequeue) = (producing.stats(), consuming.stats());
    drop(workers);
    drop(q);
    drop((warmed, go, producing, consuming));
    // The leak check ends here, before the run's own results (the
    // per-operation rows and their names) are allocated.
    let surroundings = before.until_now();
    RunFigures {
        elapsed,
        stats: enqueue + dequeue,
        peak_bytes: peak.load(Ordering::Relaxed).max(0) as u64,
        latencies,
        surroundings,
        ops: Some(vec![per_message("enqueue", enqueue, w.messages), per_message("dequeue", dequeue, w.messages)]),
    }
}

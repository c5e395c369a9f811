//! `pair` mode: one thread enqueues each message and dequeues it. The
//! allocation figures come from a thread [`Scope`] around the measured
//! loop: exact, peak included.

use std::time::Instant;

use allocscope::Scope;
use queue::Queue;

use super::harness::{Harness, Latencies, BATCH};
use super::RunFigures;

pub fn run<Q: Queue>(h: &Harness<'_>) -> RunFigures {
    // Everything that outlives the run is allocated before the leak check's
    // starting point; everything the run creates is dropped before its end.
    let mut latencies = Latencies::new();
    let before = super::Surroundings::read();
    let q: Q = h.queue();
    let mut out = Vec::with_capacity(BATCH);
    h.warm_up_pair(&q, &mut out);
    let scope = Scope::start();
    let start = Instant::now();
    h.pair(&q, h.workload.warmup, h.workload.messages, &mut latencies, &mut out);
    let elapsed = start.elapsed();
    let stats = scope.finish();
    drop(out);
    drop(q);
    RunFigures { elapsed, peak_bytes: stats.peak_bytes, stats, latencies, surroundings: before.until_now(), ops: None }
}

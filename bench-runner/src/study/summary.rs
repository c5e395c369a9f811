//! Measured runs into a report's per-variant results: time spreads,
//! allocation figures per message, latency percentiles, improvements over
//! `baseline`.

use allocscope::AllocStats;
use hdrhistogram::Histogram;
use queue::Variant;

use super::harness::{Latencies, LATENCY_SAMPLE_EVERY};
use super::RunFigures;
use crate::plan::{Mode, Plan};
use crate::report::{Improvement, Latency, OpFigures, Percentiles, Spread, VariantResult, Workload};

/// The report's description of the plan's workload.
pub fn workload(plan: &Plan) -> Workload {
    let w = &plan.workload;
    Workload {
        messages: w.messages,
        warmup: w.warmup,
        repeats: plan.repeats,
        producers: w.producers,
        consumers: w.consumers,
        id_bytes: w.id_bytes,
        payload_bytes: w.payload_bytes,
        capacity: w.capacity,
        modes: plan.modes.clone(),
        latency_sample_every: LATENCY_SAMPLE_EVERY,
        separate_processes: plan.separate_processes,
    }
}

pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    Percentiles {
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

/// One variant and mode's result from its runs.
pub fn summarise(v: Variant, mode: Mode, messages: u64, runs: &[RunFigures], ops: Vec<OpFigures>) -> VariantResult {
    let n = messages as f64;
    let ns: Vec<f64> = runs.iter().map(|r| r.elapsed.as_nanos() as f64 / n).collect();
    let total = runs.iter().fold(AllocStats::default(), |acc, r| acc + r.stats);
    let per = total.per_op(messages * runs.len() as u64);
    let rate: Vec<f64> = runs.iter().map(|r| r.stats.bytes_allocated as f64 / r.elapsed.as_secs_f64() / 1e6).collect();
    let mut latencies = Latencies::new();
    for r in runs {
        latencies.add(&r.latencies);
    }
    let last = runs.last().map(|r| &r.surroundings);
    VariantResult {
        variant: v,
        mode,
        ops_per_sec: Spread::of(ns.iter().map(|ns| 1e9 / ns).collect()),
        ns_per_op: Spread::of(ns),
        bytes_per_op: per.bytes_allocated,
        rounded_bytes_per_op: per.rounded_bytes_allocated,
        allocs_per_op: per.allocs,
        reallocs_per_op: per.reallocs,
        deallocs_per_op: per.deallocs,
        alloc_rate_mb_per_sec: Spread::of(rate).median,
        peak_bytes: runs.iter().map(|r| r.peak_bytes).max().unwrap_or(0),
        held_after_drain_bytes: runs.iter().map(|r| r.surroundings.held_after_drain).max().unwrap_or(0),
        latency_ns: Latency {
            enqueue: percentiles(&latencies.enqueue),
            end_to_end: percentiles(&latencies.end_to_end),
        },
        ops,
        jemalloc: last.and_then(|s| s.heap.clone()),
        rss_bytes: last.and_then(|s| s.rss.clone()),
        improvement_pct: None,
        top_sites: Vec::new(),
        heap_profile: None,
    }
}

/// The per-operation figures the runs measured themselves, averaged over
/// the runs (each is per message of its run).
pub fn run_ops(runs: &[RunFigures]) -> Vec<OpFigures> {
    let mut ops: Vec<OpFigures> = Vec::new();
    for op in runs.iter().filter_map(|r| r.ops.as_ref()).flatten() {
        match ops.iter_mut().find(|o| o.name == op.name) {
            Some(o) => {
                o.calls += op.calls;
                o.bytes_per_op += op.bytes_per_op;
                o.allocs_per_op += op.allocs_per_op;
                o.deallocs_per_op += op.deallocs_per_op;
            }
            None => ops.push(op.clone()),
        }
    }
    // The runs' per-message figures were summed: average them.
    let n = runs.iter().filter(|r| r.ops.is_some()).count().max(1) as f64;
    for o in &mut ops {
        o.bytes_per_op /= n;
        o.allocs_per_op /= n;
        o.deallocs_per_op /= n;
    }
    ops
}

/// Each variant's improvement over `baseline` in the same mode.
pub fn improvements(results: &mut [VariantResult]) {
    let baselines: Vec<VariantResult> = results.iter().filter(|r| r.variant == Variant::Baseline).cloned().collect();
    let better = |base: f64, new: f64| if base > 0.0 { (1.0 - new / base) * 100.0 } else { 0.0 };
    for r in results.iter_mut() {
        if let Some(b) = baselines.iter().find(|b| b.mode == r.mode) {
            r.improvement_pct = Some(Improvement {
                throughput: (r.ops_per_sec.median / b.ops_per_sec.median - 1.0) * 100.0,
                bytes_per_op: better(b.bytes_per_op, r.bytes_per_op),
                allocs_per_op: better(b.allocs_per_op, r.allocs_per_op),
            });
        }
    }
}

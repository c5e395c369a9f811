//! The study: every variant of the plan through the same workload, with
//! warm-up and interleaved repeats, measured by `allocscope`.
//!
//! - [`harness`]: contents, queue creation, histograms, the pair loop and
//!   the one variant dispatch;
//! - [`pair`] and [`threads`]: one measured run in each mode;
//! - [`per_op`]: the untimed pass of per-operation figures;
//! - [`repeats`]: repeats in child processes, and merging their figures;
//! - [`summary`]: runs into a report's per-variant results;
//! - [`heap_profile`]: the `--heap-profile` pass and its files;
//! - `dhat_check`: the `--dhat` cross-check (feature `dhat`).
//!
//! For each repeat, variants run one after another (baseline, pooled, ...
//! then again), so that drift on a shared machine hits them alike.
//! Latency: every [`harness::LATENCY_SAMPLE_EVERY`]th message is timed (enqueue call
//! and end to end) into histograms allocated before the window; reading the
//! clock for every message would cost more than some variants' whole
//! operation.

#[cfg(feature = "dhat")]
pub mod dhat_check;
pub mod harness;
pub mod heap_profile;
mod pair;
mod per_op;
pub mod repeats;
mod summary;
mod threads;

use std::time::Duration;

use allocscope::AllocStats;
use queue::{Queue, Variant};

use self::harness::{with_queue, Harness, Latencies, WithQueue};
use crate::plan::{Mode, Plan};
use crate::report::{BeforeAfter, HeapFigures, OpFigures, VariantResult, Workload};

/// What one measured run produced.
pub struct RunFigures {
    pub elapsed: Duration,
    pub stats: AllocStats,
    pub peak_bytes: u64,
    pub latencies: Latencies,
    pub surroundings: Surroundings,
    /// Per-operation figures measured in the run itself (`threads` mode:
    /// its producer and consumer groups), if any.
    pub ops: Option<Vec<OpFigures>>,
}

/// The process around a run: jemalloc's and the kernel's figures before and
/// after it, and the bytes it left allocated once drained.
pub struct Surroundings {
    pub heap: Option<BeforeAfter<HeapFigures>>,
    pub rss: Option<BeforeAfter<u64>>,
    pub held_after_drain: i64,
}

fn heap_figures() -> Option<HeapFigures> {
    allocscope::jemalloc::JemallocStats::read().map(|s| HeapFigures {
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

/// The figures before a run, kept until [`Before::until_now`].
pub struct Before {
    heap: Option<HeapFigures>,
    rss: Option<u64>,
    process: AllocStats,
}

impl Surroundings {
    /// Reads the figures before a run.
    pub fn read() -> Before {
        Before { heap: heap_figures(), rss: rss_bytes(), process: allocscope::process_stats() }
    }
}

impl Before {
    /// The figures from before the run to now (call it once everything the
    /// run created is dropped).
    pub fn until_now(self) -> Surroundings {
        let process = allocscope::process_stats();
        Surroundings {
            heap: self.heap.zip(heap_figures()).map(|(before, after)| BeforeAfter { before, after }),
            rss: self.rss.zip(rss_bytes()).map(|(before, after)| BeforeAfter { before, after }),
            held_after_drain: (process - self.process).net_bytes(),
        }
    }
}

/// One measured run of a variant in a mode.
struct MeasuredRun(Mode);

impl WithQueue for MeasuredRun {
    type Output = RunFigures;
    fn run<Q: Queue + 'static>(self, h: &Harness<'_>) -> RunFigures {
        match self.0 {
            Mode::Pair => pair::run::<Q>(h),
            Mode::Threads => threads::run::<Q>(h),
        }
    }
}

/// The per-operation pass of a variant.
struct PerOpPass;

impl WithQueue for PerOpPass {
    type Output = Vec<OpFigures>;
    fn run<Q: Queue + 'static>(self, h: &Harness<'_>) -> Vec<OpFigures> {
        per_op::run::<Q>(h)
    }
}

/// Runs the plan's repeats in this process; `tick` is called between runs
/// (outside every window).
pub fn run(plan: &Plan, mut tick: impl FnMut(&str)) -> (Workload, Vec<VariantResult>) {
    let cells: Vec<(Variant, Mode)> =
        plan.variants.iter().flat_map(|&v| plan.modes.iter().map(move |&m| (v, m))).collect();
    let mut runs: Vec<Vec<RunFigures>> = Vec::new();
    runs.resize_with(cells.len(), Vec::new);
    for repeat in 0..plan.repeats {
        for (i, &(v, m)) in cells.iter().enumerate() {
            tick(&format!("repeat {}/{} {v} {m}", repeat + 1, plan.repeats));
            runs[i].push(with_queue(v, &Harness::new(&plan.workload), MeasuredRun(m)));
        }
    }
    // Pair mode's per-operation figures come from an untimed pass with op
    // guards; threads mode measures its own, through groups.
    let ops: Vec<(Variant, Vec<OpFigures>)> = plan
        .variants
        .iter()
        .filter(|_| plan.modes.contains(&Mode::Pair))
        .map(|&v| {
            tick(&format!("per-operation pass {v}"));
            (v, with_queue(v, &Harness::new(&plan.workload), PerOpPass))
        })
        .collect();
    let mut results: Vec<VariantResult> = cells
        .iter()
        .zip(runs)
        .map(|(&(v, m), runs)| {
            let ops = match m {
                Mode::Pair => ops.iter().find(|o| o.0 == v).map(|o| o.1.clone()).unwrap_or_default(),
                Mode::Threads => summary::run_ops(&runs),
            };
            summary::summarise(v, m, plan.workload.messages, &runs, ops)
        })
        .collect();
    summary::improvements(&mut results);
    (summary::workload(plan), results)
}

//! Repeats in child processes: each repeat of the study runs in a fresh
//! process of this program, so that every repeat gets its own memory
//! layout, and the statistics see the differences between processes
//! (which reach tens of percent on a shared machine). The child receives
//! the plan whole, as JSON on its standard input ([`Plan::one_repeat`]),
//! and answers with its figures as JSON on its standard output.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::report::{Latency, Percentiles, Spread, VariantResult, Workload};

/// What a child sends back.
#[derive(Debug, Serialize, Deserialize)]
pub struct RepeatFigures {
    pub workload: Workload,
    pub results: Vec<VariantResult>,
}

/// Runs repeat `r` of `plan` in a child process and reads its figures.
pub fn in_child(plan: &Plan, r: u64) -> anyhow::Result<RepeatFigures> {
    let exe = std::env::current_exe().context("locating bench-runner")?;
    let mut child = Command::new(exe)
        .arg("repeat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting a repeat's process")?;
    let plan_json = serde_json::to_vec(&plan.one_repeat()).expect("a plan serialises");
    child.stdin.take().expect("piped").write_all(&plan_json).context("sending the plan to a repeat's process")?;
    let output = child.wait_with_output().context("waiting for a repeat's process")?;
    anyhow::ensure!(output.status.success(), "repeat {} of the study failed ({})", r + 1, output.status);
    serde_json::from_slice(&output.stdout).with_context(|| format!("reading repeat {}'s figures", r + 1))
}

/// The child's side: reads the plan on standard input, runs it once in
/// this process, writes the figures on standard output.
pub fn child_main() -> anyhow::Result<()> {
    let plan: Plan = serde_json::from_reader(std::io::stdin().lock()).context("reading the plan on standard input")?;
    let (workload, results) = super::run(&plan, |_| {});
    serde_json::to_writer(std::io::stdout().lock(), &RepeatFigures { workload, results })
        .context("writing the figures")?;
    Ok(())
}

/// Merges single-repeat results, one per process, into one result per
/// variant and mode: time samples are concatenated; allocation figures per
/// message are averaged (the processes ran the same number of messages);
/// peak and live-after-drain take the largest; latency percentiles take the
/// median over the repeats (the maximum for `max`).
pub fn merge(repeats: Vec<RepeatFigures>) -> (Workload, Vec<VariantResult>) {
    let n = repeats.len() as f64;
    let mut iter = repeats.into_iter();
    let RepeatFigures { mut workload, results: first } = iter.next().expect("at least one repeat");
    let rest: Vec<Vec<VariantResult>> = iter.map(|r| r.results).collect();
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
            held_after_drain_bytes: all.iter().map(|r| r.held_after_drain_bytes).max().unwrap_or(0),
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
    super::summary::improvements(&mut merged);
    (workload, merged)
}

//! Baseline comparison and the regression gate.
//!
//! Allocation figures of `pair` mode are deterministic, so they are compared
//! exactly: any growth of allocs/op or B/op is a regression. In `threads`
//! mode a few allocations per run depend on scheduling (a channel's waiter
//! list grows the first time a thread blocks on it: about 0.001 allocs/op at
//! the default size), so growth counts there beyond [`THREADS_ALLOCS_SLACK`]
//! allocs/op or [`THREADS_BYTES_SLACK`] B/op: far above that jitter, far
//! below one allocation per message.
//!
//! Timings are compared as each variant's time relative to `baseline` in
//! the same repeat of the same run (`ns/op vs baseline`). On a shared machine
//! every variant of a run drifts together (runs of one build differed by 30 %
//! in absolute time here, all repeats alike, which a significance test
//! would call real); the variants are interleaved, so the ratio cancels the
//! drift. A timing regression needs both a ratio grown beyond the threshold
//! (medians) and a significant difference over the repeats: a two-sided
//! Mann-Whitney U test (exact distribution for small samples, as benchstat
//! does) at level 0.05 with Holm's correction over all the timing tests of
//! the comparison. The repeats must come from separate processes (the
//! runner's default): between processes the ratios moved by up to 67 % here,
//! while repeats within one process agreed closely. The baseline variant's own time is shown, not gated;
//! reports without a baseline variant fall back to absolute times.

use queue::Variant;

use crate::plan::{Mode, Sizes, WorkloadPlan};
use crate::report::num::{change, sig};
use crate::report::table::{Align, Table};
use crate::report::{Report, VariantResult, Workload};
use crate::stats::{holm, mann_whitney_p};

/// Allowed growth of allocs/op in `threads` mode; see the module docs.
pub const THREADS_ALLOCS_SLACK: f64 = 0.01;
/// Allowed growth of B/op in `threads` mode; see the module docs.
pub const THREADS_BYTES_SLACK: f64 = 1.0;

/// The outcome: a table to print (through the report's table model) and
/// the regressions found.
#[derive(Debug)]
pub struct Comparison {
    pub table: Table,
    pub regressions: Vec<String>,
}

/// The parameters that define what a report measured: what each message
/// is and how it travels. Two reports that differ in any of them measured
/// different workloads, and their per-message figures are not comparable
/// (message counts, warm-up and repeats only change the precision).
fn defining(
    producers: u64,
    consumers: u64,
    id_bytes: usize,
    payload: Sizes,
    capacity: u64,
) -> [(&'static str, String); 5] {
    let payload =
        if payload.min == payload.max { payload.min.to_string() } else { format!("{}-{}", payload.min, payload.max) };
    [
        ("producers", producers.to_string()),
        ("consumers", consumers.to_string()),
        ("id_bytes", id_bytes.to_string()),
        ("payload_bytes", payload),
        ("capacity", capacity.to_string()),
    ]
}

fn of_report(w: &Workload) -> [(&'static str, String); 5] {
    defining(w.producers, w.consumers, w.id_bytes, w.payload_bytes, w.capacity)
}

/// The defining parameters in which `base` and `new` differ, as
/// `payload_bytes 32 vs 0`; empty when they measured the same workload.
pub fn workload_differences(base: &Workload, new: &Workload) -> Vec<String> {
    differences(of_report(base), of_report(new))
}

/// [`workload_differences`] between a baseline report and the workload a
/// run is about to measure (checked before the run starts).
pub fn plan_differences(base: &Workload, plan: &WorkloadPlan) -> Vec<String> {
    let planned = defining(plan.producers, plan.consumers, plan.id_bytes, plan.payload_bytes, plan.capacity);
    differences(of_report(base), planned)
}

fn differences(base: [(&'static str, String); 5], new: [(&'static str, String); 5]) -> Vec<String> {
    base.into_iter().zip(new).filter(|(b, n)| b.1 != n.1).map(|(b, n)| format!("{} {} vs {}", b.0, b.1, n.1)).collect()
}

/// Per-repeat time of `r` relative to the baseline variant of the same
/// report and mode, when there is one with as many repeats.
fn relative(report: &Report, r: &VariantResult) -> Option<Vec<f64>> {
    let base = report.results.iter().find(|b| b.variant == Variant::Baseline && b.mode == r.mode)?;
    (base.ns_per_op.samples.len() == r.ns_per_op.samples.len())
        .then(|| r.ns_per_op.samples.iter().zip(&base.ns_per_op.samples).map(|(t, b)| t / b).collect())
}

fn median(v: &[f64]) -> f64 {
    crate::report::Spread::of(v.to_vec()).median
}

fn key(r: &VariantResult) -> (Variant, Mode) {
    (r.variant, r.mode)
}

/// Compares `new` against `base`.
pub fn compare(base: &Report, new: &Report, max_regression_pct: f64) -> Comparison {
    struct Row {
        variant: Variant,
        mode: Mode,
        metric: &'static str,
        old: f64,
        new: f64,
        note: String,
        regressed: bool,
        /// For timing rows: the p-value and the slowdown in percent.
        test: Option<(f64, f64)>,
        /// A timing difference the repeats do not show (after Holm's
        /// correction): benchstat's `~`.
        noise: bool,
    }
    let mut rows = Vec::new();
    for n in &new.results {
        let (variant, mode) = key(n);
        let Some(b) = base.results.iter().find(|b| key(b) == key(n)) else {
            rows.push(Row {
                variant,
                mode,
                metric: "-",
                old: f64::NAN,
                new: f64::NAN,
                note: "not in the baseline report".into(),
                regressed: false,
                test: None,
                noise: false,
            });
            continue;
        };
        let row = |metric, old, new, note, regressed, test| Row {
            variant,
            mode,
            metric,
            old,
            new,
            note,
            regressed,
            test,
            noise: false,
        };
        let exact = n.mode == Mode::Pair;
        for (metric, old, new, slack) in [
            ("allocs/op", b.allocs_per_op, n.allocs_per_op, THREADS_ALLOCS_SLACK),
            ("B/op", b.bytes_per_op, n.bytes_per_op, THREADS_BYTES_SLACK),
        ] {
            let grew = if exact { new > old } else { new > old + slack };
            let note = match (grew, exact) {
                (true, true) => "grew (exact comparison)".to_owned(),
                (true, false) => format!("grew by more than {slack}"),
                (false, false) if new > old => format!("grew within the threads-mode tolerance of {slack}"),
                (false, _) => String::new(),
            };
            rows.push(row(metric, old, new, note, grew, None));
        }
        if n.variant == Variant::Baseline {
            rows.push(row(
                "ns/op",
                b.ns_per_op.median,
                n.ns_per_op.median,
                "reference: shown, not gated".into(),
                false,
                None,
            ));
            continue;
        }
        let (metric, old_samples, new_samples) = match (relative(base, b), relative(new, n)) {
            (Some(o), Some(m)) => ("ns/op vs base", o, m),
            _ => ("ns/op", b.ns_per_op.samples.clone(), n.ns_per_op.samples.clone()),
        };
        let p = mann_whitney_p(&old_samples, &new_samples);
        let (old_m, new_m) = (median(&old_samples), median(&new_samples));
        rows.push(row(metric, old_m, new_m, String::new(), false, Some((p, (new_m / old_m - 1.0) * 100.0))));
    }

    // Holm's step-down correction over the timing tests (see
    // `stats::holm`).
    let timing: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].test.is_some()).collect();
    let p: Vec<f64> = timing.iter().map(|&i| rows[i].test.unwrap().0).collect();
    for (&i, (rejects, level)) in timing.iter().zip(holm(&p, 0.05)) {
        let (p, slower) = rows[i].test.unwrap();
        let regressed = rejects && slower > max_regression_pct;
        rows[i].regressed = regressed;
        rows[i].noise = !rejects;
        rows[i].note = format!(
            "p={} vs {}{}{}",
            sig(p),
            sig(level),
            if rejects { "" } else { " (not significant)" },
            if regressed { format!(", slower than the {max_regression_pct}% threshold") } else { String::new() }
        );
    }

    let mut table = Table {
        heading: String::new(),
        columns: vec![
            ("variant", Align::Left),
            ("mode", Align::Left),
            ("metric", Align::Left),
            ("old", Align::Right),
            ("new", Align::Right),
            ("delta", Align::Right),
            ("note", Align::Left),
        ],
        rows: Vec::new(),
    };
    let mut regressions = Vec::new();
    for r in &rows {
        let Row { variant, mode, metric, old, new, note, .. } = r;
        let delta = if old.is_nan() || new.is_nan() {
            "-".into()
        } else if r.noise {
            "~".into()
        } else {
            change(*old, *new)
        };
        let (variant, mode) = (variant.to_string(), mode.to_string());
        let (o, n) = (sig(*old), sig(*new));
        if r.regressed {
            regressions.push(format!("{variant} ({mode}): {metric} {o} -> {n} ({delta}) {note}"));
        }
        table.rows.push(vec![variant, mode, (*metric).to_owned(), o, n, delta, note.clone()]);
    }
    // benchstat's geomean row: the geometric mean of the timing medians,
    // old and new, over the rows where both are positive.
    let timed: Vec<(f64, f64)> =
        rows.iter().filter(|r| r.test.is_some() && r.old > 0.0 && r.new > 0.0).map(|r| (r.old, r.new)).collect();
    if !timed.is_empty() {
        let geomean =
            |f: fn(&(f64, f64)) -> f64| (timed.iter().map(|t| f(t).ln()).sum::<f64>() / timed.len() as f64).exp();
        let (o, n) = (geomean(|t| t.0), geomean(|t| t.1));
        table.rows.push(vec![
            "geomean".into(),
            String::new(),
            "timing".into(),
            sig(o),
            sig(n),
            change(o, n),
            format!("over the {} timing rows", timed.len()),
        ]);
    }
    Comparison { table, regressions }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::text;

    fn report(ns: &[(&str, [f64; 7])]) -> Report {
        let mut r: Report = serde_json::from_str(include_str!("../../reports/baseline/report.json")).unwrap();
        r.results.retain(|v| v.mode == Mode::Pair);
        for v in &mut r.results {
            let samples =
                ns.iter().find(|(name, _)| *name == v.variant.name()).expect("every variant given").1.to_vec();
            v.ns_per_op = crate::report::Spread::of(samples);
        }
        r
    }

    const FLAT: [f64; 7] = [100.0, 101.0, 99.0, 100.5, 99.5, 100.2, 99.8];

    fn scaled(k: f64) -> [f64; 7] {
        FLAT.map(|x| x * k)
    }

    #[test]
    fn a_threads_mode_growth_within_the_tolerance_says_so() {
        let old: Report = serde_json::from_str(include_str!("../../reports/baseline/report.json")).unwrap();
        let mut new = old.clone();
        let threads = new.results.iter_mut().find(|r| r.mode == Mode::Threads && r.variant == Variant::Pooled).unwrap();
        threads.allocs_per_op += THREADS_ALLOCS_SLACK / 2.0;
        let c = compare(&old, &new, 10.0);
        assert!(c.regressions.is_empty(), "{:?}", c.regressions);
        let table = text::render(&c.table);
        let row = table.lines().find(|l| l.starts_with("pooled") && l.contains("threads") && l.contains("allocs/op"));
        assert!(row.unwrap().ends_with("grew within the threads-mode tolerance of 0.01"), "{table}");
    }

    #[test]
    fn different_workloads_are_named() {
        let old: Report = serde_json::from_str(include_str!("../../reports/baseline/report.json")).unwrap();
        let mut new = old.clone();
        assert!(workload_differences(&old.workload, &new.workload).is_empty());
        new.workload.payload_bytes = Sizes { min: 0, max: 64 };
        new.workload.producers = 2;
        new.workload.messages = 7; // precision only: not a difference
        assert_eq!(
            workload_differences(&old.workload, &new.workload),
            ["producers 1 vs 2", "payload_bytes 32 vs 0-64"]
        );
    }

    #[test]
    fn a_run_where_everything_drifted_together_is_not_a_regression() {
        let all = |k: f64| {
            report(&[("baseline", scaled(k)), ("pooled", scaled(k)), ("batched", scaled(k)), ("lockfree", scaled(k))])
        };
        let c = compare(&all(1.0), &all(1.3), 10.0);
        assert!(c.regressions.is_empty(), "{:?}\n{}", c.regressions, text::render(&c.table));
    }

    #[test]
    fn one_variant_slower_relative_to_baseline_is_a_regression() {
        let old = report(&[("baseline", FLAT), ("pooled", FLAT), ("batched", FLAT), ("lockfree", FLAT)]);
        let new = report(&[("baseline", FLAT), ("pooled", FLAT), ("batched", FLAT), ("lockfree", scaled(1.25))]);
        let c = compare(&old, &new, 10.0);
        assert_eq!(c.regressions.len(), 1, "{:?}", c.regressions);
        assert_eq!(
            c.regressions,
            ["lockfree (pair): ns/op vs base 1 -> 1.25 (+25%) p=0.000583 vs 0.0167, slower than the 10% threshold"]
        );
        // The unchanged variants' deltas are noise: benchstat's `~`.
        let table = text::render(&c.table);
        let pooled = table.lines().find(|l| l.starts_with("pooled") && l.contains("ns/op vs base")).unwrap();
        assert!(pooled.contains(" ~  p=1 vs "), "{pooled}");
        let geomean = table.lines().last().unwrap();
        assert_eq!(
            geomean.split_whitespace().collect::<Vec<_>>(),
            ["geomean", "timing", "1", "1.08", "+7.72%", "over", "the", "3", "timing", "rows"]
        );
    }

    #[test]
    fn growth_from_zero_allocations_is_infinite_and_a_regression() {
        let old = report(&[("baseline", FLAT), ("pooled", FLAT), ("batched", FLAT), ("lockfree", FLAT)]);
        let mut new = old.clone();
        new.results[1].allocs_per_op = 4.0;
        let c = compare(&old, &new, 10.0);
        assert_eq!(c.regressions, ["pooled (pair): allocs/op 0 -> 4 (+Inf%) grew (exact comparison)"]);
    }
}

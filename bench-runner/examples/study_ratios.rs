//! Each variant's speed relative to `baseline` over several runs of the
//! study: for every report given, the ratio of the variant's median msg/s
//! to `baseline`'s in the same run and mode (as the report's "msg/s vs
//! baseline" column), then the median and range of those ratios, as a
//! Markdown table. `scripts/queue-study.sh` runs the study and calls it.
//!
//! `cargo run --release -p bench-runner --example study_ratios -- A/report.json B/report.json ...`

use std::path::PathBuf;
use std::process::ExitCode;

use bench_runner::report::{Report, Spread};

fn main() -> ExitCode {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        eprintln!("study_ratios: give one or more report.json files");
        return ExitCode::from(2);
    }
    let mut reports = Vec::new();
    for path in &paths {
        match Report::read(path) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("study_ratios: {e}");
                return ExitCode::from(2);
            }
        }
    }
    println!("| variant | mode | msg/s vs baseline, median of {} runs (min-max) | per run |", reports.len());
    println!("|---|---|---:|---|");
    for row in &reports[0].results {
        let ratios: Vec<f64> = reports
            .iter()
            .filter_map(|r| {
                let of = |variant| r.results.iter().find(|x| x.variant == variant && x.mode == row.mode);
                Some(of(row.variant)?.ops_per_sec.median / of(queue::Variant::Baseline)?.ops_per_sec.median)
            })
            .collect();
        let s = Spread::of(ratios.clone());
        let each: Vec<String> = ratios.iter().map(|x| format!("{x:.2}")).collect();
        println!(
            "| {} | {} | {:.2}x ({:.2}-{:.2}) | {} |",
            row.variant,
            row.mode,
            s.median,
            s.min,
            s.max,
            each.join(", ")
        );
    }
    ExitCode::SUCCESS
}

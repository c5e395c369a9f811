//! `bench-runner`: a thin CLI over the study, the report writers and the
//! comparison. Exit codes: 0 success, 1 regression, 2 bad input.
#![forbid(unsafe_code)]

mod cli;
mod compare;
#[cfg(feature = "dhat")]
mod dhat_check;
mod heap;
mod report;
mod study;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use queue::Variant;

use crate::cli::{Cli, Command, CompareArgs, RunArgs};
use crate::report::{Machine, Report, GO_REFERENCE, SCHEMA};

#[cfg(not(feature = "dhat"))]
#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> = allocscope::CountingAlloc::new(allocscope::Jemalloc);

/// With `--features dhat`: allocscope counts, dhat records when profiling.
#[cfg(feature = "dhat")]
#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<dhat::Alloc> = allocscope::CountingAlloc::new(dhat::Alloc);

/// Bad input (exit 2), as opposed to a regression (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap's message, up to its usage block, on one line.
            let rendered = e.render().to_string();
            let message: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let line = message.join(" ");
            eprintln!("bench-runner: {} (see --help)", line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let code = if e.is::<BadInput>() || e.is::<report::ReadError>() { 2 } else { 1 };
            eprintln!("bench-runner: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Run(cli.run)) {
        Command::Run(args) => run_study(args),
        Command::Compare(args) => compare_files(&args),
    }
}

fn compare_files(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    let (base, new) = args.pair();
    let base = Report::read(&base)?;
    let new = Report::read(&new)?;
    Ok(gate(&base, &new, args.max_regression))
}

fn gate(base: &Report, new: &Report, max_regression: f64) -> ExitCode {
    let c = compare::compare(base, new, max_regression);
    print!("{}", c.table);
    if c.regressions.is_empty() {
        println!("no regression");
        ExitCode::SUCCESS
    } else {
        for r in &c.regressions {
            eprintln!("regression: {r}");
        }
        ExitCode::from(1)
    }
}

fn run_study(args: RunArgs) -> anyhow::Result<ExitCode> {
    // Check every input before the long run starts.
    let baseline = args.baseline.as_deref().map(Report::read).transpose()?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| BadInput(format!("cannot create output directory {}: {e}", args.out.display())))?;
    let probe = args.out.join(format!(".write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| BadInput(format!("output directory {} is not writable: {e}", args.out.display())))?;
    let _ = std::fs::remove_file(&probe);

    let variants: Vec<Variant> = if args.variants.is_empty() { Variant::ALL.to_vec() } else { args.variants.clone() };
    if args.dhat {
        if cfg!(not(feature = "dhat")) {
            return Err(BadInput(
                "--dhat needs a build with the dhat feature: \
                 cargo run --release -p bench-runner --features dhat -- run --dhat --variant NAME"
                    .into(),
            )
            .into());
        }
        if args.variants.len() != 1 {
            return Err(BadInput("--dhat checks one variant: give exactly one --variant".into()).into());
        }
    }
    let show = !args.quiet && std::io::stderr().is_terminal();
    let (workload, mut results) = if args.in_process || args.repeat == 1 {
        let runs = args.repeat * (variants.len() * args.mode.len()) as u64 + variants.len() as u64;
        let bar = progress(show, runs);
        let mut first = true;
        let measured = study::run(&args, &variants, |what| {
            if !first {
                bar.inc(1);
            }
            first = false;
            bar.set_message(what.to_owned());
        });
        bar.finish_and_clear();
        measured
    } else {
        let bar = progress(show, args.repeat);
        let mut repeats = Vec::new();
        for r in 0..args.repeat {
            bar.set_message(format!("repeat {}/{} (own process)", r + 1, args.repeat));
            repeats.push(repeat_in_child(&args, &variants, r)?);
            bar.inc(1);
        }
        bar.finish_and_clear();
        study::merge(repeats)
    };

    let mut profile_files = Vec::new();
    if args.heap_profile {
        for p in heap::run(&args, &variants).context("profiling allocation sites")? {
            if let Some(r) = results.iter_mut().find(|r| r.variant == p.variant.name() && r.mode == cli::Mode::Pair) {
                r.top_sites = p.sites;
            }
            profile_files.extend(p.files);
        }
    }
    let notes = dhat_notes(&args, &variants)?;
    let report = Report {
        schema: SCHEMA,
        tool: format!("bench-runner {}", env!("CARGO_PKG_VERSION")),
        date: today(),
        commit: commit(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: machine(),
        workload,
        go_reference: GO_REFERENCE,
        results,
        notes,
    };
    let written = report.write(&args.out, &args.format).context("writing the reports")?;
    if !args.quiet {
        for path in written.iter().chain(&profile_files) {
            eprintln!("wrote {}", path.display());
        }
    }
    if args.format.contains(&cli::Format::Md) {
        print!("{}", report::markdown::render(&report));
    }
    Ok(match baseline {
        Some(base) => gate(&base, &report, args.max_regression),
        None => ExitCode::SUCCESS,
    })
}

/// Without the `dhat` feature there is nothing to say (`--dhat` was refused
/// earlier).
#[cfg(not(feature = "dhat"))]
fn dhat_notes(_: &RunArgs, _: &[Variant]) -> anyhow::Result<Vec<String>> {
    Ok(Vec::new())
}

/// With the `dhat` feature: the note that timings are not comparable, and
/// with `--dhat`, the cross-check (an error when the tools disagree).
#[cfg(feature = "dhat")]
fn dhat_notes(args: &RunArgs, variants: &[Variant]) -> anyhow::Result<Vec<String>> {
    let mut notes = vec!["built with the dhat feature (global allocator CountingAlloc<dhat::Alloc>, no jemalloc): \
         timings are not comparable with other builds"
        .to_owned()];
    if args.dhat {
        let v = variants[0];
        let a = dhat_check::run(args, v).context("running the dhat check")?;
        let agree = a.dhat_blocks == a.allocscope_blocks && a.dhat_bytes == a.allocscope_bytes;
        let line = format!(
            "dhat check, {v} in pair mode, {} messages: dhat counted {} blocks and {} bytes, allocscope {} \
             allocations and {} bytes ({}); dhat's own profile: {}",
            args.messages,
            a.dhat_blocks,
            a.dhat_bytes,
            a.allocscope_blocks,
            a.allocscope_bytes,
            if agree { "they agree" } else { "they DISAGREE" },
            args.out.join(v.name()).join("dhat-crate.json").display()
        );
        if !agree {
            anyhow::bail!("{line}");
        }
        if !args.quiet {
            eprintln!("{line}");
        }
        notes.push(line);
    }
    Ok(notes)
}

fn progress(show: bool, len: u64) -> ProgressBar {
    let bar = if show { ProgressBar::new(len) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").expect("valid template"));
    bar
}

/// Runs one repeat of the study in a fresh process of this program and
/// reads back its report: every repeat gets its own memory layout.
fn repeat_in_child(
    args: &RunArgs,
    variants: &[Variant],
    r: u64,
) -> anyhow::Result<(report::Workload, Vec<report::VariantResult>)> {
    let dir = std::env::temp_dir().join(format!("bench-runner-{}-repeat-{r}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let modes: Vec<&str> = args.mode.iter().map(|m| if *m == cli::Mode::Pair { "pair" } else { "threads" }).collect();
    let sizes = format!("{}-{}", args.payload_bytes.min, args.payload_bytes.max);
    let mut cmd = std::process::Command::new(std::env::current_exe().context("locating bench-runner")?);
    cmd.arg("run");
    for v in variants {
        cmd.args(["--variant", v.name()]);
    }
    cmd.args(["--messages", &args.messages.to_string()])
        .args(["--producers", &args.producers.to_string()])
        .args(["--consumers", &args.consumers.to_string()])
        .args(["--id-bytes", &args.id_bytes.to_string()])
        .args(["--payload-bytes", &sizes])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--capacity", &args.capacity.to_string()])
        .args(["--mode", &modes.join(",")])
        .args(["--repeat", "1", "--in-process", "--quiet", "--format", "json", "--out"])
        .arg(&dir)
        .stdout(std::process::Stdio::null());
    let status = cmd.status().context("starting a repeat's process")?;
    anyhow::ensure!(status.success(), "repeat {} of the study failed ({status})", r + 1);
    let report = Report::read(&dir.join("report.json")).context("reading a repeat's report")?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((report.workload, report.results))
}

fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        os: std::env::consts::OS.into(),
        arch: std::env::consts::ARCH.into(),
        cpu,
    }
}

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// Today's UTC date, `YYYY-MM-DD` (civil-from-days, Howard Hinnant).
fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

//! The `run` and `compare` commands: a plan carried out, from checking its
//! inputs to the written reports and the regression gate.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::BadInput;
use crate::plan::{Format, Mode, Plan};
use crate::report::{self, Report, GO_REFERENCE, SCHEMA};
use crate::study::heap_profile;
use crate::{compare, study};

/// Runs the study of `plan`, writes its reports and, with a baseline,
/// gates on regressions.
pub fn run(plan: &Plan) -> anyhow::Result<ExitCode> {
    // Check every input before the long run starts.
    let baseline = plan.baseline.as_deref().map(Report::read).transpose()?;
    if let (Some(base), Some(path)) = (&baseline, &plan.baseline) {
        same_workload(&compare::plan_differences(&base.workload, &plan.workload), path, plan.different_workloads)?;
    }
    check_writable(&plan.out)?;

    let show = plan.verbose && std::io::stderr().is_terminal();
    let (workload, mut results) = if plan.separate_processes {
        let bar = progress(show, plan.repeats);
        let mut repeats = Vec::new();
        for r in 0..plan.repeats {
            bar.set_message(format!("repeat {}/{} (own process)", r + 1, plan.repeats));
            repeats.push(study::repeats::in_child(plan, r)?);
            bar.inc(1);
        }
        bar.finish_and_clear();
        study::repeats::merge(repeats)
    } else {
        let cells = (plan.variants.len() * plan.modes.len()) as u64;
        let bar = progress(show, plan.repeats * cells + plan.variants.len() as u64);
        let mut first = true;
        let measured = study::run(plan, |what| {
            if !first {
                bar.inc(1);
            }
            first = false;
            bar.set_message(what.to_owned());
        });
        bar.finish_and_clear();
        measured
    };

    let mut profile_files = Vec::new();
    if let Some(rate) = plan.heap_profile {
        for p in heap_profile::run(plan, rate).context("profiling allocation sites")? {
            if let Some(r) = results.iter_mut().find(|r| r.variant == p.variant && r.mode == Mode::Pair) {
                r.top_sites = p.sites;
                r.heap_profile = Some(p.figures);
            }
            profile_files.extend(p.files);
        }
    }
    let report = Report {
        schema: SCHEMA,
        tool: format!("bench-runner {}", env!("CARGO_PKG_VERSION")),
        date: report::today(),
        commit: report::commit(),
        command: plan.command.clone(),
        machine: report::Machine::this(),
        workload,
        go_reference: GO_REFERENCE,
        results,
        notes: owner_tag_notes().into_iter().chain(dhat_notes(plan)?).collect(),
    };
    let written = report.write(&plan.out, &plan.formats).context("writing the reports")?;
    if plan.verbose {
        for path in written.iter().chain(&profile_files) {
            eprintln!("wrote {}", path.display());
        }
    }
    if plan.formats.contains(&Format::Md) {
        print!("{}", report::markdown::render(&report::table::Document::of(&report)));
    }
    Ok(match baseline {
        Some(base) => gate(&base, &report, plan.max_regression),
        None => ExitCode::SUCCESS,
    })
}

/// `compare BASE NEW`; `different_workloads`: compare reports of different
/// workloads anyway.
pub fn compare_files(
    base_path: &Path,
    new_path: &Path,
    max_regression: f64,
    different_workloads: bool,
) -> anyhow::Result<ExitCode> {
    let base = Report::read(base_path)?;
    let new = Report::read(new_path)?;
    same_workload(&compare::workload_differences(&base.workload, &new.workload), base_path, different_workloads)?;
    println!("baseline {}\nnew      {}\n", base_path.display(), new_path.display());
    Ok(gate(&base, &new, max_regression))
}

/// Refuses (a bad input: exit 2) to compare different workloads unless
/// asked to; when asked, says so.
fn same_workload(differences: &[String], base: &Path, asked: bool) -> Result<(), BadInput> {
    if differences.is_empty() {
        return Ok(());
    }
    let listed = differences.join(", ");
    if asked {
        println!("note: the baseline measured a different workload ({listed}); compared as --different-workloads asks");
        Ok(())
    } else {
        Err(BadInput(format!(
            "{} measured a different workload ({listed}): its figures are not comparable; pass \
             --different-workloads to compare anyway",
            base.display()
        )))
    }
}

fn gate(base: &Report, new: &Report, max_regression: f64) -> ExitCode {
    let c = compare::compare(base, new, max_regression);
    print!("{}", report::text::render(&c.table));
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

/// Creates the output directory and checks that files can be written in
/// it, before any measurement.
fn check_writable(out: &Path) -> Result<(), BadInput> {
    std::fs::create_dir_all(out)
        .map_err(|e| BadInput(format!("cannot create output directory {}: {e}", out.display())))?;
    let probe = out.join(format!(".write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| BadInput(format!("output directory {} is not writable: {e}", out.display())))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// With the `owner-tags` feature, the note that every block is one word
/// longer than the program asked for.
fn owner_tag_notes() -> Option<String> {
    cfg!(feature = "owner-tags").then(|| {
        "built with the owner-tags feature: every block carries an 8-byte owner tag, so rounded B/op counts the \
         size classes of the tagged blocks (B/op and allocs/op stay what the queue asked for) and timings include \
         the tags' cost"
            .to_owned()
    })
}

/// Without the `dhat` feature there is nothing to say (`--dhat` was refused
/// when the plan was made).
#[cfg(not(feature = "dhat"))]
fn dhat_notes(_: &Plan) -> anyhow::Result<Vec<String>> {
    Ok(Vec::new())
}

/// With the `dhat` feature: the note that timings are not comparable, and
/// with `--dhat`, the cross-check (an error when the tools disagree).
#[cfg(feature = "dhat")]
fn dhat_notes(plan: &Plan) -> anyhow::Result<Vec<String>> {
    let mut notes = vec!["built with the dhat feature (global allocator CountingAlloc<dhat::Alloc>, no jemalloc): \
         timings are not comparable with other builds"
        .to_owned()];
    if let Some(v) = plan.dhat {
        let a = crate::study::dhat_check::run(plan, v).context("running the dhat check")?;
        let agree = a.dhat_blocks == a.allocscope_blocks && a.dhat_bytes == a.allocscope_bytes;
        let line = format!(
            "dhat check, {v} in pair mode, {} messages: dhat counted {} blocks and {} bytes, allocscope {} \
             allocations and {} bytes ({}); dhat's own profile: {}",
            plan.workload.messages,
            a.dhat_blocks,
            a.dhat_bytes,
            a.allocscope_blocks,
            a.allocscope_bytes,
            if agree { "they agree" } else { "they DISAGREE" },
            plan.out.join(v.name()).join("dhat-crate.json").display()
        );
        if !agree {
            anyhow::bail!("{line}");
        }
        if plan.verbose {
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

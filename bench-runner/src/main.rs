//! `bench-runner`: a thin CLI over the study, the report writers and the
//! comparison. It parses the command line, turns it into a
//! [`plan::Plan`], dispatches, and maps errors to exit codes: 0 success, 1
//! regression (or a failed run), 2 bad input. Each error is one line that
//! names the bad input.
#![forbid(unsafe_code)]

mod cli;
mod compare;
#[cfg(feature = "dhat")]
mod dhat_check;
mod heap_profile;
mod plan;
mod report;
mod run;
mod study;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

#[cfg(not(feature = "dhat"))]
#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> = allocscope::CountingAlloc::new(allocscope::Jemalloc);

/// With `--features dhat`: allocscope counts, dhat records when profiling.
#[cfg(feature = "dhat")]
#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<dhat::Alloc> = allocscope::CountingAlloc::new(dhat::Alloc);

/// Bad input (exit 2), as opposed to a regression or a failed run (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

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
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let bad_input = e.is::<BadInput>() || e.is::<report::ReadError>() || e.is::<plan::PlanError>();
            eprintln!("bench-runner: {e:#}");
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Run(cli.run)) {
        Command::Run(args) => {
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            run::run(&plan::Plan::from_args(&args, command)?)
        }
        Command::Compare(args) => {
            let (base, new) = args.pair()?;
            run::compare_files(&base, &new, args.max_regression)
        }
        Command::Repeat => study::repeats::child_main().map(|()| ExitCode::SUCCESS),
    }
}

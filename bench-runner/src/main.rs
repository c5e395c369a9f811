//! `bench-runner`: parses the command line, calls the library, and maps
//! errors to exit codes: 0 success, 1 regression (or a failed run), 2 bad
//! input. Each error is one line that names the bad input.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use bench_runner::cli::{Cli, Command};
use bench_runner::{error, run, study};
use clap::Parser;

#[cfg(not(feature = "dhat"))]
#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> =
    tags(allocscope::CountingAlloc::new(allocscope::Jemalloc));

/// With `--features dhat`: allocscope counts, dhat records when profiling.
#[cfg(feature = "dhat")]
#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<dhat::Alloc> = tags(allocscope::CountingAlloc::new(dhat::Alloc));

/// With `--features owner-tags`: every block carries its owner, one word
/// more per block, so the reports' rounded B/op shows the size classes
/// that owner tags cost.
const fn tags<A: std::alloc::GlobalAlloc>(a: allocscope::CountingAlloc<A>) -> allocscope::CountingAlloc<A> {
    if cfg!(feature = "owner-tags") {
        a.with_owner_tags()
    } else {
        a
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version
        Err(e) if !e.use_stderr() => return e.print().map_or(ExitCode::from(2), |()| ExitCode::SUCCESS),
        Err(e) => {
            // clap's message, up to its usage block, on one line.
            let rendered = e.render().to_string();
            let lines: Vec<&str> = rendered.lines().map(str::trim).take_while(|l| !l.is_empty()).collect();
            eprintln!("bench-runner: {} (see --help)", lines.join(" ").trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let outcome = match cli.command.unwrap_or(Command::Run(cli.run)) {
        Command::Run(args) => {
            args.plan(std::env::args().collect::<Vec<_>>().join(" ")).map_err(Into::into).and_then(|p| run::run(&p))
        }
        Command::Compare(args) => args
            .pair()
            .map_err(Into::into)
            .and_then(|(base, new)| run::compare_files(&base, &new, args.max_regression, args.different_workloads)),
        Command::Repeat => study::repeats::child_main().map(|()| ExitCode::SUCCESS),
    };
    outcome.unwrap_or_else(|e| {
        eprintln!("bench-runner: {e:#}");
        error::exit_code_of(&e)
    })
}

//! Command-line definitions (clap derive): the low-level arguments, as
//! parsed, and [`RunArgs::plan`], which turns them into the [`Plan`] of
//! what a run does, once (ripgrep's low-level flags into high-level
//! arguments). Nothing below this module sees clap.

use std::path::PathBuf;
use std::str::FromStr;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use queue::Variant;

use crate::error::BadInput;
use crate::plan::{Format, Mode, Plan, PlanError, Sizes, WorkloadPlan};

const EXIT_CODES: &str = "Exit codes: 0 success, 1 regression found, 2 bad input.";

/// Drives every queue variant through one workload and writes memory
/// reports: throughput, latency percentiles, B/op, allocs/op, peak and live
/// memory.
///
/// Without a command, runs the study (`run`'s options apply).
#[derive(Debug, Parser)]
#[command(name = "bench-runner", version, after_help = EXIT_CODES, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `run`'s options, for the default command.
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the study and write reports (the default when no command is given).
    #[command(after_help = concat!(
        "Examples:\n",
        "  bench-runner run\n",
        "  bench-runner run --variant baseline --variant pooled --messages 100000 --repeat 3\n",
        "  bench-runner run --producers 4 --consumers 4 --mode threads --format json,md\n",
        "  bench-runner run --baseline reports/baseline/report.json\n",
        "  bench-runner run --heap-profile --sample-rate 65536\n\n",
        "Exit codes: 0 success, 1 regression found (with --baseline), 2 bad input."
    ))]
    Run(RunArgs),
    /// Compare two report.json files; exit 1 on a regression.
    #[command(after_help = concat!(
        "Examples:\n",
        "  bench-runner compare reports/baseline/report.json reports/latest/report.json\n",
        "  bench-runner compare reports/latest/report.json   (against the committed baseline)\n",
        "  bench-runner compare old.json new.json --max-regression 5\n\n",
        "With one FILE the reference is reports/baseline/report.json under the current\n",
        "directory, else under the workspace this bench-runner was built from.\n\n",
        "Allocation figures (allocs/op, B/op): pair mode is compared exactly, any growth is a\n",
        "regression; threads mode allows growth up to 0.01 allocs/op and 1 B/op (a few of its\n",
        "allocations depend on scheduling).\n",
        "Timings: each variant's ns/op relative to the baseline variant of the same run. A\n",
        "regression is a ratio grown by more than --max-regression percent whose difference\n",
        "over the repeats is significant: two-sided Mann-Whitney U at level 0.05, with Holm's\n",
        "correction over all the timing rows. A delta of ~ is one the repeats do not show.\n",
        "Reports of different workloads (message sizes, threads, capacity) are refused (exit 2)\n",
        "unless --different-workloads is given.\n\n",
        "Exit codes: 0 no regression, 1 regression found, 2 bad input."
    ))]
    Compare(CompareArgs),
    /// One repeat of a study, for `run`'s own child processes: reads the
    /// plan as JSON on standard input, writes its figures as JSON on
    /// standard output.
    #[command(hide = true)]
    Repeat,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Variant to run (repeatable); all of them when absent.
    #[arg(long = "variant", value_name = "NAME", value_parser = one_of::<Variant>(Variant::ALL.iter().map(|v| v.name())))]
    pub variants: Vec<Variant>,
    /// Measured messages per run.
    #[arg(long, value_name = "N", default_value_t = 500_000, value_parser = positive, allow_negative_numbers = true)]
    pub messages: u64,
    /// Producer threads in `threads` mode.
    #[arg(long, value_name = "P", default_value_t = 1, value_parser = positive, allow_negative_numbers = true)]
    pub producers: u64,
    /// Consumer threads in `threads` mode.
    #[arg(long, value_name = "C", default_value_t = 1, value_parser = positive, allow_negative_numbers = true)]
    pub consumers: u64,
    /// Id length in bytes (the Go workload: about 16).
    #[arg(long, value_name = "B", default_value_t = 16, allow_negative_numbers = true, value_parser = whole)]
    pub id_bytes: usize,
    /// Payload length in bytes: a number, or MIN-MAX for sizes spread evenly
    /// over that range (the Go workload: about 32).
    #[arg(long, value_name = "B|MIN-MAX", default_value = "32", value_parser = parse_sizes)]
    pub payload_bytes: Sizes,
    /// Messages per run before measuring (not counted).
    #[arg(long, value_name = "N", default_value_t = 50_000, allow_negative_numbers = true, value_parser = whole_u64)]
    pub warmup: u64,
    /// Measured runs per variant and mode, variants interleaved; each repeat
    /// runs in its own process (see --in-process). At least 7 are needed for
    /// `compare` to find a timing difference significant.
    #[arg(long, value_name = "R", default_value_t = 7, value_parser = positive, allow_negative_numbers = true)]
    pub repeat: u64,
    /// Run every repeat in this process. Faster to start, but the repeats
    /// then share one memory layout, and differences between processes
    /// (which here reach tens of percent) are invisible to the statistics.
    #[arg(long)]
    pub in_process: bool,
    /// Which modes to run.
    #[arg(long, value_delimiter = ',', default_values = ["pair", "threads"], value_parser = one_of::<Mode>(Mode::ALL.map(Mode::name)))]
    pub mode: Vec<Mode>,
    /// Queue capacity.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = positive, allow_negative_numbers = true)]
    pub capacity: u64,
    /// Directory for the reports.
    #[arg(long, value_name = "DIR", default_value = "reports/latest")]
    pub out: PathBuf,
    /// Report formats, comma-separated.
    #[arg(long, value_delimiter = ',', default_values = ["json", "md", "html", "benchfmt"], value_parser = one_of::<Format>(Format::ALL.map(Format::name)))]
    pub format: Vec<Format>,
    /// Compare with this report.json after the run; exit 1 on a regression.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Timing regression threshold for --baseline, in percent.
    #[arg(long, value_name = "PCT", default_value_t = 10.0, value_parser = percent, allow_negative_numbers = true)]
    pub max_regression: f64,
    /// Compare with a --baseline of a different workload (other message
    /// sizes, threads or capacity) instead of refusing.
    #[arg(long)]
    pub different_workloads: bool,
    /// Nothing on stderr but errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// After the study, profile each variant's allocation sites (one
    /// untimed pair-mode pass) and write `<out>/<variant>/heap.pb.gz`,
    /// `heap.folded`, `flamegraph.svg` and `dhat-heap.json`; the report
    /// gains a table of the top allocation sites.
    #[arg(long)]
    pub heap_profile: bool,
    /// Also run the chosen variant (exactly one --variant) under the dhat
    /// crate's own heap profiler and check that dhat's total blocks and
    /// bytes equal allocscope's exact counts for the same workload (exit 1
    /// if not). Needs a build with the `dhat` feature; timings of such a
    /// build are not comparable with others.
    #[arg(long)]
    pub dhat: bool,
    /// Heap profile sampling rate: one sample per this many bytes on
    /// average (Go's MemProfileRate; 1 samples every allocation).
    #[arg(long, value_name = "BYTES", default_value_t = allocscope::profile::DEFAULT_SAMPLE_RATE, value_parser = positive, allow_negative_numbers = true)]
    pub sample_rate: u64,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The reference report.json, then the one to check. With one file, the
    /// reference is the committed reports/baseline/report.json.
    #[arg(value_name = "FILE", num_args = 1..=2, required = true)]
    pub files: Vec<PathBuf>,
    /// Timing regression threshold, in percent.
    #[arg(long, value_name = "PCT", default_value_t = 10.0, value_parser = percent, allow_negative_numbers = true)]
    pub max_regression: f64,
    /// Compare reports of different workloads (other message sizes, threads
    /// or capacity) instead of refusing with exit code 2.
    #[arg(long)]
    pub different_workloads: bool,
}

impl RunArgs {
    /// The plan of `bench-runner run` with these arguments; `command` is
    /// the command line, for the report.
    ///
    /// # Errors
    ///
    /// When the arguments ask for what this build cannot do.
    pub fn plan(&self, command: String) -> Result<Plan, PlanError> {
        let args = self;
        let variants = if args.variants.is_empty() { Variant::ALL.to_vec() } else { args.variants.clone() };
        let dhat = if args.dhat {
            if cfg!(not(feature = "dhat")) {
                return Err(PlanError::DhatNotBuilt);
            }
            match args.variants.as_slice() {
                [v] => Some(*v),
                other => return Err(PlanError::DhatVariants(other.len())),
            }
        } else {
            None
        };
        Ok(Plan {
            variants,
            modes: args.mode.clone(),
            workload: WorkloadPlan {
                messages: args.messages,
                warmup: args.warmup,
                producers: args.producers,
                consumers: args.consumers,
                id_bytes: args.id_bytes,
                payload_bytes: args.payload_bytes,
                capacity: args.capacity,
            },
            repeats: args.repeat,
            separate_processes: !args.in_process && args.repeat > 1,
            out: args.out.clone(),
            formats: args.format.clone(),
            baseline: args.baseline.clone(),
            max_regression: args.max_regression,
            different_workloads: args.different_workloads,
            verbose: !args.quiet,
            heap_profile: args.heap_profile.then_some(args.sample_rate),
            dhat,
            command,
        })
    }
}

/// The committed reference run, the default baseline of `compare`.
pub const DEFAULT_BASELINE: &str = "reports/baseline/report.json";

impl CompareArgs {
    /// The reference and the report to check. With one file, the reference
    /// is [`DEFAULT_BASELINE`] under the current directory, else under the
    /// workspace this binary was built from (a `cargo install`ed runner
    /// used elsewhere).
    ///
    /// # Errors
    ///
    /// When neither exists, naming both places.
    pub fn pair(&self) -> Result<(PathBuf, PathBuf), BadInput> {
        match self.files.as_slice() {
            [new] => {
                let here = std::env::current_dir().unwrap_or_default().join(DEFAULT_BASELINE);
                let workspace =
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(std::path::Path::new("/"));
                let built = workspace.join(DEFAULT_BASELINE);
                let found = [&here, &built].into_iter().find(|p| p.is_file());
                match found {
                    Some(base) => Ok((base.clone(), new.clone())),
                    None => Err(BadInput(format!(
                        "no baseline report at {} or {}: give the reference report.json as the first FILE",
                        here.display(),
                        built.display()
                    ))),
                }
            }
            [base, new, ..] => Ok((base.clone(), new.clone())),
            [] => unreachable!("clap requires at least one file"),
        }
    }
}

/// A parser for one of `names`, which clap lists in the help and in the
/// error for any other value; each name parses with `T`'s `FromStr`.
fn one_of<T>(names: impl IntoIterator<Item = &'static str>) -> impl TypedValueParser<Value = T>
where
    T: FromStr + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Display,
{
    PossibleValuesParser::new(names).try_map(|name| T::from_str(&name).map_err(|e| e.to_string()))
}

fn positive(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) if s.parse::<i64>().is_ok() => Err("must be at least 1".into()),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

fn whole_u64(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) => Ok(n),
        Err(_) if s.parse::<i64>().is_ok() => Err("must be 0 or more".into()),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

fn whole(s: &str) -> Result<usize, String> {
    whole_u64(s).and_then(|n| usize::try_from(n).map_err(|_| format!("{s:?} is too large")))
}

fn percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p),
        _ => Err(format!("{s:?} is not a non-negative percentage")),
    }
}

fn parse_sizes(s: &str) -> Result<Sizes, String> {
    let n = |t: &str| t.trim().parse::<usize>().map_err(|_| format!("{t:?} is not a byte count"));
    let (min, max) = match s.split_once('-') {
        Some((a, b)) => (n(a)?, n(b)?),
        None => (n(s)?, n(s)?),
    };
    if min > max {
        return Err(format!("{s:?}: the minimum is larger than the maximum"));
    }
    Ok(Sizes { min, max })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;
    use crate::compare::{THREADS_ALLOCS_SLACK, THREADS_BYTES_SLACK};

    /// `compare --help` states the rules `compare` applies: the threads-mode
    /// tolerances (the constants themselves), the test, its level and
    /// Holm's correction.
    #[test]
    fn compare_help_states_the_rules_the_code_applies() {
        let mut cli = Cli::command();
        let help = cli.find_subcommand_mut("compare").unwrap().render_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for rule in [
            "pair mode is compared exactly, any growth is a regression".to_owned(),
            format!("threads mode allows growth up to {THREADS_ALLOCS_SLACK} allocs/op and {THREADS_BYTES_SLACK} B/op"),
            "two-sided Mann-Whitney U at level 0.05, with Holm's correction over all the timing rows".to_owned(),
            "A delta of ~ is one the repeats do not show".to_owned(),
        ] {
            assert!(help.contains(&rule), "{rule:?} in:\n{help}");
        }
    }
}

//! The plan: what a run will do, built once from the command line (by
//! [`crate::cli`]) and read by everything below it (the study, the
//! heap profiler, the dhat check, the report). As ripgrep turns its
//! low-level flags into high-level arguments once, nothing below `main`
//! looks at the command line again, and a repeat running in a child
//! process receives the plan whole, serialised, rather than a command line
//! rebuilt by hand.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use queue::Variant;
use serde::{Deserialize, Serialize};

/// How producers and consumers are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One thread enqueues then dequeues each message: the stable figure.
    Pair,
    /// Producer and consumer threads (--producers, --consumers).
    Threads,
}

impl Mode {
    /// Every mode, in the order a run takes them.
    pub const ALL: [Mode; 2] = [Mode::Pair, Mode::Threads];

    /// The spelling of `report.json`, `report.md` and the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Pair => "pair",
            Mode::Threads => "threads",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        Mode::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| format!("unknown mode {s:?}"))
    }
}

/// A report file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `report.json` (schema in `reports/README.md`).
    Json,
    /// `report.md`.
    Md,
    /// `report.html`.
    Html,
    /// `bench.txt`, Go's benchmark format.
    Benchfmt,
}

impl Format {
    /// Every format, in the order they are written.
    pub const ALL: [Format; 4] = [Format::Json, Format::Md, Format::Html, Format::Benchfmt];

    /// The spelling of the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Md => "md",
            Format::Html => "html",
            Format::Benchfmt => "benchfmt",
        }
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| format!("unknown format {s:?}"))
    }
}

/// Payload sizes: fixed, or spread evenly over an inclusive range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sizes {
    pub min: usize,
    pub max: usize,
}

impl Sizes {
    /// The size of message `i`: a Fibonacci hash of `i` mapped onto the
    /// range by a multiply and a shift (Lemire's reduction), not a
    /// division: this runs for every message sent, and a 64-bit `div`
    /// cost the harness about 3 ns per message.
    #[inline]
    pub fn of(&self, i: u64) -> usize {
        let span = (self.max - self.min + 1) as u64;
        let hash = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.min + ((u128::from(hash) * u128::from(span)) >> 64) as usize
    }
}

/// The messages of one run, and how they are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadPlan {
    /// Measured messages per run.
    pub messages: u64,
    /// Messages sent before measuring.
    pub warmup: u64,
    pub producers: u64,
    pub consumers: u64,
    pub id_bytes: usize,
    pub payload_bytes: Sizes,
    /// Queue capacity.
    pub capacity: u64,
}

/// Everything a run does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The variants, in the order they run (interleaved per repeat).
    pub variants: Vec<Variant>,
    pub modes: Vec<Mode>,
    pub workload: WorkloadPlan,
    /// Measured runs per variant and mode.
    pub repeats: u64,
    /// Whether each repeat runs in its own process.
    pub separate_processes: bool,
    pub out: PathBuf,
    pub formats: Vec<Format>,
    /// Compare with this report after the run.
    pub baseline: Option<PathBuf>,
    /// Timing regression threshold, in percent.
    pub max_regression: f64,
    /// Compare with a baseline of a different workload instead of refusing.
    pub different_workloads: bool,
    /// Progress and file names on stderr.
    pub verbose: bool,
    /// With `--heap-profile`: the sampling rate in bytes.
    pub heap_profile: Option<u64>,
    /// With `--dhat`: the one variant to cross-check.
    pub dhat: Option<Variant>,
    /// The command line, for the report.
    pub command: String,
}

/// A plan that cannot be carried out, with the input to blame.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "--dhat needs a build with the dhat feature: \
         cargo run --release -p bench-runner --features dhat -- run --dhat --variant NAME"
    )]
    DhatNotBuilt,
    #[error("--dhat checks one variant: give exactly one --variant (got {0})")]
    DhatVariants(usize),
}

impl Plan {
    /// The plan of one repeat of this plan, run in a child process: the
    /// same work once, in that process, with nothing written but its
    /// figures.
    pub fn one_repeat(&self) -> Plan {
        Plan {
            repeats: 1,
            separate_processes: false,
            formats: Vec::new(),
            baseline: None,
            verbose: false,
            heap_profile: None,
            dhat: None,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Sizes;

    #[test]
    fn sizes_stay_in_their_range_and_spread_evenly_over_it() {
        assert!((0..1000).all(|i| Sizes { min: 32, max: 32 }.of(i) == 32));
        let spread = Sizes { min: 10, max: 13 };
        let mut seen = [0u32; 4];
        for i in 0..40_000 {
            seen[spread.of(i) - 10] += 1;
        }
        assert!(seen.iter().all(|&n| (9_000..=11_000).contains(&n)), "{seen:?}");
        let wide = Sizes { min: 0, max: usize::MAX - 1 };
        assert!((0..1000).all(|i| wide.of(i) < usize::MAX));
    }
}

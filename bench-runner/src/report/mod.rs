//! The report: one model ([`Report`]), serialised as `report.json` (schema
//! [`SCHEMA`], documented in `reports/README.md`) and rendered as Markdown,
//! HTML, Go benchmark format and plain text, all from the same tables
//! ([`table`]). Files are written all or nothing ([`crate::output`]).

pub mod benchfmt;
pub mod html;
pub mod markdown;
pub mod num;
pub mod table;
pub mod text;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use queue::Variant;

use crate::plan::{Format, Mode, Sizes};

/// The version of the JSON layout; bumped on any incompatible change.
/// Schema 2: `ops[].allocs_per_op` counts every block handed out,
/// reallocations included, as `allocs_per_op` of the results always did
/// (allocscope's one vocabulary); schema 1 counted them apart there.
/// Schema 3: `results[].live_after_drain_bytes` is named
/// `held_after_drain_bytes`, as allocscope names bytes not freed yet;
/// schema 2 reports are read too (the one field under its old name).
pub const SCHEMA: u32 = 3;
/// The oldest schema this bench-runner reads.
pub const OLDEST_SCHEMA: u32 = 2;

/// The Go MemoryQueue figures from the source material: the reference row.
pub const GO_REFERENCE: GoReference =
    GoReference { ops_per_sec: 2_600_000.0, ns_per_op: 376.0, bytes_per_op: 152.0, allocs_per_op: 4.0 };

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GoReference {
    pub ops_per_sec: f64,
    pub ns_per_op: f64,
    pub bytes_per_op: f64,
    pub allocs_per_op: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub schema: u32,
    pub tool: String,
    pub date: String,
    pub commit: String,
    pub command: String,
    pub machine: Machine,
    pub workload: Workload,
    pub go_reference: GoReference,
    pub results: Vec<VariantResult>,
    /// Remarks a reader must see with the figures (for example, a build whose
    /// timings are not comparable).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub os: String,
    pub arch: String,
    pub cpu: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub messages: u64,
    pub warmup: u64,
    pub repeats: u64,
    pub producers: u64,
    pub consumers: u64,
    pub id_bytes: usize,
    pub payload_bytes: Sizes,
    pub capacity: u64,
    pub modes: Vec<Mode>,
    /// Every this many messages, enqueue and end-to-end latency are timed.
    pub latency_sample_every: u64,
    /// Whether each repeat ran in its own process (the default; absent in
    /// reports from before this field existed, which ran in one process).
    #[serde(default)]
    pub separate_processes: bool,
}

/// Median and range of one figure over the repeats, with the samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub samples: Vec<f64>,
}

impl Spread {
    pub fn of(samples: Vec<f64>) -> Spread {
        let mut s = samples.clone();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n == 0 {
            f64::NAN
        } else if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Spread {
            median,
            min: s.first().copied().unwrap_or(f64::NAN),
            max: s.last().copied().unwrap_or(f64::NAN),
            samples,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Time inside the enqueue call (for batch calls: the call's time
    /// divided by its messages).
    pub enqueue: Percentiles,
    /// From just before enqueue to just after dequeue.
    pub end_to_end: Percentiles,
}

/// Allocation figures of one named operation, per call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpFigures {
    pub name: String,
    pub calls: u64,
    pub bytes_per_op: f64,
    pub allocs_per_op: f64,
    pub deallocs_per_op: f64,
}

/// jemalloc's allocator-wide figures, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeapFigures {
    pub allocated: u64,
    pub active: u64,
    pub resident: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeforeAfter<T> {
    pub before: T,
    pub after: T,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub variant: Variant,
    pub mode: Mode,
    pub ns_per_op: Spread,
    pub ops_per_sec: Spread,
    /// Requested bytes allocated per message (`AllocStats::bytes_allocated`).
    pub bytes_per_op: f64,
    /// jemalloc's size-class rounded bytes per message, as Go counts B/op.
    pub rounded_bytes_per_op: Option<f64>,
    /// Allocations per message in Go's sense: allocs + reallocs.
    pub allocs_per_op: f64,
    pub reallocs_per_op: f64,
    pub deallocs_per_op: f64,
    pub alloc_rate_mb_per_sec: f64,
    /// The highest live heap above the run's starting level.
    pub peak_bytes: u64,
    /// Net bytes left allocated after the run drained (a leak check: 0);
    /// `live_after_drain_bytes` in schema 2.
    #[serde(alias = "live_after_drain_bytes")]
    pub held_after_drain_bytes: i64,
    pub latency_ns: Latency,
    /// Per named operation (`enqueue`, `dequeue`), from one untimed pass.
    pub ops: Vec<OpFigures>,
    pub jemalloc: Option<BeforeAfter<HeapFigures>>,
    pub rss_bytes: Option<BeforeAfter<u64>>,
    /// Improvement over `baseline` in the same mode, in percent (positive
    /// is better), as the source material reported it.
    pub improvement_pct: Option<Improvement>,
    /// With `--heap-profile` (pair rows): the top allocation sites.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_sites: Vec<SiteFigures>,
    /// With `--heap-profile` (pair rows): how complete the profile is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_profile: Option<ProfileFigures>,
}

/// The heap profile's own figures: what it is built from, and what it could
/// not record.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProfileFigures {
    /// Bytes per sample on average (0: samples taken at different rates).
    pub sample_rate: u64,
    /// Samples taken.
    pub samples: u64,
    /// Samples that found the stack table full: missing from every figure.
    pub dropped_samples: u64,
    /// Samples whose block could not be followed: in the allocation
    /// figures, not in the live ones.
    pub untracked_held_samples: u64,
    /// The factors (allocations, bytes) the sites' estimates were scaled by
    /// so that they add up to the pass's exact totals; absent when samples
    /// were dropped (the sites then do not cover the whole pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<[f64; 2]>,
}

/// One allocation site from the heap profile, per message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteFigures {
    /// The innermost function of the code under test.
    pub function: String,
    /// Its `file:line`.
    pub location: String,
    /// Estimated allocations per message made here.
    pub allocs_per_op: f64,
    /// Estimated bytes per message allocated here.
    pub bytes_per_op: f64,
    /// Samples behind the estimate.
    pub samples: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Improvement {
    pub throughput: f64,
    pub bytes_per_op: f64,
    pub allocs_per_op: f64,
}

impl Machine {
    /// The machine this process runs on.
    pub fn this() -> Machine {
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
}

/// The checkout's short commit, or `unknown`.
pub fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// Today's UTC date, `YYYY-MM-DD` (civil-from-days, Howard Hinnant).
pub fn today() -> String {
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

/// A report file that cannot be used, naming it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    // The cause is part of the one-line message, not a `source`: anyhow's
    // `{:#}` would print it a second time.
    #[error("cannot read {path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{path} is not a bench-runner report: {cause}")]
    Parse { path: PathBuf, cause: serde_json::Error },
    #[error(
        "{path} has report schema {found}; this bench-runner reads schemas {OLDEST_SCHEMA} to {SCHEMA} (in schema 1 the \
         per-operation allocs_per_op left reallocations out): run the study again with this bench-runner to compare \
         with it"
    )]
    Schema { path: PathBuf, found: u64 },
}

impl Report {
    /// Reads and checks a `report.json`.
    pub fn read(path: &Path) -> Result<Report, ReadError> {
        let text = fs::read_to_string(path).map_err(|cause| ReadError::Io { path: path.into(), cause })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|cause| ReadError::Parse { path: path.into(), cause })?;
        match value.get("schema").and_then(serde_json::Value::as_u64) {
            Some(s) if (u64::from(OLDEST_SCHEMA)..=u64::from(SCHEMA)).contains(&s) => {}
            Some(found) => return Err(ReadError::Schema { path: path.into(), found }),
            None => {
                return Err(ReadError::Parse {
                    path: path.into(),
                    cause: serde::de::Error::custom("no \"schema\" field"),
                })
            }
        }
        serde_json::from_value(value).map_err(|cause| ReadError::Parse { path: path.into(), cause })
    }

    /// Writes the requested formats into `dir`, all or nothing
    /// ([`crate::output`]).
    pub fn write(&self, dir: &Path, formats: &[Format]) -> anyhow::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for &format in formats {
            files.push(match format {
                Format::Json => ("report.json", serde_json::to_string_pretty(self)? + "\n"),
                Format::Md => ("report.md", markdown::render(&table::Document::of(self))),
                Format::Html => ("report.html", html::render(self)),
                Format::Benchfmt => ("bench.txt", benchfmt::render(self)),
            });
        }
        let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_bytes())).collect();
        crate::output::write_all_or_nothing(dir, &files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed reference run is schema 2: read, its
    /// `live_after_drain_bytes` under the field's schema-3 name.
    #[test]
    fn a_schema_2_report_is_read_with_its_old_field_name() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/baseline/report.json");
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"schema\": 2") && text.contains("\"live_after_drain_bytes\": 0"), "{text:.200}");
        let report = Report::read(&path).unwrap();
        assert_eq!(report.schema, 2);
        assert!(!report.results.is_empty());
        assert!(report.results.iter().all(|r| r.held_after_drain_bytes == 0));
        // Written again, it is schema 3's field name.
        let json = serde_json::to_string(&report.results[0]).unwrap();
        assert!(json.contains("\"held_after_drain_bytes\":0"), "{json}");
    }

    fn sample() -> Report {
        let spread = Spread::of(vec![10.0, 12.0, 11.0]);
        let p = Percentiles { p50: 1, p90: 2, p99: 3, p999: 4, max: 5 };
        Report {
            schema: SCHEMA,
            tool: "bench-runner test".into(),
            date: "2026-11-22".into(),
            commit: "abc1234".into(),
            command: "bench-runner run".into(),
            machine: Machine { cores: 2, os: "linux".into(), arch: "x86_64".into(), cpu: "test".into() },
            workload: Workload {
                messages: 10,
                warmup: 1,
                repeats: 3,
                producers: 1,
                consumers: 1,
                id_bytes: 16,
                payload_bytes: Sizes { min: 32, max: 32 },
                capacity: 8,
                modes: vec![Mode::Pair],
                latency_sample_every: 8,
                separate_processes: true,
            },
            go_reference: GO_REFERENCE,
            notes: vec![],
            results: vec![VariantResult {
                variant: Variant::Baseline,
                mode: Mode::Pair,
                ops_per_sec: spread.clone(),
                ns_per_op: spread,
                bytes_per_op: 120.0,
                rounded_bytes_per_op: Some(120.0),
                allocs_per_op: 4.0,
                reallocs_per_op: 0.0,
                deallocs_per_op: 4.0,
                alloc_rate_mb_per_sec: 1.5,
                peak_bytes: 120,
                held_after_drain_bytes: 0,
                latency_ns: Latency { enqueue: p, end_to_end: p },
                ops: vec![],
                jemalloc: None,
                rss_bytes: Some(BeforeAfter { before: 1, after: 2 }),
                improvement_pct: None,
                top_sites: vec![],
                heap_profile: None,
            }],
        }
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("report-unit-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn json_round_trips() {
        let d = dir("round-trip");
        let r = sample();
        r.write(&d, &[Format::Json]).unwrap();
        assert_eq!(Report::read(&d.join("report.json")).unwrap(), r);
    }

    #[test]
    fn a_write_that_fails_midway_leaves_every_old_file_and_no_temporary() {
        let d = dir("atomic");
        let old = sample();
        old.write(&d, &[Format::Json, Format::Md]).unwrap();
        let old_json = fs::read(d.join("report.json")).unwrap();
        // Make staging the second file fail.
        fs::create_dir(d.join(format!(".report.md.tmp-{}", std::process::id()))).unwrap();
        let mut new = sample();
        new.commit = "def5678".into();
        assert!(new.write(&d, &[Format::Json, Format::Md]).is_err());
        assert_eq!(fs::read(d.join("report.json")).unwrap(), old_json);
        assert!(!d.join(format!(".report.json.tmp-{}", std::process::id())).exists());
    }
}

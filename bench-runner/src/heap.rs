//! `--heap-profile`: one untimed pair-mode pass per variant with
//! allocscope's sampling heap profiler on, written as `heap.pb.gz`,
//! `heap.folded`, `flamegraph.svg` and `dhat-heap.json` under
//! `<out>/<variant>/`, and
//! summarised as the report's top allocation sites.

use std::path::{Path, PathBuf};

use anyhow::Context;
use queue::{Baseline, Batched, LockFree, Pooled, Queue, Variant};

use crate::cli::RunArgs;
use crate::report::SiteFigures;
use crate::study::{self, Contents, Job, BATCH};

/// Sites kept in the report per variant.
const TOP_SITES: usize = 8;

fn profile_pass<Q: Queue>(job: &Job<'_>) -> allocscope::HeapProfile {
    let q = Q::from_config(study::config(job.args));
    let (mut enq, mut e2e) = (study::histogram(), study::histogram());
    let mut out = Vec::with_capacity(BATCH);
    study::pair(job, 0, job.args.warmup, (&mut enq, &mut e2e), &q, &mut out);
    allocscope::reset_heap_profile();
    allocscope::start_sampling(job.args.sample_rate);
    study::pair(job, job.args.warmup, job.args.messages, (&mut enq, &mut e2e), &q, &mut out);
    allocscope::stop_sampling();
    allocscope::heap_profile()
}

/// Writes `bytes` to `path` via a temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

/// One variant's profile: its top sites and the files written.
pub struct Profiled {
    pub variant: Variant,
    pub sites: Vec<SiteFigures>,
    pub files: Vec<PathBuf>,
}

/// Profiles each variant.
pub fn run(args: &RunArgs, variants: &[Variant]) -> anyhow::Result<Vec<Profiled>> {
    let contents = Contents::new(args);
    let mut results = Vec::new();
    for &v in variants {
        let job = Job { args, contents: &contents, batched: v == Variant::Batched };
        let profile = match v {
            Variant::Baseline => profile_pass::<Baseline>(&job),
            Variant::Pooled => profile_pass::<Pooled>(&job),
            Variant::Batched => profile_pass::<Batched>(&job),
            Variant::LockFree => profile_pass::<LockFree>(&job),
        };
        let dir = args.out.join(v.name());
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut written = Vec::new();
        let folded = profile.folded();
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        for (name, bytes) in [
            ("heap.pb.gz", profile.pprof_gz()),
            ("heap.folded", folded.clone().into_bytes()),
            ("dhat-heap.json", profile.dhat_json(&format!("{command} ({v})")).into_bytes()),
        ] {
            write_atomically(&dir.join(name), &bytes)?;
            written.push(dir.join(name));
        }
        if !folded.is_empty() {
            let svg = profile
                .flamegraph_svg(&format!("{v}: bytes allocated, 1 sample per {} bytes", args.sample_rate))
                .context("drawing the flame graph")?;
            write_atomically(&dir.join("flamegraph.svg"), svg.as_bytes())?;
            written.push(dir.join("flamegraph.svg"));
        }
        results.push(Profiled { variant: v, sites: top_sites(&profile, args.messages), files: written });
    }
    Ok(results)
}

/// The sites with the most bytes, named by their innermost frame of the
/// code under test (merged when several stacks end at the same line), per
/// message.
fn top_sites(profile: &allocscope::HeapProfile, messages: u64) -> Vec<SiteFigures> {
    let n = messages.max(1) as f64;
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut sites: Vec<SiteFigures> = Vec::new();
    for site in &profile.sites {
        let frames = site.user_frames();
        let (function, location) = frames
            .first()
            .map(|f| {
                let file = Path::new(&f.file);
                let file = file.strip_prefix(&cwd).unwrap_or(file);
                (f.name.clone(), format!("{}:{}", file.display(), f.line))
            })
            .unwrap_or_else(|| ("[unknown]".into(), String::new()));
        match sites.iter_mut().find(|s| s.function == function && s.location == location) {
            Some(s) => {
                s.allocs_per_op += site.allocs / n;
                s.bytes_per_op += site.bytes / n;
                s.samples += site.samples;
            }
            None => sites.push(SiteFigures {
                function,
                location,
                allocs_per_op: site.allocs / n,
                bytes_per_op: site.bytes / n,
                samples: site.samples,
            }),
        }
    }
    sites.sort_by(|a, b| b.bytes_per_op.total_cmp(&a.bytes_per_op));
    sites.truncate(TOP_SITES);
    sites
}

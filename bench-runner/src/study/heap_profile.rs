//! `--heap-profile`: one untimed pair-mode pass per variant with
//! allocscope's sampling heap profiler on, written as `heap.pb.gz`,
//! `heap.folded`, `flamegraph.svg` and `dhat-heap.json` under
//! `<out>/<variant>/`, and summarised as the report's top allocation sites.

use std::path::{Path, PathBuf};

use anyhow::Context;
use queue::{Queue, Variant};

use super::harness::{with_queue, Harness, Latencies, WithQueue, BATCH};
use crate::output::write_all_or_nothing;
use crate::plan::Plan;
use crate::report::{ProfileFigures, SiteFigures};

/// Sites kept in the report per variant.
const TOP_SITES: usize = 8;

/// The sampled pass at `rate` bytes per sample.
struct ProfiledPass(u64);

impl WithQueue for ProfiledPass {
    /// The profile, and the exact counts of the sampled pass.
    type Output = (allocscope::profile::HeapProfile, allocscope::AllocStats);
    fn run<Q: Queue + 'static>(self, h: &Harness<'_>) -> Self::Output {
        let q: Q = h.queue();
        let mut latencies = Latencies::new();
        let mut out = Vec::with_capacity(BATCH);
        h.warm_up_pair(&q, &mut out);
        allocscope::profile::reset_heap_profile();
        allocscope::profile::start_thread_sampling(self.0);
        let scope = allocscope::Scope::start();
        h.pair(&q, h.workload.warmup, h.workload.messages, &mut latencies, &mut out);
        let exact = scope.finish();
        allocscope::profile::stop_thread_sampling();
        (allocscope::profile::heap_profile(), exact)
    }
}

/// Writes `bytes` to `path` via a temporary file and a rename.
pub struct Profiled {
    pub variant: Variant,
    pub sites: Vec<SiteFigures>,
    pub figures: ProfileFigures,
    pub files: Vec<PathBuf>,
}

/// Profiles each variant of the plan at `rate` bytes per sample.
pub fn run(plan: &Plan, rate: u64) -> anyhow::Result<Vec<Profiled>> {
    let mut results = Vec::new();
    for &v in &plan.variants {
        let (profile, exact) = with_queue(v, &Harness::new(&plan.workload), ProfiledPass(rate));
        let folded = profile.folded();
        let mut files = vec![
            ("heap.pb.gz", profile.pprof_gz_with_default(allocscope::profile::SampleType::AllocSpace)),
            ("heap.folded", folded.clone().into_bytes()),
            ("dhat-heap.json", profile.dhat_json(&format!("{} ({v})", plan.command)).into_bytes()),
        ];
        if !folded.is_empty() {
            let svg = profile
                .flamegraph_svg(&format!("{v}: bytes allocated, 1 sample per {rate} bytes"))
                .context("drawing the flame graph")?;
            files.push(("flamegraph.svg", svg.into_bytes()));
        }
        let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let written = write_all_or_nothing(&plan.out.join(v.name()), &files)?;
        let mut figures = ProfileFigures {
            sample_rate: profile.sample_rate,
            samples: profile.sites.iter().map(|s| s.samples).sum(),
            dropped_samples: profile.dropped_samples,
            untracked_held_samples: profile.untracked_held_samples,
            scale: None,
        };
        let (sites, scale) = top_sites(&profile, &exact, plan.workload.messages);
        figures.scale = scale;
        results.push(Profiled { variant: v, sites, figures, files: written });
    }
    Ok(results)
}
/// The sites with the most bytes, named by their innermost frame of the
/// code under test (merged when several stacks end at the same line), per
/// message.
///
/// Each site's figures are estimates from its samples. When every sample
/// of the pass is in the profile (none dropped), the estimates are scaled so
/// that the sites add up to the pass's exact totals (`exact`: allocations
/// plus reallocations, and bytes allocated, as the sampler counts them);
/// the scale factors are returned.
fn top_sites(
    profile: &allocscope::profile::HeapProfile,
    exact: &allocscope::AllocStats,
    messages: u64,
) -> (Vec<SiteFigures>, Option<[f64; 2]>) {
    let n = messages.max(1) as f64;
    let cwd = std::env::current_dir().unwrap_or_default();
    let (est_allocs, est_bytes) = profile.sites.iter().fold((0.0, 0.0), |(a, b), s| (a + s.allocs, b + s.bytes));
    let scale = (profile.dropped_samples == 0 && est_allocs > 0.0 && est_bytes > 0.0)
        .then(|| [exact.allocs as f64 / est_allocs, exact.bytes_allocated as f64 / est_bytes]);
    let [sa, sb] = scale.unwrap_or([1.0, 1.0]);
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
        let (allocs, bytes) = (site.allocs * sa / n, site.bytes * sb / n);
        match sites.iter_mut().find(|s| s.function == function && s.location == location) {
            Some(s) => {
                s.allocs_per_op += allocs;
                s.bytes_per_op += bytes;
                s.samples += site.samples;
            }
            None => sites.push(SiteFigures {
                function,
                location,
                allocs_per_op: allocs,
                bytes_per_op: bytes,
                samples: site.samples,
            }),
        }
    }
    sites.sort_by(|a, b| b.bytes_per_op.total_cmp(&a.bytes_per_op));
    sites.truncate(TOP_SITES);
    (sites, scale)
}

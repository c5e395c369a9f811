//! `run --dhat` (feature `dhat`): the chosen variant under the dhat crate's
//! own heap profiler, cross-checked against allocscope.
//!
//! The global allocator of such a build is `CountingAlloc<dhat::Alloc>`:
//! allocscope counts, and dhat records while its profiler runs. The same
//! deterministic pair-mode workload runs twice after a warm-up: once
//! measured by allocscope with dhat's profiler off (dhat's own bookkeeping,
//! which goes through the global allocator, would be counted otherwise),
//! once under `dhat::Profiler`, whose totals over the window must equal
//! allocscope's: blocks = allocs + reallocs, bytes = bytes allocated (both
//! count a reallocation as a new block of the new size).

use anyhow::Context;
use queue::{Baseline, Batched, LockFree, Pooled, Queue, Variant};

use crate::cli::RunArgs;
use crate::study::{self, Contents, Job, BATCH};

/// Both tools' figures for the measured window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    pub allocscope_blocks: u64,
    pub allocscope_bytes: u64,
    pub dhat_blocks: u64,
    pub dhat_bytes: u64,
}

fn passes<Q: Queue>(job: &Job<'_>, dhat_file: &std::path::Path) -> Agreement {
    let q = Q::from_config(study::config(job.args));
    let (mut enq, mut e2e) = (study::histogram(), study::histogram());
    let mut out = Vec::with_capacity(BATCH);
    let (warmup, n) = (job.args.warmup, job.args.messages);
    study::pair(job, 0, warmup, (&mut enq, &mut e2e), &q, &mut out);
    let ((), counted) = allocscope::measure(|| study::pair(job, warmup, n, (&mut enq, &mut e2e), &q, &mut out));
    let profiler = dhat::Profiler::builder().file_name(dhat_file).build();
    let before = dhat::HeapStats::get();
    study::pair(job, warmup + n, n, (&mut enq, &mut e2e), &q, &mut out);
    let after = dhat::HeapStats::get();
    drop(profiler);
    Agreement {
        allocscope_blocks: counted.allocs_total(),
        allocscope_bytes: counted.bytes_allocated,
        dhat_blocks: after.total_blocks - before.total_blocks,
        dhat_bytes: after.total_bytes - before.total_bytes,
    }
}

/// Runs the check for `variant`; dhat's own profile goes to
/// `<out>/<variant>/dhat-crate.json`.
pub fn run(args: &RunArgs, variant: Variant) -> anyhow::Result<Agreement> {
    let contents = Contents::new(args);
    let job = Job { args, contents: &contents, batched: variant == Variant::Batched };
    let dir = args.out.join(variant.name());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = dir.join("dhat-crate.json");
    Ok(match variant {
        Variant::Baseline => passes::<Baseline>(&job, &file),
        Variant::Pooled => passes::<Pooled>(&job, &file),
        Variant::Batched => passes::<Batched>(&job, &file),
        Variant::LockFree => passes::<LockFree>(&job, &file),
    })
}

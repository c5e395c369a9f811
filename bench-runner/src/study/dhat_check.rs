//! `run --dhat` (feature `dhat`): the chosen variant under the dhat crate's
//! own heap profiler, cross-checked against allocscope.
//!
//! The global allocator of such a build is `CountingAlloc<dhat::Alloc>`:
//! allocscope counts, and dhat records while its profiler runs. The same
//! deterministic pair-mode workload runs twice after a warm-up: once
//! measured by allocscope with dhat's profiler off (dhat's own bookkeeping,
//! which goes through the global allocator, would be counted otherwise),
//! once under `dhat::Profiler`, whose totals over the window must equal
//! allocscope's: blocks = allocs, bytes = bytes allocated (both count a
//! reallocation as a new block of the new size).

use std::path::PathBuf;

use anyhow::Context;
use queue::{Queue, Variant};

use super::harness::{with_queue, Harness, Latencies, WithQueue, BATCH};
use crate::plan::Plan;

/// Both tools' figures for the measured window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    pub allocscope_blocks: u64,
    pub allocscope_bytes: u64,
    pub dhat_blocks: u64,
    pub dhat_bytes: u64,
}

/// The two passes, dhat's own profile written to the given file.
struct Passes(PathBuf);

impl WithQueue for Passes {
    type Output = Agreement;
    fn run<Q: Queue + 'static>(self, h: &Harness<'_>) -> Agreement {
        let q: Q = h.queue();
        let mut latencies = Latencies::new();
        let mut out = Vec::with_capacity(BATCH);
        let (warmup, n) = (h.workload.warmup, h.workload.messages);
        h.warm_up_pair(&q, &mut out);
        let ((), counted) = allocscope::measure(|| h.pair(&q, warmup, n, &mut latencies, &mut out));
        let profiler = dhat::Profiler::builder().file_name(&self.0).build();
        let before = dhat::HeapStats::get();
        h.pair(&q, warmup + n, n, &mut latencies, &mut out);
        let after = dhat::HeapStats::get();
        drop(profiler);
        Agreement {
            allocscope_blocks: counted.allocs,
            allocscope_bytes: counted.bytes_allocated,
            dhat_blocks: after.total_blocks - before.total_blocks,
            dhat_bytes: after.total_bytes - before.total_bytes,
        }
    }
}

/// Runs the check for `variant`; dhat's own profile goes to
/// `<out>/<variant>/dhat-crate.json`.
pub fn run(plan: &Plan, variant: Variant) -> anyhow::Result<Agreement> {
    let dir = plan.out.join(variant.name());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(with_queue(variant, &Harness::new(&plan.workload), Passes(dir.join("dhat-crate.json"))))
}

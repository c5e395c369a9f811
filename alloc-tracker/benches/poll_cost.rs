//! What counting a task's work in a group adds to each tokio poll, against
//! a bare poll and a tracing span: a service counts per request this way
//! (`fut.in_group(&group)`).
//!
//! The workload: a tokio runtime with 2 worker threads; 2,000 tasks of 200
//! polls each, every poll allocating one small box and yielding. Four
//! modes, run interleaved (bare, span, shared group, own group, bare, ...)
//! over R rounds after a warm-up round:
//!
//! - `bare`: the task as it is;
//! - `tracing span`: `work().instrument(tracing::info_span!(..))`, with no
//!   subscriber installed (what a span costs a service that does not
//!   record it);
//! - `shared group`: `work().in_group(&shared)`, one group for every task;
//! - `own group`: `work().in_group(&Group::new(..))`, a group per task.
//!
//! Per round, each mode's nanoseconds per poll (the whole run, spawning
//! and joining included, over its 400,000 polls); the table gives the
//! median over rounds with the min-max, and the median over rounds of
//! (mode - bare) of the same round.
//!
//! `cargo bench -p allocscope --bench poll_cost -- [ROUNDS=9] [TASKS=2000] [POLLS=200]`

use std::hint::black_box;
use std::time::Instant;

use allocscope::{Group, InGroup};
use tracing::Instrument;

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> = allocscope::CountingAlloc::new(allocscope::Jemalloc);

/// One task: `polls` polls, each allocating a small box and yielding.
async fn work(polls: u32) {
    for i in 0..polls {
        drop(black_box(Box::new(i)));
        tokio::task::yield_now().await;
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bare,
    Span,
    SharedGroup,
    OwnGroup,
}

const MODES: [(Mode, &str); 4] = [
    (Mode::Bare, "bare"),
    (Mode::Span, "`work().instrument(tracing::info_span!(..))`, no subscriber"),
    (Mode::SharedGroup, "`work().in_group(&shared)` (one group for all tasks)"),
    (Mode::OwnGroup, "`work().in_group(&Group::new(..))` (one group per task)"),
];

/// Runs the workload once in `mode`; returns nanoseconds per poll.
fn run(rt: &tokio::runtime::Runtime, mode: Mode, tasks: u32, polls: u32, shared: &Group) -> f64 {
    let start = Instant::now();
    rt.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|_| match mode {
                Mode::Bare => tokio::spawn(work(polls)),
                Mode::Span => tokio::spawn(work(polls).instrument(tracing::info_span!("task"))),
                Mode::SharedGroup => tokio::spawn(work(polls).in_group(shared)),
                Mode::OwnGroup => tokio::spawn(work(polls).in_group(&Group::new("task"))),
            })
            .collect();
        for h in handles {
            h.await.expect("the task completes");
        }
    });
    start.elapsed().as_nanos() as f64 / (f64::from(tasks) * f64::from(polls))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    // `cargo bench` passes `--bench`; the numbers are ours.
    let args: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (rounds, tasks, polls) =
        (args.first().copied().unwrap_or(9), args.get(1).copied().unwrap_or(2000), args.get(2).copied().unwrap_or(200));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let shared = Group::new("shared");
    // Warm-up round: workers started, their queues and the groups' state
    // grown.
    for (mode, _) in MODES {
        run(&rt, mode, tasks, polls, &shared);
    }
    let mut ns: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    for _ in 0..rounds {
        for (i, (mode, _)) in MODES.iter().enumerate() {
            ns[i].push(run(&rt, *mode, tasks, polls, &shared));
        }
    }
    println!("| mode | ns per poll, median (min-max) | over bare, median of per-round differences |");
    println!("|---|---:|---:|");
    for (i, (_, name)) in MODES.iter().enumerate() {
        let mut diffs: Vec<f64> = ns[i].iter().zip(&ns[0]).map(|(m, b)| m - b).collect();
        let (min, max) = ns[i].iter().fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        let over = if i == 0 { "-".to_owned() } else { format!("{:+.1}", median(&mut diffs)) };
        println!("| {name} | {:.1} ({min:.1}-{max:.1}) | {over} |", median(&mut ns[i].clone()));
    }
    println!(
        "\n{rounds} rounds after a warm-up round, modes interleaved; {tasks} tasks x {polls} polls, tokio with 2 \
         worker threads; {} cores.",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}

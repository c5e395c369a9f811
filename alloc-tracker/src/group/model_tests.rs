//! The group and budget state machines against a model: random sequences
//! of enters, leaves (in any order), allocations, frees, reallocations,
//! nested `run`s, budgets over groups and threads, and panics, on several
//! threads, every figure compared with a plain reference count. Miri runs
//! this too (`.ci/run`), with fewer and shorter sequences.

use std::hint::black_box;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Barrier};

use proptest::prelude::*;

use super::Group;
use crate::budget::Budget;
use crate::counters::{self, Counter, Counts};
use crate::stats::AllocStats;

/// Block sizes the sequences allocate.
const SIZES: [usize; 4] = [8, 24, 100, 256];
/// Groups 0 and 1 are shared by the threads of a case; 2 and 3 are each
/// thread's own (budgets over groups check these, so that a verdict
/// depends on the thread's own sequence only).
const GROUPS: usize = 4;
const SHARED: usize = 2;
/// Blocks and guards a thread keeps at most (its model's vectors are
/// allocated beforehand, so that the model itself never allocates).
const KEEP: usize = 64;

#[derive(Clone, Debug)]
enum Op {
    Enter(usize),
    /// Drops the k-th held guard (k modulo their number), in any order.
    Leave(usize),
    Alloc(usize),
    Free(usize),
    /// Doubles the k-th kept block with a `realloc`.
    Grow(usize),
    /// Compares `Group::current()` with the model.
    Current,
    Run {
        group: usize,
        ops: Vec<Op>,
        panics: bool,
    },
    CheckGroup {
        group: usize,
        max_allocs: u64,
        max_peak: u64,
        ops: Vec<Op>,
        panics: bool,
    },
    CheckThread {
        max_allocs: u64,
        ops: Vec<Op>,
        panics: bool,
    },
}

fn ops(depth: u32) -> impl Strategy<Value = Vec<Op>> {
    let leaf = prop_oneof![
        3 => (0..GROUPS).prop_map(Op::Enter),
        3 => (0..8usize).prop_map(Op::Leave),
        4 => (0..SIZES.len()).prop_map(Op::Alloc),
        3 => (0..8usize).prop_map(Op::Free),
        1 => (0..8usize).prop_map(Op::Grow),
        1 => Just(Op::Current),
    ];
    let op = leaf.prop_recursive(depth, 16, 4, |inner| {
        let body = prop::collection::vec(inner, 0..5);
        let panics = prop::bool::weighted(0.2);
        prop_oneof![
            (0..GROUPS, body.clone(), panics).prop_map(|(group, ops, panics)| Op::Run { group, ops, panics }),
            (SHARED..GROUPS, 0..4u64, 0..400u64, body.clone(), panics).prop_map(
                |(group, max_allocs, max_peak, ops, panics)| Op::CheckGroup {
                    group,
                    max_allocs,
                    max_peak,
                    ops,
                    panics
                }
            ),
            (0..4u64, body, panics).prop_map(|(max_allocs, ops, panics)| Op::CheckThread { max_allocs, ops, panics }),
        ]
    });
    prop::collection::vec(op, 0..12)
}

/// One group's figures from one thread, as the model counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    counts: Counts,
    /// Live bytes of the group's work on this thread, and their highest
    /// value: the thread's shard peak.
    net: i64,
    peak: i64,
    /// Bytes allocated by events the model knows only in sum (a failed
    /// budget's message, resolved and formatted outside its body): the
    /// peak may be higher than `peak` by at most this.
    slack: u64,
}

impl Tally {
    fn add(&mut self, c: Counts, summed: bool) {
        self.counts = self.counts.wrapping_add(c);
        self.net = self.net.wrapping_add(c.live());
        self.peak = self.peak.max(self.net);
        if summed {
            self.slack += c[Counter::BytesAllocated];
        }
    }
}

/// A budget running in the model: what it has seen of its scope.
#[derive(Clone, Copy, Debug, Default)]
struct Watch {
    counts: Counts,
    live: i64,
    peak: i64,
    /// As [`Tally::slack`].
    slack: u64,
}

impl Watch {
    fn add(&mut self, c: Counts, summed: bool) {
        self.counts = self.counts.wrapping_add(c);
        self.live = self.live.wrapping_add(c.live());
        self.peak = self.peak.max(self.live);
        if summed {
            self.slack += c[Counter::BytesAllocated];
        }
    }

    /// Whether a measured peak is what the model allows.
    fn allows_peak(&self, peak: u64) -> bool {
        let low = self.peak.max(0) as u64;
        (low..=low + self.slack).contains(&peak)
    }
}

/// The allocator events of one `resume_unwind` caught by `catch_unwind`
/// (the unwinder's exception object): one allocation when the panic
/// starts, one free when it is caught. Measured, not assumed.
fn panic_cost() -> u64 {
    let ((), s) = crate::scope::measure(|| {
        let _ = catch_unwind(|| resume_unwind(Box::new(())));
    });
    assert_eq!((s.allocs, s.deallocs, s.reallocs, s.bytes_allocated), (1, 1, 0, s.bytes_freed), "{s}");
    s.bytes_allocated
}

/// One thread running a sequence on the real groups and on the model.
struct Runner<'g> {
    groups: [&'g Group; GROUPS],
    /// Held guards, with the model's token for each.
    guards: Vec<(super::GroupGuard, u64)>,
    /// The model's entries, in the order they were made: (group, token).
    /// The innermost group is the last one's.
    entries: Vec<(usize, u64)>,
    next_token: u64,
    kept: Vec<Vec<u8>>,
    tally: [Tally; GROUPS],
    /// Budgets over groups running, innermost last: (group, watch).
    group_checks: Vec<(usize, Watch)>,
    /// Budgets over the thread running.
    thread_checks: Vec<Watch>,
    panic_bytes: u64,
}

/// Thrown by a panicking body (a zero-sized payload: boxing it allocates
/// nothing).
struct Thrown;

impl<'g> Runner<'g> {
    fn new(groups: [&'g Group; GROUPS], panic_bytes: u64) -> Runner<'g> {
        Runner {
            groups,
            guards: Vec::with_capacity(KEEP),
            entries: Vec::with_capacity(KEEP),
            next_token: 1,
            kept: Vec::with_capacity(KEEP),
            tally: [Tally::default(); GROUPS],
            group_checks: Vec::with_capacity(KEEP),
            thread_checks: Vec::with_capacity(KEEP),
            panic_bytes,
        }
    }

    fn innermost(&self) -> Option<usize> {
        self.entries.last().map(|&(g, _)| g)
    }

    /// Counts `c` where the model says it belongs.
    fn event(&mut self, c: Counts) {
        self.count(c, false);
    }

    /// Counts `c` where the model says it belongs; `summed`: the events
    /// are known in sum only (see [`Tally::slack`]).
    fn count(&mut self, c: Counts, summed: bool) {
        if let Some(g) = self.innermost() {
            self.tally[g].add(c, summed);
            if let Some((_, w)) = self.group_checks.iter_mut().rev().find(|(cg, _)| *cg == g) {
                // Only the innermost check of this group can be watching:
                // checks over one group do not nest.
                w.add(c, summed);
            }
        }
        for w in &mut self.thread_checks {
            w.add(c, summed);
        }
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    fn run(&mut self, ops: &[Op]) {
        for op in ops {
            self.step(op);
        }
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Enter(g) => {
                if self.guards.len() < KEEP / 2 && self.entries.len() < KEEP / 2 {
                    let t = self.token();
                    self.guards.push((self.groups[g].enter(), t));
                    self.entries.push((g, t));
                }
            }
            Op::Leave(k) => {
                if !self.guards.is_empty() {
                    let (guard, t) = self.guards.remove(k % self.guards.len());
                    drop(guard);
                    let at = self.entries.iter().position(|&(_, e)| e == t).unwrap();
                    self.entries.remove(at);
                }
            }
            Op::Alloc(s) => {
                if self.kept.len() < KEEP {
                    self.kept.push(black_box(Vec::with_capacity(SIZES[s])));
                    self.event(Counts::of(&[(Counter::Allocs, 1), (Counter::BytesAllocated, SIZES[s] as u64)]));
                }
            }
            Op::Free(k) => {
                if !self.kept.is_empty() {
                    let v = self.kept.swap_remove(k % self.kept.len());
                    let size = v.capacity() as u64;
                    drop(black_box(v));
                    self.event(Counts::of(&[(Counter::Deallocs, 1), (Counter::BytesFreed, size)]));
                }
            }
            Op::Grow(k) => {
                let len = self.kept.len().max(1);
                if let Some(v) = self.kept.get_mut(k % len) {
                    let old = v.capacity();
                    if old <= 4096 {
                        v.resize(old, 0); // within capacity: no allocation
                        v.reserve_exact(old);
                        assert_eq!(v.capacity(), 2 * old);
                        v.clear();
                        self.event(Counts::of(&[
                            (Counter::Allocs, 1),
                            (Counter::Reallocs, 1),
                            (Counter::BytesAllocated, 2 * old as u64),
                            (Counter::BytesFreed, old as u64),
                        ]));
                    }
                }
            }
            Op::Current => {
                let real = Group::current().map(|g| g.name());
                assert_eq!(real, self.innermost().map(|g| self.groups[g].name()));
            }
            Op::Run { group, ref ops, panics } => self.nested(group, ops, panics, Nest::Run),
            Op::CheckGroup { group, max_allocs, max_peak, ref ops, panics } => {
                if !self.group_checks.iter().any(|&(g, _)| g == group) {
                    self.nested(group, ops, panics, Nest::CheckGroup { max_allocs, max_peak });
                }
            }
            Op::CheckThread { max_allocs, ref ops, panics } => {
                self.nested(0, ops, panics, Nest::CheckThread { max_allocs })
            }
        }
    }

    /// Runs `ops` in a closure (`run`, a budget over a group or over the
    /// thread), panicking at its end if asked; checks the verdict against
    /// the model, and counts what happens outside the body (a failed
    /// verdict's message, the caught panic's free) in the group the model
    /// says the caller is in.
    fn nested(&mut self, group: usize, ops: &[Op], panics: bool, nest: Nest) {
        let g = self.groups[group];
        let before = counters::own_counts();
        let mut inside = Counts::ZERO;
        let mut seen = Watch::default();
        let result: std::thread::Result<Option<Result<(), AllocStats>>> = {
            let this = AssertUnwindSafe(&mut *self);
            let inside = AssertUnwindSafe(&mut inside);
            let seen = AssertUnwindSafe(&mut seen);
            catch_unwind(move || {
                let (AssertUnwindSafe(this), AssertUnwindSafe(inside), AssertUnwindSafe(seen)) = (this, inside, seen);
                let body = |this: &mut Runner<'_>, inside: &mut Counts| {
                    let start = counters::own_counts();
                    this.run(ops);
                    if panics {
                        // The unwinder's exception object is allocated
                        // where the panic starts.
                        this.event(Counts::of(&[(Counter::Allocs, 1), (Counter::BytesAllocated, this.panic_bytes)]));
                        *inside = counters::own_counts().wrapping_sub(start);
                        inside[Counter::Allocs] += 1;
                        inside[Counter::BytesAllocated] += this.panic_bytes;
                        resume_unwind(Box::new(Thrown));
                    }
                    *inside = counters::own_counts().wrapping_sub(start);
                };
                match nest {
                    Nest::Run => {
                        let t = this.token();
                        this.entries.push((group, t));
                        let guard = ModelEntry { runner: this, token: t };
                        g.run(|| body(guard.runner, inside));
                        drop(guard);
                        None
                    }
                    Nest::CheckGroup { max_allocs, max_peak } => {
                        let t = this.token();
                        this.entries.push((group, t));
                        this.group_checks.push((group, Watch::default()));
                        let mut guard = ModelCheck { entry: ModelEntry { runner: this, token: t }, seen };
                        let r = Budget::new()
                            .max_allocs(max_allocs)
                            .max_peak_bytes(max_peak)
                            .check_group(g, || body(guard.entry.runner_mut(), inside));
                        drop(guard);
                        Some(r.map_err(|e| *e.stats()))
                    }
                    Nest::CheckThread { max_allocs } => {
                        this.thread_checks.push(Watch::default());
                        let guard = ModelThreadCheck { runner: this, seen };
                        let r = Budget::new().max_allocs(max_allocs).check(|| body(guard.runner, inside));
                        drop(guard);
                        Some(r.map_err(|e| *e.stats()))
                    }
                }
            })
        };
        if result.is_err() {
            // The exception object is freed where the panic is caught.
            self.event(Counts::of(&[(Counter::Deallocs, 1), (Counter::BytesFreed, self.panic_bytes)]));
            inside[Counter::Deallocs] += 1;
            inside[Counter::BytesFreed] += self.panic_bytes;
        }
        let outside = counters::own_counts().wrapping_sub(before).wrapping_sub(inside);
        let verdict = match result {
            Ok(Some(r)) => Some(r),
            _ => None,
        };
        match (nest, verdict) {
            (Nest::CheckGroup { max_allocs, max_peak }, Some(r)) => {
                let peak_over = seen.peak.max(0) as u64 > max_peak;
                if seen.slack == 0 || peak_over {
                    let over = seen.counts[Counter::Allocs] > max_allocs || peak_over;
                    assert_eq!(r.is_err(), over, "budget over group {group}: model {seen:?}, real {r:?}");
                }
                if let Err(stats) = r {
                    assert_eq!(stats.counts(), seen.counts, "the group's figures during the check");
                    assert!(seen.allows_peak(stats.peak_bytes), "the group's peak {stats:?}, model {seen:?}");
                }
            }
            (Nest::CheckThread { max_allocs }, Some(r)) => {
                assert_eq!(
                    r.is_err(),
                    seen.counts[Counter::Allocs] > max_allocs,
                    "budget over the thread: {seen:?}, {r:?}"
                );
                if let Err(stats) = r {
                    assert_eq!(stats.counts(), seen.counts);
                }
            }
            _ => {}
        }
        if !matches!(verdict, Some(Err(_))) {
            assert_eq!(outside, Counts::ZERO, "nothing is allocated outside the body unless the budget fails");
        }
        // A failed verdict's message is allocated (and freed, when the
        // result is dropped above) outside the body: in the caller's group.
        self.count(outside, true);
    }

    /// Leaves every held guard and frees every block.
    fn finish(&mut self) {
        while let Some((guard, t)) = self.guards.pop() {
            drop(guard);
            let at = self.entries.iter().position(|&(_, e)| e == t).unwrap();
            self.entries.remove(at);
        }
        while let Some(v) = self.kept.pop() {
            let size = v.capacity() as u64;
            drop(black_box(v));
            self.event(Counts::of(&[(Counter::Deallocs, 1), (Counter::BytesFreed, size)]));
        }
        assert!(Group::current().is_none() && self.entries.is_empty());
    }
}

#[derive(Clone, Copy, Debug)]
enum Nest {
    Run,
    CheckGroup { max_allocs: u64, max_peak: u64 },
    CheckThread { max_allocs: u64 },
}

/// The model's entry of a `run`, removed when the closure ends (a panic's
/// unwinding too), as the real one is.
struct ModelEntry<'r, 'g> {
    runner: &'r mut Runner<'g>,
    token: u64,
}

impl Drop for ModelEntry<'_, '_> {
    fn drop(&mut self) {
        let at = self.runner.entries.iter().position(|&(_, e)| e == self.token).unwrap();
        self.runner.entries.remove(at);
    }
}

/// The model's entry and watch of a budget over a group.
struct ModelCheck<'r, 'g, 's> {
    entry: ModelEntry<'r, 'g>,
    seen: &'s mut Watch,
}

impl<'r, 'g> ModelEntry<'r, 'g> {
    fn runner_mut(&mut self) -> &mut Runner<'g> {
        self.runner
    }
}

impl Drop for ModelCheck<'_, '_, '_> {
    fn drop(&mut self) {
        let (_, watch) = self.entry.runner.group_checks.pop().unwrap();
        *self.seen = watch;
    }
}

/// The model's watch of a budget over the thread.
struct ModelThreadCheck<'r, 'g, 's> {
    runner: &'r mut Runner<'g>,
    seen: &'s mut Watch,
}

impl Drop for ModelThreadCheck<'_, '_, '_> {
    fn drop(&mut self) {
        *self.seen = self.runner.thread_checks.pop().unwrap();
    }
}

fn compare(real: &Group, model: Tally, peak: i64, slack: u64) {
    let s = real.stats();
    assert_eq!(s.counts(), model.counts, "{}: {s}", real.name());
    let low = peak.max(0) as u64;
    assert!((low..=low + slack).contains(&s.peak_bytes), "{}: peak {} for {low} + {slack}", real.name(), s.peak_bytes);
}

/// Runs one case: every thread its own sequence, all threads alive
/// together (so each has a slot, and a shard, of its own).
fn case(sequences: Vec<Vec<Op>>) {
    let panic_bytes = panic_cost();
    let shared: Vec<Group> = (0..SHARED).map(|_| Group::new("model.shared")).collect();
    let start = Arc::new(Barrier::new(sequences.len()));
    let threads: Vec<_> = sequences
        .into_iter()
        .map(|ops| {
            let (shared, start) = (shared.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                let own = [Group::new("model.own_a"), Group::new("model.own_b")];
                let groups = [&shared[0], &shared[1], &own[0], &own[1]];
                start.wait();
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    let mut runner = Runner::new(groups, panic_bytes);
                    runner.run(&ops);
                    runner.finish();
                    for (g, t) in own.iter().zip(&runner.tally[SHARED..]) {
                        compare(g, *t, t.peak, t.slack);
                    }
                    [runner.tally[0], runner.tally[1]]
                }));
                // Every thread stays alive until all have run, and reaches
                // this point even when its sequence failed.
                start.wait();
                outcome.unwrap_or_else(|failure| resume_unwind(failure))
            })
        })
        .collect();
    let tallies: Vec<[Tally; SHARED]> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for (i, g) in shared.iter().enumerate() {
        let mut sum = Tally::default();
        for t in &tallies {
            sum.counts = sum.counts.wrapping_add(t[i].counts);
        }
        let peak = tallies.iter().map(|t| t[i].peak).max().unwrap_or(0);
        let slack = tallies.iter().map(|t| t[i].slack).max().unwrap_or(0);
        compare(g, sum, peak, slack);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 3 } else { 64 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every figure of every group and budget equals the model's, for any
    /// sequence on any number of threads.
    #[test]
    fn groups_and_budgets_count_exactly_what_the_model_counts(
        sequences in prop::collection::vec(ops(if cfg!(miri) { 2 } else { 3 }), if cfg!(miri) { 2 } else { 3 })
    ) {
        case(sequences);
    }
}

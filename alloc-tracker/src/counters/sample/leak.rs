//! Leak traces: a leak budget's measured run follows every allocation of
//! its thread in the sampler's tables, tagged with the trace's number and
//! left out of the heap profile's figures; what is still followed under
//! the tag when the run ends survived it. The trace's lifetime (the
//! thread's sampling forced to every allocation, then restored) is
//! [`LeakTrace`].

use std::sync::atomic::{AtomicU32, Ordering};

use super::live::{self, Followed, TAG_BITS};
use super::{reconcile, stacks, SAMPLER};
use crate::counters::with_local;

/// A tag no running trace has: 2^TAG_BITS - 1 tags, 0 excluded, so a tag is
/// reused only after half a million traces, long after its entries were
/// taken out.
pub(super) fn new_tag() -> u32 {
    static TAGS: AtomicU32 = AtomicU32::new(0);
    loop {
        let t = TAGS.fetch_add(1, Ordering::Relaxed).wrapping_add(1) & ((1 << TAG_BITS) - 1);
        if t != 0 {
            return t;
        }
    }
}

/// Follows `addr` for the trace `tag`: its stack and exact size, out of the
/// profile's figures (no sample counted, no stack live figure). False when
/// the tables had no place for it.
pub(super) fn trace(addr: usize, size: u64, tag: u32) -> bool {
    stacks::capture().is_some_and(|index| {
        live::follow_live(addr, Followed { stack: index as u32, tag, allocs: 1.0, bytes: size as f64, group: 0 })
    })
}

/// The allocations a leak trace followed that were still held at its end.
#[derive(Debug)]
pub(crate) struct Survivors {
    /// How many blocks.
    pub count: u64,
    /// The largest one: its size and its stack's return addresses.
    pub largest: Option<(u64, Vec<usize>)>,
    /// Allocations the tables had no place for (not in `count`).
    pub lost: u64,
}

/// Takes the blocks still followed under `tag` out of the tables and
/// describes them; `lost` allocations found no place.
pub(super) fn survivors(tag: u32, lost: u64) -> Survivors {
    let mut survivors = Survivors { count: 0, largest: None, lost };
    let mut largest: Option<(u64, u32)> = None;
    live::take_tagged(tag, |f| {
        survivors.count += 1;
        let size = f.bytes as u64;
        if largest.is_none_or(|(l, _)| size > l) {
            largest = Some((size, f.stack));
        }
    });
    survivors.largest = largest.map(|(size, stack)| (size, stacks::addresses(stack as usize)));
    survivors
}

/// Takes the blocks still followed under `tag` out of the tables.
pub(super) fn forget(tag: u32) {
    live::take_tagged(tag, |_| {});
}

/// A leak budget's trace of the current thread: while it lives, every
/// allocation of the thread is followed in the live table with its stack
/// (as sampling at rate 1 does, but tagged and left out of the heap
/// profile; see the module docs), and every free on the thread takes its block
/// out. What is left when it ends ([`LeakTrace::finish`], or drop)
/// survived the run.
///
/// The thread's own sampling is suspended meanwhile (its allocations are
/// not in the heap profile); its rate is restored at the end.
pub(crate) struct LeakTrace {
    tag: u32,
    own: bool,
    own_rate: u64,
    done: bool,
}

impl LeakTrace {
    /// Starts tracing the current thread's allocations.
    pub(crate) fn start() -> LeakTrace {
        let tag = new_tag();
        let (own, own_rate) = SAMPLER.with(|s| {
            let saved = (s.own.get(), s.own_rate.get());
            assert_eq!(s.leak_tag.get(), 0, "allocscope: a leak budget cannot run inside another one's tracked run");
            s.own.set(true);
            s.own_rate.set(1);
            s.leak_tag.set(tag);
            s.leak_lost.set(0);
            saved
        });
        with_local(|l| {
            crate::counters::settle(l);
            reconcile(l);
        });
        LeakTrace { tag, own, own_rate, done: false }
    }

    /// Stops tracing and returns what survived (and forgets it).
    pub(crate) fn finish(mut self) -> Survivors {
        self.stop();
        survivors(self.tag, SAMPLER.with(|s| s.leak_lost.get()))
    }

    fn stop(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        SAMPLER.with(|s| {
            s.leak_tag.set(0);
            s.own.set(self.own);
            s.own_rate.set(self.own_rate);
        });
        with_local(reconcile);
    }
}

impl Drop for LeakTrace {
    /// A run that panicked: the thread samples as before, and the trace's
    /// entries leave the table.
    fn drop(&mut self) {
        if !self.done {
            self.stop();
            forget(self.tag);
        }
    }
}

//! The thread's group stack and its windows (the module docs of
//! [`group`](super) draw them): entering and leaving, the window that ends
//! and opens at each change of the top, the budget a window watches, and
//! the rows of named operations that end in the innermost group.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;

use super::shared::{add_owned, GroupShared, OpRow, OpRows, Shard};
#[cfg(feature = "tracing")]
use super::Group;
use super::{MAX_GROUP_OPS, MAX_OPEN_GROUPS};
use crate::counters::held::Owner;
use crate::counters::trip::{self, SharedTrip};
use crate::counters::{self, CounterSet, Counts};
use crate::jemalloc::rounded_thread_allocated;
use crate::scope::marks;
use crate::stats::AllocStats;

/// Takes a strong count of the budget checking `g`, if any, for a window
/// that opens now; null when none. A budget's end waits for the windows
/// between their read of the pointer and their count (`budget_readers`),
/// so the count is never taken on a freed trip.
pub(super) fn watch_budget(g: &GroupShared) -> *const SharedTrip {
    if g.budget.load(Ordering::Acquire).is_null() {
        return ptr::null();
    }
    g.budget_readers.fetch_add(1, Ordering::SeqCst);
    let budget = g.budget.load(Ordering::SeqCst);
    if !budget.is_null() {
        // SAFETY: the group's count keeps the trip alive: `end_budget`
        // clears the pointer, then waits for `budget_readers` to reach zero
        // before it drops that count.
        unsafe { Arc::increment_strong_count(budget) };
    }
    g.budget_readers.fetch_sub(1, Ordering::SeqCst);
    budget
}

/// Releases a window's count of a budget's trip (null: none).
pub(super) fn unwatch_budget(budget: *const SharedTrip) {
    if !budget.is_null() {
        // SAFETY: the count taken by `watch_budget`.
        counters::as_library(|| unsafe { Arc::decrement_strong_count(budget) });
    }
}

/// Whether entering the innermost group again opens a window of its own.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Fresh {
    Yes,
    No,
}

/// One group the thread is in.
#[derive(Clone, Copy)]
pub(super) struct Entry {
    pub(super) group: *const GroupShared,
    pub(super) shard: *const Shard,
    /// The budget's trip this entry watches while it is the top (holding a
    /// count of it), or null.
    pub(super) budget: *const SharedTrip,
    pub(super) id: u64,
    /// Guards of this entry alive (re-entries of the innermost group).
    pub(super) depth: u32,
}

pub(super) const NO_ENTRY: Entry =
    Entry { group: ptr::null(), shard: ptr::null(), budget: ptr::null(), id: 0, depth: 0 };

/// A (group serial, shard) the thread found last: serials are never
/// reused, so a matching serial is that group's shard.
pub(super) type CacheLine = (u64, *const Shard);
pub(super) const CACHE_LINES: usize = 8;

pub(super) struct Stack {
    pub(super) entries: [Cell<Entry>; MAX_OPEN_GROUPS],
    pub(super) len: Cell<usize>,
    pub(super) next_id: Cell<u64>,
    /// The top entry's window: the thread's counters when it opened, its
    /// rounded bytes then, and its peak mark ([`marks`]).
    pub(super) start: Cell<Counts>,
    pub(super) rounded_start: Cell<Option<u64>>,
    pub(super) mark: Cell<usize>,
    /// Shards this thread used recently, by group address.
    pub(super) cache: [Cell<CacheLine>; CACHE_LINES],
}

thread_local! {
    // Const-initialised, no destructor: usable in the thread's other
    // thread-local destructors (a guard kept in a thread-local).
    pub(super) static STACK: Stack = const {
        Stack {
            entries: [const { Cell::new(NO_ENTRY) }; MAX_OPEN_GROUPS],
            len: Cell::new(0),
            next_id: Cell::new(1),
            start: Cell::new(Counts::ZERO),
            rounded_start: Cell::new(None),
            mark: Cell::new(usize::MAX),
            cache: [const { Cell::new((0, ptr::null())) }; CACHE_LINES],
        }
    };
}

/// A [`Grouped`] future's shard for the thread that polled it last: its
/// registry slot plus one (0 none), and the shard (a pointer, not an
/// address kept as an integer, so that Miri checks every use of it).
#[derive(Clone, Copy, Debug)]
pub(super) struct ShardCache {
    pub(super) slot: usize,
    pub(super) shard: *const Shard,
}

impl Default for ShardCache {
    fn default() -> ShardCache {
        ShardCache { slot: 0, shard: ptr::null() }
    }
}

// SAFETY: the pointer is only read on the thread that polls the future,
// and only when `slot` says that thread found it (a shard is shared state
// made of atomics, alive as long as its group, which the future's handle
// keeps); moving the cache to another thread moves nothing it points to.
unsafe impl Send for ShardCache {}
// SAFETY: `&ShardCache` gives no access to the shard (it is read through
// `&mut` only, in `shard_for`).
unsafe impl Sync for ShardCache {}

impl Stack {
    pub(super) fn top(&self) -> Option<Entry> {
        let len = self.len.get();
        (len > 0).then(|| self.entries[len - 1].get())
    }

    /// Ends the window of `from` (the entry that stops being the top), if
    /// any, and opens one for the new top when `open`, both at the same
    /// moment. The new window's peak mark is taken first: on a thread with
    /// every mark taken this panics before anything changed (and with the
    /// old mark still held, the thread's peak tracking never stops in
    /// between).
    #[inline(always)]
    pub(super) fn switch(&self, from: Option<&Entry>, open: bool) {
        let now = counters::own_counts();
        let rounded_now = rounded_thread_allocated();
        let new_mark = open.then(|| marks::open(now.live()));
        if let Some(top) = from {
            let start = self.start.get();
            let high = marks::close(self.mark.get(), now.live());
            let peak_above = high.wrapping_sub(start.live()).max(0) as u64;
            let rounded = self.rounded_start.get().zip(rounded_now).map(|(a, b)| b.wrapping_sub(a));
            let diff = now.wrapping_sub(start);
            if counters::is_detached() {
                // SAFETY: the entry's group is alive (see `Group::current`).
                unsafe { &*top.group }.late.add(diff);
            } else {
                // SAFETY: the shard lives as long as its group.
                unsafe { &*top.shard }.commit(diff, peak_above, rounded);
            }
        }
        if let Some(mark) = new_mark {
            self.start.set(now);
            self.rounded_start.set(rounded_now);
            self.mark.set(mark);
        }
    }

    /// The calling thread's shard of `g`: from `cache`, from the thread's
    /// cache, or from the group's list.
    pub(super) fn shard_for(&self, g: &GroupShared, slot: usize, cache: Option<&mut ShardCache>) -> *const Shard {
        if let Some(c) = &cache {
            if c.slot == slot + 1 {
                return c.shard;
            }
        }
        let line = &self.cache[g.serial as usize % CACHE_LINES];
        let (serial, cached) = line.get();
        let shard = if serial == g.serial {
            cached
        } else {
            let shard = ptr::from_ref(g.shard(slot));
            line.set((g.serial, shard));
            shard
        };
        if let Some(c) = cache {
            *c = ShardCache { slot: slot + 1, shard };
        }
        shard
    }
}

/// What the allocator needs of the thread's innermost group `g`, whose
/// shard for this thread is `shard`.
pub(super) fn owner_of(g: *const GroupShared, shard: *const Shard) -> Owner {
    // SAFETY: an entry's group and shard are alive (see `Group::current`).
    let (g, shard) = unsafe { (&*g, &*shard) };
    Owner { tag: g.ledger, held: &shard.held, serial: g.serial }
}

/// Enters `g` on this thread, which holds registry slot `slot`; returns
/// the entry's id, or `None` when the stack is full. The caller checked
/// that the tracker is installed.
pub(super) fn push(
    shared: NonNull<GroupShared>,
    slot: usize,
    fresh: Fresh,
    cache: Option<&mut ShardCache>,
) -> Option<u64> {
    // SAFETY: the caller's handle keeps the block alive.
    let g = unsafe { shared.as_ref() };
    STACK.with(|st| {
        let len = st.len.get();
        let budget = g.budget.load(Ordering::Acquire);
        let top = (len > 0).then(|| st.entries[len - 1].get());
        if let Some(mut top) = top {
            if ptr::eq(top.group, g) && fresh == Fresh::No && top.budget == budget {
                top.depth += 1;
                st.entries[len - 1].set(top);
                return Some(top.id);
            }
        }
        if len == MAX_OPEN_GROUPS {
            return None;
        }
        let shard = st.shard_for(g, slot, cache);
        // The window first: it is what may panic (every peak mark taken).
        // (Two calls, so that each is compiled for its case.)
        match &top {
            None => st.switch(None, true),
            Some(top) => st.switch(Some(top), true),
        }
        let budget = if budget.is_null() { budget } else { watch_budget(g) };
        // SAFETY: the shard lives as long as its group; only this thread
        // (its slot's holder) writes `open`.
        add_owned(&unsafe { &*shard }.open, 1);
        let id = st.next_id.get();
        st.next_id.set(id + 1);
        // The handle's own pointer, not one made from `g`: a handle that
        // `Group::current` builds from this entry may be the one that frees
        // the block.
        st.entries[len].set(Entry { group: shared.as_ptr(), shard, budget, id, depth: 1 });
        st.len.set(len + 1);
        counters::held::set_owner(owner_of(g, shard));
        if !(budget.is_null() && top.is_none_or(|t| t.budget.is_null())) {
            trip::set_shared(budget);
        }
        Some(id)
    })
}

/// Leaves the entry `id` on this thread (once its last guard is dropped):
/// ends its window if it is the top, and opens one for the entry below.
pub(super) fn pop(id: u64) {
    let left = STACK.with(|st| {
        let len = st.len.get();
        let at = if len > 0 && st.entries[len - 1].get().id == id {
            len - 1
        } else {
            (0..len).rev().find(|&i| st.entries[i].get().id == id)?
        };
        let mut e = st.entries[at].get();
        if e.depth > 1 {
            e.depth -= 1;
            st.entries[at].set(e);
            return None;
        }
        let was_top = at + 1 == len;
        if was_top && len > 1 {
            st.switch(Some(&e), true);
        } else if was_top {
            st.switch(Some(&e), false);
        }
        if counters::is_detached() {
            // The slot may be another thread's by now, whose plain writes
            // to the shard an atomic decrement can only lose (the count then
            // stays too high: the group's memory is kept, never freed
            // early); its windows are counted apart.
            // SAFETY: the entry's group is alive (see `Group::current`).
            unsafe { &*e.group }.late_windows.fetch_add(1, Ordering::Relaxed);
            // SAFETY: the shard lives as long as its group.
            unsafe { &*e.shard }.open.fetch_sub(1, Ordering::Relaxed);
        } else {
            // SAFETY: the shard lives as long as its group.
            let shard = unsafe { &*e.shard };
            add_owned(&shard.windows, 1);
            add_owned(&shard.open, u64::MAX); // - 1
        }
        if !was_top {
            for i in at..len - 1 {
                st.entries[i].set(st.entries[i + 1].get());
            }
        }
        st.len.set(len - 1);
        if was_top {
            let below = (len > 1).then(|| st.entries[len - 2].get());
            counters::held::set_owner(below.map_or(Owner::NONE, |b| owner_of(b.group, b.shard)));
            let below = below.map_or(ptr::null(), |b| b.budget);
            if !(e.budget.is_null() && below.is_null()) {
                trip::set_shared(below);
            }
        }
        Some(e)
    });
    // The budget's count is released once the thread no longer watches it.
    if let Some(e) = left {
        if !e.budget.is_null() {
            unwatch_budget(e.budget);
        }
    }
}

/// This thread's open window in `g`, as figures so far, with the thread's
/// shard of `g`: when `g` is the thread's innermost group.
pub(super) fn own_open_window(g: &GroupShared) -> Option<(AllocStats, &Shard)> {
    STACK.with(|st| {
        let top = st.top().filter(|top| ptr::eq(top.group, g))?;
        let now = counters::own_counts();
        let start = st.start.get();
        let mut s = AllocStats::from_counts(now.wrapping_sub(start));
        s.peak_bytes = marks::peak(st.mark.get(), now.live()).wrapping_sub(start.live()).max(0) as u64;
        s.rounded_bytes_allocated =
            st.rounded_start.get().zip(rounded_thread_allocated()).map(|(a, b)| b.wrapping_sub(a));
        // SAFETY: the shard lives as long as `g`, which the caller borrows.
        Some((s, unsafe { &*top.shard }))
    })
}

/// Called when an `op` guard ends: adds its figures to the row of the
/// innermost group this thread is in, if any. `name` is the operation's
/// name as the operation table interned it.
pub(crate) fn add_op(name: *mut &'static str, own: AllocStats, peak_bytes: u64) {
    let Some(top) = STACK.with(Stack::top) else { return };
    // SAFETY: the top entry's group is alive (see `Group::current`).
    let g = unsafe { &*top.group };
    let mut rows = g.ops.load(Ordering::Acquire);
    if rows.is_null() {
        let new = crate::jemalloc::library_work(|| {
            Box::into_raw(Box::new(OpRows(
                [const {
                    OpRow {
                        op: AtomicPtr::new(ptr::null_mut()),
                        calls: AtomicU64::new(0),
                        counts: CounterSet::zero(),
                        peak_bytes: AtomicU64::new(0),
                    }
                }; MAX_GROUP_OPS],
            )))
        });
        rows = match g.ops.compare_exchange(ptr::null_mut(), new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => new,
            Err(theirs) => {
                // SAFETY: made just above, never published.
                counters::as_library(|| drop(unsafe { Box::from_raw(new) }));
                theirs
            }
        };
    }
    // SAFETY: rows, once made, live as long as the group.
    let rows = &unsafe { &*rows }.0;
    // Interned names: one address per name, compared as addresses.
    let row = crate::rows::find_or_claim(rows.iter().map(|r| &r.op), |op| op == name, || name, |_| {});
    if let Some(row) = row.map(|i| &rows[i]) {
        row.calls.fetch_add(1, Ordering::Relaxed);
        row.counts.add(own.counts());
        row.peak_bytes.fetch_max(peak_bytes, Ordering::Relaxed);
    }
}

/// Enters a group until [`exit_raw`], without a guard: for the tracing
/// layer, whose span enter and exit are two calls. The entry holds a count
/// of the group. `None` when the thread has no room for another entry (the
/// span is then not counted).
#[cfg(feature = "tracing")]
pub(crate) fn enter_raw(group: &Group) -> Option<u64> {
    if !crate::install::is_installed() {
        return None;
    }
    push(group.shared, counters::thread_slot()?, Fresh::No, None)
}

/// Ends an entry made by [`enter_raw`].
#[cfg(feature = "tracing")]
pub(crate) fn exit_raw(id: u64) {
    pop(id);
}

/// A thread's entry in a group, open until dropped; see [`Group::enter`](super::Group::enter).
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let g = allocscope::Group::new("doc.guard");
/// let guard: allocscope::GroupGuard = g.enter();
/// drop(guard);
/// assert_eq!(g.windows(), 1);
/// ```
#[must_use = "the thread leaves the group when the guard is dropped"]
pub struct GroupGuard {
    id: u64,
    // Entries are thread-bound.
    _not_send: PhantomData<*const ()>,
}

impl GroupGuard {
    /// The guard of entry `id`, made on this thread.
    pub(super) fn new(id: u64) -> GroupGuard {
        GroupGuard { id, _not_send: PhantomData }
    }
}

impl fmt::Debug for GroupGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupGuard").field("entry", &self.id).finish()
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        pop(self.id);
    }
}

//! The counter set: the five counters by name, and a set of them as plain
//! numbers or as atomics.

use std::ops::{Index, IndexMut};
use std::sync::atomic::{AtomicU64, Ordering};

/// The five counters, by name: the vocabulary of
/// [`AllocStats`](crate::AllocStats) (see the crate docs' "Vocabulary"),
/// and the index of each counter in a [`CounterSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counter {
    /// Blocks handed out: successful `alloc`, `alloc_zeroed` and `realloc`
    /// calls.
    Allocs,
    /// Of `Allocs`, the successful `realloc` calls.
    Reallocs,
    /// `dealloc` calls.
    Deallocs,
    /// Requested bytes of allocations, plus reallocations' new sizes.
    BytesAllocated,
    /// Bytes of frees, plus reallocations' old sizes.
    BytesFreed,
}

impl Counter {
    /// Every counter, in the order of [`CounterSet`]'s values.
    pub(crate) const ALL: [Counter; 5] =
        [Counter::Allocs, Counter::Reallocs, Counter::Deallocs, Counter::BytesAllocated, Counter::BytesFreed];
}

/// One value per [`Counter`]: plain counts, or the atomics of a thread's
/// block, an operation's row or the shared totals. (divan's `AllocOpMap`
/// keeps its counters this way: one vocabulary, never spelled out field by
/// field.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct CounterSet<T> {
    values: [T; 5],
}

/// Cumulative or differential counts.
pub(crate) type Counts = CounterSet<u64>;

impl<T> Index<Counter> for CounterSet<T> {
    type Output = T;

    #[inline(always)]
    fn index(&self, c: Counter) -> &T {
        &self.values[c as usize]
    }
}

impl<T> IndexMut<Counter> for CounterSet<T> {
    #[inline(always)]
    fn index_mut(&mut self, c: Counter) -> &mut T {
        &mut self.values[c as usize]
    }
}

impl<T> CounterSet<T> {
    /// A set whose value for each counter is `f(counter)`.
    pub(crate) fn from_fn(mut f: impl FnMut(Counter) -> T) -> Self {
        CounterSet { values: Counter::ALL.map(&mut f) }
    }
}

impl Counts {
    /// All zero; for `const` contexts.
    pub(crate) const ZERO: Counts = CounterSet { values: [0; 5] };

    /// Counts with the given counters set and the others zero.
    pub(crate) fn of(pairs: &[(Counter, u64)]) -> Counts {
        let mut c = Counts::default();
        for &(counter, v) in pairs {
            c[counter] = v;
        }
        c
    }

    pub(crate) fn wrapping_add(self, o: Counts) -> Counts {
        Counts::from_fn(|c| self[c].wrapping_add(o[c]))
    }

    pub(crate) fn wrapping_sub(self, o: Counts) -> Counts {
        Counts::from_fn(|c| self[c].wrapping_sub(o[c]))
    }

    /// Live bytes: allocated minus freed, as a signed figure (a thread that
    /// frees what others allocated goes negative).
    pub(crate) fn live(self) -> i64 {
        self[Counter::BytesAllocated].wrapping_sub(self[Counter::BytesFreed]) as i64
    }
}

impl CounterSet<AtomicU64> {
    /// All zero; `const`, for statics and thread-locals.
    pub(crate) const fn zero() -> Self {
        CounterSet { values: [const { AtomicU64::new(0) }; 5] }
    }

    /// Reads every counter (relaxed; not atomic across counters).
    pub(crate) fn load(&self) -> Counts {
        self.load_with(Ordering::Relaxed)
    }

    /// Reads every counter with `order`.
    pub(crate) fn load_with(&self, order: Ordering) -> Counts {
        Counts::from_fn(|c| self[c].load(order))
    }

    /// Adds `counts` with atomic read-modify-writes, for counters that
    /// several threads write.
    pub(crate) fn add(&self, counts: Counts) {
        self.add_with(counts, Ordering::Relaxed);
    }

    /// Adds `counts` with atomic read-modify-writes of ordering `order`.
    pub(crate) fn add_with(&self, counts: Counts, order: Ordering) {
        for c in Counter::ALL {
            if counts[c] != 0 {
                self[c].fetch_add(counts[c], order);
            }
        }
    }

    /// Sets every counter to zero.
    pub(crate) fn clear(&self) {
        for c in Counter::ALL {
            self[c].store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_set_keeps_one_value_per_counter_in_the_vocabulary_order() {
        let c = Counts::of(&[(Counter::Deallocs, 3), (Counter::BytesFreed, 7)]);
        assert_eq!(c.values, [0, 0, 3, 0, 7]);
        assert_eq!(c.wrapping_add(c)[Counter::BytesFreed], 14);
        assert_eq!(Counts::of(&[(Counter::BytesAllocated, 10), (Counter::BytesFreed, 25)]).live(), -15);
        let shared = CounterSet::zero();
        shared.add(c);
        shared.add(c);
        assert_eq!(shared.load(), c.wrapping_add(c));
    }
}

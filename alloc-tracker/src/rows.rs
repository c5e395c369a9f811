//! Rows keyed by name in fixed tables, claimed without a lock: the one
//! routine behind the process-wide operation table ([`op`](crate::op)) and
//! a group's rows of operations.
//!
//! Rows are claimed in order with a compare-and-swap on their key, never
//! released, so a key is always found before the first free row, and two
//! threads claiming a row for one key meet at the same row. No lock: a
//! `fork`ed child can use a table whatever the parent's other threads were
//! doing.

use std::sync::atomic::{AtomicPtr, Ordering};

/// The index of the row whose key `is_key` accepts, claiming the first
/// free row (a null key) for `new_key()` when none does; `None` when every
/// row holds another key. `new_key` is called at most once, and only when
/// a free row is seen; if its key ends up unused (another thread claimed a
/// row for the same key first), it is handed to `unused`.
pub(crate) fn find_or_claim<'a, T: 'a>(
    keys: impl IntoIterator<Item = &'a AtomicPtr<T>>,
    is_key: impl Fn(*mut T) -> bool,
    new_key: impl FnOnce() -> *mut T,
    unused: impl FnOnce(*mut T),
) -> Option<usize> {
    let mut new_key = Some(new_key);
    let mut mine: *mut T = std::ptr::null_mut();
    let found = keys.into_iter().enumerate().find_map(|(i, key)| {
        let mut current = key.load(Ordering::Acquire);
        if current.is_null() {
            if let Some(make) = new_key.take() {
                mine = make();
            }
            match key.compare_exchange(std::ptr::null_mut(), mine, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    mine = std::ptr::null_mut();
                    return Some(i);
                }
                Err(theirs) => current = theirs,
            }
        }
        is_key(current).then_some(i)
    });
    if !mine.is_null() {
        unused(mine);
    }
    found
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicPtr;

    use super::find_or_claim;

    #[test]
    fn a_key_is_found_before_the_first_free_row_and_a_full_table_says_so() {
        static KEYS: [&str; 3] = ["a", "b", "c"];
        let key = |i: usize| std::ptr::from_ref(&KEYS[i]).cast_mut();
        let rows: [AtomicPtr<&str>; 2] = [AtomicPtr::new(std::ptr::null_mut()), AtomicPtr::new(std::ptr::null_mut())];
        let claim = |i: usize| find_or_claim(&rows, |p| p == key(i), || key(i), |_| panic!("nothing unused"));
        assert_eq!((claim(0), claim(1), claim(0), claim(1)), (Some(0), Some(1), Some(0), Some(1)));
        let mut unused = None;
        assert_eq!(find_or_claim(&rows, |p| p == key(2), || key(2), |_| unused = Some(2)), None);
        // A full table made no new key: nothing to hand back.
        assert_eq!(unused, None);
    }
}

//! `CountingAlloc` forwards each of the four `GlobalAlloc` methods to the
//! inner allocator unchanged (zeroed allocation and realloc keep their own
//! paths), passes failures through, and counts nothing for them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use allocscope::{measure, CountingAlloc};

/// Which inner method the current thread called last, and a switch to make
/// the next allocation fail.
struct Spy;

thread_local! {
    static CALLS: Cell<[u32; 4]> = const { Cell::new([0; 4]) };
    static FAIL_NEXT: Cell<bool> = const { Cell::new(false) };
}

fn record(i: usize) {
    let mut c = CALLS.get();
    c[i] += 1;
    CALLS.set(c);
}

// SAFETY: forwards every call to `System` unchanged, except that it may
// return null (a failed allocation), which the contract allows.
unsafe impl GlobalAlloc for Spy {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(0);
        if FAIL_NEXT.replace(false) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(1);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record(2);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(3);
        if FAIL_NEXT.replace(false) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc<Spy> = CountingAlloc::new(Spy);

#[test]
fn each_method_reaches_the_inner_allocators_same_method() {
    // The first call of the API allocates and frees one probe block.
    assert!(allocscope::is_installed());
    let before = CALLS.get();
    let ((), s) = measure(|| {
        let mut v = black_box(vec![0u8; 64]); // alloc_zeroed
        v.reserve_exact(1000); // realloc
        drop(v); // dealloc
        drop(black_box(Box::new(1u32))); // alloc + dealloc
    });
    let after = CALLS.get();
    let d: Vec<u32> = (0..4).map(|i| after[i] - before[i]).collect();
    assert_eq!(d, [1, 1, 2, 1], "alloc, alloc_zeroed, dealloc, realloc");
    assert_eq!((s.allocs, s.reallocs, s.deallocs), (3, 1, 2));
    assert_eq!(s.bytes_allocated, 64 + 1064 + 4);
    assert_eq!(s.bytes_freed, 64 + 1064 + 4);
}

#[test]
fn failed_allocations_return_null_and_move_no_counter() {
    let layout = Layout::from_size_align(256, 8).unwrap();
    let ((), s) = measure(|| {
        FAIL_NEXT.set(true);
        // SAFETY: non-zero size; a null result is checked, not used.
        let p = unsafe { std::alloc::alloc(layout) };
        assert!(p.is_null());

        let q = black_box(Box::new([0u8; 32]));
        let raw = Box::into_raw(q).cast::<u8>();
        FAIL_NEXT.set(true);
        // SAFETY: `raw` came from the global allocator with this layout.
        let r = unsafe { std::alloc::realloc(raw, Layout::new::<[u8; 32]>(), 4096) };
        assert!(r.is_null());
        // SAFETY: the failed realloc left `raw` allocated with its old layout.
        unsafe { std::alloc::dealloc(raw, Layout::new::<[u8; 32]>()) };
    });
    assert_eq!((s.allocs, s.reallocs, s.deallocs), (1, 0, 1), "{s}");
    assert_eq!((s.bytes_allocated, s.bytes_freed), (32, 32), "{s}");
    assert_eq!(s.rounded_bytes_allocated, None, "the inner allocator is not jemalloc");
}

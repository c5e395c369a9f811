//! A group whose handles are all gone while blocks it holds are live: their
//! frees still find its ledger, and its memory is freed once they are gone.
//! Its own process, so that no other test makes or frees groups meanwhile
//! (the library's own live bytes are the witness).

use std::hint::black_box;

use allocscope::{CountingAlloc, Group};

// Over jemalloc when it is built in: its sized frees then check the layout
// the trailer grows (`.ci/run` runs these tests over a jemalloc with its
// debug assertions, where a wrong size aborts); over the system allocator
// without it (Miri).
#[cfg(feature = "jemalloc")]
type Inner = allocscope::Jemalloc;
#[cfg(not(feature = "jemalloc"))]
type Inner = std::alloc::System;

#[global_allocator]
static GLOBAL: CountingAlloc<Inner> = CountingAlloc::new(Inner {}).with_owner_tags();

/// The library's own live bytes, after freeing the kept groups that hold
/// nothing any more (a snapshot does).
fn library_live() -> i64 {
    allocscope::serve::snapshot().library.net_bytes()
}

/// One round of the scenario: a group fills 8 blocks, its handle goes, the
/// blocks are freed on another thread.
fn outlive(name: &'static str) -> (i64, i64) {
    let blocks: Vec<Vec<u8>> = {
        let g = Group::new(name);
        g.run(|| (0..8).map(|_| black_box(vec![0u8; 1000])).collect())
    };
    let kept = library_live();
    std::thread::spawn(move || drop(blocks)).join().unwrap();
    (kept, library_live())
}

#[test]
fn blocks_outlive_their_group_handle() {
    // A first round makes whatever the library keeps for good (the spawned
    // thread's registry slot, the snapshot's own tables).
    outlive("held.warm_up");
    let base = library_live();
    let (kept, after) = outlive("held.outlived");
    assert!(kept > base, "the group is kept while its blocks live: {kept} after {base}");
    assert_eq!(after, base, "and freed, all of it, once they are gone");
}

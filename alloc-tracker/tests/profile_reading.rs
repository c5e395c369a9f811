//! Reading a heap profile does not change it, even on a thread that
//! samples at rate 1: the reader's own allocations (the profile's vectors,
//! the symbols it resolves) are not sampled. Its own process, so that no
//! other test samples meanwhile.

use std::hint::black_box;

use allocscope::CountingAlloc;

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

/// Four allocations: three boxes of 4 bytes, and the vector of 24 that
/// holds them.
#[inline(never)]
#[allow(clippy::vec_box)] // boxed on purpose: one allocation each
fn sampled_work() -> Vec<Box<u32>> {
    (0..3).map(|i| black_box(Box::new(i))).collect()
}

#[test]
fn reading_the_profile_on_a_sampling_thread_leaves_it_as_it_was() {
    allocscope::profile::start_thread_sampling(1);
    let kept = sampled_work();
    let first = allocscope::profile::heap_profile();
    let folded = first.folded(); // resolves every site's symbols
    let (second, third) = (allocscope::profile::heap_profile(), allocscope::profile::heap_profile());
    allocscope::profile::stop_thread_sampling();
    assert!(folded.contains("sampled_work"), "{folded}");
    let totals = |p: &allocscope::profile::HeapProfile| (p.total_allocs(), p.total_bytes(), p.sites.len());
    assert_eq!(totals(&first), (4.0, 3.0 * 4.0 + 3.0 * 8.0, first.sites.len()));
    assert_eq!(totals(&second), totals(&first));
    assert_eq!(totals(&third), totals(&first));
    drop(kept);
}

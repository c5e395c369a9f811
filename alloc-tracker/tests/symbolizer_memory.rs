//! Resolving a profile's symbols is the library's own work: the parsed
//! debug info is in no figure of the program's (the thread's, the
//! process's), in no profile, and freed after each profile; the library
//! counts it apart, and only a bounded cache of resolved frames stays.
//! One test in its own binary: the process's figures are read exactly.
#![cfg(feature = "pprof")]

use std::hint::black_box;

use allocscope::{process_stats, thread_stats, CountingAlloc};

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

#[inline(never)]
fn make_profiled_buffer() -> Vec<u8> {
    black_box(vec![7u8; 4096])
}

#[test]
fn writing_profiles_leaves_no_symbolizer_memory_in_the_programs_figures() {
    allocscope::profile::start_thread_sampling(1);
    let kept = make_profiled_buffer();
    let library_before = allocscope::serve::snapshot().library;
    let thread_before = thread_stats();
    let live_before = process_stats().net_bytes();
    // Three rounds of every writer, with this thread still sampling at
    // rate 1: whatever the writers allocate for themselves would be
    // sampled, and in the profile.
    let mut written = 0;
    for _ in 0..3 {
        written += allocscope::profile::heap_profile().pprof_gz().len();
        written += allocscope::profile::heap_profile().folded().len();
        written += allocscope::profile::heap_profile().pprof_text(allocscope::profile::SampleType::InuseSpace).len();
    }
    allocscope::profile::stop_thread_sampling();
    let thread = thread_stats() - thread_before;
    let library = allocscope::serve::snapshot().library;
    let parsed = library.bytes_allocated - library_before.bytes_allocated;

    assert!(written > 0);
    // The parse of the debug info went to the library's figures: megabytes
    // for this test binary; the thread made only the writers' answers
    // (and the profile readings), and freed all of them.
    assert!(parsed > 1 << 20, "the library counted {parsed} B of parsing");
    assert!(
        thread.bytes_allocated < parsed / 4,
        "the thread allocated {} B, the symbolizer {parsed} B",
        thread.bytes_allocated
    );
    assert_eq!(thread.net_bytes(), 0, "the thread freed what it allocated: {thread:?}");
    // The process's figure includes the test harness's own threads, which
    // may allocate a little meanwhile; the 40 MB of parsed debug info a
    // profile cost before would be far outside this bound.
    let moved = process_stats().net_bytes().abs_diff(live_before);
    assert!(moved < 16 << 10, "the process's live bytes moved by {moved} B");
    // What the library keeps: its cache of resolved frames (bounded), not
    // the parsed debug info.
    let kept_by_library = library.net_bytes() - library_before.net_bytes();
    assert!(kept_by_library < 256 << 10, "the library kept {kept_by_library} B after three profiles");

    // The writers' own allocations were not sampled: the profile has the
    // buffer's site and no frame of the symbolizer or of the writers.
    let names: Vec<String> = allocscope::profile::heap_profile()
        .user_frames()
        .into_iter()
        .flatten()
        .map(|f| format!("{} ({})", f.name, f.file))
        .collect();
    assert!(names.iter().any(|n| n.contains("make_profiled_buffer")), "{names:#?}");
    for forbidden in ["gimli", "addr2line", "backtrace", "flate2", "miniz"] {
        assert!(!names.iter().any(|n| n.contains(forbidden)), "{forbidden} in the profile: {names:#?}");
    }
    drop(kept);
}

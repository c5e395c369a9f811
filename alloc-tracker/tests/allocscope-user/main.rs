//! Budget sites and heap-profile frames keep the user's frames whatever the
//! user's folder or crate is called: this test crate lives in a folder named
//! `allocscope-user`, which an earlier version took for the library's own
//! registry folder (`allocscope-0.1.0`) and dropped.
//!
//! It also runs in release builds without line tables (`.ci/run` runs it
//! so): the site is then named by function only, with a note saying how to
//! get lines, and never blames the test harness.

use std::hint::black_box;

use allocscope::{Budget, CountingAlloc};

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

#[inline(never)]
fn user_outer(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| user_inner()).collect()
}

#[inline(never)]
fn user_inner() -> Vec<u8> {
    black_box(vec![3u8; 24])
}

/// Whether this build resolves frames to source lines (debug info).
fn has_line_tables(message: &str) -> bool {
    !message.contains("this build has no line tables")
}

#[test]
fn a_budget_site_in_a_folder_named_allocscope_dash_names_the_users_frames() {
    let err = Budget::new().max_allocs(1).check(|| user_outer(3)).unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains("test::") && !msg.contains("__rust_begin_short_backtrace"), "{msg}");
    if has_line_tables(&msg) {
        let site = err.site().expect("a site with lines");
        let first = site.lines().next().unwrap();
        assert!(first.contains("user_inner") && first.contains("allocscope-user/main.rs:"), "{site}");
        assert!(site.contains("user_outer"), "{site}");
    } else {
        // Without line tables, release builds inline user_outer away; the
        // allocating function is still named, and the note says why lines
        // are missing.
        assert!(err.site().is_none());
        assert!(msg.contains("first allocation over the limit: this build has no line tables"), "{msg}");
        assert!(msg.contains("debug = \"line-tables-only\""), "{msg}");
        assert!(msg.contains("  at user_folder_named_allocscope::user_inner"), "{msg}");
    }
}

#[test]
fn heap_profile_frames_in_a_folder_named_allocscope_dash_are_kept() {
    allocscope::profile::start_thread_sampling(1);
    let kept = user_outer(2);
    allocscope::profile::stop_thread_sampling();
    let frames: Vec<allocscope::profile::Frame> =
        allocscope::profile::heap_profile().sites.iter().flat_map(|s| s.user_frames()).collect();
    assert!(frames.iter().any(|f| f.name.ends_with("user_inner")), "{frames:#?}");
    if frames.iter().any(|f| f.line != 0) {
        assert!(frames.iter().any(|f| f.file.ends_with("allocscope-user/main.rs")), "{frames:#?}");
    }
    drop(kept);
}

//! `println!` inside a budgeted test body under `cargo test`'s output
//! capture: the harness grows its capture buffer inside the budget, an
//! allocation that belongs to the harness, not to the code under test.
//! allocscope cannot leave it out exactly, so a failure that it causes says
//! so. The inner tests run in a child process of this test binary, once
//! with the harness's capture and once with `--nocapture`.

use std::process::Command;

use allocscope::CountingAlloc;

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

/// Set in the child process: the inner tests run only there.
const INNER: &str = "ALLOCSCOPE_OUTPUT_CAPTURE_INNER";

fn inner() -> bool {
    std::env::var_os(INNER).is_some()
}

#[test]
fn inner_allocation_free_body_that_prints() {
    if inner() {
        prints_under_a_zero_budget();
    }
}

#[allocscope::budget(max_allocs = 0)]
fn prints_under_a_zero_budget() {
    println!("progress: step 1 of 1 done");
}

#[test]
fn inner_leak_free_body_that_prints() {
    if inner() {
        prints_under_a_leak_budget();
    }
}

#[allocscope::budget(max_leaked_bytes = 0, warmups = 1)]
fn prints_under_a_leak_budget() {
    println!("progress: step 1 of 1 done");
}

/// Runs one inner test in a child; returns whether it passed, and its
/// output.
fn run_inner(name: &str, nocapture: bool) -> (bool, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--test-threads", "1"]).env(INNER, "1");
    if nocapture {
        cmd.arg("--nocapture");
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn a_budget_failure_caused_by_the_harness_capturing_println_says_so() {
    const NOTE: &str = "the test harness captures printed output in a buffer that grows inside the budget";
    for name in ["inner_allocation_free_body_that_prints", "inner_leak_free_body_that_prints"] {
        let (passed, text) = run_inner(name, false);
        assert!(!passed, "{name} under capture: the harness's buffer is counted\n{text}");
        assert!(text.contains("allocation budget exceeded"), "{name}\n{text}");
        assert!(text.contains(NOTE), "{name}: the message names the harness's capture\n{text}");
        let (passed, text) = run_inner(name, true);
        assert!(passed, "{name} with --nocapture: nothing of the body's own\n{text}");
    }
}

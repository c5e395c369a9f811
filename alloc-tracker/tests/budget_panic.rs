//! A failed budget's panic as a test author reads it, with
//! `RUST_BACKTRACE=1`: `panicked at` names the caller's line, and the
//! backtrace has exactly one frame of allocscope's between the panic
//! machinery (`core::panicking::panic_fmt`) and the caller's function, for
//! every panicking entry point. Each case fails in a child process (this
//! binary run again), whose standard error is read here.

use std::process::Command;

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<std::alloc::System> = allocscope::CountingAlloc::new(std::alloc::System);

/// Which case the child runs.
const CASE: &str = "ALLOCSCOPE_BUDGET_PANIC_CASE";

const ATTRIBUTE_LINE: u32 = line!() + 1;
#[allocscope::budget(max_allocs = 0)]
fn over_budget_by_attribute() {
    drop(std::hint::black_box(Box::new(1u8)));
}

/// Runs one failing case; prints the line it expects the panic at first.
fn fail(case: &str) {
    let expect = |line: u32| eprintln!("expected at line {line}");
    match case {
        "assert" => {
            expect(line!() + 1);
            allocscope::Budget::new().max_allocs(0).assert(|| Box::new(1u8));
        }
        "assert_steady" => {
            let mut kept = Vec::new();
            expect(line!() + 1);
            allocscope::Budget::new().max_leaked_bytes(0).assert_steady(|| kept.push(vec![1u8; 8]));
        }
        "assert_group" => {
            let group = allocscope::Group::new("budget_panic");
            expect(line!() + 1);
            allocscope::Budget::new().max_allocs(0).assert_group(&group, || Box::new(1u8));
        }
        "assert_no_alloc" => {
            expect(line!() + 1);
            allocscope::assert_no_alloc(|| Box::new(1u8));
        }
        "assert_no_leaks" => {
            let mut kept = Vec::new();
            expect(line!() + 1);
            allocscope::assert_no_leaks(|| kept.push(vec![1u8; 8]));
        }
        "attribute" => {
            expect(ATTRIBUTE_LINE);
            over_budget_by_attribute();
        }
        other => panic!("unknown case {other}"),
    }
    unreachable!("case {case} did not panic");
}

#[test]
#[ignore = "a failing case, run by `panics_name_the_callers_line_with_one_frame_of_allocscope` in a child process"]
fn child() {
    fail(&std::env::var(CASE).expect("the case to run"));
}

#[test]
fn panics_name_the_callers_line_with_one_frame_of_allocscope() {
    for case in ["assert", "assert_steady", "assert_group", "assert_no_alloc", "assert_no_leaks", "attribute"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CASE, case)
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case}: the child passed\n{stderr}");
        let line: u32 = stderr
            .lines()
            .find_map(|l| l.strip_prefix("expected at line "))
            .unwrap_or_else(|| panic!("{case}: no expected line\n{stderr}"))
            .parse()
            .unwrap();
        let at = format!("tests/budget_panic.rs:{line}:");
        let panicked =
            stderr.lines().find(|l| l.contains("panicked at ")).unwrap_or_else(|| panic!("{case}\n{stderr}"));
        assert!(panicked.contains(&at), "{case}: the panic is not at {at}:\n{stderr}");
        assert!(stderr.contains("allocation budget exceeded: "), "{case}\n{stderr}");

        // The frames' names, in order: after `panic_fmt`, allocscope's one
        // frame, then this file's function.
        let frames: Vec<&str> = stderr
            .lines()
            .filter_map(|l| {
                let (number, name) = l.trim_start().split_once(": ")?;
                number.parse::<u32>().ok().map(|_| name.trim())
            })
            .collect();
        let panic_fmt = frames
            .iter()
            .position(|f| *f == "core::panicking::panic_fmt")
            .unwrap_or_else(|| panic!("{case}: no panic_fmt frame\n{stderr}"));
        let callers =
            frames.iter().position(|f| f.starts_with("budget_panic::")).unwrap_or_else(|| panic!("{case}\n{stderr}"));
        let between = &frames[panic_fmt + 1..callers];
        assert_eq!(between.len(), 1, "{case}: {between:?}\n{stderr}");
        assert!(between[0].starts_with("allocscope::budget::"), "{case}: {between:?}");
    }
}

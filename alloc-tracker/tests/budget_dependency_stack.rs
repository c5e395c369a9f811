//! A budget whose first allocation over the limit comes from deep inside a
//! dependency (compiling a `regex`: dozens of `regex_automata` and
//! `regex_syntax` frames) still names the user's function: the
//! dependency's frames are elided with a count, and the message reaches
//! the test's own code.

use std::hint::black_box;

use allocscope::{Budget, CountingAlloc};

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

#[inline(never)]
fn compile_the_users_pattern() -> regex::Regex {
    black_box(regex::Regex::new(r"(?i)(\w+)@([a-z0-9-]+)\.(com|org|net)\b").expect("a valid pattern"))
}

#[test]
fn a_budget_tripped_deep_in_regex_reaches_the_users_function() {
    // Let regex's first allocation (deep inside the compiler) go over.
    let err = Budget::new().max_allocs(3).check(compile_the_users_pattern).unwrap_err();
    let site = err.site().expect("the site was captured and resolved");
    let lines: Vec<&str> = site.lines().collect();
    assert!(lines[0].contains("regex"), "the allocating frame in regex first:\n{site}");
    let users = lines.iter().position(|l| l.contains("compile_the_users_pattern"));
    let users = users.unwrap_or_else(|| panic!("the user's function is named:\n{site}"));
    assert!(lines[users].contains("tests/budget_dependency_stack.rs:"), "with its file and line:\n{site}");
    assert!(
        lines[..users].iter().any(|l| l.starts_with("  … ") && l.contains(" frames in regex")),
        "the dependency's frames elided with a count:\n{site}"
    );
    assert!(lines.len() >= users + 2, "and the caller beyond it:\n{site}");
}

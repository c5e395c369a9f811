//! Without `CountingAlloc` as the global allocator every entry point refuses
//! loudly, instead of reading zeros that would pass any budget. This test
//! crate deliberately installs no global allocator.

use allocscope::{assert_no_alloc, is_installed, measure, op, thread_stats, Budget};

const INSTALL_LINE: &str = "#[global_allocator] static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc>";

fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let payload = std::panic::catch_unwind(f).expect_err("must refuse");
    payload.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn is_installed_says_no() {
    assert!(!is_installed());
}

#[test]
fn measure_refuses_with_the_install_line() {
    let msg = panic_message(|| drop(measure(|| vec![1u8])));
    assert!(msg.starts_with("allocscope::Scope: allocscope::CountingAlloc is not the global allocator"), "{msg}");
    assert!(msg.contains(INSTALL_LINE), "{msg}");
}

#[test]
fn budgets_refuse_instead_of_passing_vacuously() {
    let msg = panic_message(|| assert_no_alloc(|| drop(vec![1u8])));
    assert!(msg.contains(INSTALL_LINE), "{msg}");
    let msg = panic_message(|| drop(Budget::new().max_allocs(0).check(|| ())));
    assert!(msg.contains(INSTALL_LINE), "{msg}");
}

#[test]
fn ops_and_snapshots_refuse() {
    assert!(panic_message(|| drop(op("not_installed"))).contains(INSTALL_LINE));
    assert!(panic_message(|| {
        let _ = thread_stats();
    })
    .contains(INSTALL_LINE));
}

#[cfg(feature = "criterion")]
#[test]
fn criterion_measurements_refuse() {
    let msg = panic_message(|| {
        drop(allocscope::criterion::config(allocscope::criterion::Allocs::new()));
    });
    assert!(
        msg.starts_with("allocscope::criterion::config: allocscope::CountingAlloc is not the global allocator"),
        "{msg}"
    );
    let msg = panic_message(|| {
        drop(allocscope::criterion::config(allocscope::criterion::Bytes::this_thread()));
    });
    assert!(msg.contains(INSTALL_LINE), "{msg}");
    let msg = panic_message(|| {
        let mut c = criterion::Criterion::default();
        drop(allocscope::criterion::bench_function(&mut c, "refused", || ()));
    });
    assert!(msg.starts_with("allocscope::criterion::bench_function: "), "{msg}");
}

thread_local! {
    /// Where the last panic on this thread happened (file, line).
    static PANIC_AT: std::cell::RefCell<Option<(String, u32)>> = const { std::cell::RefCell::new(None) };
}

/// The panic's message and where it points (the hook records the location
/// on the panicking thread, so parallel tests do not mix).
fn refusal(f: impl FnOnce() + std::panic::UnwindSafe) -> (String, String, u32) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let at = info.location().map(|l| (l.file().to_owned(), l.line()));
            // Only the panics `refusal` expects are recorded and kept
            // quiet; a failing assertion prints as usual.
            if PANIC_AT.with(|p| p.borrow().as_ref().is_some_and(|(f, _)| f.is_empty())) {
                PANIC_AT.with(|p| *p.borrow_mut() = at);
            } else {
                default(info);
            }
        }))
    });
    PANIC_AT.with(|p| *p.borrow_mut() = Some((String::new(), 0)));
    let msg = panic_message(f);
    let (file, line) = PANIC_AT.with(|p| p.borrow_mut().take()).expect("a location");
    (msg, file, line)
}

const ATTRIBUTE_LINE: u32 = line!() + 1;
#[allocscope::budget(max_allocs = 0)]
fn budgeted_by_the_attribute() {}

#[test]
fn the_refusal_points_at_the_users_call_and_names_what_they_used() {
    let here = file!();
    let (msg, file, line) = refusal(|| drop(Budget::new().max_allocs(0).check(|| ())));
    assert!(msg.starts_with("allocscope::Budget::check: "), "{msg}");
    assert_eq!((file.as_str(), line), (here, line!() - 2), "{msg}");
    let (msg, file, _) = refusal(|| Budget::new().assert(|| ()));
    assert!(msg.starts_with("allocscope::Budget::assert: "), "{msg}");
    assert_eq!(file, here);
    let (msg, file, _) = refusal(|| assert_no_alloc(|| ()));
    assert!(msg.starts_with("allocscope::assert_no_alloc: "), "{msg}");
    assert_eq!(file, here);
    let (msg, file, line) = refusal(budgeted_by_the_attribute);
    assert!(msg.starts_with("#[allocscope::budget]: "), "{msg}");
    assert!(msg.contains(INSTALL_LINE), "{msg}");
    assert_eq!((file.as_str(), line), (here, ATTRIBUTE_LINE), "the attribute's line: {msg}");
}

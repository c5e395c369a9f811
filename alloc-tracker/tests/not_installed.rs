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

#[test]
fn criterion_measurements_refuse() {
    use criterion::measurement::Measurement;
    let msg = panic_message(|| {
        let _ = allocscope::criterion::Allocs::new().start();
    });
    assert!(msg.starts_with("allocscope::criterion: allocscope::CountingAlloc is not the global allocator"), "{msg}");
    let msg = panic_message(|| {
        let _ = allocscope::criterion::Bytes::this_thread().start();
    });
    assert!(msg.contains(INSTALL_LINE), "{msg}");
    let msg = panic_message(|| {
        let mut c = criterion::Criterion::default();
        drop(allocscope::criterion::bench_function(&mut c, "refused", || ()));
    });
    assert!(msg.starts_with("allocscope::criterion::bench_function: "), "{msg}");
}

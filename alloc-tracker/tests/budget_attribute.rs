//! `#[allocscope::budget]`: a budget as a test's attribute, in either order
//! with `#[test]` and with `#[tokio::test]`, failing with `Budget::assert`'s
//! message located at the attribute.

use std::hint::black_box;
use std::panic::catch_unwind;

use allocscope::CountingAlloc;

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

#[allocscope::budget(max_allocs = 1, max_bytes_allocated = 64)]
#[test]
fn above_test() {
    assert_eq!(black_box(String::from("fits")).len(), 4);
}

#[test]
#[allocscope::budget(max_allocs = 1, max_bytes_allocated = 8)]
fn below_test_returning_a_result() -> Result<(), std::num::ParseIntError> {
    let n: u64 = "42".parse()?;
    drop(black_box(Box::new(n)));
    Ok(())
}

#[test]
#[should_panic(expected = "allocation budget exceeded: allocs 2 > 1 (budget at ")]
#[allocscope::budget(max_allocs = 1)]
fn over_budget_fails_with_the_budgets_message() {
    black_box((Box::new(1u8), Box::new(2u8)));
}

#[test]
#[allocscope::budget(max_allocs = 0, max_leaked_bytes = 0, warmups = 1)]
fn a_steady_budget_runs_warm_ups_first() {
    thread_local!(static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) });
    BUF.with_borrow_mut(|b| {
        b.clear();
        b.extend_from_slice(&[1u8; 256]);
    });
}

const ATTRIBUTE_LINE: u32 = line!() + 1;
#[allocscope::budget(max_bytes_allocated = 100, max_leaked_bytes = 0)]
fn leaks_into(kept: &mut Vec<Vec<u8>>) {
    kept.push(black_box(vec![0u8; 200]));
}

#[test]
fn the_message_is_located_at_the_attribute_and_names_the_leak() {
    let msg = catch_unwind(|| leaks_into(&mut Vec::with_capacity(4))).unwrap_err();
    let msg = msg.downcast_ref::<String>().expect("a formatted message");
    let at = format!("tests/budget_attribute.rs:{ATTRIBUTE_LINE}:");
    assert!(
        msg.starts_with("allocation budget exceeded: bytes_allocated 200 > 100, leaked_bytes 200 > 0 (budget at "),
        "{msg}"
    );
    assert!(msg.contains(&at), "located at the attribute ({at}):\n{msg}");
    assert!(msg.contains("\nlargest allocation still held (200 bytes; 1 of 1 block still held):\n  at "), "{msg}");
}

#[allocscope::budget(max_allocs = 1)]
#[tokio::test]
async fn above_tokio_test() {
    std::future::ready(()).await;
    drop(black_box(Box::new(1u64)));
}

#[tokio::test]
#[allocscope::budget(max_allocs = 1)]
async fn below_tokio_test() {
    std::future::ready(()).await;
    drop(black_box(Box::new(1u64)));
}

#[allocscope::budget(max_allocs = 1)]
#[tokio::test]
#[should_panic(expected = "allocation budget exceeded: allocs 3 > 1 (budget at ")]
async fn above_tokio_test_over_budget() {
    std::future::ready(()).await;
    drop(black_box((Box::new(1u64), Box::new(2u64), Box::new(3u64))));
}

#[tokio::test]
#[should_panic(expected = "allocation budget exceeded: allocs 3 > 1 (budget at ")]
#[allocscope::budget(max_allocs = 1)]
async fn below_tokio_test_over_budget() {
    std::future::ready(()).await;
    drop(black_box((Box::new(1u64), Box::new(2u64), Box::new(3u64))));
}

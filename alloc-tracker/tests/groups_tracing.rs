//! The tracing layer: `#[instrument]`ed functions get exact figures per
//! span name, with no change to their code.
#![cfg(all(feature = "tracing", feature = "jemalloc"))]

use std::hint::black_box;

use allocscope::{CountingAlloc, Group, GroupLayer, Jemalloc};
use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

#[tracing::instrument]
fn tracing_parse(len: usize) -> Vec<u8> {
    black_box(vec![0u8; len])
}

#[tracing::instrument]
fn tracing_render(boxes: u64) {
    for i in 0..boxes {
        drop(black_box(Box::new(i)));
    }
}

#[test]
fn instrumented_functions_get_exact_figures_per_span() {
    let subscriber = tracing_subscriber::registry().with(GroupLayer::new());
    let kept = tracing::subscriber::with_default(subscriber, || {
        let kept: Vec<Vec<u8>> = (0..3).map(|_| tracing_parse(100)).collect();
        tracing_render(5);
        tracing_render(5);
        kept
    });
    let parse = Group::listed("tracing_parse").stats();
    let render = Group::listed("tracing_render").stats();
    assert_eq!((parse.allocs, parse.bytes_allocated, parse.deallocs), (3, 300, 0));
    assert_eq!((render.allocs, render.bytes_allocated, render.deallocs), (10, 80, 10));
    assert_eq!((Group::listed("tracing_parse").windows(), Group::listed("tracing_render").windows()), (3, 2));
    drop(kept);
}

#[test]
fn a_layer_for_marked_spans_leaves_the_others_alone() {
    let subscriber = tracing_subscriber::registry().with(GroupLayer::only_with_field("allocscope"));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("tracing.marked", allocscope = true).in_scope(|| drop(black_box(vec![0u8; 9])));
        tracing::info_span!("tracing.unmarked").in_scope(|| drop(black_box(vec![0u8; 9])));
    });
    assert_eq!(Group::listed("tracing.marked").stats().bytes_allocated, 9);
    assert_eq!(Group::listed("tracing.unmarked").windows(), 0);
}

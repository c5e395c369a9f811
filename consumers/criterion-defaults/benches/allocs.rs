//! Allocations per iteration with criterion's default features, as the
//! allocscope documentation sets it up.

use allocscope::criterion::{Allocs, Bytes, Counted};
use criterion::{criterion_group, criterion_main, Criterion};

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<std::alloc::System> = allocscope::CountingAlloc::new(std::alloc::System);

fn words_allocs(c: &mut Criterion<Counted<Allocs>>) {
    let mut group = c.benchmark_group("allocs");
    group.bench_function("words", |b| b.iter(|| consumer_criterion_defaults::words("a few short words")));
    group.finish();
}

fn words_bytes(c: &mut Criterion<Counted<Bytes>>) {
    let mut group = c.benchmark_group("bytes");
    group.bench_function("words", |b| b.iter(|| consumer_criterion_defaults::words("a few short words")));
    group.finish();
}

criterion_group! {
    name = allocs;
    config = allocscope::criterion::config(Allocs::new());
    targets = words_allocs
}
criterion_group! {
    name = bytes;
    config = allocscope::criterion::config(Bytes::new());
    targets = words_bytes
}
criterion_main!(allocs, bytes);

//! allocscope in criterion benchmarks: `cargo bench -p allocscope --bench criterion_allocs`.
//!
//! The same routines twice: timed by criterion with a Go `-benchmem` line
//! printed under each estimate (`allocscope::criterion::bench_function`),
//! then measured in allocations per iteration by criterion itself
//! (`allocscope::criterion::Allocs`).

use std::fmt::Write;
use std::hint::black_box;

use allocscope::criterion::{bench_function, Allocs, Counted};
use criterion::{criterion_group, criterion_main, Criterion};

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> = allocscope::CountingAlloc::new(allocscope::Jemalloc);

const LINE: &str = "GET /users/42 HTTP/1.1";

/// One `String` per word and the `Vec` that holds them: 4 allocations and
/// 116 bytes for this line (3 + 9 + 8 bytes of words, and the `Vec`'s first
/// capacity, 4 `String`s of 24 bytes).
fn words(line: &str) -> Vec<String> {
    line.split(' ').map(String::from).collect()
}

/// The same words into a caller's buffer: nothing allocated once the buffer
/// has grown.
fn words_into<'a>(line: &'a str, out: &mut Vec<&'a str>) {
    out.clear();
    out.extend(line.split(' '));
}

/// A formatted log line: one `String`, grown as it is written (8, 16, 32
/// and 64 bytes: 1 allocation and 3 reallocations, 120 bytes).
fn log_line(status: u16, path: &str) -> String {
    let mut s = String::new();
    let _ = write!(s, "status={status} path={path} bytes=1234");
    s
}

fn time_and_go_lines(c: &mut Criterion) {
    bench_function(c, "words", || words(black_box(LINE)));
    let mut out = Vec::new();
    bench_function(c, "words_into", || {
        words_into(black_box(LINE), &mut out);
        out.len()
    });
    bench_function(c, "log_line", || log_line(black_box(200), black_box("/users/42")));
}

/// `words_into` is left out here: it allocates nothing per iteration, and
/// criterion refuses to analyse samples that read zero.
fn allocs_per_iteration(c: &mut Criterion<Counted<Allocs>>) {
    // Ids of their own: criterion compares each id with its last run.
    let mut group = c.benchmark_group("allocs");
    group.bench_function("words", |b| b.iter(|| words(black_box(LINE))));
    group.bench_function("log_line", |b| b.iter(|| log_line(black_box(200), black_box("/users/42"))));
}

criterion_group!(time, time_and_go_lines);
criterion_group! {
    name = allocs;
    config = allocscope::criterion::config(Allocs::new());
    targets = allocs_per_iteration
}
criterion_main!(time, allocs);

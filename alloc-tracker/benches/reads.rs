//! What reading the counters costs, outside the allocator path: a process
//! snapshot with 10 other threads registered (what a metrics scrape does),
//! a thread snapshot, a scope, an operation guard, entering and leaving a
//! group (what `InGroup` adds to every poll).
//!
//! `cargo bench -p allocscope --bench reads`

use std::hint::black_box;
use std::sync::{Arc, Barrier};

use criterion::{criterion_group, criterion_main, Criterion};

#[global_allocator]
static GLOBAL: allocscope::CountingAlloc<std::alloc::System> = allocscope::CountingAlloc::new(std::alloc::System);

fn reads(c: &mut Criterion) {
    // Ten registered threads, parked for the whole benchmark.
    let release = Arc::new(Barrier::new(11));
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let release = Arc::clone(&release);
            std::thread::spawn(move || {
                drop(black_box(vec![0u8; 8])); // registers
                release.wait();
            })
        })
        .collect();
    allocscope::process_stats();
    c.bench_function("process_stats, 11 threads", |b| b.iter(|| black_box(allocscope::process_stats())));
    c.bench_function("thread_stats", |b| b.iter(|| black_box(allocscope::thread_stats())));
    c.bench_function("Scope::start + finish", |b| b.iter(|| black_box(allocscope::Scope::start().finish())));
    drop(allocscope::op("reads.op"));
    c.bench_function("op guard", |b| b.iter(|| drop(black_box(allocscope::op("reads.op")))));
    let group = allocscope::Group::new("reads.group");
    c.bench_function("Group::enter + leave (a poll's cost)", |b| b.iter(|| drop(black_box(group.enter()))));
    release.wait();
    for t in threads {
        t.join().unwrap();
    }
}

criterion_group!(benches, reads);
criterion_main!(benches);

//! Enqueue+dequeue per variant: single thread (`pair`), and one producer
//! with one consumer thread (`threads`). criterion measures time;
//! `allocscope::criterion::bench_custom` counts the allocations of the same
//! iterations and prints a Go `-benchmem` line under each estimate
//! (requested bytes; allocs + reallocs; the `threads` mode's consumer
//! thread, spawned once per batch, is counted too).
//!
//! `cargo bench -p queue --bench variants`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use allocscope::criterion::bench_custom;
use allocscope::{CountingAlloc, Jemalloc};
use criterion::{criterion_group, criterion_main, Criterion};
use queue::{Baseline, Batched, LockFree, MessageRef, Pooled, Queue, QueueConfig};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

const ID: &str = "message-00000001";
const PAYLOAD: &[u8; 32] = b"0123456789abcdef0123456789abcdef";
const BATCH: usize = 64;

fn msg(seq: u64) -> MessageRef<'static> {
    MessageRef { id: ID, payload: PAYLOAD, seq, stamp_ns: 0 }
}

/// Calls `f` with batches of at most `BATCH` messages, `iters` in all.
fn in_batches(iters: u64, mut f: impl FnMut(&[MessageRef<'static>])) {
    let batch: [MessageRef<'static>; BATCH] = std::array::from_fn(|i| msg(i as u64));
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH as u64) as usize;
        f(&batch[..n]);
        left -= n as u64;
    }
}

/// `iters` messages through `q` on this thread, in batches for `Batched`.
fn pair<'q, Q: Queue>(q: &'q Q, iters: u64, batched: bool, out: &mut Vec<Q::Received<'q>>) {
    if batched {
        in_batches(iters, |batch| {
            q.enqueue_batch(batch).unwrap();
            q.dequeue_batch(out, batch.len()).unwrap();
            black_box(&out);
            out.clear();
        });
    } else {
        for seq in 0..iters {
            q.enqueue(&msg(seq)).unwrap();
            black_box(q.dequeue().unwrap());
        }
    }
}

/// `iters` messages from a producer thread to a consumer thread.
fn threads<Q: Queue + 'static>(q: &Arc<Q>, iters: u64, batched: bool) {
    let consumer = {
        let q = Arc::clone(q);
        std::thread::spawn(move || {
            let mut out = Vec::with_capacity(BATCH);
            let mut got = 0;
            while got < iters {
                if batched {
                    got += q.dequeue_batch(&mut out, BATCH).unwrap() as u64;
                    out.clear();
                } else {
                    black_box(q.dequeue().unwrap());
                    got += 1;
                }
            }
        })
    };
    if batched {
        in_batches(iters, |batch| {
            q.enqueue_batch(batch).unwrap();
        });
    } else {
        for seq in 0..iters {
            q.enqueue(&msg(seq)).unwrap();
        }
    }
    consumer.join().unwrap();
}

fn bench_variant<Q: Queue + 'static>(c: &mut Criterion, batched: bool) {
    let name = Q::from_config(QueueConfig::default()).name();

    let q = Q::from_config(QueueConfig::default());
    let mut out = Vec::with_capacity(BATCH);
    pair(&q, 10_000, batched, &mut out); // fill the pool
    bench_custom(c, &format!("{name}/pair"), |iters| {
        let start = Instant::now();
        pair(&q, iters, batched, &mut out);
        start.elapsed()
    });

    let q = Arc::new(Q::from_config(QueueConfig::default()));
    threads(&q, 10_000, batched);
    bench_custom(c, &format!("{name}/threads"), |iters| {
        let start = Instant::now();
        threads(&q, iters, batched);
        start.elapsed()
    });
}

fn variants(c: &mut Criterion) {
    bench_variant::<Baseline>(c, false);
    bench_variant::<Pooled>(c, false);
    bench_variant::<Batched>(c, true);
    bench_variant::<LockFree>(c, false);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(20);
    targets = variants
}
criterion_main!(benches);

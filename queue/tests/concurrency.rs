//! 4 producers x 4 consumers, 10^6 messages in total, for every variant:
//! each message delivered exactly once, each producer's order kept, and the
//! run always finishes (a watchdog fails the test instead of hanging).

mod common;

use std::sync::Arc;

use common::within;
use queue::{MessageRef, Queue, QueueConfig};

const PRODUCERS: u64 = 4;
const CONSUMERS: usize = 4;
const TOTAL: u64 = if cfg!(miri) { 400 } else { 1_000_000 };
const PER_PRODUCER: u64 = TOTAL / PRODUCERS;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Single,
    Batch,
}

fn run<Q: Queue + 'static>(api: Api) {
    let name = format!(
        "{} with {} operations",
        std::any::type_name::<Q>(),
        if api == Api::Single { "single" } else { "batch" }
    );
    let received = within(300, &name, move || {
        let q = Arc::new(Q::from_config(QueueConfig { capacity: 256, ..QueueConfig::default() }));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q = Arc::clone(&q);
                std::thread::spawn(move || {
                    let id = format!("producer-{p}");
                    let payloads: Vec<[u8; 8]> = (0..PER_PRODUCER).map(u64::to_le_bytes).collect();
                    let mut batch = Vec::with_capacity(32);
                    for seq in 0..PER_PRODUCER {
                        let m = MessageRef { id: &id, payload: &payloads[seq as usize], seq, stamp_ns: p };
                        match api {
                            Api::Single => q.enqueue(&m).unwrap(),
                            Api::Batch => {
                                batch.push(m);
                                if batch.len() == 32 || seq + 1 == PER_PRODUCER {
                                    assert_eq!(q.enqueue_batch(&batch), Ok(batch.len()));
                                    batch.clear();
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let q = Arc::clone(&q);
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let mut out = Vec::with_capacity(32);
                    loop {
                        let closed = match api {
                            Api::Single => match q.dequeue() {
                                Ok(m) => {
                                    seen.push((m.stamp_ns(), m.seq(), m.payload() == m.seq().to_le_bytes()));
                                    false
                                }
                                Err(_) => true,
                            },
                            Api::Batch => {
                                let r = q.dequeue_batch(&mut out, 32);
                                seen.extend(
                                    out.drain(..)
                                        .map(|m| (m.stamp_ns(), m.seq(), m.payload() == m.seq().to_le_bytes())),
                                );
                                r.is_err()
                            }
                        };
                        if closed {
                            return seen;
                        }
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        q.close();
        consumers.into_iter().map(|c| c.join().unwrap()).collect::<Vec<_>>()
    });

    let mut delivered = vec![vec![false; PER_PRODUCER as usize]; PRODUCERS as usize];
    for (c, seen) in received.iter().enumerate() {
        let mut last = vec![None::<u64>; PRODUCERS as usize];
        for &(p, seq, payload_ok) in seen {
            assert!(payload_ok, "{name}: payload of producer {p} message {seq} corrupted");
            let slot = &mut delivered[p as usize][seq as usize];
            assert!(!*slot, "{name}: producer {p} message {seq} delivered twice");
            *slot = true;
            let before = last[p as usize].replace(seq);
            assert!(before.is_none_or(|b| b < seq), "{name}: consumer {c} got producer {p}'s {seq} after {before:?}");
        }
    }
    let lost = delivered.iter().flatten().filter(|d| !**d).count();
    assert_eq!(lost, 0, "{name}: {lost} messages lost");
}

#[test]
fn baseline_4x4() {
    run::<queue::Baseline>(Api::Single);
}

#[test]
fn baseline_4x4_with_batches() {
    run::<queue::Baseline>(Api::Batch);
}

#[test]
fn pooled_4x4() {
    run::<queue::Pooled>(Api::Single);
}

#[test]
fn pooled_4x4_with_batches() {
    run::<queue::Pooled>(Api::Batch);
}

#[test]
fn batched_4x4() {
    run::<queue::Batched>(Api::Single);
}

#[test]
fn batched_4x4_with_batches() {
    run::<queue::Batched>(Api::Batch);
}

#[test]
fn lockfree_4x4() {
    run::<queue::LockFree>(Api::Single);
}

#[test]
fn lockfree_4x4_with_batches() {
    run::<queue::LockFree>(Api::Batch);
}

//! What limits cross-thread throughput on this machine, measured:
//!
//! 1. the one-way transfer of a cache line between two threads (an atomic
//!    counter handed back and forth), the floor under any message passed
//!    from one core to another;
//! 2. `LockFree` with one producer and one consumer thread: throughput, and
//!    how often each side found the ring full or empty and had to wait or
//!    sleep (the wake-ups).
//!
//! `cargo run --release -p queue --example limits`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use queue::{LockFree, MessageRef, Queue, QueueConfig};

const ROUND_TRIPS: u64 = 1_000_000;
const MESSAGES: u64 = 2_000_000;
const REPEATS: usize = 5;

#[repr(align(128))]
struct Line(AtomicU64);

/// Nanoseconds per one-way cache-line transfer.
fn ping_pong() -> f64 {
    let line = Arc::new(Line(AtomicU64::new(0)));
    let other = {
        let line = Arc::clone(&line);
        std::thread::spawn(move || {
            for i in 0..ROUND_TRIPS {
                while line.0.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                line.0.store(2 * i + 2, Ordering::Release);
            }
        })
    };
    let start = Instant::now();
    for i in 0..ROUND_TRIPS {
        line.0.store(2 * i + 1, Ordering::Release);
        while line.0.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / (2 * ROUND_TRIPS) as f64;
    other.join().unwrap();
    ns
}

fn lockfree_threads() -> (f64, queue::WaitCounts) {
    let q = Arc::new(LockFree::new(QueueConfig::default()));
    let consumer = {
        let q = Arc::clone(&q);
        std::thread::spawn(move || {
            while let Ok(m) = q.dequeue() {
                black_box(m.seq());
            }
        })
    };
    let payload = [0xA5u8; 32];
    let start = Instant::now();
    for seq in 0..MESSAGES {
        q.enqueue(&MessageRef { id: "message-00000001", payload: &payload, seq, stamp_ns: 0 }).unwrap();
    }
    q.close();
    consumer.join().unwrap();
    (start.elapsed().as_nanos() as f64 / MESSAGES as f64, q.wait_counts())
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let mut transfers = Vec::new();
    let mut messages = Vec::new();
    let mut waits = Vec::new();
    for _ in 0..REPEATS {
        transfers.push(ping_pong());
        let (ns, w) = lockfree_threads();
        messages.push(ns);
        waits.push(w);
    }
    let (t, tlo, thi) = median(transfers);
    let (m, mlo, mhi) = median(messages);
    println!("cache-line transfer, one way: {t:.1} ns median ({tlo:.1}-{thi:.1}), {REPEATS} runs of {ROUND_TRIPS} round trips");
    println!(
        "lockfree, 1 producer + 1 consumer thread: {m:.1} ns/msg median ({mlo:.1}-{mhi:.1}) = {:.1} M msg/s, {REPEATS} runs of {MESSAGES} messages",
        1e3 / m
    );
    println!("  = {:.1} one-way cache-line transfers per message", m / t);
    for (i, w) in waits.iter().enumerate() {
        println!(
            "  run {}: producer found the ring full {} times ({} sleeps), consumer found it empty {} times ({} sleeps)",
            i + 1,
            w.full_waits,
            w.full_sleeps,
            w.empty_waits,
            w.empty_sleeps
        );
    }
}

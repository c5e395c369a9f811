//! What limits the queue's throughput on this machine, measured:
//!
//! 1. the one-way transfer of a cache line between two threads (an atomic
//!    counter handed back and forth), the floor under any message passed
//!    from one core to another;
//! 2. one uncontended locked read-modify-write (`fetch_add`): every
//!    compare-and-swap of a ring's index, every close-protocol
//!    announcement, costs at least this, and it serialises the core;
//! 3. a 48-byte message copy into a ring slot, alone and followed by one
//!    locked read-modify-write (what a claim costs after a copy's stores);
//! 4. every variant with one producer and one consumer thread, one message
//!    per call and then [`Queue::BATCH`] per call: nanoseconds per message
//!    and what that is in one-way cache-line transfers; for `lockfree`,
//!    how often each side found the ring full or empty.
//!
//! `cargo run --release -p queue --example limits`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use queue::{LockFree, MessageRef, Queue, QueueConfig, Variant, VariantVisitor};

const ROUND_TRIPS: u64 = 1_000_000;
const RMWS: u64 = 10_000_000;
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

/// Nanoseconds per uncontended `fetch_add` (a `lock xadd` on x86-64).
fn locked_rmw() -> f64 {
    let line = Line(AtomicU64::new(0));
    let start = Instant::now();
    for _ in 0..RMWS {
        black_box(&line).0.fetch_add(1, Ordering::SeqCst);
    }
    start.elapsed().as_nanos() as f64 / RMWS as f64
}

/// Nanoseconds per message of a ring-like loop on one thread: copy a
/// 48-byte message (a 16-byte id and a 32-byte payload) into the next of
/// 1024 slots, then, with `rmw`, claim it with one locked read-modify-write,
/// as a lock-free ring claims each slot. The difference between the two is
/// what a claim costs right after the stores of a message copy (a locked
/// instruction waits for the core's earlier stores to drain).
fn copy_then_claim(rmw: bool) -> f64 {
    let mut slots = vec![[0u8; 48]; 1024];
    let index = Line(AtomicU64::new(0));
    let message = [0xA5u8; 48];
    let start = Instant::now();
    for i in 0..RMWS as usize {
        slots[i % 1024] = *black_box(&message);
        if rmw {
            black_box(&index).0.fetch_add(1, Ordering::SeqCst);
        }
    }
    black_box(&slots);
    start.elapsed().as_nanos() as f64 / RMWS as f64
}

/// One producer and one consumer thread moving [`MESSAGES`] messages
/// through a new queue of type `Q`, `batch` per call: nanoseconds per
/// message, and the queue itself (for its wait counts).
fn threads<Q: Queue + 'static>(batch: usize) -> (f64, Arc<Q>) {
    let q = Arc::new(Q::from_config(QueueConfig::default()));
    let consumer = {
        let q = Arc::clone(&q);
        std::thread::spawn(move || {
            let mut out = Vec::with_capacity(batch);
            loop {
                if batch == 1 {
                    match q.dequeue() {
                        Ok(m) => black_box(m.seq()),
                        Err(_) => return,
                    };
                } else {
                    let more = q.dequeue_batch(&mut out, batch).is_ok();
                    out.drain(..).for_each(|m| {
                        black_box(m.seq());
                    });
                    if !more {
                        return;
                    }
                }
            }
        })
    };
    let payload = [0xA5u8; 32];
    let message = |seq| MessageRef { id: "message-00000001", payload: &payload, seq, stamp_ns: 0 };
    let start = Instant::now();
    let mut seq = 0;
    while seq < MESSAGES {
        if batch == 1 {
            q.enqueue(&message(seq)).unwrap();
            seq += 1;
        } else {
            let msgs: Vec<_> = (seq..seq + batch as u64).map(message).collect();
            q.enqueue_batch(&msgs).unwrap();
            seq += batch as u64;
        }
    }
    q.close();
    consumer.join().unwrap();
    (start.elapsed().as_nanos() as f64 / seq as f64, q)
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Every run of one variant: single calls, then batch calls (none for a
/// variant that moves one message per call), and its batch size.
struct Runs;

impl VariantVisitor for Runs {
    type Output = (usize, Vec<f64>, Vec<f64>);
    fn visit<Q: Queue + 'static>(self) -> (usize, Vec<f64>, Vec<f64>) {
        let runs = |batch| (0..REPEATS).map(|_| threads::<Q>(batch).0).collect();
        (Q::BATCH, runs(1), if Q::BATCH > 1 { runs(Q::BATCH) } else { Vec::new() })
    }
}

fn main() {
    let (t, tlo, thi) = median((0..REPEATS).map(|_| ping_pong()).collect());
    println!("cache-line transfer, one way: {t:.1} ns median ({tlo:.1}-{thi:.1}), {REPEATS} runs of {ROUND_TRIPS} round trips");
    let (r, rlo, rhi) = median((0..REPEATS).map(|_| locked_rmw()).collect());
    println!("locked read-modify-write, uncontended: {r:.1} ns median ({rlo:.1}-{rhi:.1}), {REPEATS} runs of {RMWS}");
    let (c, clo, chi) = median((0..REPEATS).map(|_| copy_then_claim(false)).collect());
    let (k, klo, khi) = median((0..REPEATS).map(|_| copy_then_claim(true)).collect());
    println!(
        "48-byte copy into a ring slot: {c:.1} ns median ({clo:.1}-{chi:.1}); the same, then a locked read-modify-write: {k:.1} ns ({klo:.1}-{khi:.1}), {REPEATS} runs of {RMWS}"
    );
    println!("1 producer + 1 consumer thread, {REPEATS} runs of {MESSAGES} messages each, ns/msg median (min-max) = one-way transfers per message:");
    for &v in Variant::ALL {
        let (batch, single, batched) = v.visit(Runs);
        let (s, slo, shi) = median(single);
        print!("  {:<9} 1 per call: {s:6.1} ({slo:.1}-{shi:.1}) = {:4.1}", v.name(), s / t);
        if batch > 1 {
            let (b, blo, bhi) = median(batched);
            print!("   {batch} per call: {b:6.1} ({blo:.1}-{bhi:.1}) = {:4.1}", b / t);
        }
        println!();
    }
    let waits: Vec<_> = (0..REPEATS).map(|_| threads::<LockFree>(1).1.wait_counts()).collect();
    for (i, w) in waits.iter().enumerate() {
        println!(
            "  lockfree, 1 per call, run {}: producer found the ring full {} times ({} sleeps), consumer found it empty {} times ({} sleeps)",
            i + 1,
            w.full_waits,
            w.full_sleeps,
            w.empty_waits,
            w.empty_sleeps
        );
    }
}

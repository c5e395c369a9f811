//! Allocation budgets, measured with allocscope on the producer's (and the
//! consumer's) thread: exact counts, so these run in parallel with the rest.

mod common;

use std::hint::black_box;

use allocscope::{assert_no_alloc, measure, CountingAlloc, Jemalloc};
use common::{msg, PAYLOAD};
use queue::{Baseline, Batched, LockFree, Pooled, Queue, QueueConfig};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

const MESSAGES: u64 = 10_000;

#[test]
fn baseline_costs_exactly_four_allocations_per_enqueued_message() {
    let q = Baseline::new(QueueConfig { capacity: MESSAGES as usize, ..QueueConfig::default() });
    // Warm-up: the channel's first use on a thread.
    q.enqueue(&msg(0)).unwrap();
    drop(q.dequeue().unwrap());

    let ((), produced) = measure(|| {
        for seq in 0..MESSAGES {
            q.enqueue(&msg(seq)).unwrap();
        }
    });
    assert_eq!(produced.allocs, 4 * MESSAGES, "{produced}");
    assert_eq!((produced.allocs, produced.reallocs, produced.deallocs), (4 * MESSAGES, 0, 0));
    // 64-byte message + 16-byte id + 32-byte payload + 8-byte `dyn Any` box.
    assert_eq!(produced.bytes_allocated, (64 + 16 + 32 + 8) * MESSAGES);

    let ((), consumed) = measure(|| {
        for _ in 0..MESSAGES {
            drop(black_box(q.dequeue().unwrap()));
        }
    });
    assert_eq!((consumed.allocs, consumed.deallocs), (0, 4 * MESSAGES), "{consumed}");
    assert_eq!(consumed.bytes_freed, produced.bytes_allocated);
}

/// Warm up (write every slot of the ring once: `lockfree` creates its
/// slots' buffers on first use), then 10,000 messages through enqueue and
/// dequeue on this thread with no allocation at all.
fn steady_state_allocates_nothing<Q: Queue>() {
    let q = Q::from_config(QueueConfig::default());
    for seq in 0..q.capacity() as u64 {
        q.enqueue(&msg(seq)).unwrap();
        drop(q.dequeue().unwrap());
    }
    assert_no_alloc(|| {
        for seq in 0..MESSAGES {
            q.enqueue(&msg(seq)).unwrap();
            let m = q.dequeue().unwrap();
            assert_eq!((m.seq(), m.payload()), (seq, &PAYLOAD[..]));
        }
    });
}

#[test]
fn pooled_steady_state_allocates_nothing() {
    steady_state_allocates_nothing::<Pooled>();
}

#[test]
fn batched_steady_state_allocates_nothing() {
    steady_state_allocates_nothing::<Batched>();
}

#[test]
fn lockfree_steady_state_allocates_nothing() {
    steady_state_allocates_nothing::<LockFree>();
}

/// Batches of 64 through `enqueue_batch` and `dequeue_batch`, after one
/// pass over every slot: no allocation.
fn batches_allocate_nothing_in_steady_state<Q: Queue>() {
    let q = Q::from_config(QueueConfig::default());
    let batch: Vec<_> = (0..64).map(msg).collect();
    let mut out = Vec::with_capacity(64);
    for _ in 0..q.capacity() / 64 {
        q.enqueue_batch(&batch).unwrap();
        q.dequeue_batch(&mut out, 64).unwrap();
        out.clear();
    }
    assert_no_alloc(|| {
        for _ in 0..MESSAGES / 64 {
            assert_eq!(q.enqueue_batch(&batch), Ok(64));
            assert_eq!(q.dequeue_batch(&mut out, 64), Ok(64));
            out.clear();
        }
    });
}

#[test]
fn batched_batches_allocate_nothing_in_steady_state() {
    batches_allocate_nothing_in_steady_state::<Batched>();
}

#[test]
fn lockfree_batches_allocate_nothing_in_steady_state() {
    batches_allocate_nothing_in_steady_state::<LockFree>();
}

/// The pooled variants' steady state across threads: a producer thread
/// takes messages, a consumer thread gives them back, and the batches
/// that move between the two threads' caches and the shared store let the
/// producer allocate nothing, exactly. The pool holds the working set from
/// the start: the producer's cache can only run dry with the shared store
/// empty when every message is in the queue (256), the consumer's cache
/// (`THREAD_CACHE`) or the consumer's hand (1), so one more than that is
/// enough, whatever the threads' timing. The producer's first wait on a
/// full queue is part of the warm-up too: crossbeam's channel allocates a
/// waiter entry and the thread's context the first time a thread blocks
/// on it (two blocks, once), so the consumer starts reading only once the
/// queue is full and the producer has had time to block.
fn producer_allocates_nothing_when_another_thread_gives_back<Q: Queue + 'static>() {
    let capacity = 256;
    let mut config = QueueConfig { capacity, ..QueueConfig::default() };
    config.pool.prefill = capacity + queue::THREAD_CACHE + 2;
    let q = std::sync::Arc::new(Q::from_config(config));
    let consumer = {
        let q = std::sync::Arc::clone(&q);
        std::thread::spawn(move || {
            while q.len() < q.capacity() {
                std::thread::yield_now();
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            let mut n = 0u64;
            while let Ok(m) = q.dequeue() {
                assert_eq!(m.seq(), n);
                n += 1;
            }
            n
        })
    };
    // Warm-up: more than the queue holds, so the producer blocks.
    for seq in 0..MESSAGES {
        q.enqueue(&msg(seq)).unwrap();
    }
    let ((), produced) = measure(|| {
        for seq in MESSAGES..11 * MESSAGES {
            q.enqueue(&msg(seq)).unwrap();
        }
    });
    q.close();
    assert_eq!(consumer.join().unwrap(), 11 * MESSAGES);
    assert_eq!((produced.allocs, produced.bytes_allocated), (0, 0), "{produced}");
    assert_eq!(q.pool_stats().unwrap().created, config.pool.prefill as u64, "nothing created after the prefill");
}

#[test]
fn pooled_producer_allocates_nothing_when_the_consumer_gives_back() {
    producer_allocates_nothing_when_another_thread_gives_back::<Pooled>();
}

#[test]
fn batched_producer_allocates_nothing_when_the_consumer_gives_back() {
    producer_allocates_nothing_when_another_thread_gives_back::<Batched>();
}

#[test]
fn the_pool_is_the_only_allocation_before_steady_state() {
    let q = LockFree::new(QueueConfig::default());
    let ((), first) = measure(|| {
        q.enqueue(&msg(0)).unwrap();
        drop(q.dequeue().unwrap());
    });
    // One message object created: its id and payload buffers.
    assert_eq!((first.allocs, first.bytes_allocated), (2, 32 + 64), "{first}");
    assert_eq!(q.pool_stats().unwrap().created, 1);
}

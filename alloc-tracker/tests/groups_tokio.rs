//! Groups in a tokio multi-thread runtime: each task's work is counted in
//! its group on whichever worker thread polls it, exactly, across `.await`s
//! that move it between workers.
#![cfg(feature = "jemalloc")]

use std::hint::black_box;

use allocscope::{Budget, CountingAlloc, Group, InGroup, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

thread_local! {
    static MARK: u8 = const { 0 };
}

/// Which thread this is, without allocating (the address of a
/// thread-local).
fn thread_mark() -> usize {
    MARK.with(|m| std::ptr::from_ref(m) as usize)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).build().unwrap()
}

/// Yields on every worker for a while, so that the runtime's own buffers
/// (its deferred wake-ups, its queues) have grown before anything is
/// measured: a poll that grows them allocates, in the polled task's group.
async fn warm_up() {
    let tasks: Vec<_> = (0..2_000)
        .map(|_| {
            tokio::spawn(async {
                for _ in 0..20 {
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[test]
fn a_thousand_tasks_each_counted_exactly_in_its_own_group_across_workers() {
    let rt = runtime();
    let (groups, threads_seen) = rt.block_on(async {
        warm_up().await;
        let groups: Vec<Group> = (0..1_000).map(|_| Group::new("groups_tokio.task")).collect();
        let tasks: Vec<_> = groups
            .iter()
            .enumerate()
            .map(|(i, group)| {
                let boxes = i as u64 % 40 + 1;
                tokio::spawn(
                    async move {
                        let mut threads = [0usize; 12];
                        for (step, seen) in threads.iter_mut().enumerate() {
                            *seen = thread_mark();
                            // Spread the task's boxes over its 12 polls.
                            for j in (step as u64..boxes).step_by(12) {
                                drop(black_box(Box::new(j)));
                            }
                            tokio::task::yield_now().await;
                        }
                        threads
                    }
                    .in_group(group),
                )
            })
            .collect();
        let mut threads_seen = std::collections::HashSet::new();
        let mut migrated = 0;
        for t in tasks {
            let threads = t.await.unwrap();
            migrated += usize::from(threads.iter().any(|&t| t != threads[0]));
            threads_seen.extend(threads);
        }
        (groups, (threads_seen.len(), migrated))
    });
    for (i, group) in groups.iter().enumerate() {
        let boxes = i as u64 % 40 + 1;
        let s = group.stats();
        assert_eq!((s.allocs, s.deallocs, s.bytes_allocated), (boxes, boxes, 8 * boxes), "task {i}");
        assert_eq!(group.windows(), 13, "task {i}: 12 yields, 13 polls");
    }
    let (threads, migrated) = threads_seen;
    assert!(threads > 1 && migrated > 0, "tasks moved between workers: {threads} threads, {migrated} tasks moved");
}

#[inline(never)]
fn over_the_limit() -> Box<u64> {
    black_box(Box::new(11))
}

#[test]
fn check_async_fails_on_another_worker_with_the_site() {
    let rt = runtime();
    // Wake-ups from outside the runtime, every millisecond: a task woken so
    // is scheduled through the runtime's shared queue, for any worker.
    let notify = std::sync::Arc::new(tokio::sync::Notify::new());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let waker = {
        let (notify, stop) = (notify.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                notify.notify_one();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let result = rt.block_on(async {
        warm_up().await;
        tokio::spawn(async move {
            // Occupy this worker once the checked task waits, so that
            // another worker runs it next. (Spawned before the check:
            // spawning allocates.)
            tokio::spawn(async { std::thread::sleep(std::time::Duration::from_millis(300)) });
            Budget::new()
                .max_allocs(10)
                .check_async(async move {
                    let started = thread_mark();
                    while thread_mark() == started {
                        notify.notified().await;
                    }
                    for i in 0..10u64 {
                        drop(black_box(Box::new(i)));
                    }
                    drop(over_the_limit());
                })
                .await
        })
        .await
        .unwrap()
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    waker.join().unwrap();
    let err = result.unwrap_err();
    assert_eq!((err.overruns()[0].max, err.overruns()[0].actual), (10, 11), "{err}");
    let site = err.site().expect("the site, on the worker that polled it");
    assert!(site.lines().next().unwrap().contains("over_the_limit"), "{site}");
}

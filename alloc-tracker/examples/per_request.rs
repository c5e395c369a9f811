//! A small tokio service loop that prints B/request and allocs/request per
//! route: each request is a task running in its route's group, on whichever
//! worker thread polls it, however often it waits.
//!
//! `cargo run --release -p allocscope --example per_request`

use std::hint::black_box;
use std::time::Duration;

use allocscope::{CountingAlloc, Group, InGroup, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

/// `GET /users/{id}`: looks a user up and renders it as JSON.
async fn get_user(id: u64) -> String {
    tokio::time::sleep(Duration::from_micros(50)).await; // the database
    let name = format!("user-{id}");
    let roles: Vec<String> = (0..id % 4).map(|r| format!("role-{r}")).collect();
    tokio::task::yield_now().await;
    format!("{{\"id\":{id},\"name\":\"{name}\",\"roles\":{roles:?}}}")
}

/// `GET /health`: allocates nothing.
async fn health() -> &'static str {
    tokio::task::yield_now().await;
    "ok"
}

/// `POST /orders`: parses a body, then stores it.
async fn post_order(body: &'static str) -> usize {
    let items: Vec<&str> = body.split(',').collect();
    tokio::time::sleep(Duration::from_micros(50)).await;
    let stored = black_box(items.iter().map(|s| s.to_uppercase()).collect::<Vec<_>>());
    stored.len()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let routes = [
        ("GET /users/{id}", Group::listed("GET /users/{id}")),
        ("GET /health", Group::listed("GET /health")),
        ("POST /orders", Group::listed("POST /orders")),
    ];
    const REQUESTS: u64 = 3_000;
    let mut tasks = Vec::new();
    for i in 0..REQUESTS {
        let (_, group) = &routes[(i % 3) as usize];
        // Each request's future counts in its route's group; spawning it
        // (the task's own memory) happens outside the group.
        let task = match i % 3 {
            0 => tokio::spawn(async move { get_user(i).await.len() }.in_group(group)),
            1 => tokio::spawn(async { health().await.len() }.in_group(group)),
            _ => tokio::spawn(async { post_order("apples,pears,plums").await }.in_group(group)),
        };
        tasks.push(task);
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!("{:<18} {:>9} {:>10} {:>15} {:>11}", "route", "requests", "B/request", "allocs/request", "polls");
    for (route, group) in &routes {
        let requests = REQUESTS / 3;
        let per = group.stats().per_op(requests);
        println!(
            "{route:<18} {requests:>9} {:>10.1} {:>15.2} {:>11}",
            per.bytes_allocated,
            per.allocs,
            group.windows()
        );
    }
}

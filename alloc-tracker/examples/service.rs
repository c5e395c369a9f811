//! A small service with allocscope's endpoints: `/work?n=N` builds a JSON
//! report of N items (and keeps the last 64 in a cache, so the heap has
//! something live), `/metrics` serves the figures for Prometheus, and
//! `/debug/pprof/heap` and `/debug/pprof/allocs` the sampled heap profile
//! for `go tool pprof`. Every thread is sampled at Go's default rate (or
//! `ALLOCSCOPE_SAMPLE_RATE`). Blocks carry owner tags, so `/metrics` says
//! exactly what the `GET /work` group holds (the cached reports), whichever
//! thread frees them.
//!
//! `cargo run --release -p allocscope --example service --features serve -- --listen 127.0.0.1:8080`

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Mutex;

use allocscope::{CountingAlloc, Group, InGroup, Jemalloc};
use axum::extract::Query;
use axum::routing::get;
use axum::Router;

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc).with_owner_tags();

/// The last reports served: what stays live between requests.
static CACHE: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());

#[derive(serde::Deserialize)]
struct WorkParams {
    n: Option<usize>,
}

/// Builds the report: the workload's allocating function, by name in the
/// heap profile.
#[inline(never)]
fn build_report(n: usize) -> String {
    let _op = allocscope::op("build_report");
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({ "id": i, "name": format!("item-{i}"), "tags": ["a", "b", i.to_string()] }))
        .collect();
    serde_json::to_string(&serde_json::json!({ "count": n, "items": items })).expect("a JSON value serialises")
}

async fn work(Query(params): Query<WorkParams>) -> String {
    let n = params.n.unwrap_or(100).min(10_000);
    async move {
        let report = build_report(n);
        let response = report.clone();
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() == 64 {
            cache.pop_front();
        }
        cache.push_back(report); // build_report's own allocation stays live
        response
    }
    .in_group(&Group::listed("GET /work"))
    .await
}

fn listen_address() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:8080".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address, for example 127.0.0.1:8080")?,
            other => return Err(format!("unknown argument {other:?} (expected --listen ADDRESS)")),
        }
    }
    listen.parse().map_err(|_| format!("--listen {listen:?} is not an address like 127.0.0.1:8080"))
}

fn main() -> ExitCode {
    let addr = match listen_address() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("service: {e}");
            return ExitCode::from(2);
        }
    };
    if allocscope::profile::process_sample_rate() == 0 {
        allocscope::profile::start_process_sampling(allocscope::profile::DEFAULT_SAMPLE_RATE);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async move {
        // The endpoints with their default limits, served within them:
        // connections capped, a header-read timeout, accept errors waited
        // out (axum::serve has none of these).
        let options = allocscope::serve::Options::default();
        let app = Router::new().route("/work", get(work)).merge(options.router());
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("service: cannot listen on {addr}: {e}");
                return ExitCode::from(2);
            }
        };
        println!("listening on http://{}", listener.local_addr().expect("a bound address"));
        match allocscope::serve::serve(listener, app, &options).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("service: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

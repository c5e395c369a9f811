//! The HTTP endpoint: `/metrics` in Prometheus' text format (every family
//! with HELP and TYPE, counters that never go backwards across scrapes),
//! the heap profile's two endpoints with Go's default sample types, and an
//! endpoint that keeps answering while 8 threads allocate and free as fast
//! as they can.
#![cfg(all(feature = "serve", feature = "jemalloc"))]

use std::collections::HashMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use allocscope::{CountingAlloc, Group, Jemalloc};

#[path = "support/http.rs"]
mod http;
#[path = "support/protobuf.rs"]
mod protobuf;

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

/// `GET path`; the status and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    http::request(addr, "GET", path)
}

/// `PUT path`, no body; the status and the body.
fn put(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    http::request(addr, "PUT", path)
}

/// The samples of a text exposition, by (name, labels), checking that each
/// sample's family was introduced by `# HELP` and `# TYPE`; and each
/// family's type.
fn parse(text: &str) -> (HashMap<String, f64>, HashMap<String, String>) {
    let (mut samples, mut types, mut helped) = (HashMap::new(), HashMap::new(), Vec::new());
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().unwrap().to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(helped.iter().any(|h| h == name), "TYPE before HELP: {line}");
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            types.insert(name.to_owned(), kind.to_owned());
        } else {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
            let name = series.split('{').next().unwrap();
            assert!(types.contains_key(name), "a sample without HELP and TYPE: {line}");
            assert!(name.starts_with("allocscope_"), "{line}");
            if types[name] == "counter" {
                assert!(name.ends_with("_total"), "counters end in _total: {line}");
            }
            samples.insert(series.to_owned(), value.parse::<f64>().unwrap_or_else(|_| panic!("{line}")));
        }
    }
    (samples, types)
}

#[test]
fn the_endpoint_keeps_answering_and_counters_never_go_backwards_under_load() {
    let server = allocscope::serve::start_on("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());
    let route = Group::listed("serve.route");
    route.run(|| drop(black_box(vec![0u8; 10])));
    drop(allocscope::op("serve.op"));

    let stop = Arc::new(AtomicBool::new(false));
    let hammers: Vec<_> = (0..8)
        .map(|i| {
            let (stop, route) = (Arc::clone(&stop), route.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if i % 2 == 0 {
                        route.run(|| drop(black_box(vec![0u8; 64])));
                    } else {
                        drop(black_box(Box::new([i as u8; 48])));
                    }
                }
            })
        })
        .collect();
    let mut last: Option<HashMap<String, f64>> = None;
    let started = Instant::now();
    for _ in 0..20 {
        let t = Instant::now();
        let (status, body) = get(addr, "/metrics");
        assert_eq!(status, 200);
        assert!(t.elapsed() < Duration::from_secs(10), "answered in time under load");
        let (samples, types) = parse(&String::from_utf8(body).unwrap());
        for must in [
            "allocscope_allocs_total",
            "allocscope_allocated_bytes_total",
            "allocscope_held_bytes",
            "allocscope_op_calls_total{op=\"serve.op\"}",
            "allocscope_group_allocs_total{group=\"serve.route\"}",
            "allocscope_jemalloc_resident_bytes",
        ] {
            assert!(samples.contains_key(must), "{must} missing");
        }
        if let Some(last) = &last {
            for (series, v) in &samples {
                let name = series.split('{').next().unwrap();
                if types[name] == "counter" {
                    let before = last.get(series).copied().unwrap_or(0.0);
                    assert!(*v >= before, "{series} went back: {before} then {v}");
                }
            }
            assert!(samples["allocscope_allocs_total"] > last["allocscope_allocs_total"]);
        }
        last = Some(samples);
    }
    stop.store(true, Ordering::Relaxed);
    for h in hammers {
        h.join().unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// The string named by pprof's `default_sample_type` (field 14).
fn default_sample_type(gz: &[u8]) -> String {
    let top = protobuf::fields(&protobuf::gunzip(gz));
    let default = top.iter().find(|(f, _)| *f == 14).map(|(_, v)| protobuf::varint_of(v));
    protobuf::strings(&top)[default.expect("a default sample type") as usize].clone()
}

#[test]
fn the_heap_endpoints_serve_pprof_with_gos_default_sample_types() {
    let server = allocscope::serve::start_on("127.0.0.1:0").unwrap();
    allocscope::profile::start_thread_sampling(1);
    let kept = black_box(vec![0u8; 4096]);
    allocscope::profile::stop_thread_sampling();
    for (path, default) in [("/debug/pprof/heap", "inuse_space"), ("/debug/pprof/allocs", "alloc_space")] {
        let (status, body) = get(server.local_addr(), path);
        assert_eq!(status, 200);
        assert_eq!(&body[..2], &[0x1f, 0x8b], "gzipped");
        assert_eq!(default_sample_type(&body), default, "{path}");
    }
    drop(kept);
}

/// Allocates `n` bytes that stay live, from a function a profile can name.
#[inline(never)]
fn keep_window_buffer(n: usize) -> Vec<u8> {
    black_box(vec![1u8; n])
}

#[test]
fn gos_profile_parameters_index_text_windows_and_bad_values() {
    let server = allocscope::serve::start_on("127.0.0.1:0").unwrap();
    let addr = server.local_addr();

    let (status, index) = get(addr, "/debug/pprof/");
    let index = String::from_utf8(index).unwrap();
    assert_eq!(status, 200);
    for link in ["href=\"allocs?debug=1\"", "href=\"heap?debug=1\"", "href=\"heap\"", "href=\"/metrics\""] {
        assert!(index.contains(link), "{link} in {index}");
    }

    // A window: what is allocated while the server waits out 1 second,
    // and only that.
    allocscope::profile::start_thread_sampling(1);
    let before = keep_window_buffer(3000);
    let waiting = std::thread::spawn(move || get(addr, "/debug/pprof/allocs?seconds=1"));
    std::thread::sleep(Duration::from_millis(300));
    let during = keep_window_buffer(5000);
    allocscope::profile::stop_thread_sampling();
    let (status, gz) = waiting.join().unwrap();
    assert_eq!(status, 200);
    let top = protobuf::fields(&protobuf::gunzip(&gz));
    let duration = top.iter().find(|(f, _)| *f == 10).map(|(_, v)| protobuf::varint_of(v));
    assert!(duration.is_some_and(|d| d >= 1_000_000_000), "duration_nanos: {duration:?}");
    // Only the buffer allocated in the window, exactly (rate 1); other
    // tests' threads may sample meanwhile, elsewhere.
    let named: Vec<i64> = protobuf::samples(&top)
        .into_iter()
        .filter(|(names, _)| names.iter().any(|n| n.ends_with("serve::keep_window_buffer")))
        .map(|(_, values)| values[1])
        .collect();
    assert_eq!(named, [5000], "alloc_space of keep_window_buffer in the window");
    let (_, text) = get(addr, "/debug/pprof/allocs?debug=1");
    let text = String::from_utf8(text).unwrap();
    assert!(text.starts_with("heap profile: "), "{text}");
    assert!(text.contains("[1: 5000]") && text.contains("[1: 3000]"), "both buffers since start-up:\n{text}");

    for (path, parameter) in [
        ("/debug/pprof/allocs?seconds=abc", "\"seconds\""),
        ("/debug/pprof/heap?seconds=0", "\"seconds\""),
        ("/debug/pprof/heap?seconds=100000", "\"seconds\""),
        ("/debug/pprof/heap?debug=yes", "\"debug\""),
        ("/debug/pprof/sample_rate?bytes=-1", "\"bytes\""),
    ] {
        let (status, body) = if path.contains("sample_rate") { put(addr, path) } else { get(addr, path) };
        let body = String::from_utf8(body).unwrap();
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(parameter) && body.lines().count() == 1, "{path}: {body}");
    }
    drop((before, during));
}

#[test]
fn sampling_is_switched_on_and_off_at_run_time() {
    let server = allocscope::serve::start_on("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let (status, body) = put(addr, "/debug/pprof/sample_rate?bytes=65536");
    assert_eq!((status, body.as_slice()), (200, &b"65536\n"[..]));
    assert_eq!(allocscope::profile::process_sample_rate(), 65536);
    assert_eq!(get(addr, "/debug/pprof/sample_rate").1, b"65536\n");
    let (status, body) = put(addr, "/debug/pprof/sample_rate?bytes=0");
    assert_eq!((status, body.as_slice()), (200, &b"0\n"[..]));
    assert_eq!(allocscope::profile::process_sample_rate(), 0);
}

//! Sampled heap profiles: a known call chain found with exact counts at
//! rate 1, live figures that follow frees, and estimates within 10 % of the
//! truth at Go's default rate. (Each test allocates through functions of its
//! own, and reads only their sites from the process-wide profile.)
#![cfg(feature = "jemalloc")]

use std::hint::black_box;

use allocscope::profile::{heap_profile, start_thread_sampling, stop_thread_sampling, DEFAULT_SAMPLE_RATE};
use allocscope::{CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

// Each `Box` is one allocation: the point of the chain.
#[allow(clippy::vec_box)]
#[inline(never)]
fn chain_top(n: usize) -> Vec<Box<[u8; 64]>> {
    chain_middle(n)
}

#[allow(clippy::vec_box)]
#[inline(never)]
fn chain_middle(n: usize) -> Vec<Box<[u8; 64]>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(chain_bottom());
    }
    out
}

#[inline(never)]
fn chain_bottom() -> Box<[u8; 64]> {
    black_box(Box::new([1u8; 64]))
}

/// The folded lines that mention `name`, as (stack, bytes).
fn lines_with(name: &str) -> Vec<(String, u64)> {
    heap_profile()
        .folded()
        .lines()
        .filter(|l| l.contains(name))
        .map(|l| {
            let (stack, bytes) = l.rsplit_once(' ').unwrap();
            (stack.to_owned(), bytes.parse().unwrap())
        })
        .collect()
}

#[test]
fn a_known_three_level_chain_is_found_with_exact_counts_at_rate_1() {
    start_thread_sampling(1);
    let boxes = chain_top(100);
    stop_thread_sampling();
    let lines = lines_with("chain_bottom");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let (stack, bytes) = &lines[0];
    assert_eq!(*bytes, 100 * 64, "{stack}");
    let top = stack.find("chain_top").expect("outer frame");
    let middle = stack.find("chain_middle").expect("middle frame");
    let bottom = stack.find("chain_bottom").expect("inner frame");
    assert!(top < middle && middle < bottom, "outermost first: {stack}");
    let site = heap_profile()
        .sites
        .into_iter()
        .find(|s| s.samples == 100 && s.bytes == 6400.0)
        .expect("the site, with every allocation sampled");
    assert_eq!((site.allocs, site.held_blocks, site.held_bytes), (100.0, 100.0, 6400.0));
    drop(boxes);
}

#[inline(never)]
fn freed_at_once(n: usize) {
    for _ in 0..n {
        drop(black_box(Box::new([2u8; 40])));
    }
}

#[test]
fn frees_on_a_sampling_thread_leave_the_live_figures() {
    start_thread_sampling(1);
    freed_at_once(50);
    stop_thread_sampling();
    let site = heap_profile()
        .sites
        .into_iter()
        .find(|s| s.bytes == 2000.0 && s.samples == 50)
        .expect("the freed_at_once site");
    assert_eq!((site.held_blocks, site.held_bytes), (0.0, 0.0));
    assert!(lines_with("freed_at_once").iter().any(|(_, b)| *b == 2000));
}

#[inline(never)]
fn large_workload(blocks: usize, size: usize) {
    for _ in 0..blocks {
        drop(black_box(Vec::<u8>::with_capacity(size)));
    }
}

#[test]
fn sampling_at_the_default_rate_estimates_within_10_percent() {
    // 1 GiB in 64 KiB blocks: about 1,900 samples at 512 KiB, so the
    // estimate's standard deviation is about 2 %.
    const BLOCKS: usize = 16_384;
    const SIZE: usize = 64 * 1024;
    start_thread_sampling(DEFAULT_SAMPLE_RATE);
    large_workload(BLOCKS, SIZE);
    stop_thread_sampling();
    let truth = (BLOCKS * SIZE) as f64;
    let estimate: u64 = lines_with("large_workload").iter().map(|(_, b)| b).sum();
    let error = (estimate as f64 - truth).abs() / truth;
    eprintln!("sampling estimate: {estimate} bytes for {truth}: {:.2} % off", error * 100.0);
    assert!(error < 0.10, "estimated {estimate} bytes for {truth}: {:.1} % off", error * 100.0);
}

#[inline(never)]
fn after_stopping() -> Box<[u8; 24]> {
    black_box(Box::new([3u8; 24]))
}

#[test]
fn nothing_is_sampled_once_sampling_stops() {
    start_thread_sampling(1);
    stop_thread_sampling();
    let b = after_stopping();
    assert!(lines_with("after_stopping").is_empty());
    drop(b);
}

#[inline(never)]
fn dhat_site() -> Vec<u8> {
    black_box(vec![9u8; 300])
}

#[test]
fn the_dhat_json_has_what_the_viewer_requires() {
    start_thread_sampling(1);
    let kept: Vec<Vec<u8>> = (0..5).map(|_| dhat_site()).collect();
    stop_thread_sampling();
    let json: serde_json::Value = serde_json::from_str(&heap_profile().dhat_json("the test")).expect("valid JSON");
    assert_eq!(json["dhatFileVersion"], 2);
    for key in ["mode", "verb", "tu", "Mtu", "cmd"] {
        assert!(json[key].is_string(), "{key}");
    }
    for key in ["bklt", "bkacc"] {
        assert!(json[key].is_boolean(), "{key}");
    }
    assert!(json["pid"].is_u64() && json["te"].is_u64());
    let ftbl = json["ftbl"].as_array().unwrap();
    assert_eq!(ftbl[0], "[root]");
    let ours = ftbl.iter().position(|f| f.as_str().unwrap().contains("dhat_site")).expect("the site's frame");
    let pps = json["pps"].as_array().unwrap();
    for pp in pps {
        assert!(pp["tb"].is_u64() && pp["tbk"].is_u64());
        assert!(pp["fs"].as_array().unwrap().iter().all(|i| (i.as_u64().unwrap() as usize) < ftbl.len()));
    }
    let pp = pps.iter().find(|pp| pp["fs"][0] == ours).expect("a program point at dhat_site, leaf first");
    assert_eq!((pp["tb"].as_u64(), pp["tbk"].as_u64()), (Some(1500), Some(5)));
    drop(kept);
}

//! The same workload as `json_allocscope.rs` under the dhat crate's heap
//! profiler (every allocation's backtrace), for comparison.
//!
//! Usage: `overhead_json_dhat MB [ROUNDS=1]`

#[path = "json_doc.rs"]
mod json_doc;

use std::time::Instant;

#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

fn main() {
    let mb: f64 = std::env::args().nth(1).map_or(5.2, |a| a.parse().expect("a number"));
    let rounds: u32 = std::env::args().nth(2).map_or(1, |a| a.parse().expect("a number"));
    let doc = json_doc::document((mb * 1e6) as usize);
    let start = Instant::now();
    let profiler = dhat::Profiler::builder().testing().build();
    let mut live = dhat::HeapStats::get();
    let mut value = None;
    for _ in 0..rounds {
        let v = serde_json::from_str::<serde_json::Value>(&doc).expect("valid JSON");
        drop(value.replace(v));
        live = dhat::HeapStats::get();
    }
    drop(value);
    drop(profiler);
    println!(
        "dhat: {:.2} s; {} allocations, {} bytes live after parsing",
        start.elapsed().as_secs_f64(),
        live.total_blocks,
        live.curr_bytes
    );
}

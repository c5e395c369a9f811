//! A leak budget that fails: a cache that keeps every response it renders,
//! found by `check_steady` after a warm-up, with the site of the largest
//! allocation that survived the measured run.
//!
//! `cargo run --release -p allocscope --example leak_budget`

use std::collections::HashMap;

use allocscope::{Budget, CountingAlloc, Jemalloc};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

struct Renderer {
    /// Meant to memoise by route; keyed by request id by mistake, so it
    /// grows by one entry per request.
    cache: HashMap<u64, String>,
    next_id: u64,
}

impl Renderer {
    #[inline(never)]
    fn render(&mut self, route: &str) -> usize {
        self.next_id += 1;
        let body = self.cache.entry(self.next_id).or_insert_with(|| format!("<html>{}</html>", route.repeat(40)));
        body.len()
    }
}

fn main() {
    let mut r = Renderer { cache: HashMap::with_capacity(64), next_id: 0 };
    let budget = Budget::new().max_leaked_bytes(0).warmups(3);
    match budget.check_steady(|| r.render("/users")) {
        Ok(()) => println!("no leak"),
        Err(e) => println!("{e}"),
    }
}

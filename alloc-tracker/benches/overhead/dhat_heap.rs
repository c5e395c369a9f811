//! Overhead program: `dhat::Alloc` as the global allocator with dhat's heap
//! profiler running (it wraps the system allocator). See `common.rs`.

#[path = "common.rs"]
mod common;

#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

/// The flags of this program and the wrappers they select.
const WRAPPERS: &[(&str, common::Wrapper)] = &[];

common::instruction_counts!(plain_n = ("", 1), plain_2n = ("", 2),);

fn main() {
    let _profiler = dhat::Profiler::builder()
        .file_name(std::env::temp_dir().join(format!("overhead-dhat-{}.json", std::process::id())))
        .build();
    common::run(WRAPPERS, ir::run);
}

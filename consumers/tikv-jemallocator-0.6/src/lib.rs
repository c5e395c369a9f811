//! An application on tikv-jemallocator 0.6 with allocscope counting over
//! its jemalloc: see `tests/counting.rs`.

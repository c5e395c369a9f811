//! The service surface: a [`Snapshot`] of everything allocscope knows,
//! readable from any thread at any time, rendered in Prometheus' text
//! exposition format ([`Snapshot::prometheus_text`]). Published through
//! the `metrics` facade by `metrics.rs` (the public module
//! `allocscope::metrics`, feature `metrics`) and served over HTTP with the
//! heap profile by `http.rs` (`allocscope::serve`, feature `serve`).

mod prometheus;
mod snapshot;

pub use snapshot::{snapshot, GroupStats, SamplerStats, Snapshot};

//! The bench runner as a library: the study that drives every `queue`
//! variant through one workload, the reports it writes, and the comparison
//! that gates on regressions. The `bench-runner` binary only parses the
//! command line ([`cli`]), calls [`run`], and maps errors to exit codes
//! ([`error`]).
//!
//! Data flows one way: [`cli`] builds a [`plan::Plan`] once; the
//! [`study`] runs it, measured by `allocscope`, into the report's model
//! ([`report::Report`]); [`report`] renders that model (JSON, Markdown,
//! HTML, Go's benchmark format) and [`output`] writes the files all or
//! nothing; [`compare`] reads two reports back and gates, with the
//! statistics of [`stats`].
//!
//! The process that runs a study must have `allocscope::CountingAlloc` as
//! its global allocator (the binary installs it), and repeats in separate
//! processes re-run the current executable with the hidden `repeat`
//! command, so they work from the `bench-runner` binary.
#![forbid(unsafe_code)]

pub mod cli;
pub mod compare;
pub mod error;
pub mod output;
pub mod plan;
pub mod report;
pub mod run;
pub mod stats;
pub mod study;

// The unit tests measure too.
#[cfg(test)]
#[global_allocator]
static TEST_GLOBAL: allocscope::CountingAlloc<allocscope::Jemalloc> =
    allocscope::CountingAlloc::new(allocscope::Jemalloc);

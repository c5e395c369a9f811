//! The MemoryQueue workload (issue 3).
#![forbid(unsafe_code)]

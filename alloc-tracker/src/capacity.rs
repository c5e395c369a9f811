//! The sizes of the library's fixed tables. Everything the allocator path
//! touches lives in static or thread-local memory of a fixed size, so that
//! counting never allocates: these are the capacities that follow, each
//! documented where it applies. (The limits a test sets are a
//! [`Budget`](crate::Budget)'s.)
//!
//! # Examples
//!
//! ```
//! assert!(allocscope::capacity::MAX_THREADS >= 1024);
//! ```

pub use crate::group::{MAX_GROUP_OPS, MAX_OPEN_GROUPS};
pub use crate::op::MAX_OPS;
pub use crate::scope::MAX_OPEN_SCOPES;

/// The most threads whose counters can be registered at the same time;
/// further threads are counted in the process totals only.
pub const MAX_THREADS: usize = crate::counters::MAX_THREADS;
/// The most distinct stacks the heap profile holds; samples of further
/// stacks are dropped (and counted as dropped).
pub const MAX_STACKS: usize = crate::counters::sample::MAX_STACKS;
/// The most sampled blocks followed at once until they are freed (a
/// profile's held figures); further samples are counted as untracked.
pub const MAX_HELD_SAMPLES: usize = crate::counters::sample::MAX_HELD_SAMPLES;

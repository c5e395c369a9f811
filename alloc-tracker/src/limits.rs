//! The sizes of the library's fixed tables. Everything the allocator path
//! touches lives in static or thread-local memory of a fixed size, so that
//! counting never allocates: these are the limits that follow, each
//! documented where it applies.
//!
//! # Examples
//!
//! ```
//! assert!(allocscope::limits::MAX_THREADS >= 1024);
//! ```

pub use crate::counters::sample::{MAX_LIVE, MAX_STACKS};
pub use crate::counters::MAX_THREADS;
pub use crate::group::{MAX_GROUP_OPS, MAX_OPEN_GROUPS};
pub use crate::op::MAX_OPS;
pub use crate::scope::MAX_OPEN_SCOPES;

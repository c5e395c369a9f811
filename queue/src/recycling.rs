//! The one recycling policy of the pooled variants ([`Pool`](crate::Pool)
//! and [`LockFree`](crate::LockFree)'s ring slots), after thingbuf's
//! `Recycle` policy and its `WithCapacity` (create with a minimum capacity,
//! keep only elements within a maximum): a message is created once with
//! its buffers' initial capacities, and is kept for reuse only while each
//! buffer stays within `retention_factor` times its initial capacity, so
//! one oversized payload does not pin its memory forever.

use crate::{Message, PoolConfig};

/// When a message is created and when it is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Recycling {
    id_capacity: usize,
    payload_capacity: usize,
    /// The largest buffers kept: `retention_factor` times the initial
    /// capacities, computed once (every give-back compares with them).
    id_limit: usize,
    payload_limit: usize,
}

impl Recycling {
    /// The policy of `config`'s capacities and retention factor.
    pub(crate) fn new(config: &PoolConfig) -> Recycling {
        Recycling {
            id_capacity: config.id_capacity,
            payload_capacity: config.payload_capacity,
            id_limit: config.retention_factor.saturating_mul(config.id_capacity),
            payload_limit: config.retention_factor.saturating_mul(config.payload_capacity),
        }
    }

    /// A new message with the initial capacities (one allocation per
    /// buffer).
    pub(crate) fn new_message(&self) -> Message {
        Message::with_capacity(self.id_capacity, self.payload_capacity)
    }

    /// Whether `m`'s buffers are still within the retention cap.
    #[inline]
    pub(crate) fn keeps(&self, m: &Message) -> bool {
        let (id, payload) = m.capacities();
        id <= self.id_limit && payload <= self.payload_limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MessageRef;

    #[test]
    fn a_message_is_kept_up_to_the_retention_factor_times_its_initial_capacity() {
        let policy = Recycling::new(&PoolConfig { id_capacity: 8, payload_capacity: 16, ..PoolConfig::default() });
        let mut m = policy.new_message();
        assert_eq!(m.capacities(), (8, 16));
        m.copy_from(&MessageRef { id: "x", payload: &[0; 64], seq: 0, stamp_ns: 0 });
        assert!(policy.keeps(&m), "64 = 4 x 16: within the cap");
        m.copy_from(&MessageRef { id: "x", payload: &[0; 65], seq: 0, stamp_ns: 0 });
        assert!(!policy.keeps(&m), "grown past 4 x 16");
    }
}

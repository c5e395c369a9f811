//! The message: what producers hand in ([`MessageRef`]) and what consumers
//! get out ([`Message`]).

/// A message as the producer has it, borrowed: the queue copies it in.
///
/// The Go original's `DataMessage { id, payload }`, plus a sequence number
/// and a timestamp for the bench runner's order and latency checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRef<'a> {
    /// The message id (about 16 bytes in the Go workload).
    pub id: &'a str,
    /// The payload (about 32 bytes in the Go workload).
    pub payload: &'a [u8],
    /// A sequence number; the bench runner uses producer and sequence.
    pub seq: u64,
    /// A timestamp in nanoseconds, taken by the producer; opaque here.
    pub stamp_ns: u64,
}

/// A message inside the queue: owned copies of the id and payload.
///
/// 64 bytes on 64-bit targets (the Go message's size), plus its two buffers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    id: String,
    payload: Vec<u8>,
    seq: u64,
    stamp_ns: u64,
}

impl Message {
    /// A new message with empty buffers of the given capacities.
    pub fn with_capacity(id: usize, payload: usize) -> Message {
        Message { id: String::with_capacity(id), payload: Vec::with_capacity(payload), seq: 0, stamp_ns: 0 }
    }

    /// A fresh copy of `m`: allocates exactly two buffers (id and payload)
    /// when both are non-empty.
    pub fn copied_from(m: &MessageRef<'_>) -> Message {
        // One allocation per line, so that heap profiles tell them apart.
        let id = m.id.to_owned();
        let payload = m.payload.to_vec();
        Message { id, payload, seq: m.seq, stamp_ns: m.stamp_ns }
    }

    /// Overwrites this message with `m`, reusing the buffers: no allocation
    /// unless `m` is larger than their capacity.
    pub fn copy_from(&mut self, m: &MessageRef<'_>) {
        self.id.clear();
        self.id.push_str(m.id);
        self.payload.clear();
        self.payload.extend_from_slice(m.payload);
        self.seq = m.seq;
        self.stamp_ns = m.stamp_ns;
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The producer's timestamp.
    pub fn stamp_ns(&self) -> u64 {
        self.stamp_ns
    }

    /// Capacities of the id and payload buffers.
    pub fn capacities(&self) -> (usize, usize) {
        (self.id.capacity(), self.payload.capacity())
    }
}

//! Helpers shared by the queue's integration tests.

#![allow(dead_code)] // each test file uses a different subset

use queue::MessageRef;

/// Runs `$body` once per variant, with `$q` bound to the variant's type.
#[macro_export]
macro_rules! for_each_variant {
    ($q:ident => $body:block) => {{
        {
            type $q = queue::Baseline;
            $body
        }
        {
            type $q = queue::Pooled;
            $body
        }
        {
            type $q = queue::Batched;
            $body
        }
        {
            type $q = queue::LockFree;
            $body
        }
    }};
}

/// A 16-byte id and a 32-byte payload, like the Go workload.
pub const ID: &str = "message-00000001";
pub const PAYLOAD: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

pub fn msg(seq: u64) -> MessageRef<'static> {
    MessageRef { id: ID, payload: PAYLOAD, seq, stamp_ns: 0 }
}

/// Fails the test instead of hanging: runs `f` on a thread and waits at
/// most `secs` seconds for it.
pub fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(e) => panic!("{what} did not finish within {secs} s ({e})"),
    }
}

//! The untimed pass of per-operation figures: `allocscope::op` guards
//! around each enqueue and dequeue, in pair mode.

use queue::Queue;

use super::harness::{Harness, BATCH};
use crate::report::OpFigures;

/// Messages in the pass (at most the workload's measured messages).
const MESSAGES: u64 = 100_000;

pub fn run<Q: Queue>(h: &Harness<'_>) -> Vec<OpFigures> {
    let q: Q = h.queue();
    let mut out = Vec::with_capacity(BATCH);
    h.warm_up_pair(&q, &mut out);
    let n = h.workload.messages.min(MESSAGES);
    allocscope::reset_op_stats();
    for seq in 0..n {
        {
            let _op = allocscope::op("enqueue");
            q.enqueue(&h.message(seq, 0)).expect("queue open");
        }
        let _op = allocscope::op("dequeue");
        drop(q.dequeue().expect("queue open"));
    }
    allocscope::op_stats()
        .into_iter()
        .filter(|r| r.calls > 0)
        .map(|r| {
            let per = r.per_call();
            OpFigures {
                name: r.name.to_owned(),
                calls: r.calls,
                bytes_per_op: per.bytes_allocated,
                allocs_per_op: per.allocs,
                deallocs_per_op: per.deallocs,
            }
        })
        .collect()
}

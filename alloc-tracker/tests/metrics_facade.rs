//! The `metrics` facade carries the snapshot with the names, labels and
//! values of the text exposition, to whichever recorder is installed.
#![cfg(all(feature = "metrics", feature = "jemalloc"))]

use std::hint::black_box;

use allocscope::{CountingAlloc, Group, Jemalloc};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc::new(Jemalloc);

/// A recorded metric: its name, labels and value.
type Recorded = (String, Vec<(String, String)>, DebugValue);

#[test]
fn a_recorder_receives_the_snapshot_in_prometheus_names() {
    {
        let _op = allocscope::op("facade.op");
        drop(black_box(vec![0u8; 30]));
    }
    Group::listed("facade.group").run(|| drop(black_box(vec![0u8; 20])));
    let snapshot = allocscope::serve::snapshot();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        allocscope::serve::metrics::describe();
        allocscope::serve::metrics::record(&snapshot);
    });
    let seen: Vec<Recorded> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let labels = key.key().labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
            (key.key().name().to_owned(), labels, value)
        })
        .collect();
    let find = |name: &str, label: Option<(&str, &str)>| {
        seen.iter()
            .find(|(n, l, _)| n == name && label.is_none_or(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v)))
            .map(|(_, _, v)| v)
            .unwrap_or_else(|| panic!("{name} {label:?} not recorded"))
    };
    assert_eq!(find("allocscope_allocs_total", None), &DebugValue::Counter(snapshot.process.allocs));
    assert_eq!(find("allocscope_op_allocated_bytes_total", Some(("op", "facade.op"))), &DebugValue::Counter(30));
    assert_eq!(
        find("allocscope_group_allocated_bytes_total", Some(("group", "facade.group"))),
        &DebugValue::Counter(20)
    );
    assert!(matches!(find("allocscope_held_bytes", None), DebugValue::Gauge(_)));
    assert!(matches!(find("allocscope_jemalloc_resident_bytes", None), DebugValue::Gauge(v) if v.into_inner() > 0.0));
}

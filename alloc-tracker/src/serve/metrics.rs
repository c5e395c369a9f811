//! Feature `metrics`: publishes a [`Snapshot`](crate::Snapshot) through the `metrics`
//! facade, so that whichever exporter the application installed
//! (Prometheus, StatsD, OpenTelemetry, ...) carries allocscope's figures
//! with its own. The names and labels are those of
//! [`Snapshot::prometheus_text`](crate::Snapshot::prometheus_text); counters are set to their absolute value
//! (they only grow), gauges set.

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, gauge, Unit};

use crate::{AllocStats, Snapshot};

/// The five event counters' names (without the prefix), units and help.
const COUNTERS: [(&str, Unit, &str); 5] = [
    ("allocations_total", Unit::Count, "Successful alloc and alloc_zeroed calls."),
    ("reallocations_total", Unit::Count, "Successful realloc calls."),
    ("deallocations_total", Unit::Count, "dealloc calls."),
    ("allocated_bytes_total", Unit::Bytes, "Requested bytes of allocations, plus reallocations' new sizes."),
    ("freed_bytes_total", Unit::Bytes, "Bytes of deallocations, plus reallocations' old sizes."),
];

fn values(s: &AllocStats) -> [u64; 5] {
    [s.allocs, s.reallocs, s.deallocs, s.bytes_allocated, s.bytes_freed]
}

/// Describes every metric to the installed recorder (units and help):
/// call once, after installing it.
///
/// # Examples
///
/// ```
/// allocscope::metrics::describe(); // a no-op without a recorder
/// ```
pub fn describe() {
    for (name, unit, help) in COUNTERS {
        describe_counter!(format!("allocscope_{name}"), unit, help);
        describe_counter!(format!("allocscope_op_{name}"), unit, help);
        describe_counter!(format!("allocscope_group_{name}"), unit, help);
    }
    describe_counter!("allocscope_op_calls_total", Unit::Count, "Calls of the named operation.");
    describe_counter!("allocscope_group_windows_total", Unit::Count, "Ended windows of the named group.");
    describe_gauge!("allocscope_live_bytes", Unit::Bytes, "Bytes allocated and not freed yet.");
    describe_gauge!("allocscope_live_bytes_peak_seen", Unit::Bytes, "The highest live bytes a reading has seen.");
    describe_gauge!("allocscope_group_peak_bytes", Unit::Bytes, "The named group's highest live bytes.");
    for name in ["allocated", "active", "resident", "mapped", "retained", "metadata"] {
        describe_gauge!(format!("allocscope_jemalloc_{name}_bytes"), Unit::Bytes, format!("jemalloc's stats.{name}."));
    }
    describe_gauge!("allocscope_sampler_rate_bytes", Unit::Bytes, "The process-wide sampling rate (0: off).");
    describe_counter!("allocscope_sampler_samples_total", Unit::Count, "Heap profile samples taken.");
    describe_counter!("allocscope_sampler_dropped_samples_total", Unit::Count, "Samples that found no stack slot.");
    describe_counter!("allocscope_sampler_untracked_live_samples_total", Unit::Count, "Samples not followed live.");
}

/// Records `snapshot` in the installed recorder.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// allocscope::metrics::record(&allocscope::snapshot()); // a no-op without a recorder
/// ```
pub fn record(snapshot: &Snapshot) {
    let p = &snapshot.process;
    for ((name, _, _), v) in COUNTERS.iter().zip(values(p)) {
        counter!(format!("allocscope_{name}")).absolute(v);
    }
    gauge!("allocscope_live_bytes").set(p.live_bytes() as f64);
    gauge!("allocscope_live_bytes_peak_seen").set(p.peak_bytes as f64);
    for o in &snapshot.ops {
        counter!("allocscope_op_calls_total", "op" => o.name).absolute(o.calls);
        for ((name, _, _), v) in COUNTERS.iter().zip(values(&o.stats)) {
            counter!(format!("allocscope_op_{name}"), "op" => o.name).absolute(v);
        }
    }
    for g in &snapshot.groups {
        counter!("allocscope_group_windows_total", "group" => g.name).absolute(g.windows);
        for ((name, _, _), v) in COUNTERS.iter().zip(values(&g.stats)) {
            counter!(format!("allocscope_group_{name}"), "group" => g.name).absolute(v);
        }
        gauge!("allocscope_group_peak_bytes", "group" => g.name).set(g.stats.peak_bytes as f64);
    }
    if let Some(j) = &snapshot.jemalloc {
        for (name, v) in [
            ("allocated", j.allocated),
            ("active", j.active),
            ("resident", j.resident),
            ("mapped", j.mapped),
            ("retained", j.retained),
            ("metadata", j.metadata),
        ] {
            gauge!(format!("allocscope_jemalloc_{name}_bytes")).set(v as f64);
        }
    }
    let s = &snapshot.sampler;
    gauge!("allocscope_sampler_rate_bytes").set(s.process_rate as f64);
    counter!("allocscope_sampler_samples_total").absolute(s.samples);
    counter!("allocscope_sampler_dropped_samples_total").absolute(s.dropped_samples);
    counter!("allocscope_sampler_untracked_live_samples_total").absolute(s.untracked_live_samples);
}

/// Describes the metrics, then records a fresh snapshot every `period` on a
/// thread of its own, for exporters that read the recorder on their own
/// schedule. The thread runs as long as the process.
///
/// # Examples
///
/// ```no_run
/// // After installing a recorder (metrics-exporter-prometheus, say):
/// allocscope::metrics::record_every(std::time::Duration::from_secs(5));
/// ```
pub fn record_every(period: Duration) -> std::thread::JoinHandle<()> {
    describe();
    std::thread::Builder::new()
        .name("allocscope-metrics".into())
        .spawn(move || loop {
            record(&crate::snapshot());
            std::thread::sleep(period);
        })
        .expect("spawning the metrics thread")
}

//! Feature `metrics`: publishes a [`Snapshot`] through the `metrics`
//! facade, so that whichever exporter the application installed
//! (Prometheus, StatsD, OpenTelemetry, ...) carries allocscope's figures
//! with its own. The families, names, units, help and labels are those of
//! the list in [`serve`](super) (the same table as
//! [`Snapshot::prometheus_text`]); counters are set to their absolute value
//! (they only grow), gauges set.

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, gauge, Unit};

use super::catalogue::{self, Kind};
use super::snapshot::{snapshot, Snapshot};

fn unit(u: catalogue::Unit) -> Unit {
    match u {
        catalogue::Unit::Count => Unit::Count,
        catalogue::Unit::Bytes => Unit::Bytes,
    }
}

/// Describes every metric (unit and help) to the installed recorder; call
/// once after installing it ([`record_every`] does).
///
/// # Examples
///
/// ```
/// allocscope::serve::metrics::describe();
/// ```
pub fn describe() {
    for m in catalogue::metrics() {
        match m.kind {
            Kind::Counter => describe_counter!(m.name, unit(m.unit), m.help),
            Kind::Gauge => describe_gauge!(m.name, unit(m.unit), m.help),
        }
    }
}

/// Records `snapshot` through the facade: every family's values, labelled
/// by operation or group where the family has a label.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// // With a recorder installed (metrics-exporter-prometheus, ...):
/// allocscope::serve::metrics::record(&allocscope::serve::snapshot());
/// ```
pub fn record(snapshot: &Snapshot) {
    for m in catalogue::metrics() {
        for (label_value, v) in (m.read)(snapshot) {
            let labels: Vec<(&'static str, &'static str)> = m.label.zip(label_value).into_iter().collect();
            match m.kind {
                Kind::Counter => counter!(m.name.clone(), &labels).absolute(v as u64),
                Kind::Gauge => gauge!(m.name.clone(), &labels).set(v),
            }
        }
    }
}

/// Describes the metrics, then records a fresh snapshot every `period` on a
/// thread of its own (named `allocscope-metrics`), for the life of the
/// process.
///
/// # Panics
///
/// If the thread cannot be spawned.
///
/// # Examples
///
/// ```no_run
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// allocscope::serve::metrics::record_every(std::time::Duration::from_secs(10));
/// ```
pub fn record_every(period: Duration) -> std::thread::JoinHandle<()> {
    describe();
    std::thread::Builder::new()
        .name("allocscope-metrics".into())
        .spawn(move || loop {
            record(&snapshot());
            std::thread::sleep(period);
        })
        .expect("spawning the metrics thread")
}

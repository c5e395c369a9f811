//! [`Snapshot::prometheus_text`]: Prometheus' text exposition format
//! (version 0.0.4), for programs with no metrics stack: every family of the
//! [catalogue](super::catalogue) with its `# HELP` and `# TYPE`.

use std::fmt::Write;

use super::catalogue::{self, Kind, Sample};
use super::snapshot::Snapshot;

/// Writes one family; a family without a label and without a value (a
/// figure the snapshot does not have) is left out.
fn family(out: &mut String, name: &str, kind: Kind, help: &str, label: Option<&str>, samples: Vec<Sample>) {
    if label.is_none() && samples.is_empty() {
        return;
    }
    let kind = match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
    };
    let _ = writeln!(out, "# HELP {name} {}", help.replace('\\', "\\\\").replace('\n', "\\n"));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (value_of_label, v) in samples {
        match (label, value_of_label) {
            (Some(label), Some(l)) => {
                let l = l.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = writeln!(out, "{name}{{{label}=\"{l}\"}} {v}");
            }
            _ => {
                let _ = writeln!(out, "{name} {v}");
            }
        }
    }
}

impl Snapshot {
    /// The snapshot in Prometheus' text exposition format: every metric of
    /// [`serve`](super)'s list, counters `_total`, units in the names.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[global_allocator]
    /// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
    /// #     allocscope::CountingAlloc::new(std::alloc::System);
    /// let text = allocscope::serve::snapshot().prometheus_text();
    /// assert!(text.contains("# TYPE allocscope_allocs_total counter\nallocscope_allocs_total "));
    /// ```
    pub fn prometheus_text(&self) -> String {
        let mut out = String::new();
        for m in catalogue::metrics() {
            let samples = (m.read)(self);
            family(&mut out, &m.name, m.kind, &m.help, m.label, samples);
        }
        out
    }
}

//! `report.html`: one self-contained page (inline CSS and SVG, no script,
//! no network access): the report's tables ([`Document`]) and bar charts of
//! throughput, B/op and allocs/op per variant, and the latency percentiles.

use std::fmt::Write;

use super::num::sig;
use super::table::{Align, Document};
use super::Report;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// One bar: a value, its spread over the repeats (drawn as a whisker),
/// and whether it is a reference from elsewhere (drawn grey).
struct Bar {
    label: String,
    value: f64,
    spread: Option<(f64, f64)>,
    reference: bool,
}

impl Bar {
    fn of(label: String, value: f64) -> Bar {
        Bar { label, value, spread: None, reference: false }
    }
}

/// Tick values for a linear axis from 0 to at least `hi`: steps of 1, 2 or
/// 5 times a power of ten, up to the first one at or past `hi`.
fn linear_ticks(hi: f64) -> Vec<f64> {
    if hi <= 0.0 || !hi.is_finite() {
        return vec![0.0];
    }
    let raw = hi / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|s| hi / s <= 10.0).unwrap_or(10.0 * power);
    // Up to the first tick at or past `hi`, which ends the axis.
    let last = (hi / step - 1e-9).ceil() as u32;
    (0..=last).map(|i| f64::from(i) * step).collect()
}

/// A horizontal chart. On a linear axis from 0, each value is a bar
/// (lengths proportional to the values), with ticks. On a logarithmic axis
/// (latencies, whose values span decades), each value is a dot on a light
/// guide line, with a grid line per decade: a bar's length there would not
/// be proportional to its value, and a 150 times larger value would look 4
/// times longer.
fn bars(title: &str, unit: &str, items: &[Bar], log: bool) -> String {
    let top = items.iter().map(|i| i.spread.map_or(i.value, |s| s.1.max(i.value))).fold(0.0_f64, f64::max);
    let positive_min = items.iter().map(|i| i.value).filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let (lo, hi) = if log && positive_min.is_finite() {
        (10f64.powf(positive_min.log10().floor()), 10f64.powf(top.log10().ceil()).max(positive_min * 10.0))
    } else {
        (0.0, linear_ticks(top).last().copied().filter(|t| *t >= top).unwrap_or(top).max(f64::MIN_POSITIVE))
    };
    let (row, label_w, bar_w) = (26, 300, 420);
    let x = |v: f64| -> f64 {
        let f = if log {
            if v <= 0.0 {
                0.0
            } else {
                (v / lo).log10() / (hi / lo).log10()
            }
        } else {
            v / hi
        };
        label_w as f64 + (f.clamp(0.0, 1.0) * bar_w as f64).round()
    };
    let height = 40 + row * items.len();
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg role=\"img\" aria-label=\"{}\" width=\"{}\" height=\"{height}\" \
         xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" font-size=\"13\">",
        escape(title),
        escape(title),
        label_w + bar_w + 140
    );
    // A grid line at `v`, labelled under the axis.
    let grid = |s: &mut String, v: f64, label: String| {
        let gx = x(v);
        let _ = write!(
            s,
            "<line x1=\"{gx}\" x2=\"{gx}\" y1=\"4\" y2=\"{}\" stroke=\"#ddd\"/>\
             <text x=\"{gx}\" y=\"{}\" text-anchor=\"middle\" fill=\"#777\" font-size=\"11\">{}</text>",
            height - 16,
            height - 4,
            escape(&label)
        );
    };
    if log {
        let mut d = lo;
        while d <= hi * 1.0001 {
            grid(&mut s, d, super::num::time(d));
            d *= 10.0;
        }
    } else {
        for t in linear_ticks(hi) {
            grid(&mut s, t, sig(t));
        }
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"#777\" font-size=\"11\">{}</text>",
            label_w + bar_w + 28,
            height - 4,
            escape(unit)
        );
    }
    for (i, bar) in items.iter().enumerate() {
        let y = 8 + row * i;
        let x0 = x(if log { lo } else { 0.0 });
        let fill = if bar.reference { "#aaaaaa" } else { "#3b78c2" };
        let _ = write!(s, "<text x=\"0\" y=\"{}\">{}</text>", y + 14, escape(&bar.label));
        let mut end = if log {
            let (cx, cy) = (x(bar.value), y + 9);
            let _ = write!(
                s,
                "<line x1=\"{x0}\" x2=\"{}\" y1=\"{cy}\" y2=\"{cy}\" stroke=\"#e4e4e4\" stroke-dasharray=\"2 3\"/>\
                 <circle cx=\"{cx}\" cy=\"{cy}\" r=\"5\" fill=\"{fill}\"/>",
                label_w + bar_w
            );
            cx + 5.0
        } else {
            let w = (x(bar.value) - x0).max(if bar.value > 0.0 { 1.0 } else { 0.0 });
            let _ = write!(s, "<rect x=\"{x0}\" y=\"{y}\" width=\"{w}\" height=\"18\" fill=\"{fill}\"/>");
            x0 + w
        };
        if let Some((min, max)) = bar.spread {
            let (a, b) = (x(min), x(max));
            let mid = y + 9;
            let _ = write!(
                s,
                "<path d=\"M{a} {mid}H{b}M{a} {}V{}M{b} {}V{}\" stroke=\"#222\" stroke-width=\"1.5\" fill=\"none\"/>",
                mid - 5,
                mid + 5,
                mid - 5,
                mid + 5
            );
            end = end.max(b);
        }
        let value = if log { super::num::time(bar.value) } else { format!("{} {}", sig(bar.value), unit) };
        let _ = write!(s, "<text x=\"{}\" y=\"{}\">{}</text>", end + 6.0, y + 14, escape(value.trim()));
    }
    s.push_str("</svg></figure>\n");
    s
}

/// Inline Markdown code spans (`` `x` ``) as `<code>`, the rest escaped.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", escape(part));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

/// The document's paragraphs, notes and tables as HTML.
fn tables(doc: &Document) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "<h1>{}</h1>", escape(&doc.title));
    for p in &doc.paragraphs {
        let _ = writeln!(out, "<p>{}</p>", inline(p));
    }
    for note in &doc.notes {
        let _ = writeln!(out, "<p><strong>Note:</strong> {}</p>", inline(note));
    }
    for (i, table) in doc.tables.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(out, "<h2>{}</h2>", escape(&table.heading));
        }
        out.push_str("<table><tr>");
        for (name, _) in &table.columns {
            let _ = write!(out, "<th>{}</th>", escape(name));
        }
        out.push_str("</tr>");
        for row in &table.rows {
            out.push_str("<tr>");
            for (cell, (_, align)) in row.iter().zip(&table.columns) {
                let class = if *align == Align::Left { " class=\"l\"" } else { "" };
                let _ = write!(out, "<td{class}>{}</td>", inline(cell));
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>\n");
    }
    out
}

pub fn render(r: &Report) -> String {
    let label = |v: &super::VariantResult| format!("{} ({})", v.variant, v.mode);
    let pick = |f: &dyn Fn(&super::VariantResult) -> f64| -> Vec<Bar> {
        r.results.iter().map(|v| Bar::of(label(v), f(v))).collect()
    };
    let go = super::GO_REFERENCE;
    let reference =
        |value: f64| Bar { label: "Go MemoryQueue (other machine)".into(), value, spread: None, reference: true };
    let mut body = String::new();
    let mut throughput = vec![reference(go.ops_per_sec / 1e6)];
    throughput.extend(r.results.iter().map(|v| Bar {
        label: label(v),
        value: v.ops_per_sec.median / 1e6,
        spread: Some((v.ops_per_sec.min / 1e6, v.ops_per_sec.max / 1e6)),
        reference: false,
    }));
    body.push_str(&bars(
        "Throughput: median and min-max over the repeats (grey: the Go reference, another machine and runtime)",
        "M msg/s",
        &throughput,
        false,
    ));
    let mut bytes = vec![reference(go.bytes_per_op)];
    bytes.extend(pick(&|v| v.bytes_per_op));
    body.push_str(&bars("Requested bytes per message (grey: the Go reference)", "B/op", &bytes, false));
    let mut allocs = vec![reference(go.allocs_per_op)];
    allocs.extend(pick(&|v| v.allocs_per_op));
    body.push_str(&bars("Allocations per message (grey: the Go reference)", "allocs/op", &allocs, false));
    for mode in [crate::plan::Mode::Pair, crate::plan::Mode::Threads] {
        let of_mode: Vec<&super::VariantResult> = r.results.iter().filter(|v| v.mode == mode).collect();
        if of_mode.is_empty() {
            continue;
        }
        let mut latency = Vec::new();
        for v in &of_mode {
            let t = v.latency_ns.end_to_end;
            latency.push(Bar::of(format!("{} p99", v.variant), t.p99 as f64));
            latency.push(Bar::of(format!("{} p99.9", v.variant), t.p999 as f64));
        }
        body.push_str(&bars(&format!("End-to-end latency, {mode} mode (logarithmic axis)"), "", &latency, true));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Queue memory report</title>\n\
         <style>body{{font-family:sans-serif;max-width:1380px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}td{{white-space:nowrap}}th{{vertical-align:bottom}}\
         td.l,th{{text-align:left}}figure{{margin:1.5em 0}}figcaption{{font-weight:bold;margin-bottom:.4em}}</style>\n\
         </head><body>\n{}\n<h2>Charts</h2>\n{}</body></html>\n",
        tables(&Document::of(r)),
        body
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_charts_have_ticks_and_log_charts_draw_dots_not_bars() {
        let items = [Bar::of("a".into(), 341.0), Bar::of("b".into(), 50_900.0)];
        let log = bars("latency", "", &items, true);
        assert_eq!(log.matches("<circle").count(), 2, "{log}");
        assert!(!log.contains("<rect"), "no bars on a log axis: {log}");
        let linear = bars("throughput", "M msg/s", &[Bar::of("a".into(), 13.7), Bar::of("b".into(), 22.1)], false);
        assert_eq!(linear.matches("<rect").count(), 2);
        for tick in [">0<", ">5<", ">10<", ">15<", ">20<", ">25<", ">M msg/s<"] {
            assert!(linear.contains(tick), "{tick} in {linear}");
        }
        assert_eq!(linear_ticks(22.1), [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]);
        assert_eq!(linear_ticks(120.0), [0.0, 20.0, 40.0, 60.0, 80.0, 100.0, 120.0]);
    }
}

//! `report.html`: one self-contained page (inline CSS and SVG, no script,
//! no network access): the report's tables ([`Document`]) and bar charts of
//! throughput, B/op and allocs/op per variant, and the latency percentiles.

use std::fmt::Write;

use super::table::{per_op, Align, Document};
use super::Report;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A horizontal bar chart.
fn bars(title: &str, unit: &str, items: &[(String, f64)]) -> String {
    let max = items.iter().map(|i| i.1).fold(0.0_f64, f64::max).max(f64::MIN_POSITIVE);
    let (row, label_w, bar_w) = (26, 190, 420);
    let height = 30 + row * items.len();
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg role=\"img\" aria-label=\"{}\" width=\"{}\" height=\"{height}\" \
         xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" font-size=\"13\">",
        escape(title),
        escape(title),
        label_w + bar_w + 120
    );
    for (i, (label, v)) in items.iter().enumerate() {
        let y = 10 + row * i;
        let w = ((v / max) * bar_w as f64).round().max(if *v > 0.0 { 1.0 } else { 0.0 });
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\">{}</text><rect x=\"{label_w}\" y=\"{y}\" width=\"{w}\" height=\"18\" fill=\"#3b78c2\"/>\
             <text x=\"{}\" y=\"{}\">{} {}</text>",
            y + 14,
            escape(label),
            label_w as f64 + w + 6.0,
            y + 14,
            if *v >= 100.0 { format!("{v:.0}") } else { per_op(*v) },
            escape(unit)
        );
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
    let pick = |f: &dyn Fn(&super::VariantResult) -> f64| -> Vec<(String, f64)> {
        r.results.iter().map(|v| (label(v), f(v))).collect()
    };
    let mut body = String::new();
    body.push_str(&bars("Throughput (median)", "M msg/s", &pick(&|v| v.ops_per_sec.median / 1e6)));
    body.push_str(&bars("Requested bytes per message", "B/op", &pick(&|v| v.bytes_per_op)));
    body.push_str(&bars("Allocations per message", "allocs/op", &pick(&|v| v.allocs_per_op)));
    body.push_str(&bars("End-to-end latency p99", "ns", &pick(&|v| v.latency_ns.end_to_end.p99 as f64)));
    body.push_str(&bars("End-to-end latency p99.9", "ns", &pick(&|v| v.latency_ns.end_to_end.p999 as f64)));
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Queue memory report</title>\n\
         <style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}\
         td.l,th{{text-align:left}}figure{{margin:1.5em 0}}figcaption{{font-weight:bold;margin-bottom:.4em}}</style>\n\
         </head><body>\n{}\n<h2>Charts</h2>\n{}</body></html>\n",
        tables(&Document::of(r)),
        body
    )
}

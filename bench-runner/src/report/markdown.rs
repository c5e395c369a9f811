//! `report.md`: the tables a person pastes into a pull request.

use std::fmt::Write;

use super::table::{Align, Document};

pub fn render(doc: &Document) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n", doc.title);
    for p in &doc.paragraphs {
        let _ = writeln!(s, "{p}\n");
    }
    for note in &doc.notes {
        let _ = writeln!(s, "**Note:** {note}\n");
    }
    for (i, table) in doc.tables.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(s, "\n## {}\n", table.heading);
        }
        let names: Vec<&str> = table.columns.iter().map(|c| c.0).collect();
        let _ = writeln!(s, "| {} |", names.join(" | "));
        let rules: Vec<&str> = table.columns.iter().map(|c| if c.1 == Align::Right { "---:" } else { "---" }).collect();
        let _ = writeln!(s, "|{}|", rules.join("|"));
        for row in &table.rows {
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
    }
    s
}

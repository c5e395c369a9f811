//! A [`Table`] as plain text for a terminal: columns padded to their
//! widest cell and aligned as the table says, two spaces apart, the last
//! column unpadded. `compare` prints its table this way.

use super::table::{Align, Table};

/// The table's heading (if any), header and rows.
///
/// # Examples
///
/// ```
/// use bench_runner::report::table::{Align, Table};
///
/// let t = Table {
///     heading: String::new(),
///     columns: vec![("name", Align::Left), ("ns/op", Align::Right)],
///     rows: vec![vec!["pooled".into(), "61.5".into()], vec!["baseline".into(), "140".into()]],
/// };
/// assert_eq!(bench_runner::report::text::render(&t), "name      ns/op\npooled     61.5\nbaseline    140\n");
/// ```
pub fn render(table: &Table) -> String {
    let width = |c: usize| {
        let header = table.columns[c].0.chars().count();
        table.rows.iter().map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0).max(header)
    };
    let widths: Vec<usize> = (0..table.columns.len()).map(width).collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (c, cell) in cells.enumerate() {
            if c > 0 {
                out.push_str("  ");
            }
            let last = c + 1 == widths.len();
            match table.columns[c].1 {
                Align::Left if last => out.push_str(cell),
                Align::Left => out.push_str(&format!("{cell:<w$}", w = widths[c])),
                Align::Right => out.push_str(&format!("{cell:>w$}", w = widths[c])),
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = String::new();
    if !table.heading.is_empty() {
        out.push_str(&table.heading);
        out.push('\n');
    }
    out.push_str(&line(&mut table.columns.iter().map(|c| c.0)));
    for row in &table.rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

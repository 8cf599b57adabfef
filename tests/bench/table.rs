//! Plain-text tables and the statistics in them, shared by both benchmarks' reports.

/// The q-quantile (0..=1) of `values` by nearest rank; None when empty.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1).min(sorted.len() - 1)).copied()
}

/// `v` with `decimals` digits, or "-" when unknown.
pub fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

/// How a table is laid out.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Right-align every column but the first (numbers); otherwise every column is left-aligned.
    pub numbers_right: bool,
    /// A line of dashes under the header row.
    pub rule_under_header: bool,
}

/// `rows` (the first is the header) in columns two spaces apart, one line each, trailing spaces trimmed.
pub fn render(rows: &[Vec<String>], layout: Layout) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> =
        (0..columns).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|cell| cell.len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, w))| {
                if layout.numbers_right && c > 0 { format!("{cell:>w$}") } else { format!("{cell:<w$}") }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if i == 0 && layout.rule_under_header {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1)));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let cases =
            [("p50", 0.5, Some(50.0)), ("p99", 0.99, Some(99.0)), ("p0", 0.0, Some(1.0)), ("p100", 1.0, Some(100.0))];
        for (name, q, want) in cases {
            assert_eq!(percentile(&v, q), want, "{name}");
        }
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.5), Some(2.0));
    }

    #[test]
    fn render_layouts() {
        let rows = vec![
            vec!["name".to_string(), "n".to_string()],
            vec!["a".to_string(), "100".to_string()],
        ];
        let cases = [
            ("numbers right, ruled", Layout { numbers_right: true, rule_under_header: true }, "name    n\n---------\na     100\n"),
            ("all left", Layout { numbers_right: false, rule_under_header: false }, "name  n\na     100\n"),
        ];
        for (name, layout, want) in cases {
            assert_eq!(render(&rows, layout), want, "case {name}");
        }
        assert_eq!(render(&[], Layout { numbers_right: true, rule_under_header: true }), "");
    }
}

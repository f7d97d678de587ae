//! The box tables the containerlab personality prints (`inspect`, `inspect interfaces`), laid out
//! as containerlab's renderer lays them out: rounded corners, title-case headers centred (an odd
//! spare column goes left), a rule between rows, multi-line cells, numeric columns aligned
//! right, and columns that merge equal neighbouring cells vertically (the value on the first row
//! only, no rule across the merged block).
//!
//! The header row and the borders around it are bold on terminals that take ANSI codes, as
//! containerlab prints them — also when piped, unless `TERM=dumb` or `NO_COLOR` says otherwise
//! (`FORCE_COLOR` wins over both). Tests pass [`Style::plain`] or [`Style::bold`] explicitly.

use std::fmt::Write as _;

const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// How a column's cells are placed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Column {
    /// Equal cells in consecutive rows show once, on the first of them.
    pub merge: bool,
    /// Cells with fewer lines than their row sit in its middle (else at its top).
    pub middle: bool,
    /// The values are numbers: the column (header too) is aligned right.
    pub numeric: bool,
}

/// Whether ANSI codes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub colors: bool,
}

impl Style {
    pub fn plain() -> Style {
        Style { colors: false }
    }

    pub fn bold() -> Style {
        Style { colors: true }
    }

    /// What the environment asks for: colours unless `TERM=dumb` or `NO_COLOR` is set (to
    /// anything but `0`); `FORCE_COLOR` (anything but `0`/`false`) turns them on regardless.
    pub fn from_env() -> Style {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        let force = var("FORCE_COLOR");
        if !force.is_empty() && force != "0" && force != "false" {
            return Style::bold();
        }
        let no_color = var("NO_COLOR");
        if (no_color.is_empty() || no_color == "0") && var("TERM") != "dumb" {
            Style::bold()
        } else {
            Style::plain()
        }
    }

    /// `s` in `seq` (none when colours are off), as a terminal colouring library wraps a piece.
    pub fn paint(self, s: &str, seq: &str) -> String {
        if !self.colors || s.is_empty() {
            return s.to_string();
        }
        format!("{seq}{s}{RESET}")
    }
}

/// The width of `s` on a terminal, ANSI sequences left out.
fn width(s: &str) -> usize {
    let mut n = 0;
    let mut in_esc = false;
    for c in s.chars() {
        if c == '\x1b' {
            in_esc = true;
        } else if in_esc {
            in_esc = c != 'm';
        } else {
            n += 1;
        }
    }
    n
}

/// Every word's first letter upper-cased (the rest kept), as the header format does.
fn title(s: &str) -> String {
    let mut prev_sep = true;
    s.chars()
        .map(|c| {
            let out = if prev_sep { c.to_ascii_uppercase() } else { c };
            prev_sep = !(c.is_alphanumeric() || c == '_');
            out
        })
        .collect()
}

/// `text` padded to `w`: centred with the odd spare column on the left, or to the right/left.
fn align(text: &str, w: usize, how: Align) -> String {
    let pad = w.saturating_sub(width(text));
    match how {
        Align::Left => format!("{text}{}", " ".repeat(pad)),
        Align::Right => format!("{}{text}", " ".repeat(pad)),
        Align::Center => format!("{}{text}{}", " ".repeat(pad - pad / 2), " ".repeat(pad / 2)),
    }
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Center,
    Right,
}

/// A table of `header` and `rows` (cells may hold several lines).
pub fn render(style: Style, header: &[&str], columns: &[Column], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let column = |i: usize| columns.get(i).copied().unwrap_or_default();
    let header: Vec<String> = header.iter().map(|h| title(h)).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate().take(cols) {
            for line in cell.split('\n') {
                widths[i] = widths[i].max(width(line));
            }
        }
    }
    let cell = |r: usize, c: usize| rows[r].get(c).map_or("", String::as_str);
    // Whether column `c` of row `r` repeats the row above (and so shows nothing).
    let merged = |r: usize, c: usize| r > 0 && column(c).merge && cell(r - 1, c) == cell(r, c);
    let bold = |s: &str| style.paint(s, BOLD);
    let mut lines: Vec<String> = Vec::new();

    // The header: its top border, its row and the rule under it, all bold.
    let rule = |l: &str, m: &str, r: &str, paint: &dyn Fn(&str) -> String| {
        let mut s = paint(l);
        for (i, w) in widths.iter().enumerate() {
            if i > 0 {
                s.push_str(&paint(m));
            }
            s.push_str(&paint(&"─".repeat(w + 2)));
        }
        s.push_str(&paint(r));
        s
    };
    lines.push(rule("╭", "┬", "╮", &bold));
    let mut line = bold("│");
    for (i, h) in header.iter().enumerate() {
        if i > 0 {
            line.push_str(&bold("│"));
        }
        let how = if column(i).numeric {
            Align::Right
        } else {
            Align::Center
        };
        line.push_str(&bold(&format!(" {} ", align(h, widths[i], how))));
    }
    line.push_str(&bold("│"));
    lines.push(line);
    lines.push(rule("├", "┼", "┤", &bold));

    for r in 0..rows.len() {
        if r > 0 {
            // The rule between rows r-1 and r: blank across columns merged into row r.
            let m: Vec<bool> = (0..cols).map(|c| merged(r, c)).collect();
            let mut s = String::from(if m[0] { "│" } else { "├" });
            for c in 0..cols {
                if c > 0 {
                    s.push_str(match (m[c - 1], m[c]) {
                        (true, true) => "│",
                        (true, false) => "├",
                        (false, true) => "┤",
                        (false, false) => "┼",
                    });
                }
                let fill = if m[c] { " " } else { "─" };
                s.push_str(&fill.repeat(widths[c] + 2));
            }
            s.push_str(if m[cols - 1] { "│" } else { "┤" });
            lines.push(s);
        }
        let cells: Vec<Vec<&str>> = (0..cols)
            .map(|c| {
                if merged(r, c) {
                    vec![""]
                } else {
                    cell(r, c).split('\n').collect()
                }
            })
            .collect();
        let height = cells.iter().map(Vec::len).max().unwrap_or(1);
        for i in 0..height {
            let mut s = String::from("│");
            for (c, lines_of) in cells.iter().enumerate() {
                if c > 0 {
                    s.push('│');
                }
                let top = if column(c).middle {
                    (height - lines_of.len()) / 2
                } else {
                    0
                };
                let text = i
                    .checked_sub(top)
                    .and_then(|k| lines_of.get(k))
                    .copied()
                    .unwrap_or("");
                let how = if column(c).numeric {
                    Align::Right
                } else {
                    Align::Left
                };
                let _ = write!(s, " {} ", align(text, widths[c], how));
            }
            s.push('│');
            lines.push(s);
        }
    }
    lines.push(rule("╰", "┴", "╯", &|s: &str| s.to_string()));
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_centre_with_the_spare_column_on_the_left() {
        assert_eq!(align("ab", 5, Align::Center), "  ab ");
        assert_eq!(align("ab", 4, Align::Center), " ab ");
        assert_eq!(title("ipv4/6 address"), "Ipv4/6 Address");
        assert_eq!(title("IPv4/6 Address"), "IPv4/6 Address");
        assert_eq!(width("\x1b[32mup\x1b[0m"), 2);
    }

    /// Merged cells: the value on the first row of its block, the rule blank across the block,
    /// the borders' joints following; the numeric column aligned right, header included.
    #[test]
    fn merged_columns_leave_the_rule_open() {
        let rows = vec![
            vec!["a".to_string(), "x".to_string(), "1".to_string()],
            vec!["a".to_string(), "y\nz".to_string(), "10".to_string()],
            vec!["b".to_string(), "y".to_string(), "2".to_string()],
        ];
        let columns = [
            Column {
                merge: true,
                ..Column::default()
            },
            Column::default(),
            Column {
                numeric: true,
                ..Column::default()
            },
        ];
        let got = render(Style::plain(), &["lab", "node", "n"], &columns, &rows);
        let want = "\
╭─────┬──────┬────╮
│ Lab │ Node │  N │
├─────┼──────┼────┤
│ a   │ x    │  1 │
│     ├──────┼────┤
│     │ y    │ 10 │
│     │ z    │    │
├─────┼──────┼────┤
│ b   │ y    │  2 │
╰─────┴──────┴────╯
";
        assert_eq!(got, want);
    }

    #[test]
    fn the_header_and_its_borders_are_bold_piece_by_piece() {
        let got = render(Style::bold(), &["a"], &[], &[vec!["xyz".to_string()]]);
        let b = |s: &str| format!("\x1b[1m{s}\x1b[0m");
        let want = format!(
            "{}{}{}\n{}{}{}\n{}{}{}\n│ xyz │\n╰─────╯\n",
            b("╭"),
            b("─────"),
            b("╮"),
            b("│"),
            b("  A  "),
            b("│"),
            b("├"),
            b("─────"),
            b("┤"),
        );
        assert_eq!(got, want);
    }
}

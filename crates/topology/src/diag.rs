//! Diagnostics: errors and warnings about a topology, each tied to a place in the source.
//!
//! Owns the message shape (`file:line:col: error: …`, then `help: …`) and the source snippet shown on
//! terminals. Every check in the crate reports through [`Diagnostics`] so all problems surface at once.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use crate::yaml::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub span: Option<Span>,
    /// What would be accepted, or a suggestion.
    pub help: Option<String>,
}

/// All diagnostics of one load, with the source they point into.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    pub file: String,
    pub source: Arc<str>,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(file: impl Into<String>, source: impl Into<Arc<str>>) -> Self {
        Diagnostics {
            file: file.into(),
            source: source.into(),
            items: Vec::new(),
        }
    }

    pub fn error(&mut self, span: Option<Span>, message: impl Into<String>) -> &mut Diagnostic {
        self.push(Severity::Error, span, message.into())
    }

    pub fn warning(&mut self, span: Option<Span>, message: impl Into<String>) -> &mut Diagnostic {
        self.push(Severity::Warning, span, message.into())
    }

    fn push(&mut self, severity: Severity, span: Option<Span>, message: String) -> &mut Diagnostic {
        self.items.push(Diagnostic {
            severity,
            message,
            span,
            help: None,
        });
        self.items.last_mut().expect("just pushed")
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// Sort by position so output reads top to bottom; unpositioned items go last.
    pub fn sort(&mut self) {
        self.items.sort_by_key(|d| {
            d.span
                .map_or((u32::MAX, u32::MAX), |s| (s.start.line, s.start.col))
        });
    }

    /// Render every item; with `snippets`, each positioned item shows its source line and a caret.
    pub fn render(&self, snippets: bool) -> String {
        let mut out = String::new();
        for d in &self.items {
            self.render_one(&mut out, d, snippets);
        }
        out
    }

    pub fn render_one(&self, out: &mut String, d: &Diagnostic, snippets: bool) {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match d.span {
            Some(s) => {
                let _ = writeln!(
                    out,
                    "{}:{}:{}: {level}: {}",
                    self.file, s.start.line, s.start.col, d.message
                );
                if snippets {
                    let line = (s.start.line as usize)
                        .checked_sub(1)
                        .and_then(|i| self.source.lines().nth(i));
                    if let Some(line) = line {
                        let num = s.start.line.to_string();
                        let pad = " ".repeat(num.len());
                        let col = s.start.col.saturating_sub(1) as usize;
                        let width = if s.end.line == s.start.line && s.end.col > s.start.col {
                            (s.end.col - s.start.col) as usize
                        } else {
                            1
                        };
                        let lead: String = line
                            .chars()
                            .take(col)
                            .map(|c| if c == '\t' { '\t' } else { ' ' })
                            .collect();
                        let _ = writeln!(
                            out,
                            "{pad} |\n{num} | {line}\n{pad} | {lead}{}",
                            "^".repeat(width.min(80))
                        );
                    }
                }
            }
            None => {
                let _ = writeln!(out, "{}: {level}: {}", self.file, d.message);
            }
        }
        if let Some(help) = &d.help {
            let _ = writeln!(out, "  help: {help}");
        }
    }
}

impl Diagnostic {
    pub fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }
}

/// A load that failed: all its diagnostics (errors and warnings).
#[derive(Debug, Clone)]
pub struct LoadError(pub Diagnostics);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.errors().count();
        write!(
            f,
            "{}: {n} error{} in the topology",
            self.0.file,
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for LoadError {}

/// The closest candidate to `word` by edit distance, when close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let len = word.chars().count();
    let limit = (len / 3).max(2);
    candidates
        .into_iter()
        // The distance is at least the difference in length: skip the quadratic work when that
        // alone rules a candidate out (a lab may have 10 000 node names to compare against).
        .filter(|c| c.chars().count().abs_diff(len) <= limit)
        .map(|c| {
            let prefix = c.starts_with(word) || word.starts_with(c);
            (edit_distance(word, c), !prefix, c)
        })
        .filter(|(d, _, _)| *d <= limit)
        .min_by_key(|(d, p, _)| (*d, *p))
        .map(|(_, _, c)| c)
}

/// Edit distance (insertions, deletions, substitutions and adjacent transpositions) over
/// characters, case-insensitive.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let keys = ["image", "kind", "binds"];
        assert_eq!(did_you_mean("imgae", keys), Some("image"));
        assert_eq!(did_you_mean("bind", keys), Some("binds"));
        assert_eq!(did_you_mean("completely-else", keys), None);
    }
}

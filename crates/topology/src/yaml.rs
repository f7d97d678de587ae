//! A YAML document as a tree of values that each remember where they came from.
//!
//! This module owns parsing text into [`Value`]s with line and column spans. It knows nothing of the
//! topology schema: decoding into the raw model happens in `raw`. Aliases are expanded here, under a
//! budget so an alias bomb is refused instead of exhausting memory.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError};

/// A position in the source: line and column, both counted from 1 (columns in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// The extent of a value in its source (start inclusive, end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    fn from_parser(span: saphyr_parser::Span) -> Span {
        Span {
            start: pos(span.start),
            end: pos(span.end),
        }
    }
}

fn pos(m: saphyr_parser::Marker) -> Pos {
    Pos {
        line: m.line().try_into().unwrap_or(u32::MAX),
        col: (m.col() + 1).try_into().unwrap_or(u32::MAX),
    }
}

/// A scalar as written. Typing (string, number, boolean, null) is decided by the reader that knows
/// what the field expects, so `mtu: "1500"` and `mtu: 1500` both work and `name: 01` stays `01`.
/// Its text borrows from the document where the source holds it verbatim (no escapes or folded
/// lines), so a large topology is not held twice.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar<'a> {
    pub text: Cow<'a, str>,
    /// A plain (unquoted) scalar: only these can be null, booleans or numbers.
    pub plain: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind<'a> {
    Scalar(Scalar<'a>),
    Seq(Vec<Value<'a>>),
    Map(Vec<(Value<'a>, Value<'a>)>),
}

/// One node of the document with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Value<'a> {
    pub kind: Kind<'a>,
    pub span: Span,
}

impl<'a> Value<'a> {
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s) if s.plain && matches!(&*s.text, "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    /// What a user would call this value in an error ("a list", "a mapping", "text").
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar(_) if self.is_null() => "nothing (null)",
            Kind::Scalar(_) => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// A mapping key or scalar as a short string for messages.
    pub fn display(&self) -> String {
        match &self.kind {
            Kind::Scalar(s) => s.text.to_string(),
            Kind::Seq(_) => "[…]".into(),
            Kind::Map(_) => "{…}".into(),
        }
    }

    /// Whether `f` holds for some scalar of the tree (keys included).
    pub fn any_scalar(&self, f: &dyn Fn(&Scalar<'a>) -> bool) -> bool {
        match &self.kind {
            Kind::Scalar(s) => f(s),
            Kind::Seq(items) => items.iter().any(|v| v.any_scalar(f)),
            Kind::Map(entries) => entries
                .iter()
                .any(|(k, v)| k.any_scalar(f) || v.any_scalar(f)),
        }
    }

    /// Apply `f` to every scalar of the tree (used for environment expansion).
    pub fn map_scalars(&mut self, f: &mut dyn FnMut(&mut Scalar<'a>, Span)) {
        let span = self.span;
        match &mut self.kind {
            Kind::Scalar(s) => f(s, span),
            Kind::Seq(items) => items.iter_mut().for_each(|v| v.map_scalars(f)),
            Kind::Map(entries) => {
                for (k, v) in entries {
                    k.map_scalars(f);
                    v.map_scalars(f);
                }
            }
        }
    }

    /// Apply `f` to the span of every value and key of the tree (positions back into the file
    /// as written after rewrites).
    pub fn map_spans(&mut self, f: &mut dyn FnMut(Span) -> Span) {
        self.span = f(self.span);
        match &mut self.kind {
            Kind::Scalar(_) => {}
            Kind::Seq(items) => items.iter_mut().for_each(|v| v.map_spans(f)),
            Kind::Map(entries) => {
                for (k, v) in entries {
                    k.map_spans(f);
                    v.map_spans(f);
                }
            }
        }
    }

    fn weight(&self) -> usize {
        match &self.kind {
            Kind::Scalar(s) => 1 + s.text.len() / 64,
            Kind::Seq(items) => 1 + items.iter().map(Value::weight).sum::<usize>(),
            Kind::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.weight() + v.weight())
                    .sum::<usize>()
            }
        }
    }
}

/// Why a document could not be read as YAML.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Largest source accepted, in bytes. Topologies of 10 000 nodes are a few MB.
pub const MAX_SOURCE_BYTES: usize = 64 << 20;
/// Deepest nesting of sequences and mappings accepted; deeper documents are refused rather than
/// overflowing the stack (the tree is built and walked recursively).
pub const MAX_DEPTH: usize = 256;
/// Mappings with at least this many keys check duplicates through a hash index.
const INDEX_MAPS_FROM: usize = 16;
/// Largest number of values a document may expand to (aliases included).
pub const MAX_VALUES: usize = 1_000_000;

/// Parse one YAML document. An empty document is a null scalar. A second document is an error.
pub fn parse(text: &str) -> Result<Value<'_>, SyntaxError> {
    if text.len() > MAX_SOURCE_BYTES {
        return Err(SyntaxError {
            pos: Pos { line: 1, col: 1 },
            message: format!(
                "the file is {} bytes; at most {} are accepted",
                text.len(),
                MAX_SOURCE_BYTES
            ),
        });
    }
    if let Some(err) = find_tab_indent(text) {
        return Err(err);
    }
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        source: text,
        ascii: text.is_ascii(),
        cursor: (0, 0),
        anchors: Vec::new(),
        budget: MAX_VALUES,
        depth: 0,
    };
    builder.document()
}

/// YAML forbids tabs in indentation; say so plainly instead of the parser's generic complaint.
fn find_tab_indent(text: &str) -> Option<SyntaxError> {
    for (i, line) in text.lines().enumerate() {
        let indent: String = line
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        if let Some(col) = indent.find('\t') {
            let rest = line.trim_start_matches([' ', '\t']);
            if rest.is_empty() || rest.starts_with('#') {
                continue;
            }
            return Some(SyntaxError {
                pos: Pos {
                    line: i as u32 + 1,
                    col: col as u32 + 1,
                },
                message: "a tab in indentation; YAML indents with spaces only".into(),
            });
        }
    }
    None
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    /// The document, where scalars borrow their text from.
    source: &'a str,
    /// The parser counts positions in characters: in ASCII text they are byte offsets.
    ascii: bool,
    /// Otherwise the last (character, byte) offset found: events come in document order, so
    /// the next one is found by walking on from it.
    cursor: (usize, usize),
    anchors: Vec<(usize, Value<'a>)>,
    budget: usize,
    /// Sequences and mappings currently open.
    depth: usize,
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span, std::ops::Range<usize>), SyntaxError> {
        match self.parser.next_event() {
            Some(Ok((ev, span))) => Ok((
                ev,
                Span::from_parser(span),
                span.start.index()..span.end.index(),
            )),
            Some(Err(e)) => Err(scan_error(&e)),
            None => Err(SyntaxError {
                pos: Pos::default(),
                message: "unexpected end of input".into(),
            }),
        }
    }

    fn document(&mut self) -> Result<Value<'a>, SyntaxError> {
        let (ev, span, _) = self.next()?;
        debug_assert!(matches!(ev, Event::StreamStart));
        let (ev, span, at) = match self.next()? {
            (Event::StreamEnd, _, _) => {
                return Ok(Value {
                    kind: Kind::Scalar(Scalar {
                        text: Cow::Borrowed(""),
                        plain: true,
                    }),
                    span,
                })
            }
            (Event::DocumentStart(_), _, _) => self.next()?,
            other => other,
        };
        let root = self.value(ev, span, at)?;
        loop {
            match self.next()? {
                (Event::DocumentEnd, _, _) => continue,
                (Event::StreamEnd, _, _) => return Ok(root),
                (Event::DocumentStart(_), span, _) => {
                    return Err(SyntaxError {
                        pos: span.start,
                        message: "a second YAML document; a topology file holds exactly one".into(),
                    })
                }
                (_, span, _) => {
                    return Err(SyntaxError {
                        pos: span.start,
                        message: "unexpected content after the document".into(),
                    })
                }
            }
        }
    }

    /// The scalar `text` as a slice of the document, when the document holds it verbatim at `at`
    /// (inside the quotes of a quoted scalar).
    fn borrowed(
        &mut self,
        text: &str,
        style: ScalarStyle,
        at: std::ops::Range<usize>,
    ) -> Option<&'a str> {
        let at = self.byte_offset(at.start)?..self.byte_offset(at.end)?;
        let at = match style {
            ScalarStyle::Plain => at,
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                at.start.checked_add(1)?..at.end.checked_sub(1)?
            }
            _ => return None,
        };
        self.source.get(at).filter(|s| *s == text)
    }

    /// The byte offset of character `chars` of the document.
    fn byte_offset(&mut self, chars: usize) -> Option<usize> {
        if self.ascii {
            return Some(chars);
        }
        if chars < self.cursor.0 {
            self.cursor = (0, 0);
        }
        let (c, b) = self.cursor;
        let rest = self.source.get(b..)?;
        let byte = match rest.char_indices().nth(chars - c) {
            Some((i, _)) => b + i,
            None if rest.chars().count() == chars - c => self.source.len(),
            None => return None,
        };
        self.cursor = (chars, byte);
        Some(byte)
    }

    fn charge(&mut self, n: usize, at: Pos) -> Result<(), SyntaxError> {
        if n > self.budget {
            return Err(SyntaxError {
                pos: at,
                message: format!(
                    "the document expands to more than {MAX_VALUES} values (aliases included); refusing it"
                ),
            });
        }
        self.budget -= n;
        Ok(())
    }

    fn value(
        &mut self,
        ev: Event<'a>,
        span: Span,
        at: std::ops::Range<usize>,
    ) -> Result<Value<'a>, SyntaxError> {
        self.charge(1, span.start)?;
        if matches!(ev, Event::SequenceStart(..) | Event::MappingStart(..)) {
            if self.depth >= MAX_DEPTH {
                return Err(SyntaxError {
                    pos: span.start,
                    message: format!(
                        "lists and mappings nested more than {MAX_DEPTH} deep; refusing it"
                    ),
                });
            }
            self.depth += 1;
            let v = self.node(ev, span, at);
            self.depth -= 1;
            return v;
        }
        self.node(ev, span, at)
    }

    /// One value of any kind, its anchor remembered.
    fn node(
        &mut self,
        ev: Event<'a>,
        span: Span,
        at: std::ops::Range<usize>,
    ) -> Result<Value<'a>, SyntaxError> {
        let (value, anchor) = match ev {
            Event::Scalar(text, style, anchor, _tag) => (
                Value {
                    kind: Kind::Scalar(Scalar {
                        text: self.borrowed(&text, style, at).map_or_else(
                            || {
                                // The scanner grows its buffer as it reads: keep only what the
                                // text needs (it halves a large map's memory).
                                let mut t = text.into_owned();
                                t.shrink_to_fit();
                                Cow::Owned(t)
                            },
                            Cow::Borrowed,
                        ),
                        plain: style == ScalarStyle::Plain,
                    }),
                    span,
                },
                anchor,
            ),
            Event::Alias(id) => {
                let Some((_, v)) = self.anchors.iter().rev().find(|(a, _)| *a == id) else {
                    return Err(SyntaxError {
                        pos: span.start,
                        message: "alias to an unknown anchor".into(),
                    });
                };
                let v = v.clone();
                self.charge(v.weight(), span.start)?;
                return Ok(Value { span, ..v });
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                let end = loop {
                    let (ev, s, at) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break s;
                    }
                    items.push(self.value(ev, s, at)?);
                };
                let span = Span {
                    start: span.start,
                    end: end.end,
                };
                (
                    Value {
                        kind: Kind::Seq(items),
                        span,
                    },
                    anchor,
                )
            }
            Event::MappingStart(anchor, _) => {
                let mut entries: Vec<(Value, Value)> = Vec::new();
                // Entries that came from a merge key; an explicit key replaces them.
                let mut merged: Vec<bool> = Vec::new();
                // Key → entry index, built once a mapping is big enough for a linear scan to hurt
                // (`nodes:` may have 10 000 keys).
                let mut index: Option<HashMap<String, usize>> = None;
                let end = loop {
                    let (ev, s, at) = self.next()?;
                    if matches!(ev, Event::MappingEnd) {
                        break s;
                    }
                    let key = self.value(ev, s, at)?;
                    let (ev, s, at) = self.next()?;
                    let val = self.value(ev, s, at)?;
                    if key.as_str() == Some("<<") && matches!(&key.kind, Kind::Scalar(s) if s.plain)
                    {
                        let before = entries.len();
                        merge_into(&mut entries, val)?;
                        merged.resize(entries.len(), true);
                        if let Some(ix) = index.as_mut() {
                            for (i, (k, _)) in entries.iter().enumerate().skip(before) {
                                if let Some(k) = k.as_str() {
                                    ix.entry(k.to_string()).or_insert(i);
                                }
                            }
                        }
                        continue;
                    }
                    if index.is_none() && entries.len() >= INDEX_MAPS_FROM {
                        let mut ix = HashMap::with_capacity(entries.len() * 2);
                        for (i, (k, _)) in entries.iter().enumerate() {
                            if let Some(k) = k.as_str() {
                                ix.entry(k.to_string()).or_insert(i);
                            }
                        }
                        index = Some(ix);
                    }
                    let same = match (&index, key.as_str()) {
                        (_, None) => None,
                        (Some(ix), Some(k)) => ix.get(k).copied(),
                        (None, Some(k)) => entries.iter().position(|(e, _)| e.as_str() == Some(k)),
                    };
                    if let Some(i) = same.filter(|i| merged[*i]) {
                        entries[i] = (key, val);
                        merged[i] = false;
                        continue;
                    }
                    if let Some((prev, _)) = same.map(|i| &entries[i]) {
                        return Err(SyntaxError {
                            pos: key.span.start,
                            message: format!(
                                "duplicate key `{}` (first at line {})",
                                key.display(),
                                prev.span.start.line
                            ),
                        });
                    }
                    if let (Some(ix), Some(k)) = (index.as_mut(), key.as_str()) {
                        ix.insert(k.to_string(), entries.len());
                    }
                    entries.push((key, val));
                    merged.push(false);
                };
                let span = Span {
                    start: span.start,
                    end: end.end,
                };
                (
                    Value {
                        kind: Kind::Map(entries),
                        span,
                    },
                    anchor,
                )
            }
            other => {
                return Err(SyntaxError {
                    pos: span.start,
                    message: format!("unexpected YAML event {other:?}"),
                })
            }
        };
        if anchor != 0 {
            self.anchors.push((anchor, value.clone()));
        }
        Ok(value)
    }
}

/// `<<: *base` (or a list of them): keys of the merged mapping(s) that the mapping lacks are added.
fn merge_into<'a>(
    entries: &mut Vec<(Value<'a>, Value<'a>)>,
    val: Value<'a>,
) -> Result<(), SyntaxError> {
    let sources = match val.kind {
        Kind::Map(m) => vec![m],
        Kind::Seq(items) => items
            .into_iter()
            .map(|v| match v.kind {
                Kind::Map(m) => Ok(m),
                _ => Err(SyntaxError {
                    pos: v.span.start,
                    message: "a merge key `<<` takes mappings".into(),
                }),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(SyntaxError {
                pos: val.span.start,
                message: "a merge key `<<` takes a mapping or a list of mappings".into(),
            })
        }
    };
    let mut present: HashSet<String> = entries
        .iter()
        .filter_map(|(k, _)| k.as_str().map(str::to_string))
        .collect();
    for src in sources {
        for (k, v) in src {
            let new = match k.as_str() {
                Some(t) => present.insert(t.to_string()),
                None => true,
            };
            if new {
                entries.push((k, v));
            }
        }
    }
    Ok(())
}

fn scan_error(e: &ScanError) -> SyntaxError {
    let m = e.marker();
    SyntaxError {
        pos: Pos {
            line: m.line().max(1) as u32,
            col: m.col() as u32 + 1,
        },
        message: e.info().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_point_at_values() {
        let v = parse("name: lab\ntopology:\n  nodes:\n    a: {kind: linux}\n").unwrap();
        let Kind::Map(m) = &v.kind else { panic!() };
        assert_eq!(m[0].1.span.start, Pos { line: 1, col: 7 });
        assert_eq!(m[1].0.span.start, Pos { line: 2, col: 1 });
    }

    #[test]
    fn verbatim_scalars_borrow_from_the_document() {
        let doc = "a: plain words\nb: 'single'\nc: \"tab\\there\"\nd: >\n  folded\n  lines\n";
        let v = parse(doc).unwrap();
        let Kind::Map(m) = &v.kind else { panic!() };
        let texts: Vec<(&str, bool)> = m
            .iter()
            .map(|(_, v)| match &v.kind {
                Kind::Scalar(s) => (&*s.text, matches!(s.text, Cow::Borrowed(_))),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            texts,
            [
                ("plain words", true),
                ("single", true),
                ("tab\there", false),
                ("folded lines\n", false)
            ]
        );
        // Outside ASCII the parser's character positions are walked to byte offsets.
        let v = parse("é: café\nb: [ü, 'ñ x']\n").unwrap();
        let Kind::Map(m) = &v.kind else { panic!() };
        let Kind::Scalar(s) = &m[0].1.kind else {
            panic!()
        };
        assert_eq!(
            (&*s.text, matches!(s.text, Cow::Borrowed(_))),
            ("café", true)
        );
        let Kind::Seq(items) = &m[1].1.kind else {
            panic!()
        };
        let texts: Vec<(&str, bool)> = items
            .iter()
            .map(|v| match &v.kind {
                Kind::Scalar(s) => (&*s.text, matches!(s.text, Cow::Borrowed(_))),
                _ => panic!(),
            })
            .collect();
        assert_eq!(texts, [("ü", true), ("ñ x", true)]);
    }

    #[test]
    fn tabs_are_refused_with_position() {
        let e = parse("name: x\ntopology:\n\tnodes: {}\n").unwrap_err();
        assert_eq!(e.pos, Pos { line: 3, col: 1 });
        assert!(e.message.contains("tab"));
    }

    #[test]
    fn bad_indentation_is_a_syntax_error() {
        let e = parse("name: x\ntopology:\n  nodes:\n    a: 1\n   b: 2\n").unwrap_err();
        assert!(e.pos.line >= 4, "{e:?}");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = parse("name: a\nname: b\n").unwrap_err();
        assert_eq!(e.pos.line, 2);
        assert!(e.message.contains("duplicate key `name`"));
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse(&doc).unwrap_err();
        assert!(e.message.contains("expands to more than"), "{e:?}");
    }

    #[test]
    fn merge_keys_fill_missing_entries() {
        let v = parse("base: &b {x: 1, y: 2}\nn:\n  <<: *b\n  y: 3\n").unwrap();
        let Kind::Map(m) = &v.kind else { panic!() };
        let Kind::Map(n) = &m[1].1.kind else { panic!() };
        let keys: Vec<_> = n.iter().map(|(k, v)| (k.display(), v.display())).collect();
        assert!(keys.contains(&("x".into(), "1".into())));
        assert!(keys.contains(&("y".into(), "3".into())));
    }
}

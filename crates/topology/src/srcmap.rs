//! Positions across rewrites: the text YAML reads is the file as written after template rendering
//! and `${…}` substitution, but every message must point into the file as written.
//!
//! Owns [`OffsetMap`] (byte offsets of a rewritten text → byte offsets of its input) and the
//! conversions between byte offsets and the line:column [`Pos`] that spans carry. It knows nothing
//! of templates, variables or YAML; those build the maps.

use crate::yaml::{Pos, Span};

/// One run of output bytes and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    out: usize,
    input: usize,
    len: usize,
    /// Copied byte for byte (positions inside map one to one); otherwise produced by a construct
    /// starting at `input` (every position inside maps there).
    copied: bool,
}

/// Output offset → input offset for one rewrite. Pieces are appended in output order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetMap {
    pieces: Vec<Piece>,
}

impl OffsetMap {
    /// `len` bytes at output offset `out` are the input's bytes from `input`.
    pub fn copied(&mut self, out: usize, input: usize, len: usize) {
        if let Some(last) = self.pieces.last_mut() {
            if last.copied && last.out + last.len == out && last.input + last.len == input {
                last.len += len;
                return;
            }
        }
        self.pieces.push(Piece {
            out,
            input,
            len,
            copied: true,
        });
    }

    /// `len` bytes at output offset `out` were produced by the construct written at `input`.
    pub fn inserted(&mut self, out: usize, input: usize, len: usize) {
        self.pieces.push(Piece {
            out,
            input,
            len,
            copied: false,
        });
    }

    /// The input offset an output offset came from. An offset past the end maps past the end of
    /// the last piece.
    pub fn to_input(&self, out: usize) -> usize {
        let i = self.pieces.partition_point(|p| p.out <= out);
        let Some(p) = i.checked_sub(1).map(|i| self.pieces[i]) else {
            return out;
        };
        let inside = out - p.out;
        if p.copied {
            p.input + inside
        } else if inside < p.len {
            p.input
        } else {
            // Just past an inserted value (the end of a span ending with it): the construct's start.
            p.input
        }
    }
}

/// Line starts of a text, for offset ↔ line:column conversions (columns count characters).
pub struct Lines<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    pub fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { text, starts }
    }

    /// Byte offset of a position; positions past a line's end clamp to it.
    pub fn offset(&self, pos: Pos) -> usize {
        let Some(&start) = (pos.line as usize)
            .checked_sub(1)
            .and_then(|l| self.starts.get(l))
        else {
            return self.text.len();
        };
        let line = &self.text[start..];
        let line = &line[..line.find('\n').unwrap_or(line.len())];
        let col = pos.col.saturating_sub(1) as usize;
        start + line.char_indices().nth(col).map_or(line.len(), |(i, _)| i)
    }

    /// Position of a byte offset (clamped to the text).
    pub fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|s| *s <= offset) - 1;
        let start = self.starts[line];
        let col = self.text[start..]
            .char_indices()
            .take_while(|(i, _)| start + i < offset)
            .count();
        Pos {
            line: u32::try_from(line + 1).unwrap_or(u32::MAX),
            col: u32::try_from(col + 1).unwrap_or(u32::MAX),
        }
    }
}

/// The whole way from the text YAML read back to the file as written: the rewrites in the order
/// they were applied, each with its output text. Line indexes are built once, so mapping every
/// span of a large lab stays linear.
pub struct Chain<'a> {
    written: Lines<'a>,
    /// Line index of the last output.
    last: Option<Lines<'a>>,
    maps: Vec<&'a OffsetMap>,
    identity: bool,
}

impl<'a> Chain<'a> {
    /// `steps`: (output text, map to its input), first rewrite first.
    pub fn new(written: &'a str, steps: &[(&'a str, &'a OffsetMap)]) -> Self {
        Chain {
            written: Lines::new(written),
            last: steps.last().map(|(t, _)| Lines::new(t)),
            maps: steps.iter().map(|(_, m)| *m).collect(),
            identity: steps.iter().all(|(t, _)| *t == written),
        }
    }

    /// A position in the last output → the same place in the file as written.
    pub fn pos(&self, pos: Pos) -> Pos {
        let Some(last) = &self.last else {
            return pos;
        };
        let mut off = last.offset(pos);
        for map in self.maps.iter().rev() {
            off = map.to_input(off);
        }
        self.written.pos(off)
    }

    pub fn span(&self, s: Span) -> Span {
        Span {
            start: self.pos(s.start),
            end: self.pos(s.end),
        }
    }

    /// Whether no rewrite changed anything (no mapping needed then).
    pub fn is_identity(&self) -> bool {
        self.identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_with_multibyte_characters() {
        let text = "a: é\nbb: x\n\nlast";
        let l = Lines::new(text);
        for off in [0, 3, 6, 7, 11, 12, 13, text.len()] {
            assert_eq!(l.offset(l.pos(off)), off, "offset {off}");
        }
        assert_eq!(l.pos(text.find("x").unwrap()), Pos { line: 2, col: 5 });
    }

    #[test]
    fn inserted_text_maps_to_its_construct() {
        let mut m = OffsetMap::default();
        m.copied(0, 0, 4); // "abc "
        m.inserted(4, 4, 2); // "XY" from "${V}" at 4..8
        m.copied(6, 8, 3);
        assert_eq!(m.to_input(2), 2);
        assert_eq!(m.to_input(5), 4);
        assert_eq!(m.to_input(7), 9);
    }
}

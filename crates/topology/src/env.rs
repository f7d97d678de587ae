//! Environment-variable expansion in topology text, in the bash forms containerlab accepts.
//!
//! Owns `${V}`, `${V:-d}`, `${V-d}`, `${V:=d}`, `${V=d}`, `${V:+o}`, `${V+o}`, `${V:?msg}`, `$V` and the
//! `$$` escape, over the whole file before YAML reads it (as containerlab does, so a value may
//! expand to nothing or to YAML syntax). An unset variable without a default is left exactly as
//! written, so text such as a shell snippet in `cmd` survives. Assignments (`:=`, `=`) are remembered for later expansions in
//! the same file, as in a shell. It never reads or writes the process environment itself: the caller
//! passes a lookup.

use std::collections::HashMap;

/// The variables visible to one expansion pass: the process environment plus assignments made by
/// `${V:=d}` forms earlier in the file.
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    assigned: HashMap<String, String>,
    /// `${…}` forms being expanded inside one another right now.
    depth: usize,
}

/// Deepest nesting of `${V:-${W:-…}}` expanded; deeper references are left as written rather than
/// overflowing the stack.
pub const MAX_DEPTH: usize = 32;

/// `${V:?message}` met an unset or empty variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredVar {
    pub name: String,
    pub message: String,
}

impl<'a> Env<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Env {
            lookup,
            assigned: HashMap::new(),
            depth: 0,
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        self.assigned
            .get(name)
            .cloned()
            .or_else(|| (self.lookup)(name))
    }

    /// Expand every reference in `text`.
    pub fn expand(&mut self, text: &str) -> Result<String, RequiredVar> {
        let mut out = Expanded::default();
        self.expand_into(text, &mut out);
        match out.errors.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(out.text),
        }
    }

    /// Expand every reference in a whole file, remembering where each piece of the result came
    /// from. A `${V:?msg}` whose variable is unset is reported with its offset and left as written,
    /// so one pass finds them all.
    pub fn expand_text(&mut self, text: &str) -> Expanded {
        let mut out = Expanded::default();
        self.expand_into(text, &mut out);
        out
    }

    fn expand_into(&mut self, text: &str, out: &mut Expanded) {
        if !text.contains('$') {
            out.copy(text, 0, text.len());
            return;
        }
        let bytes = text.as_bytes();
        // Start of the literal run not yet copied.
        let mut lit = 0;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'$' {
                i += 1;
                continue;
            }
            let (end, value) = match bytes.get(i + 1) {
                Some(b'$') => (i + 2, Some("$".to_string())),
                Some(b'{') => match find_close(text, i + 2) {
                    Some(close) => {
                        let inner = &text[i + 2..close];
                        let expanded = if self.depth < MAX_DEPTH {
                            self.depth += 1;
                            let r = self.expand_braced(inner);
                            self.depth -= 1;
                            r
                        } else {
                            Ok(None)
                        };
                        match expanded {
                            Ok(v) => (close + 1, v),
                            Err(e) => {
                                out.errors.push((i, e));
                                (close + 1, None)
                            }
                        }
                    }
                    None => break,
                },
                Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
                    let end = text[i + 1..]
                        .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                        .map_or(text.len(), |n| i + 1 + n);
                    (end, self.get(&text[i + 1..end]))
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            // A reference left as written stays part of the literal run.
            if let Some(v) = value {
                out.copy(text, lit, i);
                out.insert(&v, i);
                lit = end;
            }
            i = end;
        }
        out.copy(text, lit, text.len());
    }

    /// Expand the inside of `${…}`; `None` means "leave the reference as written".
    fn expand_braced(&mut self, inner: &str) -> Result<Option<String>, RequiredVar> {
        let name_end = inner
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
            .unwrap_or(inner.len());
        let name = &inner[..name_end];
        if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
            return Ok(None);
        }
        let rest = &inner[name_end..];
        let value = self.get(name);
        // Operators are ASCII; anything else after the name is not a form we know (and slicing
        // after a non-ASCII byte would split a character).
        let (colon, op, arg) = match rest.as_bytes() {
            [] => return Ok(value),
            [b':', op, ..] if op.is_ascii() => (true, *op, &rest[2..]),
            [op, ..] if op.is_ascii() => (false, *op, &rest[1..]),
            _ => return Ok(None),
        };
        // With a colon, an empty value counts as unset.
        let set = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        match op {
            b'-' => Ok(Some(if set {
                value.unwrap_or_default()
            } else {
                self.expand(arg)?
            })),
            b'=' => {
                if set {
                    Ok(value)
                } else {
                    let v = self.expand(arg)?;
                    self.assigned.insert(name.to_string(), v.clone());
                    Ok(Some(v))
                }
            }
            b'+' => Ok(Some(if set {
                self.expand(arg)?
            } else {
                String::new()
            })),
            b'?' => {
                if set {
                    Ok(value)
                } else {
                    Err(RequiredVar {
                        name: name.to_string(),
                        message: if arg.is_empty() {
                            "parameter not set".to_string()
                        } else {
                            self.expand(arg)?
                        },
                    })
                }
            }
            _ => Ok(None),
        }
    }
}

/// The result of expanding a whole file: the text, where its pieces came from, and the
/// `${V:?msg}` references that failed (with their offsets in the input).
#[derive(Debug, Default)]
pub struct Expanded {
    pub text: String,
    pub map: crate::srcmap::OffsetMap,
    pub errors: Vec<(usize, RequiredVar)>,
}

impl Expanded {
    /// Text with nothing to expand, mapped one to one; the text itself is not copied.
    pub fn identity(len: usize) -> Expanded {
        let mut out = Expanded::default();
        out.map.copied(0, 0, len);
        out
    }

    fn copy(&mut self, from: &str, start: usize, end: usize) {
        if start < end {
            self.map.copied(self.text.len(), start, end - start);
            self.text.push_str(&from[start..end]);
        }
    }

    fn insert(&mut self, value: &str, at: usize) {
        self.map.inserted(self.text.len(), at, value.len());
        self.text.push_str(value);
    }
}

/// Index of the `}` closing a `${` whose body starts at `from`, allowing nested `${…}`.
fn find_close(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(text: &str) -> String {
        let lookup = |k: &str| match k {
            "SET" => Some("v".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        Env::new(&lookup).expand(text).unwrap()
    }

    #[test]
    fn all_bash_forms() {
        assert_eq!(expand("${SET}"), "v");
        assert_eq!(expand("$SET/x"), "v/x");
        assert_eq!(expand("${UNSET}"), "${UNSET}");
        assert_eq!(expand("$UNSET"), "$UNSET");
        assert_eq!(expand("${UNSET:-d}"), "d");
        assert_eq!(expand("${EMPTY:-d}"), "d");
        assert_eq!(expand("${EMPTY-d}"), "");
        assert_eq!(expand("${UNSET-d}"), "d");
        assert_eq!(expand("${SET:+o}"), "o");
        assert_eq!(expand("${EMPTY:+o}"), "");
        assert_eq!(expand("${EMPTY+o}"), "o");
        assert_eq!(expand("${UNSET+o}"), "");
        assert_eq!(expand("$$SET"), "$SET");
        assert_eq!(expand("cost $5"), "cost $5");
        assert_eq!(expand("${UNSET:-${SET}}"), "v");
    }

    #[test]
    fn whole_text_expansion_maps_back_to_the_input() {
        let lookup = |k: &str| (k == "P").then(|| "clab-long".to_string());
        let text = "prefix: ${P}\nname: ${Q:-x}\nkeep: ${R}\nneed: ${S:?set S}\n";
        let out = Env::new(&lookup).expand_text(text);
        assert_eq!(
            out.text,
            "prefix: clab-long\nname: x\nkeep: ${R}\nneed: ${S:?set S}\n"
        );
        // Text after a substitution maps to where it was written.
        let name_at = out.text.find("name").unwrap();
        assert_eq!(out.map.to_input(name_at), text.find("name").unwrap());
        // Inside a substituted value: the start of the reference.
        let inside = out.text.find("long").unwrap();
        assert_eq!(out.map.to_input(inside), text.find("${P}").unwrap());
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].0, text.find("${S").unwrap());
        assert_eq!(out.errors[0].1.message, "set S");
    }

    #[test]
    fn assignment_is_remembered() {
        let lookup = |_: &str| None;
        let mut env = Env::new(&lookup);
        assert_eq!(env.expand("${A:=one}").unwrap(), "one");
        assert_eq!(env.expand("${A}").unwrap(), "one");
        assert_eq!(env.expand("${B=two}-${B}").unwrap(), "two-two");
    }

    #[test]
    fn required_variable_reports_its_message() {
        let lookup = |_: &str| None;
        let err = Env::new(&lookup).expand("${NEED:?set NEED}").unwrap_err();
        assert_eq!(err.name, "NEED");
        assert_eq!(err.message, "set NEED");
    }
}

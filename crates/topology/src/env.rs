//! Environment-variable expansion in topology text, in the bash forms containerlab accepts.
//!
//! Owns `${V}`, `${V:-d}`, `${V-d}`, `${V:=d}`, `${V=d}`, `${V:+o}`, `${V+o}`, `${V:?msg}`, `$V` and the
//! `$$` escape. An unset variable without a default is left exactly as written, so text such as a
//! shell snippet in `cmd` survives. Assignments (`:=`, `=`) are remembered for later expansions in
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
        if !text.contains('$') {
            return Ok(text.to_string());
        }
        let mut out = String::with_capacity(text.len());
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            if c != b'$' {
                let ch = text[i..].chars().next().unwrap_or('\0');
                out.push(ch);
                i += ch.len_utf8();
                continue;
            }
            match bytes.get(i + 1) {
                Some(b'$') => {
                    out.push('$');
                    i += 2;
                }
                Some(b'{') => match find_close(text, i + 2) {
                    Some(close) => {
                        let inner = &text[i + 2..close];
                        let expanded = if self.depth < MAX_DEPTH {
                            self.depth += 1;
                            let r = self.expand_braced(inner);
                            self.depth -= 1;
                            r?
                        } else {
                            None
                        };
                        match expanded {
                            Some(v) => out.push_str(&v),
                            None => out.push_str(&text[i..=close]),
                        }
                        i = close + 1;
                    }
                    None => {
                        out.push_str(&text[i..]);
                        break;
                    }
                },
                Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
                    let end = text[i + 1..]
                        .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                        .map_or(text.len(), |n| i + 1 + n);
                    let name = &text[i + 1..end];
                    match self.get(name) {
                        Some(v) => out.push_str(&v),
                        None => out.push_str(&text[i..end]),
                    }
                    i = end;
                }
                _ => {
                    out.push('$');
                    i += 1;
                }
            }
        }
        Ok(out)
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

//! Hand-rendered YAML scalars for the inventories.
//!
//! Owns one decision: whether a string may be written plain or must be double-quoted so that a
//! YAML 1.1 or 1.2 reader (PyYAML, Ansible, Nornir) reads it back as the same string. It errs on
//! the side of quoting; it renders no structure.

/// YAML words that a reader would turn into a boolean or null when written plain.
const RESERVED: &[&str] = &[
    "y", "n", "yes", "no", "true", "false", "on", "off", "null", "~",
];

/// `s` as a YAML scalar that reads back as the string `s`.
pub(crate) fn scalar(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else {
        quoted(s)
    }
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphanumeric() || first == '_' || first == '/') {
        return false;
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | '@' | '+'))
    {
        return false;
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s)) {
        return false;
    }
    !looks_numeric(s)
}

/// Whether a reader might take `s` for a number (int, float, hex, octal, binary).
fn looks_numeric(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    if ["0x", "0o", "0b"].iter().any(|p| lower.starts_with(p)) {
        return true;
    }
    let numberish = s
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '_' | '.' | '+' | '-' | 'e' | 'E'));
    numberish && s.matches('.').count() <= 1 && s.chars().any(|c| c.is_ascii_digit())
        || s.parse::<f64>().is_ok()
}

/// `s` in double quotes with YAML escapes.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if matches!(
                c,
                '\u{85}' | '\u{a0}' | '\u{2028}' | '\u{2029}' | '\u{feff}'
            ) =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::scalar;

    #[test]
    fn plain_where_safe() {
        for s in [
            "clab-t-n1",
            "nokia_srlinux",
            "172.20.20.2",
            "linux",
            "a/b",
            "x@y",
        ] {
            assert_eq!(scalar(s), s);
        }
    }

    #[test]
    fn quotes_what_a_reader_would_retype_or_misparse() {
        let cases = [
            ("", "\"\""),
            ("yes", "\"yes\""),
            ("No", "\"No\""),
            ("null", "\"null\""),
            ("~", "\"~\""),
            ("123", "\"123\""),
            ("1.5", "\"1.5\""),
            ("1e5", "\"1e5\""),
            ("0x1f", "\"0x1f\""),
            ("1_000", "\"1_000\""),
            ("inf", "\"inf\""),
            ("3fff:172:20:20::2", "\"3fff:172:20:20::2\""),
            ("a: b", "\"a: b\""),
            ("-x", "\"-x\""),
            ("#c", "\"#c\""),
            ("a\"b\\c", "\"a\\\"b\\\\c\""),
            ("l1\nl2\t\u{1}", "\"l1\\nl2\\t\\x01\""),
            ("has space", "\"has space\""),
        ];
        for (s, want) in cases {
            assert_eq!(scalar(s), want, "for {s:?}");
        }
    }
}

//! Typed reading of YAML values with diagnostics: the bridge between `yaml` and the schema.
//!
//! Owns "is this a mapping with only known keys", "is this a number", "is this a list of strings" and
//! the messages for each mismatch. It reports; it never decides defaults.

use std::collections::BTreeMap;

use crate::diag::{did_you_mean, Diagnostics};
use crate::yaml::{Kind, Scalar, Span, Value};

/// A mapping whose keys were checked against a list of known keys.
pub struct Map<'v> {
    pub span: Span,
    pub entries: Vec<(&'v str, Span, &'v Value<'v>)>,
}

impl<'v> Map<'v> {
    pub fn get(&self, key: &str) -> Option<&'v Value<'v>> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }

    /// A present, non-null value.
    pub fn some(&self, key: &str) -> Option<&'v Value<'v>> {
        self.get(key).filter(|v| !v.is_null())
    }
}

/// Read `v` as a mapping of `what` whose keys must be among `known`. Unknown keys are errors with a
/// suggestion. A null value reads as an empty mapping.
pub fn map<'v>(
    v: &'v Value<'v>,
    what: &str,
    known: &[&str],
    d: &mut Diagnostics,
) -> Option<Map<'v>> {
    let entries = entries(v, what, d)?;
    let mut out = Vec::with_capacity(entries.len());
    for (k, span, val) in entries {
        if !known.is_empty() && !known.contains(&k) {
            let diag = d.error(Some(span), format!("unknown key `{k}` in {what}"));
            // containerlab renamed `mgmt_ipv4` and the like to dashed names and no longer reads
            // the old spellings on nodes either.
            let dashed = k.replace('_', "-");
            if dashed != k && known.contains(&dashed.as_str()) {
                diag.help(format!(
                    "`{k}` is the old spelling of `{dashed}`, which containerlab no longer reads either; write `{dashed}`"
                ));
                continue;
            }
            match did_you_mean(k, known.iter().copied()) {
                Some(s) => diag.help(format!("did you mean `{s}`?")),
                None => diag.help(format!("accepted keys: {}", known.join(", "))),
            };
            continue;
        }
        out.push((k, span, val));
    }
    Some(Map {
        span: v.span,
        entries: out,
    })
}

/// The entries of a mapping with string keys, in order; a null reads as empty.
pub fn entries<'v>(
    v: &'v Value<'v>,
    what: &str,
    d: &mut Diagnostics,
) -> Option<Vec<(&'v str, Span, &'v Value<'v>)>> {
    match &v.kind {
        Kind::Map(m) => {
            let mut out = Vec::with_capacity(m.len());
            for (k, val) in m {
                match &k.kind {
                    Kind::Scalar(Scalar { text, .. }) => out.push((&**text, k.span, val)),
                    _ => {
                        d.error(
                            Some(k.span),
                            format!("a key in {what} must be text, not {}", k.describe()),
                        );
                    }
                }
            }
            Some(out)
        }
        _ if v.is_null() => Some(Vec::new()),
        _ => {
            d.error(
                Some(v.span),
                format!("{what} must be a mapping, not {}", v.describe()),
            );
            None
        }
    }
}

/// A scalar as text. Null is absent (`None` without error).
pub fn string(v: &Value, what: &str, d: &mut Diagnostics) -> Option<String> {
    if v.is_null() {
        return None;
    }
    match &v.kind {
        Kind::Scalar(s) => Some(s.text.to_string()),
        _ => {
            d.error(
                Some(v.span),
                format!("{what} must be text, not {}", v.describe()),
            );
            None
        }
    }
}

/// An unsigned integer within `max`.
pub fn uint(v: &Value, what: &str, max: u64, d: &mut Diagnostics) -> Option<u64> {
    let s = string(v, what, d)?;
    let t = s.trim();
    let parsed = if let Some(hex) = t.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok()
    } else {
        t.parse::<u64>().ok()
    };
    match parsed {
        Some(n) if n <= max => Some(n),
        _ => {
            d.error(
                Some(v.span),
                format!("{what} `{s}` is not a whole number from 0 to {max}"),
            );
            None
        }
    }
}

pub fn float(v: &Value, what: &str, d: &mut Diagnostics) -> Option<f64> {
    let s = string(v, what, d)?;
    match s.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 0.0 => Some(f),
        _ => {
            d.error(
                Some(v.span),
                format!("{what} `{s}` is not a non-negative number"),
            );
            None
        }
    }
}

pub fn boolean(v: &Value, what: &str, d: &mut Diagnostics) -> Option<bool> {
    let s = string(v, what, d)?;
    match s.as_str() {
        "true" | "True" | "TRUE" | "yes" | "on" => Some(true),
        "false" | "False" | "FALSE" | "no" | "off" => Some(false),
        _ => {
            d.error(Some(v.span), format!("{what} `{s}` is not a boolean"))
                .help("use true or false");
            None
        }
    }
}

/// A list of scalars, each with its span. A null reads as empty.
pub fn strings(v: &Value, what: &str, d: &mut Diagnostics) -> Vec<(String, Span)> {
    match &v.kind {
        Kind::Seq(items) => items
            .iter()
            .filter_map(|i| string(i, &format!("an item of {what}"), d).map(|s| (s, i.span)))
            .collect(),
        _ if v.is_null() => Vec::new(),
        _ => {
            d.error(
                Some(v.span),
                format!("{what} must be a list, not {}", v.describe()),
            );
            Vec::new()
        }
    }
}

/// A mapping of text to scalar text (`env`, `labels`, `sysctls`).
pub fn string_map(v: &Value, what: &str, d: &mut Diagnostics) -> BTreeMap<String, (String, Span)> {
    let mut out = BTreeMap::new();
    each_string(v, what, d, &mut |k, text, span, _| {
        out.insert(k.to_string(), (text.to_string(), span));
    });
    out
}

/// Visit each entry of a mapping of text to text (`f` gets the key, the text, the value's span and
/// the diagnostics); an entry whose value is not text is reported and skipped.
pub fn each_string(
    v: &Value,
    what: &str,
    d: &mut Diagnostics,
    f: &mut dyn FnMut(&str, &str, Span, &mut Diagnostics),
) {
    for (k, _, val) in entries(v, what, d).unwrap_or_default() {
        match &val.kind {
            Kind::Scalar(s) => f(k, &s.text, val.span, d),
            _ => {
                d.error(
                    Some(val.span),
                    format!("{what}.{k} must be text, not {}", val.describe()),
                );
            }
        }
    }
}

/// A list of values.
pub fn seq<'v>(v: &'v Value<'v>, what: &str, d: &mut Diagnostics) -> &'v [Value<'v>] {
    match &v.kind {
        Kind::Seq(items) => items,
        _ if v.is_null() => &[],
        _ => {
            d.error(
                Some(v.span),
                format!("{what} must be a list, not {}", v.describe()),
            );
            &[]
        }
    }
}

/// A value turned into JSON, for fields kept as written (`extras`, link `vars`).
pub fn to_json(v: &Value) -> serde_json::Value {
    match &v.kind {
        Kind::Scalar(s) if v.is_null() => {
            let _ = s;
            serde_json::Value::Null
        }
        Kind::Scalar(s) => {
            if s.plain {
                if let Ok(i) = s.text.parse::<i64>() {
                    return i.into();
                }
                if let Ok(f) = s.text.parse::<f64>() {
                    if f.is_finite() {
                        return f.into();
                    }
                }
                match &*s.text {
                    "true" => return true.into(),
                    "false" => return false.into(),
                    _ => {}
                }
            }
            s.text.clone().into()
        }
        Kind::Seq(items) => items.iter().map(to_json).collect(),
        Kind::Map(m) => m
            .iter()
            .map(|(k, v)| (k.display(), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

//! Go-template topologies: the subset of Go's `text/template` (with containerlab's functions and a
//! few common helpers) that containerlab topology files use, rendered before YAML reads the text.
//!
//! Owns lexing and parsing `{{ … }}` actions, evaluating them against the template variables
//! (`--vars FILE` or `<topology>_vars.yml`) and the [`OffsetMap`] from the rendered text back to the
//! template, so later errors still point into the file as written. A construct outside the subset
//! is an error naming it and its position, never silently dropped. It reads no files.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::srcmap::OffsetMap;

/// A template value: what YAML/JSON variables decode to, plus Go's "no value".
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// Go's invalid value: a field of absent data. Prints as `<no value>`.
    Missing,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Val>),
    Map(BTreeMap<String, Val>),
}

impl Val {
    /// From JSON (the variables files are read into JSON values).
    pub fn from_json(v: &serde_json::Value) -> Val {
        match v {
            serde_json::Value::Null => Val::Nil,
            serde_json::Value::Bool(b) => Val::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Val::Int(i),
                None => Val::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Val::Str(s.clone()),
            serde_json::Value::Array(a) => Val::List(a.iter().map(Val::from_json).collect()),
            serde_json::Value::Object(o) => Val::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Val::from_json(v)))
                    .collect(),
            ),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Missing | Val::Nil => serde_json::Value::Null,
            Val::Bool(b) => (*b).into(),
            Val::Int(i) => (*i).into(),
            Val::Float(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Val::Str(s) => s.clone().into(),
            Val::List(l) => l.iter().map(Val::to_json).collect(),
            Val::Map(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    /// Go's truth: false, 0, nil and empty things are false.
    fn truthy(&self) -> bool {
        match self {
            Val::Missing | Val::Nil => false,
            Val::Bool(b) => *b,
            Val::Int(i) => *i != 0,
            Val::Float(f) => *f != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::List(l) => !l.is_empty(),
            Val::Map(m) => !m.is_empty(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Val::Missing => "no value",
            Val::Nil => "nil",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Float(_) => "float",
            Val::Str(_) => "string",
            Val::List(_) => "list",
            Val::Map(_) => "map",
        }
    }
}

/// Go's `%v` of a float: shortest digits, exponent form below 1e-4 and from 1e21.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e21).contains(&a) {
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match e.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', e),
        };
        return format!("{m}e{sign}{digits:0>2}");
    }
    format!("{f}")
}

/// Go's `%v` / `print` of a value.
fn display(v: &Val) -> String {
    match v {
        Val::Missing | Val::Nil => "<no value>".into(),
        Val::Bool(b) => b.to_string(),
        Val::Int(i) => i.to_string(),
        Val::Float(f) => go_float(*f),
        Val::Str(s) => s.clone(),
        Val::List(l) => format!(
            "[{}]",
            l.iter().map(display_inner).collect::<Vec<_>>().join(" ")
        ),
        Val::Map(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", display_inner(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Inside a list or map Go prints nil as `<nil>`.
fn display_inner(v: &Val) -> String {
    match v {
        Val::Missing | Val::Nil => "<nil>".into(),
        v => display(v),
    }
}

/// A template that could not be parsed or rendered: the message and the byte offset of the
/// construct in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub at: usize,
    pub message: String,
    /// Which text `at` is in: `None` or `Some(0)` the topology, `Some(i)` its i-th sub-template.
    pub source: Option<usize>,
}

type Res<T> = Result<T, TemplateError>;

fn err<T>(at: usize, message: impl Into<String>) -> Res<T> {
    Err(TemplateError {
        at,
        message: message.into(),
        source: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Lexing
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A function name or keyword (`printf`, `strings.Split`, `if`).
    Ident(String),
    /// `.` alone.
    Dot,
    /// `.a.b`
    Field(Vec<String>),
    /// `$`, `$x`, with a field chain (`$x.a`).
    Var(String, Vec<String>),
    Lit(Val),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    at: usize,
    /// White space before it (a field chain after `)` must touch it).
    spaced: bool,
}

fn lex_action(src: &str, start: usize, end: usize) -> Res<Vec<Token>> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = start;
    let mut spaced = true;
    let ident_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let chain = |i: &mut usize| -> Vec<String> {
        let mut fields = Vec::new();
        while *i < end && b[*i] == b'.' && *i + 1 < end && ident_char(b[*i + 1]) {
            let s = *i + 1;
            *i = s;
            while *i < end && ident_char(b[*i]) {
                *i += 1;
            }
            fields.push(src[s..*i].to_string());
        }
        fields
    };
    while i < end {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            spaced = true;
            continue;
        }
        let at = i;
        let tok = match c {
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'|' => {
                i += 1;
                Tok::Pipe
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b'=' => {
                i += 1;
                Tok::Assign
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Declare
            }
            b'.' => {
                if i + 1 < end && ident_char(b[i + 1]) && !b[i + 1].is_ascii_digit() {
                    Tok::Field(chain(&mut i))
                } else if i + 1 < end && b[i + 1].is_ascii_digit() {
                    number(src, &mut i, end)?
                } else {
                    i += 1;
                    Tok::Dot
                }
            }
            b'$' => {
                i += 1;
                let s = i;
                while i < end && ident_char(b[i]) {
                    i += 1;
                }
                let name = format!("${}", &src[s..i]);
                Tok::Var(name, chain(&mut i))
            }
            b'"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    let Some(ch) = src[i..end].chars().next() else {
                        return err(at, "unterminated string in action");
                    };
                    i += ch.len_utf8();
                    match ch {
                        '"' => break,
                        '\\' => {
                            let Some(e) = src[i..end].chars().next() else {
                                return err(at, "unterminated string in action");
                            };
                            i += e.len_utf8();
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '\\' => '\\',
                                '"' => '"',
                                '\'' => '\'',
                                '0' => '\0',
                                other => {
                                    return err(
                                        i - 1,
                                        format!("escape `\\{other}` in a string is not supported"),
                                    )
                                }
                            });
                        }
                        ch => s.push(ch),
                    }
                }
                Tok::Lit(Val::Str(s))
            }
            b'`' => {
                let Some(close) = src[i + 1..end].find('`') else {
                    return err(at, "unterminated raw string in action");
                };
                let s = src[i + 1..i + 1 + close].to_string();
                i += close + 2;
                Tok::Lit(Val::Str(s))
            }
            b'\'' => {
                let rest = &src[i + 1..end];
                let mut chars = rest.chars();
                let (Some(ch), Some('\'')) = (chars.next(), chars.next()) else {
                    return err(at, "character literals other than 'x' are not supported");
                };
                i += 2 + ch.len_utf8();
                Tok::Lit(Val::Int(ch as i64))
            }
            b'-' | b'+' | b'0'..=b'9' => number(src, &mut i, end)?,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let s = i;
                while i < end
                    && (ident_char(b[i]) || (b[i] == b'.' && i + 1 < end && ident_char(b[i + 1])))
                {
                    i += 1;
                }
                match &src[s..i] {
                    "true" => Tok::Lit(Val::Bool(true)),
                    "false" => Tok::Lit(Val::Bool(false)),
                    "nil" => Tok::Lit(Val::Nil),
                    w => Tok::Ident(w.to_string()),
                }
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return err(at, format!("unexpected `{ch}` in action"));
            }
        };
        out.push(Token { tok, at, spaced });
        spaced = false;
    }
    Ok(out)
}

fn number(src: &str, i: &mut usize, end: usize) -> Res<Tok> {
    let at = *i;
    let b = src.as_bytes();
    let mut j = *i;
    if matches!(b[j], b'-' | b'+') {
        j += 1;
    }
    while j < end && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'.' | b'_'))
        || (j > at && j < end && matches!(b[j], b'-' | b'+') && matches!(b[j - 1], b'e' | b'E'))
    {
        j += 1;
    }
    let text = src[at..j].replace('_', "");
    *i = j;
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, text.trim_start_matches('+').to_string()),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = body.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(bi) = body.strip_prefix("0b") {
        i64::from_str_radix(bi, 2).ok()
    } else {
        body.parse::<i64>().ok()
    };
    if let Some(n) = int {
        return Ok(Tok::Lit(Val::Int(if neg { -n } else { n })));
    }
    match body.parse::<f64>() {
        Ok(f) => Ok(Tok::Lit(Val::Float(if neg { -f } else { f }))),
        Err(_) => err(at, format!("bad number `{}`", &src[at..j])),
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Term {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Lit(Val),
    Sub(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Cmd {
    args: Vec<(Term, usize)>,
    at: usize,
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    /// `=` (assign to existing variables) rather than `:=`.
    assign: bool,
    cmds: Vec<Cmd>,
    at: usize,
}

#[derive(Debug, Clone)]
enum Node {
    /// Text of source `.0` from `.1` to `.2`.
    Text(usize, usize, usize),
    /// `{{ template "name" [pipeline] }}` (also what `block` leaves in place).
    Template(String, Option<Pipe>, usize),
    Action(Pipe),
    If(Vec<(Pipe, Vec<Node>)>, Option<Vec<Node>>),
    Range(Pipe, Vec<Node>, Option<Vec<Node>>),
    With(Vec<(Pipe, Vec<Node>)>, Option<Vec<Node>>),
    Break(usize),
    Continue(usize),
}

/// One `{{ … }}` with the text before it, trim markers applied.
struct Action {
    /// Start of `{{`.
    at: usize,
    tokens: Vec<Token>,
}

enum Piece {
    Text(usize, usize),
    Action(Action),
}

/// Split the template into text and actions, applying `{{-` and `-}}` trimming.
fn split(src: &str) -> Res<Vec<Piece>> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    while let Some(rel) = src[pos..].find("{{") {
        let open = pos + rel;
        let mut text_end = open;
        let mut inner = open + 2;
        if b.get(inner) == Some(&b'-') && b.get(inner + 1).is_some_and(|c| c.is_ascii_whitespace())
        {
            text_end = src[pos..open].trim_end().len() + pos;
            inner += 2;
        }
        let mut text_start = pos;
        if trim_next {
            text_start =
                open.min(pos + (src[pos..text_end].len() - src[pos..text_end].trim_start().len()));
        }
        if text_start < text_end {
            out.push(Piece::Text(text_start, text_end));
        }
        // A comment: `{{/* … */}}`, with optional trim markers around it.
        let body = src[inner..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        let (close, trim_after) = if body.starts_with("/*") {
            let cstart = src.len() - body.len();
            let Some(cend) = src[cstart..].find("*/") else {
                return err(open, "unterminated comment");
            };
            let after = cstart + cend + 2;
            let rest = &src[after..];
            let ws = rest.len() - rest.trim_start().len();
            if rest.starts_with("}}") {
                (after, false)
            } else if rest[ws..].starts_with("-}}") && ws > 0 {
                (after + ws, true)
            } else {
                return err(open, "a comment must end with `*/}}`");
            }
        } else {
            // Find `}}` outside string literals.
            let mut j = inner;
            let mut close = None;
            while j + 1 < b.len() {
                match b[j] {
                    b'"' => {
                        j += 1;
                        while j < b.len() && b[j] != b'"' {
                            if b[j] == b'\\' {
                                j += 1;
                            }
                            j += 1;
                        }
                    }
                    b'`' => {
                        j += 1;
                        while j < b.len() && b[j] != b'`' {
                            j += 1;
                        }
                    }
                    b'}' if b[j + 1] == b'}' => {
                        close = Some(j);
                        break;
                    }
                    _ => {}
                }
                j += 1;
            }
            let Some(c) = close else {
                return err(open, "unclosed action: no matching `}}`");
            };
            let trim = c > inner && b[c - 1] == b'-' && c >= 2 && b[c - 2].is_ascii_whitespace();
            if trim {
                (c - 1, true)
            } else {
                (c, false)
            }
        };
        if !body.starts_with("/*") {
            let tokens = lex_action(src, inner, close)?;
            out.push(Piece::Action(Action { at: open, tokens }));
        }
        let after_close = src[close..].find("}}").map_or(src.len(), |k| close + k + 2);
        pos = after_close;
        trim_next = trim_after;
    }
    let mut text_start = pos;
    if trim_next {
        text_start = pos + (src[pos..].len() - src[pos..].trim_start().len());
    }
    if text_start < src.len() {
        out.push(Piece::Text(text_start, src.len()));
    }
    Ok(out)
}

struct Parser<'d> {
    pieces: std::vec::IntoIter<Piece>,
    /// Which text these pieces are from.
    source: usize,
    /// Named templates (`define`, `block`, sub-template files), later ones replacing earlier.
    defs: &'d mut Vec<Def>,
}

/// A named template: its body and the text it was written in.
struct Def {
    name: String,
    source: usize,
    nodes: Vec<Node>,
}

/// The name operand of `define`, `template` and `block`.
fn template_name(toks: &mut Vec<Token>, at: usize, what: &str) -> Res<String> {
    if toks.is_empty() {
        return err(at, format!("`{what}` needs a template name"));
    }
    match toks.remove(0).tok {
        Tok::Lit(Val::Str(name)) => Ok(name),
        _ => err(at, format!("`{what}` takes the template name as a string")),
    }
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End(usize),
    Else(usize, Vec<Token>),
}

impl Parser<'_> {
    fn list(&mut self) -> Res<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        while let Some(p) = self.pieces.next() {
            let a = match p {
                Piece::Text(s, e) => {
                    nodes.push(Node::Text(self.source, s, e));
                    continue;
                }
                Piece::Action(a) => a,
            };
            let at = a.at;
            let mut toks = a.tokens;
            let keyword = match toks.first() {
                Some(Token {
                    tok: Tok::Ident(k), ..
                }) => Some(k.clone()),
                _ => None,
            };
            match keyword.as_deref() {
                Some("end") => return Ok((nodes, Stop::End(at))),
                Some("else") => {
                    toks.remove(0);
                    return Ok((nodes, Stop::Else(at, toks)));
                }
                Some("if") | Some("with") => {
                    toks.remove(0);
                    let is_if = keyword.as_deref() == Some("if");
                    let mut branches = vec![(parse_pipe(toks, at, !is_if)?, Vec::new())];
                    let mut otherwise = None;
                    loop {
                        let (body, stop) = self.list()?;
                        branches.last_mut().expect("one branch").1 = body;
                        match stop {
                            Stop::End(_) => break,
                            Stop::Eof => return err(at, "missing `{{ end }}`"),
                            Stop::Else(eat, mut rest) => {
                                let chained = matches!(rest.first(), Some(Token { tok: Tok::Ident(k), .. }) if k == "if" || k == "with");
                                if chained {
                                    rest.remove(0);
                                    branches.push((parse_pipe(rest, eat, !is_if)?, Vec::new()));
                                    continue;
                                }
                                if !rest.is_empty() {
                                    return err(eat, "unexpected words after `else`");
                                }
                                let (body, stop) = self.list()?;
                                match stop {
                                    Stop::End(_) => {}
                                    Stop::Eof => return err(at, "missing `{{ end }}`"),
                                    Stop::Else(x, _) => return err(x, "a second `else`"),
                                }
                                otherwise = Some(body);
                                break;
                            }
                        }
                    }
                    nodes.push(if is_if {
                        Node::If(branches, otherwise)
                    } else {
                        Node::With(branches, otherwise)
                    });
                }
                Some("range") => {
                    toks.remove(0);
                    let pipe = parse_pipe(toks, at, true)?;
                    let (body, stop) = self.list()?;
                    let otherwise = match stop {
                        Stop::End(_) => None,
                        Stop::Eof => return err(at, "missing `{{ end }}` for range"),
                        Stop::Else(eat, rest) => {
                            if !rest.is_empty() {
                                return err(eat, "unexpected words after `else`");
                            }
                            let (b2, s2) = self.list()?;
                            if !matches!(s2, Stop::End(_)) {
                                return err(at, "missing `{{ end }}` for range");
                            }
                            Some(b2)
                        }
                    };
                    nodes.push(Node::Range(pipe, body, otherwise));
                }
                Some("break") => nodes.push(Node::Break(at)),
                Some("continue") => nodes.push(Node::Continue(at)),
                Some(k @ ("define" | "block")) => {
                    toks.remove(0);
                    let name = template_name(&mut toks, at, k)?;
                    let pipe = if k == "block" {
                        if toks.is_empty() {
                            return err(at, "`block` needs a pipeline after its name");
                        }
                        Some(parse_pipe(toks, at, false)?)
                    } else if !toks.is_empty() {
                        return err(at, "`define` takes only a template name");
                    } else {
                        None
                    };
                    let (body, stop) = self.list()?;
                    if !matches!(stop, Stop::End(_)) {
                        return err(at, format!("missing `{{{{ end }}}}` for {k}"));
                    }
                    self.defs.push(Def {
                        name: name.clone(),
                        source: self.source,
                        nodes: body,
                    });
                    if k == "block" {
                        nodes.push(Node::Template(name, pipe, at));
                    }
                }
                Some("template") => {
                    toks.remove(0);
                    let name = template_name(&mut toks, at, "template")?;
                    let pipe = if toks.is_empty() {
                        None
                    } else {
                        Some(parse_pipe(toks, at, false)?)
                    };
                    nodes.push(Node::Template(name, pipe, at));
                }
                _ => nodes.push(Node::Action(parse_pipe(toks, at, true)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }
}

/// A pipeline: `[$v[, $w] :=|=] cmd | cmd …`.
fn parse_pipe(toks: Vec<Token>, at: usize, allow_decl: bool) -> Res<Pipe> {
    let mut decl = Vec::new();
    let mut assign = false;
    let mut rest: &[Token] = &toks;
    // Variables declared before `:=`/`=`.
    let decl_end = toks
        .iter()
        .position(|t| matches!(t.tok, Tok::Declare | Tok::Assign));
    if let Some(d) = decl_end {
        let names = &toks[..d];
        let ok = names.iter().enumerate().all(|(i, t)| {
            if i % 2 == 0 {
                matches!(&t.tok, Tok::Var(_, f) if f.is_empty())
            } else {
                t.tok == Tok::Comma
            }
        }) && !names.len().is_multiple_of(2)
            && names.len() <= 3;
        if ok {
            if !allow_decl {
                return err(at, "variables cannot be declared here");
            }
            for t in names.iter().step_by(2) {
                if let Tok::Var(n, _) = &t.tok {
                    decl.push(n.clone());
                }
            }
            assign = toks[d].tok == Tok::Assign;
            rest = &toks[d + 1..];
        }
    }
    let mut cmds = Vec::new();
    let mut pos = 0;
    let (terms, end) = parse_terms(rest, &mut pos, at)?;
    cmds.push(terms);
    let _ = end;
    while pos < rest.len() {
        // parse_terms stopped at a pipe.
        pos += 1;
        let (terms, _) = parse_terms(rest, &mut pos, at)?;
        cmds.push(terms);
    }
    for c in &cmds {
        if c.args.is_empty() {
            return err(c.at, "empty command in pipeline");
        }
    }
    Ok(Pipe {
        decl,
        assign,
        cmds,
        at,
    })
}

/// Terms of one command, up to `|`, `)` or the end.
fn parse_terms(toks: &[Token], pos: &mut usize, at: usize) -> Res<(Cmd, usize)> {
    let cmd_at = toks.get(*pos).map_or(at, |t| t.at);
    let mut args = Vec::new();
    while let Some(t) = toks.get(*pos) {
        let term = match &t.tok {
            Tok::Pipe | Tok::RParen => break,
            Tok::Dot => Term::Dot,
            Tok::Field(f) => Term::Field(f.clone()),
            Tok::Var(n, f) => Term::Var(n.clone(), f.clone()),
            Tok::Lit(v) => Term::Lit(v.clone()),
            Tok::Ident(name) => {
                if matches!(
                    name.as_str(),
                    "if" | "else"
                        | "end"
                        | "range"
                        | "with"
                        | "define"
                        | "template"
                        | "block"
                        | "break"
                        | "continue"
                ) {
                    return err(t.at, format!("unexpected `{name}` inside an action"));
                }
                Term::Func(name.clone())
            }
            Tok::LParen => {
                *pos += 1;
                let start = *pos;
                let mut depth = 0usize;
                let mut end = None;
                for (k, tk) in toks.iter().enumerate().skip(start) {
                    match tk.tok {
                        Tok::LParen => depth += 1,
                        Tok::RParen if depth == 0 => {
                            end = Some(k);
                            break;
                        }
                        Tok::RParen => depth -= 1,
                        _ => {}
                    }
                }
                let Some(end) = end else {
                    return err(t.at, "unclosed `(`");
                };
                let inner = parse_pipe(toks[start..end].to_vec(), t.at, false)?;
                *pos = end;
                // A field chain touching the `)`.
                let mut fields = Vec::new();
                if let Some(Token {
                    tok: Tok::Field(f),
                    spaced: false,
                    ..
                }) = toks.get(end + 1)
                {
                    fields = f.clone();
                    *pos = end + 1;
                }
                Term::Sub(Box::new(inner), fields)
            }
            Tok::Declare | Tok::Assign => return err(t.at, "unexpected `:=` or `=`"),
            Tok::Comma => return err(t.at, "unexpected `,`"),
        };
        args.push((term, t.at));
        *pos += 1;
    }
    Ok((Cmd { args, at: cmd_at }, *pos))
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/// Most rendered output accepted, in bytes.
const MAX_OUTPUT: usize = crate::yaml::MAX_SOURCE_BYTES;
/// Most loop iterations in one render (a `seq` of a billion stops here, not in memory).
const MAX_STEPS: u64 = 10_000_000;

enum Flow {
    Normal,
    /// A `break` or `continue` at this offset, on its way to its `range`.
    Break(usize),
    Continue(usize),
}

struct Exec<'s> {
    /// The topology, then its sub-templates.
    srcs: Vec<&'s str>,
    defs: Vec<Def>,
    out: String,
    map: OffsetMap,
    vars: Vec<(String, Val)>,
    steps: u64,
    /// The text being executed, and where in the topology the `template` call that left it is
    /// (what output from other texts maps to).
    cur: usize,
    site: usize,
    depth: usize,
}

/// Deepest nesting of `template` calls (a template calling itself stops here).
const MAX_TEMPLATE_DEPTH: usize = 64;

fn parse_source(text: &str, source: usize, defs: &mut Vec<Def>) -> Res<Vec<Node>> {
    let pieces = split(text).map_err(|e| in_source(e, source))?;
    let mut parser = Parser {
        pieces: pieces.into_iter(),
        source,
        defs,
    };
    let (nodes, stop) = parser.list().map_err(|e| in_source(e, source))?;
    match stop {
        Stop::Eof => Ok(nodes),
        Stop::End(at) => Err(in_source(
            TemplateError {
                at,
                message: "`{{ end }}` without an `if`, `range`, `with`, `define` or `block`".into(),
                source: None,
            },
            source,
        )),
        Stop::Else(at, _) => Err(in_source(
            TemplateError {
                at,
                message: "`{{ else }}` without an `if`, `range` or `with`".into(),
                source: None,
            },
            source,
        )),
    }
}

/// Attribute an error to `source` unless a more inner text already claimed it.
fn in_source(mut e: TemplateError, source: usize) -> TemplateError {
    e.source.get_or_insert(source);
    e
}

/// Render `src` with `data` as `.` and `$`; the text and its map back to `src`.
pub fn render(src: &str, data: Val) -> Result<(String, OffsetMap), TemplateError> {
    render_with(src, &[], data)
}

/// Render `src` with named sub-templates (containerlab's `clab_templates/*.gotmpl`: each file is
/// a template named by its file name, and may `define` more); output that comes from a
/// sub-template maps to the `template` action in `src` that called it. An error's `source` says
/// which text its offset is in (1 for the first sub-template, …).
pub fn render_with(
    src: &str,
    subtemplates: &[(String, String)],
    data: Val,
) -> Result<(String, OffsetMap), TemplateError> {
    let mut defs = Vec::new();
    for (i, (name, text)) in subtemplates.iter().enumerate() {
        let nodes = parse_source(text, i + 1, &mut defs)?;
        defs.push(Def {
            name: name.clone(),
            source: i + 1,
            nodes,
        });
    }
    let nodes = parse_source(src, 0, &mut defs)?;
    let mut srcs = vec![src];
    srcs.extend(subtemplates.iter().map(|(_, t)| t.as_str()));
    let mut ex = Exec {
        srcs,
        defs,
        out: String::new(),
        map: OffsetMap::default(),
        vars: vec![("$".into(), data.clone())],
        steps: 0,
        cur: 0,
        site: 0,
        depth: 0,
    };
    match ex.walk(&nodes, &data).map_err(|e| in_source(e, 0))? {
        Flow::Normal => Ok((ex.out, ex.map)),
        Flow::Break(at) | Flow::Continue(at) => {
            err(at, "`break` or `continue` outside a `range`").map_err(|e| in_source(e, 0))
        }
    }
}

impl Exec<'_> {
    fn emit(&mut self, text: &str, at: usize, copied: bool) -> Res<()> {
        // Output of a sub-template maps to the call in the topology.
        let (at, copied) = if self.cur == 0 {
            (at, copied)
        } else {
            (self.site, false)
        };
        if self.out.len() + text.len() > MAX_OUTPUT {
            return err(
                at,
                format!("the rendered topology exceeds {MAX_OUTPUT} bytes"),
            );
        }
        if copied {
            self.map.copied(self.out.len(), at, text.len());
        } else {
            self.map.inserted(self.out.len(), at, text.len());
        }
        self.out.push_str(text);
        Ok(())
    }

    fn walk(&mut self, nodes: &[Node], dot: &Val) -> Res<Flow> {
        for n in nodes {
            match n {
                Node::Text(src, s, e) => {
                    let t = self.srcs[*src][*s..*e].to_string();
                    self.emit(&t, *s, true)?;
                }
                Node::Template(name, pipe, at) => {
                    let d = match pipe {
                        Some(p) => self.pipe_value(p, dot)?,
                        None => Val::Missing,
                    };
                    self.call_template(name, *at, d)?;
                }
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        let s = display(&v);
                        self.emit(&s, p.at, false)?;
                    }
                }
                Node::If(branches, otherwise) | Node::With(branches, otherwise) => {
                    let with = matches!(n, Node::With(..));
                    let mark = self.vars.len();
                    let mut taken = false;
                    for (p, body) in branches {
                        let v = self.pipe(p, dot)?;
                        if v.truthy() {
                            taken = true;
                            let d = if with { v } else { dot.clone() };
                            let f = self.walk(body, &d)?;
                            self.vars.truncate(mark);
                            if !matches!(f, Flow::Normal) {
                                return Ok(f);
                            }
                            break;
                        }
                    }
                    if !taken {
                        if let Some(body) = otherwise {
                            let f = self.walk(body, dot)?;
                            self.vars.truncate(mark);
                            if !matches!(f, Flow::Normal) {
                                return Ok(f);
                            }
                        }
                    }
                    self.vars.truncate(mark);
                }
                Node::Range(p, body, otherwise) => {
                    let mark = self.vars.len();
                    let over = self.pipe_value(p, dot)?;
                    let items: Vec<(Val, Val)> = match over {
                        Val::Missing | Val::Nil => Vec::new(),
                        Val::Int(n) => (0..n.max(0)).map(|i| (Val::Int(i), Val::Int(i))).collect(),
                        Val::List(l) => l
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Val::Int(i as i64), v))
                            .collect(),
                        Val::Map(m) => m.into_iter().map(|(k, v)| (Val::Str(k), v)).collect(),
                        other => {
                            return err(
                                p.at,
                                format!("range can't iterate over a {}", other.type_name()),
                            )
                        }
                    };
                    if items.is_empty() {
                        if let Some(body) = otherwise {
                            self.walk(body, dot)?;
                        }
                    }
                    for (k, v) in items {
                        self.steps += 1;
                        if self.steps > MAX_STEPS {
                            return err(p.at, format!("more than {MAX_STEPS} loop iterations"));
                        }
                        let inner = self.vars.len();
                        match p.decl.as_slice() {
                            [] => {}
                            [e] => self.declare(e, v.clone(), p)?,
                            [i, e] => {
                                self.declare(i, k, p)?;
                                self.declare(e, v.clone(), p)?;
                            }
                            _ => return err(p.at, "range declares at most two variables"),
                        }
                        let f = self.walk(body, &v)?;
                        self.vars.truncate(inner);
                        if matches!(f, Flow::Break(_)) {
                            break;
                        }
                    }
                    self.vars.truncate(mark);
                }
                Node::Break(at) => return Ok(Flow::Break(*at)),
                Node::Continue(at) => return Ok(Flow::Continue(*at)),
            }
        }
        Ok(Flow::Normal)
    }

    /// Execute named template `name` with `dot`, in a scope of its own (`$` is `dot`).
    fn call_template(&mut self, name: &str, at: usize, dot: Val) -> Res<()> {
        let Some(i) = self.defs.iter().rposition(|d| d.name == name) else {
            return err(
                at,
                format!("no template named {name:?} (define it, or put it in clab_templates/)"),
            );
        };
        if self.depth >= MAX_TEMPLATE_DEPTH {
            return err(
                at,
                format!("templates call each other more than {MAX_TEMPLATE_DEPTH} deep"),
            );
        }
        let nodes = self.defs[i].nodes.clone();
        let source = self.defs[i].source;
        let saved = (
            std::mem::replace(&mut self.vars, vec![("$".into(), dot.clone())]),
            self.cur,
            self.site,
        );
        if self.cur == 0 {
            self.site = at;
        }
        self.cur = source;
        self.depth += 1;
        let r = self.walk(&nodes, &dot).map_err(|e| in_source(e, source));
        self.depth -= 1;
        (self.vars, self.cur, self.site) = saved;
        match r? {
            Flow::Normal => Ok(()),
            Flow::Break(b) | Flow::Continue(b) => {
                err(b, "`break` or `continue` outside a `range`").map_err(|e| in_source(e, source))
            }
        }
    }

    fn declare(&mut self, name: &str, v: Val, p: &Pipe) -> Res<()> {
        if p.assign {
            match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = v,
                None => return err(p.at, format!("undefined variable `{name}`")),
            }
        } else {
            self.vars.push((name.to_string(), v));
        }
        Ok(())
    }

    /// A pipeline's value, its declarations made (outside `range`).
    fn pipe(&mut self, p: &Pipe, dot: &Val) -> Res<Val> {
        let v = self.pipe_value(p, dot)?;
        match p.decl.as_slice() {
            [] => {}
            [name] => self.declare(name, v.clone(), p)?,
            _ => return err(p.at, "only `range` declares two variables"),
        }
        Ok(v)
    }

    /// A pipeline's value, without making its declarations (`range` makes them per item).
    fn pipe_value(&mut self, p: &Pipe, dot: &Val) -> Res<Val> {
        let mut last: Option<Val> = None;
        for c in &p.cmds {
            last = Some(self.command(c, dot, last)?);
        }
        Ok(last.unwrap_or(Val::Missing))
    }

    fn command(&mut self, c: &Cmd, dot: &Val, piped: Option<Val>) -> Res<Val> {
        let (first, first_at) = &c.args[0];
        if let Term::Func(name) = first {
            return self.call(name, *first_at, &c.args[1..], dot, piped);
        }
        if c.args.len() > 1 {
            return err(c.args[1].1, "only a function takes arguments");
        }
        if piped.is_some() {
            return err(*first_at, "a value can only be piped into a function");
        }
        self.term(first, *first_at, dot)
    }

    fn term(&mut self, t: &Term, at: usize, dot: &Val) -> Res<Val> {
        match t {
            Term::Dot => Ok(dot.clone()),
            Term::Field(f) => fields(dot.clone(), f, at),
            Term::Var(name, f) => {
                let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return err(at, format!("undefined variable `{name}`"));
                };
                fields(v.clone(), f, at)
            }
            Term::Lit(v) => Ok(v.clone()),
            Term::Func(name) => self.call(name, at, &[], dot, None),
            Term::Sub(p, f) => {
                let v = self.pipe_value(p, dot)?;
                fields(v, f, at)
            }
        }
    }

    fn call(
        &mut self,
        name: &str,
        at: usize,
        args: &[(Term, usize)],
        dot: &Val,
        piped: Option<Val>,
    ) -> Res<Val> {
        // `and` and `or` stop at the first deciding argument, as Go does.
        if name == "and" || name == "or" {
            let mut last = Val::Missing;
            let n = args.len() + usize::from(piped.is_some());
            if n == 0 {
                return err(at, format!("`{name}` needs at least one argument"));
            }
            for (t, a) in args {
                last = self.term(t, *a, dot)?;
                if last.truthy() != (name == "and") {
                    return Ok(last);
                }
            }
            if let Some(p) = piped {
                last = p;
            }
            return Ok(last);
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for (t, a) in args {
            vals.push(self.term(t, *a, dot)?);
        }
        vals.extend(piped);
        func(name, at, vals)
    }
}

/// `.a.b` of a value: a missing key is "no value"; a field of no value is no value.
fn fields(mut v: Val, chain: &[String], at: usize) -> Res<Val> {
    for f in chain {
        v = match v {
            Val::Map(mut m) => m.remove(f).unwrap_or(Val::Missing),
            Val::Missing | Val::Nil => Val::Missing,
            other => {
                return err(
                    at,
                    format!("can't evaluate field {f} of a {}", other.type_name()),
                )
            }
        };
    }
    Ok(v)
}

fn int_of(v: &Val, at: usize, what: &str) -> Res<i64> {
    match v {
        Val::Int(i) => Ok(*i),
        Val::Float(f) => Ok(*f as i64),
        Val::Bool(b) => Ok(i64::from(*b)),
        Val::Str(s) => {
            let t = s.replace(',', "");
            t.parse::<i64>()
                .ok()
                .or_else(|| t.parse::<f64>().ok().map(|f| f as i64))
                .map_or_else(|| err(at, format!("{what}: `{s}` is not a number")), Ok)
        }
        other => err(
            at,
            format!("{what}: expected a number, got a {}", other.type_name()),
        ),
    }
}

fn float_of(v: &Val, at: usize, what: &str) -> Res<f64> {
    match v {
        Val::Float(f) => Ok(*f),
        Val::Str(s) => s
            .replace(',', "")
            .parse::<f64>()
            .map_or_else(|_| err(at, format!("{what}: `{s}` is not a number")), Ok),
        other => int_of(other, at, what).map(|i| i as f64),
    }
}

fn is_float(v: &Val) -> bool {
    match v {
        Val::Float(_) => true,
        Val::Str(s) => s.parse::<i64>().is_err() && s.parse::<f64>().is_ok(),
        _ => false,
    }
}

fn arith(name: &str, at: usize, a: &Val, b: &Val) -> Res<Val> {
    if is_float(a) || is_float(b) || name == "div" {
        let (x, y) = (float_of(a, at, name)?, float_of(b, at, name)?);
        return Ok(Val::Float(match name {
            "add" => x + y,
            "sub" => x - y,
            "mul" => x * y,
            _ => {
                if y == 0.0 {
                    return err(at, "division by 0");
                }
                x / y
            }
        }));
    }
    let (x, y) = (int_of(a, at, name)?, int_of(b, at, name)?);
    let r = match name {
        "add" => x.checked_add(y),
        "sub" => x.checked_sub(y),
        "mul" => x.checked_mul(y),
        "idiv" | "rem" if y == 0 => return err(at, "division by 0"),
        "idiv" => x.checked_div(y),
        _ => x.checked_rem(y),
    };
    r.map(Val::Int)
        .map_or_else(|| err(at, format!("{name}: integer overflow")), Ok)
}

/// Go's `eq`/`lt` comparison of two basic values.
fn compare(at: usize, a: &Val, b: &Val) -> Res<std::cmp::Ordering> {
    use std::cmp::Ordering;
    Ok(match (a, b) {
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => {
            let (x, y) = (float_of(a, at, "compare")?, float_of(b, at, "compare")?);
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Val::Str(x), Val::Str(y)) => x.cmp(y),
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        _ => {
            return err(
                at,
                format!(
                    "incompatible types for comparison: {} and {}",
                    a.type_name(),
                    b.type_name()
                ),
            )
        }
    })
}

fn equal(at: usize, a: &Val, b: &Val) -> Res<bool> {
    match (a, b) {
        (Val::Missing | Val::Nil, Val::Missing | Val::Nil) => Ok(true),
        (Val::Missing | Val::Nil, _) | (_, Val::Missing | Val::Nil) => Ok(false),
        (Val::List(_) | Val::Map(_), _) | (_, Val::List(_) | Val::Map(_)) => {
            err(at, "lists and maps cannot be compared")
        }
        _ => Ok(compare(at, a, b)? == std::cmp::Ordering::Equal),
    }
}

fn str_of(v: &Val) -> String {
    display(v)
}

fn want(name: &str, at: usize, args: &[Val], n: std::ops::RangeInclusive<usize>) -> Res<()> {
    if n.contains(&args.len()) {
        Ok(())
    } else {
        err(
            at,
            format!(
                "`{name}` takes {} argument(s), got {}",
                if n.start() == n.end() {
                    n.start().to_string()
                } else {
                    format!("{} to {}", n.start(), n.end())
                },
                args.len()
            ),
        )
    }
}

/// The functions: Go's built-ins, containerlab's, and common helpers that topology templates use.
pub const FUNCTIONS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "print",
    "printf",
    "println",
    "add",
    "subtract",
    "sub",
    "mul",
    "div",
    "idiv",
    "rem",
    "mod",
    "seq",
    "ToJSON",
    "toJson",
    "ToJSONPretty",
    "default",
    "dict",
    "list",
    "join",
    "split",
    "upper",
    "lower",
    "trim",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "replace",
    "atoi",
    "toString",
    "strings.Split",
    "strings.ReplaceAll",
    "conv.Join",
    "conv.ToInt",
    "net.CIDRHost",
];

fn func(name: &str, at: usize, a: Vec<Val>) -> Res<Val> {
    match name {
        "not" => {
            want(name, at, &a, 1..=1)?;
            Ok(Val::Bool(!a[0].truthy()))
        }
        "len" => {
            want(name, at, &a, 1..=1)?;
            Ok(Val::Int(match &a[0] {
                Val::Str(s) => s.len() as i64,
                Val::List(l) => l.len() as i64,
                Val::Map(m) => m.len() as i64,
                Val::Missing | Val::Nil => 0,
                other => return err(at, format!("len of a {}", other.type_name())),
            }))
        }
        "index" => {
            want(name, at, &a, 1..=8)?;
            let mut v = a[0].clone();
            for k in &a[1..] {
                v = match (v, k) {
                    (Val::List(l), k) => {
                        let i = int_of(k, at, "index")?;
                        match usize::try_from(i).ok().and_then(|i| l.get(i)) {
                            Some(x) => x.clone(),
                            None => {
                                return err(
                                    at,
                                    format!("index {i} out of range (length {})", l.len()),
                                )
                            }
                        }
                    }
                    (Val::Map(m), k) => m.get(&str_of(k)).cloned().unwrap_or(Val::Missing),
                    (Val::Missing | Val::Nil, _) => return err(at, "index of nil"),
                    (other, _) => return err(at, format!("can't index a {}", other.type_name())),
                };
            }
            Ok(v)
        }
        // containerlab's `slice` makes a list of its arguments.
        "slice" | "list" => Ok(Val::List(a)),
        "eq" => {
            want(name, at, &a, 2..=16)?;
            for b in &a[1..] {
                if equal(at, &a[0], b)? {
                    return Ok(Val::Bool(true));
                }
            }
            Ok(Val::Bool(false))
        }
        "ne" => {
            want(name, at, &a, 2..=2)?;
            Ok(Val::Bool(!equal(at, &a[0], &a[1])?))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(name, at, &a, 2..=2)?;
            let o = compare(at, &a[0], &a[1])?;
            use std::cmp::Ordering::*;
            Ok(Val::Bool(match name {
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            }))
        }
        "print" => {
            // Go adds spaces between operands when neither is a string.
            let mut s = String::new();
            for (i, v) in a.iter().enumerate() {
                if i > 0 && !matches!(v, Val::Str(_)) && !matches!(a[i - 1], Val::Str(_)) {
                    s.push(' ');
                }
                s.push_str(&display(v));
            }
            Ok(Val::Str(s))
        }
        "println" => Ok(Val::Str(
            a.iter().map(display).collect::<Vec<_>>().join(" ") + "\n",
        )),
        "printf" => {
            want(name, at, &a, 1..=32)?;
            let Val::Str(f) = &a[0] else {
                return err(at, "printf's first argument is the format string");
            };
            Ok(Val::Str(printf(f, &a[1..], at)?))
        }
        "add" | "sub" | "subtract" | "mul" | "div" | "idiv" | "rem" | "mod" => {
            want(name, at, &a, 2..=2)?;
            let op = match name {
                "subtract" => "sub",
                "mod" => "rem",
                n => n,
            };
            arith(op, at, &a[0], &a[1])
        }
        "seq" => {
            want(name, at, &a, 1..=3)?;
            let n: Vec<i64> = a.iter().map(|v| int_of(v, at, "seq")).collect::<Res<_>>()?;
            let (start, end, mut step) = match n.as_slice() {
                [e] => (1, *e, 1),
                [s, e] => (*s, *e, 1),
                [s, e, st] => (*s, *e, *st),
                _ => unreachable!("checked by want"),
            };
            if step == 0 {
                return Ok(Val::List(Vec::new()));
            }
            if (end < start && step > 0) || (end > start && step < 0) {
                step = -step;
            }
            let count = (end - start) / step + 1;
            if count > MAX_STEPS as i64 {
                return err(at, format!("seq of {count} numbers"));
            }
            Ok(Val::List(
                (0..count).map(|i| Val::Int(start + i * step)).collect(),
            ))
        }
        "ToJSON" | "toJson" => {
            want(name, at, &a, 1..=1)?;
            Ok(Val::Str(a[0].to_json().to_string()))
        }
        "ToJSONPretty" => {
            want(name, at, &a, 3..=3)?;
            let (prefix, indent) = (str_of(&a[1]), str_of(&a[2]));
            let pretty = serde_json::to_string_pretty(&a[0].to_json()).unwrap_or_default();
            let body: Vec<String> = pretty
                .lines()
                .enumerate()
                .map(|(i, l)| {
                    let depth = l.len() - l.trim_start().len();
                    let line = format!("{}{}", indent.repeat(depth / 2), l.trim_start());
                    if i == 0 {
                        line
                    } else {
                        format!("{prefix}{line}")
                    }
                })
                .collect();
            Ok(Val::Str(body.join("\n")))
        }
        "default" => {
            want(name, at, &a, 1..=2)?;
            if a.len() == 1 {
                return Ok(a[0].clone());
            }
            Ok(if a[1].truthy() {
                a[1].clone()
            } else {
                a[0].clone()
            })
        }
        "dict" => {
            if !a.len().is_multiple_of(2) {
                return err(at, "`dict` takes key value pairs");
            }
            Ok(Val::Map(
                a.chunks(2)
                    .map(|kv| (str_of(&kv[0]), kv[1].clone()))
                    .collect(),
            ))
        }
        "join" | "conv.Join" => {
            want(name, at, &a, 2..=2)?;
            // sprig's `join SEP LIST`; conv.Join's `LIST SEP`.
            let (list, sep) = if name == "join" {
                (&a[1], &a[0])
            } else {
                (&a[0], &a[1])
            };
            let Val::List(l) = list else {
                return err(
                    at,
                    format!("`{name}` joins a list, not a {}", list.type_name()),
                );
            };
            Ok(Val::Str(
                l.iter().map(str_of).collect::<Vec<_>>().join(&str_of(sep)),
            ))
        }
        "split" | "strings.Split" => {
            want(name, at, &a, 2..=2)?;
            let (sep, s) = (str_of(&a[0]), str_of(&a[1]));
            Ok(Val::List(
                s.split(sep.as_str())
                    .map(|p| Val::Str(p.to_string()))
                    .collect(),
            ))
        }
        "strings.ReplaceAll" | "replace" => {
            want(name, at, &a, 3..=3)?;
            let (old, new, s) = (str_of(&a[0]), str_of(&a[1]), str_of(&a[2]));
            Ok(Val::Str(if old.is_empty() {
                s
            } else {
                s.replace(&old, &new)
            }))
        }
        "upper" | "lower" | "trim" | "toString" => {
            want(name, at, &a, 1..=1)?;
            let s = str_of(&a[0]);
            Ok(Val::Str(match name {
                "upper" => s.to_uppercase(),
                "lower" => s.to_lowercase(),
                "trim" => s.trim().to_string(),
                _ => s,
            }))
        }
        "contains" | "hasPrefix" | "hasSuffix" => {
            want(name, at, &a, 2..=2)?;
            let (needle, s) = (str_of(&a[0]), str_of(&a[1]));
            Ok(Val::Bool(match name {
                "contains" => s.contains(&needle),
                "hasPrefix" => s.starts_with(&needle),
                _ => s.ends_with(&needle),
            }))
        }
        "atoi" | "conv.ToInt" => {
            want(name, at, &a, 1..=1)?;
            int_of(&a[0], at, name).map(Val::Int)
        }
        "net.CIDRHost" => {
            want(name, at, &a, 2..=2)?;
            let host = int_of(&a[0], at, name)?;
            let prefix = str_of(&a[1]);
            let net: ipnet::IpNet = prefix.parse().map_or_else(
                |_| err(at, format!("net.CIDRHost: `{prefix}` is not a prefix")),
                Ok,
            )?;
            let addr = match net {
                ipnet::IpNet::V4(n) => {
                    let base = u32::from(n.network()) as i64;
                    let size = 1i64 << (32 - n.prefix_len());
                    let h = if host < 0 { size + host } else { host };
                    if !(0..size).contains(&h) {
                        return err(at, format!("net.CIDRHost: host {host} is outside {prefix}"));
                    }
                    std::net::Ipv4Addr::from((base + h) as u32).to_string()
                }
                ipnet::IpNet::V6(n) => {
                    let base = u128::from(n.network());
                    let bits = 128 - u32::from(n.prefix_len());
                    let h = u128::try_from(host).map_or_else(
                        |_| {
                            err(
                                at,
                                "net.CIDRHost: negative hosts of IPv6 prefixes are not supported",
                            )
                        },
                        Ok,
                    )?;
                    if bits < 128 && h >> bits != 0 {
                        return err(at, format!("net.CIDRHost: host {host} is outside {prefix}"));
                    }
                    std::net::Ipv6Addr::from(base + h).to_string()
                }
            };
            Ok(Val::Str(addr))
        }
        other => err(
            at,
            format!(
                "function `{other}` is not supported in topology templates (supported: {})",
                FUNCTIONS.join(", ")
            ),
        ),
    }
}

/// Go's `printf` for the verbs topology templates use: `%v %s %d %q %x %X %o %b %f %e %g %t %c %%`,
/// with flags `-+ 0#`, width and precision.
fn printf(f: &str, args: &[Val], at: usize) -> Res<String> {
    let mut out = String::new();
    let mut chars = f.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&fl) = chars.peek() {
            if "-+ 0#".contains(fl) {
                flags.push(fl);
                chars.next();
            } else {
                break;
            }
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next += 1;
        let body = match verb {
            'v' | 's' => match (arg, prec) {
                (Val::Float(x), Some(p)) if verb == 'v' => format!("{x:.p$}"),
                (v, Some(p)) => display(v).chars().take(p).collect(),
                (v, None) => display(v),
            },
            'q' => serde_json::Value::String(display(arg)).to_string(),
            'd' => match arg {
                Val::Int(i) => {
                    let s = i.to_string();
                    if flags.contains('+') && *i >= 0 {
                        format!("+{s}")
                    } else {
                        s
                    }
                }
                other => format!("%!d({}={})", other.type_name(), display(other)),
            },
            'x' | 'X' | 'o' | 'b' => match arg {
                Val::Int(i) => {
                    let s = match verb {
                        'x' => format!("{i:x}"),
                        'X' => format!("{i:X}"),
                        'o' => format!("{i:o}"),
                        _ => format!("{i:b}"),
                    };
                    if flags.contains('#') && verb != 'b' {
                        format!("{}{s}", if verb == 'o' { "0" } else { "0x" })
                    } else {
                        s
                    }
                }
                Val::Str(s) if verb != 'o' && verb != 'b' => s
                    .bytes()
                    .map(|b| {
                        if verb == 'x' {
                            format!("{b:02x}")
                        } else {
                            format!("{b:02X}")
                        }
                    })
                    .collect(),
                other => format!("%!{verb}({}={})", other.type_name(), display(other)),
            },
            'f' | 'F' | 'e' | 'g' => {
                let x = match arg {
                    Val::Float(x) => *x,
                    Val::Int(i) => {
                        out.push_str(&format!("%!{verb}(int={i})"));
                        continue;
                    }
                    other => {
                        out.push_str(&format!(
                            "%!{verb}({}={})",
                            other.type_name(),
                            display(other)
                        ));
                        continue;
                    }
                };
                match verb {
                    'f' | 'F' => format!("{x:.*}", prec.unwrap_or(6)),
                    'e' => go_float_e(x, prec.unwrap_or(6)),
                    _ => match prec {
                        Some(p) => format!("{:.*}", p.saturating_sub(1), x),
                        None => go_float(x),
                    },
                }
            }
            't' => match arg {
                Val::Bool(b) => b.to_string(),
                other => format!("%!t({}={})", other.type_name(), display(other)),
            },
            'c' => match arg {
                Val::Int(i) => u32::try_from(*i)
                    .ok()
                    .and_then(char::from_u32)
                    .map_or_else(|| "\u{fffd}".to_string(), |c| c.to_string()),
                other => format!("%!c({}={})", other.type_name(), display(other)),
            },
            other => {
                return err(at, format!("printf verb `%{other}` is not supported"));
            }
        };
        let w: usize = width.parse().unwrap_or(0);
        let len = body.chars().count();
        if len >= w {
            out.push_str(&body);
        } else if flags.contains('-') {
            out.push_str(&body);
            out.push_str(&" ".repeat(w - len));
        } else if flags.contains('0') && !matches!(verb, 's' | 'q' | 'v' | 't' | 'c') {
            let (sign, digits) = match body.strip_prefix(['-', '+']) {
                Some(d) => (&body[..1], d),
                None => ("", body.as_str()),
            };
            out.push_str(sign);
            out.push_str(&"0".repeat(w - len));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(w - len));
            out.push_str(&body);
        }
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|v| format!("{}={}", v.type_name(), display(v)))
            .collect();
        let _ = write!(out, "%!(EXTRA {})", extra.join(", "));
    }
    Ok(out)
}

fn go_float_e(x: f64, prec: usize) -> String {
    let s = format!("{x:.prec$e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = match e.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', e),
    };
    format!("{m}e{sign}{digits:0>2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(json: &str) -> Val {
        Val::from_json(&serde_json::from_str(json).unwrap())
    }

    fn r(t: &str, data: &str) -> String {
        render(t, vars(data))
            .unwrap_or_else(|e| panic!("{t}: {e:?}"))
            .0
    }

    fn e(t: &str) -> TemplateError {
        render(t, Val::Missing).unwrap_err()
    }

    #[test]
    fn text_without_actions_is_unchanged() {
        let t = "name: x\n# {not an action}\n";
        assert_eq!(r(t, "null"), t);
    }

    #[test]
    fn fields_variables_and_trimming() {
        let d = r#"{"spines": {"num": 2, "prefix": "spine"}, "name": "lab"}"#;
        assert_eq!(r("{{ .name }}-{{ $.spines.prefix }}", d), "lab-spine");
        assert_eq!(r("a  {{- .name -}}  b", d), "alabb");
        assert_eq!(
            r("{{ $x := .name }}{{ $x }}{{ $x = \"y\" }}{{ $x }}", d),
            "laby"
        );
        assert_eq!(r("{{ .missing }}", d), "<no value>");
        assert_eq!(r("{{ if .remap }}e1{{ else }}e2{{ end }}", "null"), "e2");
        assert_eq!(r("{{/* a comment */}}x{{- /* trimmed */ -}} y", d), "xy");
    }

    #[test]
    fn conditionals_and_ranges() {
        let d = r#"{"l": ["a", "b"], "m": {"z": 1, "a": 2}, "n": 3, "on": true}"#;
        assert_eq!(
            r("{{ range $i, $e := .l }}{{ $i }}={{ $e }} {{ end }}", d),
            "0=a 1=b "
        );
        assert_eq!(
            r("{{ range $k, $v := .m }}{{ $k }}{{ $v }}{{ end }}", d),
            "a2z1"
        );
        assert_eq!(r("{{ range .n }}{{ . }}{{ end }}", d), "012");
        assert_eq!(r("{{ range .none }}x{{ else }}empty{{ end }}", d), "empty");
        assert_eq!(
            r(
                "{{ range seq 1 5 }}{{ if eq . 3 }}{{ break }}{{ end }}{{ . }}{{ end }}",
                d
            ),
            "12"
        );
        assert_eq!(
            r(
                "{{ range seq 1 4 }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ . }}{{ end }}",
                d
            ),
            "134"
        );
        assert_eq!(
            r(
                "{{ if and .on (gt .n 2) }}y{{ else if .on }}m{{ else }}n{{ end }}",
                d
            ),
            "y"
        );
        assert_eq!(
            r("{{ if not .on }}y{{ else if lt .n 5 }}m{{ end }}", d),
            "m"
        );
        assert_eq!(r("{{ with .m }}{{ .a }}{{ end }}", d), "2");
        assert_eq!(r("{{ or .none \"dflt\" }}", d), "dflt");
    }

    #[test]
    fn functions() {
        let d = r#"{"n": 4, "ip": "10.0.0.0/24", "l": [1, 2]}"#;
        assert_eq!(r("{{ add .n 1 }} {{ sub 5 2 }} {{ mul 2 3 }} {{ div 7 2 }} {{ idiv 7 2 }} {{ rem 7 2 }}", d), "5 3 6 3.5 3 1");
        assert_eq!(
            r("{{ seq 3 }} {{ seq 2 4 }} {{ seq 8 4 2 }}", d),
            "[1 2 3] [2 3 4] [8 6 4]"
        );
        assert_eq!(
            r("{{ printf \"%s-%02d/%v %q %x\" \"e\" 7 .n \"a\" 255 }}", d),
            "e-07/4 \"a\" ff"
        );
        assert_eq!(r("{{ .n | printf \"%03d\" }}", d), "004");
        assert_eq!(
            r(
                "{{ index .l 1 }} {{ len .l }} {{ index (dict \"k\" \"v\") \"k\" }}",
                d
            ),
            "2 2 v"
        );
        assert_eq!(
            r("{{ toJson (dict \"a\" (list 1 \"x\")) }}", d),
            r#"{"a":[1,"x"]}"#
        );
        assert_eq!(
            r("{{ .none | default \"d\" }} {{ default \"d\" .n }}", d),
            "d 4"
        );
        assert_eq!(r("{{ net.CIDRHost 5 .ip }}", d), "10.0.0.5");
        assert_eq!(
            r(
                "{{ strings.Split \",\" \"a,b\" }} {{ conv.Join .l \"-\" }}",
                d
            ),
            "[a b] 1-2"
        );
        assert_eq!(
            r("{{ (index .l 0) }}{{ eq .n 1 2 4 }}{{ ne .n 4 }}", d),
            "1truefalse"
        );
    }

    #[test]
    fn unsupported_constructs_are_named_with_their_position() {
        let t = "a: 1\nb: {{ template \"x\" }}\n";
        let er = e(t);
        assert!(er.message.contains("no template named \"x\""), "{er:?}");
        assert_eq!(er.at, t.find("{{").unwrap());
        let t = "x: {{ sprigOnly 1 }}";
        let er = e(t);
        assert!(er.message.contains("function `sprigOnly`"), "{er:?}");
        assert_eq!(er.at, t.find("sprigOnly").unwrap());
        assert!(e("{{ if .x }}open").message.contains("missing `{{ end }}`"));
        assert!(e("{{ end }}").message.contains("without"));
        assert!(e("{{ .x ").message.contains("unclosed action"));
    }

    #[test]
    fn define_template_block_and_subtemplates() {
        let d = r#"{"n": 2, "name": "x"}"#;
        let t = "{{ define \"pair\" }}[{{ .a }}-{{ .b }}]{{ end }}{{ template \"pair\" dict \"a\" 1 \"b\" .n }} {{ block \"dflt\" .name }}<{{ . }}>{{ end }}";
        assert_eq!(r(t, d), "[1-2] <x>");
        let subs = vec![(
            "nodes.gotmpl".to_string(),
            "{{ range seq 1 . }}  n{{ . }}: {}\n{{ end }}".to_string(),
        )];
        let t = "nodes:\n{{ template \"nodes.gotmpl\" .n }}end\n";
        let (out, map) = render_with(t, &subs, vars(d)).unwrap();
        assert_eq!(out, "nodes:\n  n1: {}\n  n2: {}\nend\n");
        // Sub-template output maps to the call; text after it to itself.
        assert_eq!(map.to_input(out.find("n2").unwrap()), t.find("{{").unwrap());
        assert_eq!(
            map.to_input(out.find("end").unwrap()),
            t.find("end").unwrap()
        );
        // An error inside a sub-template names it.
        let subs = vec![("bad.gotmpl".to_string(), "x {{ nosuch }}".to_string())];
        let er = render_with("{{ template \"bad.gotmpl\" }}", &subs, Val::Missing).unwrap_err();
        assert_eq!((er.source, er.at), (Some(1), 5));
        // A template calling itself stops.
        let er = e("{{ define \"x\" }}{{ template \"x\" }}{{ end }}{{ template \"x\" }}");
        assert!(er.message.contains("more than 64 deep"), "{er:?}");
    }

    #[test]
    fn output_maps_back_to_the_template() {
        let t = "a: {{ .v }}\nb: x\n";
        let (out, map) = render(t, vars(r#"{"v": "long-value"}"#)).unwrap();
        assert_eq!(out, "a: long-value\nb: x\n");
        assert_eq!(map.to_input(out.find("b:").unwrap()), t.find("b:").unwrap());
        assert_eq!(
            map.to_input(out.find("value").unwrap()),
            t.find("{{").unwrap()
        );
    }
}

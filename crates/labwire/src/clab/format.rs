//! containerlab's output formats, byte for byte where tools parse them: `version`, `inspect` as
//! JSON, CSV and a table, `inspect interfaces`, `exec -f json`. JSON is indented and escaped as
//! Go's `encoding/json` does it (`json.MarshalIndent` with two spaces: `<`, `>`, `&` as `\u003c`…).

use std::fmt::Write as _;

use serde::Serialize;

use super::table::{self, Column, Style};

/// The containerlab release whose command line and output formats this personality follows.
pub const CLAB_VERSION: &str = "0.79.0";

/// `containerlab version` (`short`: the number alone; `json`: one JSON line).
pub fn version(short: bool, json: bool) -> String {
    let commit = format!("labwire-{}", env!("CARGO_PKG_VERSION"));
    let date = "unknown";
    let source = "labwire (containerlab command line)";
    let notes = format!("https://containerlab.dev/rn/{}", release_slug(CLAB_VERSION));
    if short {
        return format!("{CLAB_VERSION}\n");
    }
    if json {
        #[derive(Serialize)]
        struct V<'a> {
            version: &'a str,
            commit: &'a str,
            date: &'a str,
            repository: &'a str,
            #[serde(rename = "releaseNotes")]
            release_notes: &'a str,
        }
        let v = V {
            version: CLAB_VERSION,
            commit: &commit,
            date,
            repository: source,
            release_notes: &notes,
        };
        return format!(
            "{}\n",
            go_escape(&serde_json::to_string(&v).unwrap_or_default())
        );
    }
    format!(
        "    version: {CLAB_VERSION}\n     commit: {commit}\n       date: {date}\n     source: {source}\n rel. notes: {notes}\n"
    )
}

/// `0.79.0` → `0.79/`, `0.79.1` → `0.79/#0791` (the release-notes anchor).
fn release_slug(v: &str) -> String {
    let parts: Vec<&str> = v.split('.').collect();
    match parts.as_slice() {
        [major, minor, "0"] => format!("{major}.{minor}/"),
        [major, minor, patch] => format!("{major}.{minor}/#{major}{minor}{patch}"),
        _ => String::new(),
    }
}

/// One node as containerlab's `inspect` lists it (its keys, in its order; empty values left out).
#[derive(Debug, Clone, Serialize)]
pub struct Details {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lab_name: String,
    #[serde(rename = "labPath", skip_serializing_if = "String::is_empty")]
    pub lab_path: String,
    #[serde(rename = "absLabPath", skip_serializing_if = "String::is_empty")]
    pub abs_lab_path: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub container_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub state: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ipv4_address: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub owner: String,
}

impl From<&lab::inspect::Row> for Details {
    fn from(r: &lab::inspect::Row) -> Details {
        Details {
            lab_name: r.lab_name.clone(),
            lab_path: r.lab_path.clone(),
            abs_lab_path: r.abs_lab_path.clone(),
            name: r.name.clone(),
            container_id: r.container_id.clone(),
            image: r.image.clone(),
            kind: r.kind.clone(),
            group: r.group.clone(),
            // A node stopped by `labwire stop` is what the engine calls an exited container.
            state: match r.state.as_str() {
                "stopped" => "exited".into(),
                s => s.to_string(),
            },
            status: match r.state.as_str() {
                "stopped" => "Exited".into(),
                _ => health_status(&r.status),
            },
            ipv4_address: r.ipv4_address.clone(),
            ipv6_address: r.ipv6_address.clone(),
            owner: r.owner.clone(),
        }
    }
}

/// The status containerlab shows: the health alone when there is one (`healthy`, `unhealthy`,
/// `health: starting`), else the engine's words (`Up 3 minutes`).
fn health_status(status: &str) -> String {
    if status.contains("unhealthy") {
        "unhealthy".into()
    } else if status.contains("health: starting") {
        "health: starting".into()
    } else if status.contains("healthy") {
        "healthy".into()
    } else {
        status.to_string()
    }
}

/// Rows sorted as containerlab sorts them: by lab, then by name.
pub fn sorted(labs: &[(String, Vec<lab::inspect::Row>)]) -> Vec<Details> {
    let mut out: Vec<Details> = labs
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(Details::from))
        .collect();
    out.sort_by(|a, b| (&a.lab_name, &a.name).cmp(&(&b.lab_name, &b.name)));
    out
}

/// `inspect -f json`: `{ "<lab>": [ … ] }`, labs in key order.
pub fn inspect_json(rows: &[Details]) -> String {
    let mut by_lab: std::collections::BTreeMap<&str, Vec<&Details>> = Default::default();
    for r in rows {
        by_lab.entry(&r.lab_name).or_default().push(r);
    }
    if by_lab.is_empty() {
        return "{}\n".into();
    }
    format!("{}\n", go_json(&by_lab))
}

/// The CSV header `inspect -f csv` prints (also alone, when nothing is deployed).
pub const CSV_HEADER: &str = "lab_name,labPath,absLabPath,name,container_id,image,kind,state,status,ipv4_address,ipv6_address,owner\n";

/// `inspect -f csv`: values as they are, unquoted, as containerlab prints them.
pub fn inspect_csv(rows: &[Details]) -> String {
    let mut out = String::from(CSV_HEADER);
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            r.lab_name,
            r.lab_path,
            r.abs_lab_path,
            r.name,
            r.container_id,
            r.image,
            r.kind,
            r.state,
            r.status,
            r.ipv4_address,
            r.ipv6_address,
            r.owner
        );
    }
    out
}

/// `inspect` as a table: containerlab's columns (`--all` adds topology and lab, merged over a
/// lab's rows; `--wide` adds the owner and puts each node on one line, merging nothing).
pub fn inspect_table(rows: &[Details], all: bool, wide: bool, style: Style) -> String {
    let mut header: Vec<&str> = Vec::new();
    let merged = Column {
        merge: !wide,
        middle: true,
        numeric: false,
    };
    let mut columns = Vec::new();
    if all {
        header.extend(["Topology", "Lab Name"]);
        columns.extend([merged, merged]);
    }
    if wide {
        header.push("Owner");
        columns.push(Column::default());
    }
    header.extend(["Name", "Kind/Image", "State", "IPv4/6 Address"]);
    // Without --all, the node name is the merged column (names differ, so nothing merges).
    columns.push(if all { Column::default() } else { merged });
    let sep = if wide { " " } else { "\n" };
    let mut body = Vec::new();
    for r in rows {
        let mut row = Vec::new();
        if all {
            row.push(r.lab_path.clone());
            row.push(r.lab_name.clone());
        }
        if wide {
            row.push(r.owner.clone());
        }
        // Only a health state is shown beside the state.
        let health = if r.status.contains("health") {
            format!("({})", r.status)
        } else {
            String::new()
        };
        row.push(r.name.clone());
        row.push(format!("{}{sep}{}", r.kind, r.image));
        row.push(format!("{}{sep}{health}", r.state));
        row.push(format!(
            "{}{sep}{}",
            without_prefix(&r.ipv4_address),
            without_prefix(&r.ipv6_address)
        ));
        body.push(row);
    }
    table::render(style, &header, &columns, &body)
}

/// An address without its prefix length (`N/A` stays as it is).
fn without_prefix(addr: &str) -> &str {
    if addr.contains("N/A") {
        return addr;
    }
    match addr.split_once('/') {
        Some((a, p)) if !p.contains('/') => a,
        _ => addr,
    }
}

/// `inspect interfaces -f json`.
pub fn interfaces_json(nodes: &[lab::inspect::NodeInterfaces]) -> String {
    format!("{}\n", go_json(&nodes))
}

/// `inspect interfaces` as a table: a node's name merged over its interfaces, index and MTU
/// aligned right, the state in lower case and coloured (up green, down red, else yellow).
pub fn interfaces_table(nodes: &[lab::inspect::NodeInterfaces], style: Style) -> String {
    let header = [
        "Container Name",
        "Name",
        "Alias",
        "MAC",
        "Index",
        "MTU",
        "Type",
        "State",
    ];
    let numeric = Column {
        numeric: true,
        ..Column::default()
    };
    let columns = [
        Column {
            merge: true,
            ..Column::default()
        },
        Column::default(),
        Column::default(),
        Column::default(),
        numeric,
        numeric,
    ];
    let mut body = Vec::new();
    for n in nodes {
        for f in &n.interfaces {
            let state = f.state.to_lowercase();
            let colour = if state == "up" {
                "\x1b[32m"
            } else if state.contains("down") {
                "\x1b[31m"
            } else {
                "\x1b[33m"
            };
            body.push(vec![
                n.name.clone(),
                f.name.clone(),
                if f.alias.is_empty() {
                    "N/A".into()
                } else {
                    f.alias.clone()
                },
                f.mac.clone(),
                f.ifindex.to_string(),
                f.mtu.to_string(),
                f.kind.clone(),
                style.paint(&state, colour),
            ]);
        }
    }
    table::render(style, &header, &columns, &body)
}

/// One command's result as `exec -f json` shows it.
#[derive(Serialize)]
pub struct ExecResult {
    pub cmd: Vec<String>,
    #[serde(rename = "return-code")]
    pub return_code: i32,
    /// Standard output: embedded as JSON when it is JSON, else a string.
    pub stdout: StdoutValue,
    pub stderr: String,
}

/// Standard output that is embedded verbatim when it is valid JSON, as containerlab does.
pub struct StdoutValue(pub String);

impl Serialize for StdoutValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if serde_json::from_str::<serde::de::IgnoredAny>(&self.0).is_ok() {
            // Keep the producer's key order and number forms: embed the text itself.
            match serde_json::value::RawValue::from_string(self.0.trim().to_string()) {
                Ok(raw) => raw.serialize(s),
                Err(_) => s.serialize_str(&self.0),
            }
        } else {
            s.serialize_str(&self.0)
        }
    }
}

/// `exec -f json`: `{ "<container>": [ results… ] }`, containers in key order.
pub fn exec_json(results: &std::collections::BTreeMap<String, Vec<ExecResult>>) -> String {
    format!("{}\n", go_json(results))
}

/// A value as Go's `json.MarshalIndent(v, "", "  ")` writes it.
pub fn go_json<T: Serialize + ?Sized>(v: &T) -> String {
    let compact = serde_json::to_string(v).unwrap_or_default();
    go_escape(&go_indent(&compact))
}

/// Re-indent JSON text (compact or not) the way Go's `json.Indent` does: two spaces, `": "`,
/// empty objects and arrays kept as `{}` and `[]`.
pub fn go_indent(src: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut chars = src.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            ' ' | '\t' | '\n' | '\r' => {}
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    chars.next();
                }
                let close = if c == '{' { '}' } else { ']' };
                if chars.peek() == Some(&close) {
                    out.push(close);
                    chars.next();
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            _ => out.push(c),
        }
    }
    out
}

/// Go escapes `<`, `>`, `&`, U+2028 and U+2029 in JSON strings (they can only occur inside
/// strings, so the whole text can be rewritten).
pub fn go_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(name: &str, status: &str) -> Details {
        Details {
            lab_name: "vlan".into(),
            lab_path: "../../lab/vlan.clab.yml".into(),
            abs_lab_path: "/root/lab/vlan.clab.yml".into(),
            name: name.into(),
            container_id: "2c70173f3f41".into(),
            image: "ghcr.io/srl-labs/alpine".into(),
            kind: "linux".into(),
            group: String::new(),
            state: "running".into(),
            status: status.into(),
            ipv4_address: "172.20.20.4/24".into(),
            ipv6_address: "3fff:172:20:20::4/64".into(),
            owner: "root".into(),
        }
    }

    /// The shape of containerlab's documented `inspect --name vlan -f json` (docs/cmd/inspect).
    #[test]
    fn inspect_json_is_containerlab_s() {
        let got = inspect_json(&[details("clab-vlan-client1", "Up 4 hours")]);
        let want = r#"{
  "vlan": [
    {
      "lab_name": "vlan",
      "labPath": "../../lab/vlan.clab.yml",
      "absLabPath": "/root/lab/vlan.clab.yml",
      "name": "clab-vlan-client1",
      "container_id": "2c70173f3f41",
      "image": "ghcr.io/srl-labs/alpine",
      "kind": "linux",
      "state": "running",
      "status": "Up 4 hours",
      "ipv4_address": "172.20.20.4/24",
      "ipv6_address": "3fff:172:20:20::4/64",
      "owner": "root"
    }
  ]
}
"#;
        assert_eq!(got, want);
        assert_eq!(inspect_json(&[]), "{}\n");
    }

    /// A group shows between kind and state, as containerlab's field order has it.
    #[test]
    fn inspect_json_puts_group_after_kind() {
        let mut d = details("clab-vlan-a", "Up 1 second");
        d.group = "leaves".into();
        let got = inspect_json(&[d]);
        let kind = got.find("\"kind\"").unwrap();
        let group = got.find("\"group\": \"leaves\"").unwrap();
        let state = got.find("\"state\"").unwrap();
        assert!(kind < group && group < state, "{got}");
    }

    #[test]
    fn status_shows_health_alone_when_there_is_one() {
        assert_eq!(health_status("Up 3 minutes (healthy)"), "healthy");
        assert_eq!(health_status("Up 3 minutes (unhealthy)"), "unhealthy");
        assert_eq!(
            health_status("Up 2 seconds (health: starting)"),
            "health: starting"
        );
        assert_eq!(health_status("Up 3 minutes"), "Up 3 minutes");
    }

    #[test]
    fn inspect_csv_is_containerlab_s() {
        let got = inspect_csv(&[details("clab-vlan-client1", "Up 47 seconds")]);
        assert_eq!(
            got,
            "lab_name,labPath,absLabPath,name,container_id,image,kind,state,status,ipv4_address,ipv6_address,owner\n\
             vlan,../../lab/vlan.clab.yml,/root/lab/vlan.clab.yml,clab-vlan-client1,2c70173f3f41,ghcr.io/srl-labs/alpine,linux,running,Up 47 seconds,172.20.20.4/24,3fff:172:20:20::4/64,root\n"
        );
    }

    #[test]
    fn version_lines_parse_as_containerlab_s() {
        let v = version(false, false);
        // netlab reads the second word of every line holding `version`.
        let words: Vec<&str> = v
            .lines()
            .filter(|l| l.contains("version"))
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        assert_eq!(words, [CLAB_VERSION]);
        assert!(
            v.starts_with("    version: 0.79.0\n     commit: labwire-"),
            "{v}"
        );
        assert!(
            v.contains(" rel. notes: https://containerlab.dev/rn/0.79/\n"),
            "{v}"
        );
        assert_eq!(version(true, false), "0.79.0\n");
        let j: serde_json::Value = serde_json::from_str(&version(false, true)).unwrap();
        let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["commit", "date", "releaseNotes", "repository", "version"]
        );
        assert_eq!(release_slug("0.79.1"), "0.79/#0791");
    }

    /// containerlab's documented `exec -f json`: JSON stdout embedded as an object, other stdout a
    /// string; keys in Go's order; HTML characters escaped as Go does.
    #[test]
    fn exec_json_embeds_json_stdout() {
        let mut m = std::collections::BTreeMap::new();
        m.insert(
            "clab-x-b".to_string(),
            vec![ExecResult {
                cmd: vec!["echo".into(), "a<b".into()],
                return_code: 0,
                stdout: StdoutValue("a<b\n".into()),
                stderr: String::new(),
            }],
        );
        m.insert(
            "clab-x-a".to_string(),
            vec![ExecResult {
                cmd: vec!["cat".into(), "/j".into()],
                return_code: 0,
                stdout: StdoutValue("{\"z\": 1, \"a\": [1, 2], \"e\": {}}\n".into()),
                stderr: String::new(),
            }],
        );
        let got = exec_json(&m);
        let want = r#"{
  "clab-x-a": [
    {
      "cmd": [
        "cat",
        "/j"
      ],
      "return-code": 0,
      "stdout": {
        "z": 1,
        "a": [
          1,
          2
        ],
        "e": {}
      },
      "stderr": ""
    }
  ],
  "clab-x-b": [
    {
      "cmd": [
        "echo",
        "a\u003cb"
      ],
      "return-code": 0,
      "stdout": "a\u003cb\n",
      "stderr": ""
    }
  ]
}
"#;
        assert_eq!(got, want);
    }

    /// `inspect` of one lab: containerlab's columns, kind over image, the health under the
    /// state, addresses without their prefix length.
    #[test]
    fn inspect_table_of_one_lab_is_containerlab_s() {
        let mut b = details("clab-vlan-srv", "healthy");
        b.ipv4_address = "172.20.20.10/24".into();
        let rows = [details("clab-vlan-client1", "Up 4 hours"), b];
        let got = inspect_table(&rows, false, false, Style::plain());
        let want = "\
╭───────────────────┬─────────────────────────┬───────────┬───────────────────╮
│        Name       │        Kind/Image       │   State   │   IPv4/6 Address  │
├───────────────────┼─────────────────────────┼───────────┼───────────────────┤
│ clab-vlan-client1 │ linux                   │ running   │ 172.20.20.4       │
│                   │ ghcr.io/srl-labs/alpine │           │ 3fff:172:20:20::4 │
├───────────────────┼─────────────────────────┼───────────┼───────────────────┤
│ clab-vlan-srv     │ linux                   │ running   │ 172.20.20.10      │
│                   │ ghcr.io/srl-labs/alpine │ (healthy) │ 3fff:172:20:20::4 │
╰───────────────────┴─────────────────────────┴───────────┴───────────────────╯
";
        assert_eq!(got, want);
    }

    /// `inspect --all`: topology and lab name on a lab's first row, the rule open across them
    /// for the lab's other rows.
    #[test]
    fn inspect_table_of_all_labs_merges_each_lab() {
        let mut other = details("clab-ab-x", "Up 1 second");
        other.lab_name = "ab".into();
        other.lab_path = "ab.clab.yml".into();
        other.ipv6_address = "N/A".into();
        let rows = [
            other,
            details("clab-vlan-client1", "Up 4 hours"),
            details("clab-vlan-client2", "Up 4 hours"),
        ];
        let got = inspect_table(&rows, true, false, Style::plain());
        let want = "\
╭─────────────────────────┬──────────┬───────────────────┬─────────────────────────┬─────────┬───────────────────╮
│         Topology        │ Lab Name │        Name       │        Kind/Image       │  State  │   IPv4/6 Address  │
├─────────────────────────┼──────────┼───────────────────┼─────────────────────────┼─────────┼───────────────────┤
│ ab.clab.yml             │ ab       │ clab-ab-x         │ linux                   │ running │ 172.20.20.4       │
│                         │          │                   │ ghcr.io/srl-labs/alpine │         │ N/A               │
├─────────────────────────┼──────────┼───────────────────┼─────────────────────────┼─────────┼───────────────────┤
│ ../../lab/vlan.clab.yml │ vlan     │ clab-vlan-client1 │ linux                   │ running │ 172.20.20.4       │
│                         │          │                   │ ghcr.io/srl-labs/alpine │         │ 3fff:172:20:20::4 │
│                         │          ├───────────────────┼─────────────────────────┼─────────┼───────────────────┤
│                         │          │ clab-vlan-client2 │ linux                   │ running │ 172.20.20.4       │
│                         │          │                   │ ghcr.io/srl-labs/alpine │         │ 3fff:172:20:20::4 │
╰─────────────────────────┴──────────┴───────────────────┴─────────────────────────┴─────────┴───────────────────╯
";
        assert_eq!(got, want);
    }

    /// `inspect --all --wide`: the owner too, each node on one line, nothing merged.
    #[test]
    fn inspect_table_wide_puts_a_node_on_one_line() {
        let rows = [
            details("clab-vlan-client1", "Up 4 hours"),
            details("clab-vlan-client2", "unhealthy"),
        ];
        let got = inspect_table(&rows, true, true, Style::plain());
        let want = "\
╭─────────────────────────┬──────────┬───────┬───────────────────┬───────────────────────────────┬─────────────────────┬───────────────────────────────╮
│         Topology        │ Lab Name │ Owner │        Name       │           Kind/Image          │        State        │         IPv4/6 Address        │
├─────────────────────────┼──────────┼───────┼───────────────────┼───────────────────────────────┼─────────────────────┼───────────────────────────────┤
│ ../../lab/vlan.clab.yml │ vlan     │ root  │ clab-vlan-client1 │ linux ghcr.io/srl-labs/alpine │ running             │ 172.20.20.4 3fff:172:20:20::4 │
├─────────────────────────┼──────────┼───────┼───────────────────┼───────────────────────────────┼─────────────────────┼───────────────────────────────┤
│ ../../lab/vlan.clab.yml │ vlan     │ root  │ clab-vlan-client2 │ linux ghcr.io/srl-labs/alpine │ running (unhealthy) │ 172.20.20.4 3fff:172:20:20::4 │
╰─────────────────────────┴──────────┴───────┴───────────────────┴───────────────────────────────┴─────────────────────┴───────────────────────────────╯
";
        assert_eq!(got, want);
        // On a terminal the header is bold; the body never is.
        let bold = inspect_table(&rows, true, true, Style::bold());
        assert!(bold.starts_with("\x1b[1m╭\x1b[0m\x1b[1m───"), "{bold}");
        assert!(bold.contains("\x1b[1m Owner \x1b[0m"), "{bold}");
        let body: Vec<&str> = bold.lines().skip(3).collect();
        assert!(body.iter().all(|l| !l.contains('\x1b')), "{bold}");
    }

    #[test]
    fn interfaces_table_merges_the_node_and_aligns_numbers_right() {
        let iface = |name: &str, idx: u32, state: &str| lab::inspect::Interface {
            name: name.into(),
            alias: String::new(),
            mac: "aa:c1:ab:00:00:01".into(),
            ifindex: idx,
            mtu: 9500,
            kind: "veth".into(),
            state: state.into(),
        };
        let nodes = [lab::inspect::NodeInterfaces {
            name: "clab-x-a".into(),
            interfaces: vec![iface("eth0", 2, "up"), iface("eth1", 10, "down")],
        }];
        let got = interfaces_table(&nodes, Style::plain());
        let want = "\
╭────────────────┬──────┬───────┬───────────────────┬───────┬──────┬──────┬───────╮
│ Container Name │ Name │ Alias │        MAC        │ Index │  MTU │ Type │ State │
├────────────────┼──────┼───────┼───────────────────┼───────┼──────┼──────┼───────┤
│ clab-x-a       │ eth0 │ N/A   │ aa:c1:ab:00:00:01 │     2 │ 9500 │ veth │ up    │
│                ├──────┼───────┼───────────────────┼───────┼──────┼──────┼───────┤
│                │ eth1 │ N/A   │ aa:c1:ab:00:00:01 │    10 │ 9500 │ veth │ down  │
╰────────────────┴──────┴───────┴───────────────────┴───────┴──────┴──────┴───────╯
";
        assert_eq!(got, want);
        let coloured = interfaces_table(&nodes, Style::bold());
        assert!(coloured.contains("│ \x1b[32mup\x1b[0m    │"), "{coloured}");
    }
}

//! Property tests: `load` never panics, whatever the text; environment expansion never panics.
//!
//! Inputs are arbitrary strings and valid topologies mutated by byte flips, deletions and insertions
//! of YAML's structural characters. Kept to a few hundred cases so `cargo test` stays fast.

use std::path::Path;

use proptest::prelude::*;
use topology::{load, Options, Source};

/// A valid topology that exercises most of the schema, to mutate.
const SEED: &str = r#"name: ${LAB:-prop}
prefix: __lab-name
mgmt:
  ipv4-subnet: 10.5.0.0/24
  ipv6-subnet: 3fff:5::/64
topology:
  defaults:
    kind: linux
    binds: [/tmp:/tmp:ro]
    env: {A: "1"}
  kinds:
    linux:
      image: debian:${TAG:=12}
  groups:
    g:
      env: {B: __clabNodeName__}
  nodes:
    a:
      group: g
      mgmt-ipv4: 10.5.0.10
      ports: ["8080:80/tcp"]
      memory: 512m
      stages:
        create:
          wait-for:
            - node: b
              stage: create
    b: {kind: linux, network-mode: none}
    br: {kind: bridge}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
      ipv4: [10.0.0.0/31, 10.0.0.1/31]
    - type: veth
      endpoints:
        - {node: a, interface: eth2, mac: "02:00:00:00:00:0a"}
        - {node: br, interface: br-a}
    - type: vxlan
      endpoint: {node: b, interface: eth3}
      remote: 192.0.2.1
      vni: 10
    - endpoints: ["a:eth4", "host:a-eth4"]
"#;

fn env(k: &str) -> Option<String> {
    (k == "TAG").then(|| "bookworm".to_string())
}

fn no_files(_: &Path) -> std::io::Result<String> {
    Ok("X=1\n".into())
}

fn load_text(text: &str) {
    let src = Source::from_text("p.clab.yml", text, Path::new("/labs"));
    let opts = Options {
        env: &env,
        runtime: None,
        read_file: &no_files,
    };
    match load(&src, &opts) {
        Ok(l) => {
            // Rendering is part of every run of the binary: it must not panic either.
            let _ = l.warnings.render(true);
            let _ = topology::summary(&l.lab);
        }
        Err(e) => {
            assert!(e.0.has_errors());
            let _ = e.0.render(true);
            let _ = e.to_string();
        }
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, &'static str),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), 1usize..8).prop_map(|(i, n)| Edit::Delete(i, n)),
        (
            any::<usize>(),
            prop::sample::select(vec![
                ":", "-", "\t", "{", "}", "[", "- ", ": ", "\n", "${", "&a ", "*a", "<<: "
            ])
        )
            .prop_map(|(i, s)| Edit::Insert(i, s)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for e in edits {
        let len = bytes.len().max(1);
        match *e {
            Edit::Flip(i, b) => {
                if !bytes.is_empty() {
                    bytes[i % len] ^= b;
                }
            }
            Edit::Delete(i, n) => {
                if !bytes.is_empty() {
                    let at = i % len;
                    let end = (at + n).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
            Edit::Insert(i, s) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, s.bytes());
            }
        }
    }
    // `load` takes text; a flip may break UTF-8, so keep what a file reader would have given.
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn the_seed_is_valid() {
    let src = Source::from_text("p.clab.yml", SEED, Path::new("/labs"));
    let opts = Options {
        env: &env,
        runtime: None,
        read_file: &no_files,
    };
    let l = load(&src, &opts).unwrap_or_else(|e| panic!("{}", e.0.render(false)));
    assert_eq!(l.lab.nodes.len(), 3);
    assert_eq!(l.lab.links.len(), 4);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn load_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        load_text(&text);
    }

    #[test]
    fn load_never_panics_on_yaml_like_text(text in "[a-z0-9:\\-\\[\\]{}\"' \\n\\t$_.#&*!|>]{0,300}") {
        load_text(&text);
    }

    #[test]
    fn load_never_panics_on_mutated_topologies(edits in prop::collection::vec(edit(), 1..6)) {
        load_text(&apply(SEED, &edits));
    }

    #[test]
    fn env_expansion_never_panics(text in "([$]|[{]|[}]|[:=?+\\-]|[A-Z_]{1,3}|\\PC){0,40}") {
        let lookup = |k: &str| match k {
            "A" => Some("value".to_string()),
            "E" => Some(String::new()),
            _ => None,
        };
        let mut e = topology::env::Env::new(&lookup);
        let _ = e.expand(&text);
        let _ = e.expand(&text);
    }

    #[test]
    fn env_expansion_never_panics_on_any_string(text in any::<String>()) {
        let lookup = |_: &str| None;
        let _ = topology::env::Env::new(&lookup).expand(&text);
    }
}

#[test]
fn non_ascii_after_a_variable_name_is_left_as_written() {
    let lookup = |_: &str| Some("v".to_string());
    let mut e = topology::env::Env::new(&lookup);
    assert_eq!(e.expand("${Aé}").unwrap(), "${Aé}");
    assert_eq!(e.expand("${A:é}").unwrap(), "${A:é}");
    assert_eq!(e.expand("x${A}é").unwrap(), "xvé");
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    let n = 100_000;
    load_text(&format!("name: t\nx: {}{}\n", "[".repeat(n), "]".repeat(n)));
    load_text(&format!("name: t\nx: {}\n", "{a: ".repeat(n)));
    let mut nested = String::new();
    for _ in 0..n {
        nested.push_str("${U:-");
    }
    nested.push_str(&"}".repeat(n));
    let lookup = |_: &str| None;
    let _ = topology::env::Env::new(&lookup).expand(&nested);
}

#[test]
fn extreme_numbers_are_errors_not_overflows() {
    let text = "name: t\nmgmt:\n  ipv6-subnet: \"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128\"\ntopology:\n  nodes:\n    a:\n      healthcheck:\n        test: \"true\"\n        interval: 18446744073709551615m\n      startup-delay: 99999999999999999999\n      memory: 99999999999999999999999t\n";
    let src = Source::from_text("p.clab.yml", text, Path::new("/labs"));
    let opts = Options {
        env: &env,
        runtime: None,
        read_file: &no_files,
    };
    let err = load(&src, &opts).expect_err("out-of-range numbers are errors");
    let out = err.0.render(false);
    assert!(out.contains("p.clab.yml:9:19: error: healthcheck interval `18446744073709551615m` is not a duration"), "{out}");
    assert!(out.contains("p.clab.yml:10:22: error:"), "{out}");
    assert!(
        out.contains("p.clab.yml:11:15: error: memory size"),
        "{out}"
    );
}

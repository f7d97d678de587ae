//! One test per error class: the rendered message names the offending token and points at the right
//! `file:line:col`. Also: all errors surface in one load, a valid file has none, and a field the
//! native runtime ignores draws exactly one one-line warning.

use std::path::Path;

use topology::{load, Diagnostics, Options, Source};

const FILE: &str = "t.clab.yml";

fn no_env(_: &str) -> Option<String> {
    None
}

fn no_files(p: &Path) -> std::io::Result<String> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{} (test)", p.display()),
    ))
}

fn run(text: &str) -> Result<topology::Loaded, Diagnostics> {
    let src = Source::from_text(FILE, text, Path::new("/labs"));
    let opts = Options {
        env: &no_env,
        runtime: None,
        read_file: &no_files,
    };
    load(&src, &opts).map_err(|e| e.0)
}

/// The rendered diagnostics of a topology that must fail.
fn errors(text: &str) -> String {
    match run(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(d) => {
            assert!(d.has_errors());
            d.render(false)
        }
    }
}

/// Assert one error line sits at `line:col` and mentions every token; returns that line and its help.
#[track_caller]
fn expect_error(text: &str, line: u32, col: u32, tokens: &[&str]) -> String {
    let out = errors(text);
    let at = format!("{FILE}:{line}:{col}: error: ");
    let mut lines = out.lines().peekable();
    while let Some(l) = lines.next() {
        if l.starts_with(&at) && tokens.iter().all(|t| l.contains(t)) {
            let mut found = l.to_string();
            if let Some(h) = lines.peek().filter(|h| h.starts_with("  help:")) {
                found.push('\n');
                found.push_str(h);
            }
            return found;
        }
    }
    panic!("no error at {line}:{col} naming {tokens:?}; got:\n{out}");
}

fn error_count(text: &str) -> usize {
    run(text).err().map_or(0, |d| d.errors().count())
}

const TWO_NODES: &str = "name: t\ntopology:\n  nodes:\n    a: {}\n    b: {}\n  links:\n";

#[test]
fn unknown_key_suggests_the_right_one() {
    let e = expect_error(
        "name: t\ntopology:\n  nodes:\n    a:\n      imgae: alpine\n",
        5,
        7,
        &["unknown key `imgae`", "node a"],
    );
    assert!(e.contains("help: did you mean `image`?"), "{e}");
    let e = expect_error(
        "name: t\ntopolgy:\n  nodes: {}\n",
        2,
        1,
        &["unknown key `topolgy`"],
    );
    assert!(e.contains("did you mean `topology`?"), "{e}");
    let e = expect_error(
        "name: t\ntopology:\n  nodes: {a: {}, b: {}}\n  links:\n    - endpoints: [\"a:e1\", \"b:e1\"]\n      mtux: 1500\n",
        6,
        7,
        &["unknown key `mtux`", "link #1"],
    );
    assert!(e.contains("did you mean `mtu`?"), "{e}");
}

#[test]
fn missing_name() {
    let e = expect_error("topology:\n  nodes:\n    a: {}\n", 1, 1, &["no `name`"]);
    assert!(e.contains("help: add a top-level `name: mylab`"), "{e}");
}

#[test]
fn yaml_syntax_tabs_and_indentation() {
    expect_error(
        "name: t\ntopology:\n  nodes:\n\t a: {}\n",
        4,
        1,
        &["YAML syntax", "tab in indentation"],
    );
    expect_error(
        "name: t\ntopology:\n  nodes:\n  \ta: {}\n",
        4,
        3,
        &["tab in indentation"],
    );
    // `b` is indented less than its sibling `a` but more than `nodes`.
    expect_error(
        "name: t\ntopology:\n  nodes:\n    a: {}\n   b: {}\n",
        5,
        4,
        &["YAML syntax"],
    );
    expect_error(
        "name: t\nname: u\n",
        2,
        1,
        &["duplicate key `name`", "first at line 1"],
    );
    expect_error("name: [t\n", 2, 1, &["YAML syntax"]);
}

#[test]
fn link_to_an_undefined_node() {
    let text = format!("{TWO_NODES}    - endpoints: [\"a:eth1\", \"bb:eth1\"]\n");
    let e = expect_error(&text, 7, 29, &["`bb:eth1`", "node `bb`", "not defined"]);
    assert!(e.contains("did you mean `b`?"), "{e}");
    let text =
        format!("{TWO_NODES}    - type: dummy\n      endpoint: {{node: zz, interface: d0}}\n");
    expect_error(&text, 8, 17, &["node `zz`", "not defined"]);
}

#[test]
fn endpoint_used_twice() {
    let text = format!("{TWO_NODES}    - endpoints: [\"a:eth1\", \"a:eth1\"]\n");
    expect_error(
        &text,
        7,
        29,
        &["endpoint `a:eth1` is used twice", "first at line 7"],
    );
    let text = format!("{TWO_NODES}    - endpoints: [\"a:eth1\", \"b:eth1\"]\n    - endpoints: [\"b:eth2\", \"a:eth1\"]\n");
    expect_error(
        &text,
        8,
        29,
        &["endpoint `a:eth1` is used twice", "first at line 7"],
    );
    // Host-side names share the host's namespace.
    let text = format!(
        "{TWO_NODES}    - endpoints: [\"a:eth1\", \"host:veth-x\"]\n    - endpoints: [\"b:eth1\", \"host:veth-x\"]\n"
    );
    expect_error(
        &text,
        8,
        29,
        &["host interface `veth-x` is used by two links"],
    );
}

#[test]
fn bad_interface_names() {
    // Names Linux cannot take are kept as aliases on generated names (see corpus tests); names
    // that no interface can have, and vendor names that name no data port, are errors.
    let text = format!("{TWO_NODES}    - endpoints: [\"a:lo\", \"b:eth1\"]\n");
    expect_error(&text, 7, 19, &["`lo`", "loopback"]);
    let text = format!("{TWO_NODES}    - endpoints: [\"a:eth1\", \"b:-x\"]\n");
    expect_error(&text, 7, 29, &["`-x`", "cannot start with `-`"]);
    let text = "name: t\ntopology:\n  nodes:\n    a: {kind: cisco_iol}\n    b: {}\n  links:\n    - endpoints: [\"a:Ethernet0/0\", \"b:eth1\"]\n";
    expect_error(
        text,
        7,
        19,
        &[
            "`Ethernet0/0` of node a",
            "management interface",
            "cisco_iol accepts",
        ],
    );
    let text = "name: t\ntopology:\n  nodes:\n    a: {kind: srl}\n    b: {}\n  links:\n    - endpoints: [\"a:ethernet-0/1\", \"b:eth1\"]\n";
    expect_error(text, 7, 19, &["`ethernet-0/1`", "count from 1"]);
}

#[test]
fn bad_node_names() {
    for (name, col) in [("\"../x\"", 5), ("a/b", 5), ("-a", 5)] {
        let text = format!("name: t\ntopology:\n  nodes:\n    ok: {{}}\n    {name}: {{}}\n");
        let shown = name.trim_matches('"');
        expect_error(
            &text,
            5,
            col,
            &[&format!("node name `{shown}`"), "letters, digits"],
        );
    }
    expect_error(
        "name: ../lab\ntopology:\n  nodes: {a: {}}\n",
        1,
        7,
        &["lab name `../lab`"],
    );
}

#[test]
fn brief_link_needs_exactly_two_endpoints() {
    let text = format!("{TWO_NODES}    - endpoints: [\"a:eth1\", \"b:eth1\", \"b:eth2\"]\n");
    expect_error(&text, 7, 18, &["link #1 has 3 endpoints", "exactly two"]);
    let text = format!("{TWO_NODES}    - endpoints: [\"a:eth1\"]\n");
    expect_error(&text, 7, 18, &["link #1 has 1 endpoints"]);
    let text = format!("{TWO_NODES}    - endpoints: [\"a:eth1\", \"beth1\"]\n");
    expect_error(&text, 7, 29, &["endpoint `beth1` is not `node:interface`"]);
}

#[test]
fn malformed_mac_ip_and_prefix() {
    let veth = |a: &str| {
        format!(
            "{TWO_NODES}    - type: veth\n      endpoints:\n        - {{node: a, interface: eth1, {a}}}\n        - {{node: b, interface: eth1}}\n"
        )
    };
    let e = expect_error(
        &veth("mac: 02:00:00:00:00"),
        9,
        43,
        &["malformed MAC `02:00:00:00:00`"],
    );
    assert!(e.contains("six hex pairs"), "{e}");
    expect_error(
        &veth("mac: 01:00:5e:00:00:01"),
        9,
        43,
        &["`01:00:5e:00:00:01` is a multicast"],
    );
    expect_error(
        &veth("ipv4: 300.1.1.1/24"),
        9,
        44,
        &["malformed IP prefix `300.1.1.1/24`"],
    );
    expect_error(
        &veth("ipv4: 10.0.0.1/33"),
        9,
        44,
        &["malformed IP prefix `10.0.0.1/33`"],
    );
    expect_error(
        &veth("ipv4: 10.0.0.1"),
        9,
        44,
        &["address `10.0.0.1` has no prefix length"],
    );
    expect_error(
        &veth("ipv6: 10.0.0.1/24"),
        9,
        44,
        &["`10.0.0.1/24` is IPv4 where an IPv6"],
    );
    // Brief links' per-endpoint address lists.
    let text = format!("{TWO_NODES}    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [10.0.0.0/31, 10.0.0.300/31]\n");
    expect_error(&text, 8, 27, &["malformed IP prefix `10.0.0.300/31`"]);
    // Management addresses are plain addresses.
    expect_error(
        "name: t\ntopology:\n  nodes:\n    a: {mgmt-ipv4: 172.20.20.300}\n",
        4,
        20,
        &["mgmt-ipv4 `172.20.20.300`", "not an IPv4"],
    );
    expect_error(
        "name: t\nmgmt:\n  ipv4-subnet: 10.0.0.1/24\ntopology:\n  nodes: {a: {}}\n",
        3,
        16,
        &["ipv4-subnet `10.0.0.1/24` has host bits"],
    );
}

#[test]
fn malformed_port_and_memory() {
    let node = |f: &str| format!("name: t\ntopology:\n  nodes:\n    a:\n      {f}\n");
    let e = expect_error(
        &node("ports: [\"8080:80\", \"80:http\"]"),
        5,
        26,
        &["port mapping `80:http`"],
    );
    assert!(e.contains("help: use [host-ip:][host-port:]port"), "{e}");
    expect_error(&node("ports: [70000]"), 5, 15, &["port mapping `70000`"]);
    expect_error(
        &node("memory: 12zb"),
        5,
        15,
        &["memory size `12zb`", "node a"],
    );
    expect_error(&node("memory: lots"), 5, 15, &["memory size `lots`"]);
}

#[test]
fn static_mgmt_address_outside_subnet_or_used_twice() {
    let text = "name: t\nmgmt:\n  ipv4-subnet: 10.1.0.0/24\n  ipv6-subnet: 3fff:1::/64\ntopology:\n  nodes:\n    a: {mgmt-ipv4: 10.2.0.5}\n    b: {mgmt-ipv4: 10.1.0.9}\n    c: {mgmt-ipv4: 10.1.0.9}\n    d: {mgmt-ipv6: \"3fff:2::1\"}\n    e: {mgmt-ipv4: 10.1.0.1}\n";
    expect_error(
        text,
        7,
        20,
        &["mgmt-ipv4 10.2.0.5 of node a is outside the management subnet 10.1.0.0/24"],
    );
    expect_error(
        text,
        9,
        20,
        &["mgmt-ipv4 10.1.0.9 of node c is also node b's"],
    );
    expect_error(
        text,
        10,
        20,
        &["mgmt-ipv6 3fff:2::1 of node d is outside", "3fff:1::/64"],
    );
    expect_error(
        text,
        11,
        20,
        &["mgmt-ipv4 10.1.0.1 of node e is the management gateway"],
    );
    assert_eq!(error_count(text), 4);
}

#[test]
fn stage_wait_for_unknown_node_and_cycle() {
    let text = "name: t\ntopology:\n  nodes:\n    a:\n      stages:\n        create:\n          wait-for:\n            - node: bb\n    b: {}\n";
    let e = expect_error(
        text,
        8,
        21,
        &["node a waits for `bb`", "not a node of this lab"],
    );
    assert!(e.contains("did you mean `b`?"), "{e}");
    let text = "name: t\ntopology:\n  nodes:\n    a:\n      stages:\n        create:\n          wait-for: [{node: b, stage: create}]\n    b:\n      stages:\n        create:\n          wait-for: [{node: a, stage: create}]\n";
    let e = expect_error(
        text,
        11,
        29,
        &["stage wait-for forms a cycle: a:create → b:create → a:create"],
    );
    assert!(
        e.contains("help: remove one of the wait-for entries"),
        "{e}"
    );
    // A cycle through stage order: a's create waits for b's healthy, b's create waits for a's exit.
    let text = "name: t\ntopology:\n  nodes:\n    a:\n      stages:\n        create:\n          wait-for: [{node: b, stage: healthy}]\n    b:\n      stages:\n        create:\n          wait-for: [{node: a, stage: exit}]\n";
    assert!(errors(text).contains("forms a cycle"));
    let text = "name: t\ntopology:\n  nodes:\n    a:\n      wait-for: [a]\n";
    expect_error(text, 5, 18, &["node a waits for itself in stage create"]);
}

#[test]
fn unknown_kind_suggests() {
    let e = expect_error(
        "name: t\ntopology:\n  nodes:\n    a: {kind: linx}\n",
        4,
        15,
        &["unknown kind `linx`", "node a"],
    );
    assert!(e.contains("did you mean `linux`?"), "{e}");
    let e = expect_error(
        "name: t\ntopology:\n  kinds:\n    nokia_srlinx: {}\n  nodes: {a: {}}\n",
        4,
        5,
        &["unknown kind `nokia_srlinx`"],
    );
    assert!(e.contains("did you mean `nokia_srlinux`?"), "{e}");
    let e = expect_error(
        "name: t\ntopology:\n  nodes:\n    a: {kind: zzzzzzzzzz}\n",
        4,
        15,
        &["unknown kind `zzzzzzzzzz`"],
    );
    assert!(e.contains("help: labwire's kinds"), "{e}");
}

#[test]
fn unknown_link_type_suggests() {
    let text =
        format!("{TWO_NODES}    - type: vxlam\n      endpoint: {{node: a, interface: e1}}\n");
    let e = expect_error(&text, 7, 13, &["unknown link type `vxlam`"]);
    assert!(e.contains("did you mean `vxlan`?"), "{e}");
    let text = format!("{TWO_NODES}    - type: wormhole\n");
    let e = expect_error(&text, 7, 13, &["unknown link type `wormhole`"]);
    assert!(
        e.contains("accepted: veth, veth-stitch, brief, host, mgmt-net, macvlan, vxlan, vxlan-stitch, dummy"),
        "{e}"
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let text = "name: t\ntopology:\n  nodes:\n    a:\n      imgae: x\n    b:\n      kind: linx\n    c:\n      memory: much\n  links:\n    - endpoints: [\"a:eth1\", \"zz:eth1\"]\n    - type: veth\n      endpoints:\n        - {node: a, interface: eth2, mac: nope}\n        - {node: c, interface: eth2}\n";
    let out = errors(text);
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(lines.len(), 5, "{out}");
    for (at, token) in [
        ("5:7", "`imgae`"),
        ("7:13", "`linx`"),
        ("9:15", "`much`"),
        ("11:29", "`zz:eth1`"),
        ("14:43", "`nope`"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{FILE}:{at}: error: ")) && l.contains(token)),
            "no error at {at} naming {token}:\n{out}"
        );
    }
    // Sorted top to bottom.
    let mut sorted = lines.clone();
    sorted.sort_by_key(|l| {
        let mut p = l
            .split(':')
            .skip(1)
            .take(2)
            .map(|n| n.parse::<u32>().unwrap());
        (p.next(), p.next())
    });
    assert_eq!(lines, sorted);
}

#[test]
fn a_valid_file_has_no_errors_or_warnings() {
    let text = format!("{TWO_NODES}    - endpoints: [\"a:eth1\", \"b:eth1\"]\n");
    let loaded = run(&text).unwrap_or_else(|d| panic!("{}", d.render(false)));
    assert!(!loaded.warnings.has_errors());
    assert_eq!(loaded.warnings.render(false), "");
    assert_eq!(loaded.lab.links.len(), 1);
}

#[test]
fn an_unacted_field_is_one_warning_line() {
    let text = "name: t\ntopology:\n  defaults:\n    memory: 1g\n  nodes:\n    a: {}\n    b: {}\n    c: {runtime: docker}\n";
    let loaded = run(text).unwrap_or_else(|d| panic!("{}", d.render(false)));
    let out = loaded.warnings.render(false);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(
        out,
        "t.clab.yml:4:13: warning: `memory` (nodes a, b) is accepted but the native runtime does not act on it yet\n"
    );
    assert_eq!(loaded.warnings.warnings().count(), 1);
}

#[test]
fn a_node_with_errors_draws_no_follow_on_errors() {
    // b's kind is unknown; references to b are not errors of their own.
    let text = "name: t\ntopology:\n  nodes:\n    a:\n      network-mode: none\n      stages:\n        create:\n          wait-for: [{node: b}]\n    b: {kind: linx}\n    c: {network-mode: \"container:b\"}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n";
    let out = errors(text);
    assert_eq!(error_count(text), 1, "{out}");
    expect_error(text, 9, 15, &["unknown kind `linx`"]);
}

#[test]
fn snippets_render_with_a_caret_under_the_token() {
    let text = "name: t\ntopology:\n  nodes:\n    a: {kind: linx}\n";
    let d = run(text).err().unwrap();
    let out = d.render(true);
    assert!(
        out.contains("4 |     a: {kind: linx}\n  |               ^^^^\n"),
        "{out}"
    );
}

#[test]
fn positions_point_into_the_file_as_written_after_substitution() {
    // `${…}` is substituted in the whole text before YAML reads it; a long default before the
    // error on the same line, and a value that spans lines after substitution, must not move
    // the reported column or line.
    let text = "name: t\ntopology:\n  nodes:\n    a: {image: \"${IMG:-a-rather-long-default-image-name}\", imgae: x}\n    b:\n      memory: ${MEM:-lots}\n";
    let col = text.lines().nth(3).unwrap().find("imgae").unwrap() as u32 + 1;
    expect_error(text, 4, col, &["unknown key `imgae`"]);
    // The error about a substituted value points at the reference as written.
    expect_error(text, 6, 15, &["memory size `lots`"]);
    // A required variable names itself where it is written.
    let text = "name: t\ntopology:\n  nodes:\n    a: {image: \"x-${NEED:?give NEED}\"}\n";
    expect_error(text, 4, 19, &["variable NEED is required: give NEED"]);
}

#[test]
fn a_variable_may_expand_to_nothing_before_yaml_reads_it() {
    let text = "name: t\nprefix: ${P:=\"\"}\ntopology:\n  nodes:\n    a: {}\n";
    let lab = run(text).expect("valid").lab;
    assert_eq!(lab.prefix, "");
    assert_eq!(lab.nodes[0].long_name, "a");
}

#[test]
fn a_bar_in_a_node_name_is_only_for_a_bridge_in_that_node() {
    let text = "name: t\ntopology:\n  nodes:\n    br|a: {kind: linux}\n    a: {}\n";
    let e = expect_error(
        text,
        4,
        5,
        &["node name `br|a`", "inside node a's network namespace"],
    );
    assert!(e.contains("network-mode: container:a"), "{e}");
    let text = "name: t\ntopology:\n  nodes:\n    br|a: {kind: bridge, network-mode: container:b}\n    a: {}\n    b: {}\n";
    expect_error(text, 4, 5, &["node name `br|a`"]);
    let text =
        "name: t\ntopology:\n  nodes:\n    br|zz: {kind: bridge, network-mode: container:zz}\n";
    expect_error(
        text,
        4,
        41,
        &["shares the network of `zz`", "not a node of this lab"],
    );
}

#[test]
fn template_errors_point_at_the_construct() {
    let text = "name: t\ntopology:\n  nodes:\n    a: {image: \"{{ nosuch 1 }}\"}\n";
    expect_error(
        text,
        4,
        20,
        &["template: function `nosuch` is not supported"],
    );
    let text = "name: t\n{{ if .x }}\ntopology:\n  nodes: {a: {}}\n";
    expect_error(text, 2, 1, &["template: missing `{{ end }}`"]);
    let text = "name: t\ntopology:\n  nodes: {a: {}}\n{{ template \"sub\" }}\n";
    expect_error(text, 4, 1, &["no template named \"sub\""]);
    // An error after rendering points into the template as written.
    let text = "name: t\ntopology:\n  nodes:\n{{- range seq 1 2 }}\n    n{{ . }}: {imgae: x}\n{{- end }}\n";
    expect_error(text, 5, 16, &["unknown key `imgae`"]);
}

#[test]
fn privileged_false_on_a_container_node_is_said_not_to_hold() {
    let text =
        "name: t\ntopology:\n  nodes:\n    a: {runtime: docker, image: x, privileged: false}\n";
    let w = run(text).expect("valid").warnings.render(false);
    assert!(
        w.contains("t.clab.yml:4:48: warning: `privileged: false` (node a): labwire's docker nodes always run privileged"),
        "{w}"
    );
}

#[test]
fn an_old_underscore_spelling_is_named_as_such() {
    let text = "name: t\ntopology:\n  nodes:\n    a: {mgmt_ipv4: 172.20.20.9}\n";
    let e = expect_error(text, 4, 9, &["unknown key `mgmt_ipv4` in node a"]);
    assert!(e.contains("old spelling of `mgmt-ipv4`"), "{e}");
}

#[test]
fn link_speed_takes_mbits_or_a_unit_and_names_a_bad_one() {
    let text =
        format!("{TWO_NODES}    - endpoints: [\"a:e1\", \"b:e1\"]\n      speed: 10 furlongs\n");
    let e = expect_error(&text, 8, 14, &["link speed `10 furlongs`"]);
    assert!(e.contains("help:") && e.contains("10G"), "{e}");
    let text = format!("{TWO_NODES}    - endpoints: [\"a:e1\", \"b:e1\"]\n      speed: 0\n");
    expect_error(&text, 8, 14, &["link speed `0`", "from 1 Mbit/s"]);
    let text = format!(
        "{TWO_NODES}    - type: veth\n      speed: 2000G\n      endpoints:\n        - {{node: a, interface: e1}}\n        - {{node: b, interface: e1}}\n"
    );
    expect_error(&text, 8, 14, &["link speed `2000G`"]);

    for (given, mbps) in [
        ("25G", 25_000),
        ("100Mbps", 100),
        ("40000", 40_000),
        ("1gbit/s", 1000),
    ] {
        let text =
            format!("{TWO_NODES}    - endpoints: [\"a:e1\", \"b:e1\"]\n      speed: {given}\n");
        let lab = run(&text)
            .unwrap_or_else(|d| panic!("{}", d.render(false)))
            .lab;
        assert_eq!(lab.links[0].speed, Some(mbps), "speed: {given}");
        assert_eq!(lab.links[0].speed_mbps(), mbps);
    }
    let lab = run(&format!(
        "{TWO_NODES}    - endpoints: [\"a:e1\", \"b:e1\"]\n"
    ))
    .unwrap_or_else(|d| panic!("{}", d.render(false)))
    .lab;
    assert_eq!(lab.links[0].speed, None);
    assert_eq!(lab.links[0].speed_mbps(), 10_000, "the default: 10 Gbit/s");
}

#[test]
fn kernel_modules_are_module_names_merged_across_levels() {
    let text = "name: t\ntopology:\n  defaults:\n    kernel-modules: [bonding]\n  nodes:\n    a:\n      kind: linux\n      kernel-modules: [vxlan, bonding, 8021q]\n";
    let lab = run(text)
        .unwrap_or_else(|d| panic!("{}", d.render(false)))
        .lab;
    let a = lab.nodes.iter().find(|n| n.name == "a").unwrap();
    let mut got = a.kernel_modules.clone();
    got.sort();
    assert_eq!(got, ["8021q", "bonding", "vxlan"]);
    let e = expect_error(
        "name: t\ntopology:\n  nodes:\n    a:\n      kind: linux\n      kernel-modules: [bonding, \"../x\"]\n",
        6,
        33,
        &["kernel module `../x` of node a is not a module name"],
    );
    assert!(
        e.contains("help: a module's name as modprobe takes it"),
        "{e}"
    );
}

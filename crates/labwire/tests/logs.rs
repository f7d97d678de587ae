//! Logs a person can follow (issue 12): when standard error is not a terminal, a deploy prints a
//! timestamped line as each stage starts and finishes (count, time, slowest node) and destroy one
//! per step; `-q` silences deploy's, `--log-level` chooses what shows and `-d` adds debug lines.
//!
//! They run as root. The lab's name and management subnet come from [`LabBuilder`].

mod common;

use std::time::Duration;

use common::*;

fn lab() -> BuiltLab {
    LabBuilder::new()
        .topology(
            r#"
            nodes:
              a: {kind: linux}
              b: {kind: linux}
            links:
              - endpoints: [a:eth1, b:eth1]
            "#,
        )
        .build()
}

/// `labwire [flags] deploy -t FILE [extra]`, piped; its standard error.
fn deploy(lab: &TestLab, flags: &[&str], extra: &[&str]) -> String {
    let mut c = lab.cmd();
    c.args(flags)
        .arg("deploy")
        .arg("-t")
        .arg(&lab.file)
        .args(extra);
    let out = run_timeout(c, Duration::from_secs(180));
    assert!(out.status.success(), "deploy: {}", describe(&out));
    text(&out.stderr)
}

fn destroy(lab: &TestLab, flags: &[&str]) -> String {
    let mut c = lab.cmd();
    c.args(flags).args(["destroy", "--name", &lab.name]);
    let out = run_timeout(c, Duration::from_secs(120));
    assert!(out.status.success(), "destroy: {}", describe(&out));
    text(&out.stderr)
}

/// Whether a line starts with a UTC timestamp with milliseconds and then `level`.
fn stamped(line: &str, level: &str) -> bool {
    let b = line.as_bytes();
    line.len() > 25
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
        && line[..4].chars().all(|c| c.is_ascii_digit())
        && line[25..].starts_with(level)
}

fn lines_with<'a>(err: &'a str, level: &str) -> Vec<&'a str> {
    err.lines().filter(|l| stamped(l, level)).collect()
}

#[test]
fn a_piped_deploy_shows_its_stages_and_the_flags_choose_what_shows() {
    require_root();
    let lab = lab();
    let name = lab.name.as_str();

    let err = deploy(&lab, &[], &[]);
    let info = lines_with(&err, "INFO");
    let opening = format!("deploy lab {name}: 2 nodes, 1 links");
    for want in [
        opening.as_str(),
        "create nodes: 2 to do",
        "create nodes: 2/2 done in ",
        // One link, two management interfaces, two nodes' addresses.
        "create links and addresses: 5/5 done in ",
    ] {
        assert!(
            info.iter().any(|l| l.contains(want)),
            "no timestamped line with `{want}`:\n{err}"
        );
    }
    assert!(
        info.iter()
            .any(|l| l.contains("create nodes: 2/2") && l.contains("slowest node ")),
        "the node stage names its slowest node:\n{err}"
    );
    assert!(lines_with(&err, "DEBUG").is_empty(), "{err}");
    let err = destroy(&lab, &[]);
    assert!(
        lines_with(&err, "INFO")
            .iter()
            .any(|l| l.contains(&format!("destroy {name}: stop nodes done in "))),
        "{err}"
    );
    lab.assert_nothing_left(&[]);

    // -q: no stage lines; --log-level warn: none either.
    let err = deploy(&lab, &[], &["-q"]);
    assert!(lines_with(&err, "INFO").is_empty(), "-q:\n{err}");
    let err = destroy(&lab, &["--log-level", "warn"]);
    assert!(
        lines_with(&err, "INFO").is_empty(),
        "--log-level warn:\n{err}"
    );
    assert!(err.contains(&format!("lab {name} destroyed")), "{err}");

    // -d (before or after the command): debug lines, each node's runtime among them.
    let err = deploy(&lab, &["-d"], &[]);
    let debug = lines_with(&err, "DEBUG");
    for node in ["a", "b"] {
        assert!(
            debug
                .iter()
                .any(|l| l.contains(&format!("node {node}: created on the native runtime, pid "))),
            "-d:\n{err}"
        );
    }
    let mut c = lab.cmd();
    c.args(["destroy", "--name", name, "--debug"]);
    let out = run_timeout(c, Duration::from_secs(120));
    assert!(out.status.success(), "destroy --debug: {}", describe(&out));
    lab.assert_nothing_left(&[]);
}

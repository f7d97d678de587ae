//! End-to-end tests of the docker runtime against a real dockerd: docker nodes are containers made
//! through the Engine API, wired by the same code as native nodes, and a lab may mix the two.
//!
//! They run as root. dockerd is started (log in /tmp/lwt-dockerd.log) when `docker info` does not
//! answer; the image is built here (`docker import` of a tar of the host's static busybox), as no
//! registry is reachable. Lab `lwt-dk`, management network `lwt-dk` on 10.254.0.0/24 and
//! fd00:254::/64.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const IMAGE: &str = "lwt-busybox:dk";

fn docker(args: &[&str]) -> std::process::Output {
    DOCKER.run(args)
}

fn docker_ok(args: &[&str]) -> String {
    DOCKER.ok(args)
}

fn containers_of(lab: &str) -> Vec<String> {
    DOCKER.containers_of(lab)
}

#[test]
fn docker_and_native_nodes_in_one_lab() {
    DOCKER.ready_with_busybox(IMAGE);
    let net = MixedNet {
        v4: "10.254",
        v6: "fd00:254",
    };
    let yaml = mixed_yaml("lwt-dk", "docker", IMAGE, &net);
    let lab = TestLab::new("dk", "lwt-dk", "lwt-dk", &["a", "b", "c"], &yaml);
    check_mixed_lab(&DOCKER, &lab, &net);
}

#[test]
fn a_missing_image_is_named_with_how_to_import_it() {
    DOCKER.ready_with_busybox(IMAGE);
    let lab = LabBuilder::new()
        .topology(
            r#"
            nodes:
              a: {kind: linux, image: "lwt-absent:dk"}
            "#,
        )
        .build();
    let mut c = lab.deploy_cmd();
    c.args(["-r", "docker"]);
    let out = run_timeout(c, Duration::from_secs(120));
    assert!(!out.status.success(), "deploy succeeded without the image");
    let err = text(&out.stderr);
    assert!(
        err.contains("lwt-absent:dk") && err.contains("docker import"),
        "the error names neither the image nor `docker import`: {err}"
    );
    assert!(containers_of(&lab.name).is_empty());
    lab.assert_nothing_left(&[]);
}

/// The open-nos image in the Docker engine (reused when there; else built by
/// `images/open-nos/build.sh --docker`, with its own labwire image store).
fn open_nos_image() {
    static READY: Once = Once::new();
    READY.call_once(|| {
        if docker(&["image", "inspect", OPEN_NOS]).status.success() {
            return;
        }
        let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/open-nos/build.sh");
        let mut build = Command::new("bash");
        build
            .arg(recipe)
            .args(["--docker", OPEN_NOS])
            .env("LABWIRE", labwire_bin())
            .env("LABWIRE_INIT", init_bin())
            .env("LABWIRE_IMAGE_DIR", "/var/tmp/lwt-dks-images")
            .env_remove("OPEN_NOS_TAR")
            .stdin(Stdio::null());
        let out = run_timeout(build, Duration::from_secs(900));
        assert!(
            out.status.success(),
            "images/open-nos/build.sh --docker failed: {}",
            describe(&out)
        );
    });
}

const OPEN_NOS: &str = "open-nos:latest";

/// A node whose PID 1 is systemd boots as under `docker run --privileged`: to
/// `systemctl is-system-running` = running. The image's entrypoint (a wrapper that runs `cmd` as
/// its child) is replaced by none, so systemd is PID 1. Lab `lwt-dks`, management network
/// `lwt-dks` on 10.254.8.0/24 and fd00:254:8::/64.
#[test]
fn systemd_image_reaches_running() {
    DOCKER.ready_with_busybox(IMAGE);
    open_nos_image();
    let yaml = format!(
        "name: lwt-dks\n\
         mgmt: {{network: lwt-dks, ipv4-subnet: 10.254.8.0/24, ipv6-subnet: fd00:254:8::/64}}\n\
         topology:\n  nodes:\n\
         \x20   s: {{kind: linux, runtime: docker, image: \"{OPEN_NOS}\", entrypoint: \"\", cmd: /lib/systemd/systemd}}\n"
    );
    let lab = TestLab::new("dks", "lwt-dks", "lwt-dks", &["s"], &yaml);
    lab.deploy();
    let name = lab.long_name("s");

    let hc: Value = serde_json::from_str(&docker_ok(&[
        "inspect",
        "-f",
        "{{json .HostConfig}}",
        &name,
    ]))
    .expect("HostConfig JSON");
    assert_eq!(hc["CgroupnsMode"].as_str(), Some("private"), "{hc}");
    let comm = docker_ok(&["exec", &name, "cat", "/proc/1/comm"]);
    assert_eq!(comm.trim(), "systemd", "PID 1 of {name}");

    let start = Instant::now();
    let state = loop {
        let out = docker(&["exec", &name, "systemctl", "is-system-running"]);
        let state = text(&out.stdout).trim().to_string();
        if !matches!(state.as_str(), "initializing" | "starting" | "")
            || start.elapsed() > Duration::from_secs(120)
        {
            break state;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let failed = text(&docker(&["exec", &name, "systemctl", "--failed", "--no-pager"]).stdout);
    assert_eq!(
        state, "running",
        "systemd in {name} is {state}; failed units:\n{failed}"
    );
    // The management address is there once systemd runs.
    let (s4, s6) = lab.eth0_addrs("s");
    assert!(
        s4.as_deref().is_some_and(|a| a.starts_with("10.254.8.")),
        "s's management address {s4:?}"
    );
    assert!(s6.is_some(), "s has no IPv6 management address");

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy failed: {}", describe(&out));
    assert!(
        containers_of("lwt-dks").is_empty(),
        "containers left after destroy"
    );
    lab.assert_nothing_left(&[]);
}

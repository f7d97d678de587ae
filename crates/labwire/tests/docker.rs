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
    let mut c = Command::new("docker");
    c.args(args).stdin(Stdio::null());
    run_timeout(c, Duration::from_secs(60))
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        describe(&out)
    );
    text(&out.stdout)
}

/// A running dockerd (started when none answers) and the test image.
fn engine_and_image() {
    static READY: Once = Once::new();
    READY.call_once(|| {
        require_root();
        if !docker(&["info"]).status.success() {
            // dockerd outlives the test (other test binaries and runs use it): started detached.
            let st = Command::new("sh")
                .args(["-c", "nohup dockerd >/tmp/lwt-dockerd.log 2>&1 &"])
                .stdin(Stdio::null())
                .status()
                .expect("run sh");
            assert!(st.success(), "could not start dockerd (install docker.io)");
            let start = Instant::now();
            while !docker(&["info"]).status.success() {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "dockerd did not answer within 30 s; see /tmp/lwt-dockerd.log"
                );
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        if docker(&["image", "inspect", IMAGE]).status.success() {
            return;
        }
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .expect("a static busybox (Debian package busybox-static)");
        let dir = std::env::temp_dir().join(format!("lwt-dk-image-{}", std::process::id()));
        let root = dir.join("root");
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
            std::fs::create_dir_all(root.join(d)).expect("create image dirs");
        }
        std::fs::copy(busybox, root.join("bin/busybox")).expect("copy busybox");
        for applet in [
            "sh", "ls", "cat", "sleep", "ip", "ping", "env", "hostname", "echo", "grep",
        ] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
                .expect("symlink applet");
        }
        let tar = dir.join("rootfs.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("run tar");
        assert!(st.success(), "tar of the busybox root failed");
        docker_ok(&[
            "import",
            "-c",
            r#"CMD ["/bin/sleep", "1000000"]"#,
            tar.to_str().expect("utf-8 path"),
            IMAGE,
        ]);
        let _ = std::fs::remove_dir_all(&dir);
    });
}

fn mixed_yaml() -> String {
    format!(
        "name: lwt-dk\n\
         mgmt: {{network: lwt-dk, ipv4-subnet: 10.254.0.0/24, ipv6-subnet: fd00:254::/64}}\n\
         topology:\n  nodes:\n\
         \x20   a: {{kind: linux, runtime: docker, image: \"{IMAGE}\", env: {{FOO: bar}}}}\n\
         \x20   b: {{kind: linux, runtime: docker, image: \"{IMAGE}\"}}\n\
         \x20   c: {{kind: linux}}\n\
         \x20 links:\n\
         \x20   - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [\"10.254.1.1/24\", \"10.254.1.2/24\"]\n\
         \x20   - endpoints: [\"b:eth2\", \"c:eth1\"]\n      ipv4: [\"10.254.2.1/24\", \"10.254.2.2/24\"]\n"
    )
}

fn containers_of(lab: &str) -> Vec<String> {
    docker_ok(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=containerlab={lab}"),
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn docker_and_native_nodes_in_one_lab() {
    engine_and_image();
    let lab = TestLab::new("dk", "lwt-dk", "lwt-dk", &["a", "b", "c"], &mixed_yaml());
    lab.deploy();

    // Data links: docker—docker and docker—native.
    lab.assert_ping("a", "10.254.1.2");
    lab.assert_ping("b", "10.254.1.1");
    lab.assert_ping("b", "10.254.2.2");
    lab.assert_ping("c", "10.254.2.1");
    // The management network, between a container and a native node and between containers.
    let (a4, a6) = lab.eth0_addrs("a");
    let (b4, _) = lab.eth0_addrs("b");
    let (c4, c6) = lab.eth0_addrs("c");
    let (a4, a6, b4, c4, c6) = (
        a4.expect("a has an IPv4 management address"),
        a6.expect("a has an IPv6 management address"),
        b4.expect("b has an IPv4 management address"),
        c4.expect("c has an IPv4 management address"),
        c6.expect("c has an IPv6 management address"),
    );
    assert!(a4.starts_with("10.254.0."), "a's management address {a4}");
    lab.assert_ping("c", &a4);
    lab.assert_ping("a", &c4);
    lab.assert_ping("a", &b4);
    lab.assert_ping("a", &c6);
    lab.assert_ping("c", &a6);

    // The containers as docker sees them.
    let ids: Vec<String> = containers_of("lwt-dk");
    assert_eq!(ids.len(), 2, "containers of lwt-dk: {ids:?}");
    let info: Value =
        serde_json::from_str(&docker_ok(&["inspect", "clab-lwt-dk-a"])).expect("inspect JSON");
    let labels = &info[0]["Config"]["Labels"];
    let file = lab.file.display().to_string();
    let node_dir = lab.lab_dir().join("a").display().to_string();
    for (k, v) in [
        ("containerlab", "lwt-dk"),
        ("clab-node-name", "a"),
        ("clab-node-longname", "clab-lwt-dk-a"),
        ("clab-node-kind", "linux"),
        ("clab-node-type", ""),
        ("clab-node-group", ""),
        ("clab-node-lab-dir", node_dir.as_str()),
        ("clab-topo-file", file.as_str()),
    ] {
        assert_eq!(labels[k].as_str(), Some(v), "label {k} in {labels}");
    }
    assert_eq!(
        info[0]["HostConfig"]["NetworkMode"].as_str(),
        Some("none"),
        "containers are created without a docker network"
    );
    let env = docker_ok(&["exec", "clab-lwt-dk-a", "env"]);
    for line in [
        "CLAB_LABEL_CONTAINERLAB=lwt-dk",
        "CLAB_LABEL_CLAB_NODE_NAME=a",
        "CLAB_LABEL_CLAB_NODE_LONGNAME=clab-lwt-dk-a",
        "CLAB_LABEL_CLAB_NODE_KIND=linux",
        "CLAB_INTFS=1",
        "FOO=bar",
    ] {
        assert!(
            env.lines().any(|l| l == line),
            "{line} not in the container's env:\n{env}"
        );
    }
    let hostname = docker_ok(&["exec", "clab-lwt-dk-b", "hostname"]);
    assert_eq!(hostname.trim(), "b");
    for n in ["a", "b", "c"] {
        assert!(
            Path::new("/run/netns").join(lab.netns(n)).exists(),
            "/run/netns/{} is missing",
            lab.netns(n)
        );
    }

    // inspect lists the docker ids.
    let rows = lab.inspect_json();
    let rows = rows["lwt-dk"].as_array().expect("rows of lwt-dk");
    for (node, runtime) in [("a", "docker"), ("b", "docker"), ("c", "native")] {
        let long = lab.long_name(node);
        let row = rows
            .iter()
            .find(|r| r["name"] == long.as_str())
            .unwrap_or_else(|| panic!("no inspect row for {long}: {rows:?}"));
        assert_eq!(row["runtime"], runtime, "{row}");
        assert_eq!(row["state"], "running", "{row}");
        if runtime == "docker" {
            let id = docker_ok(&["inspect", "-f", "{{.Id}}", &long]);
            assert_eq!(
                row["container_id"].as_str(),
                Some(&id.trim()[..12]),
                "{row}"
            );
        }
    }
    assert!(hosts_block(&read_etc_hosts(), "lwt-dk").is_some());

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy failed: {}", describe(&out));
    assert!(
        containers_of("lwt-dk").is_empty(),
        "containers left after destroy"
    );
    assert!(
        hosts_block(&read_etc_hosts(), "lwt-dk").is_none(),
        "/etc/hosts still has the lab's block"
    );
    lab.assert_nothing_left(&[]);
}

#[test]
fn a_missing_image_is_named_with_how_to_import_it() {
    engine_and_image();
    let yaml = "name: lwt-dk2\n\
         mgmt: {network: lwt-dk2, ipv4-subnet: 10.254.0.0/24}\n\
         topology:\n  nodes:\n    a: {kind: linux, image: \"lwt-absent:dk\"}\n";
    let lab = TestLab::new("dk2", "lwt-dk2", "lwt-dk2", &["a"], yaml);
    let mut c = lab.deploy_cmd();
    c.args(["-r", "docker"]);
    let out = run_timeout(c, Duration::from_secs(120));
    assert!(!out.status.success(), "deploy succeeded without the image");
    let err = text(&out.stderr);
    assert!(
        err.contains("lwt-absent:dk") && err.contains("docker import"),
        "the error names neither the image nor `docker import`: {err}"
    );
    assert!(containers_of("lwt-dk2").is_empty());
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
    engine_and_image();
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

//! End-to-end tests of the podman runtime against Podman's Docker-compatible API service: podman
//! nodes are containers made through that API, wired by the same code as native and docker nodes,
//! and a lab may mix them.
//!
//! They run as root. The service is started (`podman system service --time=0
//! unix:///run/podman/podman.sock`, log in /tmp/lwt-podman.log) when it does not answer; the
//! image is built here (`podman import` of a tar of the host's static busybox: Podman has its own
//! image store), as no registry is reachable. Labs `lwt-pm*`, management networks on
//! 10.253.0.0/24 (fd00:253::/64) and 10.253.8.0/24 (fd00:253:8::/64).

mod common;

use std::sync::Once;
use std::time::Duration;

use common::*;
use serde_json::Value;

const IMAGE: &str = "lwt-busybox:pm";

/// A running Podman API service (started when none answers) and the test image.
fn service_and_image() {
    static READY: Once = Once::new();
    READY.call_once(|| {
        require_root();
        PODMAN.ensure_running();
        PODMAN.ensure_busybox_image(IMAGE);
    });
}

/// The journal's container entries of a deployed lab: (node, engine).
fn journalled_engines(lab: &TestLab) -> Vec<(String, String)> {
    let j = std::fs::read_to_string(lab.state_dir().join("journal")).expect("read the journal");
    let mut out: Vec<(String, String)> = j
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["op"] == "container")
        .map(|v| {
            (
                v["node"].as_str().unwrap_or_default().to_string(),
                v["engine"].as_str().unwrap_or("(none)").to_string(),
            )
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn podman_and_native_nodes_in_one_lab() {
    service_and_image();
    let net = MixedNet {
        v4: "10.253",
        v6: "fd00:253",
    };
    let yaml = mixed_yaml("lwt-pm", "podman", IMAGE, &net);
    let lab = TestLab::new("pm", "lwt-pm", "lwt-pm", &["a", "b", "c"], &yaml);
    check_mixed_lab(&PODMAN, &lab, &net);
}

/// `-r podman` makes every node a podman container; the journal says which engine made each, so
/// destroy removes them through Podman, `z` (sharing `x`'s network) before `x`, as Podman
/// requires.
#[test]
fn the_runtime_flag_selects_podman_and_the_journal_names_it() {
    service_and_image();
    let yaml = format!(
        "name: lwt-pm3\n\
         mgmt: {{network: lwt-pm3, ipv4-subnet: 10.253.8.0/24, ipv6-subnet: \"fd00:253:8::/64\"}}\n\
         topology:\n  nodes:\n\
         \x20   x: {{kind: linux, image: \"{IMAGE}\"}}\n\
         \x20   y: {{kind: linux, image: \"{IMAGE}\"}}\n\
         \x20   z: {{kind: linux, image: \"{IMAGE}\", network-mode: \"container:x\"}}\n\
         \x20 links:\n\
         \x20   - endpoints: [\"x:eth1\", \"y:eth1\"]\n      ipv4: [\"10.253.9.1/24\", \"10.253.9.2/24\"]\n"
    );
    let lab = TestLab::new("pm3", "lwt-pm3", "lwt-pm3", &["x", "y", "z"], &yaml);
    let mut c = lab.deploy_cmd();
    c.args(["-r", "podman"]);
    let out = run_timeout(c, Duration::from_secs(180));
    assert!(out.status.success(), "deploy -r podman: {}", describe(&out));
    assert_eq!(
        journalled_engines(&lab),
        vec![
            ("x".to_string(), "podman".to_string()),
            ("y".to_string(), "podman".to_string()),
            ("z".to_string(), "podman".to_string())
        ]
    );
    assert_eq!(PODMAN.containers_of("lwt-pm3").len(), 3);
    lab.assert_ping("x", "10.253.9.2");
    lab.assert_ping("z", "10.253.9.2");
    // The limits Podman would set by itself (2^20) exceed a hard limit lower than that (a host
    // without CAP_SYS_RESOURCE cannot raise them); labwire asks for at most its own.
    let limits = lab.exec("x", "cat /proc/1/limits");
    assert!(limits.status.success(), "{}", describe(&limits));
    let mut ours = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut ours) };
    assert_eq!(rc, 0);
    let nofile = text(&limits.stdout)
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no open-files limit in {}", describe(&limits)));
    assert!(
        nofile <= ours.rlim_max,
        "the container's hard open-files limit {nofile} is above labwire's {}",
        ours.rlim_max
    );

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy failed: {}", describe(&out));
    assert!(PODMAN.containers_of("lwt-pm3").is_empty());
    lab.assert_nothing_left(&[]);
}

#[test]
fn a_missing_image_is_named_with_how_to_import_it() {
    service_and_image();
    let lab = LabBuilder::new()
        .topology(
            r#"
            nodes:
              a: {kind: linux, runtime: podman, image: "lwt-absent:pm", image-pull-policy: never}
            "#,
        )
        .build();
    let out = lab.try_deploy();
    assert!(!out.status.success(), "deploy succeeded without the image");
    let err = text(&out.stderr);
    assert!(
        err.contains("lwt-absent:pm") && err.contains("podman import"),
        "the error names neither the image nor `podman import`: {err}"
    );
    assert!(PODMAN.containers_of(&lab.name).is_empty());
    lab.assert_nothing_left(&[]);
}

/// A container joins another's network through its engine, so a podman node cannot share a
/// native node's: refused in preflight.
#[test]
fn a_podman_node_cannot_share_a_native_nodes_network() {
    service_and_image();
    let yaml = format!(
        "name: lwt-pm6\n\
         mgmt: {{network: lwt-pm6, ipv4-subnet: 10.253.0.0/24}}\n\
         topology:\n  nodes:\n\
         \x20   n: {{kind: linux}}\n\
         \x20   p: {{kind: linux, runtime: podman, image: \"{IMAGE}\", network-mode: \"container:n\"}}\n"
    );
    let lab = TestLab::new("pm6", "lwt-pm6", "lwt-pm6", &["n", "p"], &yaml);
    let out = lab.try_deploy();
    assert!(!out.status.success(), "deploy succeeded");
    let err = text(&out.stderr);
    assert!(
        err.contains("network-mode container:n") && err.contains("podman runtime too"),
        "{err}"
    );
    assert!(PODMAN.containers_of("lwt-pm6").is_empty());
    lab.assert_nothing_left(&[]);
}

/// With no service at the socket, deploy stops in preflight and says how to start one.
#[test]
fn a_silent_socket_says_how_to_start_the_service() {
    require_root();
    let yaml = format!(
        "name: lwt-pm4\n\
         mgmt: {{network: lwt-pm4, ipv4-subnet: 10.253.0.0/24}}\n\
         topology:\n  nodes:\n    a: {{kind: linux, runtime: podman, image: \"{IMAGE}\"}}\n"
    );
    let mut lab = TestLab::new("pm4", "lwt-pm4", "lwt-pm4", &["a"], &yaml);
    let socket = lab.dir.join("absent-podman.sock");
    lab.env
        .push(("LABWIRE_PODMAN_SOCKET".into(), socket.display().to_string()));
    let out = lab.try_deploy();
    assert!(!out.status.success(), "deploy succeeded without Podman");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "podman system service --time=0 unix://{}",
            socket.display()
        )),
        "the error does not say how to start the service: {err}"
    );
    lab.assert_nothing_left(&[]);
}

/// One lab with a docker node and a podman node linked together: each container is made and
/// removed by its own engine.
#[test]
fn docker_and_podman_nodes_in_one_lab() {
    service_and_image();
    DOCKER.ensure_running();
    DOCKER.ensure_busybox_image("lwt-busybox:dk");
    let yaml = format!(
        "name: lwt-pm5\n\
         mgmt: {{network: lwt-pm5, ipv4-subnet: 10.253.16.0/24}}\n\
         topology:\n  nodes:\n\
         \x20   d: {{kind: linux, runtime: docker, image: \"lwt-busybox:dk\"}}\n\
         \x20   p: {{kind: linux, runtime: podman, image: \"{IMAGE}\"}}\n\
         \x20 links:\n\
         \x20   - endpoints: [\"d:eth1\", \"p:eth1\"]\n      ipv4: [\"10.253.17.1/24\", \"10.253.17.2/24\"]\n"
    );
    let lab = TestLab::new("pm5", "lwt-pm5", "lwt-pm5", &["d", "p"], &yaml);
    lab.deploy();
    assert_eq!(
        journalled_engines(&lab),
        vec![
            ("d".to_string(), "docker".to_string()),
            ("p".to_string(), "podman".to_string())
        ]
    );
    assert_eq!(DOCKER.containers_of("lwt-pm5").len(), 1);
    assert_eq!(PODMAN.containers_of("lwt-pm5").len(), 1);
    lab.assert_ping("d", "10.253.17.2");
    lab.assert_ping("p", "10.253.17.1");
    let (p4, _) = lab.eth0_addrs("p");
    lab.assert_ping("d", &p4.expect("p has a management address"));

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy failed: {}", describe(&out));
    assert!(DOCKER.containers_of("lwt-pm5").is_empty());
    assert!(PODMAN.containers_of("lwt-pm5").is_empty());
    lab.assert_nothing_left(&[]);
}

const OPEN_NOS: &str = "open-nos:latest";

/// The open-nos image in Podman's store: reused when there; else copied from the Docker engine
/// when that has it (`docker save | podman load`), else built by `images/open-nos/build.sh
/// --podman` with its own labwire image store.
fn open_nos_image() {
    static READY: Once = Once::new();
    READY.call_once(|| {
        if PODMAN.run(&["image", "inspect", OPEN_NOS]).status.success() {
            return;
        }
        if DOCKER.run(&["image", "inspect", OPEN_NOS]).status.success() {
            let mut copy = std::process::Command::new("sh");
            copy.args(["-c", &format!("docker save {OPEN_NOS} | podman load")])
                .stdin(std::process::Stdio::null());
            let out = run_timeout(copy, Duration::from_secs(600));
            assert!(
                out.status.success(),
                "docker save | podman load: {}",
                describe(&out)
            );
            return;
        }
        let recipe =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/open-nos/build.sh");
        let mut build = std::process::Command::new("bash");
        build
            .arg(recipe)
            .args(["--podman", OPEN_NOS])
            .env("LABWIRE", labwire_bin())
            .env("LABWIRE_INIT", init_bin())
            .env("LABWIRE_IMAGE_DIR", "/var/tmp/lwt-pms-images")
            .env_remove("OPEN_NOS_TAR")
            .stdin(std::process::Stdio::null());
        let out = run_timeout(build, Duration::from_secs(900));
        assert!(
            out.status.success(),
            "images/open-nos/build.sh --podman failed: {}",
            describe(&out)
        );
    });
}

/// A node whose PID 1 is systemd boots under Podman to `systemctl is-system-running` = running:
/// `entrypoint: ""` replaces the image's entrypoint (Podman's API needs `[""]` for that, not
/// `[]`), so systemd is PID 1. Lab `lwt-pms`, management network on 10.253.32.0/24 and
/// fd00:253:32::/64.
#[test]
fn systemd_image_reaches_running() {
    service_and_image();
    open_nos_image();
    let yaml = format!(
        "name: lwt-pms\n\
         mgmt: {{network: lwt-pms, ipv4-subnet: 10.253.32.0/24, ipv6-subnet: \"fd00:253:32::/64\"}}\n\
         topology:\n  nodes:\n\
         \x20   s: {{kind: linux, runtime: podman, image: \"{OPEN_NOS}\", entrypoint: \"\", cmd: /lib/systemd/systemd}}\n"
    );
    let lab = TestLab::new("pms", "lwt-pms", "lwt-pms", &["s"], &yaml);
    lab.deploy();
    let name = lab.long_name("s");
    let comm = PODMAN.ok(&["exec", &name, "cat", "/proc/1/comm"]);
    assert_eq!(comm.trim(), "systemd", "PID 1 of {name}");
    let start = std::time::Instant::now();
    let state = loop {
        let out = PODMAN.run(&["exec", &name, "systemctl", "is-system-running"]);
        let state = text(&out.stdout).trim().to_string();
        if !matches!(state.as_str(), "initializing" | "starting" | "")
            || start.elapsed() > Duration::from_secs(120)
        {
            break state;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let failed = text(
        &PODMAN
            .run(&["exec", &name, "systemctl", "--failed", "--no-pager"])
            .stdout,
    );
    assert_eq!(
        state, "running",
        "systemd in {name} is {state}; failed units:\n{failed}"
    );
    let env = PODMAN.ok(&["exec", &name, "cat", "/proc/1/environ"]);
    assert!(
        env.split('\0').any(|v| v == "container=podman"),
        "systemd's environment lacks container=podman: {env:?}"
    );
    let (s4, s6) = lab.eth0_addrs("s");
    assert!(
        s4.as_deref().is_some_and(|a| a.starts_with("10.253.32.")),
        "s's management address {s4:?}"
    );
    assert!(s6.is_some(), "s has no IPv6 management address");

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy failed: {}", describe(&out));
    assert!(PODMAN.containers_of("lwt-pms").is_empty());
    lab.assert_nothing_left(&[]);
}

/// `DOCKER_HOST` may point the docker runtime at Podman's service: labwire makes the request for
/// the engine that answers (Podman's limits), and destroy goes back to that socket.
#[test]
fn docker_host_may_name_podmans_socket() {
    service_and_image();
    let yaml = format!(
        "name: lwt-pm7\n\
         mgmt: {{network: lwt-pm7, ipv4-subnet: 10.253.40.0/24}}\n\
         topology:\n  nodes:\n    a: {{kind: linux, runtime: docker, image: \"{IMAGE}\"}}\n"
    );
    let mut lab = TestLab::new("pm7", "lwt-pm7", "lwt-pm7", &["a"], &yaml);
    lab.env.push((
        "DOCKER_HOST".into(),
        "unix:///run/podman/podman.sock".into(),
    ));
    lab.deploy();
    assert_eq!(PODMAN.containers_of("lwt-pm7").len(), 1);
    let rows = lab.inspect_json();
    assert_eq!(rows["lwt-pm7"][0]["runtime"], "docker", "{rows}");
    // Destroy reads the socket from the journal, not from the environment.
    lab.env.clear();
    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy failed: {}", describe(&out));
    assert!(PODMAN.containers_of("lwt-pm7").is_empty());
    lab.assert_nothing_left(&[]);
}

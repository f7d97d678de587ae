//! Day-2 operations end to end (issue 15): changing a running lab without redeploying it.
//!
//! - `d2l_native_node_lifecycle_keeps_links`: `restart` gives a native node a new init in the
//!   namespace it kept — the same MAC and addresses, a ping across right after; `stop` shows the
//!   node stopped and its peer loses carrier; `start` brings it back; `--graceful` lets the node's
//!   command see SIGTERM (it writes a file to a bind), on restart and on `destroy --graceful`.
//! - `d2l_converging_deploy_changes_only_the_difference`: `deploy --dry-run` on a running lab
//!   prints the plan and changes nothing; `deploy` adds a node and links while the other nodes
//!   keep their PIDs; removing a link from the file removes only it; a changed node is recreated;
//!   `destroy --node-filter` and `deploy --node-filter` act on one node; `destroy --keep-mgmt-net`
//!   (with a node stopped) leaves the management bridge and nothing else.
//! - `d2l_docker_node_lifecycle_and_converge`: a docker node restarted by its engine gets its links
//!   back (moved into the container's new namespace) with their MACs and addresses; a converging
//!   deploy adds a docker node linked to a native one whose PID stays; `stop --graceful` and
//!   `destroy --graceful` stop the container with SIGTERM.
//! - `d2l_podman_node_restart_keeps_links`: the same for a podman node, whose management `eth0`
//!   labwire wires and moves too.
//! - `d2l_vm_node_restart_keeps_links`: a VM node's VMM boots again on the same taps (ping right
//!   after, its disk kept); a converging deploy adds a node while the VMM keeps its PID.
//!
//! - `d2f_redeploy_graceful`: `redeploy --graceful` (labwire's, and containerlab's through the
//!   `containerlab` name) lets the running node's command see SIGTERM before the lab is made
//!   again; a plain `redeploy` does not.
//!
//! Runs as root. Labs `d2l-*` and `d2f-*`, management networks on 172.30.161-165.0/24 and
//! 172.30.185.0/24, links on 10.161.0.0/16.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Ping `addr` from `node` until it answers, up to five one-second tries (a busy host may take a
/// moment to resolve a fresh neighbour); fails with the last output.
fn ping(lab: &TestLab, node: &str, addr: &str) {
    let mut last = None;
    for _ in 0..5 {
        let out = lab.exec(node, &format!("ping -c1 -W1 {addr}"));
        if out.status.success() {
            return;
        }
        last = Some(out);
    }
    panic!(
        "lab {}: ping from {node} to {addr} failed: {}",
        lab.name,
        describe(&last.expect("tried"))
    );
}

/// The node events of the lab's event stream, in order: (event, node).
fn node_events(lab: &TestLab) -> Vec<(String, String)> {
    std::fs::read_to_string(lab.state_dir().join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let node = v["node"].as_str()?.to_string();
            Some((v["event"].as_str()?.to_string(), node))
        })
        .collect()
}

fn ev(event: &str, node: &str) -> (String, String) {
    (event.to_string(), node.to_string())
}

/// A node's row of `inspect --format json`.
fn row(lab: &TestLab, node: &str) -> Value {
    let j = lab.inspect_json();
    j[&lab.name]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == lab.long_name(node).as_str())
        .cloned()
        .unwrap_or(Value::Null)
}

fn pid(lab: &TestLab, node: &str) -> i64 {
    let r = row(lab, node);
    r["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("no pid for {node} in {r}"))
}

fn state(lab: &TestLab, node: &str) -> String {
    row(lab, node)["state"].as_str().unwrap_or("").to_string()
}

fn node_count(lab: &TestLab) -> usize {
    lab.inspect_json()[&lab.name].as_array().map_or(0, Vec::len)
}

/// `ip -j link` of one interface of a node (`Null` when it has none of that name).
fn iface(lab: &TestLab, node: &str, name: &str) -> Value {
    lab.links(node)
        .into_iter()
        .find(|l| l["ifname"] == name)
        .unwrap_or(Value::Null)
}

fn mac(lab: &TestLab, node: &str, name: &str) -> String {
    let l = iface(lab, node, name);
    l["address"]
        .as_str()
        .unwrap_or_else(|| panic!("{node} has no {name}: {l}"))
        .to_string()
}

fn has_carrier(lab: &TestLab, node: &str, name: &str) -> bool {
    iface(lab, node, name)["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "LOWER_UP"))
}

fn ipv4_of(lab: &TestLab, node: &str, name: &str) -> Vec<String> {
    let v = ip_json(&[
        "-n",
        &lab.netns(node),
        "-j",
        "-4",
        "addr",
        "show",
        "dev",
        name,
    ]);
    v[0]["addr_info"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["local"].as_str().map(str::to_string))
        .collect()
}

/// `labwire VERB --name LAB --node NODE [extra]`, which must succeed.
fn lifecycle(lab: &TestLab, verb: &str, node: &str, extra: &[&str]) -> String {
    let mut c = lab.cmd();
    c.args([verb, "--name", &lab.name, "--node", node])
        .args(extra);
    let out = run_timeout(c, Duration::from_secs(600));
    assert!(
        out.status.success(),
        "labwire {verb} {node}: {}",
        describe(&out)
    );
    text(&out.stderr)
}

/// Deploy the topology `yaml` over the lab's file (a converging deploy when it runs) with `extra`
/// flags; returns the output.
fn deploy_file(lab: &TestLab, yaml: &str, extra: &[&str]) -> std::process::Output {
    std::fs::write(&lab.file, yaml).expect("write the topology");
    let mut c = lab.deploy_cmd();
    c.args(extra);
    let out = run_timeout(c, Duration::from_secs(600));
    assert!(
        out.status.success(),
        "deploy {extra:?} of lab {}: {}",
        lab.name,
        describe(&out)
    );
    out
}

/// A directory bound into nodes, with `trap.sh NAME`: a command that writes `term-NAME` beside
/// itself when it gets SIGTERM.
fn out_dir(lab: &TestLab) -> PathBuf {
    let out = lab.dir.join("out");
    std::fs::create_dir_all(&out).expect("create the out directory");
    std::fs::write(
        out.join("trap.sh"),
        "d=$(dirname \"$0\")\ntrap 'echo bye > \"$d/term-$1\"; exit 0' TERM\nwhile :; do sleep 0.2; done\n",
    )
    .expect("write trap.sh");
    out
}

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

#[test]
fn d2l_native_node_lifecycle_keeps_links() {
    require_root();
    let name = "d2l-nat";
    let yaml_of = |out: &Path| {
        format!(
            "name: {name}\nmgmt: {{network: {name}, ipv4-subnet: 172.30.161.0/24}}\n\
             topology:\n  defaults:\n    kind: linux\n    binds: [\"{}:/tmp/out\"]\n\
             \x20 nodes:\n    a: {{cmd: sh /tmp/out/trap.sh a}}\n    b: {{cmd: sh /tmp/out/trap.sh b}}\n\
             \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [10.161.11.1/30, 10.161.11.2/30]\n",
            out.display()
        )
    };
    let lab = TestLab::new("d2l-nat", name, name, &["a", "b"], "name: d2l-nat\n");
    let out = out_dir(&lab);
    std::fs::write(&lab.file, yaml_of(&out)).expect("write the topology");
    lab.deploy();
    let recorded = lab.recorded_host_objects();
    let (pid_a, pid_b) = (pid(&lab, "a"), pid(&lab, "b"));
    let mac_b = mac(&lab, "b", "eth1");
    ping(&lab, "a", "10.161.11.2");

    // Restart: a new init, the same interface, MAC and address; a ping across right after.
    let said = lifecycle(&lab, "restart", "b", &[]);
    assert!(said.contains("restarted"), "{said}");
    ping(&lab, "a", "10.161.11.2");
    assert_ne!(pid(&lab, "b"), pid_b, "b was not restarted");
    assert_eq!(pid(&lab, "a"), pid_a, "a was touched");
    assert_eq!(mac(&lab, "b", "eth1"), mac_b, "b's eth1 changed its MAC");
    assert_eq!(ipv4_of(&lab, "b", "eth1"), ["10.161.11.2"]);
    assert!(
        !out.join("term-b").exists(),
        "a restart without --graceful sent SIGTERM"
    );

    // Stop: inspect says so, the peer loses carrier, nothing runs in b.
    lifecycle(&lab, "stop", "b", &[]);
    assert_eq!(state(&lab, "b"), "stopped");
    assert_eq!(pid(&lab, "b"), 0);
    assert!(
        !has_carrier(&lab, "a", "eth1"),
        "a's eth1 keeps carrier while b is stopped"
    );
    assert!(
        !lab.exec("b", "true").status.success(),
        "exec ran in a stopped node"
    );
    assert!(
        !lab.exec("a", "ping -c1 -W1 10.161.11.2").status.success(),
        "a stopped node answered a ping"
    );
    let again = lifecycle(&lab, "stop", "b", &[]);
    assert!(again.contains("already stopped"), "{again}");

    // Start: running again with its link.
    lifecycle(&lab, "start", "b", &[]);
    assert_eq!(state(&lab, "b"), "running");
    assert!(has_carrier(&lab, "a", "eth1"));
    ping(&lab, "a", "10.161.11.2");
    assert_eq!(mac(&lab, "b", "eth1"), mac_b);

    assert_eq!(
        node_events(&lab),
        [
            ev("node-restarted", "b"),
            ev("node-stopped", "b"),
            ev("node-started", "b")
        ],
        "the event stream"
    );

    // A graceful restart lets b's command see SIGTERM.
    lifecycle(&lab, "restart", "b", &["--graceful", "--timeout", "10"]);
    assert!(
        out.join("term-b").exists(),
        "b's command got no SIGTERM from restart --graceful"
    );
    std::fs::remove_file(out.join("term-b")).expect("remove term-b");
    ping(&lab, "a", "10.161.11.2");

    // Unknown nodes are refused, naming the lab's nodes.
    let mut c = lab.cmd();
    c.args(["restart", "--name", name, "--node", "nosuch"]);
    let refused = run_timeout(c, Duration::from_secs(60));
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("a, b"),
        "{}",
        describe(&refused)
    );

    // destroy --graceful: every node's command sees SIGTERM; nothing is left.
    let mut c = lab.cmd();
    c.args(["destroy", "--name", name, "--graceful"]);
    let d = run_timeout(c, Duration::from_secs(120));
    assert!(d.status.success(), "destroy --graceful: {}", describe(&d));
    for n in ["a", "b"] {
        assert!(
            out.join(format!("term-{n}")).exists(),
            "{n}'s command got no SIGTERM from destroy --graceful"
        );
    }
    lab.assert_nothing_left(&recorded);
}

fn conv_yaml(nodes: &str, links: &[&str]) -> String {
    let name = "d2l-conv";
    let mut y = format!(
        "name: {name}\nmgmt: {{network: {name}, ipv4-subnet: 172.30.162.0/24}}\n\
         topology:\n  defaults: {{kind: linux, cmd: sleep infinity}}\n  nodes:\n{nodes}  links:\n"
    );
    for l in links {
        y.push_str(l);
    }
    y
}

const AB: &str =
    "    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [10.161.12.1/30, 10.161.12.2/30]\n";
const BC: &str =
    "    - endpoints: [\"b:eth2\", \"c:eth1\"]\n      ipv4: [10.161.12.5/30, 10.161.12.6/30]\n";
const AB2: &str =
    "    - endpoints: [\"a:eth2\", \"b:eth3\"]\n      ipv4: [10.161.12.9/30, 10.161.12.10/30]\n";

#[test]
fn d2l_converging_deploy_changes_only_the_difference() {
    require_root();
    let name = "d2l-conv";
    let two = conv_yaml("    a: {}\n    b: {}\n", &[AB]);
    let three = conv_yaml("    a: {}\n    b: {}\n    c: {}\n", &[AB, BC, AB2]);
    let lab = TestLab::new("d2l-conv", name, name, &["a", "b", "c"], &two);
    let _bridge = RemoveBridgeOnDrop("br-d2l-conv");
    lab.deploy();
    let (pid_a, pid_b) = (pid(&lab, "a"), pid(&lab, "b"));
    let journal_before = std::fs::read(lab.state_dir().join("journal")).expect("journal");

    // --dry-run prints the plan and changes nothing.
    let out = deploy_file(&lab, &three, &["--dry-run"]);
    let plan = text(&out.stdout);
    for want in [
        "add node       c",
        "add link       b:eth2 -- c:eth1",
        "add link       a:eth2 -- b:eth3",
        "keep running   a, b",
    ] {
        assert!(plan.contains(want), "the plan lacks `{want}`:\n{plan}");
    }
    assert_eq!(node_count(&lab), 2, "--dry-run made a node");
    assert!(
        !netns_exists(&lab.netns("c")),
        "--dry-run made c's namespace"
    );
    assert!(iface(&lab, "a", "eth2").is_null(), "--dry-run made a link");
    assert_eq!(
        std::fs::read(lab.state_dir().join("journal")).expect("journal"),
        journal_before,
        "--dry-run wrote to the journal"
    );

    // A node and two links join the running lab; a and b keep running untouched.
    deploy_file(&lab, &three, &[]);
    assert_eq!(
        (pid(&lab, "a"), pid(&lab, "b")),
        (pid_a, pid_b),
        "a or b was restarted"
    );
    assert_eq!(state(&lab, "c"), "running");
    ping(&lab, "c", "10.161.12.5");
    ping(&lab, "a", "10.161.12.10");
    ping(&lab, "a", "10.161.12.2");
    let pid_c = pid(&lab, "c");
    assert_eq!(node_events(&lab), [ev("node-started", "c")]);

    // The same file again changes nothing.
    let out = deploy_file(&lab, &three, &["--dry-run"]);
    assert!(
        text(&out.stdout).contains("nothing to change"),
        "{}",
        describe(&out)
    );
    deploy_file(&lab, &three, &[]);
    assert_eq!(
        (pid(&lab, "a"), pid(&lab, "b"), pid(&lab, "c")),
        (pid_a, pid_b, pid_c)
    );

    // A link removed from the file goes, and only it.
    let without = conv_yaml("    a: {}\n    b: {}\n    c: {}\n", &[AB, BC]);
    deploy_file(&lab, &without, &[]);
    assert!(iface(&lab, "a", "eth2").is_null(), "a:eth2 is still there");
    assert!(iface(&lab, "b", "eth3").is_null(), "b:eth3 is still there");
    assert_eq!(
        (pid(&lab, "a"), pid(&lab, "b"), pid(&lab, "c")),
        (pid_a, pid_b, pid_c)
    );
    ping(&lab, "a", "10.161.12.2");
    ping(&lab, "c", "10.161.12.5");

    // A node whose definition changed is recreated; the others stay.
    let changed = conv_yaml(
        "    a: {}\n    b: {}\n    c: {env: {ROLE: spine}}\n",
        &[AB, BC],
    );
    deploy_file(&lab, &changed, &[]);
    assert_ne!(pid(&lab, "c"), pid_c, "c was not recreated");
    assert_eq!((pid(&lab, "a"), pid(&lab, "b")), (pid_a, pid_b));
    assert_eq!(lab.exec_ok("c", "echo $ROLE").trim(), "spine");
    ping(&lab, "c", "10.161.12.5");

    // destroy --node-filter removes c alone; deploy --node-filter brings it back alone.
    let mut c = lab.cmd();
    c.args(["destroy", "-t"])
        .arg(&lab.file)
        .args(["--node-filter", "c"]);
    run_ok(c);
    assert_eq!(node_count(&lab), 2);
    assert!(!netns_exists(&lab.netns("c")), "c's namespace is left");
    assert!(iface(&lab, "b", "eth2").is_null(), "c's link is left in b");
    assert_eq!((pid(&lab, "a"), pid(&lab, "b")), (pid_a, pid_b));
    ping(&lab, "a", "10.161.12.2");
    deploy_file(&lab, &changed, &["--node-filter", "c"]);
    assert_eq!(state(&lab, "c"), "running");
    assert_eq!((pid(&lab, "a"), pid(&lab, "b")), (pid_a, pid_b));
    ping(&lab, "c", "10.161.12.5");

    // --keep-mgmt-net: the management bridge outlives the lab (which a stopped node does not).
    lifecycle(&lab, "stop", "c", &[]);
    let recorded = lab.recorded_host_objects();
    let mut c = lab.cmd();
    c.args(["destroy", "--name", name, "--keep-mgmt-net"]);
    run_ok(c);
    assert!(
        host_link_names().contains("br-d2l-conv"),
        "the management bridge went despite --keep-mgmt-net"
    );
    ip(&["link", "del", "br-d2l-conv"]);
    lab.assert_nothing_left(&recorded);
}

#[test]
fn d2l_docker_node_lifecycle_and_converge() {
    const IMAGE: &str = "lwt-busybox:d2l";
    DOCKER.ready_with_busybox(IMAGE);
    let name = "d2l-dk";
    let lab = TestLab::new("d2l-dk", name, name, &["a", "d", "e"], "name: d2l-dk\n");
    let out = out_dir(&lab);
    let yaml = |extra: bool| {
        let mut y = format!(
            "name: {name}\nmgmt: {{network: {name}, ipv4-subnet: 172.30.163.0/24}}\n\
             topology:\n  nodes:\n    a: {{kind: linux, cmd: sleep infinity}}\n\
             \x20   d: {{kind: linux, runtime: docker, image: {IMAGE}, binds: [\"{}:/out\"], cmd: sh /out/trap.sh d}}\n",
            out.display()
        );
        if extra {
            y.push_str(&format!(
                "    e: {{kind: linux, runtime: docker, image: {IMAGE}, cmd: sleep 100000}}\n"
            ));
        }
        y.push_str("  links:\n    - endpoints: [\"a:eth1\", \"d:eth1\"]\n      ipv4: [10.161.13.1/30, 10.161.13.2/30]\n");
        if extra {
            y.push_str("    - endpoints: [\"a:eth2\", \"e:eth1\"]\n      ipv4: [10.161.13.5/30, 10.161.13.6/30]\n");
        }
        y
    };
    deploy_file(&lab, &yaml(false), &[]);
    let (pid_a, pid_d) = (pid(&lab, "a"), pid(&lab, "d"));
    let mac_d = mac(&lab, "d", "eth1");
    ping(&lab, "a", "10.161.13.2");

    // The engine restarts the container in a new namespace: its link comes back with it.
    lifecycle(&lab, "restart", "d", &[]);
    ping(&lab, "a", "10.161.13.2");
    assert_ne!(pid(&lab, "d"), pid_d, "the container was not restarted");
    assert_eq!(pid(&lab, "a"), pid_a);
    assert_eq!(mac(&lab, "d", "eth1"), mac_d, "d's eth1 changed its MAC");
    assert_eq!(ipv4_of(&lab, "d", "eth1"), ["10.161.13.2"]);
    // The name under /run/netns is the container's namespace now.
    let in_container = DOCKER.ok(&[
        "exec",
        &lab.long_name("d"),
        "cat",
        "/sys/class/net/eth1/address",
    ]);
    assert_eq!(in_container.trim(), mac_d);
    ping(&lab, "d", "10.161.13.1");

    lifecycle(&lab, "stop", "d", &[]);
    assert_eq!(state(&lab, "d"), "stopped");
    let st = DOCKER.ok(&["inspect", "-f", "{{.State.Running}}", &lab.long_name("d")]);
    assert_eq!(st.trim(), "false", "the container still runs");
    assert!(!has_carrier(&lab, "a", "eth1"));
    lifecycle(&lab, "start", "d", &[]);
    ping(&lab, "a", "10.161.13.2");

    // A docker node and its link join the running lab; a and d keep running.
    let pid_d = pid(&lab, "d");
    deploy_file(&lab, &yaml(true), &[]);
    assert_eq!((pid(&lab, "a"), pid(&lab, "d")), (pid_a, pid_d));
    ping(&lab, "a", "10.161.13.6");
    ping(&lab, "a", "10.161.13.2");

    // The link's removal from the file removes only it.
    deploy_file(&lab, &yaml(false), &[]);
    assert!(
        DOCKER.containers_of(name).iter().all(|c| !c.contains("-e")),
        "e is left"
    );
    assert!(iface(&lab, "a", "eth2").is_null());
    assert_eq!((pid(&lab, "a"), pid(&lab, "d")), (pid_a, pid_d));
    ping(&lab, "a", "10.161.13.2");

    // A graceful stop is the engine's stop: the container's command sees SIGTERM.
    lifecycle(&lab, "stop", "d", &["--graceful"]);
    assert!(
        out.join("term-d").exists(),
        "the container got no SIGTERM from stop --graceful"
    );
    std::fs::remove_file(out.join("term-d")).expect("remove term-d");
    lifecycle(&lab, "start", "d", &[]);
    ping(&lab, "a", "10.161.13.2");

    let mut c = lab.cmd();
    c.args(["destroy", "--name", name, "--graceful"]);
    run_ok(c);
    assert!(
        out.join("term-d").exists(),
        "the container got no SIGTERM from destroy --graceful"
    );
    assert!(DOCKER.containers_of(name).is_empty(), "containers are left");
}

#[test]
fn d2l_podman_node_restart_keeps_links() {
    const IMAGE: &str = "lwt-busybox:d2l";
    PODMAN.ready_with_busybox(IMAGE);
    let name = "d2l-pm";
    let yaml = format!(
        "name: {name}\nmgmt: {{network: {name}, ipv4-subnet: 172.30.165.0/24}}\n\
         topology:\n  nodes:\n    a: {{kind: linux, cmd: sleep infinity}}\n\
         \x20   p: {{kind: linux, runtime: podman, image: \"{IMAGE}\", cmd: sleep 100000}}\n\
         \x20 links:\n    - endpoints: [\"a:eth1\", \"p:eth1\"]\n      ipv4: [10.161.15.1/30, 10.161.15.2/30]\n"
    );
    let lab = TestLab::new("d2l-pm", name, name, &["a", "p"], &yaml);
    lab.deploy();
    let recorded = lab.recorded_host_objects();
    let (pid_a, pid_p) = (pid(&lab, "a"), pid(&lab, "p"));
    let macs = (mac(&lab, "p", "eth0"), mac(&lab, "p", "eth1"));
    let (mgmt_a, _) = lab.eth0_addrs("a");
    let mgmt_a = mgmt_a.expect("a's management address");

    // Podman gives the restarted container a new namespace: labwire moves both of the node's
    // interfaces (its management eth0 is labwire's too) into it, with addresses and routes.
    lifecycle(&lab, "restart", "p", &[]);
    ping(&lab, "a", "10.161.15.2");
    ping(&lab, "p", &mgmt_a);
    assert_ne!(pid(&lab, "p"), pid_p, "the container was not restarted");
    assert_eq!(pid(&lab, "a"), pid_a);
    assert_eq!((mac(&lab, "p", "eth0"), mac(&lab, "p", "eth1")), macs);
    assert_eq!(ipv4_of(&lab, "p", "eth1"), ["10.161.15.2"]);

    let d = lab.destroy(true);
    assert!(d.status.success(), "destroy: {}", describe(&d));
    lab.assert_nothing_left(&recorded);
    assert!(PODMAN.containers_of(name).is_empty(), "containers are left");
}

#[test]
fn d2l_vm_node_restart_keeps_links() {
    require_root();
    common::open_nos::ensure_image();
    let kernel = common::open_nos::debian_kernel();
    let name = "d2l-vm";
    let yaml = |extra: bool| {
        let mut y = format!(
            "name: {name}\nmgmt: {{network: {name}, ipv4-subnet: 172.30.164.0/24}}\n\
             topology:\n  nodes:\n    r1: {{kind: linux, runtime: vm, image: \"open-nos:latest\", kernel: {}, memory: 512MB}}\n\
             \x20   h1: {{kind: linux, cmd: sleep infinity}}\n",
            kernel.display()
        );
        if extra {
            y.push_str("    h2: {kind: linux, cmd: sleep infinity}\n");
        }
        y.push_str("  links:\n    - endpoints: [\"r1:eth1\", \"h1:eth1\"]\n      ipv4: [10.161.14.1/30, 10.161.14.2/30]\n");
        if extra {
            y.push_str("    - endpoints: [\"h1:eth2\", \"h2:eth1\"]\n      ipv4: [10.161.14.5/30, 10.161.14.6/30]\n");
        }
        y
    };
    let mut lab = TestLab::new("d2l-vm", name, name, &["r1", "h1", "h2"], &yaml(false));
    lab.env.push((
        "LABWIRE_IMAGE_DIR".into(),
        common::open_nos::IMAGE_DIR.into(),
    ));
    deploy_file(&lab, &yaml(false), &[]);
    ping(&lab, "h1", "10.161.14.1");
    lab.exec_ok("r1", "echo kept > /root/mark && sync");
    let (vmm, pid_h1) = (pid(&lab, "r1"), pid(&lab, "h1"));
    let taps = |lab: &TestLab| {
        lab.links("r1")
            .iter()
            .filter_map(|l| l["ifname"].as_str().map(str::to_string))
            .filter(|n| n.starts_with("lwtap"))
            .collect::<Vec<_>>()
    };
    let taps_before = taps(&lab);

    lifecycle(&lab, "restart", "r1", &[]);
    ping(&lab, "h1", "10.161.14.1");
    assert_ne!(pid(&lab, "r1"), vmm, "the VMM was not restarted");
    assert_eq!(pid(&lab, "h1"), pid_h1);
    assert_eq!(taps(&lab), taps_before, "the VM's taps changed");
    assert_eq!(lab.exec_ok("r1", "cat /root/mark").trim(), "kept");

    // A node joins the running lab; the VM keeps its VMM.
    let vmm = pid(&lab, "r1");
    deploy_file(&lab, &yaml(true), &[]);
    assert_eq!((pid(&lab, "r1"), pid(&lab, "h1")), (vmm, pid_h1));
    ping(&lab, "h2", "10.161.14.5");
    ping(&lab, "h1", "10.161.14.1");

    let recorded = lab.recorded_host_objects();
    let mut c = lab.cmd();
    c.args(["destroy", "--name", name, "--graceful"]);
    let d = run_timeout(c, Duration::from_secs(180));
    assert!(d.status.success(), "destroy --graceful: {}", describe(&d));
    lab.assert_nothing_left(&recorded);
}

#[test]
fn d2f_redeploy_graceful() {
    let name = "d2f-rdg";
    let lab = TestLab::new("d2f-rdg", name, name, &["a"], "name: d2f-rdg\n");
    let out = out_dir(&lab);
    let yaml = format!(
        "name: {name}\nmgmt: {{network: {name}, ipv4-subnet: 172.30.185.0/24}}\n\
         topology:\n  nodes:\n    a: {{kind: linux, runtime: native, binds: [\"{}:/tmp/out\"], cmd: sh /tmp/out/trap.sh a}}\n",
        out.display()
    );
    deploy_file(&lab, &yaml, &[]);
    let term = out.join("term-a");
    let redeploy = |cmd: Command, what: &str| {
        let r = run_timeout(cmd, Duration::from_secs(180));
        assert!(r.status.success(), "{what}: {}", describe(&r));
        assert_eq!(state(&lab, "a"), "running", "{what}");
    };

    // Without --graceful the node is killed: its command sees no SIGTERM.
    let mut c = lab.cmd();
    c.args(["redeploy", "-t"]).arg(&lab.file).arg("-q");
    redeploy(c, "redeploy");
    assert!(!term.exists(), "a plain redeploy sent SIGTERM");

    let pid_before = pid(&lab, "a");
    let mut c = lab.cmd();
    c.args(["redeploy", "--graceful", "-t"])
        .arg(&lab.file)
        .arg("-q");
    redeploy(c, "redeploy --graceful");
    assert!(term.exists(), "redeploy --graceful sent no SIGTERM");
    assert_ne!(pid(&lab, "a"), pid_before, "the node was not made again");
    std::fs::remove_file(&term).expect("remove term-a");

    // The containerlab personality's flag.
    let link = lab.dir.join("containerlab");
    std::os::unix::fs::symlink(labwire_bin(), &link).expect("symlink containerlab");
    let mut c = Command::new(&link);
    c.args(["redeploy", "--graceful", "-t"])
        .arg(&lab.file)
        .current_dir(&lab.dir)
        .env_remove("CLAB_RUNTIME");
    redeploy(c, "containerlab redeploy --graceful");
    assert!(
        term.exists(),
        "containerlab redeploy --graceful sent no SIGTERM"
    );

    let recorded = lab.recorded_host_objects();
    let d = lab.destroy(true);
    assert!(d.status.success(), "destroy: {}", describe(&d));
    lab.assert_nothing_left(&recorded);
}

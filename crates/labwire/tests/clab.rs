//! labwire as containerlab, end to end: the binary run through a `containerlab` symlink deploys,
//! inspects (JSON, CSV, table, interfaces), execs by built-in label, wires with `tools`, and
//! destroys real labs, with containerlab's outputs and exit codes. Native nodes here (the labels
//! and formats must not depend on the runtime) and Docker nodes (containerlab's default runtime).

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// `containerlab` (a symlink to labwire in the lab's directory), run in the lab's directory.
fn clab(lab: &TestLab, args: &[&str]) -> Output {
    let link = lab.dir.join("containerlab");
    if !link.exists() {
        std::os::unix::fs::symlink(labwire_bin(), &link).expect("symlink containerlab");
    }
    let mut c = Command::new(&link);
    c.args(args)
        .current_dir(&lab.dir)
        .env_remove("CLAB_RUNTIME")
        .env("SUDO_USER", "lwt-owner");
    run_timeout(c, Duration::from_secs(180))
}

fn clab_ok(lab: &TestLab, args: &[&str]) -> String {
    let out = clab(lab, args);
    assert!(
        out.status.success(),
        "containerlab {args:?}: {}",
        describe(&out)
    );
    text(&out.stdout)
}

/// The interface names of one node of `inspect interfaces -f json`.
fn if_names(node: &Value) -> Vec<&str> {
    node["interfaces"]
        .as_array()
        .unwrap_or_else(|| panic!("no interfaces: {node}"))
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default())
        .collect()
}

const NATIVE: &str = "name: clnat
mgmt: {network: clnat, bridge: br-clnat, ipv4-subnet: 10.217.0.0/24, ipv6-subnet: \"fd00:217::/64\"}
topology:
  nodes:
    a: {kind: linux, group: leaves, labels: {role: leaf}}
    b: {kind: linux, group: leaves, labels: {role: leaf}}
    c: {kind: linux, healthcheck: {test: [CMD-SHELL, \"test ! -e /tmp/sick\"], interval: 1}}
  links:
    - endpoints: [\"a:eth1\", \"b:eth1\"]
";

#[test]
fn containerlab_personality_on_native_nodes() {
    let lab = TestLab::new("clnat", "clnat", "clnat", &["a", "b", "c"], NATIVE);
    let file = "topo.clab.yml";

    // version, as netlab reads it.
    let v = clab_ok(&lab, &["version"]);
    let words: Vec<&str> = v
        .lines()
        .filter(|l| l.contains("version"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(words, ["0.79.0"], "{v}");

    clab_ok(
        &lab,
        &["-r", "native", "deploy", "-t", file, "--reconfigure"],
    );

    // inspect -f json: containerlab's keys in its order, relative labPath, owner from sudo.
    let out = clab_ok(&lab, &["inspect", "-t", file, "--format", "json"]);
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let rows = j["clnat"].as_array().unwrap_or_else(|| panic!("{j}"));
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["clab-clnat-a", "clab-clnat-b", "clab-clnat-c"]);
    let a = &rows[0];
    let keys: Vec<&String> = a.as_object().unwrap().keys().collect();
    let want_keys = [
        "lab_name",
        "labPath",
        "absLabPath",
        "name",
        "container_id",
        "kind",
        "group",
        "state",
        "status",
        "ipv4_address",
        "ipv6_address",
        "owner",
    ];
    // serde_json's map sorts keys: compare the text's order instead.
    let pos: Vec<usize> = want_keys
        .iter()
        .map(|k| {
            out.find(&format!("\"{k}\""))
                .unwrap_or_else(|| panic!("no {k}: {out}"))
        })
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "key order: {out}");
    assert_eq!(keys.len(), want_keys.len(), "{a}");
    assert_eq!(a["labPath"], file);
    assert_eq!(a["absLabPath"], lab.file.display().to_string());
    assert_eq!(a["owner"], "lwt-owner");
    assert_eq!(a["group"], "leaves");
    assert_eq!(a["state"], "running");
    assert!(a["status"].as_str().unwrap().starts_with("Up "), "{a}");
    assert_eq!(a["container_id"].as_str().unwrap().len(), 12, "{a}");
    assert!(
        a["ipv4_address"].as_str().unwrap().starts_with("10.217.0."),
        "{a}"
    );
    assert!(
        rows[2].get("group").is_none(),
        "no group, no key: {}",
        rows[2]
    );
    // A node with a healthcheck shows its health alone, as containerlab does; it is checked now.
    assert_eq!(rows[2]["status"], "healthy", "{}", rows[2]);
    lab.exec_ok("c", "touch /tmp/sick");
    let sick: Value =
        serde_json::from_str(&clab_ok(&lab, &["inspect", "-t", file, "-f", "json"])).unwrap();
    assert_eq!(sick["clnat"][2]["status"], "unhealthy", "{sick}");
    lab.exec_ok("c", "rm /tmp/sick");

    // -t names a directory holding the topology: the same lab.
    // (The uptime in `status` may have moved on a second: compared without it.)
    let by_dir: Value =
        serde_json::from_str(&clab_ok(&lab, &["inspect", "-t", ".", "--format", "json"])).unwrap();
    let first: Value = serde_json::from_str(&out).unwrap();
    let timeless = |v: &Value| {
        let mut v = v.clone();
        for r in v["clnat"].as_array_mut().into_iter().flatten() {
            r.as_object_mut().map(|r| r.remove("status"));
        }
        v
    };
    assert_eq!(timeless(&by_dir), timeless(&first), "inspect -t DIR");
    // A --name that is not the topology's is refused before anything is made.
    let out = clab(&lab, &["deploy", "-t", file, "--name", "other", "-c"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("--name other"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        lab.inspect_json()["clnat"].as_array().map(Vec::len),
        Some(3)
    );
    // save: nothing to save for Linux nodes, as containerlab; --copy makes its directory.
    let out = clab(
        &lab,
        &["save", "-t", file, "--node-filter", "a", "--copy", "saved"],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let said = text(&out.stderr);
    assert!(
        said.contains("clab-clnat-a") && !said.contains("clab-clnat-b"),
        "{said}"
    );
    assert!(lab.dir.join("saved/clab-clnat").is_dir(), "{said}");
    // completion for containerlab's shells.
    assert!(clab_ok(&lab, &["completion", "bash"]).contains("containerlab"));

    // CSV: header and one line per node.
    let csv = clab_ok(&lab, &["inspect", "-t", file, "-f", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "lab_name,labPath,absLabPath,name,container_id,image,kind,state,status,ipv4_address,ipv6_address,owner");
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[1].starts_with("clnat,topo.clab.yml,"), "{csv}");
    assert!(lines[1].ends_with(",lwt-owner"), "{csv}");
    // Table (aliases ins / i), --all and --wide.
    let t = clab_ok(&lab, &["i", "--all", "--wide"]);
    assert!(t.contains("clab-clnat-b") && t.contains("lwt-owner"), "{t}");
    // A lab that is not deployed: {} and success, as containerlab.
    assert_eq!(
        clab_ok(&lab, &["inspect", "--name", "clnat-nosuch", "-f", "json"]),
        "{}\n"
    );

    // --details: the long form, with the built-in labels.
    let d: Value =
        serde_json::from_str(&clab_ok(&lab, &["inspect", "-t", file, "--details"])).unwrap();
    let first = &d["clnat"][0];
    assert_eq!(first["Names"][0], "clab-clnat-a", "{d}");
    assert_eq!(first["Labels"]["clab-node-kind"], "linux", "{d}");
    assert_eq!(first["Labels"]["clab-node-group"], "leaves", "{d}");
    assert_eq!(first["Labels"]["containerlab"], "clnat", "{d}");
    assert_eq!(first["NetworkSettings"]["IPv4pLen"], 24, "{d}");

    // inspect interfaces.
    let out = clab_ok(
        &lab,
        &[
            "inspect",
            "interfaces",
            "-t",
            file,
            "-n",
            "clab-clnat-a",
            "-f",
            "json",
        ],
    );
    let ifs: Value = serde_json::from_str(&out).unwrap();
    let list = ifs.as_array().unwrap();
    assert_eq!(list.len(), 1, "{ifs}");
    assert_eq!(list[0]["name"], "clab-clnat-a");
    assert_eq!(if_names(&list[0]), ["eth0", "eth1", "lo"], "{ifs}");
    let eth1 = &list[0]["interfaces"][1];
    assert_eq!(eth1["type"], "veth");
    assert_eq!(eth1["state"], "up");
    assert_eq!(eth1["mtu"], 9500);
    assert_eq!(list[0]["interfaces"][2]["type"], "device");

    // exec by built-in label, JSON stdout embedded as an object; two commands in order.
    let out = clab_ok(
        &lab,
        &[
            "exec",
            "-t",
            file,
            "--label",
            "clab-node-kind=linux",
            "--label",
            "clab-node-group=leaves",
            "--cmd",
            "echo '{\"host\":[1,2]}'",
            "--cmd",
            "hostname",
            "-f",
            "json",
        ],
    );
    let j: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["clab-clnat-a", "clab-clnat-b"], "{j}");
    let runs = j["clab-clnat-b"].as_array().unwrap();
    assert_eq!(runs[0]["stdout"]["host"][1], 2, "{j}");
    assert_eq!(
        runs[0]["cmd"],
        serde_json::json!(["echo", "{\"host\":[1,2]}"])
    );
    assert_eq!(runs[1]["stdout"], "b\n", "{j}");
    assert_eq!(runs[1]["return-code"], 0);
    // Labels alone: every deployed lab.
    let out = clab_ok(
        &lab,
        &[
            "exec",
            "--label",
            "containerlab=clnat",
            "--label",
            "role=leaf",
            "--cmd",
            "true",
            "-f",
            "json",
        ],
    );
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j.as_object().unwrap().len(), 2, "{j}");

    // tools: a veth between two running nodes; netem refused clearly; tx offload.
    clab_ok(
        &lab,
        &[
            "tools",
            "veth",
            "create",
            "-a",
            "clab-clnat-a:eth9",
            "-b",
            "clab-clnat-c:eth9",
            "--mtu",
            "1500",
        ],
    );
    for n in ["a", "c"] {
        let l = lab.links(n);
        let eth9 = l
            .iter()
            .find(|l| l["ifname"] == "eth9")
            .unwrap_or_else(|| panic!("{n}: {l:?}"));
        assert_eq!(eth9["mtu"], 1500);
    }
    // vxlan: a tunnel in the host, stitched to a host link (here a veth end made by tools veth).
    clab_ok(
        &lab,
        &[
            "tools",
            "veth",
            "create",
            "-a",
            "clab-clnat-c:eth8",
            "-b",
            "host:clnat-h8",
        ],
    );
    struct DelLink;
    impl Drop for DelLink {
        fn drop(&mut self) {
            // Gone already when the node's namespace went (the veth) or delete worked (vxlan).
            for l in ["clnat-h8", "vx-clnat-h8"] {
                let _ = Command::new("ip")
                    .args(["link", "del", l])
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
    let _del = DelLink;
    clab_ok(
        &lab,
        &[
            "tools",
            "vxlan",
            "create",
            "--remote",
            "127.0.0.2",
            "--id",
            "77",
            "-l",
            "clnat-h8",
            "-p",
            "14790",
        ],
    );
    let vx = ip_json(&["-d", "-j", "link", "show", "vx-clnat-h8"]);
    let info = &vx[0]["linkinfo"];
    assert_eq!(info["info_kind"], "vxlan", "{vx}");
    assert_eq!(info["info_data"]["id"], 77, "{vx}");
    assert_eq!(info["info_data"]["port"], 14790, "{vx}");
    clab_ok(&lab, &["tools", "vxlan", "delete", "-p", "vx-clnat"]);
    assert!(
        !host_link_names().contains("vx-clnat-h8"),
        "vxlan delete left vx-clnat-h8"
    );

    let out = clab(
        &lab,
        &[
            "tools",
            "netem",
            "set",
            "-n",
            "clab-clnat-a",
            "-i",
            "eth1",
            "--delay",
            "10ms",
        ],
    );
    // netem on this host's kernel is refused, naming the module; a rate (tbf) works, found by
    // the container name alone.
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("sch_netem"),
        "{}",
        describe(&out)
    );
    let set = clab_ok(
        &lab,
        &[
            "tools",
            "netem",
            "set",
            "-n",
            "clab-clnat-a",
            "-i",
            "eth1",
            "--rate",
            "1000",
        ],
    );
    assert!(set.contains("rate=1Mbit"), "{set}");
    let show = clab_ok(&lab, &["tools", "netem", "show", "-n", "clab-clnat-a"]);
    assert!(show.contains("a:eth1") && show.contains("1000"), "{show}");
    clab_ok(
        &lab,
        &[
            "tools",
            "netem",
            "reset",
            "-n",
            "clab-clnat-a",
            "-i",
            "eth1",
        ],
    );
    clab_ok(&lab, &["tools", "disable-tx-offload", "-c", "clab-clnat-a"]);

    // destroy --node-filter removes only that node (and its link); deploy --node-filter on the
    // running lab brings it back alone, the others keep running.
    let pid_b = lab.inspect_json()["clnat"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "clab-clnat-b"))
        .map(|r| r["pid"].clone());
    clab_ok(&lab, &["destroy", "-t", file, "--node-filter", "a"]);
    assert_eq!(
        lab.inspect_json()["clnat"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(!std::path::Path::new("/run/netns/clab-clnat-a").exists());
    clab_ok(
        &lab,
        &["-r", "native", "deploy", "-t", file, "--node-filter", "a"],
    );
    let j = lab.inspect_json();
    assert_eq!(j["clnat"].as_array().map(Vec::len), Some(3), "{j}");
    let pid_b_after = j["clnat"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "clab-clnat-b"))
        .map(|r| r["pid"].clone());
    assert_eq!(pid_b_after, pid_b, "b was restarted by a deploy of a alone");
    let (b_v4, _) = lab.eth0_addrs("b");
    lab.assert_ping("a", &b_v4.expect("b's management address"));

    // destroy (alias des) with --cleanup: nothing left.
    clab_ok(&lab, &["des", "-t", file, "--cleanup"]);
    lab.assert_nothing_left(&[]);
    assert!(
        !lab.lab_dir().exists(),
        "--cleanup removes the lab directory"
    );
    // Destroying what is not deployed succeeds, as containerlab's does; labwire's own fails.
    clab_ok(&lab, &["destroy", "-t", file]);
    let mut own = lab.cmd();
    own.args(["destroy", "--name", "clnat"]);
    let out = run_timeout(own, Duration::from_secs(60));
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("not deployed"),
        "{}",
        describe(&out)
    );
}

const DOCKER_LAB: &str = "name: cldock
mgmt: {network: cldock, bridge: br-cldock, ipv4-subnet: 10.218.0.0/24, ipv6-subnet: \"fd00:218::/64\"}
topology:
  nodes:
    a: {kind: linux, image: IMAGE, cmd: sleep infinity}
    b:
      kind: linux
      image: IMAGE
      cmd: sleep infinity
      healthcheck: {test: [CMD-SHELL, \"test ! -s /tmp/sick\"], interval: 1, retries: 2}
  links:
    - endpoints: [\"a:eth1\", \"b:eth1\"]
";

/// Poll `inspect -f json` until node `i` of lab cldock has `status`, or fail after 30 s.
fn wait_status(lab: &TestLab, file: &str, i: usize, status: &str) {
    let t = std::time::Instant::now();
    loop {
        let j: Value =
            serde_json::from_str(&clab_ok(lab, &["inspect", "-t", file, "-f", "json"])).unwrap();
        if j["cldock"][i]["status"] == status {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "node {i} never became {status}: {j}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// containerlab's default runtime is docker: nodes are engine containers with its labels, and
/// `redeploy` (alias rdep) replaces them; a node's health is the engine's.
#[test]
fn containerlab_personality_defaults_to_docker() {
    DOCKER.ensure_running();
    let image = "lwt/cl-busybox:1";
    DOCKER.ensure_busybox_image(image);
    let yaml = DOCKER_LAB.replace("IMAGE", image);
    let lab = TestLab::new("cldock", "cldock", "cldock", &["a", "b"], &yaml);
    let file = "topo.clab.yml";
    clab_ok(&lab, &["deploy", "-t", file]);
    let ids = |lab: &TestLab| -> Vec<String> {
        let j: Value =
            serde_json::from_str(&clab_ok(lab, &["inspect", "-t", file, "-f", "json"])).unwrap();
        j["cldock"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["container_id"].as_str().unwrap().to_string())
            .collect()
    };
    // The engine runs b's healthcheck and keeps its health; inspect shows the engine's.
    wait_status(&lab, file, 1, "healthy");
    let engine_health = || {
        DOCKER
            .ok(&["inspect", "-f", "{{.State.Health.Status}}", "clab-cldock-b"])
            .trim()
            .to_string()
    };
    assert_eq!(engine_health(), "healthy");
    DOCKER.ok(&["exec", "clab-cldock-b", "sh", "-c", "echo x > /tmp/sick"]);
    wait_status(&lab, file, 1, "unhealthy");
    assert_eq!(engine_health(), "unhealthy");
    // The default table puts the health under the state, and a's (no healthcheck) nowhere.
    let table = clab_ok(&lab, &["inspect", "-t", file]);
    assert!(table.contains("│ (unhealthy) │"), "{table}");
    assert_eq!(table.matches("(unhealthy)").count(), 1, "{table}");
    assert!(
        table.starts_with('╭') || table.starts_with("\x1b[1m╭"),
        "{table}"
    );
    DOCKER.ok(&["exec", "clab-cldock-b", "sh", "-c", ": > /tmp/sick"]);
    wait_status(&lab, file, 1, "healthy");
    let before = ids(&lab);
    for (id, n) in before.iter().zip(["a", "b"]) {
        let out = DOCKER.ok(&[
            "inspect",
            "-f",
            "{{.Id}} {{index .Config.Labels \"clab-node-name\"}}",
            &format!("clab-cldock-{n}"),
        ]);
        assert!(
            out.starts_with(id.as_str()) && out.trim().ends_with(n),
            "{id} vs {out}"
        );
    }
    clab_ok(&lab, &["rdep", "-t", file, "-c"]);
    let after = ids(&lab);
    assert_eq!(after.len(), 2);
    assert!(
        after.iter().all(|id| !before.contains(id)),
        "{before:?} → {after:?}"
    );
    let j: Value =
        serde_json::from_str(&clab_ok(&lab, &["inspect", "-t", file, "-f", "json"])).unwrap();
    let b_addr = j["cldock"][1]["ipv4_address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    lab.assert_ping("a", &b_addr);
    clab_ok(&lab, &["destroy", "-t", file, "--cleanup"]);
    assert!(DOCKER.containers_of("cldock").is_empty());
    lab.assert_nothing_left(&[]);
}

const OWN: &str = "name: clown
mgmt: {network: clown, bridge: br-clown, ipv4-subnet: 10.219.0.0/24, ipv6-subnet: \"fd00:219::/64\"}
topology:
  nodes:
    a: {kind: linux, labels: {role: edge}}
    b: {kind: linux}
    c: {kind: linux}
  links:
    - endpoints: [\"a:eth1\", \"b:eth1\"]
    - endpoints: [\"b:eth2\", \"c:eth1\"]
";

/// labwire's own commands with what containerlab users expect: --node-filter, redeploy, inspect
/// --interfaces and CSV, repeatable --cmd/--label, generate in containerlab's grammar.
#[test]
fn labwire_cli_has_containerlab_s_abilities() {
    let lab = TestLab::new("clown", "clown", "clown", &["a", "b", "c"], OWN);
    let own = |args: &[&str]| -> Output {
        let mut c = lab.cmd();
        c.args(args).current_dir(&lab.dir);
        run_timeout(c, Duration::from_secs(180))
    };
    let ok = |args: &[&str]| -> String {
        let out = own(args);
        assert!(out.status.success(), "labwire {args:?}: {}", describe(&out));
        text(&out.stdout)
    };
    let file = lab.file.to_str().unwrap();

    // graph and deploy of a subset: a and b, their link, not c.
    let dot = ok(&["graph", "-t", file, "--node-filter", "a,b"]);
    assert!(
        dot.contains("\"a\" -- \"b\"") && !dot.contains("\"c\""),
        "{dot}"
    );
    let out = own(&["deploy", "-t", file, "-q", "--node-filter", "a,x"]);
    assert!(
        !out.status.success() && text(&out.stderr).contains("x"),
        "{}",
        describe(&out)
    );
    ok(&["deploy", "-t", file, "-q", "--node-filter", "a,b"]);
    let csv = ok(&["inspect", "-t", file, "-f", "csv"]);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        csv.contains("clab-clown-a,") && !csv.contains("clab-clown-c"),
        "{csv}"
    );
    let csv = ok(&["inspect", "-t", file, "-f", "csv", "--node-filter", "b"]);
    assert_eq!(csv.lines().count(), 2, "{csv}");
    let links = lab.links("a");
    assert!(links.iter().any(|l| l["ifname"] == "eth1"), "{links:?}");

    // redeploy: the whole lab now, new processes.
    ok(&["redeploy", "-t", file, "-q"]);
    let j: Value = lab.inspect_json();
    assert_eq!(j["clown"].as_array().map(Vec::len), Some(3), "{j}");

    // inspect --interfaces with --node-filter: b's link ends and their peers.
    let ifs: Value = serde_json::from_str(&ok(&[
        "inspect",
        "--interfaces",
        "-t",
        file,
        "--node-filter",
        "b",
        "-f",
        "json",
    ]))
    .unwrap();
    let peers: Vec<(&str, &str)> = ifs["clown"]
        .as_array()
        .unwrap_or_else(|| panic!("{ifs}"))
        .iter()
        .map(|r| {
            (
                r["interface"].as_str().unwrap(),
                r["peer"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(peers, [("eth1", "a:eth1"), ("eth2", "c:eth1")], "{ifs}");

    // exec: repeatable --cmd, --label with built-in and own labels, --node-filter.
    let j: Value = serde_json::from_str(&ok(&[
        "exec",
        "-t",
        file,
        "--label",
        "clab-node-kind=linux",
        "--label",
        "role=edge",
        "--cmd",
        "hostname",
        "--cmd",
        "echo two",
        "-f",
        "json",
    ]))
    .unwrap();
    let runs = j["clab-clown-a"]
        .as_array()
        .unwrap_or_else(|| panic!("{j}"));
    assert_eq!(j.as_object().unwrap().len(), 1, "{j}");
    assert_eq!(
        (runs[0]["stdout"].as_str(), runs[1]["stdout"].as_str()),
        (Some("a\n"), Some("two\n"))
    );
    let j: Value = serde_json::from_str(&ok(&[
        "exec",
        "-t",
        file,
        "--node-filter",
        "b,c",
        "--cmd",
        "true",
        "-f",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        j.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["clab-clown-b", "clab-clown-c"]
    );

    // generate: containerlab's grammar, and clos without tiers is an error.
    let gen = ok(&[
        "generate",
        "--name",
        "g",
        "--nodes",
        "2,1:linux:spine",
        "--image",
        "alpine:3",
    ]);
    assert!(
        gen.contains("node2-1") && gen.contains("\"node1-2:eth1\", \"node2-1:eth2\""),
        "{gen}"
    );
    let out = own(&["generate", "clos"]);
    assert!(!out.status.success(), "{}", describe(&out));

    let out = lab.destroy(true);
    assert!(out.status.success(), "{}", describe(&out));
    lab.assert_nothing_left(&[]);
}

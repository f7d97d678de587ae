//! The flagship user story end to end (issue 7): build the open-nos image from its package list
//! (`images/open-nos/build.sh`, mmdebstrap + `labwire image import`), deploy the cldemo2 fabric
//! (`examples/cldemo2/`) on it, wait for BGP unnumbered and EVPN between the leaves, check L3
//! across the fabric and the EVPN L2 VNI between server01 and server03, drive every node with real
//! ansible-core over SSH (the lab's inventory, the lab's authorized_keys), run the example
//! playbook, destroy, and check nothing is left.
//!
//! Runs as root. The image goes to its own store, `/var/tmp/lwt-c2-images`, and is reused while the
//! recipe (suite, sources, packages, customize.sh) is unchanged, so only the first run pays for the
//! download (set `LWT_C2_REBUILD=1` to force a build). The example is copied to a temp dir and
//! deployed as lab `lwt-c2` on its own management network (172.31.201.0/24, fd00:c2:1::/64).
//! Needs: mmdebstrap (build.sh installs it when missing), ansible-core (`ansible`,
//! `ansible-playbook`; installed with apt-get when missing), ssh and ssh-keygen (openssh-client).
//!
//! Timings are printed (`--nocapture` shows them): image build, deploy, deploy → all sessions
//! Established, ansible ping.
//!
//! `cldemo2_on_docker` deploys the same example with `-r docker` (every node a container) as lab
//! `lwt-c2d` (172.31.202.0/24, fd00:c2:2::/64): the image is also imported into the Docker engine as
//! open-nos:latest (`build.sh --docker`), reused while its recipe is unchanged. dockerd must answer
//! (`scripts/test` starts it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::open_nos::{
    debian_kernel, docker_cmd, ensure_image, ensure_image_for, repo_root, IMAGE_DIR,
};
use common::*;
use serde_json::Value;

const LAB: &str = "lwt-c2";
const NETWORK: &str = "lwt-c2";
const NODES: [&str; 5] = ["leaf01", "leaf02", "server01", "server02", "server03"];
const LEAVES: [&str; 2] = ["leaf01", "leaf02"];
const DOCKER_LAB: &str = "lwt-c2d";
const DOCKER_NETWORK: &str = "lwt-c2d";
const VM_LAB: &str = "lwt-c2v";
const VM_NETWORK: &str = "lwt-c2v";

/// The Docker engine answers `docker info` (scripts/test starts dockerd); else the test fails.
fn require_dockerd() {
    let out = docker_cmd(&["info"]);
    assert!(
        out.status.success(),
        "cldemo2_on_docker needs a running Docker engine: `docker info` failed ({}). \
         Start dockerd (scripts/test does: `nohup dockerd >/tmp/dockerd.log 2>&1 &`; \
         Debian package docker.io)",
        describe(&out)
    );
}

/// The directory holding `ansible` and `ansible-playbook`, installing ansible-core (Debian's
/// package) when neither PATH nor the test venv has it.
fn ansible_dir() -> PathBuf {
    let find = || -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([
                PathBuf::from("/usr/bin"),
                PathBuf::from("/var/tmp/lwt-ansible/bin"),
            ])
            .find(|d| d.join("ansible").is_file() && d.join("ansible-playbook").is_file())
    };
    if let Some(d) = find() {
        return d;
    }
    eprintln!("cldemo2: ansible missing; apt-get install -y ansible-core");
    let mut apt = Command::new("apt-get");
    apt.args(["install", "-y", "-q", "ansible-core"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    let out = run_timeout(apt, Duration::from_secs(600));
    if !out.status.success() {
        eprintln!(
            "cldemo2: apt-get install ansible-core failed ({}); trying pip in /var/tmp/lwt-ansible",
            describe(&out)
        );
        let mut venv = Command::new("python3");
        venv.args(["-m", "venv", "/var/tmp/lwt-ansible"]);
        run_ok(venv);
        let mut pip = Command::new("/var/tmp/lwt-ansible/bin/pip");
        pip.args(["install", "-q", "ansible-core"]);
        let out = run_timeout(pip, Duration::from_secs(600));
        assert!(
            out.status.success(),
            "cannot install ansible-core: {}",
            describe(&out)
        );
    }
    find().expect("ansible and ansible-playbook after installing ansible-core")
}

/// The example, copied to the lab's temp dir with this test's lab name and management network;
/// leaf01's frr.conf there is the one the playbook will push, with a description the deployed
/// configuration does not have yet.
fn example_yaml() -> String {
    example_yaml_as(LAB, NETWORK, "172.31.201.0/24", "fd00:c2:1::/64")
}

/// The example as lab `lab` on management network `network` with subnets `v4` and `v6`.
fn example_yaml_as(lab: &str, network: &str, v4: &str, v6: &str) -> String {
    let src = repo_root().join("examples/cldemo2/cldemo2.clab.yml");
    let y = std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    let replaced = y
        .replace("\nname: cldemo2\n", &format!("\nname: {lab}\n"))
        .replace("network: cldemo2-frr", &format!("network: {network}"))
        .replace("172.31.200.0/24", v4)
        .replace("fd00:c2::/64", v6);
    for (from, what) in [
        (format!("name: {lab}"), "lab name"),
        (format!("network: {network}"), "network"),
        (v4.to_string(), "IPv4 subnet"),
        (v6.to_string(), "IPv6 subnet"),
    ] {
        assert!(
            replaced.contains(&from),
            "examples/cldemo2/cldemo2.clab.yml: could not set the {what} (expected `name: cldemo2`, \
             `network: cldemo2-frr`, 172.31.200.0/24, fd00:c2::/64)"
        );
    }
    replaced
}

fn copy_example(into: &Path) {
    common::open_nos::copy_example(
        "examples/cldemo2",
        &[
            "start.sh",
            "ansible.cfg",
            "playbook.yml",
            "leaf01/frr.conf",
            "leaf02/frr.conf",
        ],
        into,
    );
}

/// Ok when both sessions (swp49, swp50) of `leaf` are Established in IPv4 unicast and EVPN.
fn sessions_established(lab: &TestLab, leaf: &str) -> Result<(), String> {
    let out = lab.exec(leaf, "vtysh -c 'show bgp summary json'");
    common::open_nos::sessions_established_in(leaf, &out)
}

fn ping_within(lab: &TestLab, node: &str, addr: &str, timeout: Duration) {
    let r = poll(timeout, || {
        let out = lab.exec(node, &format!("ping -c1 -W1 {addr}"));
        if out.status.success() {
            Ok(())
        } else {
            Err(describe(&out))
        }
    });
    if let Err(e) = r {
        panic!("{node} cannot reach {addr} within {timeout:?}: {e}");
    }
}

fn mac_of(lab: &TestLab, node: &str, iface: &str) -> String {
    let v = ip_json(&["-n", &lab.netns(node), "-j", "link", "show", "dev", iface]);
    v[0]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("{node} {iface} has no MAC: {v}"))
        .to_lowercase()
}

/// `leaf` has `mac` in VNI 100 as a remote MAC behind `vtep` (learned over EVPN), in FRR and in
/// the kernel's FDB of vxlan100.
fn remote_mac(lab: &TestLab, leaf: &str, mac: &str, vtep: &str) -> Result<(), String> {
    let out = lab.exec(leaf, "vtysh -c 'show evpn mac vni 100 json'");
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "{leaf}: show evpn mac printed no JSON ({e}): {}",
            describe(&out)
        )
    })?;
    let m = &v["macs"][mac];
    if m["type"] != "remote" || m["remoteVtep"] != vtep {
        return Err(format!(
            "{leaf}: MAC {mac} is not remote behind {vtep} in `show evpn mac vni 100`: {v}"
        ));
    }
    let fdb = lab.exec(leaf, "bridge fdb show dev vxlan100");
    let want = format!("{mac} dst {vtep} self extern_learn");
    if !text(&fdb.stdout)
        .lines()
        .any(|l| l.trim().starts_with(&want))
    {
        return Err(format!(
            "{leaf}: no `{want}` in bridge fdb show dev vxlan100:\n{}",
            text(&fdb.stdout)
        ));
    }
    Ok(())
}

#[test]
fn cldemo2_open_nos_bgp_evpn_ssh_ansible() {
    require_root();
    let t_all = Instant::now();
    let build_secs = ensure_image();
    let ansible = ansible_dir();

    let lab = {
        let mut lab = TestLab::with_file(
            "cldemo2",
            LAB,
            NETWORK,
            &NODES,
            "cldemo2.clab.yml",
            &example_yaml(),
        );
        copy_example(&lab.dir);
        // The test's own ssh key, in a HOME of its own: deploy puts ~/.ssh/*.pub into the lab's
        // authorized_keys, which every open-nos node gets as /root/.ssh/authorized_keys.
        let home = lab.dir.join("home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        let mut keygen = Command::new("ssh-keygen");
        keygen.args(["-q", "-t", "ed25519", "-N", "", "-C", "lwt-c2", "-f"]);
        keygen.arg(home.join(".ssh/id_ed25519"));
        run_ok(keygen);
        lab.env.push(("HOME".into(), home.display().to_string()));
        lab.env.push(("LABWIRE_IMAGE_DIR".into(), IMAGE_DIR.into()));
        lab.env.retain(|(k, _)| k != "SSH_AUTH_SOCK");
        lab
    };
    let home = lab.dir.join("home");
    let key = home.join(".ssh/id_ed25519");

    // Deploy, then wait for every BGP session (IPv4 unicast and EVPN, swp49 and swp50, both leaves).
    let t0 = Instant::now();
    let mut deploy = lab.deploy_cmd();
    deploy.env_remove("SSH_AUTH_SOCK");
    let out = run_timeout(deploy, Duration::from_secs(180));
    assert!(out.status.success(), "deploy failed: {}", describe(&out));
    let deploy_secs = t0.elapsed().as_secs_f64();
    for leaf in LEAVES {
        if let Err(e) = poll(Duration::from_secs(90), || sessions_established(&lab, leaf)) {
            let log = std::fs::read_to_string(
                lab::paths::lab_run_dir(LAB).join(leaf).join("console.log"),
            )
            .unwrap_or_default();
            panic!("BGP sessions not Established within 90 s: {e}\n{leaf} console:\n{log}");
        }
    }
    let established_secs = t0.elapsed().as_secs_f64();

    // L3 across the fabric: server02 and server03 have their gateways on leaf02, server01 on leaf01.
    if let Err(e) = poll(Duration::from_secs(15), || {
        let route = lab.exec("leaf01", "ip route show 10.2.2.0/24");
        if text(&route.stdout).contains("proto bgp") {
            Ok(())
        } else {
            Err(describe(&route))
        }
    }) {
        panic!("leaf01 has no BGP route to server02's subnet (10.2.2.0/24) within 15 s: {e}");
    }
    ping_within(&lab, "server01", "10.2.2.102", Duration::from_secs(15));
    ping_within(&lab, "server01", "10.2.3.103", Duration::from_secs(15));
    ping_within(&lab, "server02", "10.2.3.103", Duration::from_secs(15));

    // The EVPN L2 VNI: server01 (eth2, on leaf02) and server03 (eth1, on leaf01) share 10.1.100.0/24;
    // the leaves have no address there, so the only way between them is VXLAN 10.0.0.2 <-> 10.0.0.1.
    ping_within(&lab, "server01", "10.1.100.103", Duration::from_secs(15));
    ping_within(&lab, "server03", "10.1.100.101", Duration::from_secs(15));
    let server03_mac = mac_of(&lab, "server03", "eth1");
    let server01_mac = mac_of(&lab, "server01", "eth2");
    if let Err(e) = poll(Duration::from_secs(10), || {
        remote_mac(&lab, "leaf02", &server03_mac, "10.0.0.1")?;
        remote_mac(&lab, "leaf01", &server01_mac, "10.0.0.2")
    }) {
        panic!("EVPN did not carry the servers' MACs: {e}");
    }

    // SSH: the lab's ssh config (when the host has /etc/ssh/ssh_config.d) makes
    // `ssh clab-<lab>-<node>` work without prompts.
    let inventory = lab.lab_dir().join("ansible-inventory.yml");
    assert!(
        inventory.is_file(),
        "deploy wrote no {} (lab directory has: {:?})",
        inventory.display(),
        std::fs::read_dir(lab.lab_dir())
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
            .unwrap_or_default()
    );
    let authorized =
        std::fs::read_to_string(lab.lab_dir().join("authorized_keys")).unwrap_or_default();
    let public = std::fs::read_to_string(home.join(".ssh/id_ed25519.pub")).unwrap();
    let public_key: String = public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        authorized.contains(&public_key),
        "the lab's authorized_keys lacks the test's key {public_key}: {authorized:?}"
    );
    if Path::new("/etc/ssh/ssh_config.d").is_dir() {
        let conf = format!("/etc/ssh/ssh_config.d/clab-{LAB}.conf");
        assert!(Path::new(&conf).is_file(), "deploy wrote no {conf}");
        let mut ssh = Command::new("ssh");
        ssh.env("HOME", &home)
            .arg("-i")
            .arg(&key)
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
            .arg(lab.long_name("server02"))
            .arg("hostname");
        let out = run_timeout(ssh, Duration::from_secs(30));
        assert!(
            out.status.success() && text(&out.stdout).trim() == "server02",
            "ssh {} hostname: {}",
            lab.long_name("server02"),
            describe(&out)
        );
    }

    // Real ansible-core against the generated inventory: every node answers ping.
    let ansible_cmd = |prog: &str| {
        let mut c = Command::new(ansible.join(prog));
        c.current_dir(&lab.dir)
            .env("HOME", &home)
            .env("ANSIBLE_CONFIG", lab.dir.join("ansible.cfg"))
            .env("ANSIBLE_HOST_KEY_CHECKING", "False")
            .env("ANSIBLE_NOCOLOR", "1")
            .env_remove("SSH_AUTH_SOCK");
        c
    };
    let t_ping = Instant::now();
    let mut ping = ansible_cmd("ansible");
    ping.args(["all", "-i"])
        .arg(&inventory)
        .args(["-m", "ping", "-u", "root", "--private-key"])
        .arg(&key);
    let out = run_timeout(ping, Duration::from_secs(120));
    let ping_secs = t_ping.elapsed().as_secs_f64();
    let printed = text(&out.stdout);
    assert!(
        out.status.success(),
        "ansible all -m ping failed: {}",
        describe(&out)
    );
    for n in NODES {
        let want = format!("{} | SUCCESS", lab.long_name(n));
        assert!(
            printed.contains(&want),
            "no `{want}` from ansible ping: {}",
            describe(&out)
        );
    }

    // The playbook pushes leaf01's changed frr.conf, applies it and checks the sessions.
    let leaf01_conf = lab.dir.join("leaf01/frr.conf");
    let conf = std::fs::read_to_string(&leaf01_conf).unwrap();
    let anchor = " neighbor swp50 interface remote-as external\n";
    assert!(
        conf.contains(anchor),
        "leaf01/frr.conf has no `{}`",
        anchor.trim()
    );
    std::fs::write(
        &leaf01_conf,
        conf.replace(
            anchor,
            &format!("{anchor} neighbor swp49 description pushed-by-ansible\n"),
        ),
    )
    .unwrap();
    let mut play = ansible_cmd("ansible-playbook");
    play.arg("-i")
        .arg(&inventory)
        .args(["--private-key"])
        .arg(&key)
        .arg(lab.dir.join("playbook.yml"));
    let out = run_timeout(play, Duration::from_secs(300));
    assert!(
        out.status.success(),
        "ansible-playbook failed: {}",
        describe(&out)
    );
    let recap = text(&out.stdout);
    for leaf in LEAVES {
        let host = lab.long_name(leaf);
        assert!(
            recap
                .lines()
                .any(|l| l.starts_with(&host) && l.contains("failed=0")),
            "no successful recap for {host}: {recap}"
        );
    }
    let running = lab.exec("leaf01", "vtysh -c 'show running-config'");
    assert!(
        text(&running.stdout).contains("neighbor swp49 description pushed-by-ansible"),
        "the playbook's configuration is not running on leaf01: {}",
        describe(&running)
    );
    for leaf in LEAVES {
        poll(Duration::from_secs(30), || sessions_established(&lab, leaf))
            .unwrap_or_else(|e| panic!("after the playbook: {e}"));
    }

    // Destroy: nothing of the lab is left (namespaces, links, mounts, processes, state, files).
    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy failed: {}", describe(&out));
    lab.assert_nothing_left(&[]);
    let conf = format!("/etc/ssh/ssh_config.d/clab-{LAB}.conf");
    assert!(!Path::new(&conf).exists(), "destroy left {conf}");
    assert!(
        hosts_block(&read_etc_hosts(), LAB).is_none(),
        "destroy left the lab's /etc/hosts block"
    );
    assert!(
        !lab.lab_dir().exists(),
        "destroy --cleanup left {}",
        lab.lab_dir().display()
    );

    let show = |s: Option<f64>| s.map_or_else(|| "reused".to_string(), |s| format!("{s:.1} s"));
    eprintln!(
        "cldemo2 timings: image build {}, deploy {deploy_secs:.2} s, deploy → all BGP/EVPN sessions \
         Established {established_secs:.2} s, ansible ping (5 nodes) {ping_secs:.2} s, whole test {:.1} s",
        show(build_secs),
        t_all.elapsed().as_secs_f64()
    );
}

/// The open-nos image's own init: systemd runs as the node's PID 1 (labwire-init hands over to it),
/// in a cgroup namespace rooted at the node's own cgroup, and reaches `running`; the node's /dev is
/// its own, so no getty lands on the host's consoles; destroy removes the node's cgroups.
#[test]
fn open_nos_boots_systemd_as_pid1() {
    ensure_image();
    let yaml = "name: lwt-sd\n\
        mgmt: {network: lwt-sd, ipv4-subnet: 10.250.1.0/24, ipv6-subnet: fd00:250:1::/64}\n\
        topology:\n  nodes:\n    s1: {image: \"open-nos:latest\", cmd: /lib/systemd/systemd}\n";
    let mut lab = TestLab::new("sd", "lwt-sd", "lwt-sd", &["s1"], yaml);
    lab.env
        .push(("LABWIRE_IMAGE_DIR".to_string(), IMAGE_DIR.to_string()));
    lab.deploy();
    let deadline = Instant::now() + Duration::from_secs(90);
    let state = loop {
        let out = lab.exec("s1", "systemctl is-system-running || true");
        let state = text(&out.stdout).trim().to_string();
        if state == "running" || state == "degraded" || Instant::now() > deadline {
            break state;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let failed = text(
        &lab.exec("s1", "systemctl --failed --no-legend || true")
            .stdout,
    );
    assert_eq!(
        state, "running",
        "systemd state {state}; failed units:\n{failed}"
    );
    let pid1 = text(&lab.exec("s1", "tr '\\0' ' ' < /proc/1/cmdline").stdout);
    assert!(
        pid1.starts_with("/lib/systemd/systemd"),
        "PID 1 is `{pid1}`"
    );
    let dev = text(&lab.exec("s1", "ls /dev").stdout);
    assert!(
        !dev.lines()
            .any(|l| l == "tty1" || l == "ttyS0" || l.starts_with("sd") || l.starts_with("vd")),
        "the node sees host devices: {dev}"
    );
    let cgroup_root = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            (post.split(' ').next()? == "cgroup2")
                .then(|| pre.split(' ').nth(4).map(PathBuf::from))?
        })
        .expect("a cgroup2 mount");
    let lab_cgroup = cgroup_root.join("labwire").join("lwt-sd");
    assert!(
        lab_cgroup.join("s1").join("init.scope").is_dir(),
        "systemd made no init.scope under {}",
        lab_cgroup.display()
    );
    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    assert!(
        !lab_cgroup.exists(),
        "{} is left after destroy",
        lab_cgroup.display()
    );
    lab.assert_nothing_left(&[]);
}

/// The containers of lab `lab`, as `docker ps` lists them (label `containerlab=<lab>`): name and
/// labels.
fn docker_containers(lab: &str) -> Vec<(String, Value)> {
    let out = docker_cmd(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=containerlab={lab}"),
        "--format",
        "{{.Names}}",
    ]);
    assert!(out.status.success(), "docker ps: {}", describe(&out));
    text(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|name| {
            let out = docker_cmd(&["inspect", "-f", "{{json .Config.Labels}}", name]);
            assert!(
                out.status.success(),
                "docker inspect {name}: {}",
                describe(&out)
            );
            let labels: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("labels of {name}: {e}: {}", text(&out.stdout)));
            (name.to_string(), labels)
        })
        .collect()
}

/// The same fabric with every node a Docker container (`labwire deploy -r docker`): BGP unnumbered
/// and EVPN come up, L3 crosses the fabric, the EVPN VNI carries server01 ↔ server03, `docker ps`
/// shows the five containers with containerlab's labels, and destroy leaves nothing.
#[test]
fn cldemo2_on_docker() {
    require_root();
    require_dockerd();
    let t_all = Instant::now();
    let build_secs = ensure_image_for(true);

    let lab = TestLab::with_file(
        "cldemo2d",
        DOCKER_LAB,
        DOCKER_NETWORK,
        &NODES,
        "cldemo2.clab.yml",
        &example_yaml_as(
            DOCKER_LAB,
            DOCKER_NETWORK,
            "172.31.202.0/24",
            "fd00:c2:2::/64",
        ),
    );
    copy_example(&lab.dir);
    let console = |node: &str| {
        let out = docker_cmd(&["logs", &lab.long_name(node)]);
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    };

    let t0 = Instant::now();
    let mut deploy = lab.deploy_cmd();
    deploy.args(["-r", "docker"]);
    let out = run_timeout(deploy, Duration::from_secs(180));
    assert!(
        out.status.success(),
        "deploy -r docker failed: {}",
        describe(&out)
    );
    let deploy_secs = t0.elapsed().as_secs_f64();
    for leaf in LEAVES {
        if let Err(e) = poll(Duration::from_secs(90), || sessions_established(&lab, leaf)) {
            panic!(
                "BGP sessions not Established within 90 s: {e}\n{leaf} (docker logs):\n{}",
                console(leaf)
            );
        }
    }
    let established_secs = t0.elapsed().as_secs_f64();

    // L3 across the fabric, then the EVPN L2 VNI (VXLAN between the leaves' loopbacks).
    ping_within(&lab, "server01", "10.2.2.102", Duration::from_secs(15));
    ping_within(&lab, "server01", "10.2.3.103", Duration::from_secs(15));
    ping_within(&lab, "server02", "10.2.3.103", Duration::from_secs(15));
    ping_within(&lab, "server01", "10.1.100.103", Duration::from_secs(15));
    ping_within(&lab, "server03", "10.1.100.101", Duration::from_secs(15));
    let server03_mac = mac_of(&lab, "server03", "eth1");
    let server01_mac = mac_of(&lab, "server01", "eth2");
    if let Err(e) = poll(Duration::from_secs(10), || {
        remote_mac(&lab, "leaf02", &server03_mac, "10.0.0.1")?;
        remote_mac(&lab, "leaf01", &server01_mac, "10.0.0.2")
    }) {
        panic!("EVPN did not carry the servers' MACs: {e}");
    }

    // The five containers, as docker sees them, with containerlab's labels.
    let containers = docker_containers(DOCKER_LAB);
    let mut names: Vec<&str> = containers.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    let want: Vec<String> = NODES.iter().map(|n| lab.long_name(n)).collect();
    assert_eq!(names, want, "docker ps of lab {DOCKER_LAB}");
    let file = lab.file.display().to_string();
    for (name, labels) in &containers {
        let node = name
            .strip_prefix(&format!("clab-{DOCKER_LAB}-"))
            .expect("clab-<lab>-<node>");
        let (group, role) = if node.starts_with("leaf") {
            ("leaves", "leaf")
        } else {
            ("servers", "server")
        };
        let node_dir = lab.lab_dir().join(node).display().to_string();
        for (k, v) in [
            ("containerlab", DOCKER_LAB),
            ("clab-node-name", node),
            ("clab-node-longname", name.as_str()),
            ("clab-node-kind", "linux"),
            ("clab-node-group", group),
            ("clab-node-lab-dir", node_dir.as_str()),
            ("clab-topo-file", file.as_str()),
            ("role", role),
        ] {
            assert_eq!(labels[k].as_str(), Some(v), "{name}: label {k} in {labels}");
        }
    }

    // Destroy: no containers, no netns entries, no bridge, no state.
    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy failed: {}", describe(&out));
    let left = docker_containers(DOCKER_LAB);
    assert!(left.is_empty(), "containers left after destroy: {left:?}");
    for n in NODES {
        let ns = Path::new("/run/netns").join(lab.netns(n));
        assert!(!ns.exists(), "destroy left {}", ns.display());
    }
    assert!(
        !host_link_names().contains(&lab.bridge),
        "destroy left the bridge {}",
        lab.bridge
    );
    lab.assert_nothing_left(&[]);
    assert!(
        hosts_block(&read_etc_hosts(), DOCKER_LAB).is_none(),
        "destroy left the lab's /etc/hosts block"
    );
    assert!(
        !lab.lab_dir().exists(),
        "destroy --cleanup left {}",
        lab.lab_dir().display()
    );

    let show = |s: Option<f64>| s.map_or_else(|| "reused".to_string(), |s| format!("{s:.1} s"));
    eprintln!(
        "cldemo2 on docker timings: image build {}, deploy -r docker {deploy_secs:.2} s, deploy → all \
         BGP/EVPN sessions Established {established_secs:.2} s, whole test {:.1} s",
        show(build_secs),
        t_all.elapsed().as_secs_f64()
    );
}

/// The same fabric with every node a VM (QEMU, Debian's kernel, the open-nos image as its root
/// disk): BGP unnumbered between the leaves' guests, EVPN over VXLAN (the guest loads the vxlan
/// module from its kernel's modules disk), pings across the fabric and the VNI, nothing left.
#[test]
fn cldemo2_on_vms() {
    require_root();
    ensure_image();
    let kernel = debian_kernel();
    let yaml = example_yaml_as(VM_LAB, VM_NETWORK, "172.31.203.0/24", "fd00:c2:3::/64");
    let yaml = yaml.replacen(
        "  defaults:\n",
        &format!(
            "  defaults:\n    runtime: vm\n    kernel: {}\n    memory: 384MB\n",
            kernel.display()
        ),
        1,
    );
    assert!(
        yaml.contains("runtime: vm"),
        "the example has no `defaults:`"
    );
    let mut lab = TestLab::with_file(
        "cldemo2v",
        VM_LAB,
        VM_NETWORK,
        &NODES,
        "cldemo2.clab.yml",
        &yaml,
    );
    lab.env
        .push(("LABWIRE_IMAGE_DIR".to_string(), IMAGE_DIR.to_string()));
    copy_example(&lab.dir);
    let console = |node: &str| {
        std::fs::read_to_string(lab.lab_dir().join(node).join("console.log")).unwrap_or_default()
    };

    let t0 = Instant::now();
    let out = run_timeout(lab.deploy_cmd(), Duration::from_secs(900));
    assert!(out.status.success(), "deploy failed: {}", describe(&out));
    let deploy_secs = t0.elapsed().as_secs_f64();
    for leaf in LEAVES {
        // Every vtysh run costs the emulated leaf a second or more of CPU that FRR needs to
        // converge: ask once a second, not back to back.
        if let Err(e) = poll(Duration::from_secs(240), || {
            sessions_established(&lab, leaf)
                .inspect_err(|_| std::thread::sleep(Duration::from_secs(1)))
        }) {
            let log = console(leaf);
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "BGP sessions not Established within 240 s: {e}\n{leaf} console (last lines, newest first):\n{}",
                tail.join("\n")
            );
        }
    }
    let established_secs = t0.elapsed().as_secs_f64();
    ping_within(&lab, "server01", "10.2.3.103", Duration::from_secs(30));
    ping_within(&lab, "server02", "10.2.3.103", Duration::from_secs(30));
    ping_within(&lab, "server01", "10.1.100.103", Duration::from_secs(30));
    ping_within(&lab, "server03", "10.1.100.101", Duration::from_secs(30));
    let server03_mac = mac_of(&lab, "server03", "eth1");
    if let Err(e) = poll(Duration::from_secs(30), || {
        remote_mac(&lab, "leaf02", &server03_mac, "10.0.0.1")
    }) {
        panic!("EVPN did not carry server03's MAC to leaf02: {e}");
    }
    eprintln!(
        "cldemo2 on VMs: deploy (all guests up) {deploy_secs:.1} s, all sessions Established {established_secs:.1} s after the deploy started"
    );
    let out = lab.destroy(false);
    assert!(out.status.success(), "destroy failed: {}", describe(&out));
    lab.assert_nothing_left(&[]);
}

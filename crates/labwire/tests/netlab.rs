//! netlab end to end on labwire as containerlab: netlab (PyPI `networklab`, in a cached
//! virtualenv) runs `containerlab version|deploy|destroy` against labwire's personality (a
//! `containerlab` symlink on PATH) and reaches the nodes with `docker exec`, so the nodes must be
//! real Docker containers. Three FRR routers run OSPF, a Linux host pings across them; `netlab
//! status`, `connect`, `capture` and `restart` work; after `netlab down --cleanup` nothing may be
//! left.
//!
//! netlab's default images cannot be pulled here: `images/netlab-stand-ins/build.sh` builds
//! stand-ins under their names (reused while its recipe is unchanged). This host's kernel has no
//! VRF and no loadable modules, so the topology turns off FRR's management VRF and netlab's kernel
//! modules.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const NETLAB_VERSION: &str = "26.10";
const VENV: &str = "/var/cache/labwire-tests/netlab-venv";

/// A virtualenv with netlab NETLAB_VERSION, made once and reused (one test at a time makes it).
fn netlab_venv() -> PathBuf {
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let venv = PathBuf::from(VENV);
    let netlab = venv.join("bin/netlab");
    let current = Command::new(&netlab)
        .arg("version")
        .output()
        .is_ok_and(|o| text(&o.stdout).contains(&format!("netlab version {NETLAB_VERSION}")));
    if !current {
        let _ = std::fs::remove_dir_all(&venv);
        std::fs::create_dir_all(venv.parent().unwrap()).unwrap();
        let mut mk = Command::new("python3");
        mk.args(["-m", "venv"]).arg(&venv);
        run_ok(mk);
        let mut pip = Command::new(venv.join("bin/pip"));
        pip.args(["install", "-q", &format!("networklab=={NETLAB_VERSION}")]);
        let out = run_timeout(pip, Duration::from_secs(600));
        assert!(
            out.status.success(),
            "pip install networklab: {}",
            describe(&out)
        );
    }
    venv
}

/// netlab's default image of a device for containerlab, from its own device files.
fn default_image(venv: &Path, device: &str) -> String {
    let script = format!(
        "import yaml, netsim, os; d = yaml.safe_load(open(os.path.join(os.path.dirname(netsim.__file__), 'devices', '{device}.yml'))); print(d['clab']['image'])"
    );
    let mut py = Command::new(venv.join("bin/python"));
    py.args(["-c", &script]);
    text(&run_ok(py).stdout).trim().to_string()
}

/// A directory for PATH holding `containerlab` and `clab` (labwire); where the host has none, a
/// `sudo` that runs its command (the test runs as root; netlab calls `sudo ip netns exec`); for
/// Podman, a `docker` that is Podman's CLI.
fn bin_dir(work: &Path, engine: &EngineCli) -> PathBuf {
    let bin = work.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["containerlab", "clab"] {
        std::os::unix::fs::symlink(labwire_bin(), bin.join(name)).unwrap();
    }
    if engine.cli != "docker" {
        script(
            &bin.join("docker"),
            &format!("#!/bin/sh\nexec {} \"$@\"\n", engine.cli),
        );
    }
    let has_sudo = Command::new("sh")
        .args(["-c", "command -v sudo"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_sudo {
        script(
            &bin.join("sudo"),
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do case $1 in -*) shift;; *) break;; esac; done\nexec \"$@\"\n",
        );
    }
    bin
}

/// An executable script.
fn script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The lab: NAME, N (the second octet of its private ranges) and ENGINE filled in per engine.
const TOPOLOGY: &str = r#"provider: clab
name: NAME
module: [ ospf ]
addressing:
  mgmt:
    ipv4: 172.31.N.0/24
    _network: NAME_mgmt
    _bridge: NAME-mgmt
  loopback:
    ipv4: 10.N.0.0/24
  p2p:
    ipv4: 10.N.128.0/17
  lan:
    ipv4: 10.N.64.0/18
defaults.addressing.mgmt.ipv6: fd00:c1:N::/64
defaults.providers.clab.runtime: ENGINE
defaults.device: frr
defaults.devices.frr.clab.group_vars.netlab_mgmt_vrf: False
defaults.devices.frr.clab.kmods.initial: []
nodes:
  r1:
  r2:
  r3:
  h1:
    device: linux
links: [ r1-r2, r2-r3, r3-h1 ]
validate:
  back:
    description: r1 reaches h1 across the OSPF fabric
    wait: 60
    nodes: [ r1 ]
    plugin: ping('h1')
  ping:
    description: h1 reaches r1's loopback across the OSPF fabric
    wait: 60
    nodes: [ h1 ]
    plugin: ping('r1')
"#;

struct Netlab {
    venv: PathBuf,
    work: PathBuf,
    path: String,
}

impl Netlab {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.venv.join("bin/netlab"));
        c.args(args)
            .current_dir(&self.work)
            .env("PATH", &self.path)
            .env_remove("CLAB_RUNTIME")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str], timeout: Duration) -> std::process::Output {
        run_timeout(self.cmd(args), timeout)
    }
}

#[test]
fn netlab_up_validate_down_on_docker() {
    netlab_scenario(&DOCKER, "clnl", 221);
}

/// As on Docker, with `defaults.providers.clab.runtime: podman` (netlab passes it on as
/// `CLAB_RUNTIME`) and a `docker` on PATH that is Podman's CLI (as Podman's `podman-docker`
/// package provides), since netlab reaches nodes with `docker exec`.
#[test]
fn netlab_up_validate_down_on_podman() {
    netlab_scenario(&PODMAN, "clnp", 222);
}

/// netlab up, status, connect, validate, capture, restart, validate, down --cleanup of lab `lab`
/// on `engine`, its private ranges 172.31.`n`.0/24 and 10.`n`.0.0/16; then nothing may be left.
fn netlab_scenario(engine: &EngineCli, lab: &str, n: u8) {
    // netlab records its running labs host-wide as instance `default`: one scenario at a time.
    static ONE_LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_LAB.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    engine.ensure_running();
    let venv = netlab_venv();
    let frr = default_image(&venv, "frr");
    let host = default_image(&venv, "linux");
    let mut build = Command::new("bash");
    build
        .arg(open_nos::repo_root().join("images/netlab-stand-ins/build.sh"))
        .args([frr.as_str(), host.as_str(), engine.cli])
        .stdin(Stdio::null());
    let out = run_timeout(build, Duration::from_secs(1200));
    assert!(out.status.success(), "stand-in images: {}", describe(&out));
    eprint!("{}", text(&out.stdout));

    let work = std::env::temp_dir().join(format!("lwt-{lab}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let topology = TOPOLOGY
        .replace("NAME", lab)
        .replace("ENGINE", engine.cli)
        .replace(".N.", &format!(".{n}."))
        .replace(":N:", &format!(":{n}:"));
    std::fs::write(work.join("topology.yml"), topology).unwrap();
    let bin = bin_dir(&work, engine);
    let path = format!(
        "{}:{}:{}",
        bin.display(),
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let nl = Netlab {
        venv,
        work: work.clone(),
        path,
    };
    let host_links_before = host_link_names();

    // Whatever happens below, the lab goes.
    struct Down<'a>(&'a Netlab);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = self
                .0
                .run(&["down", "--cleanup", "--force"], Duration::from_secs(300));
        }
    }
    let _down = Down(&nl);

    let t = Instant::now();
    let up = nl.run(&["up"], Duration::from_secs(900));
    assert!(up.status.success(), "netlab up: {}", describe(&up));
    eprintln!("netlab up: {:.1} s", t.elapsed().as_secs_f64());
    // The host links the lab made (management veths, the bridge) must all go with it.
    let lab_links: std::collections::BTreeSet<String> = host_link_names()
        .difference(&host_links_before)
        .cloned()
        .collect();
    let bridge = format!("{lab}-mgmt");
    assert!(
        lab_links.contains(&bridge),
        "no {bridge} among {lab_links:?}"
    );
    for node in ["r1", "r2", "r3", "h1"] {
        let name = format!("clab-{lab}-{node}");
        let st = engine.run(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{index .Config.Labels \"clab-node-name\"}}",
            &name,
        ]);
        assert_eq!(
            text(&st.stdout).trim(),
            format!("true {node}"),
            "{}",
            describe(&st)
        );
    }

    // What netlab and its users read: containerlab's inspect JSON, netlab status (docker ps).
    let mut inspect = Command::new(bin.join("containerlab"));
    inspect
        .args(["inspect", "-t", "clab.yml", "--format", "json"])
        .env("CLAB_RUNTIME", engine.cli)
        .current_dir(&work);
    let j: serde_json::Value = serde_json::from_slice(&run_ok(inspect).stdout).unwrap();
    let rows = j[lab].as_array().expect("lab key");
    assert_eq!(rows.len(), 4, "{j}");
    for r in rows {
        assert_eq!(r["labPath"], "clab.yml", "{r}");
        assert_eq!(r["state"], "running", "{r}");
        assert!(r["status"].as_str().unwrap().starts_with("Up "), "{r}");
        assert!(
            r["ipv4_address"]
                .as_str()
                .unwrap()
                .starts_with(&format!("172.31.{n}.")),
            "{r}"
        );
        assert_eq!(r["container_id"].as_str().unwrap().len(), 12, "{r}");
    }
    let status = nl.run(&["status"], Duration::from_secs(120));
    assert!(
        status.status.success(),
        "netlab status: {}",
        describe(&status)
    );
    let connect = nl.run(
        &["connect", "h1", "ip", "-4", "route"],
        Duration::from_secs(60),
    );
    assert!(
        connect.status.success() && text(&connect.stdout).contains(&format!("10.{n}.0.0/24")),
        "netlab connect h1 ip -4 route: {}",
        describe(&connect)
    );

    let t = Instant::now();
    let validate = nl.run(&["validate"], Duration::from_secs(300));
    assert!(
        validate.status.success(),
        "netlab validate: {}",
        describe(&validate)
    );
    assert!(
        text(&validate.stdout).contains("Tests passed: 2"),
        "{}",
        describe(&validate)
    );
    eprintln!("netlab validate: {:.1} s", t.elapsed().as_secs_f64());

    // capture: tcpdump in the node's namespace (`sudo ip netns exec clab-<lab>-r1 …`); an OSPF
    // hello arrives on r1's link to r2 every 10 s.
    let capture = nl.run(
        &["capture", "r1", "eth1", "-c", "1", "ip", "proto", "89"],
        Duration::from_secs(60),
    );
    assert!(
        capture.status.success() && text(&capture.stdout).contains("OSPF"),
        "netlab capture r1 eth1: {}",
        describe(&capture)
    );

    // restart: netlab down, then up again through containerlab destroy and deploy.
    let t = Instant::now();
    let restart = nl.run(&["restart"], Duration::from_secs(900));
    assert!(
        restart.status.success(),
        "netlab restart: {}",
        describe(&restart)
    );
    eprintln!("netlab restart: {:.1} s", t.elapsed().as_secs_f64());
    let validate = nl.run(&["validate"], Duration::from_secs(300));
    assert!(
        validate.status.success() && text(&validate.stdout).contains("Tests passed: 2"),
        "netlab validate after restart: {}",
        describe(&validate)
    );

    let down = nl.run(&["down", "--cleanup"], Duration::from_secs(300));
    assert!(
        down.status.success(),
        "netlab down --cleanup: {}",
        describe(&down)
    );

    // Nothing left: containers, the engine network, namespaces, host links, hosts lines, state.
    assert!(engine.containers_of(lab).is_empty(), "containers left");
    let nets = engine.run(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        !text(&nets.stdout).contains(&format!("{lab}_mgmt")),
        "{}",
        text(&nets.stdout)
    );
    let left = poll(Duration::from_secs(10), || {
        let l = leftovers(lab, &lab_links);
        l.is_empty().then_some(()).ok_or_else(|| l.join(", "))
    });
    assert!(left.is_ok(), "left after netlab down: {left:?}");
    assert!(
        hosts_block(&read_etc_hosts(), lab).is_none(),
        "/etc/hosts block left"
    );
    assert!(
        !work.join("clab.yml").exists(),
        "netlab --cleanup removes its files"
    );
    std::mem::forget(_down);
    let _ = std::fs::remove_dir_all(&work);
}

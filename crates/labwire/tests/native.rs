//! End-to-end tests of the native runtime against the real kernel: each test deploys a real lab
//! with the `labwire` binary and checks what a user would check — `ip -n clab-<lab>-<node> -j link`,
//! a ping across a link, the JSON from `inspect`, the artifacts, and that nothing is left after
//! `destroy`.
//!
//! They run as root (a test that is not root fails, it does not skip). Every test has its own lab
//! name (prefix `lwt`), its own temp directory (`/tmp/lwt-<test>-<pid>/`) and its own management
//! network and subnet (10.2NN.0.0/24, fd00:2NN::/64), so they run in parallel. A drop guard runs
//! `labwire destroy --name <lab> --cleanup` whatever happens. They touch no host address or
//! interface they did not create.
//!
//! labwire-init (a binary of the `runtime` crate) must be built next to `labwire`: run
//! `cargo build` (same profile and target directory) before `cargo test`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Running labwire
// ---------------------------------------------------------------------------------------------

fn labwire_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_labwire"))
}

/// labwire-init next to the labwire binary under test; panics with what to do when missing.
fn init_bin() -> PathBuf {
    let init = labwire_bin()
        .parent()
        .expect("the labwire binary has a directory")
        .join("labwire-init");
    assert!(
        init.is_file(),
        "{} is missing: labwire-init is a binary of the `runtime` crate, which `cargo test -p labwire` \
         does not build. Run `cargo build` (same profile and CARGO_TARGET_DIR) first.",
        init.display()
    );
    init
}

/// Fails (does not skip) when the machine cannot run these tests.
fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the native end-to-end tests deploy real labs (namespaces, veths, bridges) and must run as root; \
         run them with sudo (e.g. `sudo -E cargo test -p labwire --test native`)"
    );
    init_bin();
}

fn labwire() -> Command {
    let mut c = Command::new(labwire_bin());
    c.env("LABWIRE_INIT", init_bin());
    c.stdin(Stdio::null());
    c
}

/// Run to completion, at most `timeout`; the child is killed (and the test fails) past it.
fn run_timeout(mut cmd: Command, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let read_all = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = read_all(Box::new(out));
    let err = read_all(Box::new(err));
    let status = wait_timeout(&mut child, timeout).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not finish within {timeout:?}");
    });
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().expect("wait for a child") {
            return Some(s);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

fn run_ok(cmd: Command) -> Output {
    let what = format!("{cmd:?}");
    let out = run_timeout(cmd, Duration::from_secs(120));
    assert!(out.status.success(), "{what} failed: {}", describe(&out));
    out
}

/// `ip ARGS` on the host (read-only uses only).
fn ip(args: &[&str]) -> Output {
    let mut c = Command::new("ip");
    c.args(args);
    run_timeout(c, Duration::from_secs(30))
}

fn ip_json(args: &[&str]) -> Value {
    let out = ip(args);
    assert!(out.status.success(), "ip {args:?}: {}", describe(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ip {args:?} printed no JSON ({e}): {}", describe(&out)))
}

/// Retry `check` until it returns Ok or `timeout` passes; the last error otherwise.
fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let end = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= end => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A lab under test
// ---------------------------------------------------------------------------------------------

/// A lab's topology in its own temp dir; destroyed (with --cleanup) and removed when dropped.
struct TestLab {
    name: String,
    /// `/tmp/lwt-<test>-<pid>/`
    dir: PathBuf,
    file: PathBuf,
    /// Management bridge name (`br-<network>`), for leftover checks.
    bridge: String,
    /// Node names, for leftover checks of the management veth host ends.
    nodes: Vec<String>,
}

impl TestLab {
    /// Write `yaml` (lab `name`) under `/tmp/lwt-<test>-<pid>/`. Any earlier lab of that name
    /// (a crashed run) is destroyed first.
    fn new(test: &str, name: &str, network: &str, nodes: &[&str], yaml: &str) -> TestLab {
        Self::with_file(test, name, network, nodes, "topo.clab.yml", yaml)
    }

    fn with_file(
        test: &str,
        name: &str,
        network: &str,
        nodes: &[&str],
        file: &str,
        yaml: &str,
    ) -> TestLab {
        require_root();
        let dir = PathBuf::from(format!("/tmp/lwt-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let path = dir.join(file);
        std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        let lab = TestLab {
            name: name.to_string(),
            dir,
            file: path,
            bridge: format!("br-{network}"),
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
        };
        lab.destroy_quietly();
        lab
    }

    fn netns(&self, node: &str) -> String {
        format!("clab-{}-{node}", self.name)
    }

    fn long_name(&self, node: &str) -> String {
        self.netns(node)
    }

    fn lab_dir(&self) -> PathBuf {
        self.dir.join(format!("clab-{}", self.name))
    }

    fn state_dir(&self) -> PathBuf {
        PathBuf::from("/var/lib/labwire/labs").join(&self.name)
    }

    fn deploy_cmd(&self) -> Command {
        let mut c = labwire();
        c.arg("deploy").arg("-t").arg(&self.file).arg("-q");
        c
    }

    fn try_deploy(&self) -> Output {
        run_timeout(self.deploy_cmd(), Duration::from_secs(180))
    }

    fn deploy(&self) -> Output {
        let out = self.try_deploy();
        assert!(
            out.status.success(),
            "deploy of lab {} failed: {}",
            self.name,
            describe(&out)
        );
        out
    }

    fn destroy(&self, cleanup: bool) -> Output {
        let mut c = labwire();
        c.args(["destroy", "--name", &self.name]);
        if cleanup {
            c.arg("--cleanup");
        }
        run_timeout(c, Duration::from_secs(120))
    }

    fn destroy_quietly(&self) {
        let _ = self.destroy(true);
    }

    /// `labwire exec --name LAB --node NODE --cmd CMD`.
    fn exec(&self, node: &str, cmd: &str) -> Output {
        let mut c = labwire();
        c.args(["exec", "--name", &self.name, "--node", node, "--cmd", cmd]);
        run_timeout(c, Duration::from_secs(60))
    }

    /// Ping from `node` (one packet, 2 s) and fail with the output when it does not answer.
    fn assert_ping(&self, node: &str, addr: &str) {
        let out = self.exec(node, &format!("ping -c1 -W2 {addr}"));
        assert!(
            out.status.success(),
            "lab {}: ping from {node} to {addr} failed: {}",
            self.name,
            describe(&out)
        );
    }

    /// `ip -n clab-<lab>-<node> -j link`
    fn links(&self, node: &str) -> Vec<Value> {
        match ip_json(&["-n", &self.netns(node), "-j", "link"]) {
            Value::Array(a) => a,
            v => panic!("ip -j link printed {v}"),
        }
    }

    /// The node's eth0 addresses (IPv4, IPv6 global) as the kernel has them.
    fn eth0_addrs(&self, node: &str) -> (Option<String>, Option<String>) {
        let v = ip_json(&["-n", &self.netns(node), "-j", "addr", "show", "dev", "eth0"]);
        let mut v4 = None;
        let mut v6 = None;
        for a in v[0]["addr_info"].as_array().into_iter().flatten() {
            let local = a["local"].as_str().map(str::to_string);
            match (a["family"].as_str(), a["scope"].as_str()) {
                (Some("inet"), _) => v4 = local,
                (Some("inet6"), Some("global")) => v6 = local,
                _ => {}
            }
        }
        (v4, v6)
    }

    fn topology_data(&self) -> Value {
        let path = self.lab_dir().join("topology-data.json");
        let t = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_slice(&t).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
    }

    fn inspect_json(&self) -> Value {
        let mut c = labwire();
        c.args(["inspect", "--name", &self.name, "--format", "json"]);
        let out = run_ok(c);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("inspect printed no JSON ({e}): {}", describe(&out)))
    }

    /// Host objects the lab's journal records (host links and bridges), read while it is deployed.
    fn recorded_host_objects(&self) -> Vec<String> {
        let path = self.state_dir().join("journal");
        let j = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let mut out = Vec::new();
        for line in j.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if matches!(v["op"].as_str(), Some("host-link" | "bridge")) {
                if let Some(n) = v["name"].as_str() {
                    out.push(n.to_string());
                }
            }
        }
        out
    }

    /// The host objects this lab makes whatever its journal says: each node's management veth
    /// host end and the management bridge.
    fn expected_host_objects(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .nodes
            .iter()
            .map(|n| lab::wiring::mgmt_host_end(&self.name, n))
            .collect();
        out.push(self.bridge.clone());
        out
    }

    /// Panics listing whatever of the lab is still on the host (allowing a few seconds for the
    /// kernel to free veths of deleted namespaces).
    fn assert_nothing_left(&self, extra_links: &[String]) {
        let mut links: BTreeSet<String> = self.expected_host_objects().into_iter().collect();
        links.extend(extra_links.iter().cloned());
        let result = poll(Duration::from_secs(8), || {
            let left = leftovers(&self.name, &links);
            if left.is_empty() {
                Ok(())
            } else {
                Err(left.join("\n  "))
            }
        });
        if let Err(left) = result {
            panic!("lab {} left things behind:\n  {left}", self.name);
        }
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        self.destroy_quietly();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Names of the host's interfaces.
fn host_link_names() -> BTreeSet<String> {
    match ip_json(&["-j", "link"]) {
        Value::Array(a) => a
            .iter()
            .filter_map(|l| l["ifname"].as_str().map(str::to_string))
            .collect(),
        v => panic!("ip -j link printed {v}"),
    }
}

/// A process's state letter from /proc/PID/stat (`Z` for a zombie).
fn proc_state(pid: &str) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Live (non-zombie) labwire-init processes of lab `lab`: "pid cmdline".
fn live_inits(lab: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(text).collect();
        let is_init = args.first().is_some_and(|a| a.ends_with("labwire-init"));
        let of_lab = args.windows(2).any(|w| w[0] == "--lab" && w[1] == lab);
        if is_init && of_lab && proc_state(&pid).is_some_and(|s| s != 'Z') {
            out.push(format!("{pid} {}", args.join(" ")));
        }
    }
    out
}

/// Everything of lab `lab` still present: netns entries, the named host links, mounts, live
/// inits, the state directory.
fn leftovers(lab: &str, host_links: &BTreeSet<String>) -> Vec<String> {
    let mut left = Vec::new();
    let prefix = format!("clab-{lab}-");
    if let Ok(d) = std::fs::read_dir("/run/netns") {
        for e in d.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&prefix) {
                left.push(format!("netns /run/netns/{n}"));
            }
        }
    }
    let existing = host_link_names();
    for l in host_links.intersection(&existing) {
        left.push(format!("host link {l}"));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let lab_dir = format!("/clab-{lab}/");
    for m in mountinfo
        .lines()
        .filter(|m| m.contains(&prefix) || m.contains(&lab_dir))
    {
        left.push(format!("mount {m}"));
    }
    for p in live_inits(lab) {
        left.push(format!("process {p}"));
    }
    let state = PathBuf::from("/var/lib/labwire/labs").join(lab);
    if state.exists() {
        left.push(format!("state directory {}", state.display()));
    }
    left
}

/// A link of `ip -j link` as (name, mac, up with carrier, mtu).
struct IfState {
    mac: String,
    up: bool,
    mtu: u64,
}

fn if_states(links: &[Value]) -> BTreeMap<String, IfState> {
    links
        .iter()
        .filter_map(|l| {
            let name = l["ifname"].as_str()?.to_string();
            let flags: Vec<&str> = l["flags"]
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            Some((
                name,
                IfState {
                    mac: l["address"].as_str().unwrap_or_default().to_lowercase(),
                    up: flags.contains(&"UP")
                        && flags.contains(&"LOWER_UP")
                        && l["operstate"] == "UP",
                    mtu: l["mtu"].as_u64().unwrap_or(0),
                },
            ))
        })
        .collect()
}

/// Every interface each node should have, from topology-data.json: node → iface → MAC
/// (eth0 from the node's `mac-address`, the rest from the links' endpoints).
fn expected_interfaces(data: &Value) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (name, n) in data["nodes"]
        .as_object()
        .expect("topology-data.json has nodes")
    {
        if let Some(mac) = n["mac-address"].as_str().filter(|m| !m.is_empty()) {
            out.entry(name.clone())
                .or_default()
                .insert("eth0".into(), mac.to_lowercase());
        }
    }
    for l in data["links"]
        .as_array()
        .expect("topology-data.json has links")
    {
        for end in ["a", "z"] {
            let e = &l["endpoints"][end];
            let (Some(node), Some(iface), Some(mac)) = (
                e["node"].as_str(),
                e["interface"].as_str(),
                e["mac"].as_str(),
            ) else {
                continue;
            };
            if data["nodes"].get(node).is_some() {
                out.entry(node.to_string())
                    .or_default()
                    .insert(iface.to_string(), mac.to_lowercase());
            }
        }
    }
    out
}

/// Wait until every named interface of `node` exists, is up with carrier and has its MAC.
fn assert_interfaces_up(lab: &TestLab, node: &str, expected: &BTreeMap<String, String>) {
    let r = poll(Duration::from_secs(5), || {
        let have = if_states(&lab.links(node));
        let mut problems = Vec::new();
        for (iface, mac) in expected {
            match have.get(iface) {
                None => problems.push(format!(
                    "{iface} missing (has {:?})",
                    have.keys().collect::<Vec<_>>()
                )),
                Some(s) if !s.up => problems.push(format!("{iface} is not up")),
                Some(s) if s.mac != *mac => problems.push(format!(
                    "{iface} has MAC {}, topology-data.json says {mac}",
                    s.mac
                )),
                Some(_) => {}
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    });
    if let Err(e) = r {
        panic!("lab {} node {node}: {e}", lab.name);
    }
}

/// A two-node lab: a:eth1 — b:eth1 with 10.2NN.1.1/.2.
fn two_node_yaml(name: &str, network: &str, n: u8) -> String {
    two_named_nodes_yaml(name, network, n, "a", "b")
}

/// Two nodes `a` and `b` (named as given) linked eth1 — eth1 with 10.<n>.1.1/.2; management
/// network `network` on 10.<n>.0.0/24 and fd00:<n>::/64.
fn two_named_nodes_yaml(name: &str, network: &str, n: u8, a: &str, b: &str) -> String {
    format!(
        "name: {name}\n\
         mgmt: {{network: {network}, ipv4-subnet: 10.{n}.0.0/24, ipv6-subnet: fd00:{n}::/64}}\n\
         topology:\n  nodes:\n    {a}: {{kind: linux}}\n    {b}: {{kind: linux}}\n\
         \x20 links:\n    - endpoints: [\"{a}:eth1\", \"{b}:eth1\"]\n      ipv4: [\"10.{n}.1.1/24\", \"10.{n}.1.2/24\"]\n"
    )
}

// ---------------------------------------------------------------------------------------------
// 1. Ping across a link and across the management network; interfaces as topology-data.json says
// ---------------------------------------------------------------------------------------------

#[test]
fn two_nodes_ping_and_interfaces_match_topology_data() {
    let lab = TestLab::new(
        "ping",
        "lwt-ping",
        "lwt-ping",
        &["a", "b"],
        &two_node_yaml("lwt-ping", "lwt-ping", 201),
    );
    lab.deploy();

    lab.assert_ping("a", "10.201.1.2");
    lab.assert_ping("b", "10.201.1.1");

    let (b_mgmt, _) = lab.eth0_addrs("b");
    let b_mgmt = b_mgmt.expect("node b has an IPv4 address on eth0");
    assert!(
        b_mgmt.starts_with("10.201.0."),
        "node b's management address {b_mgmt} is outside 10.201.0.0/24"
    );
    lab.assert_ping("a", &b_mgmt);

    let data = lab.topology_data();
    let expected = expected_interfaces(&data);
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        ["a", "b"],
        "nodes in topology-data.json"
    );
    for (node, ifaces) in &expected {
        let names: Vec<&str> = ifaces.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["eth0", "eth1"],
            "interfaces of {node} in topology-data.json"
        );
        assert_interfaces_up(&lab, node, ifaces);
    }
}

// ---------------------------------------------------------------------------------------------
// 2. cldemo2-mini: every link end present by name and up
// ---------------------------------------------------------------------------------------------

/// Used when examples/cldemo2-mini.clab.yml is absent.
const CLDEMO2_MINI: &str = r#"name: cldemo2-mini
mgmt:
  network: cldemo2
  ipv4-subnet: 172.31.100.0/24
topology:
  kinds:
    linux:
      sysctls:
        net.ipv4.ip_forward: "1"
  nodes:
    leaf01: {kind: linux}
    leaf02: {kind: linux}
    server01: {kind: linux}
    server02: {kind: linux}
    server03: {kind: linux}
  links:
    - endpoints: ["leaf01:swp1", "server01:eth1"]
      ipv4: ["10.1.10.1/24", "10.1.10.101/24"]
    - endpoints: ["leaf01:swp2", "server02:eth1"]
    - endpoints: ["leaf01:swp3", "server03:eth1"]
    - endpoints: ["leaf02:swp1", "server01:eth2"]
    - endpoints: ["leaf02:swp2", "server02:eth2"]
    - endpoints: ["leaf02:swp3", "server03:eth2"]
    - endpoints: ["leaf01:swp49", "leaf02:swp49"]
    - endpoints: ["leaf01:swp50", "leaf02:swp50"]
"#;

/// The example topology with this test's lab name and management network.
fn cldemo2_with(name: &str, mgmt: &str) -> String {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cldemo2-mini.clab.yml");
    let src = std::fs::read_to_string(&example).unwrap_or_else(|_| CLDEMO2_MINI.to_string());
    let mut out = String::new();
    let mut in_mgmt = false;
    for line in src.lines() {
        let top_level = !line.starts_with([' ', '\t', '#']) && !line.is_empty();
        if top_level {
            in_mgmt = false;
        }
        if line.starts_with("name:") {
            out.push_str(&format!("name: {name}\n"));
        } else if line.starts_with("mgmt:") {
            in_mgmt = true;
            out.push_str(mgmt);
            out.push('\n');
        } else if !in_mgmt {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn cldemo2_mini_all_link_ends_up() {
    let yaml = cldemo2_with(
        "lwt-cld",
        "mgmt: {network: lwt-cld, ipv4-subnet: 10.202.0.0/24, ipv6-subnet: fd00:202::/64}",
    );
    let nodes = ["leaf01", "leaf02", "server01", "server02", "server03"];
    let lab = TestLab::new("cld", "lwt-cld", "lwt-cld", &nodes, &yaml);
    lab.deploy();

    let mut expected: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for leaf in ["leaf01", "leaf02"] {
        expected.insert(leaf, vec!["swp1", "swp2", "swp3", "swp49", "swp50"]);
    }
    for server in ["server01", "server02", "server03"] {
        expected.insert(server, vec!["eth1", "eth2"]);
    }
    let ends: usize = expected.values().map(Vec::len).sum();
    assert_eq!(ends, 16);

    let data = lab.topology_data();
    assert_eq!(
        data["clab"]["config"]["mgmt"]["network"], "lwt-cld",
        "the example's management network was not replaced by the test's own"
    );
    let macs = expected_interfaces(&data);
    for (node, ifaces) in &expected {
        let want: BTreeMap<String, String> = ifaces
            .iter()
            .map(|i| {
                let mac = macs
                    .get(*node)
                    .and_then(|m| m.get(*i))
                    .unwrap_or_else(|| panic!("topology-data.json has no link end {node}:{i}"));
                (i.to_string(), mac.clone())
            })
            .collect();
        assert_interfaces_up(&lab, node, &want);
    }
    // The one addressed server link carries traffic.
    lab.assert_ping("server01", "10.1.10.1");
}

// ---------------------------------------------------------------------------------------------
// 3. MTU
// ---------------------------------------------------------------------------------------------

#[test]
fn mtu_default_override_and_mgmt() {
    let yaml = "name: lwt-mtu\n\
        mgmt: {network: lwt-mtu, ipv4-subnet: 10.203.0.0/24, ipv6-subnet: fd00:203::/64, mtu: 1450}\n\
        topology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n\
        \x20 links:\n\
        \x20   - endpoints: [\"a:eth1\", \"b:eth1\"]\n\
        \x20   - endpoints: [\"a:eth2\", \"b:eth2\"]\n      mtu: 1500\n\
        \x20   - type: veth\n      mtu: 1500\n      endpoints:\n\
        \x20       - {node: a, interface: eth3}\n        - {node: b, interface: eth3}\n";
    let lab = TestLab::new("mtu", "lwt-mtu", "lwt-mtu", &["a", "b"], yaml);
    lab.deploy();
    for node in ["a", "b"] {
        let s = if_states(&lab.links(node));
        let mtu = |i: &str| {
            s.get(i)
                .unwrap_or_else(|| panic!("node {node} has no {i}"))
                .mtu
        };
        assert_eq!(mtu("eth1"), 9500, "node {node} eth1: default data link MTU");
        assert_eq!(
            mtu("eth2"),
            1500,
            "node {node} eth2: brief link with mtu: 1500"
        );
        assert_eq!(
            mtu("eth3"),
            1500,
            "node {node} eth3: veth link with mtu: 1500"
        );
        assert_eq!(mtu("eth0"), 1450, "node {node} eth0: mgmt mtu 1450");
    }
    // A full-size frame crosses the 9500 link unfragmented, and not the 1500 one.
    let big = "ping -c1 -W2 -M do -s 9472";
    let yaml_addr = lab.exec(
        "a",
        "ip addr add 10.203.1.1/24 dev eth1 && ip addr add 10.203.2.1/24 dev eth2",
    );
    assert!(
        yaml_addr.status.success(),
        "address a: {}",
        describe(&yaml_addr)
    );
    let b_addr = lab.exec(
        "b",
        "ip addr add 10.203.1.2/24 dev eth1 && ip addr add 10.203.2.2/24 dev eth2",
    );
    assert!(b_addr.status.success(), "address b: {}", describe(&b_addr));
    let out = lab.exec("a", &format!("{big} 10.203.1.2"));
    assert!(
        out.status.success(),
        "9500-byte ping over eth1: {}",
        describe(&out)
    );
    let out = lab.exec("a", &format!("{big} 10.203.2.2"));
    assert!(
        !out.status.success(),
        "a 9500-byte ping must not pass the 1500 link: {}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// 4. MACs stay the same across destroy + deploy
// ---------------------------------------------------------------------------------------------

#[test]
fn macs_identical_after_redeploy() {
    let lab = TestLab::new(
        "mac",
        "lwt-mac",
        "lwt-mac",
        &["a", "b"],
        &two_node_yaml("lwt-mac", "lwt-mac", 204),
    );
    let macs = |lab: &TestLab| -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for node in ["a", "b"] {
            for (i, s) in if_states(&lab.links(node)) {
                if i != "lo" {
                    m.insert(format!("{node}:{i}"), s.mac);
                }
            }
        }
        m
    };
    lab.deploy();
    let first = macs(&lab);
    assert_eq!(first.len(), 4, "a:eth0 a:eth1 b:eth0 b:eth1, got {first:?}");
    let out = lab.destroy(false);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.deploy();
    assert_eq!(macs(&lab), first, "MACs changed across destroy + deploy");
}

// ---------------------------------------------------------------------------------------------
// 5. inspect --format json
// ---------------------------------------------------------------------------------------------

#[test]
fn inspect_json_lists_running_nodes() {
    let yaml = "name: lwt-insp\n\
        mgmt: {network: lwt-insp, ipv4-subnet: 10.205.0.0/24, ipv6-subnet: fd00:205::/64}\n\
        topology:\n  nodes:\n    r1: {kind: linux}\n    r2: {kind: linux}\n    r3: {kind: linux}\n\
        \x20 links:\n    - endpoints: [\"r1:eth1\", \"r2:eth1\"]\n    - endpoints: [\"r2:eth2\", \"r3:eth1\"]\n";
    let lab = TestLab::new("insp", "lwt-insp", "lwt-insp", &["r1", "r2", "r3"], yaml);
    lab.deploy();
    let j = lab.inspect_json();
    let rows = j["lwt-insp"]
        .as_array()
        .unwrap_or_else(|| panic!("inspect JSON has no key lwt-insp: {j}"));
    let names: BTreeSet<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(
        names,
        ["clab-lwt-insp-r1", "clab-lwt-insp-r2", "clab-lwt-insp-r3"]
            .into_iter()
            .collect(),
        "inspect rows: {j}"
    );
    for r in rows {
        for f in [
            "lab_name",
            "name",
            "container_id",
            "image",
            "kind",
            "state",
            "ipv4_address",
            "ipv6_address",
        ] {
            assert!(r[f].is_string(), "field {f} missing or not a string in {r}");
        }
        let name = r["name"].as_str().expect("checked");
        let node = name.trim_start_matches("clab-lwt-insp-");
        assert_eq!(r["lab_name"], "lwt-insp", "{r}");
        assert_eq!(r["kind"], "linux", "{r}");
        assert_eq!(r["state"], "running", "{r}");
        assert!(
            !r["container_id"].as_str().expect("checked").is_empty(),
            "empty container_id: {r}"
        );
        let (v4, v6) = lab.eth0_addrs(node);
        let v4 = v4.unwrap_or_else(|| panic!("{name} has no IPv4 on eth0"));
        let v6 = v6.unwrap_or_else(|| panic!("{name} has no global IPv6 on eth0"));
        assert_eq!(
            r["ipv4_address"],
            format!("{v4}/24"),
            "{name}: inspect vs eth0"
        );
        assert_eq!(
            r["ipv6_address"],
            format!("{v6}/64"),
            "{name}: inspect vs eth0"
        );
    }
    // --all and -t FILE show the same lab.
    let mut c = labwire();
    c.args(["inspect", "--all", "--format", "json"]);
    let all: Value = serde_json::from_slice(&run_ok(c).stdout).expect("inspect --all JSON");
    assert_eq!(all["lwt-insp"], j["lwt-insp"], "inspect --all");
    let mut c = labwire();
    c.args(["inspect", "--format", "json", "-t"]).arg(&lab.file);
    let by_file: Value = serde_json::from_slice(&run_ok(c).stdout).expect("inspect -t JSON");
    assert_eq!(by_file, j, "inspect -t FILE");
}

// ---------------------------------------------------------------------------------------------
// 6. ansible-inventory.yml and topology-data.json
// ---------------------------------------------------------------------------------------------

/// (group, host long name, ansible_host) from the inventory's `all.children.<g>.hosts.<h>` tree.
fn inventory_hosts(text: &str) -> Vec<(String, String, Option<String>)> {
    let mut out: Vec<(String, String, Option<String>)> = Vec::new();
    let mut group = String::new();
    let mut in_hosts = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match indent {
            4 => {
                group = t.trim_end_matches(':').to_string();
                in_hosts = false;
            }
            6 => in_hosts = t == "hosts:",
            8 if in_hosts => out.push((
                group.clone(),
                t.trim_end_matches(':').trim_matches('"').to_string(),
                None,
            )),
            10 if in_hosts => {
                if let (Some(v), Some(last)) = (t.strip_prefix("ansible_host:"), out.last_mut()) {
                    last.2 = Some(v.trim().trim_matches('"').to_string());
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn ansible_inventory_and_topology_data() {
    let yaml = "name: lwt-inv\n\
        mgmt: {network: lwt-inv, ipv4-subnet: 10.206.0.0/24, ipv6-subnet: fd00:206::/64}\n\
        topology:\n  nodes:\n    s1: {kind: linux}\n    s2: {kind: linux}\n    s3: {kind: linux, mgmt-ipv4: 10.206.0.77}\n\
        \x20 links:\n    - endpoints: [\"s1:eth1\", \"s2:eth1\"]\n";
    let lab = TestLab::new("inv", "lwt-inv", "lwt-inv", &["s1", "s2", "s3"], yaml);
    lab.deploy();
    let inv_path = lab.lab_dir().join("ansible-inventory.yml");
    let inv = std::fs::read_to_string(&inv_path)
        .unwrap_or_else(|e| panic!("read {}: {e}", inv_path.display()));
    assert!(
        inv.starts_with("all:\n"),
        "inventory does not start with `all:`:\n{inv}"
    );
    let hosts = inventory_hosts(&inv);
    for node in ["s1", "s2", "s3"] {
        let long = lab.long_name(node);
        let (v4, _) = lab.eth0_addrs(node);
        let v4 = v4.unwrap_or_else(|| panic!("{long} has no IPv4 on eth0"));
        let entry = hosts
            .iter()
            .find(|(_, h, _)| *h == long)
            .unwrap_or_else(|| panic!("{long} is not in the inventory:\n{inv}"));
        assert_eq!(
            entry.0, "linux",
            "{long} should be under all.children.linux.hosts:\n{inv}"
        );
        assert_eq!(
            entry.2.as_deref(),
            Some(v4.as_str()),
            "{long}: ansible_host vs eth0 address:\n{inv}"
        );
    }
    assert_eq!(
        lab.eth0_addrs("s3").0.as_deref(),
        Some("10.206.0.77"),
        "static mgmt-ipv4 of s3"
    );
    assert_eq!(hosts.len(), 3, "inventory hosts: {hosts:?}\n{inv}");

    let data = lab.topology_data();
    assert_eq!(data["name"], "lwt-inv");
    for node in ["s1", "s2", "s3"] {
        let n = &data["nodes"][node];
        assert_eq!(
            n["longname"],
            lab.long_name(node),
            "topology-data.json node {node}: {n}"
        );
        assert_eq!(
            n["mgmt-ipv4-address"].as_str(),
            lab.eth0_addrs(node).0.as_deref(),
            "node {node}: {n}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 7. /etc/hosts block
// ---------------------------------------------------------------------------------------------

/// /etc/hosts read under labwire's hosts lock, so a concurrent rewrite is never half-seen.
fn read_etc_hosts() -> String {
    let lock_path = lab::paths::lock_dir().join("hosts.lock");
    let _ = std::fs::create_dir_all(lab::paths::lock_dir());
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
    // SAFETY: flock on a descriptor `lock` keeps open; released when it is closed.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_SH) };
    assert_eq!(rc, 0, "flock {}", lock_path.display());
    let t = std::fs::read_to_string("/etc/hosts").expect("read /etc/hosts");
    drop(lock);
    t
}

/// The lines of lab `lab`'s block (markers excluded), or None.
fn hosts_block(text: &str, lab: &str) -> Option<Vec<String>> {
    let start = format!("###### CLAB-{lab}-START ######");
    let end = format!("###### CLAB-{lab}-END ######");
    let lines: Vec<&str> = text.lines().collect();
    let s = lines.iter().position(|l| *l == start)?;
    let e = lines[s..].iter().position(|l| *l == end).map(|e| e + s)?;
    Some(lines[s + 1..e].iter().map(|l| l.to_string()).collect())
}

/// The file without any labwire/containerlab block (other tests' labs come and go meanwhile).
fn without_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    for l in text.lines() {
        if l.starts_with("###### CLAB-") && l.ends_with("-START ######") {
            in_block = true;
        } else if l.starts_with("###### CLAB-") && l.ends_with("-END ######") {
            in_block = false;
        } else if !in_block {
            out.push(l.to_string());
        }
    }
    out
}

#[test]
fn etc_hosts_block_added_and_removed() {
    let lab = TestLab::new(
        "hosts",
        "lwt-hosts",
        "lwt-hosts",
        &["h1", "h2"],
        &two_named_nodes_yaml("lwt-hosts", "lwt-hosts", 207, "h1", "h2"),
    );
    let before = read_etc_hosts();
    assert!(
        hosts_block(&before, "lwt-hosts").is_none(),
        "a block of lwt-hosts exists before the deploy"
    );
    lab.deploy();
    let during = read_etc_hosts();
    let block = hosts_block(&during, "lwt-hosts")
        .unwrap_or_else(|| panic!("no CLAB-lwt-hosts block in /etc/hosts:\n{during}"));
    let entries: BTreeSet<(String, String)> = block
        .iter()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect();
    let mut want = BTreeSet::new();
    for node in ["h1", "h2"] {
        let (v4, v6) = lab.eth0_addrs(node);
        want.insert((v4.expect("IPv4 on eth0"), lab.long_name(node)));
        want.insert((v6.expect("global IPv6 on eth0"), lab.long_name(node)));
    }
    assert_eq!(entries, want, "block lines:\n{}", block.join("\n"));
    assert_eq!(
        without_blocks(&during),
        without_blocks(&before),
        "lines outside the blocks changed on deploy"
    );

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    let after = read_etc_hosts();
    assert!(
        hosts_block(&after, "lwt-hosts").is_none(),
        "the block is still there after destroy:\n{after}"
    );
    assert!(
        !after.contains("CLAB-lwt-hosts-"),
        "a marker of lwt-hosts is left:\n{after}"
    );
    assert_eq!(
        without_blocks(&after),
        without_blocks(&before),
        "lines outside the blocks changed by deploy + destroy"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Nothing left after destroy
// ---------------------------------------------------------------------------------------------

#[test]
fn destroy_leaves_nothing() {
    let yaml = "name: lwt-gone\n\
        mgmt: {network: lwt-gone, ipv4-subnet: 10.208.0.0/24, ipv6-subnet: fd00:208::/64}\n\
        topology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n    c: {kind: linux}\n\
        \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n    - endpoints: [\"b:eth2\", \"c:eth1\"]\n\
        \x20   - endpoints: [\"c:eth2\", \"a:eth2\"]\n";
    let lab = TestLab::new("gone", "lwt-gone", "lwt-gone", &["a", "b", "c"], yaml);
    lab.deploy();
    let recorded = lab.recorded_host_objects();
    for o in lab.expected_host_objects() {
        assert!(
            recorded.contains(&o),
            "the journal does not record {o}: {recorded:?}"
        );
    }
    // While deployed, every check of `leftovers` does see the lab (the checks are not vacuous).
    let seen = leftovers(&lab.name, &recorded.iter().cloned().collect());
    for what in [
        "netns /run/netns/clab-lwt-gone-a",
        "state directory",
        "process",
        "mount",
        "host link lw",
    ] {
        assert!(
            seen.iter().any(|s| s.starts_with(what)),
            "a deployed lab should show `{what}…`: {seen:?}"
        );
    }
    assert!(
        live_inits(&lab.name).len() >= 3,
        "three node inits expected: {:?}",
        live_inits(&lab.name)
    );

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&recorded);
    assert!(
        !lab.lab_dir().exists(),
        "destroy --cleanup left {}",
        lab.lab_dir().display()
    );
    // A second destroy is a no-op that succeeds.
    let out = lab.destroy(true);
    assert!(out.status.success(), "second destroy: {}", describe(&out));
}

// ---------------------------------------------------------------------------------------------
// 9. A deploy failing on its last link rolls back
// ---------------------------------------------------------------------------------------------

#[test]
fn failed_last_link_rolls_back() {
    // A VXLAN to a multicast group without a parent interface passes validation and preflight, but
    // the kernel refuses it (EINVAL) after the other links were made.
    let yaml = "name: lwt-fail\n\
        mgmt: {network: lwt-fail, ipv4-subnet: 10.209.0.0/24, ipv6-subnet: fd00:209::/64}\n\
        topology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n    c: {kind: linux}\n\
        \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n    - endpoints: [\"b:eth2\", \"c:eth1\"]\n\
        \x20   - {type: vxlan, endpoint: {node: c, interface: vx0}, remote: 239.1.1.1, vni: 10}\n";
    let lab = TestLab::new("fail", "lwt-fail", "lwt-fail", &["a", "b", "c"], yaml);
    let out = lab.try_deploy();
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "the deploy should fail: {}",
        describe(&out)
    );
    assert!(
        err.contains("removing what was made"),
        "the failure should come from the kernel, after nodes and links were made (rollback): {}",
        describe(&out)
    );
    assert!(
        err.contains("error:")
            && err.contains("vxlan link of c:vx0")
            && err.contains("Invalid argument"),
        "the error should name the failing interface and the kernel's reason: {}",
        describe(&out)
    );
    lab.assert_nothing_left(&[]);
    assert!(
        hosts_block(&read_etc_hosts(), "lwt-fail").is_none(),
        "an /etc/hosts block of lwt-fail is left"
    );
    assert!(
        !lab.lab_dir().exists(),
        "the failed deploy kept the lab directory it created: {}",
        lab.lab_dir().display()
    );
}

// ---------------------------------------------------------------------------------------------
// 10. Two labs deployed at once on one management network
// ---------------------------------------------------------------------------------------------

#[test]
fn two_labs_in_parallel_then_destroy_one() {
    let mk = |name: &str, n: u8| {
        format!(
            "name: {name}\n\
             mgmt: {{network: lwt-par, ipv4-subnet: 10.210.0.0/24, ipv6-subnet: fd00:210::/64}}\n\
             topology:\n  nodes:\n    a: {{kind: linux}}\n    b: {{kind: linux}}\n\
             \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [\"10.210.{n}.1/24\", \"10.210.{n}.2/24\"]\n"
        )
    };
    // Declared first, so dropped last: once both labs are destroyed, a management bridge that
    // labwire failed to remove is removed here (it is this test's own) so later runs start clean.
    let _bridge = RemoveBridgeOnDrop("br-lwt-par");
    let one = TestLab::with_file(
        "par",
        "lwt-par1",
        "lwt-par",
        &["a", "b"],
        "one.clab.yml",
        &mk("lwt-par1", 1),
    );
    let two = TestLab::with_file(
        "par",
        "lwt-par2",
        "lwt-par",
        &["a", "b"],
        "two.clab.yml",
        &mk("lwt-par2", 2),
    );
    let spawn = |l: &TestLab| {
        let mut c = l.deploy_cmd();
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        c.spawn().expect("start labwire deploy")
    };
    let mut children = [spawn(&one), spawn(&two)];
    for (c, l) in children.iter_mut().zip([&one, &two]) {
        let status = wait_timeout(c, Duration::from_secs(120))
            .unwrap_or_else(|| panic!("deploy of {} hangs", l.name));
        let mut err = String::new();
        let _ = c.stderr.take().expect("piped").read_to_string(&mut err);
        assert!(
            status.success(),
            "parallel deploy of {} failed ({status}):\n{err}",
            l.name
        );
    }
    // Both work, and their management addresses differ.
    let mut mgmt = BTreeMap::new();
    for l in [&one, &two] {
        for node in ["a", "b"] {
            let (v4, _) = l.eth0_addrs(node);
            let v4 = v4.unwrap_or_else(|| panic!("{} has no IPv4 on eth0", l.long_name(node)));
            if let Some(other) = mgmt.insert(v4.clone(), l.long_name(node)) {
                panic!(
                    "{other} and {} both have management address {v4}",
                    l.long_name(node)
                );
            }
        }
    }
    one.assert_ping("a", "10.210.1.2");
    two.assert_ping("a", "10.210.2.2");
    let (one_b, _) = one.eth0_addrs("b");
    let one_b = one_b.expect("checked");
    two.assert_ping("a", &one_b);

    // Destroy the lab that created the shared management bridge first: the other keeps it.
    let (first, second) = if one.recorded_host_objects().contains(&one.bridge) {
        (&one, &two)
    } else {
        (&two, &one)
    };
    assert!(
        first.recorded_host_objects().contains(&first.bridge),
        "neither lab recorded the management bridge {}",
        first.bridge
    );
    let second_recorded = second.recorded_host_objects();
    let out = first.destroy(true);
    assert!(
        out.status.success(),
        "destroy {}: {}",
        first.name,
        describe(&out)
    );
    // The first lab is gone except the shared bridge, which the second still uses.
    let first_objects: Vec<String> = first
        .expected_host_objects()
        .into_iter()
        .filter(|o| *o != first.bridge)
        .collect();
    let left = poll(Duration::from_secs(8), || {
        let l = leftovers(&first.name, &first_objects.iter().cloned().collect());
        if l.is_empty() {
            Ok(())
        } else {
            Err(l.join("\n  "))
        }
    });
    if let Err(l) = left {
        panic!("destroying {} left:\n  {l}", first.name);
    }
    assert!(
        host_link_names().contains(&second.bridge),
        "the shared bridge went away with {}",
        first.name
    );
    let j = second.inspect_json();
    for r in j[&second.name].as_array().expect("rows") {
        assert_eq!(r["state"], "running", "{r}");
    }
    let n = if second.name == "lwt-par1" { 1 } else { 2 };
    second.assert_ping("a", &format!("10.210.{n}.2"));
    let (second_b, _) = second.eth0_addrs("b");
    second.assert_ping("a", &second_b.expect("checked"));

    // Then the second: now the bridge must go too, whichever lab created it.
    let out = second.destroy(true);
    assert!(
        out.status.success(),
        "destroy {}: {}",
        second.name,
        describe(&out)
    );
    let bridge_gone = poll(Duration::from_secs(5), || {
        if host_link_names().contains(&second.bridge) {
            Err(String::new())
        } else {
            Ok(())
        }
    });
    assert!(
        bridge_gone.is_ok(),
        "the shared management bridge {} outlived both labs: {} created it and was destroyed first \
         (the bridge was kept, {} still used it), and {} found it already there so never recorded it",
        second.bridge,
        first.name,
        second.name,
        second.name
    );
    second.assert_nothing_left(&second_recorded);
}

/// Deletes a host bridge this test made (through labwire) if it is still there when dropped.
struct RemoveBridgeOnDrop(&'static str);

impl Drop for RemoveBridgeOnDrop {
    fn drop(&mut self) {
        if host_link_names().contains(self.0) {
            let _ = ip(&["link", "del", self.0, "type", "bridge"]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 11. Ctrl-C during a deploy
// ---------------------------------------------------------------------------------------------

/// Deploy a generated 40-node ring, SIGINT it after 50 ms (to the process, or to its process group
/// as a terminal's Ctrl-C does), and check that nothing of the lab remains.
fn interrupt_ring(test: &str, name: &str, n: u8, to_group: bool) {
    require_root();
    let dir = PathBuf::from(format!("/tmp/lwt-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let gen = dir.join("gen.yml");
    let mut c = labwire();
    c.args(["generate", "ring", "--nodes", "40", "--name", name, "-o"])
        .arg(&gen);
    run_ok(c);
    let generated = std::fs::read_to_string(&gen).expect("read the generated ring");
    let mut yaml = String::new();
    for line in generated.lines() {
        yaml.push_str(line);
        yaml.push('\n');
        if line.starts_with("name:") {
            yaml.push_str(&format!(
                "mgmt: {{network: {name}, ipv4-subnet: 10.{n}.0.0/24, ipv6-subnet: fd00:{n}::/64}}\n"
            ));
        }
    }
    let nodes: Vec<String> = (1..=40).map(|i| format!("n{i}")).collect();
    let node_refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let lab = TestLab::new(test, name, name, &node_refs, &yaml);

    let err_path = lab.dir.join("deploy.err");
    let mut c = lab.deploy_cmd();
    c.stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).expect("create deploy.err"));
    if to_group {
        c.process_group(0);
    }
    let mut child = c.spawn().expect("start labwire deploy");
    std::thread::sleep(Duration::from_millis(50));
    let pid = child.id() as i32;
    let target = if to_group { -pid } else { pid };
    // SAFETY: signals our own child (or its process group), which has not been reaped yet.
    unsafe { libc::kill(target, libc::SIGINT) };
    let status = wait_timeout(&mut child, Duration::from_secs(120)).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("labwire deploy did not exit within 120 s of SIGINT");
    });
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let recorded = if status.success() {
        // It finished before the signal: then a destroy must leave nothing.
        eprintln!("{test}: the deploy finished before SIGINT; destroying");
        let rec = lab.recorded_host_objects();
        let out = lab.destroy(true);
        assert!(out.status.success(), "destroy: {}", describe(&out));
        rec
    } else {
        assert!(
            err.contains("interrupted"),
            "an interrupted deploy should say so ({status}):\n{err}"
        );
        Vec::new()
    };
    lab.assert_nothing_left(&recorded);
    assert!(
        hosts_block(&read_etc_hosts(), name).is_none(),
        "an /etc/hosts block of {name} is left"
    );
}

#[test]
fn ctrl_c_to_process_leaves_nothing() {
    interrupt_ring("int", "lwt-int", 211, false);
}

#[test]
fn ctrl_c_to_process_group_leaves_nothing() {
    interrupt_ring("intpg", "lwt-intpg", 212, true);
}

// ---------------------------------------------------------------------------------------------
// 12. Bad input changes nothing
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_topology_changes_nothing() {
    let yaml = "name: lwt-bad\n\
        mgmt: {network: lwt-bad, ipv4-subnet: 10.213.0.0/24, ipv6-subnet: fd00:213::/64}\n\
        topology:\n  nodes:\n    a: {kind: linux, imagee: alpine}\n    b: {kind: linux}\n\
        \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n";
    let lab = TestLab::with_file(
        "bad",
        "lwt-bad",
        "lwt-bad",
        &["a", "b"],
        "bad.clab.yml",
        yaml,
    );
    let (line, col) = yaml
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("imagee").map(|c| (i + 1, c + 1)))
        .expect("the typo is in the text");
    let links_before = host_link_names();
    let out = lab.try_deploy();
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "deploy of a bad topology succeeded: {}",
        describe(&out)
    );
    let at = format!("bad.clab.yml:{line}:{col}");
    assert!(
        err.contains(&at),
        "the error should point at {at}: {}",
        describe(&out)
    );
    assert!(
        err.contains("imagee"),
        "the error should name the offending key: {}",
        describe(&out)
    );
    assert!(
        !lab.state_dir().exists(),
        "a state dir was created: {}",
        lab.state_dir().display()
    );
    assert!(
        !lab.lab_dir().exists(),
        "a lab dir was created: {}",
        lab.lab_dir().display()
    );
    assert!(
        !Path::new("/run/netns/clab-lwt-bad-a").exists()
            && !Path::new("/run/netns/clab-lwt-bad-b").exists()
    );
    assert!(
        !host_link_names().contains(&lab.bridge),
        "the management bridge {} was created",
        lab.bridge
    );
    assert!(
        live_inits("lwt-bad").is_empty(),
        "node processes were started"
    );
    assert!(
        hosts_block(&read_etc_hosts(), "lwt-bad").is_none(),
        "an /etc/hosts block was written"
    );
    let mine: Vec<String> = lab.expected_host_objects();
    let links_after = host_link_names();
    let new: Vec<&String> = links_after
        .difference(&links_before)
        .filter(|l| mine.contains(l))
        .collect();
    assert!(new.is_empty(), "host links were created: {new:?}");
}

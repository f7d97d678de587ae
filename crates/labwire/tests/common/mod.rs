//! Helpers shared by the end-to-end tests (`native.rs`, `features.rs`, `docker.rs`, `podman.rs`,
//! …): running the `labwire` binary with a timeout, a lab under test with its drop guard, leftover
//! checks, `/etc/hosts` reading, container engines and the lab mixing their nodes with a native
//! one. Each test binary uses a different subset.
#![allow(dead_code)]

pub mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Running labwire
// ---------------------------------------------------------------------------------------------

pub fn labwire_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_labwire"))
}

/// labwire-init next to the labwire binary under test; panics with what to do when missing.
pub fn init_bin() -> PathBuf {
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
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the native end-to-end tests deploy real labs (namespaces, veths, bridges) and must run as root; \
         run them with sudo (e.g. `sudo -E cargo test -p labwire --test native`)"
    );
    init_bin();
}

pub fn labwire() -> Command {
    let mut c = Command::new(labwire_bin());
    c.env("LABWIRE_INIT", init_bin());
    c.stdin(Stdio::null());
    c
}

/// Run to completion, at most `timeout`; the child is killed (and the test fails) past it.
pub fn run_timeout(mut cmd: Command, timeout: Duration) -> Output {
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

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
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

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

pub fn run_ok(cmd: Command) -> Output {
    let what = format!("{cmd:?}");
    let out = run_timeout(cmd, Duration::from_secs(120));
    assert!(out.status.success(), "{what} failed: {}", describe(&out));
    out
}

/// `ip ARGS` on the host (read-only uses only).
pub fn ip(args: &[&str]) -> Output {
    let mut c = Command::new("ip");
    c.args(args);
    run_timeout(c, Duration::from_secs(30))
}

pub fn ip_json(args: &[&str]) -> Value {
    let out = ip(args);
    assert!(out.status.success(), "ip {args:?}: {}", describe(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ip {args:?} printed no JSON ({e}): {}", describe(&out)))
}

/// Retry `check` until it returns Ok or `timeout` passes; the last error otherwise.
pub fn poll<T>(
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
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
pub struct TestLab {
    pub name: String,
    /// `/tmp/lwt-<test>-<pid>/`
    pub dir: PathBuf,
    pub file: PathBuf,
    /// Management bridge name (`br-<network>`), for leftover checks.
    pub bridge: String,
    /// Node names, for leftover checks of the management veth host ends.
    pub nodes: Vec<String>,
    /// Extra environment for every labwire command of this lab (e.g. `LABWIRE_STATE_DIR`).
    pub env: Vec<(String, String)>,
}

impl TestLab {
    /// Write `yaml` (lab `name`) under `/tmp/lwt-<test>-<pid>/`. Any earlier lab of that name
    /// (a crashed run) is destroyed first.
    pub fn new(test: &str, name: &str, network: &str, nodes: &[&str], yaml: &str) -> TestLab {
        Self::with_file(test, name, network, nodes, "topo.clab.yml", yaml)
    }

    pub fn with_file(
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
            env: Vec::new(),
        };
        lab.destroy_quietly();
        lab
    }

    pub fn netns(&self, node: &str) -> String {
        format!("clab-{}-{node}", self.name)
    }

    pub fn long_name(&self, node: &str) -> String {
        self.netns(node)
    }

    pub fn lab_dir(&self) -> PathBuf {
        self.dir.join(format!("clab-{}", self.name))
    }

    /// The state root labwire uses for this lab (`LABWIRE_STATE_DIR` when the lab sets it).
    pub fn state_root(&self) -> PathBuf {
        self.env
            .iter()
            .find(|(k, _)| k == "LABWIRE_STATE_DIR")
            .map_or_else(
                || PathBuf::from("/var/lib/labwire"),
                |(_, v)| PathBuf::from(v),
            )
    }

    pub fn state_dir(&self) -> PathBuf {
        self.state_root().join("labs").join(&self.name)
    }

    /// `labwire` with this lab's extra environment.
    pub fn cmd(&self) -> Command {
        let mut c = labwire();
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    pub fn deploy_cmd(&self) -> Command {
        let mut c = self.cmd();
        c.arg("deploy").arg("-t").arg(&self.file).arg("-q");
        c
    }

    pub fn try_deploy(&self) -> Output {
        run_timeout(self.deploy_cmd(), Duration::from_secs(180))
    }

    pub fn deploy(&self) -> Output {
        let out = self.try_deploy();
        assert!(
            out.status.success(),
            "deploy of lab {} failed: {}",
            self.name,
            describe(&out)
        );
        out
    }

    pub fn destroy(&self, cleanup: bool) -> Output {
        let mut c = self.cmd();
        c.args(["destroy", "--name", &self.name]);
        if cleanup {
            c.arg("--cleanup");
        }
        run_timeout(c, Duration::from_secs(120))
    }

    pub fn destroy_quietly(&self) {
        let _ = self.destroy(true);
    }

    /// `labwire exec --name LAB --node NODE --cmd CMD`.
    pub fn exec(&self, node: &str, cmd: &str) -> Output {
        let mut c = self.cmd();
        c.args(["exec", "--name", &self.name, "--node", node, "--cmd", cmd]);
        run_timeout(c, Duration::from_secs(60))
    }

    /// `exec` that must succeed; returns its stdout.
    pub fn exec_ok(&self, node: &str, cmd: &str) -> String {
        let out = self.exec(node, cmd);
        assert!(
            out.status.success(),
            "lab {}: `{cmd}` in {node} failed: {}",
            self.name,
            describe(&out)
        );
        text(&out.stdout)
    }

    /// Ping from `node` (one packet, 2 s) and fail with the output when it does not answer.
    pub fn assert_ping(&self, node: &str, addr: &str) {
        let out = self.exec(node, &format!("ping -c1 -W2 {addr}"));
        assert!(
            out.status.success(),
            "lab {}: ping from {node} to {addr} failed: {}",
            self.name,
            describe(&out)
        );
    }

    /// `ip -n clab-<lab>-<node> -j link`
    pub fn links(&self, node: &str) -> Vec<Value> {
        match ip_json(&["-n", &self.netns(node), "-j", "link"]) {
            Value::Array(a) => a,
            v => panic!("ip -j link printed {v}"),
        }
    }

    /// The node's eth0 addresses (IPv4, IPv6 global) as the kernel has them.
    pub fn eth0_addrs(&self, node: &str) -> (Option<String>, Option<String>) {
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

    pub fn topology_data(&self) -> Value {
        let path = self.lab_dir().join("topology-data.json");
        let t = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_slice(&t).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
    }

    pub fn inspect_json(&self) -> Value {
        let mut c = self.cmd();
        c.args(["inspect", "--name", &self.name, "--format", "json"]);
        let out = run_ok(c);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("inspect printed no JSON ({e}): {}", describe(&out)))
    }

    /// Host objects the lab's journal records (host links and bridges), read while it is deployed.
    pub fn recorded_host_objects(&self) -> Vec<String> {
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
    pub fn expected_host_objects(&self) -> Vec<String> {
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
    pub fn assert_nothing_left(&self, extra_links: &[String]) {
        self.assert_nothing_left_within(extra_links, Duration::from_secs(8));
    }

    /// [`TestLab::assert_nothing_left`], allowing `window` for the kernel to free what goes with
    /// the nodes' namespaces.
    pub fn assert_nothing_left_within(&self, extra_links: &[String], window: Duration) {
        let mut links: BTreeSet<String> = self.expected_host_objects().into_iter().collect();
        links.extend(extra_links.iter().cloned());
        let result = poll(window, || {
            let left = leftovers_in(&self.state_root(), &self.name, &links);
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
pub fn host_link_names() -> BTreeSet<String> {
    match ip_json(&["-j", "link"]) {
        Value::Array(a) => a
            .iter()
            .filter_map(|l| l["ifname"].as_str().map(str::to_string))
            .collect(),
        v => panic!("ip -j link printed {v}"),
    }
}

/// A process's state letter from /proc/PID/stat (`Z` for a zombie).
pub fn proc_state(pid: &str) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Live (non-zombie) labwire-init processes of lab `lab`: "pid cmdline".
pub fn live_inits(lab: &str) -> Vec<String> {
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
pub fn leftovers(lab: &str, host_links: &BTreeSet<String>) -> Vec<String> {
    leftovers_in(Path::new("/var/lib/labwire"), lab, host_links)
}

/// [`leftovers`] with labwire's state under `state_root`.
pub fn leftovers_in(state_root: &Path, lab: &str, host_links: &BTreeSet<String>) -> Vec<String> {
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
    let state = state_root.join("labs").join(lab);
    if state.exists() {
        left.push(format!("state directory {}", state.display()));
    }
    left
}

/// A link of `ip -j link` as (name, mac, up with carrier, mtu).
pub struct IfState {
    pub mac: String,
    pub up: bool,
    pub mtu: u64,
}

pub fn if_states(links: &[Value]) -> BTreeMap<String, IfState> {
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
pub fn expected_interfaces(data: &Value) -> BTreeMap<String, BTreeMap<String, String>> {
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
pub fn assert_interfaces_up(lab: &TestLab, node: &str, expected: &BTreeMap<String, String>) {
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

// ---------------------------------------------------------------------------------------------
// 7. /etc/hosts block
// ---------------------------------------------------------------------------------------------

/// /etc/hosts read under labwire's hosts lock, so a concurrent rewrite is never half-seen.
pub fn read_etc_hosts() -> String {
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
pub fn hosts_block(text: &str, lab: &str) -> Option<Vec<String>> {
    let start = format!("###### CLAB-{lab}-START ######");
    let end = format!("###### CLAB-{lab}-END ######");
    let lines: Vec<&str> = text.lines().collect();
    let s = lines.iter().position(|l| *l == start)?;
    let e = lines[s..].iter().position(|l| *l == end).map(|e| e + s)?;
    Some(lines[s + 1..e].iter().map(|l| l.to_string()).collect())
}

/// The file without any labwire/containerlab block (other tests' labs come and go meanwhile).
pub fn without_blocks(text: &str) -> Vec<String> {
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

/// Deletes a host bridge this test made (through labwire) if it is still there when dropped.
pub struct RemoveBridgeOnDrop(pub &'static str);

impl Drop for RemoveBridgeOnDrop {
    fn drop(&mut self) {
        if host_link_names().contains(self.0) {
            let _ = ip(&["link", "del", self.0, "type", "bridge"]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Container engines (docker.rs, podman.rs)
// ---------------------------------------------------------------------------------------------

/// A container engine as its command-line tool drives it (`docker`, `podman`), with how to tell
/// that its API answers and how to start it when not.
#[derive(Clone, Copy)]
pub struct EngineCli {
    /// The tool, which is also the runtime's name in topologies.
    pub cli: &'static str,
    /// A command (argv) that succeeds when labwire's API socket of the engine answers.
    pub probe: &'static [&'static str],
    /// A shell command starting the engine detached (it outlives the test: other test binaries
    /// and runs use it).
    pub start: &'static str,
    /// Where `start` logs.
    pub log: &'static str,
}

pub const DOCKER: EngineCli = EngineCli {
    cli: "docker",
    probe: &["docker", "info"],
    start: "cd / && nohup dockerd >/tmp/lwt-dockerd.log 2>&1 &",
    log: "/tmp/lwt-dockerd.log",
};

/// Podman's Docker-compatible API service at its rootful default socket (scripts/test starts the
/// same).
pub const PODMAN: EngineCli = EngineCli {
    cli: "podman",
    probe: &[
        "podman",
        "--remote",
        "--url",
        "unix:///run/podman/podman.sock",
        "info",
    ],
    start: "mkdir -p /run/podman && cd / && nohup podman system service --time=0 \
            unix:///run/podman/podman.sock >/tmp/lwt-podman.log 2>&1 &",
    log: "/tmp/lwt-podman.log",
};

impl EngineCli {
    /// `<cli> ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(self.cli);
        c.args(args).stdin(Stdio::null());
        run_timeout(c, Duration::from_secs(60))
    }

    /// `<cli> ARGS`, which must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{} {args:?} failed: {}",
            self.cli,
            describe(&out)
        );
        text(&out.stdout)
    }

    fn answers(&self) -> bool {
        let mut c = Command::new(self.probe[0]);
        c.args(&self.probe[1..]).stdin(Stdio::null());
        run_timeout(c, Duration::from_secs(60)).status.success()
    }

    /// The engine answering: started (its `start` command) when it does not, then waited for
    /// up to 30 s.
    pub fn ensure_running(&self) {
        if self.answers() {
            return;
        }
        let st = Command::new("sh")
            .args(["-c", self.start])
            .stdin(Stdio::null())
            .status()
            .expect("run sh");
        assert!(st.success(), "could not start {}: {}", self.cli, self.start);
        let start = Instant::now();
        while !self.answers() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{} did not answer within 30 s; see {}",
                self.cli,
                self.log
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The engine answering and holding the busybox image `image` (see
    /// [`EngineCli::ensure_busybox_image`]), checked once per test binary, engine and image; tests
    /// of one binary running in parallel wait for the first to finish the import.
    pub fn ready_with_busybox(&self, image: &str) {
        static READY: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
        let key = format!("{} {image}", self.cli);
        if ready.contains(&key) {
            return;
        }
        require_root();
        self.ensure_running();
        self.ensure_busybox_image(image);
        ready.push(key);
    }

    /// `image` in the engine: when missing, a `<cli> import` of a root of the host's static
    /// busybox (no registry is reachable), running `sleep` as its command.
    pub fn ensure_busybox_image(&self, image: &str) {
        if self.run(&["image", "inspect", image]).status.success() {
            return;
        }
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .expect("a static busybox (Debian package busybox-static)");
        let dir =
            std::env::temp_dir().join(format!("lwt-{}-image-{}", self.cli, std::process::id()));
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
        self.ok(&[
            "import",
            "-c",
            r#"CMD ["/bin/sleep", "1000000"]"#,
            tar.to_str().expect("utf-8 path"),
            image,
        ]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Ids of every container (running or not) labelled `containerlab=<lab>`.
    pub fn containers_of(&self, lab: &str) -> Vec<String> {
        self.ok(&[
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
}

/// The addressing of a lab of [`mixed_yaml`]: management on `<v4>.0.0/24` and `<v6>::/64`, the
/// two data links on `<v4>.1.0/24` and `<v4>.2.0/24` (`v4` is the first two octets).
pub struct MixedNet {
    pub v4: &'static str,
    pub v6: &'static str,
}

/// Lab `lab` (management network of the same name): container nodes `a` (with `env: FOO=bar`)
/// and `b` on `runtime` from `image`, native node `c`; links a:eth1–b:eth1 and b:eth2–c:eth1.
/// The host port a docker node of the mixed lab publishes its port 8080 on (127.0.0.1 only).
pub const MIXED_HOST_PORT: u16 = 18_081;

pub fn mixed_yaml(lab: &str, runtime: &str, image: &str, net: &MixedNet) -> String {
    let MixedNet { v4, v6 } = net;
    // Docker nodes sit on the engine's network, where `ports` publish.
    let ports = if runtime == "docker" {
        format!(", ports: [\"127.0.0.1:{MIXED_HOST_PORT}:8080\"]")
    } else {
        String::new()
    };
    format!(
        "name: {lab}\n\
         mgmt: {{network: {lab}, ipv4-subnet: {v4}.0.0/24, ipv6-subnet: \"{v6}::/64\"}}\n\
         topology:\n  nodes:\n\
         \x20   a: {{kind: linux, runtime: {runtime}, image: \"{image}\", env: {{FOO: bar}}{ports}}}\n\
         \x20   b: {{kind: linux, runtime: {runtime}, image: \"{image}\"}}\n\
         \x20   c: {{kind: linux}}\n\
         \x20 links:\n\
         \x20   - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [\"{v4}.1.1/24\", \"{v4}.1.2/24\"]\n\
         \x20   - endpoints: [\"b:eth2\", \"c:eth1\"]\n      ipv4: [\"{v4}.2.1/24\", \"{v4}.2.2/24\"]\n"
    )
}

/// Deploys a lab of [`mixed_yaml`] made with `engine`, checks it (pings over both links and the
/// management network, the containers' labels, env and hostname as the engine shows them, the
/// engine's ids in `labwire inspect`), destroys it and checks that nothing is left: no
/// container, netns entry or /etc/hosts block.
pub fn check_mixed_lab(engine: &EngineCli, lab: &TestLab, net: &MixedNet) {
    let v4 = net.v4;
    lab.deploy();

    // Data links: container—container and container—native.
    lab.assert_ping("a", &format!("{v4}.1.2"));
    lab.assert_ping("b", &format!("{v4}.1.1"));
    lab.assert_ping("b", &format!("{v4}.2.2"));
    lab.assert_ping("c", &format!("{v4}.2.1"));
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
    assert!(
        a4.starts_with(&format!("{v4}.0.")),
        "a's management address {a4}"
    );
    lab.assert_ping("c", &a4);
    lab.assert_ping("a", &c4);
    lab.assert_ping("a", &b4);
    lab.assert_ping("a", &c6);
    lab.assert_ping("c", &a6);

    // The containers as the engine sees them.
    let ids = engine.containers_of(&lab.name);
    assert_eq!(ids.len(), 2, "containers of {}: {ids:?}", lab.name);
    let a_name = lab.long_name("a");
    let info: Value =
        serde_json::from_str(&engine.ok(&["inspect", &a_name])).expect("inspect JSON");
    let labels = &info[0]["Config"]["Labels"];
    let file = lab.file.display().to_string();
    let node_dir = lab.lab_dir().join("a").display().to_string();
    for (k, v) in [
        ("containerlab", lab.name.as_str()),
        ("clab-node-name", "a"),
        ("clab-node-longname", a_name.as_str()),
        ("clab-node-kind", "linux"),
        ("clab-node-type", ""),
        ("clab-node-group", ""),
        ("clab-node-lab-dir", node_dir.as_str()),
        ("clab-topo-file", file.as_str()),
    ] {
        assert_eq!(labels[k].as_str(), Some(v), "label {k} in {labels}");
    }
    // Docker containers join the lab's management network as a Docker network (its bridge is the
    // management bridge the native node joins); Podman containers are wired by labwire.
    let engine_net = engine.cli == "docker";
    assert_eq!(
        info[0]["HostConfig"]["NetworkMode"].as_str(),
        Some(if engine_net {
            lab.name.as_str()
        } else {
            "none"
        }),
        "network mode of {a_name}"
    );
    if engine_net {
        let net: Value = serde_json::from_str(&engine.ok(&["network", "inspect", &lab.name]))
            .expect("network inspect JSON");
        let attached = net[0]["Containers"].as_object().map_or(0, |m| m.len());
        assert_eq!(attached, 2, "containers on network {}: {net}", lab.name);
        assert_eq!(
            net[0]["Options"]["com.docker.network.bridge.name"].as_str(),
            Some(lab.bridge.as_str())
        );
        // `ports`: a's port 8080, published on the host's loopback.
        engine.ok(&[
            "exec", "-d", &a_name, "busybox", "httpd", "-p", "8080", "-h", "/etc",
        ]);
        let page = poll(Duration::from_secs(20), || {
            use std::io::Write as _;
            let mut conn = std::net::TcpStream::connect(("127.0.0.1", MIXED_HOST_PORT))
                .map_err(|e| e.to_string())?;
            conn.set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            conn.write_all(b"GET /hostname HTTP/1.0\r\n\r\n")
                .map_err(|e| e.to_string())?;
            let mut page = String::new();
            conn.read_to_string(&mut page).map_err(|e| e.to_string())?;
            if page.contains("200") {
                Ok(page)
            } else {
                Err(page)
            }
        })
        .unwrap_or_else(|e| panic!("GET 127.0.0.1:{MIXED_HOST_PORT}/hostname: {e}"));
        assert!(page.ends_with("\na\n"), "published port served: {page}");
    }
    let env = engine.ok(&["exec", &a_name, "env"]);
    for line in [
        format!("CLAB_LABEL_CONTAINERLAB={}", lab.name),
        "CLAB_LABEL_CLAB_NODE_NAME=a".to_string(),
        format!("CLAB_LABEL_CLAB_NODE_LONGNAME={a_name}"),
        "CLAB_LABEL_CLAB_NODE_KIND=linux".to_string(),
        "CLAB_INTFS=1".to_string(),
        "FOO=bar".to_string(),
    ] {
        assert!(
            env.lines().any(|l| l == line),
            "{line} not in the container's env:\n{env}"
        );
    }
    let hostname = engine.ok(&["exec", &lab.long_name("b"), "hostname"]);
    assert_eq!(hostname.trim(), "b");
    for n in ["a", "b", "c"] {
        assert!(
            Path::new("/run/netns").join(lab.netns(n)).exists(),
            "/run/netns/{} is missing",
            lab.netns(n)
        );
    }

    // inspect lists the engine's ids.
    let rows = lab.inspect_json();
    let rows = rows[&lab.name]
        .as_array()
        .unwrap_or_else(|| panic!("rows of {}", lab.name));
    for (node, runtime) in [("a", engine.cli), ("b", engine.cli), ("c", "native")] {
        let long = lab.long_name(node);
        let row = rows
            .iter()
            .find(|r| r["name"] == long.as_str())
            .unwrap_or_else(|| panic!("no inspect row for {long}: {rows:?}"));
        assert_eq!(row["runtime"], runtime, "{row}");
        assert_eq!(row["state"], "running", "{row}");
        if runtime == engine.cli {
            let id = engine.ok(&["inspect", "-f", "{{.Id}}", &long]);
            assert_eq!(
                row["container_id"].as_str(),
                Some(&id.trim()[..12]),
                "{row}"
            );
        }
    }
    assert!(hosts_block(&read_etc_hosts(), &lab.name).is_some());

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy failed: {}", describe(&out));
    assert!(
        engine.containers_of(&lab.name).is_empty(),
        "containers left after destroy"
    );
    if engine_net {
        let mut c = Command::new(engine.cli);
        c.args(["network", "inspect", &lab.name]);
        let out = run_timeout(c, Duration::from_secs(30));
        assert!(
            !out.status.success(),
            "network {} left after destroy",
            lab.name
        );
    }
    assert!(
        hosts_block(&read_etc_hosts(), &lab.name).is_none(),
        "/etc/hosts still has the lab's block"
    );
    lab.assert_nothing_left(&[]);
}

// ---------------------------------------------------------------------------------------------
// The open-nos image (Debian + FRR, images/open-nos), built once into its own store
// ---------------------------------------------------------------------------------------------

pub mod open_nos {
    use super::*;

    pub const IMAGE: &str = "open-nos:latest";
    pub const IMAGE_DIR: &str = "/var/tmp/lwt-c2-images";

    pub fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// What the image is built from; a change rebuilds it.
    /// Copy `files` (paths under the repository's `example`) into `into`, keeping their paths.
    pub fn copy_example(example: &str, files: &[&str], into: &Path) {
        let src = repo_root().join(example);
        for f in files {
            let to = into.join(f);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(src.join(f), &to).unwrap_or_else(|e| {
                panic!("copy {} to {}: {e}", src.join(f).display(), to.display())
            });
        }
    }

    pub fn recipe_stamp(dir: &Path) -> String {
        let mut s = String::new();
        for f in ["suite", "sources", "packages", "customize.sh", "build.sh"] {
            let t = std::fs::read_to_string(dir.join(f))
                .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(f).display()));
            s.push_str(&format!("--- {f}\n{t}"));
        }
        s
    }

    /// open-nos:latest in IMAGE_DIR (and, with `docker`, in the Docker engine): reused when present
    /// and built from the same recipe, else built with images/open-nos/build.sh (`--docker`: also
    /// `docker import`). Returns the seconds the build took (None when reused).
    /// Tests of this file build the image once, one at a time.
    static IMAGE_BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());

    pub fn ensure_image() -> Option<f64> {
        ensure_image_for(false)
    }

    pub fn ensure_image_for(docker: bool) -> Option<f64> {
        let _one_at_a_time = IMAGE_BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let recipe = repo_root().join("images/open-nos");
        let stamp_path = Path::new(IMAGE_DIR).join("open-nos.recipe");
        let docker_stamp_path = Path::new(IMAGE_DIR).join("open-nos.docker.recipe");
        let stamp = recipe_stamp(&recipe);
        let mut inspect = labwire();
        inspect
            .env("LABWIRE_IMAGE_DIR", IMAGE_DIR)
            .args(["image", "inspect", IMAGE]);
        let present = run_timeout(inspect, Duration::from_secs(60))
            .status
            .success();
        let same = std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp);
        let docker_ready = !docker
            || (docker_cmd(&["image", "inspect", IMAGE]).status.success()
                && std::fs::read_to_string(&docker_stamp_path).is_ok_and(|s| s == stamp));
        if present && same && docker_ready && std::env::var_os("LWT_C2_REBUILD").is_none() {
            let also = if docker { " and the Docker engine" } else { "" };
            eprintln!("open-nos: image {IMAGE} reused from {IMAGE_DIR}{also}");
            return None;
        }
        let t = Instant::now();
        let mut build = Command::new("bash");
        build.arg(recipe.join("build.sh"));
        if docker {
            build.arg("--docker");
        }
        build
            .arg(IMAGE)
            .env("LABWIRE", labwire_bin())
            .env("LABWIRE_INIT", init_bin())
            .env("LABWIRE_IMAGE_DIR", IMAGE_DIR)
            .env_remove("OPEN_NOS_TAR")
            .stdin(std::process::Stdio::null());
        let out = run_timeout(build, Duration::from_secs(900));
        assert!(
            out.status.success(),
            "images/open-nos/build.sh failed: {}",
            describe(&out)
        );
        eprint!("{}", text(&out.stdout));
        std::fs::write(&stamp_path, &stamp)
            .unwrap_or_else(|e| panic!("write {}: {e}", stamp_path.display()));
        if docker {
            std::fs::write(&docker_stamp_path, &stamp)
                .unwrap_or_else(|e| panic!("write {}: {e}", docker_stamp_path.display()));
        }
        Some(t.elapsed().as_secs_f64())
    }

    /// Ok when `show bgp summary json` (`out`) of `leaf` has both sessions (swp49, swp50)
    /// Established in IPv4 unicast and EVPN.
    pub fn sessions_established_in(leaf: &str, out: &std::process::Output) -> Result<(), String> {
        if !out.status.success() {
            return Err(format!("{leaf}: {}", describe(out)));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{leaf}: no JSON yet ({e}): {}", text(&out.stdout)))?;
        let mut problems = Vec::new();
        for af in ["ipv4Unicast", "l2VpnEvpn"] {
            for peer in ["swp49", "swp50"] {
                let state = v[af]["peers"][peer]["state"].as_str().unwrap_or("absent");
                if state != "Established" {
                    problems.push(format!("{leaf} {af} {peer}: {state}"));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    pub fn docker_cmd(args: &[&str]) -> std::process::Output {
        let mut c = Command::new("docker");
        c.args(args).stdin(std::process::Stdio::null());
        run_timeout(c, Duration::from_secs(60))
    }

    pub const KERNEL_DIR: &str = "/var/tmp/lwt-kernel";

    /// Debian's kernel, fetched (once) with images/kernel/fetch.sh; returns the vmlinuz path.
    pub fn debian_kernel() -> PathBuf {
        static ONCE: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
        let mut k = ONCE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = k.as_ref() {
            return p.clone();
        }
        let mut c = Command::new("bash");
        c.arg(repo_root().join("images/kernel/fetch.sh"))
            .arg(KERNEL_DIR);
        let out = run_timeout(c, Duration::from_secs(600));
        assert!(
            out.status.success(),
            "images/kernel/fetch.sh failed: {}",
            describe(&out)
        );
        let p = PathBuf::from(text(&out.stdout).trim());
        assert!(p.is_file(), "fetch.sh printed {}", p.display());
        *k = Some(p.clone());
        p
    }
}

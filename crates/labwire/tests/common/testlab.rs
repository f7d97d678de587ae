//! A lab under test ([`TestLab`]): its topology in a temp dir, the labwire commands run against
//! it, a drop guard that destroys it, and the leftover checks (netns entries, host links, mounts,
//! live inits, state) that prove a destroy left nothing behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use super::*;

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

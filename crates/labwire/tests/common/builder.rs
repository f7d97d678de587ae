//! Labs under test that choose their own name and management subnet ([`LabBuilder`]): the name
//! comes from the running test's name plus a hash, the subnet from a range no hand-numbered test
//! uses, claimed for the lab's lifetime so no two labs built this way share it (in this process,
//! in another test binary, or in another worktree's run). A test writes only its topology, in a
//! readable raw string:
//!
//! ```ignore
//! let lab = LabBuilder::new()
//!     .topology(r#"
//!         nodes:
//!           a: {kind: linux}
//!           b: {kind: linux}
//!         links:
//!           - endpoints: ["a:eth1", "b:eth1"]
//!             ipv4: ["192.168.1.1/24", "192.168.1.2/24"]
//!     "#)
//!     .build();
//! lab.deploy();
//! lab.assert_ping("a", "192.168.1.2");
//! ```
//!
//! Addressing: management on `10.<64..127>.<n>.0/24` and `fd00:1ab:<slot>::/64` (hand-numbered
//! tests use 10.0–10.25, 10.161–10.254, 172.30, 172.31 and `fd00:<decimal>`); links are inside
//! the nodes' namespaces, so a test may number them as it likes outside the management subnet.

use std::fs::File;
use std::ops::{Deref, DerefMut};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::*;

/// Management subnets handed out: 10.64.0.0/10 in /24s.
const SLOTS: u32 = 64 * 256;

/// Where the subnet claims live (one lock file per slot, flock'd while its lab lives).
const CLAIM_DIR: &str = "/run/lock/lwt-subnets";

/// A lab to build: its topology and, optionally, what cannot be derived.
pub struct LabBuilder {
    test: Option<String>,
    topology: String,
    mgmt: String,
    extra: String,
    nodes: Option<Vec<String>>,
    env: Vec<(String, String)>,
    file: String,
}

/// The management network a built lab got.
#[derive(Clone, Debug)]
pub struct MgmtNet {
    /// The network (and Docker network) name, also the host bridge's name (`lwtb<hash>`).
    pub network: String,
    /// `10.X.Y.0/24`.
    pub v4_subnet: String,
    /// The first three octets (`10.X.Y`), for addresses in the subnet.
    pub v4: String,
    /// `fd00:1ab:S::/64`.
    pub v6_subnet: String,
    /// The prefix without `::/64` (`fd00:1ab:S`).
    pub v6: String,
}

/// A [`TestLab`] with the management network it was given; destroyed when dropped, and only then
/// is its subnet free for another lab.
pub struct BuiltLab {
    // Declared first, dropped first: the lab is destroyed before its subnet claim goes.
    lab: TestLab,
    pub mgmt: MgmtNet,
    _claim: File,
}

impl Deref for BuiltLab {
    type Target = TestLab;
    fn deref(&self) -> &TestLab {
        &self.lab
    }
}

impl DerefMut for BuiltLab {
    fn deref_mut(&mut self) -> &mut TestLab {
        &mut self.lab
    }
}

impl Default for LabBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LabBuilder {
    pub fn new() -> LabBuilder {
        LabBuilder {
            test: None,
            topology: String::new(),
            mgmt: String::new(),
            extra: String::new(),
            nodes: None,
            env: Vec::new(),
            file: "topo.clab.yml".into(),
        }
    }

    /// What the lab's name and subnet derive from when not the running test's name (a test
    /// building two labs names each).
    pub fn test(mut self, key: &str) -> Self {
        self.test = Some(key.to_string());
        self
    }

    /// The YAML under `topology:`, as written in a raw string (its common indentation is
    /// removed). `{lab}` is replaced by the lab's name, `{mgmt4}` and `{mgmt6}` by the management
    /// prefixes ([`MgmtNet::v4`], [`MgmtNet::v6`]).
    pub fn topology(mut self, yaml: &str) -> Self {
        self.topology = dedent(yaml);
        self
    }

    /// More fields of `mgmt:` besides the network, bridge and subnets (e.g. `mtu: 1450`).
    pub fn mgmt(mut self, yaml: &str) -> Self {
        self.mgmt = dedent(yaml);
        self
    }

    /// Top-level YAML besides `name`, `mgmt` and `topology` (e.g. `prefix: ""`), same rules.
    pub fn extra(mut self, yaml: &str) -> Self {
        self.extra = dedent(yaml);
        self
    }

    /// The nodes, for the leftover checks; by default read from the topology, which must then load.
    pub fn nodes(mut self, nodes: &[&str]) -> Self {
        self.nodes = Some(nodes.iter().map(|n| n.to_string()).collect());
        self
    }

    /// An environment variable for every labwire command of the lab (set before the guard's
    /// first destroy).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The topology's file name in the lab's temp dir (default `topo.clab.yml`).
    pub fn file(mut self, name: &str) -> Self {
        self.file = name.into();
        self
    }

    /// Name the lab, claim a subnet, write the topology and destroy whatever a crashed earlier
    /// run left under the same name.
    pub fn build(self) -> BuiltLab {
        require_root();
        let key = self.test.clone().unwrap_or_else(running_test);
        let (name, _) = lab_name(&key);
        let (claim, mgmt) = mgmt_claim(&key);
        let fill = |s: &str| {
            s.replace("{lab}", &name)
                .replace("{mgmt4}", &mgmt.v4)
                .replace("{mgmt6}", &mgmt.v6)
        };
        let mut yaml = format!(
            "name: {name}\n\
             mgmt:\n  network: {net}\n  bridge: {net}\n  ipv4-subnet: {v4}\n  ipv6-subnet: \"{v6}\"\n",
            net = mgmt.network,
            v4 = mgmt.v4_subnet,
            v6 = mgmt.v6_subnet,
        );
        for line in fill(&self.mgmt).lines() {
            yaml.push_str("  ");
            yaml.push_str(line);
            yaml.push('\n');
        }
        yaml.push_str(&fill(&self.extra));
        yaml.push_str("topology:\n");
        for line in fill(&self.topology).lines() {
            if !line.is_empty() {
                yaml.push_str("  ");
            }
            yaml.push_str(line);
            yaml.push('\n');
        }
        let dir = PathBuf::from(format!("/tmp/{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let file = dir.join(&self.file);
        std::fs::write(&file, &yaml).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
        let nodes = self.nodes.unwrap_or_else(|| node_names(&file, &yaml));
        let lab = TestLab {
            name,
            dir,
            file,
            bridge: mgmt.network.clone(),
            nodes,
            env: self.env,
        };
        lab.destroy_quietly();
        BuiltLab {
            lab,
            mgmt,
            _claim: claim,
        }
    }
}

/// The running test's name (libtest names each test's thread after it).
fn running_test() -> String {
    match std::thread::current().name() {
        Some(n) if n != "main" => n.to_string(),
        _ => panic!(
            "LabBuilder: this thread is not a test's own thread; name the lab with .test(\"…\")"
        ),
    }
}

/// `lwt-<test name, shortened>-<6 hex>` and the full hash; the hash covers the test binary and the
/// worktree, so the same test run from two checkouts at once gets two labs.
fn lab_name(key: &str) -> (String, String) {
    let mut h = Sha256::new();
    for part in [env!("CARGO_MANIFEST_DIR"), env!("CARGO_CRATE_NAME"), key] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let hash: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let last = key.rsplit("::").next().unwrap_or(key);
    let mut slug: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    slug.truncate(20);
    let slug = slug.trim_matches('-');
    (format!("lwt-{slug}-{}", &hash[..6]), hash)
}

/// The management network for the lab of `key` (a test's name): the first free slot from the
/// key's hash, not claimed by a live lab of this builder and not overlapping a route the host has
/// (another lab's management network). The claim holds while the returned file is open.
pub fn mgmt_claim(key: &str) -> (File, MgmtNet) {
    let (_, hash) = lab_name(key);
    std::fs::create_dir_all(CLAIM_DIR).unwrap_or_else(|e| panic!("create {CLAIM_DIR}: {e}"));
    let start = u32::from_str_radix(&hash[..8], 16).expect("hex") % SLOTS;
    let routes = host_v4_routes();
    for i in 0..SLOTS {
        let slot = (start + i) % SLOTS;
        let (x, y) = (64 + slot / 256, slot % 256);
        let net = u32::from_be_bytes([10, x as u8, y as u8, 0]);
        if routes.iter().any(|&(r, len)| overlaps(net, 24, r, len)) {
            continue;
        }
        let path = Path::new(CLAIM_DIR).join(slot.to_string());
        let f = File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        // SAFETY: flock on a descriptor `f` keeps open; the lock goes when it is closed.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            continue;
        }
        let mgmt = MgmtNet {
            network: format!("lwtb{}", &hash[..8]),
            v4_subnet: format!("10.{x}.{y}.0/24"),
            v4: format!("10.{x}.{y}"),
            v6_subnet: format!("fd00:1ab:{slot:x}::/64"),
            v6: format!("fd00:1ab:{slot:x}"),
        };
        return (f, mgmt);
    }
    panic!("no free management subnet in 10.64.0.0/10");
}

/// The host's IPv4 routes as (network, prefix length).
fn host_v4_routes() -> Vec<(u32, u32)> {
    let v = ip_json(&["-j", "-4", "route", "show", "table", "all"]);
    let mut out = Vec::new();
    for r in v.as_array().into_iter().flatten() {
        let Some(dst) = r["dst"].as_str() else {
            continue;
        };
        let (addr, len) = dst.split_once('/').unwrap_or((dst, "32"));
        if let (Ok(a), Ok(len)) = (addr.parse::<std::net::Ipv4Addr>(), len.parse::<u32>()) {
            // The default route overlaps everything and says nothing of another lab.
            if len > 0 {
                out.push((u32::from(a), len));
            }
        }
    }
    out
}

fn overlaps(a: u32, alen: u32, b: u32, blen: u32) -> bool {
    let len = alen.min(blen);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    a & mask == b & mask
}

/// The node names of the topology as labwire reads it.
fn node_names(file: &Path, yaml: &str) -> Vec<String> {
    let src = topology::Source::from_text(
        &file.display().to_string(),
        yaml.to_string(),
        file.parent().expect("the topology is in a directory"),
    );
    match topology::load(&src, &topology::Options::default()) {
        Ok(l) => l.lab.nodes.iter().map(|n| n.name.clone()).collect(),
        Err(e) => panic!(
            "LabBuilder: the topology does not load, so its nodes are unknown; \
             list them with .nodes(&[…]):\n{e}"
        ),
    }
}

/// `s` without its first line when blank and without the indentation its lines share.
fn dedent(s: &str) -> String {
    if s.trim().is_empty() {
        return String::new();
    }
    let s = s.strip_prefix('\n').unwrap_or(s);
    let indent = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for l in s.lines() {
        out.push_str(l.get(indent..).unwrap_or("").trim_end());
        out.push('\n');
    }
    out.trim_end().to_string() + "\n"
}

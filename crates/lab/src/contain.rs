//! Containment checks run at preflight, before the host is touched: labwire runs as root, so it
//! must not write through a lab directory that is a symbolic link, read a bind source its topology's
//! owner could not read (or one reached through a link out of the topology's directory), take a
//! network namespace name that someone else (another lab included) holds, or route a management
//! subnet over one of the host's own routes. Each check adds its findings to the preflight's list
//! of problems, so every one is reported at once.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use topology::{Lab, NetworkMode};

use crate::deploy::shell_quote;
use crate::paths;
use crate::state::{self, Recorded};

/// The lab directory and the node directories in it must be real directories (or absent): a
/// link there would send authorized_keys, inventories and node files to its target.
pub(crate) fn check_lab_dir(lab: &Lab, problems: &mut Vec<String>) {
    let dirs = std::iter::once((None, &lab.dir)).chain(
        lab.nodes
            .iter()
            .filter(|n| n.is_workload())
            .map(|n| (Some(&n.name), &n.dir)),
    );
    for (node, dir) in dirs {
        let Ok(meta) = std::fs::symlink_metadata(dir) else {
            continue;
        };
        let what = match node {
            Some(n) => format!("node {n}: its directory"),
            None => "the lab directory".to_string(),
        };
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(dir).unwrap_or_default();
            problems.push(format!(
                "{what} {} is a symbolic link (to {}); labwire never writes through a link there: remove it (`rm {}`)",
                dir.display(),
                target.display(),
                shell_quote(&dir.to_string_lossy())
            ));
        } else if !meta.is_dir() {
            problems.push(format!(
                "{what} {} exists and is not a directory",
                dir.display()
            ));
        }
    }
}

/// Who wrote the topology: the owner of its file (for standard input, the user sudo ran as).
/// `None` for root, whose rights cover every source anyway.
fn topology_owner(topology_file: Option<&Path>) -> Option<u32> {
    let uid = match topology_file {
        Some(f) => std::fs::metadata(f).ok()?.uid(),
        None => std::env::var("SUDO_UID").ok()?.parse().ok()?,
    };
    (uid != 0).then_some(uid)
}

/// The rules for a file a topology names and labwire reads or mounts as root, with what they
/// need computed once.
pub struct SourceRules {
    /// The topology's directory, as written and resolved.
    base: std::path::PathBuf,
    real_base: std::path::PathBuf,
    /// The topology's owner and groups, unless root.
    owner: Option<(u32, Vec<u32>)>,
}

impl SourceRules {
    /// The rules for a topology file (`None`: standard input) whose relative paths start at
    /// `base`.
    pub fn new(topology_file: Option<&Path>, base: &Path) -> SourceRules {
        SourceRules {
            base: base.to_path_buf(),
            real_base: std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf()),
            owner: topology_owner(topology_file).map(|uid| (uid, unix::groups_of(uid))),
        }
    }

    /// Why `src` must not be read: a link inside the topology's directory leading out of it, or
    /// a file the topology's owner cannot read. `None` when it may be (or does not exist: that is
    /// reported elsewhere).
    pub fn refuse(&self, src: &Path) -> Option<String> {
        let real = std::fs::canonicalize(src).ok()?;
        if src.starts_with(&self.base) && !real.starts_with(&self.real_base) {
            return Some(format!(
                "{} is a symbolic link leading out of the topology's directory {} (to {}); name the file by its own path if it is meant",
                src.display(),
                self.base.display(),
                real.display()
            ));
        }
        let (uid, gids) = self.owner.as_ref()?;
        (!can_read(*uid, gids, &real)).then(|| {
            format!(
                "{} cannot be read by uid {uid}, the owner of the topology; labwire reads sources only with the rights of whoever wrote the topology",
                src.display()
            )
        })
    }
}

/// Bind sources (and startup-configs) are read or mounted as root: each must pass
/// [`SourceRules::refuse`]. (`env-files` are checked as the topology is read, see the binary.)
pub(crate) fn check_sources(lab: &Lab, problems: &mut Vec<String>) {
    let base = lab.dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let rules = SourceRules::new(lab.topology_file.as_deref(), &base);
    for n in lab.nodes.iter().filter(|n| n.is_workload()) {
        let sources = n
            .binds
            .iter()
            .map(|b| ("bind source", &b.source))
            .chain(n.startup_config.iter().map(|c| ("startup-config", c)));
        for (what, src) in sources {
            // Files labwire makes in the lab directory (authorized_keys, node directories).
            if src.starts_with(&lab.dir) {
                continue;
            }
            if let Some(why) = rules.refuse(src) {
                problems.push(format!("node {}: {what} {why}", n.name));
            }
        }
    }
}

/// Whether `uid` (in `gids`) may read `path` (a canonical path), and search it if it is a
/// directory, as the kernel decides for that user (ACLs included).
fn can_read(uid: u32, gids: &[u32], path: &Path) -> bool {
    let dir = std::fs::metadata(path).is_ok_and(|m| m.is_dir());
    unix::can_read_as(uid, gids, path, dir)
}

/// Names labwire will register must be free: a network namespace registered by someone else, or
/// a node long name another deployed lab already uses (lab `a` + node `x-n1` and lab `a-x` +
/// node `n1` are both `clab-a-x-n1`), is refused rather than taken over and later removed.
pub(crate) fn check_foreign_names(lab: &Lab, problems: &mut Vec<String>) {
    // This lab's own registrations, read through the destroy plan, and only when a name is taken:
    // a converging deploy that adds a node to a large lab reads no journal here.
    let mut mine: Option<HashSet<String>> = None;
    let mut is_mine = |long: &str| {
        mine.get_or_insert_with(|| {
            crate::destroy::teardown(&Recorded::read(&paths::lab_state_dir(&lab.name)).entries)
                .netns
                .into_iter()
                .map(|(name, _)| name)
                .collect()
        })
        .contains(long)
    };
    // By long name: a 10,000-node lab must not scan every other lab's nodes for each of its own.
    let mut others: HashMap<String, (String, String)> = HashMap::new();
    for other in state::recorded_labs() {
        if other == lab.name {
            continue;
        }
        if let Some(o) = Recorded::read(&paths::lab_state_dir(&other)).lab {
            others.extend(
                o.nodes
                    .into_iter()
                    .filter(|n| n.is_workload())
                    .map(|n| (n.long_name, (other.clone(), n.name))),
            );
        }
    }
    for n in lab.nodes.iter().filter(|n| n.is_workload()) {
        if let Some((other, node)) = others.get(&n.long_name) {
            problems.push(format!(
                "node {}: its name {} is already node {node} of deployed lab {other}; rename one of them",
                n.name, n.long_name
            ));
            continue;
        }
        if matches!(n.network_mode, NetworkMode::Host) {
            continue;
        }
        if wire::netns::registered(&n.long_name) != wire::netns::Registered::Absent
            && !is_mine(&n.long_name)
        {
            problems.push(format!(
                "node {}: a network namespace named {} already exists and is not this lab's; remove it (`ip netns delete {}`) or rename the node",
                n.name,
                n.long_name,
                shell_quote(&n.long_name)
            ));
        }
    }
}

/// The management subnet must not cover a route of the host's main table on another interface:
/// the bridge's connected route would take that network's traffic. (A broader host route that the
/// subnet falls inside, such as a VPN's 10.0.0.0/8, only loses the lab's part of it and is left
/// to the user.)
pub(crate) fn check_mgmt_routes(lab: &Lab, problems: &mut Vec<String>) {
    let subnets: Vec<IpNet> = lab
        .mgmt
        .ipv4_subnet
        .map(IpNet::V4)
        .into_iter()
        .chain(lab.mgmt.ipv6_subnet.map(IpNet::V6))
        .collect();
    for (route, dev) in host_routes() {
        if dev == lab.mgmt.bridge || route.prefix_len() == 0 {
            continue;
        }
        for s in &subnets {
            if s.contains(&route) {
                problems.push(format!(
                    "management subnet {s} overlaps the host's route {route} on {dev}; pick another mgmt ipv4-subnet/ipv6-subnet"
                ));
            }
        }
    }
}

/// The host's main-table routes with their interface, from /proc (IPv4) and the IPv6 table
/// (unicast routes only: local, multicast and the loopback's are not the host's networks).
fn host_routes() -> Vec<(IpNet, String)> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/proc/net/route") {
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                continue;
            }
            let (Ok(dst), Ok(mask)) =
                (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16))
            else {
                continue;
            };
            let addr = std::net::Ipv4Addr::from(u32::from_be(dst));
            if let Ok(net) = Ipv4Net::new(addr, mask.count_ones() as u8) {
                out.push((IpNet::V4(net), f[0].to_string()));
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string("/proc/net/ipv6_route") {
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[9] == "lo" {
                continue;
            }
            let (Ok(dst), Ok(len)) = (u128::from_str_radix(f[0], 16), u8::from_str_radix(f[1], 16))
            else {
                continue;
            };
            let addr = std::net::Ipv6Addr::from(dst);
            if addr.segments()[0] & 0xff00 == 0xff00 || addr.segments()[0] & 0xffc0 == 0xfe80 {
                continue;
            }
            if let Ok(net) = Ipv6Net::new(addr, len) {
                out.push((IpNet::V6(net), f[9].to_string()));
            }
        }
    }
    out
}

/// Whether `path` is an ssh client config labwire wrote: a regular file owned by root that starts
/// with labwire's header line. Anything else by that name is someone else's and is left alone.
pub(crate) fn ssh_config_is_labwires(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    meta.is_file()
        && meta.uid() == 0
        && std::fs::read(path).is_ok_and(|b| {
            b.split(|&c| c == b'\n').next().is_some_and(|l| {
                l.starts_with(b"# SSH client config for the nodes of lab ")
                    && l.ends_with(b", written by labwire")
            })
        })
}

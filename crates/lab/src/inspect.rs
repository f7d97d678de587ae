//! What is deployed: one row per node of each recorded lab, in containerlab's inspect shape.

use std::path::{Path, PathBuf};

use serde::Serialize;
use topology::Lab;

use crate::paths;
use crate::state::{self, Recorded};

/// One node as `inspect` shows it (field names as containerlab's JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The node's short name (not shown: `name` is the long one, as containerlab's).
    #[serde(skip)]
    pub node: String,
    pub lab_name: String,
    #[serde(rename = "labPath")]
    pub lab_path: String,
    #[serde(rename = "absLabPath")]
    pub abs_lab_path: String,
    pub name: String,
    pub container_id: String,
    pub image: String,
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub state: String,
    pub status: String,
    pub ipv4_address: String,
    pub ipv6_address: String,
    pub owner: String,
    pub runtime: String,
    pub pid: i32,
    /// The node's healthcheck as one shell command, if it has one and no engine keeps its health
    /// (for [`check_health`], which then needs no second read of the lab).
    #[serde(skip)]
    pub healthcheck: Option<String>,
    /// Whether the node is younger than its healthcheck's `start-period` (a failing check then
    /// reads `health: starting`).
    #[serde(skip)]
    pub in_start_period: bool,
}

fn rows_of(rec: &Recorded) -> Vec<Row> {
    let Some(lab) = &rec.lab else {
        return Vec::new();
    };
    // By node: a 10,000-node lab must not scan every record for every node.
    let states = rec.node_states();
    let containers = rec.containers();
    let container_ids: std::collections::HashMap<&str, &str> = containers
        .iter()
        .filter_map(|c| Some((c.node.as_str(), c.id.as_deref()?)))
        .collect();
    let backends = runtime::Backends::new();
    let owner = std::fs::read_to_string(rec.dir.join(OWNER_FILE))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "root".into());
    let (lab_path, abs_lab_path) = lab
        .topology_file
        .as_deref()
        .map_or_else(Default::default, topology_paths);
    lab.nodes
        .iter()
        .filter(|n| n.is_workload())
        .map(|n| {
            let (proc, stopped) = states.get(n.name.as_str()).copied().unwrap_or_default();
            let mut status = backends.node(n).status(lab, n, proc);
            if status.state != "running" && stopped {
                status.state = "stopped";
                status.status = "Stopped".into();
                status.pid = 0;
            }
            if let (Some(p), "Up") = (proc, status.status.as_str()) {
                status.status = up_status(p.start);
            }
            if let Some(h) = &status.health {
                status.status = format!("{} ({h})", status.status);
            }
            let engine_id = container_ids
                .get(n.name.as_str())
                .map(|id| id.chars().take(12).collect::<String>());
            let id = engine_id.unwrap_or_else(|| {
                proc.map_or_else(String::new, |p| {
                    format!(
                        "{:012x}",
                        topology::mac::hash64(&[&lab.name, &n.name, &p.start.to_string()])
                            & 0xffff_ffff_ffff
                    )
                })
            });
            Row {
                node: n.name.clone(),
                lab_name: lab.name.clone(),
                lab_path: lab_path.clone(),
                abs_lab_path: abs_lab_path.clone(),
                name: n.long_name.clone(),
                container_id: id,
                image: n.image.clone().unwrap_or_default(),
                kind: n.kind.clone(),
                group: n.group.clone().unwrap_or_default(),
                state: status.state.into(),
                status: status.status,
                ipv4_address: ipv4(lab, n),
                ipv6_address: ipv6(lab, n),
                owner: owner.clone(),
                runtime: n.runtime.to_string(),
                pid: status.pid,
                healthcheck: n
                    .healthcheck
                    .as_ref()
                    .filter(|h| !h.test.is_empty() && status.health.is_none())
                    .filter(|_| runtime::docker::EngineKind::of(n.runtime).is_none())
                    .map(|h| crate::deploy::healthcheck_command(&h.test)),
                in_start_period: n.healthcheck.as_ref().is_some_and(|h| {
                    proc.is_some_and(|p| age(p.start).as_secs() < h.start_period_s)
                }),
            }
        })
        .collect()
}

/// Add the health of each running node of lab `name` that has a healthcheck and no engine
/// keeping its health (native and VM nodes; a container engine's nodes carry the engine's in
/// their status already) to its status, as the Docker engine words it: the healthcheck's test is
/// run once, now, and a pass reads `Up 3 minutes (healthy)`; a failure reads `(health: starting)`
/// while the node is younger than the healthcheck's `start-period`, else `(unhealthy)`.
pub fn check_health(name: &str, rows: &mut [Row]) {
    for r in rows.iter_mut().filter(|r| r.state == "running") {
        let Some(cmd) = &r.healthcheck else {
            continue;
        };
        let healthy = crate::exec::exec(name, &crate::exec::Select::Node(&r.node), cmd)
            .is_ok_and(|out| out.iter().all(|(_, o)| o.code == 0));
        r.status.push_str(if healthy {
            " (healthy)"
        } else if r.in_start_period {
            " (health: starting)"
        } else {
            " (unhealthy)"
        });
    }
}

/// Where `inspect` finds who deployed a lab (see [`record_owner`]).
const OWNER_FILE: &str = "owner";

/// Remember who deployed lab `name` (the user behind `sudo`, as containerlab shows it).
pub fn record_owner(name: &str, owner: &str) -> crate::Result<()> {
    let path = paths::lab_state_dir(name).join(OWNER_FILE);
    std::fs::write(&path, format!("{owner}\n"))
        .map_err(crate::error::io(format!("write {}", path.display())))
}

/// The user a lab deployed now belongs to: `CLAB_OWNER`, else the user who ran `sudo`, else the
/// user running this process.
pub fn caller() -> String {
    for var in ["CLAB_OWNER", "SUDO_USER"] {
        if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
            return v;
        }
    }
    if let Some(name) = unix::user_name() {
        return name;
    }
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

/// The topology file as `inspect` shows it: relative to the working directory when that is
/// shorter, and absolute.
pub fn topology_paths(file: &Path) -> (String, String) {
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let abs_s = abs.display().to_string();
    let rel = std::env::current_dir()
        .ok()
        .and_then(|cwd| relative_path(&cwd, &abs))
        .map(|p| p.display().to_string());
    match rel {
        Some(r) if r.len() < abs_s.len() => (r, abs_s),
        _ => (abs_s.clone(), abs_s),
    }
}

/// `to` relative to directory `from` (both absolute), with `..` where needed.
fn relative_path(from: &Path, to: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return None;
    }
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    Some(out)
}

/// `Up 3 minutes` for a process started at `start` (clock ticks since boot), in the words the
/// Docker engine uses for a container's status.
pub fn up_status(start: u64) -> String {
    format!("Up {}", human_duration(age(start)))
}

/// How long ago a process started `start` clock ticks after boot.
fn age(start: u64) -> std::time::Duration {
    let hz = unix::clock_ticks_per_second() as f64;
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    std::time::Duration::from_secs_f64((uptime - start as f64 / hz).max(0.0))
}

/// A duration as Docker's status words it: `Less than a second`, `5 seconds`, `About a minute`,
/// `3 minutes`, `About an hour`, `5 hours`, `3 days`, `2 weeks`, `4 months`, `2 years`.
pub fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs_f64();
    let whole = d.as_secs();
    let minutes = whole / 60;
    // Hours round to the nearest, as Docker's do.
    let hours = (secs / 3600.0 + 0.5) as u64;
    if secs < 1.0 {
        "Less than a second".into()
    } else if whole == 1 {
        "1 second".into()
    } else if whole < 60 {
        format!("{whole} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", (secs / 3600.0 / 24.0 / 365.0) as u64)
    }
}

/// One interface of a node, as `inspect interfaces` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Interface {
    pub name: String,
    pub alias: String,
    pub mac: String,
    pub ifindex: u32,
    pub mtu: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub state: String,
}

/// A node's interfaces (the node's long name, interfaces sorted by name).
#[derive(Debug, Clone, Serialize)]
pub struct NodeInterfaces {
    pub name: String,
    pub interfaces: Vec<Interface>,
}

/// The interfaces of each running node of lab `name` (only `nodes` when given, short or long
/// names) as they are now, read from the nodes' network namespaces (containerlab's `inspect
/// interfaces`); nodes sorted by long name.
pub fn live_interfaces(name: &str, nodes: &[String]) -> crate::Result<Vec<NodeInterfaces>> {
    let Some((lab, _)) = lab(name) else {
        return Err(crate::Error::NotDeployed {
            lab: name.to_string(),
        });
    };
    let mut out = Vec::new();
    for n in lab.nodes.iter().filter(|n| n.is_workload()) {
        if !nodes.is_empty() && !nodes.iter().any(|x| *x == n.name || *x == n.long_name) {
            continue;
        }
        let path = Path::new(wire::netns::NETNS_RUN_DIR).join(&n.long_name);
        let Ok(ns) = wire::NetNs::open(&path) else {
            continue;
        };
        let links = wire::Handle::in_netns(&ns)
            .and_then(|mut h| h.links())
            .map_err(crate::error::wire(format!("list links of {}", n.long_name)))?;
        let mut interfaces: Vec<Interface> = links
            .iter()
            .map(|l| Interface {
                name: l.name.clone(),
                alias: l.alias.clone().unwrap_or_default(),
                mac: l
                    .mac
                    .as_ref()
                    .map(wire::netlink::format_mac)
                    .unwrap_or_default(),
                ifindex: l.index,
                mtu: l.mtu,
                kind: l.kind.clone().unwrap_or_else(|| "device".into()),
                state: l.oper_state_name().into(),
            })
            .collect();
        interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        out.push(NodeInterfaces {
            name: n.long_name.clone(),
            interfaces,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn ipv4(lab: &Lab, n: &topology::Node) -> String {
    match (n.mgmt_ipv4, lab.mgmt.ipv4_subnet) {
        (Some(a), Some(s)) => format!("{a}/{}", s.prefix_len()),
        _ => "N/A".into(),
    }
}

fn ipv6(lab: &Lab, n: &topology::Node) -> String {
    match (n.mgmt_ipv6, lab.mgmt.ipv6_subnet) {
        (Some(a), Some(s)) => format!("{a}/{}", s.prefix_len()),
        _ => "N/A".into(),
    }
}

/// Rows of one lab, or `None` when it has no recorded state.
pub fn lab(name: &str) -> Option<(Lab, Vec<Row>)> {
    paths::check_lab_name(name).ok()?;
    let rec = Recorded::read(&paths::lab_state_dir(name));
    let lab = rec.lab.clone()?;
    Some((lab, rows_of(&rec)))
}

/// Rows of every recorded lab, by lab name.
pub fn all() -> Vec<(String, Vec<Row>)> {
    state::recorded_labs()
        .into_iter()
        .map(|name| {
            let rec = Recorded::read(&paths::lab_state_dir(&name));
            (name, rows_of(&rec))
        })
        .collect()
}

/// containerlab's JSON: `{ "<lab>": [ rows… ] }`.
pub fn to_json(labs: &[(String, Vec<Row>)]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (name, rows) in labs {
        m.insert(name.clone(), serde_json::to_value(rows).unwrap_or_default());
    }
    serde_json::Value::Object(m)
}

/// A plain-text table.
pub fn table(labs: &[(String, Vec<Row>)]) -> String {
    let header = [
        "Name",
        "Kind",
        "Image",
        "State",
        "IPv4 Address",
        "IPv6 Address",
        "PID",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (_, rs) in labs {
        for r in rs {
            rows.push(vec![
                r.name.clone(),
                r.kind.clone(),
                if r.image.is_empty() {
                    "-".into()
                } else {
                    r.image.clone()
                },
                r.state.clone(),
                r.ipv4_address.clone(),
                r.ipv6_address.clone(),
                r.pid.to_string(),
            ]);
        }
    }
    render_table(&header, &rows)
}

/// One link end of a node as `inspect --interfaces` shows it: the name as the topology wrote it
/// and the Linux interface it is (they differ for vendor port names and names Linux cannot take).
#[derive(Debug, Clone, Serialize)]
pub struct InterfaceRow {
    pub node: String,
    pub interface: String,
    pub linux_interface: String,
    pub mac: String,
    pub peer: String,
}

/// Every link end of every node of `lab`, in link order.
pub fn interfaces(lab: &Lab) -> Vec<InterfaceRow> {
    let mut out = Vec::new();
    for l in &lab.links {
        let far = |me: &topology::Endpoint| -> String {
            match &l.peer {
                topology::Peer::Veth { b } => {
                    let other = if std::ptr::eq(me, b) { &l.a } else { b };
                    format!("{}:{}", other.node, other.written())
                }
                topology::Peer::Host { host_iface, .. }
                | topology::Peer::MgmtNet { host_iface, .. } => {
                    format!(
                        "{}:{}",
                        l.peer.type_name(),
                        l.host_alias.as_deref().unwrap_or(host_iface)
                    )
                }
                p => p.type_name().to_string(),
            }
        };
        for ep in l.endpoints() {
            out.push(InterfaceRow {
                node: ep.node.clone(),
                interface: ep.written().to_string(),
                linux_interface: ep.iface.clone(),
                mac: ep.mac.to_string(),
                peer: far(ep),
            });
        }
    }
    out
}

/// `inspect --interfaces` as a table.
pub fn interfaces_table(labs: &[(String, Vec<InterfaceRow>)]) -> String {
    let rows: Vec<Vec<String>> = labs
        .iter()
        .flat_map(|(lab, rs)| {
            rs.iter().map(move |r| {
                vec![
                    lab.clone(),
                    r.node.clone(),
                    r.interface.clone(),
                    r.linux_interface.clone(),
                    r.mac.clone(),
                    r.peer.clone(),
                ]
            })
        })
        .collect();
    render_table(
        &["Lab", "Node", "Interface", "Linux name", "MAC", "Peer"],
        &rows,
    )
}

fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(width.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |\n", parts.join(" | "))
    };
    let sep = format!(
        "+{}+\n",
        width
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    let mut out = sep.clone();
    out.push_str(&line(
        &header.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    ));
    out.push_str(&sep);
    for r in rows {
        out.push_str(&line(r));
    }
    out.push_str(&sep);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_as_docker_words_them() {
        let cases = [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (180, "3 minutes"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (5 * 3600, "5 hours"),
            (47 * 3600, "47 hours"),
            (3 * 86400, "3 days"),
            (15 * 86400, "2 weeks"),
            (90 * 86400, "3 months"),
            (800 * 86400, "2 years"),
        ];
        for (secs, words) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), words, "{secs} s");
        }
    }

    #[test]
    fn topology_path_is_relative_when_shorter() {
        assert_eq!(
            relative_path(Path::new("/a/b/c"), Path::new("/a/x/t.clab.yml")),
            Some(PathBuf::from("../../x/t.clab.yml"))
        );
        assert_eq!(
            relative_path(Path::new("/a"), Path::new("/a/t.clab.yml")),
            Some(PathBuf::from("t.clab.yml"))
        );
    }
}

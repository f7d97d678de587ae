//! What is deployed: one row per node of each recorded lab, in containerlab's inspect shape.

use serde::Serialize;
use topology::Lab;

use crate::paths;
use crate::state::{self, Recorded};

/// One node as `inspect` shows it (field names as containerlab's JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub lab_name: String,
    #[serde(rename = "labPath")]
    pub lab_path: String,
    #[serde(rename = "absLabPath")]
    pub abs_lab_path: String,
    pub name: String,
    pub container_id: String,
    pub image: String,
    pub kind: String,
    pub state: String,
    pub status: String,
    pub ipv4_address: String,
    pub ipv6_address: String,
    pub owner: String,
    pub runtime: String,
    pub pid: i32,
}

fn rows_of(rec: &Recorded) -> Vec<Row> {
    let Some(lab) = &rec.lab else {
        return Vec::new();
    };
    let procs = rec.procs();
    let containers = rec.containers();
    lab.nodes
        .iter()
        .filter(|n| n.is_workload())
        .map(|n| {
            let proc = procs
                .iter()
                .find(|(name, _)| *name == n.name)
                .map(|(_, p)| *p);
            let vm = n.runtime == topology::Runtime::Vm;
            let vmm = proc.filter(|_| vm).and_then(crate::vms::vmm_pid);
            let vm_down = vm && proc.is_some() && vmm.is_none();
            let (state, status) = match proc {
                Some(p) if p.is_alive() && vm_down => ("exited", "VMM exited".to_string()),
                Some(p) if p.is_alive() => ("running", "Up".to_string()),
                Some(_) => ("exited", "Exited".to_string()),
                None => ("missing", "Not created".to_string()),
            };
            let engine_id = containers
                .iter()
                .find(|c| c.node == n.name)
                .and_then(|c| c.id.as_deref())
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
                lab_name: lab.name.clone(),
                lab_path: lab
                    .topology_file
                    .as_ref()
                    .map_or_else(String::new, |p| p.display().to_string()),
                abs_lab_path: lab
                    .topology_file
                    .as_ref()
                    .map_or_else(String::new, |p| p.display().to_string()),
                name: n.long_name.clone(),
                container_id: id,
                image: n.image.clone().unwrap_or_default(),
                kind: n.kind.clone(),
                state: state.into(),
                status,
                ipv4_address: ipv4(lab, n),
                ipv6_address: ipv6(lab, n),
                owner: "root".into(),
                runtime: n.runtime.to_string(),
                // A VM node shows its VMM.
                pid: if vm {
                    vmm.unwrap_or(0)
                } else {
                    proc.map_or(0, |p| p.pid)
                },
            }
        })
        .collect()
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

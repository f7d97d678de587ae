//! Reaching into deployed nodes: running a command in them (`labwire exec`), selected by name or
//! label, and attaching to a node's console (`labwire console`). Each goes through the node's
//! runtime; this module only finds the nodes and their processes in the recorded state.

use runtime::node::ExecOutput;
use runtime::{Backends, Running};
use topology::{Lab, Node};

use crate::error::{Error, Result};
use crate::paths;
use crate::state::Recorded;

/// Which nodes a command runs in.
pub enum Select<'a> {
    All,
    Node(&'a str),
    Label(&'a str, &'a str),
    /// Nodes named in `nodes` (short or long names; every node when empty) that carry every one
    /// of `labels` (the node's own or the built-in `clab-node-kind`, `containerlab`, …).
    Match {
        nodes: &'a [String],
        labels: &'a [(String, String)],
    },
}

impl Select<'_> {
    fn matches(&self, lab: &topology::Lab, n: &Node) -> bool {
        let has_label = |k: &str, v: &str| {
            n.labels.get(k).map(String::as_str) == Some(v)
                || crate::artifacts::topology_data::builtin_labels(lab, n)
                    .iter()
                    .any(|(bk, bv)| *bk == k && bv == v)
        };
        match self {
            Select::All => true,
            Select::Node(x) => n.name == *x || n.long_name == *x,
            Select::Label(k, v) => has_label(k, v),
            Select::Match { nodes, labels } => {
                (nodes.is_empty() || nodes.iter().any(|x| *x == n.name || *x == n.long_name))
                    && labels.iter().all(|(k, v)| has_label(k, v))
            }
        }
    }
}

/// The recorded lab `name`.
pub(crate) fn deployed(name: &str) -> Result<(Lab, Recorded)> {
    paths::check_lab_name(name)?;
    let rec = Recorded::read(&paths::lab_state_dir(name));
    let lab = rec.lab.clone().ok_or_else(|| Error::NotDeployed {
        lab: name.to_string(),
    })?;
    Ok((lab, rec))
}

/// Node `n` of `lab` as its runtime reaches it, when its process runs.
pub(crate) fn running<'a>(
    lab: &'a Lab,
    rec: &Recorded,
    n: &'a Node,
    init: &'a std::path::Path,
) -> Result<Running<'a>> {
    let proc = rec
        .node_proc(&n.name)
        .filter(|p| p.is_alive())
        .ok_or_else(|| Error::NotRunning {
            lab: lab.name.clone(),
            node: n.name.clone(),
        })?;
    Ok(Running {
        lab,
        node: n,
        proc,
        run_dir: paths::lab_run_dir(&lab.name).join(&n.name),
        init,
    })
}

/// Run `cmd` in each selected running node of lab `name`; results in node order. No node
/// matching is an error.
pub fn exec(name: &str, select: &Select<'_>, cmd: &str) -> Result<Vec<(Node, ExecOutput)>> {
    let out = exec_matching(name, select, cmd)?;
    if out.is_empty() {
        let (lab, _) = deployed(name)?;
        if let Some(e) = in_other_partition(&lab, select) {
            return Err(e);
        }
        return Err(Error::NoMatchingNode {
            lab: name.to_string(),
            nodes: lab
                .nodes
                .iter()
                .filter(|n| n.is_workload())
                .map(|n| n.name.clone())
                .collect(),
        });
    }
    Ok(out)
}

/// A node `select` names that another host of the partitioned lab runs.
fn in_other_partition(lab: &topology::Lab, select: &Select<'_>) -> Option<Error> {
    let part = lab.part_of.as_ref()?;
    let named: Vec<&str> = match select {
        Select::Node(n) => vec![n],
        Select::Match { nodes, .. } => nodes.iter().map(String::as_str).collect(),
        _ => return None,
    };
    named.into_iter().find_map(|want| {
        let n = part
            .lab
            .nodes
            .iter()
            .find(|n| n.name == want || n.long_name == want)?;
        let p = n.partition.clone()?;
        Some(Error::InOtherPartition {
            lab: lab.name.clone(),
            node: n.name.clone(),
            host: part.lab.partitions.get(&p).map(|x| x.address.clone())?,
            partition: p,
            here: part.partition.clone(),
        })
    })
}

/// As [`exec`], but no matching node is an empty result (a filter across several labs).
pub fn exec_matching(
    name: &str,
    select: &Select<'_>,
    cmd: &str,
) -> Result<Vec<(Node, ExecOutput)>> {
    let (lab, rec) = deployed(name)?;
    let nodes: Vec<&Node> = lab
        .nodes
        .iter()
        .filter(|n| n.is_workload())
        .filter(|n| select.matches(&lab, n))
        .collect();
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    let init = runtime::node::init_path()?;
    let backends = Backends::new();
    let mut out = Vec::new();
    for n in nodes {
        let node = running(&lab, &rec, n, &init)?;
        out.push((n.clone(), backends.node(n).exec(&node, cmd)?));
    }
    Ok(out)
}

/// Attach the terminal to the console of node `node` of deployed lab `name`.
pub fn console(name: &str, node: &str) -> Result<()> {
    let (lab, rec) = deployed(name)?;
    let n = lab
        .nodes
        .iter()
        .find(|n| n.name == node || n.long_name == node)
        .ok_or_else(|| Error::NoSuchNode {
            lab: name.to_string(),
            node: node.to_string(),
        })?;
    let init = runtime::node::init_path()?;
    let running = running(&lab, &rec, n, &init)?;
    Ok(Backends::new().node(n).console(&running)?)
}

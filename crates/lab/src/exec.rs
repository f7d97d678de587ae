//! Running a command inside deployed nodes (`labwire exec`), selected by name or label.

use runtime::native::{self, ExecOutput};
use topology::Node;

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

/// Run `cmd` in each selected running node of lab `name`; results in node order. No node
/// matching is an error.
pub fn exec(name: &str, select: &Select<'_>, cmd: &str) -> Result<Vec<(Node, ExecOutput)>> {
    let out = exec_matching(name, select, cmd)?;
    if out.is_empty() {
        let rec = Recorded::read(&paths::lab_state_dir(name));
        let names: Vec<String> = rec
            .lab
            .iter()
            .flat_map(|l| l.nodes.iter())
            .filter(|n| n.is_workload())
            .map(|n| n.name.clone())
            .collect();
        return Err(Error::Invalid(format!(
            "no node of lab {name} matches; its nodes are {}",
            names.join(", ")
        )));
    }
    Ok(out)
}

/// As [`exec`], but no matching node is an empty result (a filter across several labs).
pub fn exec_matching(
    name: &str,
    select: &Select<'_>,
    cmd: &str,
) -> Result<Vec<(Node, ExecOutput)>> {
    paths::check_lab_name(name)?;
    let rec = Recorded::read(&paths::lab_state_dir(name));
    let Some(lab) = rec.lab.clone() else {
        return Err(Error::Invalid(format!("lab {name} is not deployed")));
    };
    let procs = rec.procs();
    let nodes: Vec<&Node> = lab
        .nodes
        .iter()
        .filter(|n| n.is_workload())
        .filter(|n| select.matches(&lab, n))
        .collect();
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    let init = native::init_path()?;
    let mut out = Vec::new();
    for n in nodes {
        let proc = procs
            .iter()
            .find(|(x, _)| *x == n.name)
            .map(|(_, p)| *p)
            .filter(|p| p.is_alive())
            .ok_or_else(|| {
                Error::Invalid(format!("node {} of lab {name} is not running", n.name))
            })?;
        out.push((
            n.clone(),
            crate::vms::exec_in_node(name, n, proc, &init, cmd)?,
        ));
    }
    Ok(out)
}

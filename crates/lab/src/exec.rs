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
}

/// Run `cmd` in each selected running node of lab `name`; results in node order.
pub fn exec(name: &str, select: &Select<'_>, cmd: &str) -> Result<Vec<(Node, ExecOutput)>> {
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
        .filter(|n| match select {
            Select::All => true,
            Select::Node(x) => n.name == *x || n.long_name == *x,
            Select::Label(k, v) => n.labels.get(*k).map(String::as_str) == Some(*v),
        })
        .collect();
    if nodes.is_empty() {
        let names: Vec<&str> = lab
            .nodes
            .iter()
            .filter(|n| n.is_workload())
            .map(|n| n.name.as_str())
            .collect();
        return Err(Error::Invalid(format!(
            "no node of lab {name} matches; its nodes are {}",
            names.join(", ")
        )));
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

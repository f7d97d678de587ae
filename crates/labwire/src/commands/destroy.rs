//! `labwire destroy`: remove a lab (or all) from its recorded state.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

#[derive(Args)]
pub struct DestroyArgs {
    /// Topology file of the lab (only its `name` is used)
    #[arg(short = 't', long = "topo")]
    pub topo: Option<PathBuf>,
    /// Variables of a Go-template topology (as given to deploy)
    #[arg(long = "vars", value_name = "FILE")]
    pub vars: Vec<PathBuf>,
    /// Destroy the lab of this name (works when the topology file changed or is gone)
    #[arg(long, conflicts_with = "topo")]
    pub name: Option<String>,
    /// Destroy every deployed lab
    #[arg(short, long, conflicts_with_all = ["topo", "name"])]
    pub all: bool,
    /// Also remove the lab directory
    #[arg(short, long)]
    pub cleanup: bool,
    /// Print the time of each step
    #[arg(long)]
    pub stats: bool,
    /// Destroy only these nodes (comma-separated) and their links; the rest of the lab runs on
    #[arg(long, value_delimiter = ',', conflicts_with = "all")]
    pub node_filter: Vec<String>,
    /// Let nodes stop on their own first (SIGTERM, a container's stop signal, a VM's ACPI
    /// power-down), killing them after 10 s
    #[arg(long)]
    pub graceful: bool,
    /// Leave the management network (bridge, engine network) in place
    #[arg(long)]
    pub keep_mgmt_net: bool,
}

/// How long `--graceful` lets a node take to stop.
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(10);

impl DestroyArgs {
    pub fn options(&self) -> lab::destroy::DestroyOptions {
        lab::destroy::DestroyOptions {
            cleanup: self.cleanup,
            graceful: self.graceful.then_some(GRACE),
            keep_mgmt_net: self.keep_mgmt_net,
        }
    }
}

/// The lab name from a topology file, even one that no longer validates.
pub fn lab_name_of(topo: super::TopoArg) -> anyhow::Result<String> {
    let src = topo.source()?;
    match topology::load(&src, &topology::Options::default()) {
        Ok(l) => Ok(l.lab.name),
        Err(e) => {
            let v = topology::yaml::parse(&src.text).map_err(|_| anyhow::Error::new(e.clone()))?;
            if let topology::yaml::Kind::Map(m) = &v.kind {
                if let Some((_, name)) = m.iter().find(|(k, _)| k.as_str() == Some("name")) {
                    if let Some(n) = name.as_str() {
                        return Ok(n.to_string());
                    }
                }
            }
            Err(e.into())
        }
    }
}

pub fn run(a: DestroyArgs) -> anyhow::Result<ExitCode> {
    let opts = a.options();
    let names: Vec<String> = if a.all {
        lab::state::recorded_labs()
    } else if let Some(n) = a.name {
        // As inspect: a name that is not deployed is an error (its state directory says so:
        // reading the whole recorded lab here would double a large lab's destroy time).
        if !lab::paths::lab_state_dir(&n).exists() {
            bail!("lab {n} is not deployed");
        }
        vec![n]
    } else {
        vec![lab_name_of(super::TopoArg {
            topo: a.topo,
            runtime: None,
            vars: a.vars,
        })?]
    };
    if !a.node_filter.is_empty() {
        return destroy_nodes(&names[0], &a.node_filter, opts.graceful);
    }
    destroy_labs_with(&names, &opts, a.stats)
}

/// `--node-filter`: destroy these nodes of lab `name` and their links; the rest runs on.
pub fn destroy_nodes(
    name: &str,
    nodes: &[String],
    grace: Option<std::time::Duration>,
) -> anyhow::Result<ExitCode> {
    if lab::converge::running(name).is_none() {
        bail!("lab {name} is not running");
    }
    let n = lab::converge::destroy_nodes(name, nodes, grace.unwrap_or_default())?;
    eprintln!("lab {name}: {n} nodes destroyed ({})", nodes.join(", "));
    Ok(ExitCode::SUCCESS)
}

/// Destroy each lab of `names` as `opts` says, reporting each; an error when any was not fully
/// destroyed.
pub fn destroy_labs_with(
    names: &[String],
    opts: &lab::destroy::DestroyOptions,
    stats: bool,
) -> anyhow::Result<ExitCode> {
    if names.is_empty() {
        eprintln!("no labs are deployed");
        return Ok(ExitCode::SUCCESS);
    }
    let mut failed = false;
    for n in names {
        match lab::destroy::destroy_with(n, opts) {
            Ok(d) => {
                eprintln!(
                    "lab {n} destroyed: {} nodes stopped, {} host links and {} bridges removed",
                    d.nodes, d.links, d.bridges
                );
                if stats {
                    for (what, t) in &d.timings {
                        eprintln!("  {what:<16} {:>8.3} s", t.as_secs_f64());
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {}", lab::error::chain(&e));
                failed = true;
            }
        }
    }
    if failed {
        bail!("some labs were not fully destroyed");
    }
    Ok(ExitCode::SUCCESS)
}

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
    let names: Vec<String> = if a.all {
        lab::state::recorded_labs()
    } else if let Some(n) = a.name {
        // As inspect: a name that is not deployed is an error.
        if lab::inspect::lab(&n).is_none() && !lab::paths::lab_state_dir(&n).exists() {
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
    destroy_labs(&names, a.cleanup, a.stats)
}

/// Destroy each lab of `names`, reporting each; an error when any was not fully destroyed.
pub fn destroy_labs(names: &[String], cleanup: bool, stats: bool) -> anyhow::Result<ExitCode> {
    if names.is_empty() {
        eprintln!("no labs are deployed");
        return Ok(ExitCode::SUCCESS);
    }
    let mut failed = false;
    for n in names {
        match lab::destroy::destroy(n, cleanup) {
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

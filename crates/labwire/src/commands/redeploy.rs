//! `labwire redeploy`: destroy the lab when it is deployed (with `--cleanup`, its directory too),
//! then deploy it again from the topology.

use std::process::ExitCode;

use clap::Args;

use super::TopoArg;

#[derive(Args)]
pub struct RedeployArgs {
    #[command(flatten)]
    pub topo: TopoArg,
    /// Also remove the lab directory before deploying again
    #[arg(short, long)]
    pub cleanup: bool,
    /// Worker threads for starting and configuring nodes (default: the number of CPUs)
    #[arg(long)]
    pub max_workers: Option<usize>,
    /// No progress display
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(a: RedeployArgs) -> anyhow::Result<ExitCode> {
    let lab = a.topo.load()?;
    let opts = lab::deploy::DeployOptions {
        max_workers: a.max_workers.unwrap_or_else(lab::pool::default_workers),
        reconfigure: true,
        quiet: a.quiet,
        node_filter: Vec::new(),
    };
    redeploy_then(
        lab,
        a.cleanup,
        &opts,
        &lab::inspect::caller(),
        super::deploy::print_table,
    )
}

/// Destroy `lab` when it is deployed (`cleanup`: its directory too), then deploy it as
/// [`super::deploy::deploy_then`] does.
pub fn redeploy_then(
    lab: topology::Lab,
    cleanup: bool,
    opts: &lab::deploy::DeployOptions,
    owner: &str,
    report: impl FnOnce(&str) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    if lab::inspect::lab(&lab.name).is_some() || lab::paths::lab_state_dir(&lab.name).exists() {
        let code = super::destroy::destroy_labs(std::slice::from_ref(&lab.name), cleanup, false)?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    super::deploy::deploy_then(lab, opts, owner, false, report)
}

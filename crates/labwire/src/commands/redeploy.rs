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
    /// Let the running nodes stop on their own first (SIGTERM, a container's stop signal, a VM's
    /// ACPI power-down), killing them after 10 s
    #[arg(long)]
    pub graceful: bool,
    /// Leave the management network (bridge, engine network) in place between the two
    #[arg(long)]
    pub keep_mgmt_net: bool,
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
    let destroy = lab::destroy::DestroyOptions {
        cleanup: a.cleanup,
        graceful: a.graceful.then_some(super::destroy::GRACE),
        keep_mgmt_net: a.keep_mgmt_net,
    };
    redeploy_then(
        lab,
        &destroy,
        &opts,
        &lab::inspect::caller(),
        super::deploy::print_table,
    )
}

/// Destroy `lab` when it is deployed as `destroy` says (its directory too, gracefully, keeping
/// the management network), then deploy it as [`super::deploy::deploy_then`] does.
pub fn redeploy_then(
    lab: topology::Lab,
    destroy: &lab::destroy::DestroyOptions,
    opts: &lab::deploy::DeployOptions,
    owner: &str,
    report: impl FnOnce(&str) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    if lab::inspect::lab(&lab.name).is_some() || lab::paths::lab_state_dir(&lab.name).exists() {
        let code =
            super::destroy::destroy_labs_with(std::slice::from_ref(&lab.name), destroy, false)?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    super::deploy::deploy_then(lab, opts, owner, false, report)
}

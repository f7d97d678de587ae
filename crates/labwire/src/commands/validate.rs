//! `labwire validate`: load a topology and print a one-screen summary, or every error.

use std::process::ExitCode;

use clap::Args;

use super::TopoArg;

#[derive(Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub topo: TopoArg,
}

pub fn run(a: ValidateArgs) -> anyhow::Result<ExitCode> {
    let lab = a.topo.load()?;
    print!("{}", topology::summary(&lab));
    Ok(ExitCode::SUCCESS)
}

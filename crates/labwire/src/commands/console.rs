//! `labwire console`: attach the terminal to a VM node's serial console.

use std::process::ExitCode;

use clap::Args;

#[derive(Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    pub lab: super::LabRef,
    /// The VM node (short or long name)
    pub node: String,
}

pub fn run(a: ConsoleArgs) -> anyhow::Result<ExitCode> {
    let name = a.lab.resolve()?;
    lab::exec::console(&name, &a.node)?;
    Ok(ExitCode::SUCCESS)
}

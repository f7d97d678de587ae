//! `labwire stop|start|restart`: stop, start or restart nodes of a running lab, keeping their links,
//! addresses and MACs (the rest of the lab keeps running).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use lab::lifecycle::Action;

use super::LabRef;

#[derive(Args)]
pub struct LifecycleArgs {
    #[command(flatten)]
    pub lab: LabRef,
    /// A node to act on (repeatable)
    #[arg(short = 'n', long = "node", value_name = "NODE")]
    pub node: Vec<String>,
    /// Nodes to act on, comma-separated (as `--node` repeated)
    #[arg(long, value_delimiter = ',', value_name = "NODES")]
    pub node_filter: Vec<String>,
    /// Stop gracefully: SIGTERM (a VM's ACPI power-down), up to --timeout, then kill; without it
    /// a node is killed at once, as a power cut
    #[arg(long)]
    pub graceful: bool,
    /// Seconds a graceful stop may take before the node is killed
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub timeout: u64,
}

impl LifecycleArgs {
    /// How long a stopping node may take on its own.
    pub fn grace(&self) -> Duration {
        if self.graceful {
            Duration::from_secs(self.timeout)
        } else {
            Duration::ZERO
        }
    }
}

pub fn run(a: LifecycleArgs, action: Action) -> anyhow::Result<ExitCode> {
    let mut nodes = a.node.clone();
    nodes.extend(a.node_filter.iter().cloned());
    if nodes.is_empty() {
        bail!(
            "name the nodes to {}: --node NODE (repeatable) or --node-filter a,b",
            action.verb()
        );
    }
    let name = a.lab.resolve()?;
    let grace = a.grace();
    // A node's new init must live under a reaper of its own, as a deploy's nodes do.
    let worker = match lab::supervise::split(&name)? {
        lab::supervise::Split::Waited(code) => return Ok(ExitCode::from(code)),
        lab::supervise::Split::Worker(w) => w,
    };
    let result = lab::lifecycle::run(&name, &nodes, action, grace);
    let code = match &result {
        Ok(done) => {
            for o in done {
                eprintln!(
                    "node {}: {} in {:.2}s",
                    o.node,
                    o.what,
                    o.elapsed.as_secs_f64()
                );
            }
            0
        }
        Err(e) => {
            eprintln!("error: {}", lab::error::chain(e));
            1
        }
    };
    worker.finish(code, code == 0 && action != Action::Stop);
    std::process::exit(i32::from(code));
}

//! `labwire deploy`: validate, then deploy the lab and print what runs.

use std::process::ExitCode;

use clap::Args;
use lab::deploy::{self, DeployOptions};

use super::TopoArg;

#[derive(Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub topo: TopoArg,
    /// Worker threads for starting and configuring nodes (default: the number of CPUs)
    #[arg(long)]
    pub max_workers: Option<usize>,
    /// Destroy the lab first if it is deployed
    #[arg(long)]
    pub reconfigure: bool,
    /// No progress display
    #[arg(short, long)]
    pub quiet: bool,
    /// Print labwire's own peak memory use after the deploy
    #[arg(long)]
    pub stats: bool,
    /// Print the nodes as JSON instead of a table
    #[arg(long, value_parser = ["table", "json"], default_value = "table")]
    pub format: String,
}

pub fn run(a: DeployArgs) -> anyhow::Result<ExitCode> {
    let lab = a.topo.load()?;
    // Fork the lab's reaper and a worker before any thread exists (see lab::supervise).
    let worker = match lab::supervise::split(&lab.name)? {
        lab::supervise::Split::Waited(code) => return Ok(ExitCode::from(code)),
        lab::supervise::Split::Worker(w) => w,
    };
    let result = deploy_in_worker(a, lab);
    let code = match &result {
        Ok(()) => 0,
        Err(e) => {
            crate::output::print_error(e);
            1
        }
    };
    worker.finish(code, result.is_ok());
    std::process::exit(i32::from(code));
}

fn deploy_in_worker(a: DeployArgs, lab: topology::Lab) -> anyhow::Result<()> {
    let opts = DeployOptions {
        max_workers: a.max_workers.unwrap_or_else(lab::pool::default_workers),
        reconfigure: a.reconfigure,
        quiet: a.quiet,
    };
    let done = deploy::deploy(lab, &opts)?;
    for e in &done.execs {
        let status = if e.output.code == 0 {
            String::new()
        } else {
            format!(" (exit {})", e.output.code)
        };
        eprintln!("exec on {}: {}{status}", e.node, e.command);
        for line in e.output.stdout.lines().chain(e.output.stderr.lines()) {
            eprintln!("  {line}");
        }
    }
    let failed = done.execs.iter().filter(|e| e.output.code != 0).count();
    if failed > 0 {
        eprintln!("warning: {failed} exec command(s) failed (see above)");
    }
    eprintln!(
        "lab {} deployed: {} nodes, {} links in {:.2}s",
        done.lab.name,
        done.lab.nodes.iter().filter(|n| n.is_workload()).count(),
        done.lab.links.len(),
        done.elapsed.as_secs_f64()
    );
    if a.stats {
        eprintln!("peak RSS {:.1} MB", unix::peak_rss_kib() as f64 / 1024.0);
        for (what, d) in &done.timings {
            eprintln!("  {what:<14} {:>8.3} s", d.as_secs_f64());
        }
    }
    let rows = lab::inspect::lab(&done.lab.name)
        .map(|(_, r)| vec![(done.lab.name.clone(), r)])
        .unwrap_or_default();
    if a.format == "json" {
        println!(
            "{}",
            serde_json::to_string_pretty(&lab::inspect::to_json(&rows))?
        );
    } else {
        print!("{}", lab::inspect::table(&rows));
    }
    use std::io::Write as _;
    std::io::stdout().flush()?;
    Ok(())
}

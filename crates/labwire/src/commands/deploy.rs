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
    /// Deploy only these nodes (comma-separated) and the links between them; on a running lab,
    /// change only these nodes and their links
    #[arg(long, value_delimiter = ',')]
    pub node_filter: Vec<String>,
    /// Deploy only this partition's nodes (a lab split across hosts with `partitions:`); its
    /// links to other partitions become VXLAN tunnels to their hosts
    #[arg(long)]
    pub partition: Option<String>,
    /// Print what the deploy would make, change or remove, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(a: DeployArgs) -> anyhow::Result<ExitCode> {
    let mut lab = a.topo.load()?;
    if let Some(p) = &a.partition {
        lab = lab::partition::view(&lab, p, lab::partition::RESOLVE_WAIT)
            .map_err(anyhow::Error::msg)?;
    }
    let node_filter = if filters_running_lab(&lab, &a.node_filter, a.reconfigure)? {
        a.node_filter.clone()
    } else {
        super::filter_nodes(&mut lab, &a.node_filter)?;
        Vec::new()
    };
    if a.dry_run {
        print!(
            "{}",
            lab::converge::dry_run(lab, &node_filter, a.reconfigure)?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let opts = DeployOptions {
        max_workers: a.max_workers.unwrap_or_else(lab::pool::default_workers),
        reconfigure: a.reconfigure,
        quiet: a.quiet,
        node_filter,
    };
    let (stats, format) = (a.stats, a.format);
    deploy_then(lab, &opts, &lab::inspect::caller(), stats, |name| {
        if format == "json" {
            println!(
                "{}",
                serde_json::to_string_pretty(&lab::inspect::to_json(&lab_rows(name)))?
            );
            Ok(())
        } else {
            print_table(name)
        }
    })
}

/// Whether `--node-filter` applies to a lab that runs (the deploy then changes only those nodes
/// and their links, and the topology is not filtered); the filter is checked either way.
pub fn filters_running_lab(
    lab: &topology::Lab,
    filter: &[String],
    reconfigure: bool,
) -> anyhow::Result<bool> {
    if filter.is_empty() || reconfigure || lab::converge::running(&lab.name).is_none() {
        return Ok(false);
    }
    super::filter_nodes(&mut lab.clone(), filter)?;
    Ok(true)
}

/// The deployed lab `name` as labwire's table.
pub fn print_table(name: &str) -> anyhow::Result<()> {
    print!("{}", lab::inspect::table(&lab_rows(name)));
    Ok(())
}

/// The rows of deployed lab `name` (none when it is not deployed), keyed by lab.
pub fn lab_rows(name: &str) -> Vec<(String, Vec<lab::inspect::Row>)> {
    lab::inspect::lab(name)
        .map(|(_, r)| vec![(name.to_string(), r)])
        .unwrap_or_default()
}

/// Deploy `lab` in a worker under the lab's reaper, record `owner`, print what the deploy did on
/// standard error, then `report` what runs (given the lab's name) and exit with the deploy's code.
pub fn deploy_then(
    lab: topology::Lab,
    opts: &DeployOptions,
    owner: &str,
    stats: bool,
    report: impl FnOnce(&str) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    // Fork the lab's reaper and a worker before any thread exists (see lab::supervise).
    let worker = match lab::supervise::split(&lab.name)? {
        lab::supervise::Split::Waited(code) => return Ok(ExitCode::from(code)),
        lab::supervise::Split::Worker(w) => w,
    };
    let deployed = deploy_in_worker(lab, opts, owner, stats);
    // A report that fails (a closed pipe) does not undo the deploy.
    let ok = deployed.is_ok();
    let result = deployed.and_then(|name| {
        report(&name)?;
        use std::io::Write as _;
        std::io::stdout().flush()?;
        Ok(())
    });
    let code = match &result {
        Ok(()) => 0,
        Err(e) => {
            crate::output::print_error(e);
            1
        }
    };
    worker.finish(code, ok);
    std::process::exit(i32::from(code));
}

fn deploy_in_worker(
    lab: topology::Lab,
    opts: &DeployOptions,
    owner: &str,
    stats: bool,
) -> anyhow::Result<String> {
    let done = deploy::deploy(lab, opts)?;
    lab::inspect::record_owner(&done.lab.name, owner)?;
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
    if stats {
        eprintln!("peak RSS {:.1} MB", unix::peak_rss_kib() as f64 / 1024.0);
        for (what, d) in &done.timings {
            eprintln!("  {what:<14} {:>8.3} s", d.as_secs_f64());
        }
    }
    Ok(done.lab.name.clone())
}

//! The containerlab personality: invoked as `containerlab` or `clab` (a symlink to this binary),
//! labwire accepts containerlab's command line — its commands, aliases, flags, defaults (the
//! docker runtime, or `CLAB_RUNTIME`), exit codes and output formats — so tools that drive
//! containerlab (netlab, editors' lab explorers) drive labwire unchanged.
//!
//! It owns only the translation: every command calls the same `lab` functions as labwire's own
//! commands. A flag labwire cannot honour yet draws a warning when ignoring it changes nothing a
//! user relies on, and an error (before anything is touched) when it would.

pub(crate) mod format;
mod table;
mod tools;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand};

use crate::commands::{self, TopoArg};

/// Whether the binary was invoked under one of containerlab's names.
pub fn invoked_as_containerlab(argv0: &OsString) -> bool {
    let name = Path::new(argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    matches!(name, "containerlab" | "clab")
}

#[derive(Parser)]
#[command(
    name = "containerlab",
    about = "deploy container based lab environments with a user-defined interconnections (labwire)",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Cmd,
}

/// containerlab's global flags.
#[derive(Args)]
struct Global {
    /// enable debug mode
    #[arg(short = 'd', long, action = ArgAction::Count, global = true)]
    debug: u8,
    /// path to the topology definition file, a directory containing one, 'stdin', or a URL
    #[arg(short = 't', long = "topo", global = true)]
    topo: Option<PathBuf>,
    /// path to a topology template variables file (can be specified multiple times)
    #[arg(long, global = true)]
    vars: Vec<PathBuf>,
    /// lab/topology name
    #[arg(long, global = true)]
    name: Option<String>,
    /// timeout for external API requests (e.g. container runtimes), e.g: 30s, 1m, 2m30s
    #[arg(long, global = true, value_parser = parse_duration)]
    timeout: Option<std::time::Duration>,
    /// container runtime
    #[arg(
        short = 'r',
        long,
        global = true,
        env = "CLAB_RUNTIME",
        default_value = "docker"
    )]
    runtime: String,
    /// logging level; one of [trace, debug, info, warning, error, fatal]
    #[arg(long, global = true, default_value = "info",
          value_parser = ["trace", "debug", "info", "warn", "warning", "error", "fatal"])]
    log_level: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// deploy a lab
    #[command(visible_aliases = ["dep", "apply"])]
    Deploy(DeployArgs),
    /// destroy a lab
    #[command(visible_alias = "des")]
    Destroy(DestroyArgs),
    /// destroy and redeploy a lab
    #[command(visible_alias = "rdep")]
    Redeploy(RedeployArgs),
    /// inspect lab details
    #[command(visible_aliases = ["ins", "i"])]
    Inspect(InspectArgs),
    /// execute a command in one or multiple containers
    Exec(ExecArgs),
    /// save containers configuration
    Save(SaveArgs),
    /// generate a topology graph
    Graph(GraphArgs),
    /// generate a Clos topology file, based on provided flags
    #[command(visible_alias = "gen")]
    Generate(GenerateArgs),
    /// verify topology file syntax
    #[command(visible_alias = "val")]
    Validate,
    /// Show containerlab version or upgrade
    Version(VersionArgs),
    /// generate completion script
    Completion {
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
    /// various tools your lab might need
    Tools(tools::ToolsArgs),
    /// start nodes of a lab (not supported by labwire yet)
    Start(Unsupported),
    /// stop nodes of a lab (not supported by labwire yet)
    Stop(Unsupported),
    /// restart nodes of a lab (not supported by labwire yet)
    Restart(Unsupported),
    /// stream lab events (not supported by labwire yet)
    Events(Unsupported),
}

/// A command labwire does not offer yet: any flags are taken, and the command is refused.
#[derive(Args)]
pub struct Unsupported {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

#[derive(Args)]
struct MgmtFlags {
    /// management network name
    #[arg(long)]
    network: Option<String>,
    /// management network IPv4 subnet range
    #[arg(short = '4', long = "ipv4-subnet")]
    ipv4_subnet: Option<String>,
    /// management network IPv6 subnet range
    #[arg(short = '6', long = "ipv6-subnet")]
    ipv6_subnet: Option<String>,
}

/// What deploy and redeploy share.
#[derive(Args)]
struct DeployFlags {
    /// generate topology graph
    #[arg(short = 'g', long)]
    graph: bool,
    #[command(flatten)]
    mgmt: MgmtFlags,
    /// output format. One of [table, json]
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
    /// skip post deploy action
    #[arg(long)]
    skip_post_deploy: bool,
    /// template file for topology data export
    #[arg(long)]
    export_template: Option<PathBuf>,
    /// skip the lab directory extended ACLs provisioning
    #[arg(long)]
    skip_labdir_acl: bool,
}

/// What destroy and redeploy share.
#[derive(Args)]
struct DestroyFlags {
    /// delete lab directory
    #[arg(short = 'c', long)]
    cleanup: bool,
    /// attempt to stop containers before removing
    #[arg(long)]
    graceful: bool,
    /// destroy all containerlab labs
    #[arg(short = 'a', long)]
    all: bool,
    /// limit the maximum number of workers
    #[arg(long)]
    max_workers: Option<usize>,
    /// do not remove the management network
    #[arg(long)]
    keep_mgmt_net: bool,
}

#[derive(Args)]
struct DeployArgs {
    #[command(flatten)]
    common: DeployFlags,
    /// regenerate configuration artifacts and overwrite previous ones if any
    #[arg(short = 'c', long)]
    reconfigure: bool,
    /// show the planned changes without applying them
    #[arg(long)]
    dry_run: bool,
    /// limit the maximum number of workers creating nodes and virtual wires
    #[arg(long)]
    max_workers: Option<usize>,
    /// comma separated list of nodes to include
    #[arg(long, value_delimiter = ',')]
    node_filter: Vec<String>,
    /// lab owner name
    #[arg(long)]
    owner: Option<String>,
    /// restore all nodes that have snapshots in this directory
    #[arg(long, num_args = 0..=1, default_missing_value = "./snapshots")]
    restore_all: Option<PathBuf>,
    /// write the rendered topology YAML to the given file path
    #[arg(long)]
    export_rendered: Option<PathBuf>,
    /// restore specific node from snapshot file (node=path/to/snapshot.tar)
    #[arg(long)]
    restore: Vec<String>,
}

#[derive(Args)]
struct DestroyArgs {
    #[command(flatten)]
    common: DestroyFlags,
    /// auto-approve deletion when used with --all
    #[arg(short = 'y', long)]
    yes: bool,
    /// comma separated list of nodes to include
    #[arg(long, value_delimiter = ',')]
    node_filter: Vec<String>,
}

#[derive(Args)]
struct RedeployArgs {
    #[command(flatten)]
    teardown: DestroyFlags,
    #[command(flatten)]
    common: DeployFlags,
}

#[derive(Args)]
struct InspectArgs {
    #[command(subcommand)]
    sub: Option<InspectSub>,
    /// print all details of lab containers (JSON format, grouped by lab)
    #[arg(long)]
    details: bool,
    /// output format. One of [table, json, csv]
    #[arg(short = 'f', long, default_value = "table")]
    format: String,
    /// show all deployed containerlab labs
    #[arg(short = 'a', long)]
    all: bool,
    /// also more details about a lab and its nodes
    #[arg(short = 'w', long)]
    wide: bool,
}

#[derive(Subcommand)]
enum InspectSub {
    /// inspect interfaces of one or multiple nodes in a lab
    #[command(visible_aliases = ["int", "intf"])]
    Interfaces {
        /// output format. One of [table, json]
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        /// node to inspect
        #[arg(short = 'n', long)]
        node: Option<String>,
    },
}

#[derive(Args)]
struct ExecArgs {
    /// command to execute
    #[arg(long)]
    cmd: Vec<String>,
    /// labels to filter container subset
    #[arg(long, value_delimiter = ',')]
    label: Vec<String>,
    /// output format. One of [json, plain]
    #[arg(short = 'f', long, default_value = "plain")]
    format: String,
}

#[derive(Args)]
struct SaveArgs {
    /// comma separated list of nodes to include
    #[arg(long, value_delimiter = ',')]
    node_filter: Vec<String>,
    /// copy the saved running configs to this directory
    #[arg(long)]
    copy: Option<PathBuf>,
}

#[derive(Args)]
struct GraphArgs {
    /// HTTP server address serving the topology view
    #[arg(short = 's', long, default_value = "0.0.0.0:50080")]
    srv: String,
    /// use only information from topo file when building graph
    #[arg(short = 'o', long)]
    offline: bool,
    /// generate dot file
    #[arg(long)]
    dot: bool,
    /// print mermaid flowchart to stdout
    #[arg(long)]
    mermaid: bool,
    /// specify direction of mermaid diagram
    #[arg(long, default_value = "TD")]
    mermaid_direction: String,
    /// additional flags for the drawio tool
    #[arg(long, value_delimiter = ',')]
    drawio_args: Vec<String>,
    /// generate drawio diagram file
    #[arg(long)]
    drawio: bool,
    /// version of the drawio tool container
    #[arg(long, default_value = "latest")]
    drawio_version: String,
    /// Go html template used to generate the graph
    #[arg(long)]
    template: Option<PathBuf>,
    /// Serve static files from the specified directory
    #[arg(long)]
    static_dir: Option<PathBuf>,
    /// comma separated list of nodes to include
    #[arg(long, value_delimiter = ',')]
    node_filter: Vec<String>,
}

#[derive(Args)]
struct GenerateArgs {
    #[command(flatten)]
    mgmt: MgmtFlags,
    #[command(flatten)]
    stages: commands::generate::StageArgs,
    /// file path to save generated topology
    #[arg(long)]
    file: Option<PathBuf>,
    /// deploy a fabric based on the generated topology file
    #[arg(long)]
    deploy: bool,
    /// limit the maximum number of workers creating nodes and virtual wires
    #[arg(long)]
    max_workers: Option<usize>,
    /// write the rendered topology YAML to the given file path
    #[arg(long)]
    export_rendered: Option<PathBuf>,
    /// lab owner name
    #[arg(long)]
    owner: Option<String>,
}

#[derive(Args)]
struct VersionArgs {
    #[command(subcommand)]
    sub: Option<VersionSub>,
    /// Print just the version number
    #[arg(short = 's', long)]
    short: bool,
    /// Print version info as json
    #[arg(short = 'j', long)]
    json: bool,
}

#[derive(Subcommand)]
enum VersionSub {
    /// Check if a new version of containerlab is available
    Check,
    /// upgrade containerlab to latest available version
    #[command(visible_alias = "update")]
    Upgrade,
}

/// Go's duration syntax as containerlab's `--timeout` takes it: `30s`, `1m`, `2m30s`, `1h`.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration `{s}`; e.g. 30s, 1m, 2m30s, 1h, 500ms");
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

fn warn(msg: impl std::fmt::Display) {
    eprintln!("warning: {msg}");
}

/// Run the personality with these arguments; errors print once and exit 1, as containerlab's do.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    // containerlab's level names onto the log's; its default (info) leaves labwire's own default.
    let level = match cli.global.log_level.as_str() {
        "info" => None,
        "warning" => Some("warn"),
        "fatal" => Some("error"),
        other => Some(other),
    };
    crate::logging::init(cli.global.debug > 0, level);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            crate::output::print_error(&e);
            ExitCode::from(1)
        }
    }
}

impl Global {
    /// The topology argument as labwire's commands take it (`-t DIR` is the one topology file
    /// in DIR; `stdin` is standard input).
    fn topo_arg(&self) -> anyhow::Result<TopoArg> {
        let topo = match &self.topo {
            Some(p) if p.as_os_str() == "stdin" => Some(PathBuf::from("-")),
            Some(p) if p.to_str().is_some_and(|s| s.contains("://")) => {
                bail!(
                    "topology {} is a URL; labwire reads topology files from disk (download it first)",
                    p.display()
                )
            }
            Some(p) if p.is_dir() => Some(topology::find_topology(p).map_err(anyhow::Error::msg)?),
            other => other.clone(),
        };
        Ok(TopoArg {
            topo,
            runtime: Some(self.runtime.clone()),
            vars: self.vars.clone(),
        })
    }

    /// Flags that change nothing labwire does: say so once.
    fn note_ignored(&self) {
        if self.timeout.is_some() {
            warn("--timeout is ignored: labwire's engine requests have their own bounds");
        }
    }

    /// Load the topology for a deploy, checking `--name` against it.
    fn load(&self) -> anyhow::Result<topology::Lab> {
        let lab = self.topo_arg()?.load()?;
        if let Some(n) = &self.name {
            if *n != lab.name {
                bail!(
                    "--name {n} differs from the topology's name {}; labwire cannot rename a lab at deploy (edit `name:`)",
                    lab.name
                );
            }
        }
        Ok(lab)
    }

    /// The lab a command is about: `--name`, else the topology's `name`.
    fn lab_name(&self) -> anyhow::Result<String> {
        if let Some(n) = &self.name {
            return Ok(n.clone());
        }
        commands::destroy::lab_name_of(self.topo_arg()?)
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = &cli.global;
    g.note_ignored();
    match cli.command {
        Cmd::Deploy(a) => deploy(g, a),
        Cmd::Destroy(a) => destroy(g, a),
        Cmd::Redeploy(a) => redeploy(g, a),
        Cmd::Inspect(a) => inspect(g, a),
        Cmd::Exec(a) => exec(g, a),
        Cmd::Save(a) => save(g, a),
        Cmd::Graph(a) => graph(g, a),
        Cmd::Generate(a) => generate(g, a),
        Cmd::Validate => {
            let lab = g.topo_arg()?.load()?;
            print!("{}", topology::summary(&lab));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Version(a) => {
            match a.sub {
                None => {
                    print!("{}", format::version(a.short, a.json));
                    Ok(ExitCode::SUCCESS)
                }
                Some(VersionSub::Check) => {
                    println!(
                    "labwire {} follows containerlab {}'s command line; it does not check for releases",
                    env!("CARGO_PKG_VERSION"),
                    format::CLAB_VERSION
                );
                    Ok(ExitCode::SUCCESS)
                }
                Some(VersionSub::Upgrade) => {
                    bail!("this containerlab is labwire: upgrade labwire itself (cargo build --release)")
                }
            }
        }
        Cmd::Completion { shell } => {
            let shell: clap_complete::Shell = shell.parse().map_err(anyhow::Error::msg)?;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "containerlab", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Tools(a) => tools::run(g, a),
        Cmd::Start(_) | Cmd::Stop(_) | Cmd::Restart(_) | Cmd::Events(_) => bail!(
            "this command is not supported by labwire yet; use destroy and deploy (or redeploy)"
        ),
    }
}

impl DeployFlags {
    /// Refuse what labwire cannot do, before anything is made; warn about what changes nothing.
    fn check(&self) -> anyhow::Result<()> {
        let m = &self.mgmt;
        if m.network.is_some() || m.ipv4_subnet.is_some() || m.ipv6_subnet.is_some() {
            bail!("--network, --ipv4-subnet and --ipv6-subnet are not supported by labwire yet; set them under `mgmt:` in the topology");
        }
        if self.export_template.is_some() {
            bail!("--export-template is not supported by labwire: topology-data.json is written in containerlab's own shape");
        }
        if self.graph {
            warn("--graph is ignored: use `containerlab graph --dot` or `--mermaid`");
        }
        // Neither has an effect here: labwire runs no post-deploy actions and sets no ACLs.
        let _ = (self.skip_post_deploy, self.skip_labdir_acl);
        Ok(())
    }
}

impl DestroyFlags {
    /// Refuse what labwire cannot do; warn about what changes nothing.
    fn check(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

fn deploy(g: &Global, a: DeployArgs) -> anyhow::Result<ExitCode> {
    a.common.check()?;
    if a.dry_run {
        if a.reconfigure {
            bail!("--dry-run cannot be combined with --reconfigure: reconfigure always destroys and redeploys the full lab");
        }
        let mut lab = g.load()?;
        commands::filter_nodes(&mut lab, &a.node_filter)?;
        print!("{}", topology::summary(&lab));
        return Ok(ExitCode::SUCCESS);
    }
    if a.restore_all.is_some() || !a.restore.is_empty() {
        bail!("--restore and --restore-all are not supported by labwire yet (no node snapshots)");
    }
    if let Some(p) = &a.export_rendered {
        bail!(
            "--export-rendered {} is not supported by labwire yet",
            p.display()
        );
    }
    let mut lab = g.load()?;
    let node_filter = if commands::deploy::filters_running_lab(&lab, &a.node_filter, a.reconfigure)?
    {
        a.node_filter.clone()
    } else {
        commands::filter_nodes(&mut lab, &a.node_filter)?;
        Vec::new()
    };
    let opts = lab::deploy::DeployOptions {
        max_workers: a.max_workers.unwrap_or_else(lab::pool::default_workers),
        reconfigure: a.reconfigure,
        quiet: false,
        node_filter,
    };
    let owner = a.owner.unwrap_or_else(lab::inspect::caller);
    let format = a.common.format;
    commands::deploy::deploy_then(lab, &opts, &owner, false, |name| print_lab(&format, name))
}

/// Print inspect rows in `format` (table, json, csv).
fn print_rows(format: &str, rows: &[format::Details], all: bool, wide: bool) -> anyhow::Result<()> {
    match format {
        "json" => print!("{}", format::inspect_json(rows)),
        "csv" => print!("{}", format::inspect_csv(rows)),
        _ if rows.is_empty() => eprintln!("INFO no containers found"),
        _ => print!(
            "{}",
            format::inspect_table(rows, all, wide, table::Style::from_env())
        ),
    }
    Ok(())
}

fn destroy(g: &Global, a: DestroyArgs) -> anyhow::Result<ExitCode> {
    a.common.check()?;
    if a.common.max_workers.is_some() {
        warn("--max-workers is ignored by destroy");
    }
    let names = if a.common.all {
        lab::state::recorded_labs()
    } else {
        let name = g.lab_name()?;
        if lab::inspect::lab(&name).is_none() && !lab::paths::lab_state_dir(&name).exists() {
            eprintln!("INFO no containers found for lab {name}");
            return Ok(ExitCode::SUCCESS);
        }
        vec![name]
    };
    // labwire asks no confirmation for --all.
    let _ = a.yes;
    let opts = lab::destroy::DestroyOptions {
        cleanup: a.common.cleanup,
        graceful: a.common.graceful.then_some(commands::destroy::GRACE),
        keep_mgmt_net: a.common.keep_mgmt_net,
    };
    if !a.node_filter.is_empty() {
        if a.common.all {
            bail!("--node-filter cannot be combined with --all");
        }
        return commands::destroy::destroy_nodes(&names[0], &a.node_filter, opts.graceful);
    }
    commands::destroy::destroy_labs_with(&names, &opts, false)
}

fn redeploy(g: &Global, a: RedeployArgs) -> anyhow::Result<ExitCode> {
    a.common.check()?;
    a.teardown.check()?;
    if a.teardown.all {
        bail!("redeploy --all is not supported: redeploy one lab with -t");
    }
    let lab = g.load()?;
    let opts = lab::deploy::DeployOptions {
        max_workers: a
            .teardown
            .max_workers
            .unwrap_or_else(lab::pool::default_workers),
        reconfigure: true,
        quiet: false,
        node_filter: Vec::new(),
    };
    let format = a.common.format;
    let destroy = lab::destroy::DestroyOptions {
        cleanup: a.teardown.cleanup,
        graceful: a.teardown.graceful.then_some(commands::destroy::GRACE),
        keep_mgmt_net: a.teardown.keep_mgmt_net,
    };
    commands::redeploy::redeploy_then(lab, &destroy, &opts, &lab::inspect::caller(), |name| {
        print_lab(&format, name)
    })
}

/// The deployed lab `name` in `format`, as containerlab prints it after a deploy.
fn print_lab(format: &str, name: &str) -> anyhow::Result<()> {
    let rows = commands::deploy::lab_rows(name);
    print_rows(format, &format::sorted(&rows), false, false)
}

fn inspect(g: &Global, a: InspectArgs) -> anyhow::Result<ExitCode> {
    if let Some(InspectSub::Interfaces { format, node }) = a.sub {
        if !matches!(format.as_str(), "table" | "json") {
            bail!("output format {format} is not supported, use 'table' or 'json'");
        }
        let name = g.lab_name()?;
        let nodes: Vec<String> = node.into_iter().collect();
        let ifs = match lab::inspect::lab(&name) {
            Some(_) => lab::inspect::live_interfaces(&name, &nodes)?,
            None => Vec::new(),
        };
        if ifs.is_empty() {
            eprintln!("INFO no containers found");
        } else if format == "json" {
            print!("{}", format::interfaces_json(&ifs));
        } else {
            print!(
                "{}",
                format::interfaces_table(&ifs, table::Style::from_env())
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let format = if a.details {
        "json".to_string()
    } else {
        a.format
    };
    if !matches!(format.as_str(), "table" | "json" | "csv") {
        bail!("output format {format:?} is not supported when --details is not used, use 'table', 'json' or 'csv'");
    }
    let mut labs = if a.all {
        lab::inspect::all()
    } else {
        if g.name.is_none() && g.topo.is_none() && topology::find_topology(Path::new(".")).is_err()
        {
            bail!("provide either a lab name (--name) or a topology file path (--topo) or the --all flag");
        }
        let name = g.lab_name()?;
        lab::inspect::lab(&name)
            .map(|(_, rows)| vec![(name, rows)])
            .unwrap_or_default()
    };
    for (name, rows) in &mut labs {
        lab::inspect::check_health(name, rows);
    }
    let rows = format::sorted(&labs);
    if a.details {
        print!("{}", details_json(&labs));
        return Ok(ExitCode::SUCCESS);
    }
    print_rows(&format, &rows, a.all, a.wide)?;
    Ok(ExitCode::SUCCESS)
}

/// `inspect --details`: per lab, each node in the long form containerlab lists containers with
/// (names, ids, labels, pid, management addresses).
fn details_json(labs: &[(String, Vec<lab::inspect::Row>)]) -> String {
    let mut out: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for (name, rows) in labs {
        let recorded = lab::inspect::lab(name).map(|(l, _)| l);
        let mut rows: Vec<&lab::inspect::Row> = rows.iter().collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        for r in rows {
            let node = recorded.as_ref().and_then(|l| {
                l.nodes
                    .iter()
                    .find(|n| n.long_name == r.name)
                    .map(|n| (l, n))
            });
            let mut labels = serde_json::Map::new();
            if let Some((l, n)) = node {
                for (k, v) in n.labels.iter() {
                    labels.insert(k.clone(), v.clone().into());
                }
                for (k, v) in lab::artifacts::topology_data::builtin_labels(l, n) {
                    labels.insert(k.into(), v.into());
                }
                labels.insert("clab-node-longname".into(), n.long_name.clone().into());
                labels.insert("clab-owner".into(), r.owner.clone().into());
            }
            let split = |a: &str| -> (String, u64) {
                match a.split_once('/') {
                    Some((ip, len)) => (ip.to_string(), len.parse().unwrap_or(0)),
                    None => (String::new(), 0),
                }
            };
            let (v4, v4len) = split(&r.ipv4_address);
            let (v6, v6len) = split(&r.ipv6_address);
            let gw = |v6: bool| {
                recorded
                    .as_ref()
                    .and_then(|l| {
                        if v6 {
                            l.mgmt.ipv6_gw.map(|g| g.to_string())
                        } else {
                            l.mgmt.ipv4_gw.map(|g| g.to_string())
                        }
                    })
                    .unwrap_or_default()
            };
            out.entry(name.clone()).or_default().push(serde_json::json!({
                "Names": [r.name],
                "ID": r.container_id,
                "ShortID": r.container_id,
                "Image": r.image,
                "State": r.state,
                "Status": r.status,
                "Labels": labels,
                "Pid": r.pid,
                "NetworkName": recorded.as_ref().map(|l| l.mgmt.network.clone()).unwrap_or_default(),
                "NetworkSettings": {
                    "IPv4addr": v4, "IPv4pLen": v4len, "IPv4Gw": gw(false),
                    "IPv6addr": v6, "IPv6pLen": v6len, "IPv6Gw": gw(true),
                },
                "Mounts": [],
                "Runtime": r.runtime,
                "Ports": [],
            }));
        }
    }
    if out.is_empty() {
        return "{}\n".into();
    }
    format!("{}\n", format::go_json(&out))
}

fn exec(g: &Global, a: ExecArgs) -> anyhow::Result<ExitCode> {
    if a.cmd.is_empty() {
        bail!("provide command to execute");
    }
    let json = match a.format.trim().to_lowercase().as_str() {
        "json" => true,
        "plain" | "table" => false,
        other => bail!(
            "cannot parse {other:?} as execution output format, supported output formats [\"json\" \"plain\"]"
        ),
    };
    let labels: Vec<(String, String)> = a
        .label
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(anyhow::anyhow!("--label takes key=value, not `{l}`")),
        })
        .collect::<anyhow::Result<_>>()?;
    // With a topology or a name, that lab; with labels alone, every deployed lab.
    let labs: Vec<String> = if g.topo.is_some() || g.name.is_some() {
        vec![g.lab_name()?]
    } else if !labels.is_empty() {
        lab::state::recorded_labs()
    } else {
        vec![g.lab_name()?]
    };
    let words: Vec<Vec<String>> = a
        .cmd
        .iter()
        .map(|c| shlex::split(c).with_context(|| format!("cannot split command `{c}` into words")))
        .collect::<anyhow::Result<_>>()?;
    let select = lab::exec::Select::Match {
        nodes: &[],
        labels: &labels,
    };
    let mut results: BTreeMap<String, Vec<format::ExecResult>> = BTreeMap::new();
    for name in &labs {
        for w in &words {
            // The words run as given (no shell), as containerlab runs them: quote each for sh.
            let line = shlex::try_join(w.iter().map(String::as_str))
                .map_err(|e| anyhow::anyhow!("cannot quote command {w:?}: {e}"))?;
            let out = if labs.len() == 1 {
                lab::exec::exec(name, &select, &format!("exec {line}"))?
            } else {
                lab::exec::exec_matching(name, &select, &format!("exec {line}"))?
            };
            for (node, o) in out {
                if !json {
                    print_plain(&node.long_name, w, o.code, &o.stdout, &o.stderr);
                }
                results
                    .entry(node.long_name)
                    .or_default()
                    .push(format::ExecResult {
                        cmd: w.clone(),
                        return_code: o.code,
                        stdout: format::StdoutValue(o.stdout),
                        stderr: o.stderr,
                    });
            }
        }
    }
    if json {
        print!("{}", format::exec_json(&results));
    } else if results.is_empty() {
        eprintln!("INFO no containers found");
    }
    Ok(ExitCode::SUCCESS)
}

/// A command's result in plain form: a log line on standard error (as containerlab logs it), the
/// output on standard output.
fn print_plain(node: &str, cmd: &[String], code: i32, stdout: &str, stderr: &str) {
    let cmd = cmd.join(" ");
    if code == 0 {
        eprintln!("INFO Executed command node={node} command={cmd:?}");
    } else {
        eprintln!("ERRO Failed to execute command node={node} command={cmd:?} rc={code}");
    }
    print!("{stdout}");
    eprint!("{stderr}");
}

/// containerlab saves the running configuration of network-OS kinds; for `linux` nodes it has
/// nothing to save. Every node labwire runs is a Linux node (other kinds run as generic Linux),
/// so `save` names each node and saves nothing, as containerlab does for them.
fn save(g: &Global, a: SaveArgs) -> anyhow::Result<ExitCode> {
    let name = g.lab_name()?;
    let Some((lab, rows)) = lab::inspect::lab(&name) else {
        bail!("lab {name} is not deployed");
    };
    let mut filtered = lab.clone();
    commands::filter_nodes(&mut filtered, &a.node_filter)?;
    if let Some(dir) = &a.copy {
        // containerlab copies into DIR/<lab directory name>/: there is nothing to copy.
        let dest = dir.join(lab.dir.file_name().unwrap_or_default());
        std::fs::create_dir_all(&dest).with_context(|| format!("create {}", dest.display()))?;
    }
    for r in rows.iter().filter(|r| filtered.node(&r.node).is_some()) {
        eprintln!(
            "INFO nothing to save node={} kind={}: it runs as a Linux node, whose configuration lives in its binds",
            r.name, r.kind
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn graph(g: &Global, a: GraphArgs) -> anyhow::Result<ExitCode> {
    let mut lab = g.topo_arg()?.load()?;
    commands::filter_nodes(&mut lab, &a.node_filter)?;
    if a.template.is_some() || a.static_dir.is_some() {
        bail!("--template and --static-dir are not supported by labwire: its page is built in (`labwire serve`, or `labwire graph --html`)");
    }
    let _ = (&a.drawio_args, &a.drawio_version, a.offline);
    if a.mermaid {
        print!(
            "{}",
            commands::graph::mermaid(&lab).replacen(
                "flowchart LR",
                &format!("flowchart {}", a.mermaid_direction),
                1
            )
        );
    } else if a.dot || a.drawio {
        let (ext, text) = if a.dot {
            ("dot", commands::graph::dot(&lab))
        } else {
            let view = serve::view::LabView::planned(&lab);
            ("drawio", serve::view::drawio(&view))
        };
        let path = lab.dir.join(format!("{}.{ext}", lab.name));
        std::fs::create_dir_all(&lab.dir)
            .with_context(|| format!("create {}", lab.dir.display()))?;
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        eprintln!("INFO Created graph file path={}", path.display());
    } else {
        bail!(
            "labwire's web view is `labwire serve` (the API and the live page; --srv {} is not taken here): use --dot, --mermaid or --drawio",
            a.srv
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn generate(g: &Global, a: GenerateArgs) -> anyhow::Result<ExitCode> {
    let Some(name) = &g.name else {
        bail!("provide a lab name with --name flag");
    };
    if a.export_rendered.is_some() {
        bail!("--export-rendered is not supported by labwire yet");
    }
    let mgmt = &a.mgmt;
    let text = a
        .stages
        .generate(
            name,
            "srl",
            [
                mgmt.network.as_deref(),
                mgmt.ipv4_subnet.as_deref(),
                mgmt.ipv6_subnet.as_deref(),
            ],
        )
        .map_err(anyhow::Error::msg)?;
    if let Some(f) = &a.file {
        std::fs::write(f, &text).with_context(|| format!("write {}", f.display()))?;
    }
    if a.deploy {
        let file = a
            .file
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{name}.clab.yml")));
        if a.file.is_none() {
            std::fs::write(&file, &text).with_context(|| format!("write {}", file.display()))?;
        }
        let lab = TopoArg {
            topo: Some(file),
            runtime: Some(g.runtime.clone()),
            vars: Vec::new(),
        }
        .load()?;
        let opts = lab::deploy::DeployOptions {
            max_workers: a.max_workers.unwrap_or_else(lab::pool::default_workers),
            reconfigure: true,
            quiet: false,
            node_filter: Vec::new(),
        };
        let owner = a.owner.unwrap_or_else(lab::inspect::caller);
        return commands::deploy::deploy_then(lab, &opts, &owner, false, |name| {
            print_lab("table", name)
        });
    }
    if a.file.is_none() {
        println!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_does() {
        assert_eq!(parse_duration("30s").unwrap().as_secs(), 30);
        assert_eq!(parse_duration("2m30s").unwrap().as_secs(), 150);
        assert_eq!(parse_duration("1h").unwrap().as_secs(), 3600);
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("3 days").is_err());
    }

    #[test]
    fn names_that_select_the_personality() {
        for (argv0, yes) in [
            ("containerlab", true),
            ("/usr/local/bin/clab", true),
            ("./labwire", false),
            ("clabx", false),
        ] {
            assert_eq!(
                invoked_as_containerlab(&OsString::from(argv0)),
                yes,
                "{argv0}"
            );
        }
    }
}

/// Every command, alias and flag of containerlab's command line parses (argv as tools pass it).
#[cfg(test)]
mod argv {
    use super::*;

    fn parse(line: &str) -> Cli {
        let args = std::iter::once("containerlab").chain(line.split_whitespace());
        Cli::try_parse_from(args).unwrap_or_else(|e| panic!("`{line}`: {e}"))
    }

    fn refused(line: &str) {
        let args = std::iter::once("containerlab").chain(line.split_whitespace());
        assert!(
            Cli::try_parse_from(args).is_err(),
            "`{line}` should not parse"
        );
    }

    #[test]
    fn commands_and_aliases() {
        for line in [
            "deploy -t x.clab.yml",
            "dep -t x.clab.yml",
            "apply -t x.clab.yml",
            "destroy -t x.clab.yml",
            "des --all",
            "redeploy -t x",
            "rdep -t x",
            "inspect --all",
            "ins -a",
            "i --name lab",
            "inspect interfaces -t x",
            "inspect int -n clab-x-a",
            "inspect intf -f json",
            "exec -t x --cmd true",
            "save -t x",
            "graph -t x --dot",
            "generate --name g --nodes 2,1",
            "gen --name g --nodes 2",
            "validate -t x",
            "val -t x",
            "version",
            "version check",
            "version upgrade",
            "version update",
            "completion bash",
            "tools veth create -a clab-x-a:eth9 -b host:vx9",
            "tools vxlan create --remote 10.0.0.1 -l eth9",
            "tools vxlan delete",
            "tools netem set -n clab-x-a -i eth1 --delay 10ms",
            "tools netem show -n clab-x-a",
            "tools netem reset -n clab-x-a -i eth1",
            "tools disable-tx-offload -c clab-x-a",
            "start -t x",
            "stop -t x",
            "restart -t x",
            "events",
        ] {
            parse(line);
        }
        refused("completion tcsh");
        refused("nosuch");
        refused("tools disable-tx-offload");
        refused("tools vxlan create --remote 10.0.0.1");
    }

    #[test]
    fn global_flags_anywhere() {
        let c = parse(
            "-d -d --log-level debug deploy --timeout 2m30s -r podman --vars v.yml --name n -t dir",
        );
        assert_eq!(c.global.debug, 2);
        assert_eq!(c.global.runtime, "podman");
        assert_eq!(c.global.timeout, Some(std::time::Duration::from_secs(150)));
        assert_eq!(c.global.name.as_deref(), Some("n"));
        assert_eq!(c.global.vars, [PathBuf::from("v.yml")]);
        refused("deploy --log-level loud");
        refused("deploy --timeout soon");
    }

    #[test]
    fn default_runtime_is_docker_or_clab_runtime() {
        // The environment is read by clap at parse time; this test process does not set it.
        if std::env::var_os("CLAB_RUNTIME").is_none() {
            assert_eq!(parse("deploy").global.runtime, "docker");
        }
        assert_eq!(parse("deploy --runtime native").global.runtime, "native");
    }

    #[test]
    fn deploy_flags() {
        let Cmd::Deploy(a) = parse(
            "deploy -t x -c --max-workers 3 --node-filter a,b --node-filter c -f json -g --skip-post-deploy --skip-labdir-acl --owner bob --dry-run --network n -4 10.0.0.0/24 -6 fd00::/64 --export-template t --restore-all --restore a=s.tar --export-rendered r.yml",
        )
        .command
        else {
            panic!("not deploy")
        };
        assert!(a.reconfigure && a.common.graph && a.dry_run);
        assert!(a.common.skip_post_deploy && a.common.skip_labdir_acl);
        assert_eq!(a.max_workers, Some(3));
        assert_eq!(a.node_filter, ["a", "b", "c"]);
        assert_eq!(a.common.format, "json");
        assert_eq!(a.owner.as_deref(), Some("bob"));
        assert_eq!(a.restore_all, Some(PathBuf::from("./snapshots")));
        refused("deploy -f csv");
    }

    #[test]
    fn destroy_inspect_exec_flags() {
        let Cmd::Destroy(d) =
            parse("destroy -t x -c --graceful -y --max-workers 2 --keep-mgmt-net --node-filter a")
                .command
        else {
            panic!("not destroy")
        };
        assert!(d.common.cleanup && d.common.graceful && d.yes && d.common.keep_mgmt_net);
        let Cmd::Inspect(i) = parse("inspect -a --details -f csv -w").command else {
            panic!("not inspect")
        };
        assert!(i.all && i.details && i.wide);
        assert_eq!(i.format, "csv");
        let Cmd::Exec(e) = parse(
            "exec --label clab-node-kind=linux,role=leaf --label x=y --cmd true --cmd false -f json",
        )
        .command
        else {
            panic!("not exec")
        };
        assert_eq!(e.label, ["clab-node-kind=linux", "role=leaf", "x=y"]);
        assert_eq!(e.cmd, ["true", "false"]);
        let Cmd::Redeploy(r) = parse("redeploy -t x -c --graceful -a --max-workers 2 --keep-mgmt-net -g -f json --skip-post-deploy --skip-labdir-acl").command else {
            panic!("not redeploy")
        };
        assert!(r.teardown.cleanup && r.teardown.all && r.common.graph);
        let Cmd::Generate(g) = parse("generate --name g --nodes 4,2:linux,1:linux:spine --kind linux --image alpine --image srl=srlinux --license srl=l --node-prefix n --group-prefix t --file f.yml --deploy --max-workers 2 --owner o").command else {
            panic!("not generate")
        };
        assert_eq!(g.stages.nodes, ["4", "2:linux", "1:linux:spine"]);
        assert_eq!(g.stages.image, ["alpine", "srl=srlinux"]);
        let Cmd::Graph(gr) = parse("graph -t x -s :9 -o --mermaid --mermaid-direction LR --drawio-args a,b --drawio-version v --node-filter a").command else {
            panic!("not graph")
        };
        assert!(gr.offline && gr.mermaid);
    }
}

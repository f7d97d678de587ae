//! One module per verb; `Cli` holds the argument structs.

pub(crate) mod completion;
pub(crate) mod console;
pub(crate) mod deploy;
pub(crate) mod destroy;
pub(crate) mod events;
pub(crate) mod exec;
pub(crate) mod generate;
pub(crate) mod graph;
pub(crate) mod image;
pub(crate) mod inspect;
pub(crate) mod redeploy;
pub(crate) mod serve;
pub(crate) mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "labwire",
    version,
    about = "Deploy network labs from containerlab topology files, in seconds, with no daemon"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Show debug messages (as --log-level debug)
    #[arg(short = 'd', long, global = true)]
    pub debug: bool,
    /// How much to log on standard error (default: info when it is not a terminal, else warn)
    #[arg(long, global = true, value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Deploy a lab
    Deploy(deploy::DeployArgs),
    /// Destroy a lab (or all) from its recorded state
    Destroy(destroy::DestroyArgs),
    /// Destroy a lab if deployed, then deploy it again
    Redeploy(redeploy::RedeployArgs),
    /// Show deployed labs
    Inspect(inspect::InspectArgs),
    /// Run a command inside nodes of a deployed lab
    Exec(exec::ExecArgs),
    /// Attach to the serial console of a VM node (Ctrl-] leaves; the log is console.log in the
    /// node's directory)
    Console(console::ConsoleArgs),
    /// Manage labwire's own images (import, ls, inspect, rm)
    Image(image::ImageArgs),
    /// Generate ring or CLOS topologies, or stages as containerlab's generate takes them
    Generate(generate::GenerateArgs),
    /// Check a topology and print a summary (all errors at once)
    Validate(validate::ValidateArgs),
    /// Draw the topology: Graphviz dot, Mermaid, draw.io, or a self-contained HTML page
    Graph(graph::GraphArgs),
    /// Serve the HTTP API (OpenAPI at /openapi.json) and the live lab page
    Serve(serve::ServeArgs),
    /// Stream a lab's node and link state changes as they happen (waits for the lab to exist and
    /// follows it across redeploys)
    Events(events::EventsArgs),
    /// Print the version
    Version,
    /// Print a shell completion script
    Completion(completion::CompletionArgs),
}

/// `-t FILE` (or `-` for standard input); found in the current directory when omitted.
#[derive(Args, Clone)]
pub struct TopoArg {
    /// Topology file (`-` reads standard input); defaults to the one *.clab.yml in this directory
    #[arg(short = 't', long = "topo")]
    pub topo: Option<PathBuf>,
    /// Runtime for nodes that do not name one (native, docker, podman, vm)
    #[arg(short = 'r', long = "runtime")]
    pub runtime: Option<String>,
    /// Variables for a Go-template topology (YAML or JSON; repeat to merge several); default: the
    /// topology's `<name>_vars.{yml,yaml,json}` beside it
    #[arg(long = "vars", value_name = "FILE")]
    pub vars: Vec<PathBuf>,
}

impl TopoArg {
    /// Load and validate the topology, printing warnings.
    pub fn load(&self) -> anyhow::Result<topology::Lab> {
        let runtime = match &self.runtime {
            Some(r) => Some(topology::Runtime::parse(r).with_context(|| {
                format!(
                    "unknown runtime `{r}`; accepted: {}",
                    topology::Runtime::NAMES.join(", ")
                )
            })?),
            None => None,
        };
        let src = self.source()?;
        // env-files are read (as root, for deploy) under the same rules as bind sources.
        let rules = lab::contain::SourceRules::new(src.path.as_deref(), &src.base_dir);
        let read_file = |p: &Path| match rules.refuse(p) {
            Some(why) => Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                why,
            )),
            None => topology::read_env_file(p),
        };
        let opts = topology::Options {
            runtime,
            read_file: &read_file,
            ..Default::default()
        };
        let loaded = topology::load(&src, &opts)?;
        crate::output::print_warnings(&loaded.warnings);
        Ok(loaded.lab)
    }

    pub fn source(&self) -> anyhow::Result<topology::Source> {
        let path = match &self.topo {
            Some(p) => p.clone(),
            None => topology::find_topology(Path::new(".")).map_err(anyhow::Error::msg)?,
        };
        if path.as_os_str() == "-" {
            let text = topology::read_bounded(std::io::stdin())
                .context("read the topology from standard input")?;
            let cwd = std::env::current_dir().context("current directory")?;
            return Ok(
                topology::Source::from_text("<stdin>", text, &cwd).with_vars(self.vars.clone())
            );
        }
        Ok(topology::Source::from_file(&path)
            .with_context(|| format!("read topology {}", path.display()))?
            .with_vars(self.vars.clone()))
    }
}

/// Which deployed lab a command is about: `-t FILE` (its `name`) or `--name LAB`.
#[derive(Args, Clone)]
pub struct LabRef {
    /// Topology file of the lab
    #[arg(short = 't', long = "topo")]
    pub topo: Option<PathBuf>,
    /// Lab name (works when the topology file changed or is gone)
    #[arg(long, conflicts_with = "topo")]
    pub name: Option<String>,
    /// Variables of a Go-template topology (as given to deploy)
    #[arg(long = "vars", value_name = "FILE")]
    pub vars: Vec<PathBuf>,
}

impl LabRef {
    /// The lab's name: given, or read from the (valid) topology file.
    pub fn resolve(&self) -> anyhow::Result<String> {
        match &self.name {
            Some(n) => Ok(n.clone()),
            None => Ok(TopoArg {
                topo: self.topo.clone(),
                runtime: None,
                vars: self.vars.clone(),
            }
            .load()?
            .name),
        }
    }
}

/// Keep only the nodes named in `keep` (every node when empty) and the links whose nodes all stay:
/// `--node-filter`. A name that is not a node of the lab is an error naming the lab's nodes.
pub fn filter_nodes(lab: &mut topology::Lab, keep: &[String]) -> anyhow::Result<()> {
    if keep.is_empty() {
        return Ok(());
    }
    let unknown: Vec<&str> = keep
        .iter()
        .filter(|k| lab.node(k).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = lab.nodes.iter().map(|n| n.name.as_str()).collect();
        anyhow::bail!(
            "--node-filter names {} that lab {} does not have; its nodes are {}",
            unknown.join(", "),
            lab.name,
            names.join(", ")
        );
    }
    let all: Vec<String> = lab.nodes.iter().map(|n| n.name.clone()).collect();
    let kept = |node: &str| keep.iter().any(|k| k == node);
    for n in lab.nodes.iter().filter(|n| kept(&n.name)) {
        if let topology::NetworkMode::Container(other) = &n.network_mode {
            anyhow::ensure!(
                kept(other) || !all.contains(other),
                "--node-filter keeps {} but not {other}, whose network namespace it shares",
                n.name
            );
        }
    }
    lab.nodes.retain(|n| kept(&n.name));
    lab.links.retain(|l| l.endpoints().all(|ep| kept(&ep.node)));
    Ok(())
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Deploy(a) => deploy::run(a),
        Command::Destroy(a) => destroy::run(a),
        Command::Redeploy(a) => redeploy::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Exec(a) => exec::run(a),
        Command::Console(a) => console::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Image(a) => image::run(a),
        Command::Validate(a) => validate::run(a),
        Command::Graph(a) => graph::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Events(a) => events::run(a),
        Command::Version => {
            println!("labwire {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Completion(a) => completion::run(a),
    }
}

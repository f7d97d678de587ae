//! `labwire k8s`: a lab on Kubernetes. `render` prints the objects; `apply`, `destroy` and
//! `inspect` talk to the cluster of the user's kubeconfig; `run` and `ready` are what a lab's pod
//! runs (its command and its readiness probe).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use lab::deploy::DeployOptions;

use super::TopoArg;

#[derive(Args)]
pub struct K8sArgs {
    #[command(subcommand)]
    pub command: K8sCommand,
}

#[derive(Subcommand)]
pub enum K8sCommand {
    /// Print the lab's Kubernetes objects (namespace, ConfigMap, a Service and a pod per
    /// partition) as a YAML stream
    Render(RenderArgs),
    /// Apply the lab's objects to the cluster (server-side apply) and wait until every pod
    /// reports its partition deployed
    Apply(ApplyArgs),
    /// Delete the lab's namespace (and with it every object of the lab)
    Destroy(ClusterArgs),
    /// Show the lab's pods: partition, phase, readiness
    Inspect(ClusterArgs),
    /// Inside a lab's pod: copy the mounted ConfigMap to the lab directory and deploy this pod's
    /// partition
    Run(RunArgs),
    /// Inside a lab's pod: succeed once the partition is deployed (the readiness probe)
    Ready(ReadyArgs),
}

#[derive(Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub topo: TopoArg,
    /// The image the pods run (labwire's own; see Dockerfile)
    #[arg(long, default_value = concat!("labwire:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
}

#[derive(Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub render: RenderArgs,
    /// Kubeconfig (default: $KUBECONFIG, else ~/.kube/config)
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// How long to wait for every pod to be ready, in seconds
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

#[derive(Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub topo: TopoArg,
    /// Kubeconfig (default: $KUBECONFIG, else ~/.kube/config)
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub topo: TopoArg,
    /// This pod's partition
    #[arg(long)]
    pub partition: String,
    /// The mounted ConfigMap, copied into the topology's directory first
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Args)]
pub struct ReadyArgs {
    /// This pod's partition
    #[arg(long)]
    pub partition: String,
}

pub fn run(a: K8sArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        K8sCommand::Render(r) => {
            print!("{}", objects(&r)?.to_yaml_stream());
            Ok(ExitCode::SUCCESS)
        }
        K8sCommand::Apply(a) => {
            let objs = objects(&a.render)?;
            let client = k8s::client::Client::from_kubeconfig(a.kubeconfig.as_deref())
                .map_err(anyhow::Error::msg)?;
            client.apply(&objs).map_err(anyhow::Error::msg)?;
            let ns = objs.namespace.metadata.name.clone().unwrap_or_default();
            eprintln!(
                "applied {} pods in namespace {ns}; waiting for them to be ready",
                objs.pods.len()
            );
            client
                .wait_ready(&objs, Duration::from_secs(a.timeout))
                .map_err(anyhow::Error::msg)?;
            print!(
                "{}",
                k8s::client::table(&client.pods(&ns).map_err(anyhow::Error::msg)?)
            );
            Ok(ExitCode::SUCCESS)
        }
        K8sCommand::Destroy(a) => {
            let lab = a.topo.load()?;
            let client = k8s::client::Client::from_kubeconfig(a.kubeconfig.as_deref())
                .map_err(anyhow::Error::msg)?;
            let ns = k8s::namespace(&lab.name);
            client.delete_namespace(&ns).map_err(anyhow::Error::msg)?;
            eprintln!("namespace {ns} of lab {} deleted", lab.name);
            Ok(ExitCode::SUCCESS)
        }
        K8sCommand::Inspect(a) => {
            let lab = a.topo.load()?;
            let client = k8s::client::Client::from_kubeconfig(a.kubeconfig.as_deref())
                .map_err(anyhow::Error::msg)?;
            print!(
                "{}",
                k8s::client::table(
                    &client
                        .pods(&k8s::namespace(&lab.name))
                        .map_err(anyhow::Error::msg)?
                )
            );
            Ok(ExitCode::SUCCESS)
        }
        K8sCommand::Run(r) => run_partition(r),
        K8sCommand::Ready(r) => {
            let got = std::fs::read_to_string(k8s::READY_FILE).unwrap_or_default();
            if got.trim() == r.partition {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("partition {} is not deployed yet", r.partition);
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// The lab's objects, from the topology and the files it binds.
fn objects(r: &RenderArgs) -> anyhow::Result<k8s::Objects> {
    let lab = r.topo.load()?;
    let src = r.topo.source()?;
    let name = src.path.as_deref().and_then(Path::file_name).map_or_else(
        || "topology.clab.yml".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let files =
        k8s::lab_files(&lab, &|p| std::fs::read_to_string(p)).map_err(anyhow::Error::msg)?;
    k8s::render(&k8s::Render {
        lab: &lab,
        topology_name: &name,
        topology_text: &src.text,
        files: &files,
        image: &r.image,
    })
    .map_err(anyhow::Error::msg)
}

/// Copy the files of a mounted ConfigMap (its `..data` machinery skipped, links followed) into
/// `to`, keeping their relative paths.
fn copy_config(from: &Path, to: &Path) -> anyhow::Result<()> {
    for e in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let e = e?;
        let name = e.file_name();
        if name.to_string_lossy().starts_with("..") {
            continue;
        }
        let src = e.path();
        let dst = to.join(&name);
        if std::fs::metadata(&src)?.is_dir() {
            std::fs::create_dir_all(&dst)?;
            copy_config(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("copy {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

fn run_partition(r: RunArgs) -> anyhow::Result<ExitCode> {
    if let Some(config) = &r.config {
        let Some(topo) = &r.topo.topo else {
            bail!("--config needs -t: the topology's directory is where the files go");
        };
        let dir = std::path::absolute(topo)?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        std::fs::create_dir_all(&dir)?;
        copy_config(config, &dir)?;
    }
    let lab = r.topo.load()?;
    let placed = k8s::place(&lab).map_err(anyhow::Error::msg)?;
    let lab = lab::partition::view(&placed, &r.partition, lab::partition::RESOLVE_WAIT)
        .map_err(anyhow::Error::msg)?;
    let partition = r.partition.clone();
    super::deploy::deploy_then(
        lab,
        &DeployOptions::default(),
        &lab::inspect::caller(),
        false,
        move |name| {
            std::fs::write(k8s::READY_FILE, format!("{partition}\n"))
                .with_context(|| format!("write {}", k8s::READY_FILE))?;
            super::deploy::print_table(name)
        },
    )
}

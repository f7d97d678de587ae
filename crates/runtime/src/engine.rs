//! The engine runtimes (`docker`, `podman`) as a [`Backend`]: a node is a container made through
//! its engine's API ([`crate::docker`]), started at once; labwire wires its network namespace like
//! any other node's, except a Docker node's `eth0`, which the engine attaches to the lab's
//! management network (so `ports` publish).
//!
//! Owns the connection to the engine during a deploy and the removal of the containers and
//! networks a lab's journal names.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use topology::{Lab, NetworkMode, Node};
use wire::NetNs;

use crate::backend::{
    record, record_process, Backend, CreateNode, Deployment, Made, Record, Resume, Running, Status,
};
use crate::docker::{Container, Engine, EngineKind};
use crate::node::ExecOutput;
use crate::process::ProcId;
use crate::{Error, Result};

/// Engine requests in flight per deploy worker while nodes are created: measured with
/// `benches/docker.sh`, where more than this gains nothing on two cores.
pub const ENGINE_REQUESTS_PER_WORKER: usize = 4;

/// A container engine's nodes.
pub struct EngineBackend {
    kind: EngineKind,
    /// Connected by the preflight (or the first node), kept for the deploy.
    engine: OnceLock<Engine>,
}

impl EngineBackend {
    pub fn new(kind: EngineKind) -> EngineBackend {
        EngineBackend {
            kind,
            engine: OnceLock::new(),
        }
    }

    fn engine(&self) -> Result<&Engine> {
        if let Some(e) = self.engine.get() {
            return Ok(e);
        }
        let e = Engine::connect(self.kind)?;
        Ok(self.engine.get_or_init(|| e))
    }

    /// Whether a node's `eth0` is on the engine's management network: Docker nodes in the default
    /// network mode. (Podman nodes are wired by labwire: Podman's own networking is not used yet.)
    fn on_engine_network(&self, n: &Node) -> bool {
        self.kind == EngineKind::Docker && n.network_mode == NetworkMode::Bridged
    }
}

impl Backend for EngineBackend {
    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn uses_image_store(&self) -> bool {
        false
    }

    fn labwire_wires_mgmt(&self, node: &Node) -> bool {
        !self.on_engine_network(node)
    }

    /// The engine answers, and every node's image is in it (pulled as `image-pull-policy` says).
    fn preflight(&self, lab: &Lab, nodes: &[&Node]) -> Vec<String> {
        let kind = self.kind;
        let mut problems = Vec::new();
        let engine = self.engine();
        let mut checked = HashSet::new();
        // Containers share the host's kernel.
        problems.extend(crate::host_kernel::missing_modules(nodes));
        for n in nodes {
            if let Err(e) = &engine {
                problems.push(format!("node {}: {}", n.name, crate::chain(e)));
            }
            // A container joins another's network by the engine's `container:NAME`, so that one
            // must be a container of the same engine.
            if let NetworkMode::Container(other) = &n.network_mode {
                if let Some(o) = lab.node(other).filter(|o| o.runtime != n.runtime) {
                    problems.push(format!(
                        "node {}: network-mode container:{other} needs {other} to run on the {kind} runtime too (it runs on {})",
                        n.name, o.runtime
                    ));
                }
            }
        }
        let Ok(engine) = engine else {
            return problems;
        };
        for n in nodes {
            let Some(img) = &n.image else {
                problems.push(format!(
                    "node {}: the {kind} runtime needs an `image`",
                    n.name
                ));
                continue;
            };
            if checked.insert((img.clone(), n.image_pull_policy.clone())) {
                if let Err(e) = engine.ensure_image(img, n.image_pull_policy.as_deref()) {
                    problems.push(format!("node {}: {e}", n.name));
                }
            }
        }
        problems
    }

    fn prepare(&self, _d: &Deployment<'_>, _nodes: &[&Node], _notice: &dyn Fn(&str)) -> Result<()> {
        self.engine().map(|_| ())
    }

    /// Docker nodes' `eth0` is on the engine's own bridge network (so `ports` publish); that
    /// network's bridge is the management bridge, which other nodes join as usual.
    fn host_networks(&self, d: &Deployment<'_>, nodes: &[&Node], rec: &dyn Record) -> Result<()> {
        if !nodes.iter().any(|n| self.on_engine_network(n)) {
            return Ok(());
        }
        let engine = self.engine()?;
        record(
            rec,
            &[Made::EngineNetwork {
                engine: self.kind,
                socket: Some(engine.socket().to_path_buf()),
                name: d.lab.mgmt.network.clone(),
            }],
        )?;
        engine.ensure_network(&d.lab.name, &d.lab.mgmt)?;
        Ok(())
    }

    /// A container's creation and start are mostly waiting on the engine (and the engine on
    /// its OCI runtime), so a few requests per worker keep both cores busy.
    fn create_concurrency(&self, workers: usize) -> usize {
        workers * ENGINE_REQUESTS_PER_WORKER
    }

    /// The node's container, created (journalled by name first, then by id) and started; its
    /// first process is the node's.
    fn create(&self, d: &Deployment<'_>, req: &CreateNode<'_>, rec: &dyn Record) -> Result<ProcId> {
        let n = req.node;
        let engine = self.engine()?;
        crate::node::node_dir(n)?;
        let spec = Container {
            ctx: req.ctx,
            node: n,
            share_net_with: req.share_net_with.map(|s| s.name),
            network: self
                .on_engine_network(n)
                .then_some((d.lab.mgmt.network.as_str(), req.network)),
        };
        let entry = |id: Option<String>| Made::Container {
            node: n.name.clone(),
            name: n.long_name.clone(),
            id,
            engine: self.kind,
            socket: Some(engine.socket().to_path_buf()),
        };
        record(rec, &[entry(None)])?;
        let id = match engine.create(&spec) {
            Ok(id) => id,
            Err(e) => {
                // Refused (a name conflict): whatever holds the name is not this lab's.
                record(
                    rec,
                    &[Made::ContainerNotMade {
                        name: n.long_name.clone(),
                    }],
                )?;
                return Err(e);
            }
        };
        record(rec, &[entry(Some(id.clone()))])?;
        let pid = engine.start(&id, &n.long_name)?;
        let proc = ProcId::of(pid).ok_or_else(|| Error::NodeSetup {
            node: n.name.clone(),
            message: format!("container {} exited right after it started", n.long_name),
        })?;
        record_process(rec, n, proc)
    }

    /// A running node's health is the engine's: it runs the healthcheck given at create on the
    /// healthcheck's own interval and keeps the result (`State.Health.Status`).
    fn status(&self, _lab: &Lab, node: &Node, proc: Option<ProcId>) -> Status {
        let mut s = crate::backend::process_status(proc);
        let checked = node
            .healthcheck
            .as_ref()
            .is_some_and(|h| !h.test.is_empty());
        if checked && s.state == "running" {
            s.health = self
                .engine()
                .and_then(|e| e.health(&node.long_name))
                .unwrap_or_else(|e| {
                    log::debug!(
                        "node {}: no health from the engine: {}",
                        node.name,
                        crate::chain(&e)
                    );
                    None
                });
        }
        s
    }

    /// The engine started the container's command already.
    fn start(&self, _node: &Running<'_>, _ns: &NetNs, _home: &NetNs) -> Result<()> {
        Ok(())
    }

    fn exec(&self, node: &Running<'_>, cmd: &str) -> Result<ExecOutput> {
        crate::native::exec_in_namespaces(node, cmd)
    }

    /// The engine stops the container (its stop signal, then SIGKILL after `grace`). The
    /// namespace labwire registered keeps the node's interfaces while the engine drops its own.
    fn halt(&self, node: &Running<'_>, grace: Duration) -> Result<()> {
        self.engine()?.stop(&node.node.long_name, grace.as_secs())?;
        crate::backend::halt_process(node, node.proc, Duration::ZERO)
    }

    /// The engine starts the container again, in a network namespace of its own making: the lab
    /// moves the node's interfaces into it.
    fn resume(&self, r: &Resume<'_>, rec: &dyn Record) -> Result<ProcId> {
        let n = r.node;
        let id = r.container.unwrap_or(&n.long_name);
        let pid = self.engine()?.start(id, &n.long_name)?;
        let proc = ProcId::of(pid).ok_or_else(|| Error::NodeSetup {
            node: n.name.clone(),
            message: format!("container {} exited right after it started", n.long_name),
        })?;
        record_process(rec, n, proc)
    }
}

/// A container a lab's journal names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedContainer {
    pub node: String,
    /// The container's name (the node's long name).
    pub name: String,
    /// The engine's id, once the engine made it.
    pub id: Option<String>,
    pub engine: EngineKind,
    /// The engine's socket at deploy time (`None`: the engine's default).
    pub socket: Option<PathBuf>,
}

fn connect(kind: EngineKind, socket: Option<&Path>) -> Result<Engine> {
    match socket {
        Some(s) => Engine::connect_at(kind, s),
        None => Engine::connect(kind),
    }
}

/// Force-remove (which stops) the containers of lab `lab`, each through the engine that made it:
/// by id when recorded, else by name if the container there carries this lab's label. Those
/// sharing another's network go first (in waves, deepest first, as `depth` says): Podman refuses
/// to remove a container others depend on. Returns how many were removed and every failure.
pub fn remove_containers(
    lab: &str,
    containers: &[RecordedContainer],
    depth: &dyn Fn(&str) -> usize,
) -> (usize, Vec<String>) {
    let mut removed = 0;
    let mut errors = Vec::new();
    let mut by_engine: BTreeMap<(EngineKind, Option<&Path>), Vec<&RecordedContainer>> =
        BTreeMap::new();
    for c in containers {
        by_engine
            .entry((c.engine, c.socket.as_deref()))
            .or_default()
            .push(c);
    }
    for ((kind, socket), list) in by_engine {
        let engine = match connect(kind, socket) {
            Ok(e) => e,
            Err(e) => {
                errors.push(format!(
                    "{} {kind} containers were not removed: {}",
                    list.len(),
                    crate::chain(&e)
                ));
                continue;
            }
        };
        let mut waves: BTreeMap<Reverse<usize>, Vec<&RecordedContainer>> = BTreeMap::new();
        for c in list {
            waves.entry(Reverse(depth(&c.node))).or_default().push(c);
        }
        // Removal waits on the engine: as many requests in flight as a deploy keeps.
        let in_flight = std::thread::available_parallelism().map_or(2, |n| n.get())
            * ENGINE_REQUESTS_PER_WORKER;
        for wave in waves.into_values() {
            let mut targets = Vec::new();
            for c in wave {
                match removal_target(&engine, lab, c) {
                    Ok(Some(t)) => targets.push(t),
                    Ok(None) => {}
                    Err(e) => errors.push(crate::chain(&e)),
                }
            }
            for r in engine.remove_many(&targets, in_flight) {
                match r {
                    Ok(true) => removed += 1,
                    Ok(false) => {}
                    Err(e) => errors.push(crate::chain(&e)),
                }
            }
        }
    }
    (removed, errors)
}

/// What to remove for container `c`: its id when recorded, else its name if the container of
/// that name carries lab `lab`'s label (`None`: not this lab's, or gone).
fn removal_target(engine: &Engine, lab: &str, c: &RecordedContainer) -> Result<Option<String>> {
    match &c.id {
        Some(id) => Ok(Some(id.clone())),
        None => Ok(match engine.lab_label(&c.name)? {
            Some(l) if l == lab => Some(c.name.clone()),
            _ => None,
        }),
    }
}

/// Remove the engine networks a lab's journal names, when labwire made them and no container
/// uses them any more (another lab's may). Returns every failure.
pub fn remove_networks(networks: &[(EngineKind, Option<PathBuf>, String)]) -> Vec<String> {
    let mut errors = Vec::new();
    let mut done = HashSet::new();
    for (kind, socket, net) in networks {
        if !done.insert((kind, socket, net)) {
            continue;
        }
        if let Err(e) = connect(*kind, socket.as_deref()).and_then(|en| en.remove_network(net)) {
            errors.push(format!("{kind} network {net}: {}", crate::chain(&e)));
        }
    }
    errors
}

//! The runtime seam: what the `lab` layer asks of a node's runtime, and the one place that picks
//! the runtime of a node.
//!
//! Every runtime implements [`Backend`] — native (`native.rs`), engine (`engine.rs`: Docker and
//! Podman), vm (`vm/node.rs`, with its own VMM seam) — and [`Backends`] holds one of each and
//! hands out the one a node runs on. Nothing outside this module matches on
//! [`topology::Runtime`]. A backend records every host object it makes through [`Record`] before
//! making it, so the lab's journal can undo it after any crash; it never wires links.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use topology::{Lab, Node, Runtime};
use wire::NetNs;

use crate::docker::EngineKind;
use crate::network::NodeNetwork;
use crate::node::{ExecOutput, ImageRoot, NodeContext};
use crate::process::ProcId;
use crate::{Error, Result};

/// A host object a backend makes for a node, recorded before it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Made {
    /// The node's first process: its init (native and vm nodes) or its container's first process.
    Process { node: String, proc: ProcId },
    /// A cgroup directory of the node's own (removed with everything below it).
    Cgroup { path: PathBuf },
    /// A node's container: recorded by name before it is created (`id` none), then with the
    /// engine's id; `socket` is where its engine was reached.
    Container {
        node: String,
        name: String,
        id: Option<String>,
        engine: EngineKind,
        socket: Option<PathBuf>,
    },
    /// The engine refused to create container `name` (the name is someone else's): destroy never
    /// removes a container by that name.
    ContainerNotMade { name: String },
    /// The lab's management network in a container engine (made or joined).
    EngineNetwork {
        engine: EngineKind,
        socket: Option<PathBuf>,
        name: String,
    },
}

/// Where a backend records what it is about to make (the lab's write-ahead journal).
pub trait Record: Sync {
    fn record(&self, made: &[Made]) -> std::io::Result<()>;
}

pub(crate) fn record(rec: &dyn Record, made: &[Made]) -> Result<()> {
    rec.record(made)
        .map_err(crate::io("record in the lab's journal"))
}

/// Record a node's first process and return it.
pub(crate) fn record_process(rec: &dyn Record, node: &Node, proc: ProcId) -> Result<ProcId> {
    record(
        rec,
        &[Made::Process {
            node: node.name.clone(),
            proc,
        }],
    )?;
    Ok(proc)
}

/// Where a deployed lab keeps its files.
#[derive(Debug, Clone)]
pub struct LabDirs {
    /// Runtime files of the lab's nodes (`<run>/<node>`), on a tmpfs.
    pub run: PathBuf,
    /// The lab's recorded state (`<state>/nodes/<node>` for a node's writable layers).
    pub state: PathBuf,
    /// Host-wide locks and caches that mean nothing after a reboot.
    pub locks: PathBuf,
}

impl LabDirs {
    /// The run directory of one node.
    pub fn node_run(&self, node: &str) -> PathBuf {
        self.run.join(node)
    }
}

/// What a backend is given while a lab is deployed.
pub struct Deployment<'a> {
    pub lab: &'a Lab,
    pub dirs: &'a LabDirs,
    /// labwire-init.
    pub init: &'a Path,
    /// The roots of the nodes that run from labwire's image store.
    pub images: &'a HashMap<String, ImageRoot>,
}

/// One node to create.
pub struct CreateNode<'a> {
    pub node: &'a Node,
    pub ctx: NodeContext<'a>,
    pub network: &'a NodeNetwork,
    /// `network-mode: container:X`: the network namespace to join.
    pub share_net_with: Option<SharedNet<'a>>,
}

/// The network namespace a node joins (`network-mode: container:X`).
#[derive(Debug, Clone, Copy)]
pub struct SharedNet<'a> {
    /// X's container name (a node's long name, or the name of a container outside the lab).
    pub name: &'a str,
    /// X's first process.
    pub proc: ProcId,
}

/// A node that runs, as the commands that reach it see it.
pub struct Running<'a> {
    pub lab: &'a Lab,
    pub node: &'a Node,
    pub proc: ProcId,
    /// The node's runtime files.
    pub run_dir: PathBuf,
    /// labwire-init, which enters a node's namespaces.
    pub init: &'a Path,
}

/// A halted node to start again in the network namespace it kept (`labwire start|restart`).
pub struct Resume<'a> {
    pub lab: &'a Lab,
    pub node: &'a Node,
    pub dirs: &'a LabDirs,
    /// labwire-init.
    pub init: &'a Path,
    /// The node's root from labwire's image store, when it runs from one.
    pub image: Option<&'a ImageRoot>,
    /// The namespace the node kept, as registered (`/run/netns/<long name>`).
    pub netns: &'a Path,
    /// The node's container as the journal names it (engine nodes): its id, else its name.
    pub container: Option<&'a str>,
}

/// A node's state as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `running`, `exited` or `missing`.
    pub state: &'static str,
    /// `Up`, `Exited`, …
    pub status: String,
    /// The process a user would look at (a VM node's VMM).
    pub pid: i32,
    /// The node's health as its container engine keeps it from the node's healthcheck
    /// (`healthy`, `unhealthy`, `health: starting`); `None` where no engine keeps one.
    pub health: Option<String>,
}

/// The state of a node whose first process is `proc` (none recorded: never created).
pub fn process_status(proc: Option<ProcId>) -> Status {
    match proc {
        Some(p) if p.is_alive() => Status {
            state: "running",
            status: "Up".into(),
            pid: p.pid,
            health: None,
        },
        Some(p) => Status {
            state: "exited",
            status: "Exited".into(),
            pid: p.pid,
            health: None,
        },
        None => Status {
            state: "missing",
            status: "Not created".into(),
            pid: 0,
            health: None,
        },
    }
}

/// What the lab asks of a node's runtime. Methods that do not apply to a runtime have defaults
/// that do nothing (or say the operation is not available); every method takes `&self`, so one
/// backend serves all of a lab's nodes from several worker threads.
pub trait Backend: Send + Sync {
    /// The runtime's name in topologies and messages.
    fn name(&self) -> &'static str;

    /// Whether this runtime's nodes run from labwire's own image store (their images are checked
    /// and unpacked there; an engine keeps its own).
    fn uses_image_store(&self) -> bool {
        true
    }

    /// Whether labwire makes this node's management `eth0` itself (`false`: the runtime attaches
    /// it to a network of its own).
    fn labwire_wires_mgmt(&self, _node: &Node) -> bool {
        true
    }

    /// Whether the node's addresses go on its namespace's interfaces (`false`: a guest kernel
    /// holds them).
    fn addresses_in_namespace(&self) -> bool {
        true
    }

    /// Whether a running node takes links added to it (`false`: a guest's NICs are fixed at
    /// boot, so a converging deploy recreates a node whose links change).
    fn takes_new_links(&self) -> bool {
        true
    }

    /// Problems with these nodes that can be found without touching the host, one line each.
    fn preflight(&self, lab: &Lab, nodes: &[&Node]) -> Vec<String>;

    /// Make what the nodes need before any is created (connections, boot disks). `notice` tells
    /// the user something worth knowing.
    fn prepare(&self, _d: &Deployment<'_>, _nodes: &[&Node], _notice: &dyn Fn(&str)) -> Result<()> {
        Ok(())
    }

    /// Make the host-wide networks the runtime's nodes join (the caller holds the host-wide lock).
    fn host_networks(
        &self,
        _d: &Deployment<'_>,
        _nodes: &[&Node],
        _rec: &dyn Record,
    ) -> Result<()> {
        Ok(())
    }

    /// How many of this runtime's nodes to create at once when labwire's own work (CPU-bound)
    /// runs on `workers` threads.
    fn create_concurrency(&self, workers: usize) -> usize {
        workers
    }

    /// Create the node with its own namespaces; its command waits for [`Backend::start`] where
    /// the runtime can hold it. Returns its first process, recorded as [`Made::Process`].
    fn create(&self, d: &Deployment<'_>, req: &CreateNode<'_>, rec: &dyn Record) -> Result<ProcId>;

    /// Start the node's own command, now that its interfaces exist in namespace `ns` (`home` is
    /// the host's).
    fn start(&self, node: &Running<'_>, ns: &NetNs, home: &NetNs) -> Result<()>;

    /// Whether [`Backend::wait_ready`] has anything to wait for.
    fn waits_until_ready(&self) -> bool {
        false
    }

    /// Wait until the node's command is up (a guest's agent answers). `interrupted` ends the wait.
    fn wait_ready(&self, _node: &Running<'_>, _interrupted: &dyn Fn() -> bool) -> Result<()> {
        Ok(())
    }

    /// Run `sh -c cmd` in the node, with the node's environment.
    fn exec(&self, node: &Running<'_>, cmd: &str) -> Result<ExecOutput>;

    /// Attach the terminal to the node's console.
    fn console(&self, node: &Running<'_>) -> Result<()> {
        Err(Error::NotOnThisRuntime {
            node: node.node.name.clone(),
            runtime: node.node.runtime,
            what: "only VM nodes have a console (use `labwire exec`)".into(),
        })
    }

    /// Set the carrier of the node's interface `iface` where the namespace's veth is not what
    /// the node's own kernel sees (a VM guest's NIC); nothing to do elsewhere.
    fn set_carrier(&self, _node: &Running<'_>, _iface: &str, _up: bool) -> Result<()> {
        Ok(())
    }

    /// The node's state for `inspect`.
    fn status(&self, _lab: &Lab, _node: &Node, proc: Option<ProcId>) -> Status {
        process_status(proc)
    }

    /// Stop the node's processes and keep its network namespace (registered by name) with its
    /// interfaces, for [`Backend::resume`]. `grace` is how long they may take to stop on their
    /// own (SIGTERM; a VM's ACPI power-down) before they are killed; zero kills at once.
    fn halt(&self, node: &Running<'_>, grace: Duration) -> Result<()> {
        halt_process(node, node.proc, grace)
    }

    /// Start a halted node again, joining the network namespace it kept where the runtime can
    /// (where it cannot, the lab moves the node's interfaces into the new one). Its command waits
    /// for [`Backend::resume_start`] where the runtime can hold it. Returns its new first process,
    /// recorded as [`Made::Process`].
    fn resume(&self, r: &Resume<'_>, _rec: &dyn Record) -> Result<ProcId> {
        Err(Error::NotOnThisRuntime {
            node: r.node.name.clone(),
            runtime: r.node.runtime,
            what: "its nodes cannot be stopped and started by labwire".into(),
        })
    }

    /// Start a resumed node's command, now that its interfaces are back up.
    fn resume_start(&self, node: &Running<'_>, ns: &NetNs, home: &NetNs) -> Result<()> {
        self.start(node, ns, home)
    }

    /// Stop the node's processes (a signal; [`crate::process::wait_gone`] waits). Returns whether
    /// it was running.
    fn stop(&self, node: &Running<'_>) -> bool {
        node.proc.kill()
    }
}

/// Stop process `proc` of a node (SIGTERM, `grace`, SIGKILL) and wait until it is gone.
pub fn halt_process(node: &Running<'_>, proc: ProcId, grace: Duration) -> Result<()> {
    if crate::process::terminate(&[proc], grace).is_empty() {
        Ok(())
    } else {
        Err(Error::NodeSetup {
            node: node.node.name.clone(),
            message: format!("process {} did not stop", proc.pid),
        })
    }
}

/// One backend per runtime, picked per node.
pub struct Backends {
    external: crate::external::External,
    native: crate::native::Native,
    vm: crate::vm::node::Vm,
    docker: crate::engine::EngineBackend,
    podman: crate::engine::EngineBackend,
}

impl Default for Backends {
    fn default() -> Self {
        Backends::new()
    }
}

impl Backends {
    pub fn new() -> Backends {
        Backends {
            external: crate::external::External,
            native: crate::native::Native,
            vm: crate::vm::node::Vm::default(),
            docker: crate::engine::EngineBackend::new(EngineKind::Docker),
            podman: crate::engine::EngineBackend::new(EngineKind::Podman),
        }
    }

    /// The backend of a runtime: the one place a runtime is matched on.
    pub fn of(&self, runtime: Runtime) -> &dyn Backend {
        match runtime {
            Runtime::Native => &self.native,
            Runtime::Vm => &self.vm,
            Runtime::Docker => &self.docker,
            Runtime::Podman => &self.podman,
        }
    }

    /// The backend a node runs on: a container started outside labwire (`ext-container`), or its
    /// runtime's.
    pub fn node(&self, node: &Node) -> &dyn Backend {
        if node.class == topology::KindClass::ExtContainer {
            return &self.external;
        }
        self.of(node.runtime)
    }

    /// The lab's workload nodes grouped by backend, in the order of the backends' first nodes.
    pub fn group<'a>(&self, nodes: &[&'a Node]) -> Vec<(&dyn Backend, Vec<&'a Node>)> {
        let mut out: Vec<(&dyn Backend, Vec<&'a Node>)> = Vec::new();
        for n in nodes {
            let b = self.node(n);
            match out.iter_mut().find(|(o, _)| o.name() == b.name()) {
                Some((_, v)) => v.push(n),
                None => out.push((b, vec![n])),
            }
        }
        out
    }
}

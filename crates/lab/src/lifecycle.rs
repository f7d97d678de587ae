//! Node lifecycle in a running lab: stop, start and restart single nodes while the rest of the lab
//! runs (`labwire stop|start|restart`).
//!
//! A stopped node keeps its network namespace — registered under `/run/netns`, which holds it
//! after the node's processes are gone — and with it its interfaces, MACs and addresses; its link
//! ends are taken down so peers see the carrier drop. Each runtime stops and starts its own nodes
//! through the runtime seam ([`runtime::Backend::halt`], [`runtime::Backend::resume`]). Where a
//! runtime starts the node in a namespace of its own making (a container engine), this module
//! moves the node's interfaces from the kept namespace into it and re-registers the name. It owns
//! the journal entries that say a node stopped; it makes no links.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use runtime::backend::{LabDirs, Resume};
use runtime::process::ProcId;
use runtime::{Backend, Backends, NodeNetwork, Running};
use topology::{Lab, NetworkMode, Node};
use wire::netlink::Handle;
use wire::NetNs;

use crate::error::{wire as wire_err, Error, Result};
use crate::events::{self, Event};
use crate::lock::Lock;
use crate::state::{Entry, Journal, Recorded};
use crate::{paths, signals, wiring};

/// What to do with each node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Stop,
    Start,
    Restart,
}

impl Action {
    pub fn verb(self) -> &'static str {
        match self {
            Action::Stop => "stop",
            Action::Start => "start",
            Action::Restart => "restart",
        }
    }
}

/// What happened to one node.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub node: String,
    /// `stopped`, `started`, `restarted`, or `already stopped` / `already running`.
    pub what: &'static str,
    pub elapsed: Duration,
}

/// Stop, start or restart `nodes` of deployed lab `name`, one after the other. `grace` is how long
/// a node's processes may take to stop on their own before they are killed.
pub fn run(name: &str, nodes: &[String], action: Action, grace: Duration) -> Result<Vec<Outcome>> {
    if !unix::is_root() {
        return Err(Error::NotRoot {
            command: action.verb(),
        });
    }
    paths::check_lab_name(name)?;
    let _lock = Lock::lab_wait(name, Duration::from_secs(120))?;
    let dir = paths::lab_state_dir(name);
    let rec = Recorded::read(&dir);
    let lab = rec.lab.clone().ok_or_else(|| Error::NotDeployed {
        lab: name.to_string(),
    })?;
    let selected = select(&lab, nodes)?;
    let journal = Journal::open(&dir)?;
    let ctx = Ctx {
        lab: &lab,
        rec: &rec,
        journal: &journal,
        backends: Backends::new(),
        dirs: LabDirs {
            run: paths::lab_run_dir(name),
            state: dir.clone(),
            locks: paths::lock_dir(),
        },
        init: runtime::node::init_path()?,
    };
    signals::install();
    let mut out = Vec::new();
    for n in selected {
        let t = Instant::now();
        let proc = rec.node_proc(&n.name);
        let running = proc.is_some_and(|p| p.is_alive());
        let what = match action {
            Action::Stop if !running => "already stopped",
            Action::Stop => {
                ctx.stop(n, proc, grace)?;
                "stopped"
            }
            Action::Start if running => "already running",
            Action::Start => {
                ctx.start(n)?;
                "started"
            }
            Action::Restart => {
                ctx.stop(n, proc, grace)?;
                ctx.start(n)?;
                "restarted"
            }
        };
        log::info!("node {}: {what}", n.name);
        let node = n.name.clone();
        match (action, what) {
            (_, "already stopped" | "already running") => {}
            (Action::Stop, _) => events::emit(name, Event::NodeStopped { node }),
            (Action::Start, _) => events::emit(name, Event::NodeStarted { node }),
            (Action::Restart, _) => events::emit(name, Event::NodeRestarted { node }),
        }
        out.push(Outcome {
            node: n.name.clone(),
            what,
            elapsed: t.elapsed(),
        });
    }
    Ok(out)
}

/// The lab's workload nodes named in `names`, in the order given; a name that is not one is an
/// error naming the lab's nodes.
fn select<'a>(lab: &'a Lab, names: &[String]) -> Result<Vec<&'a Node>> {
    let workloads: Vec<&Node> = lab.nodes.iter().filter(|n| n.is_workload()).collect();
    let mut out = Vec::new();
    for name in names {
        match workloads.iter().find(|n| n.name == *name) {
            Some(n) if n.class == topology::KindClass::ExtContainer => {
                return Err(Error::Runtime(runtime::Error::NotOnThisRuntime {
                    node: n.name.clone(),
                    runtime: n.runtime,
                    what: "it is a container started outside labwire, which labwire neither stops nor starts".into(),
                }))
            }
            Some(n) if !out.iter().any(|o: &&Node| o.name == n.name) => out.push(*n),
            Some(_) => {}
            None => {
                return Err(Error::NoMatchingNode {
                    lab: lab.name.clone(),
                    nodes: workloads.iter().map(|n| n.name.clone()).collect(),
                })
            }
        }
    }
    Ok(out)
}

struct Ctx<'a> {
    lab: &'a Lab,
    rec: &'a Recorded,
    journal: &'a Journal,
    backends: Backends,
    dirs: LabDirs,
    init: PathBuf,
}

impl Ctx<'_> {
    fn running<'n>(&'n self, n: &'n Node, proc: ProcId) -> Running<'n> {
        Running {
            lab: self.lab,
            node: n,
            proc,
            run_dir: self.dirs.node_run(&n.name),
            init: &self.init,
        }
    }

    fn backend(&self, n: &Node) -> &dyn Backend {
        self.backends.node(n)
    }

    /// Whether the node has a network namespace of its own, kept while it is stopped.
    fn keeps_netns(n: &Node) -> bool {
        n.network_mode != NetworkMode::Host
    }

    fn stop(&self, n: &Node, proc: Option<ProcId>, grace: Duration) -> Result<()> {
        if let Some(p) = proc.filter(ProcId::is_alive) {
            self.backend(n).halt(&self.running(n, p), grace)?;
        }
        self.journal.record(&[Entry::Stopped {
            node: n.name.clone(),
        }])?;
        if Self::keeps_netns(n) {
            // The node's link ends go down, so their peers lose carrier as with a pulled cable.
            let ns = kept_netns(n)?;
            let mut h = Handle::in_netns(&ns).map_err(wire_err("open netlink"))?;
            let network = NodeNetwork::of(self.lab, n);
            for l in h.links().map_err(wire_err("list interfaces"))? {
                if l.up && network.links().any(|i| i.name == l.name) {
                    h.set_down(l.index)
                        .map_err(wire_err(format!("take {} of node {} down", l.name, n.name)))?;
                }
            }
        }
        Ok(())
    }

    fn start(&self, n: &Node) -> Result<()> {
        let backend = self.backend(n);
        let netns_path = netns_path(n);
        let images = if backend.uses_image_store() && n.image.is_some() {
            let mut one = self.lab.clone();
            one.nodes.retain(|x| x.name == n.name);
            crate::images::image_roots(&one, &self.dirs.state)?
        } else {
            Default::default()
        };
        let container = self
            .rec
            .containers()
            .into_iter()
            .find(|c| c.node == n.name)
            .and_then(|c| c.id);
        let r = Resume {
            lab: self.lab,
            node: n,
            dirs: &self.dirs,
            init: &self.init,
            image: images.get(&n.name),
            netns: &netns_path,
            container: container.as_deref(),
        };
        let proc = backend.resume(&r, self.journal)?;
        let result = self.bring_up(n, proc);
        if result.is_err() {
            // Nothing half-started stays behind: the node is stopped again, as it was.
            let _ = backend.halt(&self.running(n, proc), Duration::ZERO);
            let _ = self.journal.record(&[Entry::Stopped {
                node: n.name.clone(),
            }]);
        }
        result
    }

    /// The resumed node's interfaces back (moved into a namespace its runtime made anew), up and
    /// addressed; then its command starts and, for a guest, is waited for.
    fn bring_up(&self, n: &Node, proc: ProcId) -> Result<()> {
        let backend = self.backend(n);
        let home = NetNs::current().map_err(wire_err("open the host network namespace"))?;
        let running = self.running(n, proc);
        if !Self::keeps_netns(n) {
            backend.resume_start(&running, &home, &home)?;
            return Ok(());
        }
        let kept = kept_netns(n)?;
        let ns = NetNs::of_pid(proc.pid)
            .map_err(wire_err(format!("open the namespace of node {}", n.name)))?;
        let moved = self.adopt_interfaces(n, &kept, &ns)?;
        let network = NodeNetwork::of(self.lab, n);
        let cfg = wiring::NodeConfig {
            node: n,
            network: &network,
            // Interfaces moved between namespaces lose their addresses and routes.
            base: moved && n.network_mode == NetworkMode::Bridged && backend.labwire_wires_mgmt(n),
            addresses: backend.addresses_in_namespace(),
            only: None,
        };
        wiring::configure_node(&cfg, &ns, &home)?;
        backend.resume_start(&running, &ns, &home)?;
        if backend.waits_until_ready() {
            backend.wait_ready(&running, &signals::interrupted)?;
        }
        Ok(())
    }

    /// When the node runs in a new namespace, move every interface of the kept one into it (those
    /// the runtime made there itself stay its own) and register the node's name for the new one.
    /// Returns whether anything moved.
    fn adopt_interfaces(&self, n: &Node, kept: &NetNs, ns: &NetNs) -> Result<bool> {
        let ino = |x: &NetNs| {
            x.inode()
                .map_err(crate::error::io("read a network namespace's inode"))
        };
        let (old, new) = (ino(kept)?, ino(ns)?);
        if old == new {
            return Ok(false);
        }
        let mut from = Handle::in_netns(kept).map_err(wire_err("open netlink"))?;
        let mut to = Handle::in_netns(ns).map_err(wire_err("open netlink"))?;
        let present: Vec<String> = to
            .links()
            .map_err(wire_err("list interfaces"))?
            .into_iter()
            .map(|l| l.name)
            .collect();
        for l in from.links().map_err(wire_err("list interfaces"))? {
            if l.name == "lo" || present.contains(&l.name) {
                continue;
            }
            from.set_netns(l.index, ns).map_err(wire_err(format!(
                "move {} into the new namespace of node {}",
                l.name, n.name
            )))?;
        }
        self.journal.record(&[Entry::Netns {
            name: n.long_name.clone(),
            ino: Some(new),
        }])?;
        wire::netns::unregister_if(&n.long_name, old)
            .map_err(wire_err(format!("unregister namespace {}", n.long_name)))?;
        wire::netns::register(ns, &n.long_name)
            .map_err(wire_err(format!("register namespace {}", n.long_name)))?;
        Ok(true)
    }
}

/// Stop the running nodes among `nodes` of lab `lab` in parallel, each as its runtime does it
/// gracefully (SIGTERM, a container's stop signal, a VM's ACPI power-down), killed after `grace`:
/// the first step of `destroy --graceful`. Returns the failures, one line each.
pub fn halt_nodes(lab: &Lab, rec: &Recorded, nodes: &[&Node], grace: Duration) -> Vec<String> {
    let init = match runtime::node::init_path() {
        Ok(i) => i,
        Err(e) => return vec![crate::error::chain(&e)],
    };
    let backends = Backends::new();
    let run = paths::lab_run_dir(&lab.name);
    let running: Vec<(&Node, ProcId)> = nodes
        .iter()
        .filter(|n| n.is_workload())
        .filter_map(|n| {
            rec.node_proc(&n.name)
                .filter(ProcId::is_alive)
                .map(|p| (*n, p))
        })
        .collect();
    let results = crate::pool::run(
        &running,
        running.len().clamp(1, 64),
        &|| false,
        &|(n, proc): &(&Node, ProcId)| -> std::result::Result<(), String> {
            let node = Running {
                lab,
                node: n,
                proc: *proc,
                run_dir: run.join(&n.name),
                init: &init,
            };
            backends
                .node(n)
                .halt(&node, grace)
                .map_err(|e| format!("stop node {}: {}", n.name, runtime::chain(&e)))
        },
    );
    results
        .into_iter()
        .flatten()
        .filter_map(|r| r.err())
        .collect()
}

/// Where a node's network namespace is registered (`/run/netns/<long name>`).
pub(crate) fn netns_path(n: &Node) -> PathBuf {
    PathBuf::from(wire::netns::NETNS_RUN_DIR).join(&n.long_name)
}

/// A node's network namespace by its registered name (which holds it while the node is stopped).
pub(crate) fn kept_netns(n: &Node) -> Result<NetNs> {
    let path = netns_path(n);
    NetNs::open(&path).map_err(wire_err(format!(
        "open the network namespace of node {} ({})",
        n.name,
        path.display()
    )))
}

//! Containers started outside labwire, as a [`Backend`]: an `ext-container` node is such a
//! container, found by its name in the node's engine (Docker for native nodes, then Podman) and
//! waited for as containerlab does; its network namespace is joined and wired, never made, and it
//! is never stopped (nothing of it is recorded for destroy). The same lookup finds the `X` of a
//! `network-mode: container:X` that is not a node of the lab.

use std::time::{Duration, Instant};

use topology::{Lab, Node};
use wire::NetNs;

use crate::backend::{Backend, CreateNode, Deployment, Record, Running};
use crate::docker::{Engine, EngineKind};
use crate::node::ExecOutput;
use crate::process::ProcId;
use crate::{Error, Result};

/// `ext-container` nodes.
#[derive(Debug, Default)]
pub struct External;

impl Backend for External {
    fn name(&self) -> &'static str {
        "external"
    }

    /// Nothing is made from an image.
    fn uses_image_store(&self) -> bool {
        false
    }

    /// The container has its own management interface.
    fn labwire_wires_mgmt(&self, _node: &Node) -> bool {
        false
    }

    fn preflight(&self, _lab: &Lab, _nodes: &[&Node]) -> Vec<String> {
        Vec::new()
    }

    fn create(
        &self,
        _d: &Deployment<'_>,
        req: &CreateNode<'_>,
        _rec: &dyn Record,
    ) -> Result<ProcId> {
        find(req.node, &req.node.name, &|| false)
    }

    /// It runs already.
    fn start(&self, _node: &Running<'_>, _ns: &NetNs, _home: &NetNs) -> Result<()> {
        Ok(())
    }

    fn exec(&self, node: &Running<'_>, cmd: &str) -> Result<ExecOutput> {
        crate::native::exec_in_namespaces(node, cmd)
    }

    /// Not labwire's to stop.
    fn stop(&self, _node: &Running<'_>) -> bool {
        false
    }
}

/// The running container `name` outside the lab that node `n` needs, asked of `n`'s engine
/// (Docker, then Podman, for other runtimes) until it runs, for at most `LABWIRE_EXTERNAL_WAIT`
/// seconds (default 120); `interrupted` ends the wait.
pub fn find(n: &Node, name: &str, interrupted: &dyn Fn() -> bool) -> Result<ProcId> {
    let kinds: Vec<EngineKind> = match EngineKind::of(n.runtime) {
        Some(k) => vec![k],
        None => vec![EngineKind::Docker, EngineKind::Podman],
    };
    let engines: Vec<Engine> = kinds
        .into_iter()
        .filter_map(|k| Engine::connect(k).ok())
        .collect();
    let outside = |message: String| Error::NodeSetup {
        node: n.name.clone(),
        message,
    };
    if engines.is_empty() {
        return Err(outside(format!(
            "container {name} is outside the lab and no Docker or Podman engine answers to find it"
        )));
    }
    let wait = std::env::var("LABWIRE_EXTERNAL_WAIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let deadline = Instant::now() + Duration::from_secs(wait);
    let mut told = false;
    loop {
        for e in &engines {
            if let Some(p) = e.running_pid(name)?.and_then(ProcId::of) {
                return Ok(p);
            }
        }
        if interrupted() {
            return Err(outside(format!(
                "interrupted while waiting for container {name}"
            )));
        }
        if Instant::now() >= deadline {
            return Err(outside(format!(
                "container {name} (outside the lab) was not running after {wait} s"
            )));
        }
        if !told {
            log::warn!("node {}: waiting for container {name} to run", n.name);
            told = true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

//! Node runtimes: how a node of the lab becomes running processes with its own namespaces.
//!
//! [`backend::Backend`] is the seam: one implementation per runtime — `native` (namespaces +
//! labwire-init, no daemon), `engine` (containers through the Docker Engine API, of Docker or of
//! Podman's compatible service) and `vm` (a microVM per node inside a namespace made as for
//! native, behind its own VMM seam) — and [`backend::Backends`] picks one per node. What every
//! runtime shares about a node (image root, argv, environment, exec output) is in [`node`]; the
//! node's interfaces and addresses are described once in [`network`].
//!
//! A runtime owns a node's processes and mount/UTS/IPC/PID namespaces; the network namespace it
//! makes is handed to the `lab` layer, which wires links with `wire`.

pub mod backend;
pub mod docker;
pub mod engine;
pub mod external;
pub mod host_kernel;
pub mod native;
pub mod network;
pub mod node;
pub mod process;
pub mod spawner;
pub mod vm;

use std::path::PathBuf;

use thiserror::Error;

pub use backend::{Backend, Backends, Made, Record, Resume, Running, Status};
pub use network::{Interface, NodeNetwork};
pub use node::{ExecOutput, ImageRoot};

/// What went wrong in a runtime. Each message adds only this layer's context; the cause is the
/// `source`, printed after it by the binary.
#[derive(Debug, Error)]
pub enum Error {
    /// The node's init reported a failure while setting the node up.
    #[error("node {node}: {message}")]
    NodeSetup { node: String, message: String },
    #[error("{op}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}")]
    Wire {
        op: String,
        #[source]
        source: wire::Error,
    },
    #[error("{op}")]
    Image {
        op: String,
        #[source]
        source: image::Error,
    },
    /// A helper binary labwire ships is not where it should be.
    #[error("{name} not found next to {} (build the workspace with `cargo build --release`, or set {env})", beside.display())]
    MissingHelper {
        name: String,
        beside: PathBuf,
        env: String,
    },
    /// The engine a runtime needs does not answer.
    #[error("{}", docker::no_engine_message(*kind, socket))]
    NoEngine {
        kind: docker::EngineKind,
        socket: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An engine's socket variable holds something labwire cannot reach.
    #[error("{0}")]
    EngineAddress(String),
    /// A request to a container engine failed.
    #[error("{op}")]
    Engine {
        op: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// A container is not running right after it was started.
    #[error("container {name} is not running after start (status {status}, exit code {code}, error {error:?})")]
    ContainerNotRunning {
        name: String,
        status: String,
        code: String,
        error: String,
    },
    /// An engine network of the lab's name exists on another bridge.
    #[error("{product} network {network} exists on bridge `{found}`, but the topology puts the management network on bridge {bridge}; remove the network or set mgmt.bridge")]
    NetworkOnOtherBridge {
        product: &'static str,
        network: String,
        found: String,
        bridge: String,
    },
    /// The engine refuses to remove a network for endpoints no container holds.
    #[error("{product} still counts endpoints on it although no container is attached (a count the engine leaks now and then under concurrent container removal); restarting the engine recounts them, then `labwire destroy --name {lab} --cleanup` removes the network")]
    StaleEndpoints { product: &'static str, lab: String },
    /// An engine network of the lab's name exists and is not one labwire made.
    #[error("{product} network {network} exists and was not made by labwire: {reason}")]
    ForeignNetwork {
        product: &'static str,
        network: String,
        reason: String,
    },
    /// A firewall tool refused a rule.
    #[error("{tool}: accept traffic of bridge {bridge} in the DOCKER-USER chain: {stderr}")]
    Firewall {
        tool: String,
        bridge: String,
        stderr: String,
    },
    /// A VM node's guest is not up.
    #[error("{0}")]
    Guest(String),
    /// A VM node cannot be given what its configuration asks for.
    #[error("node {node}: {message}")]
    VmConfig { node: String, message: String },
    /// The operation exists only on other runtimes.
    #[error("node {node} runs on the {runtime} runtime; {what}")]
    NotOnThisRuntime {
        node: String,
        runtime: topology::Runtime,
        what: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let op = op.into();
    move |source| Error::Io { op, source }
}

pub(crate) fn wire_err(op: impl Into<String>) -> impl FnOnce(wire::Error) -> Error {
    let op = op.into();
    move |source| Error::Wire { op, source }
}

pub(crate) fn image_err(op: impl Into<String>) -> impl FnOnce(image::Error) -> Error {
    let op = op.into();
    move |source| Error::Image { op, source }
}

/// An error and its causes as one line, `a: b: c` (for lists of failures that are reported
/// together; a single error reaches the binary whole and is printed there).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

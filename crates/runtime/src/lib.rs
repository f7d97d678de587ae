//! Node runtimes: how a node of the lab becomes running processes with its own namespaces.
//!
//! `native` is labwire's own (namespaces + labwire-init, no daemon); `docker` makes containers through
//! the Docker Engine API, of Docker or of Podman's compatible service (the docker and podman
//! runtimes); `vm` runs a microVM per node inside a namespace made as for native. A runtime owns
//! a node's processes and mount/UTS/IPC/PID namespaces; the
//! network namespace it makes is handed to the `lab` layer, which wires links with `wire`.

pub mod docker;
pub mod native;
pub mod process;
pub mod vm;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The node's init reported a failure while setting the node up.
    #[error("node {node}: {message}")]
    NodeSetup { node: String, message: String },
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Wire(#[from] wire::Error),
    #[error("{0}")]
    Unsupported(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let op = op.into();
    move |source| Error::Io { op, source }
}

//! The lab layer's error: what happened, in this layer's words. A variant adds only this layer's
//! context; its cause is its `source`, and the binary prints the chain once (`a: b: c`).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The command needs root.
    #[error(
        "labwire {command} needs root: it creates namespaces, links and bridges (run it with sudo)"
    )]
    NotRoot { command: &'static str },
    /// Another labwire process holds the lock.
    #[error("{what} is busy: another labwire process is working on it")]
    Busy { what: String },
    #[error("lab {lab} is already deployed; destroy it first (`labwire destroy --name {}`) or deploy with --reconfigure", runtime::node::shell_quote(lab))]
    AlreadyDeployed { lab: String },
    #[error("lab {lab} runs, and a deploy cannot change it in place: {why}; deploy with --reconfigure to start it afresh")]
    CannotConverge { lab: String, why: String },
    #[error("lab {lab} is not deployed")]
    NotDeployed { lab: String },
    /// Everything the preflight found, before anything was touched.
    #[error("lab {lab} cannot be deployed:\n  {}", problems.join("\n  "))]
    Preflight { lab: String, problems: Vec<String> },
    #[error("node {node} is unhealthy: `{command}` failed {failures} times (last exit {code}: {stderr})")]
    Unhealthy {
        node: String,
        command: String,
        failures: u32,
        code: i32,
        stderr: String,
    },
    /// A node that should run does not.
    #[error("node {node} of lab {lab} is not running")]
    NotRunning { lab: String, node: String },
    #[error("no node of lab {lab} matches; its nodes are {}", nodes.join(", "))]
    NoMatchingNode { lab: String, nodes: Vec<String> },
    #[error("lab {lab} has no node {node}")]
    NoSuchNode { lab: String, node: String },
    #[error("node {node} of lab {lab} has no link on interface {iface}; its link interfaces are {known}")]
    NoSuchLinkEnd {
        lab: String,
        node: String,
        iface: String,
        known: String,
    },
    #[error("endpoint `{0}` is not `node:interface` (e.g. r1:eth1)")]
    BadEndpoint(String),
    /// A node of a partitioned lab that another host runs.
    #[error("node {node} of lab {lab} runs in partition {partition} (host {host}); this host runs partition {here}")]
    InOtherPartition {
        lab: String,
        node: String,
        partition: String,
        host: String,
        here: String,
    },
    /// What a destroy could not remove (it removed everything else).
    #[error("destroy of lab {lab} left things behind:\n  {}", failures.join("\n  "))]
    Teardown { lab: String, failures: Vec<String> },
    /// A deploy failed and so did removing what it had made.
    #[error("{failed}; the rollback also failed")]
    Rollback {
        failed: Box<Error>,
        #[source]
        rollback: Box<Error>,
    },
    #[error("stages cannot progress: nodes {} wait for each other", nodes.join(", "))]
    StagesStuck { nodes: Vec<String> },
    #[error("the static management addresses of {} are used by another lab on network {network}", nodes.join(", "))]
    AddressesTaken { nodes: Vec<String>, network: String },
    #[error("{0}")]
    MgmtAddresses(String),
    #[error("lab name `{name}`: {reason}")]
    BadLabName { name: String, reason: String },
    /// An image the lab names cannot be used.
    #[error("image `{reference}` is not in labwire's image store")]
    NotInStore { reference: String },
    #[error("{op}")]
    Image {
        op: String,
        #[source]
        source: image::Error,
    },
    #[error("the running kernel lacks the \"{kind}\" link type, which this topology uses (load its module, e.g. `modprobe {kind}`, or change the link type)")]
    KernelLacks { kind: String },
    #[error("{what} {name} does not exist in the host")]
    MissingHostInterface { what: &'static str, name: String },
    #[error("management bridge {bridge} has no port left for another leaf bridge ({nodes} nodes to attach); use another `mgmt.bridge` for part of the nodes")]
    MgmtNetworkFull { bridge: String, nodes: usize },
    #[error("host interface {name} already exists and is not one labwire made for this lab")]
    ForeignHostInterface { name: String },
    #[error("{count} host interfaces of this lab's previous deploy are still being freed by the kernel after 30 s")]
    StaleHostInterfaces { count: usize },
    #[error("{what} {name} exists in the host but is a {kind} interface, not a bridge")]
    NotABridge {
        what: &'static str,
        name: String,
        kind: String,
    },
    #[error("node {node} has no network namespace")]
    NoNamespace { node: String },
    #[error("{0}")]
    Path(String),
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
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    #[error(transparent)]
    Artifact(#[from] crate::artifacts::ArtifactError),
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let op = op.into();
    move |source| Error::Io { op, source }
}

pub(crate) fn wire(op: impl Into<String>) -> impl FnOnce(wire::Error) -> Error {
    let op = op.into();
    move |source| Error::Wire { op, source }
}

/// An error with its causes on one line (for failures listed together).
pub fn chain(e: &dyn std::error::Error) -> String {
    runtime::chain(e)
}

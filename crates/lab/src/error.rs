//! The lab layer's error: short messages that add only this layer's context.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
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

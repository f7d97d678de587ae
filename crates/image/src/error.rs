//! The image store's error type. Each message is short and names the file, entry or reference it is
//! about; an underlying cause is carried as the `source` and never repeated in the message.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on a file of the store or of an imported archive failed.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A layer entry was refused because writing it could land outside the layer directory.
    #[error("layer {layer}: refusing entry `{entry}`: {reason}")]
    UnsafeEntry {
        layer: String,
        entry: String,
        reason: String,
    },
    /// Writing one layer entry failed.
    #[error("layer {layer}: entry `{entry}`")]
    Entry {
        layer: String,
        entry: String,
        #[source]
        source: io::Error,
    },
    /// A layer stream is not a readable tar archive.
    #[error("layer {layer}: bad tar stream")]
    BadLayer {
        layer: String,
        #[source]
        source: io::Error,
    },
    /// Content did not hash to the digest it was announced under.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// An image's layers unpack to more than the store accepts per image.
    #[error("layer {layer}: the image unpacks to more than {limit} bytes, the most the image store accepts per image (set LABWIRE_IMAGE_MAX_UNPACKED to a larger size, e.g. 64G, to allow it)")]
    TooLarge { layer: String, limit: u64 },
    /// A digest string is not `sha256:` followed by 64 lowercase hex digits.
    #[error("invalid digest `{0}` (want sha256:<64 hex digits>)")]
    InvalidDigest(String),
    /// An imported archive or directory does not have the shape its format requires.
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    /// A JSON document (manifest, config, index) could not be parsed.
    #[error("{what}: invalid JSON")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A plain rootfs tarball carries no image name, so one must be given.
    #[error("{}: a plain rootfs tarball has no image name; give one with --name REF", path.display())]
    NeedsName { path: PathBuf },
    /// No image matches a reference.
    #[error("no image `{0}` in the local store")]
    NotFound(String),
    /// An id prefix matches more than one image.
    #[error("`{reference}` matches several images: {candidates}")]
    Ambiguous {
        reference: String,
        candidates: String,
    },
    /// A blob the store needs is not in it.
    #[error("blob {0} is missing from the store")]
    MissingBlob(String),
    /// A reference is not a valid image name.
    #[error("invalid image reference `{0}`")]
    InvalidReference(String),
    /// A registry answered a request with an unexpected HTTP status.
    #[error("registry {registry} answered {status} for {what}{hint}")]
    RegistryStatus {
        registry: String,
        status: u16,
        /// What was asked for: `manifest repo:tag`, `blob sha256:… of repo`, …
        what: String,
        /// Empty, or a short advice starting with a separator.
        hint: String,
    },
    /// A request to a registry (or its token service) failed without an answer, or its answer
    /// could not be read.
    #[error("registry {registry}: {what}")]
    RegistryRequest {
        registry: String,
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A registry's answer cannot be used (unsupported manifest, no image for this platform, …).
    #[error("registry {registry}: {reason}")]
    Registry { registry: String, reason: String },
}

/// The image store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach a path to an `io::Error`.
pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

//! labwire's local image store: OCI images kept on disk without any daemon.
//!
//! The store is a content-addressed directory (an OCI image layout): blobs under
//! `blobs/sha256/<hex>`, names in `index.json`, and each layer unpacked once, by the digest of its
//! uncompressed tar (its diff-id), under `layers/sha256/<hex>/`, ready to be an overlayfs lowerdir.
//! It imports plain rootfs tarballs, `docker save` archives and OCI image layouts ([`Store::import`]),
//! accepts blobs fetched by a registry client ([`Store::put_blob`], [`Store::tag`]), and resolves
//! names the way Docker does ([`normalize_reference`]), and pulls from registries ([`pull`]). Writers serialise on a `flock`; every file
//! and directory appears by an atomic rename, so readers never see a half-written one.
//!
//! This crate owns the store directory and nothing else: it mounts nothing and never writes outside
//! its root (layer unpacking is hardened against hostile tarballs, see the `unpack` module).

mod digest;
mod disk;
mod error;
mod import;
pub mod kernel;
mod lock;
mod oci;
mod pull;
mod reference;
mod store;
mod unpack;
mod vmlinux;

pub use disk::{find_tool, merge_layers, ROOT_HEADROOM};
pub use error::{Error, Result};
pub use import::rfc3339;
pub use kernel::{Kernel, Modules};
pub use pull::{pull, pull_report, PullOptions, PullReport};
pub use reference::normalize_reference;
pub use store::{Image, ImageConfig, Store, DEFAULT_ROOT};

//! The store itself: its directory layout, blobs, the name index, unpacked layers, and the public
//! operations on them (list, resolve, tag, remove, layer directories).
//!
//! Layout under the root:
//! `oci-layout`, `index.json` (names → manifest digests, rewritten atomically under `lock`),
//! `blobs/sha256/<hex>`, `layers/sha256/<diff-id hex>/` (unpacked trees), `locks/` (one lock file
//! per layer being unpacked), `tmp/` (work files, renamed into place when complete).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::digest::{decompress, digest_hex, is_lower_hex, HashingReader};
use crate::error::{io_err, Error, Result};
use crate::lock::FileLock;
use crate::oci::{
    ConfigFile, Descriptor, Index, Manifest, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME,
    MEDIA_OCI_MANIFEST,
};
use crate::reference::{is_valid_reference, normalize_reference};
use crate::unpack::unpack_layer;

/// Where [`Store::open_default`] keeps images unless `LABWIRE_IMAGE_DIR` says otherwise.
pub const DEFAULT_ROOT: &str = "/var/lib/labwire/images";

/// The largest JSON document (manifest, config, index) the store will read into memory.
pub(crate) const MAX_JSON: u64 = 64 << 20;

/// A local image store rooted at one directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// One image in the store, identified by its config digest and reached through its manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Image {
    /// The config digest (`sha256:…`), as `docker images --no-trunc` shows it.
    pub id: String,
    /// The manifest digest.
    pub manifest: String,
    /// Every normalised name (`docker.io/library/debian:latest`) that refers to this manifest.
    pub names: Vec<String>,
    /// Config plus layer blobs, in bytes (compressed layers count as stored).
    pub size: u64,
    /// The layers' files once unpacked, in bytes (what a gzip bomb hides from `size`); `None`
    /// while a layer is not unpacked yet.
    pub unpacked: Option<u64>,
    pub created: Option<String>,
    pub config: ImageConfig,
    /// Layer blob digests, bottom layer first.
    pub layers: Vec<String>,
    /// Digests of the uncompressed layer tars, bottom layer first.
    pub diff_ids: Vec<String>,
}

/// The most one image (all its layers) may unpack to by default.
pub const DEFAULT_MAX_UNPACKED: u64 = 32 << 30;

/// The per-image unpacked size limit: `LABWIRE_IMAGE_MAX_UNPACKED` (bytes, or with a K, M, G or
/// T suffix), else [`DEFAULT_MAX_UNPACKED`].
pub fn max_unpacked() -> u64 {
    std::env::var("LABWIRE_IMAGE_MAX_UNPACKED")
        .ok()
        .and_then(|v| parse_size(&v))
        .unwrap_or(DEFAULT_MAX_UNPACKED)
}

/// `123`, `10K`, `512M`, `64G`, `1T` (powers of 1024) as bytes.
fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (digits, shift) = match v.char_indices().last()? {
        (i, 'k' | 'K') => (&v[..i], 10),
        (i, 'm' | 'M') => (&v[..i], 20),
        (i, 'g' | 'G') => (&v[..i], 30),
        (i, 't' | 'T') => (&v[..i], 40),
        _ => (v, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Remove what killed imports and unpacks left in `tmp/`: each entry's name carries the id of
/// the process that made it (see [`Store::tmp_path`]), and one whose process is gone is residue.
fn sweep_tmp(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.rsplit('-').nth(2))
            .and_then(|p| p.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let p = e.path();
        let _ = if e.file_type().is_ok_and(|t| t.is_dir()) {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
    }
}

/// Create a new file 0600: blobs and disks are image content, private like the store root.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// What an image says about how to run it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
}

impl Store {
    /// Open the store at `$LABWIRE_IMAGE_DIR`, or [`DEFAULT_ROOT`] when that is unset or empty.
    pub fn open_default() -> Result<Store> {
        let root = std::env::var_os("LABWIRE_IMAGE_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
        Store::open(&root)
    }

    /// Open the store at `root`, creating its layout if missing.
    pub fn open(root: &Path) -> Result<Store> {
        let store = Store {
            root: root.to_path_buf(),
        };
        // Everything below the root is image content or derived from it (blobs, unpacked layers
        // with set-uid programs, VM disks): the root is 0700, corrected if it exists.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(io_err(root))?;
        fs::set_permissions(root, fs::Permissions::from_mode(0o700)).map_err(io_err(root))?;
        fs::create_dir_all(store.root.join("blobs/sha256")).map_err(io_err(root))?;
        for private in ["layers", "tmp", "locks"] {
            // Unpacked layers hold set-uid programs: keep them out of other users' reach.
            let dir = root.join(private);
            if !dir.exists() {
                match fs::DirBuilder::new().mode(0o700).create(&dir) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                        return Err(io_err(&dir)(e))
                    }
                    _ => {}
                }
            }
        }
        fs::create_dir_all(root.join("layers/sha256")).map_err(io_err(root))?;
        // Under the store lock, so no import is between making a temporary entry and using it;
        // while one runs, the next store operation sweeps instead.
        if let Some(_lock) = FileLock::try_exclusive(&root.join("lock"))? {
            sweep_tmp(&root.join("tmp"));
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            store.write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Import a file or directory, detecting its format: a plain rootfs tarball (optionally gzip or
    /// zstd compressed; one layer, like `docker import`), a `docker save` archive (legacy or OCI
    /// layout), or an OCI image layout (directory, or a tar of one). `name` tags the image;
    /// otherwise the names inside the archive are used. Every layer is unpacked (and so checked)
    /// before any name is written: a hostile layer fails the import.
    pub fn import(&self, src: &Path, name: Option<&str>) -> Result<Image> {
        crate::import::import(self, src, name)
    }

    /// Every image that has a name, in the order they were first named.
    pub fn list(&self) -> Result<Vec<Image>> {
        let index = self.read_index()?;
        let mut out = Vec::new();
        for digest in manifest_digests(&index) {
            out.push(self.load_image(&digest, names_of(&index, &digest))?);
        }
        Ok(out)
    }

    /// Find an image by name (normalised as Docker does), full config or manifest digest
    /// (`sha256:…`), or unique id prefix of at least 4 hex digits.
    pub fn resolve(&self, reference: &str) -> Result<Option<Image>> {
        let index = self.read_index()?;
        Ok(self
            .resolve_in(&index, reference)?
            .map(|(image, _by_name)| image))
    }

    /// Remove a name (or, for a digest or id, every name of that image). Returns the names
    /// removed. An image no name refers to any more loses its blobs and unpacked layers, except
    /// those another image shares.
    pub fn remove(&self, reference: &str) -> Result<Vec<String>> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let (image, by_name) = self
            .resolve_in(&index, reference)?
            .ok_or_else(|| Error::NotFound(reference.to_string()))?;
        let removed: Vec<String> = if by_name {
            vec![normalize_reference(reference)]
        } else {
            image.names.clone()
        };
        index.manifests.retain(|d| {
            let name = d.annotation(ANNOTATION_IMAGE_NAME).unwrap_or_default();
            !(d.digest == image.manifest && removed.iter().any(|r| r == name))
        });
        self.write_index(&index)?;
        if !index.manifests.iter().any(|d| d.digest == image.manifest) {
            self.collect_garbage(&index, &image)?;
        }
        Ok(removed)
    }

    /// The unpacked layer directories of `image`, bottom layer first: overlayfs lowerdirs are
    /// these in reverse order. Each layer is unpacked once per diff-id, under a per-layer lock,
    /// into a temporary directory renamed into place, and checked against its diff-id.
    pub fn layer_dirs(&self, image: &Image) -> Result<Vec<PathBuf>> {
        if image.layers.len() != image.diff_ids.len() {
            return Err(Error::Format {
                path: self.blob_path(&image.id)?,
                reason: format!(
                    "config lists {} diff_ids for {} layers",
                    image.diff_ids.len(),
                    image.layers.len()
                ),
            });
        }
        // The cap is per image: each layer may use what the layers below it left.
        let cap = max_unpacked();
        let mut used = 0u64;
        let mut dirs = Vec::with_capacity(image.layers.len());
        for (blob, diff_id) in image.layers.iter().zip(&image.diff_ids) {
            let (_, dir, size) = self
                .unpack_blob(blob, Some(diff_id), cap.saturating_sub(used))
                .map_err(|e| match e {
                    // The image's cap, not what was left of it for this layer.
                    Error::TooLarge { layer, .. } => Error::TooLarge { layer, limit: cap },
                    e => e,
                })?;
            used = used.saturating_add(size);
            if used > cap {
                return Err(Error::TooLarge {
                    layer: blob.clone(),
                    limit: cap,
                });
            }
            dirs.push(dir);
        }
        Ok(dirs)
    }

    /// Store a blob fetched elsewhere, checking that it hashes to `digest`. A blob already present
    /// is not read again. Returns the blob's path.
    pub fn put_blob(&self, digest: &str, data: &mut dyn Read) -> Result<PathBuf> {
        self.write_blob(data, Some(digest))?;
        self.blob_path(digest)
    }

    /// Whether the store holds the blob `digest`.
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    /// Name the manifest `manifest_digest` (whose config and layer blobs must all be present),
    /// moving `name` away from any image it named before.
    pub fn tag(&self, name: &str, manifest_digest: &str) -> Result<Image> {
        let name = checked_name(name)?;
        let _lock = self.lock()?;
        self.tag_locked(std::slice::from_ref(&name), manifest_digest)?;
        let index = self.read_index()?;
        self.load_image(manifest_digest, names_of(&index, manifest_digest))
    }

    /// Like [`Store::tag`], for a name already normalised that may carry a digest
    /// (`registry/repo@sha256:…`, as a pull by digest names its image).
    pub(crate) fn tag_normalized(&self, name: &str, manifest_digest: &str) -> Result<Image> {
        if !is_valid_reference(name) {
            return Err(Error::InvalidReference(name.to_string()));
        }
        let name = normalize_reference(name);
        let _lock = self.lock()?;
        self.tag_locked(std::slice::from_ref(&name), manifest_digest)?;
        let index = self.read_index()?;
        self.load_image(manifest_digest, names_of(&index, manifest_digest))
    }

    // ---- crate-internal pieces ----

    pub(crate) fn lock(&self) -> Result<FileLock> {
        FileLock::exclusive(&self.root.join("lock"))
    }

    pub(crate) fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join("blobs/sha256").join(digest_hex(digest)?))
    }

    /// A fresh, unused path under `tmp/`.
    pub(crate) fn tmp_path(&self, prefix: &str) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{prefix}-{}-{n}-{nanos:08x}", std::process::id()))
    }

    /// Write `data` to a temporary file, then rename it to `path`.
    pub(crate) fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<()> {
        let tmp = self.tmp_path("file");
        let result = (|| {
            let mut f = create_private(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(io_err(path))
    }

    /// Copy `data` into the blob store, hashing it. With `expected`, the content must hash to it
    /// (and a blob already present is not read). Returns (digest, size, whether it was new).
    pub(crate) fn write_blob(
        &self,
        data: &mut dyn Read,
        expected: Option<&str>,
    ) -> Result<(String, u64, bool)> {
        if let Some(d) = expected {
            let path = self.blob_path(d)?;
            if let Ok(meta) = fs::metadata(&path) {
                return Ok((d.to_string(), meta.len(), false));
            }
        }
        let tmp = self.tmp_path("blob");
        let copied = (|| {
            let mut f = create_private(&tmp)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            let mut size = 0u64;
            loop {
                let n = match data.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                hasher.update(&buf[..n]);
                f.write_all(&buf[..n])?;
                size += n as u64;
            }
            f.sync_all()?;
            Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
        })();
        let (actual, size) = match copied {
            Ok(v) => v,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(io_err(&tmp)(e));
            }
        };
        if let Some(d) = expected {
            if d != actual {
                let _ = fs::remove_file(&tmp);
                return Err(Error::DigestMismatch {
                    what: "blob".into(),
                    expected: d.to_string(),
                    actual,
                });
            }
        }
        let path = self.blob_path(&actual)?;
        let new = !path.exists();
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        Ok((actual, size, new))
    }

    /// Read a whole (small) blob.
    pub(crate) fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let file = File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::MissingBlob(digest.to_string())
            } else {
                io_err(&path)(e)
            }
        })?;
        let mut data = Vec::new();
        file.take(MAX_JSON)
            .read_to_end(&mut data)
            .map_err(io_err(&path))?;
        Ok(data)
    }

    pub(crate) fn read_index(&self) -> Result<Index> {
        let path = self.root.join("index.json");
        match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|source| Error::Json {
                what: path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Replace `index.json` (call with the store lock held).
    pub(crate) fn write_index(&self, index: &Index) -> Result<()> {
        let data = serde_json::to_vec_pretty(index).expect("an index always serialises");
        self.write_atomic(&self.root.join("index.json"), &data)
    }

    /// Point each of `names` (already normalised) at `manifest_digest`, after checking that the
    /// manifest, its config and its layers are all present. Call with the store lock held.
    pub(crate) fn tag_locked(&self, names: &[String], manifest_digest: &str) -> Result<()> {
        let raw = self.read_blob(manifest_digest)?;
        let manifest = parse_manifest(&raw, manifest_digest)?;
        for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if !self.has_blob(&d.digest) {
                return Err(Error::MissingBlob(d.digest.clone()));
            }
        }
        let media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| MEDIA_OCI_MANIFEST.to_string());
        let mut index = self.read_index()?;
        index.manifests.retain(|d| {
            let name = d.annotation(ANNOTATION_IMAGE_NAME).unwrap_or_default();
            !names.iter().any(|n| n == name)
        });
        for name in names {
            // `repo:tag` → tag; `repo@sha256:…` → the digest; `repo:tag@sha256:…` → tag.
            let tag = match name.split_once('@') {
                Some((repo, digest)) => repo
                    .rsplit_once(':')
                    .filter(|(_, t)| !t.contains('/'))
                    .map_or(digest, |(_, t)| t),
                None => name
                    .rsplit_once(':')
                    .filter(|(_, t)| !t.contains('/'))
                    .map_or("latest", |(_, t)| t),
            };
            let annotations = BTreeMap::from([
                (ANNOTATION_IMAGE_NAME.to_string(), name.clone()),
                (ANNOTATION_REF_NAME.to_string(), tag.to_string()),
            ]);
            index.manifests.push(Descriptor {
                media_type: media_type.clone(),
                digest: manifest_digest.to_string(),
                size: raw.len() as u64,
                annotations: Some(annotations),
                platform: None,
            });
        }
        self.write_index(&index)
    }

    /// Build an [`Image`] from its manifest and config blobs.
    pub(crate) fn load_image(&self, manifest_digest: &str, names: Vec<String>) -> Result<Image> {
        let manifest = parse_manifest(&self.read_blob(manifest_digest)?, manifest_digest)?;
        let raw = self.read_blob(&manifest.config.digest)?;
        let config: ConfigFile = serde_json::from_slice(&raw).map_err(|source| Error::Json {
            what: format!("config {}", manifest.config.digest),
            source,
        })?;
        let c = config.config.unwrap_or_default();
        let size = manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>();
        Ok(Image {
            id: manifest.config.digest.clone(),
            manifest: manifest_digest.to_string(),
            names,
            size,
            unpacked: self.unpacked_size(&config.rootfs.diff_ids),
            created: config.created,
            config: ImageConfig {
                entrypoint: c.entrypoint.unwrap_or_default(),
                cmd: c.cmd.unwrap_or_default(),
                env: c.env.unwrap_or_default(),
                working_dir: c.working_dir.filter(|w| !w.is_empty()),
                user: c.user.filter(|u| !u.is_empty()),
                labels: c.labels.unwrap_or_default(),
                stop_signal: c.stop_signal.filter(|s| !s.is_empty()),
            },
            layers: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
            diff_ids: config.rootfs.diff_ids,
        })
    }

    /// Resolve against a given index; also says whether the reference matched a name.
    fn resolve_in(&self, index: &Index, reference: &str) -> Result<Option<(Image, bool)>> {
        let reference = reference.trim();
        if is_valid_reference(reference) {
            let name = normalize_reference(reference);
            if let Some(d) = index
                .manifests
                .iter()
                .find(|d| d.annotation(ANNOTATION_IMAGE_NAME) == Some(name.as_str()))
            {
                let image = self.load_image(&d.digest, names_of(index, &d.digest))?;
                return Ok(Some((image, true)));
            }
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if hex.len() < 4 || hex.len() > 64 || !hex.bytes().all(is_lower_hex) {
            return Ok(None);
        }
        let full = format!("sha256:{hex}");
        let mut found: Vec<Image> = Vec::new();
        for digest in manifest_digests(index) {
            let image = self.load_image(&digest, names_of(index, &digest))?;
            let id_hex = image.id.strip_prefix("sha256:").unwrap_or_default();
            if image.manifest == full || id_hex.starts_with(hex) {
                found.push(image);
            }
        }
        let ids: BTreeSet<&str> = found.iter().map(|i| i.id.as_str()).collect();
        if ids.len() > 1 && !found.iter().any(|i| i.manifest == full) {
            return Err(Error::Ambiguous {
                reference: reference.to_string(),
                candidates: ids.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
        let pick = match found.iter().position(|i| i.manifest == full) {
            Some(i) => found.swap_remove(i),
            None => match found.into_iter().next() {
                Some(i) => i,
                None => return Ok(None),
            },
        };
        Ok(Some((pick, false)))
    }

    /// Delete the blobs and layer directories of `gone` that no image left in `index` uses.
    /// Call with the store lock held, after `gone` lost its last name.
    fn collect_garbage(&self, index: &Index, gone: &Image) -> Result<()> {
        let mut keep_blobs = BTreeSet::new();
        let mut keep_layers = BTreeSet::new();
        for digest in manifest_digests(index) {
            // If a remaining image cannot be read, keep everything rather than guess.
            let image = self.load_image(&digest, Vec::new())?;
            keep_blobs.insert(image.manifest);
            keep_blobs.insert(image.id);
            keep_blobs.extend(image.layers);
            keep_layers.extend(image.diff_ids);
        }
        if !keep_blobs.contains(&gone.id) {
            // Its VM root disk, if one was built (see `disk`).
            let disk = crate::disk::root_disk_path(&self.root, &gone.id);
            match fs::remove_file(&disk) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(disk)(e)),
                _ => {}
            }
        }
        let blobs = [&gone.manifest, &gone.id].into_iter().chain(&gone.layers);
        for blob in blobs {
            if !keep_blobs.contains(blob) {
                let path = self.blob_path(blob)?;
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(path)(e)),
                    _ => {}
                }
            }
        }
        for diff_id in &gone.diff_ids {
            if keep_layers.contains(diff_id) {
                continue;
            }
            let hex = digest_hex(diff_id)?;
            let dir = self.root.join("layers/sha256").join(hex);
            // Rename first, so no half-deleted layer is ever visible under its name.
            let doomed = self.tmp_path("gc");
            match fs::rename(&dir, &doomed) {
                Ok(()) => fs::remove_dir_all(&doomed).map_err(io_err(&doomed))?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(dir)(e)),
            }
            let _ = fs::remove_file(self.root.join("locks").join(format!("{hex}.lock")));
            let _ = fs::remove_file(self.layer_size_path(hex));
        }
        Ok(())
    }

    /// Where the unpacked size of layer `hex` (its diff-id's hex) is recorded.
    fn layer_size_path(&self, hex: &str) -> PathBuf {
        self.root.join("layers").join(format!("sha256-{hex}.size"))
    }

    /// The unpacked size of `image` (its layers' files, holes included), when every layer
    /// recorded one (layers unpacked by an earlier labwire did not).
    fn unpacked_size(&self, diff_ids: &[String]) -> Option<u64> {
        diff_ids.iter().try_fold(0u64, |sum, d| {
            let hex = digest_hex(d).ok()?;
            let text = fs::read_to_string(self.layer_size_path(hex)).ok()?;
            Some(sum + text.trim().parse::<u64>().ok()?)
        })
    }

    /// The recorded unpacked size of the layer `diff_id` (0 when an earlier labwire did not
    /// record it).
    fn layer_size(&self, diff_id: &str) -> u64 {
        digest_hex(diff_id)
            .ok()
            .and_then(|hex| fs::read_to_string(self.layer_size_path(hex)).ok())
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Unpack the layer blob `blob` (gzip, zstd or plain tar), to at most `limit` bytes, unless
    /// its diff-id's directory exists. With `diff_id`, the uncompressed stream must hash to it.
    /// Returns the diff-id, the layer directory and its unpacked size.
    pub(crate) fn unpack_blob(
        &self,
        blob: &str,
        diff_id: Option<&str>,
        limit: u64,
    ) -> Result<(String, PathBuf, u64)> {
        let layers = self.root.join("layers/sha256");
        let _lock = match diff_id {
            Some(d) => {
                let dir = layers.join(digest_hex(d)?);
                if dir.is_dir() {
                    return Ok((d.to_string(), dir, self.layer_size(d)));
                }
                let lock = FileLock::exclusive(
                    &self
                        .root
                        .join("locks")
                        .join(format!("{}.lock", digest_hex(d)?)),
                )?;
                if dir.is_dir() {
                    return Ok((d.to_string(), dir, self.layer_size(d)));
                }
                Some(lock)
            }
            None => None,
        };
        let blob_path = self.blob_path(blob)?;
        if !blob_path.is_file() {
            return Err(Error::MissingBlob(blob.to_string()));
        }
        let tmp = self.tmp_path("layer");
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&tmp)
            .map_err(io_err(&tmp))?;
        let mut unpacked_bytes = 0;
        let unpacked = (|| {
            let file = File::open(&blob_path).map_err(io_err(&blob_path))?;
            let (_, reader) =
                decompress(BufReader::new(file)).map_err(|source| Error::BadLayer {
                    layer: blob.to_string(),
                    source,
                })?;
            let (reader, size) = unpack_layer(HashingReader::new(reader), &tmp, blob, limit)?;
            unpacked_bytes = size;
            let (actual, _) = reader.finish().map_err(|source| Error::BadLayer {
                layer: blob.to_string(),
                source,
            })?;
            if let Some(expected) = diff_id {
                if expected != actual {
                    return Err(Error::DigestMismatch {
                        what: format!("layer {blob}"),
                        expected: expected.to_string(),
                        actual,
                    });
                }
            }
            Ok(actual)
        })();
        let actual = match unpacked {
            Ok(a) => a,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        // The unpacked root gets the usual root directory mode whatever the tar said.
        let _ = fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755));
        // Flush the tree before its name appears, so a crash never leaves a named, partial layer.
        if let Ok(dir) = File::open(&tmp) {
            // SAFETY: syncfs on a descriptor we hold open; no memory is passed.
            unsafe { libc::syncfs(dir.as_raw_fd()) };
        }
        let hex = digest_hex(&actual)?;
        let _ = self.write_atomic(
            &self.layer_size_path(hex),
            unpacked_bytes.to_string().as_bytes(),
        );
        let dir = layers.join(hex);
        match fs::rename(&tmp, &dir) {
            Ok(()) => {}
            // Someone else unpacked the same layer meanwhile: theirs is as good as ours.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) => {
                let _ = fs::remove_dir_all(&tmp);
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(io_err(dir)(e));
            }
        }
        Ok((actual, dir, unpacked_bytes))
    }
}

/// Check and normalise an image name given by a user.
pub(crate) fn checked_name(name: &str) -> Result<String> {
    if !is_valid_reference(name) || name.contains('@') {
        return Err(Error::InvalidReference(name.to_string()));
    }
    Ok(normalize_reference(name))
}

pub(crate) fn parse_manifest(raw: &[u8], digest: &str) -> Result<Manifest> {
    serde_json::from_slice(raw).map_err(|source| Error::Json {
        what: format!("manifest {digest}"),
        source,
    })
}

/// The distinct manifest digests of an index, in first-seen order.
fn manifest_digests(index: &Index) -> Vec<String> {
    let mut seen = BTreeSet::new();
    index
        .manifests
        .iter()
        .filter(|d| seen.insert(d.digest.clone()))
        .map(|d| d.digest.clone())
        .collect()
}

/// The names the index gives the manifest `digest`.
fn names_of(index: &Index, digest: &str) -> Vec<String> {
    index
        .manifests
        .iter()
        .filter(|d| d.digest == digest)
        .filter_map(|d| d.annotation(ANNOTATION_IMAGE_NAME).map(str::to_string))
        .collect()
}

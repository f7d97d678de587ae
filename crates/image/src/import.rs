//! `Store::import`: telling a plain rootfs tarball from a `docker save` archive or an OCI image
//! layout (directory or tar, optionally gzip/zstd compressed), and bringing its blobs into the
//! store.
//!
//! A tar is read once: while every top-level name is one an image archive has (`manifest.json`,
//! `index.json`, `oci-layout`, `blobs/`, `<64 hex>/…`, `repositories`), its files are hashed into a
//! staging directory under the store's `tmp/`; at the first other name it is taken for a rootfs and
//! stored whole as one layer blob. Staged files become blobs by hard link, so nothing is copied
//! twice. Everything happens under the store lock; blobs this import created are deleted again if
//! it fails. Reads only the source; writes only inside the store.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest as _, Sha256};

use crate::digest::{decompress, digest_hex, is_lower_hex, sha256_of, Compression};
use crate::error::{io_err, Error, Result};
use crate::oci::{
    host_architecture, ConfigFile, ContainerConfig, Descriptor, DockerSaveEntry, Index, Manifest,
    RootFs, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, MEDIA_OCI_CONFIG, MEDIA_OCI_MANIFEST,
};
use crate::store::{checked_name, parse_manifest, Image, Store, MAX_JSON};

pub(crate) fn import(store: &Store, src: &Path, name: Option<&str>) -> Result<Image> {
    let name = name.map(checked_name).transpose()?;
    let _lock = store.lock()?;
    let mut created = Vec::new();
    let result = import_locked(store, src, name, &mut created);
    if result.is_err() {
        for digest in &created {
            if let Ok(path) = store.blob_path(digest) {
                let _ = fs::remove_file(path);
            }
        }
    }
    result
}

fn import_locked(
    store: &Store,
    src: &Path,
    name: Option<String>,
    created: &mut Vec<String>,
) -> Result<Image> {
    let meta = fs::metadata(src).map_err(io_err(src))?;
    if !meta.is_dir() && !meta.is_file() {
        return Err(Error::Format {
            path: src.to_path_buf(),
            reason: "not a regular file or a directory (devices, FIFOs and sockets are refused: they may never end)".into(),
        });
    }
    let source = if meta.is_dir() {
        Source {
            origin: src.to_path_buf(),
            files: Files::Dir(src.to_path_buf()),
        }
    } else {
        match scan_tar(store, src)? {
            Some(source) => source,
            None => return import_rootfs(store, src, name, created),
        }
    };
    let mut images = if source.exists("index.json")
        && (source.exists("oci-layout") || !source.exists("manifest.json"))
    {
        import_oci_layout(store, &source, created)?
    } else if source.exists("manifest.json") {
        import_docker_save(store, &source, created)?
    } else {
        return Err(source.format("no index.json or manifest.json: not an image archive"));
    };
    if images.is_empty() {
        return Err(source.format("the archive holds no image"));
    }
    if let Some(name) = name {
        if images.len() > 1 {
            return Err(source.format(&format!(
                "the archive holds {} images; a name applies to one",
                images.len()
            )));
        }
        images[0].0 = vec![name];
    }
    // Unpack (and so vet) every layer before any name makes the image visible.
    for (names, digest) in &images {
        if names.is_empty() {
            return Err(Error::NeedsName {
                path: src.to_path_buf(),
            });
        }
        store.layer_dirs(&store.load_image(digest, Vec::new())?)?;
    }
    for (names, digest) in &images {
        store.tag_locked(names, digest)?;
    }
    let (names, digest) = &images[0];
    store.load_image(digest, names.clone())
}

/// `docker import`: the whole file becomes one layer blob, with a minimal config.
fn import_rootfs(
    store: &Store,
    src: &Path,
    name: Option<String>,
    created: &mut Vec<String>,
) -> Result<Image> {
    let name = name.ok_or_else(|| Error::NeedsName {
        path: src.to_path_buf(),
    })?;
    let mut file = File::open(src).map_err(io_err(src))?;
    let mtime = file
        .metadata()
        .and_then(|m| m.modified())
        .map_err(io_err(src))?
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let layer = put(store, &mut file, None, created)?;
    let compression = blob_compression(store, &layer.0)?;
    let (diff_id, _, _) = store.unpack_blob(&layer.0, None, crate::store::max_unpacked())?;
    let config = ConfigFile {
        // The file's mtime, not the clock: importing the same file twice gives the same image.
        created: Some(rfc3339(mtime)),
        architecture: Some(host_architecture().to_string()),
        os: Some("linux".to_string()),
        config: Some(ContainerConfig::default()),
        rootfs: RootFs {
            kind: "layers".to_string(),
            diff_ids: vec![diff_id],
        },
    };
    let config = serde_json::to_vec(&config).expect("a config always serialises");
    let config = put(store, &mut config.as_slice(), None, created)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_OCI_MANIFEST.to_string()),
        config: descriptor(MEDIA_OCI_CONFIG, config),
        layers: vec![descriptor(compression.layer_media_type(), layer)],
    };
    let manifest = serde_json::to_vec(&manifest).expect("a manifest always serialises");
    let (digest, _) = put(store, &mut manifest.as_slice(), None, created)?;
    store.tag_locked(std::slice::from_ref(&name), &digest)?;
    store.load_image(&digest, vec![name])
}

/// An OCI image layout: `index.json` lists manifests (or nested indexes) by digest.
fn import_oci_layout(
    store: &Store,
    source: &Source,
    created: &mut Vec<String>,
) -> Result<Vec<(Vec<String>, String)>> {
    let index: Index = source.json("index.json")?;
    let docker: Option<Vec<DockerSaveEntry>> = if source.exists("manifest.json") {
        Some(source.json("manifest.json")?)
    } else {
        None
    };
    let mut images = Vec::new();
    for desc in &index.manifests {
        let manifest_desc = pick_platform(source, desc, 0)?;
        let digest = &manifest_desc.digest;
        let raw = source.blob_bytes(digest)?;
        let manifest = parse_manifest(&raw, digest)?;
        for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
            source.commit(store, &blob_name(&d.digest)?, Some(&d.digest), created)?;
        }
        put(store, &mut raw.as_slice(), Some(digest), created)?;

        let mut names = Vec::new();
        if let Some(n) = desc.annotation(ANNOTATION_IMAGE_NAME) {
            names.push(checked_name(n)?);
        } else if let Some(n) = desc.annotation(ANNOTATION_REF_NAME) {
            // Often only a tag ("latest"), which names nothing by itself.
            if n.contains('/') || n.contains(':') {
                names.push(checked_name(n)?);
            }
        }
        if names.is_empty() {
            let config_path = blob_name(&manifest.config.digest)?;
            for entry in docker.iter().flatten() {
                if entry.config.trim_start_matches("./") == config_path {
                    for tag in entry.repo_tags.iter().flatten() {
                        names.push(checked_name(tag)?);
                    }
                }
            }
        }
        images.push((names, digest.clone()));
    }
    Ok(images)
}

/// Follow an index entry to an image manifest: a nested index or manifest list is narrowed to
/// linux on this machine's architecture.
fn pick_platform(source: &Source, desc: &Descriptor, depth: u32) -> Result<Descriptor> {
    digest_hex(&desc.digest)?;
    if !desc.is_index() {
        return Ok(desc.clone());
    }
    if depth > 4 {
        return Err(source.format("image indexes nested too deep"));
    }
    let raw = source.blob_bytes(&desc.digest)?;
    let nested: Index = serde_json::from_slice(&raw).map_err(|source| Error::Json {
        what: format!("index {}", desc.digest),
        source,
    })?;
    let arch = host_architecture();
    let found = nested.manifests.iter().find(|m| {
        m.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
    });
    let chosen = match (found, nested.manifests.as_slice()) {
        (Some(m), _) => m,
        (None, [only]) => only,
        _ => return Err(source.format(&format!("index {} has no linux/{arch} image", desc.digest))),
    };
    let mut chosen = pick_platform(source, chosen, depth + 1)?;
    chosen.annotations = desc.annotations.clone();
    Ok(chosen)
}

/// A `docker save` archive: `manifest.json` lists config and layer files by path.
fn import_docker_save(
    store: &Store,
    source: &Source,
    created: &mut Vec<String>,
) -> Result<Vec<(Vec<String>, String)>> {
    let entries: Vec<DockerSaveEntry> = source.json("manifest.json")?;
    let mut images = Vec::new();
    for entry in entries {
        let config = source.commit(
            store,
            &entry.config,
            digest_in_name(&entry.config).as_deref(),
            created,
        )?;
        let parsed: ConfigFile =
            serde_json::from_slice(&store.read_blob(&config.0)?).map_err(|e| Error::Json {
                what: entry.config.clone(),
                source: e,
            })?;
        if parsed.rootfs.diff_ids.len() != entry.layers.len() {
            return Err(source.format(&format!(
                "{}: {} diff_ids for {} layers",
                entry.config,
                parsed.rootfs.diff_ids.len(),
                entry.layers.len()
            )));
        }
        let mut layers = Vec::new();
        for path in &entry.layers {
            let layer = source.commit(store, path, digest_in_name(path).as_deref(), created)?;
            let compression = blob_compression(store, &layer.0)?;
            layers.push(descriptor(compression.layer_media_type(), layer));
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_OCI_MANIFEST.to_string()),
            config: descriptor(MEDIA_OCI_CONFIG, config),
            layers,
        };
        let manifest = serde_json::to_vec(&manifest).expect("a manifest always serialises");
        let (digest, _) = put(store, &mut manifest.as_slice(), None, created)?;
        let names = entry
            .repo_tags
            .iter()
            .flatten()
            .map(|t| checked_name(t))
            .collect::<Result<Vec<_>>>()?;
        images.push((names, digest));
    }
    Ok(images)
}

/// `blobs/sha256/<hex>` for a digest.
fn blob_name(digest: &str) -> Result<String> {
    Ok(format!("blobs/sha256/{}", digest_hex(digest)?))
}

/// The digest a `docker save` path announces: `<hex>.json`, `blobs/sha256/<hex>`.
fn digest_in_name(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let hex = file.strip_suffix(".json").unwrap_or(file);
    (hex.len() == 64 && hex.bytes().all(is_lower_hex)).then(|| format!("sha256:{hex}"))
}

fn descriptor(media_type: &str, (digest, size): (String, u64)) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest,
        size,
        annotations: None,
        platform: None,
    }
}

/// Store `data` as a blob, remembering it if it is new.
fn put(
    store: &Store,
    data: &mut dyn Read,
    expected: Option<&str>,
    created: &mut Vec<String>,
) -> Result<(String, u64)> {
    let (digest, size, new) = store.write_blob(data, expected)?;
    if new {
        created.push(digest.clone());
    }
    Ok((digest, size))
}

fn blob_compression(store: &Store, digest: &str) -> Result<Compression> {
    let path = store.blob_path(digest)?;
    let mut head = [0u8; 8];
    let mut file = File::open(&path).map_err(io_err(&path))?;
    let n = read_up_to(&mut file, &mut head).map_err(io_err(&path))?;
    Compression::detect(&head[..n]).map_err(|reason| Error::Format {
        path,
        reason: format!("layer {digest}: {reason}"),
    })
}

fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The files of an image archive: a directory as it is, or a tar's files staged in the store.
struct Source {
    origin: PathBuf,
    files: Files,
}

enum Files {
    Dir(PathBuf),
    Staged {
        _staging: StagingDir,
        files: BTreeMap<String, Staged>,
        /// Symlinks (target relative to the link) and hard links (target from the archive root,
        /// marked with a leading '/').
        links: BTreeMap<String, String>,
    },
}

struct Staged {
    path: PathBuf,
    digest: String,
    size: u64,
}

/// A directory under the store's `tmp/`, removed when dropped.
struct StagingDir(PathBuf);

impl Drop for StagingDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl Source {
    fn format(&self, reason: &str) -> Error {
        Error::Format {
            path: self.origin.clone(),
            reason: reason.to_string(),
        }
    }

    fn exists(&self, name: &str) -> bool {
        match &self.files {
            Files::Dir(dir) => clean_name(name).is_some_and(|n| dir.join(n).is_file()),
            Files::Staged { .. } => self.staged(name).is_ok(),
        }
    }

    /// The staged file an archive path names, following symlinks and hard links inside the
    /// archive.
    fn staged(&self, name: &str) -> Result<&Staged> {
        let Files::Staged { files, links, .. } = &self.files else {
            unreachable!("only called for staged sources")
        };
        let missing = || self.format(&format!("`{name}` is not in the archive"));
        let mut current = clean_name(name).ok_or_else(missing)?;
        for _ in 0..16 {
            if let Some(staged) = files.get(&current) {
                return Ok(staged);
            }
            let target = links.get(&current).ok_or_else(missing)?;
            let joined = match target.strip_prefix('/') {
                Some(from_root) => from_root.to_string(),
                None => match current.rsplit_once('/') {
                    Some((dir, _)) => format!("{dir}/{target}"),
                    None => target.clone(),
                },
            };
            current = clean_name(&joined).ok_or_else(missing)?;
        }
        Err(self.format(&format!("`{name}`: too many links")))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let path = match &self.files {
            Files::Dir(dir) => dir.join(clean_name(name).ok_or_else(|| {
                self.format(&format!("`{name}` is not a path inside the layout"))
            })?),
            Files::Staged { .. } => self.staged(name)?.path.clone(),
        };
        let file = File::open(&path).map_err(io_err(&path))?;
        let mut data = Vec::new();
        file.take(MAX_JSON)
            .read_to_end(&mut data)
            .map_err(io_err(&path))?;
        Ok(data)
    }

    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T> {
        serde_json::from_slice(&self.read(name)?).map_err(|source| Error::Json {
            what: format!("{}: {name}", self.origin.display()),
            source,
        })
    }

    /// The bytes of `blobs/sha256/<hex>`, checked against `digest`.
    fn blob_bytes(&self, digest: &str) -> Result<Vec<u8>> {
        let data = self.read(&blob_name(digest)?)?;
        let actual = sha256_of(&data);
        if actual != digest {
            return Err(Error::DigestMismatch {
                what: format!("{}: {}", self.origin.display(), blob_name(digest)?),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(data)
    }

    /// Bring the archive file `name` into the blob store (checked against `expected` if given).
    fn commit(
        &self,
        store: &Store,
        name: &str,
        expected: Option<&str>,
        created: &mut Vec<String>,
    ) -> Result<(String, u64)> {
        let what = || format!("{}: {name}", self.origin.display());
        match &self.files {
            Files::Dir(dir) => {
                let path = dir.join(
                    clean_name(name).ok_or_else(|| self.format(&format!("bad path `{name}`")))?,
                );
                let mut file = File::open(&path).map_err(io_err(&path))?;
                put(store, &mut file, expected, created).map_err(|e| match e {
                    Error::DigestMismatch {
                        expected, actual, ..
                    } => Error::DigestMismatch {
                        what: what(),
                        expected,
                        actual,
                    },
                    other => other,
                })
            }
            Files::Staged { .. } => {
                let staged = self.staged(name)?;
                if let Some(expected) = expected {
                    if expected != staged.digest {
                        return Err(Error::DigestMismatch {
                            what: what(),
                            expected: expected.to_string(),
                            actual: staged.digest.clone(),
                        });
                    }
                }
                let blob = store.blob_path(&staged.digest)?;
                match fs::hard_link(&staged.path, &blob) {
                    Ok(()) => created.push(staged.digest.clone()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io_err(blob)(e)),
                }
                Ok((staged.digest.clone(), staged.size))
            }
        }
    }
}

/// A relative archive path without `.` components; `None` for `..` or an empty path.
fn clean_name(name: &str) -> Option<String> {
    let parts: Vec<&str> = name
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() || parts.contains(&"..") {
        return None;
    }
    Some(parts.join("/"))
}

/// Whether a top-level name belongs in an image archive.
fn is_archive_member(first: &str) -> bool {
    let hex = first.strip_suffix(".json").unwrap_or(first);
    matches!(
        first,
        "blobs" | "oci-layout" | "index.json" | "manifest.json" | "repositories"
    ) || (hex.len() == 64 && hex.bytes().all(is_lower_hex))
}

/// Read a tar file as an image archive, staging its files. `None` when it is a rootfs instead.
fn scan_tar(store: &Store, src: &Path) -> Result<Option<Source>> {
    let file = File::open(src).map_err(io_err(src))?;
    let format = |reason: String| Error::Format {
        path: src.to_path_buf(),
        reason,
    };
    let (_, reader) = decompress(BufReader::new(file)).map_err(|e| format(e.to_string()))?;
    let staging = StagingDir(store.tmp_path("import"));
    fs::create_dir(&staging.0).map_err(io_err(&staging.0))?;
    let mut files = BTreeMap::new();
    let mut links = BTreeMap::new();
    let mut archive = tar::Archive::new(reader);
    let not_tar = |e: io::Error| format(format!("not a tar archive (plain, gzip or zstd): {e}"));
    for (n, entry) in archive.entries().map_err(not_tar)?.enumerate() {
        let mut entry = entry.map_err(not_tar)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(name) = clean_name(&raw) else {
            if raw.trim_start_matches("./").is_empty() || raw == "." {
                continue; // the archive root
            }
            return Ok(None); // not an archive layout; the rootfs unpacker will judge it
        };
        let first = name.split('/').next().unwrap_or_default();
        if raw.starts_with('/') || !is_archive_member(first) {
            return Ok(None);
        }
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default();
            let target = if kind.is_hard_link() {
                format!("/{}", target.trim_start_matches('/'))
            } else {
                target
            };
            links.insert(name, target);
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            let path = staging.0.join(n.to_string());
            let (digest, size) = stage(&mut entry, &path).map_err(io_err(&path))?;
            files.insert(name, Staged { path, digest, size });
        }
    }
    if !files.contains_key("manifest.json") && !files.contains_key("index.json") {
        return Ok(None);
    }
    Ok(Some(Source {
        origin: src.to_path_buf(),
        files: Files::Staged {
            _staging: staging,
            files,
            links,
        },
    }))
}

/// Copy `r` to a new file at `path`, returning its digest and size.
fn stage(r: &mut dyn Read, path: &Path) -> io::Result<(String, u64)> {
    let mut file = crate::store::create_private(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])?;
        size += n as u64;
    }
    file.sync_all()?;
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
}

/// Seconds since the epoch as an RFC 3339 UTC timestamp.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn archive_members() {
        assert!(is_archive_member("manifest.json"));
        assert!(is_archive_member(&"a".repeat(64)));
        assert!(is_archive_member(&format!("{}.json", "b".repeat(64))));
        assert!(!is_archive_member("etc"));
        assert_eq!(digest_in_name("blobs/sha256/abc"), None);
        let hex = "c".repeat(64);
        assert_eq!(
            digest_in_name(&format!("{hex}.json")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(clean_name("./a//b/"), Some("a/b".into()));
        assert_eq!(clean_name("a/../b"), None);
    }
}

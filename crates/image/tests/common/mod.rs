//! Helpers shared by the image store's tests: temp dirs under /tmp/lwt-img-*, a tar builder that
//! writes names byte for byte (so hostile archives can be made), and image JSON documents.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const MTIME: u64 = 1_600_000_000;

/// A temp dir `/tmp/lwt-img-*` with a store under `store/`.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        assert!(
            // SAFETY: geteuid has no preconditions.
            unsafe { libc::geteuid() } == 0,
            "the image store tests must run as root (ownership, device nodes, overlayfs)"
        );
        let dir = tempfile::Builder::new()
            .prefix("lwt-img-")
            .tempdir_in("/tmp")
            .unwrap();
        TestDir { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    pub fn store(&self) -> image::Store {
        image::Store::open(&self.join("store")).unwrap()
    }
    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, data).unwrap();
        p
    }
}

pub fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// Builds tar archives entry by entry, names copied verbatim into the header.
pub struct Tb {
    b: tar::Builder<Vec<u8>>,
}

impl Tb {
    pub fn new() -> Tb {
        Tb {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(path: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        assert!(path.len() < 100, "test paths must fit the old header");
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h
    }

    fn push(&mut self, mut h: tar::Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let h = Self::header(path, tar::EntryType::Directory, 0, mode);
        self.push(h, &[])
    }

    pub fn file(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        self.file_owned(path, data, mode, 0, 0)
    }

    pub fn file_owned(
        &mut self,
        path: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> &mut Self {
        let mut h = Self::header(path, tar::EntryType::Regular, data.len() as u64, mode);
        h.set_uid(uid);
        h.set_gid(gid);
        self.push(h, data)
    }

    /// A file preceded by a PAX header carrying one xattr.
    pub fn file_with_xattr(
        &mut self,
        path: &str,
        data: &[u8],
        key: &str,
        value: &[u8],
    ) -> &mut Self {
        let pax_key = format!("SCHILY.xattr.{key}");
        self.b
            .append_pax_extensions([(pax_key.as_str(), value)])
            .unwrap();
        self.file(path, data, 0o644)
    }

    fn link(&mut self, path: &str, target: &str, kind: tar::EntryType) -> &mut Self {
        let mut h = Self::header(path, kind, 0, 0o777);
        assert!(target.len() < 100);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        self.push(h, &[])
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.link(path, target, tar::EntryType::Symlink)
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.link(path, target, tar::EntryType::Link)
    }

    pub fn chardev(&mut self, path: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = Self::header(path, tar::EntryType::Char, 0, 0o666);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.push(h, &[])
    }

    pub fn fifo(&mut self, path: &str) -> &mut Self {
        let h = Self::header(path, tar::EntryType::Fifo, 0, 0o600);
        self.push(h, &[])
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

/// An image config with a run configuration and the given diff-ids.
pub fn config_json(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-05-01T10:00:00Z",
        "config": {
            "Entrypoint": ["/usr/lib/frr/docker-start"],
            "Cmd": ["-d"],
            "Env": ["PATH=/usr/sbin:/usr/bin", "FRR=1"],
            "WorkingDir": "/etc/frr",
            "User": "frr",
            "Labels": {"org.example.nos": "frr"},
            "StopSignal": "SIGTERM",
            "ExposedPorts": {"179/tcp": {}}
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": []
    }))
    .unwrap()
}

/// An OCI manifest for a config and layers given as (media type, bytes).
pub fn oci_manifest(config: &[u8], layers: &[(&str, &[u8])]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|(mt, data)| serde_json::json!({"mediaType": mt, "digest": sha(data), "size": data.len()}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": config.len()},
        "layers": layers
    }))
    .unwrap()
}

/// A tar of regular files given as (path, bytes), with parent directories.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for (path, data) in files {
        let mut p = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            p.push_str(part);
            p.push('/');
            if dirs.insert(p.clone()) {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_uid(0);
                h.set_gid(0);
                h.set_mtime(MTIME);
                b.append_data(&mut h, &p, &[][..]).unwrap();
            }
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// The two layers used by the overlay tests: a base, and one that deletes and replaces files.
pub fn two_layers() -> (Vec<u8>, Vec<u8>) {
    let base = Tb::new()
        .dir("etc/", 0o755)
        .file("etc/gone", b"to be deleted\n", 0o644)
        .file("etc/kept", b"kept\n", 0o644)
        .dir("opq/", 0o755)
        .file("opq/old", b"old\n", 0o644)
        .finish();
    let top = Tb::new()
        .dir("etc/", 0o755)
        .file("etc/.wh.gone", b"", 0o644)
        .dir("opq/", 0o755)
        .file("opq/.wh..wh..opq", b"", 0o644)
        .file("opq/new", b"new\n", 0o644)
        .finish();
    (base, top)
}

/// Names of every file under `dir`, recursively (not following symlinks).
pub fn all_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            out.push(e.file_name().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

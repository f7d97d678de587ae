//! ext4 disk files for VM nodes, built without mounting anything (`mkfs.ext4 -d` copies a
//! directory tree into the new file system) and cached in the store under `disks/`:
//! one root disk per image id, one modules disk per kernel. VM nodes never write to them: each node
//! boots from its own copy-on-write overlay.
//!
//! An image with several layers is first merged into one tree of hard links (whiteouts and opaque
//! directories applied, as overlayfs would show it), so no layer file is copied.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{io_err, Error, Result};
use crate::kernel::{Kernel, Modules};
use crate::lock::FileLock;
use crate::store::{Image, Store};

/// Free space a root disk gets beyond its content, for what the guest writes.
pub const ROOT_HEADROOM: u64 = 1 << 30;

/// Free space of a (read-only) modules disk.
const MODULES_HEADROOM: u64 = 16 << 20;

impl Store {
    /// The cached ext4 root disk of `image` (unpacked layers `layers`, bottom first), built on
    /// first use.
    pub fn root_disk(&self, image: &Image, layers: &[PathBuf]) -> Result<PathBuf> {
        self.disks_dir()?;
        let path = root_disk_path(self.root(), &image.id);
        self.build_once(&path, ROOT_HEADROOM, |staging| {
            let tree = match layers {
                [one] => one.clone(),
                _ => {
                    merge_layers(layers, staging)?;
                    staging.to_path_buf()
                }
            };
            Ok((tree, Vec::new()))
        })
    }

    /// The cached ext4 disk of a kernel's module tree, with `modules.dep`, `modules.alias` and
    /// `modules.softdep` written for it when the tree has none (so the guest's modprobe works).
    /// Compressed modules (`.ko.xz`, `.ko.zst`, `.ko.gz`) are decompressed to `.ko` files on the
    /// disk, so any modprobe and any kernel load them, and indexed afresh.
    pub fn modules_disk(&self, kernel: &Kernel, modules: &Modules) -> Result<PathBuf> {
        let src = modules.dir();
        let meta = fs::metadata(src).map_err(io_err(src))?;
        let key = format!(
            "{}-{:x}-{:x}",
            kernel.version,
            meta.ino(),
            meta.mtime() as u64 ^ (meta.dev() << 20)
        );
        let compressed = modules.has_compressed();
        // A disk built before compressed modules were decompressed holds them as they were.
        let form = if compressed { "-plain" } else { "" };
        let path = self.disks_dir()?.join(format!("modules-{key}{form}.ext4"));
        self.build_once(&path, MODULES_HEADROOM, |staging| {
            if !compressed && src.join("modules.dep.bin").is_file() {
                return Ok((src.to_path_buf(), Vec::new()));
            }
            let tree = staging.join("lib/modules").join(&kernel.version);
            fs::create_dir_all(&tree).map_err(io_err(&tree))?;
            if compressed {
                // The tree's own indexes name the compressed files: they are rebuilt below.
                stage_plain_modules(src, &tree)?;
            } else {
                merge_dir(src, &tree)?;
            }
            // The guest's modprobe (kmod) reads only the binary indexes depmod writes: run the
            // host's depmod over the staged tree when there is one.
            if find_tool("depmod").is_some() {
                run_tool("depmod", src, "depmod", |c| {
                    c.arg("-b").arg(staging).arg(&kernel.version);
                })?;
                return Ok((tree, Vec::new()));
            }
            // Without depmod, the text indexes: enough for busybox's modprobe, not for kmod's
            // (install kmod on the host).
            let staged = Modules::scan(&tree)?;
            Ok((tree, staged.index_files()?))
        })
    }

    fn disks_dir(&self) -> Result<PathBuf> {
        let d = self.root().join("disks");
        fs::create_dir_all(&d).map_err(io_err(&d))?;
        Ok(d)
    }

    /// Build `path` once (under a per-disk lock): `tree` gives the directory to copy (it may
    /// fill the staging directory it is handed) and extra top-level files.
    fn build_once(
        &self,
        path: &Path,
        headroom: u64,
        tree: impl FnOnce(&Path) -> Result<(PathBuf, Vec<(&'static str, String)>)>,
    ) -> Result<PathBuf> {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("disk");
        let _lock = FileLock::exclusive(&self.root().join("locks").join(format!("{name}.lock")))?;
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        let staging = self.tmp_path("disk-tree");
        fs::create_dir_all(&staging).map_err(io_err(&staging))?;
        let tmp = self.tmp_path("disk");
        let result = (|| {
            let (dir, extra) = tree(&staging)?;
            let size = tree_size(&dir)?;
            let mut extra_files = Vec::new();
            for (file, text) in &extra {
                let p = staging.join(format!("extra-{file}"));
                fs::write(&p, text).map_err(io_err(&p))?;
                extra_files.push((*file, p));
            }
            let bytes = size.bytes + extra.iter().map(|(_, t)| t.len() as u64).sum::<u64>();
            mkfs(&dir, &tmp, bytes, size.inodes, headroom)?;
            for (file, p) in extra_files {
                debugfs_write(&tmp, &p, file)?;
            }
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).map_err(io_err(&tmp))?;
            fs::rename(&tmp, path).map_err(io_err(path))
        })();
        let _ = fs::remove_file(&tmp);
        let _ = remove_tree(&staging);
        result.map(|()| path.to_path_buf())
    }
}

/// Where the root disk of image `id` is cached.
pub(crate) fn root_disk_path(store_root: &Path, id: &str) -> PathBuf {
    store_root
        .join("disks")
        .join(format!("root-{}.ext4", id.trim_start_matches("sha256:")))
}

struct TreeSize {
    bytes: u64,
    inodes: u64,
}

fn tree_size(dir: &Path) -> Result<TreeSize> {
    let mut s = TreeSize {
        bytes: 0,
        inodes: 0,
    };
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).map_err(io_err(&d))? {
            let e = e.map_err(io_err(&d))?;
            let m = e.metadata().map_err(io_err(e.path()))?;
            s.inodes += 1;
            // Whole 4 KiB blocks, as ext4 stores them.
            s.bytes += m.len().div_ceil(4096) * 4096;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    Ok(s)
}

/// `mkfs.ext4 -d`: a new ext4 file at `out` holding `dir`, sized for its content plus headroom.
fn mkfs(dir: &Path, out: &Path, bytes: u64, inodes: u64, headroom: u64) -> Result<()> {
    let size = bytes + bytes / 5 + inodes * 512 + headroom;
    let size_k = size.div_ceil(1 << 20) * 1024;
    let inode_count = (inodes + inodes / 2 + 65_536).to_string();
    run_tool("mkfs.ext4", dir, "mkfs.ext4 -d", |c| {
        c.args(["-q", "-F", "-L", "labwire", "-N", &inode_count])
            .args(["-E", "lazy_itable_init=1,lazy_journal_init=1"])
            .arg("-d")
            .arg(dir)
            .arg(out)
            .arg(format!("{size_k}k"));
    })
}

/// Put one file into the root of an ext4 image without mounting it.
fn debugfs_write(disk: &Path, src: &Path, name: &str) -> Result<()> {
    run_tool("debugfs", disk, &format!("debugfs write {name}"), |c| {
        c.arg("-w")
            .arg("-R")
            .arg(format!("write {} {name}", src.display()))
            .arg(disk);
    })
}

/// Run an e2fsprogs/kmod tool; a failure names `what` and carries the tool's own message.
fn run_tool(tool: &str, about: &Path, what: &str, args: impl FnOnce(&mut Command)) -> Result<()> {
    let mut c = Command::new(find_tool(tool).unwrap_or_else(|| PathBuf::from(tool)));
    args(&mut c);
    let out = c.output().map_err(|e| tool_error(tool, e))?;
    if !out.status.success() {
        return Err(Error::Format {
            path: about.to_path_buf(),
            reason: format!(
                "{what} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(())
}

/// A program in PATH (or the sbin directories, which a user's PATH may lack).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn tool_error(tool: &str, e: io::Error) -> Error {
    Error::Io {
        path: PathBuf::from(format!(
            "{tool} (from e2fsprogs; install it with apt-get install e2fsprogs)"
        )),
        source: e,
    }
}

/// Copy a module tree to `dest` with every compressed module decompressed to its `.ko` name,
/// other files hard-linked, and depmod's indexes left out (they name the compressed files).
fn stage_plain_modules(src: &Path, dest: &Path) -> Result<()> {
    for e in fs::read_dir(src).map_err(io_err(src))? {
        let e = e.map_err(io_err(src))?;
        let from = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        let ft = e.file_type().map_err(io_err(&from))?;
        if ft.is_dir() {
            let to = dest.join(&*name);
            fs::create_dir_all(&to).map_err(io_err(&to))?;
            stage_plain_modules(&from, &to)?;
        } else if ft.is_file() && crate::kernel::is_compressed_module(&name) {
            let to = dest.join(crate::kernel::plain_module_name(&name));
            let data = crate::kernel::read_module(&from)?;
            fs::write(&to, data).map_err(io_err(&to))?;
        } else if !is_depmod_index(&name) {
            link_no_follow(&from, &dest.join(&*name))?;
        }
    }
    Ok(())
}

/// Whether a file of a module tree's top is an index depmod writes (`modules.dep`,
/// `modules.alias.bin`, …), as opposed to what `make modules_install` writes and depmod reads
/// (`modules.order`, `modules.builtin`, `modules.builtin.modinfo`).
fn is_depmod_index(name: &str) -> bool {
    name.starts_with("modules.")
        && !matches!(
            name,
            "modules.order" | "modules.builtin" | "modules.builtin.modinfo"
        )
}

/// Merge unpacked layers (bottom first) into `dest` with hard links, applying overlay whiteouts
/// (character devices 0/0) and opaque directories (`trusted.overlay.opaque=y`).
pub fn merge_layers(layers: &[PathBuf], dest: &Path) -> Result<()> {
    for layer in layers {
        merge_dir(layer, dest)?;
    }
    Ok(())
}

fn merge_dir(src: &Path, dest: &Path) -> Result<()> {
    for e in fs::read_dir(src).map_err(io_err(src))? {
        let e = e.map_err(io_err(src))?;
        let from = e.path();
        let to = dest.join(e.file_name());
        let m = fs::symlink_metadata(&from).map_err(io_err(&from))?;
        let ft = m.file_type();
        use std::os::unix::fs::FileTypeExt as _;
        if ft.is_char_device() && m.rdev() == 0 {
            remove_tree(&to).map_err(io_err(&to))?;
            continue;
        }
        if ft.is_dir() {
            let existing = fs::symlink_metadata(&to).ok();
            match existing {
                Some(x) if x.is_dir() => {
                    if is_opaque(&from) {
                        remove_tree(&to).map_err(io_err(&to))?;
                        fs::create_dir(&to).map_err(io_err(&to))?;
                    }
                }
                Some(_) => {
                    fs::remove_file(&to).map_err(io_err(&to))?;
                    fs::create_dir(&to).map_err(io_err(&to))?;
                }
                None => fs::create_dir(&to).map_err(io_err(&to))?,
            }
            copy_dir_meta(&m, &to)?;
            merge_dir(&from, &to)?;
            continue;
        }
        if let Ok(x) = fs::symlink_metadata(&to) {
            if x.is_dir() {
                remove_tree(&to).map_err(io_err(&to))?;
            } else {
                fs::remove_file(&to).map_err(io_err(&to))?;
            }
        }
        link_no_follow(&from, &to)?;
    }
    Ok(())
}

fn copy_dir_meta(m: &fs::Metadata, to: &Path) -> Result<()> {
    fs::set_permissions(to, fs::Permissions::from_mode(m.mode() & 0o7777)).map_err(io_err(to))?;
    std::os::unix::fs::lchown(to, Some(m.uid()), Some(m.gid())).map_err(io_err(to))
}

fn is_opaque(dir: &Path) -> bool {
    let Ok(p) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut v = [0u8; 4];
    // SAFETY: NUL-terminated strings and a buffer of the length passed.
    let n = unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    n == 1 && v[0] == b'y'
}

/// A hard link to `from` (a symlink is linked itself, not its target); a copy across file
/// systems.
fn link_no_follow(from: &Path, to: &Path) -> Result<()> {
    let a = CString::new(from.as_os_str().as_bytes()).map_err(|_| Error::Format {
        path: from.to_path_buf(),
        reason: "NUL in path".into(),
    })?;
    let b = CString::new(to.as_os_str().as_bytes()).map_err(|_| Error::Format {
        path: to.to_path_buf(),
        reason: "NUL in path".into(),
    })?;
    // SAFETY: NUL-terminated paths; flags 0 links a symlink itself.
    let rc = unsafe { libc::linkat(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), 0) };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EXDEV) {
        return Err(io_err(to)(e));
    }
    // Another file system (a kernel unpacked outside the store): copy instead.
    let m = fs::symlink_metadata(from).map_err(io_err(from))?;
    if m.file_type().is_symlink() {
        let target = fs::read_link(from).map_err(io_err(from))?;
        std::os::unix::fs::symlink(target, to).map_err(io_err(to))?;
    } else if m.is_file() {
        fs::copy(from, to).map_err(io_err(to))?;
    } else {
        return Err(io_err(to)(e));
    }
    std::os::unix::fs::lchown(to, Some(m.uid()), Some(m.gid())).map_err(io_err(to))
}

/// Remove a file or directory tree; missing is fine. Never follows symlinks.
fn remove_tree(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
    }
}

//! Unpacking one layer tarball into a fresh directory that overlayfs can use as a lowerdir.
//!
//! This is the security boundary of the store: layer tarballs come from anywhere. Every path is
//! cleaned first (`..` components and absolute paths are refused), then resolved one component at a
//! time from a directory file descriptor of the layer root with `O_NOFOLLOW`, so no symlink is ever
//! followed while writing (a layer with `evil -> /etc` then `evil/passwd` is refused). The final
//! component is always created with `*at` calls that do not follow it either. Hard links must point
//! at an entry already unpacked in this same layer. Whiteouts (`.wh.NAME`) become overlayfs
//! whiteouts (0/0 character devices) and `.wh..wh..opq` marks its directory opaque
//! (`trusted.overlay.opaque=y`). Ownership, permissions, mtimes, device numbers and xattrs are kept
//! (the store runs as root); xattrs in the `trusted.overlay.` namespace are dropped, since they
//! would steer overlayfs. This module writes only below the directory it is given.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tar::EntryType;

use crate::error::{Error, Result};

/// Unpack the tar stream `reader` into the existing, empty directory `dest`. `layer` names the layer
/// in errors. Returns the reader, positioned after the tar end marker, so the caller can drain it.
///
/// Regular files are written sparse (runs of zeros become holes), and the layer may unpack to at
/// most `limit` bytes (the sum of its files' sizes): a small compressed layer cannot fill the disk.
/// Returns the reader and the unpacked size.
pub(crate) fn unpack_layer<R: Read>(
    reader: R,
    dest: &Path,
    layer: &str,
    limit: u64,
) -> Result<(R, u64)> {
    let root = open_path_dir(dest).map_err(|source| Error::Io {
        path: dest.to_path_buf(),
        source,
    })?;
    let mut unpacker = Unpacker {
        root,
        dirs: Vec::new(),
        unpacked: 0,
        limit,
    };
    let mut archive = tar::Archive::new(reader);
    let bad_layer = |source| Error::BadLayer {
        layer: layer.to_string(),
        source,
    };
    for entry in archive.entries().map_err(bad_layer)? {
        let mut entry = entry.map_err(bad_layer)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        unpacker.entry(&mut entry).map_err(|fail| match fail {
            Fail::Unsafe(reason) => Error::UnsafeEntry {
                layer: layer.to_string(),
                entry: name,
                reason,
            },
            Fail::TooLarge => Error::TooLarge {
                layer: layer.to_string(),
                limit,
            },
            Fail::Io(source) => Error::Entry {
                layer: layer.to_string(),
                entry: name,
                source,
            },
        })?;
    }
    unpacker.finish_directories();
    Ok((archive.into_inner(), unpacker.unpacked))
}

/// Copy `from` into the new file `to`, leaving holes where whole blocks are zero, and return
/// `total` plus the bytes copied; fails with [`Fail::TooLarge`] before going past `limit`.
fn copy_sparse(
    from: &mut impl Read,
    to: &mut File,
    mut total: u64,
    limit: u64,
) -> Result<u64, Fail> {
    use std::io::{Seek as _, SeekFrom, Write as _};
    const BLOCK: usize = 64 << 10;
    static ZEROS: [u8; BLOCK] = [0; BLOCK];
    let mut buf = vec![0u8; BLOCK];
    let mut len = 0u64;
    loop {
        // Fill the block (short reads happen at tar entry boundaries and in decompressors).
        let mut n = 0;
        while n < BLOCK {
            match from.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Fail::Io(e)),
            }
        }
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > limit {
            return Err(Fail::TooLarge);
        }
        // A slice comparison (memcmp) rather than a byte loop: sparse files are tens of GiB.
        if buf[..n] == ZEROS[..n] {
            to.seek(SeekFrom::Current(n as i64))?;
        } else {
            to.write_all(&buf[..n])?;
        }
        len += n as u64;
        if n < BLOCK {
            break;
        }
    }
    // A file ending in a hole still has its full length.
    to.set_len(len)?;
    Ok(total)
}

/// Why one entry could not be written.
enum Fail {
    /// Writing it could escape the layer root, or it makes no sense in a layer.
    Unsafe(String),
    /// The layer's files add up to more than the limit.
    TooLarge,
    Io(io::Error),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::Io(e)
    }
}

/// The attributes of an entry that get applied to what it creates.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(CString, Vec<u8>)>,
}

struct Unpacker {
    root: OwnedFd,
    /// Directories whose mtime is set at the end (writing their children changes it).
    dirs: Vec<(Vec<CString>, i64)>,
    /// Bytes of regular files so far, and the most allowed.
    unpacked: u64,
    limit: u64,
}

impl Unpacker {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), Fail> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let comps = clean_path(&entry.path_bytes())?;
        let meta = read_meta(entry)?;
        let Some((leaf, parents)) = comps.split_last() else {
            // The layer root itself ("./").
            if !kind.is_dir() {
                return Err(Fail::Unsafe("the layer root must be a directory".into()));
            }
            apply_meta(self.root.as_fd(), &meta)?;
            self.dirs.push((Vec::new(), meta.mtime));
            return Ok(());
        };
        let dir = self.walk(parents, true)?;
        let dir = dir.as_fd();

        if let Some(hidden) = leaf.to_bytes().strip_prefix(b".wh.") {
            if hidden == b".wh..opq" {
                set_xattr_fd(dir, c"trusted.overlay.opaque", b"y")?;
            } else if hidden.starts_with(b".wh.") {
                // AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content.
            } else {
                if hidden.is_empty() || hidden == b"." || hidden == b".." {
                    return Err(Fail::Unsafe("whiteout of an invalid name".into()));
                }
                let name = CString::new(hidden).expect("no NUL: checked by clean_path");
                remove_any(dir, &name)?;
                mknod_at(dir, &name, libc::S_IFCHR, 0)?;
            }
            return Ok(());
        }

        match kind {
            EntryType::Directory => {
                match lstat_at(dir, leaf)? {
                    Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
                    Some(_) => {
                        unlink_at(dir, leaf, 0)?;
                        mkdir_at(dir, leaf, 0o700)?;
                    }
                    None => mkdir_at(dir, leaf, 0o700)?,
                }
                let fd = open_dir_at(dir, leaf)?;
                apply_meta(fd.as_fd(), &meta)?;
                self.dirs.push((comps.clone(), meta.mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                remove_non_dir(dir, leaf)?;
                let fd = open_at(
                    dir,
                    leaf,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                    0o600,
                )?;
                let mut file = File::from(fd);
                self.unpacked = copy_sparse(entry, &mut file, self.unpacked, self.limit)?;
                apply_meta(file.as_fd(), &meta)?;
                set_times_at(file.as_fd(), None, meta.mtime)?;
            }
            EntryType::Symlink => {
                let target = link_target(entry)?;
                remove_non_dir(dir, leaf)?;
                // SAFETY: both strings are NUL-terminated and live across the call.
                cvt(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), leaf.as_ptr()) })?;
                chown_at(dir, leaf, &meta)?;
                set_times_at(dir, Some(leaf), meta.mtime)?;
            }
            EntryType::Link => {
                let target = link_target(entry)?;
                let shown = String::from_utf8_lossy(target.to_bytes()).into_owned();
                let in_target = |f: Fail| match f {
                    Fail::Unsafe(r) => Fail::Unsafe(format!("hard link target `{shown}`: {r}")),
                    io => io,
                };
                let tcomps = clean_path(target.to_bytes()).map_err(in_target)?;
                let Some((tleaf, tparents)) = tcomps.split_last() else {
                    return Err(in_target(Fail::Unsafe("is the layer root".into())));
                };
                let tdir = self.walk(tparents, false).map_err(in_target)?;
                match lstat_at(tdir.as_fd(), tleaf)? {
                    None => {
                        return Err(in_target(Fail::Unsafe("not in this layer".into())));
                    }
                    Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                        return Err(in_target(Fail::Unsafe("is a directory".into())));
                    }
                    Some(_) => {}
                }
                if tcomps == comps {
                    return Ok(());
                }
                remove_non_dir(dir, leaf)?;
                // SAFETY: valid fds and NUL-terminated names; flags 0 = do not follow a symlink.
                cvt(unsafe {
                    libc::linkat(
                        tdir.as_raw_fd(),
                        tleaf.as_ptr(),
                        dir.as_raw_fd(),
                        leaf.as_ptr(),
                        0,
                    )
                })?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (fmt, dev) = match kind {
                    EntryType::Fifo => (libc::S_IFIFO, 0),
                    _ => {
                        let major = entry.header().device_major()?.unwrap_or(0);
                        let minor = entry.header().device_minor()?.unwrap_or(0);
                        let fmt = if kind == EntryType::Char {
                            libc::S_IFCHR
                        } else {
                            libc::S_IFBLK
                        };
                        (fmt, libc::makedev(major, minor))
                    }
                };
                remove_non_dir(dir, leaf)?;
                mknod_at(dir, leaf, fmt, dev)?;
                chown_at(dir, leaf, &meta)?;
                // SAFETY: valid fd and name; the node was just created by us, so it is no symlink.
                cvt(unsafe { libc::fchmodat(dir.as_raw_fd(), leaf.as_ptr(), meta.mode, 0) })?;
                set_xattrs_at(dir, leaf, &meta)?;
                set_times_at(dir, Some(leaf), meta.mtime)?;
            }
            other => {
                return Err(Fail::Unsafe(format!("unsupported entry type {other:?}")));
            }
        }
        Ok(())
    }

    /// Open the directory `comps` below the root, one component at a time, never following a
    /// symlink. With `create`, missing components are made (mode 0755).
    fn walk(&self, comps: &[CString], create: bool) -> Result<OwnedFd, Fail> {
        let mut cur = self.root.try_clone()?;
        for (i, comp) in comps.iter().enumerate() {
            let next = match open_dir_at(cur.as_fd(), comp) {
                Ok(fd) => fd,
                Err(e) if create && e.raw_os_error() == Some(libc::ENOENT) => {
                    mkdir_at(cur.as_fd(), comp, 0o755)?;
                    let fd = open_dir_at(cur.as_fd(), comp)?;
                    // SAFETY: fchmod on an fd we own.
                    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), 0o755) })?;
                    fd
                }
                Err(e) => {
                    let shown = join(&comps[..=i]);
                    return Err(match e.raw_os_error() {
                        Some(libc::ENOENT) => Fail::Unsafe(format!("`{shown}` does not exist")),
                        Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
                            match lstat_at(cur.as_fd(), comp)? {
                                Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => {
                                    Fail::Unsafe(format!(
                                        "`{shown}` is a symlink; refusing to write through it"
                                    ))
                                }
                                _ => Fail::Unsafe(format!("`{shown}` is not a directory")),
                            }
                        }
                        _ => Fail::Io(e),
                    });
                }
            };
            cur = next;
        }
        Ok(cur)
    }

    /// Set directory mtimes last, deepest first (children were written after their parents).
    fn finish_directories(&mut self) {
        let dirs = std::mem::take(&mut self.dirs);
        for (comps, mtime) in dirs.iter().rev() {
            if let Ok(fd) = self.walk(comps, false) {
                let _ = set_times_at(fd.as_fd(), None, *mtime);
            }
        }
    }
}

/// Split a tar path into components: leading `./` and empty or `.` components dropped; absolute
/// paths, `..` components and NUL bytes refused.
fn clean_path(raw: &[u8]) -> Result<Vec<CString>, Fail> {
    if raw.first() == Some(&b'/') {
        return Err(Fail::Unsafe("absolute path".into()));
    }
    let mut out = Vec::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(Fail::Unsafe("path has a `..` component".into())),
            _ => out.push(CString::new(comp).map_err(|_| Fail::Unsafe("NUL in path".into()))?),
        }
    }
    Ok(out)
}

fn join(comps: &[CString]) -> String {
    let parts: Vec<_> = comps.iter().map(|c| c.to_string_lossy()).collect();
    parts.join("/")
}

fn link_target<R: Read>(entry: &tar::Entry<R>) -> Result<CString, Fail> {
    let target = entry
        .link_name_bytes()
        .ok_or_else(|| Fail::Unsafe("link without a target".into()))?;
    if target.is_empty() {
        return Err(Fail::Unsafe("link without a target".into()));
    }
    CString::new(target.into_owned()).map_err(|_| Fail::Unsafe("NUL in link target".into()))
}

fn read_meta<R: Read>(entry: &mut tar::Entry<R>) -> Result<Meta, Fail> {
    let header = entry.header();
    let too_big = |what: &str| Fail::Unsafe(format!("{what} out of range"));
    let mode = header.mode()? & 0o7777;
    let uid = u32::try_from(header.uid()?).map_err(|_| too_big("uid"))?;
    let gid = u32::try_from(header.gid()?).map_err(|_| too_big("gid"))?;
    let mut mtime = i64::try_from(header.mtime()?).map_err(|_| too_big("mtime"))?;
    let mut xattrs = Vec::new();
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            let Ok(key) = ext.key() else { continue };
            if key == "mtime" {
                let whole = std::str::from_utf8(ext.value_bytes())
                    .ok()
                    .and_then(|v| v.split('.').next()?.parse::<i64>().ok());
                if let Some(t) = whole {
                    mtime = t;
                }
            } else if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                if name.starts_with("trusted.overlay.") {
                    continue;
                }
                if let Ok(name) = CString::new(name) {
                    xattrs.push((name, ext.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

fn cvt(rc: libc::c_int) -> io::Result<()> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn open_path_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: NUL-terminated path; the returned fd is owned by the OwnedFd below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open_at(dir: BorrowedFd, name: &CStr, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: valid dirfd and NUL-terminated name; the returned fd is owned below.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open a directory entry of `dir` as a directory, failing (ELOOP/ENOTDIR) on a symlink.
fn open_dir_at(dir: BorrowedFd, name: &CStr) -> io::Result<OwnedFd> {
    open_at(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

fn lstat_at(dir: BorrowedFd, name: &CStr) -> io::Result<Option<libc::stat>> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid dirfd, NUL-terminated name, and `st` is writable for the call.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        return Ok(Some(st));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ENOENT) {
        Ok(None)
    } else {
        Err(err)
    }
}

fn mkdir_at(dir: BorrowedFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid dirfd and NUL-terminated name.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) })
}

fn mknod_at(dir: BorrowedFd, name: &CStr, fmt: u32, dev: libc::dev_t) -> io::Result<()> {
    // SAFETY: valid dirfd and NUL-terminated name.
    cvt(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), fmt, dev) })
}

fn unlink_at(dir: BorrowedFd, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: valid dirfd and NUL-terminated name.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })
}

/// Make room for a non-directory: remove whatever is there. A directory goes with everything in
/// it, as docker and containerd do when a later entry of a layer replaces a directory.
fn remove_non_dir(dir: BorrowedFd, name: &CStr) -> Result<(), Fail> {
    match lstat_at(dir, name)? {
        Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => Ok(remove_tree_at(dir, name)?),
        _ => remove_any(dir, name),
    }
}

/// Remove the directory `name` in `dir` and everything below it, walking by descriptors opened
/// with `O_NOFOLLOW`: a symlink inside is removed, never followed.
fn remove_tree_at(dir: BorrowedFd, name: &CStr) -> io::Result<()> {
    let sub = open_dir_at(dir, name)?;
    let mut children: Vec<(std::ffi::CString, bool)> = Vec::new();
    {
        // readdir on a duplicate, so closing the stream leaves `sub` open.
        let dup = sub.try_clone()?;
        // SAFETY: fdopendir takes ownership of the duplicated descriptor; the stream is closed
        // below, and entries are copied out before the next readdir call.
        unsafe {
            let stream = libc::fdopendir(std::os::fd::IntoRawFd::into_raw_fd(dup));
            if stream.is_null() {
                return Err(io::Error::last_os_error());
            }
            loop {
                let ent = libc::readdir(stream);
                if ent.is_null() {
                    break;
                }
                let n = CStr::from_ptr((*ent).d_name.as_ptr());
                if n.to_bytes() == b"." || n.to_bytes() == b".." {
                    continue;
                }
                children.push((n.to_owned(), (*ent).d_type == libc::DT_DIR));
            }
            libc::closedir(stream);
        }
    }
    for (child, is_dir) in children {
        let is_dir = is_dir
            || lstat_at(sub.as_fd(), &child)?
                .is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
        if is_dir {
            remove_tree_at(sub.as_fd(), &child)?;
        } else {
            unlink_at(sub.as_fd(), &child, 0)?;
        }
    }
    drop(sub);
    unlink_at(dir, name, libc::AT_REMOVEDIR)
}

/// Remove `name` from `dir` if present; a directory must be empty.
fn remove_any(dir: BorrowedFd, name: &CStr) -> Result<(), Fail> {
    match lstat_at(dir, name)? {
        None => Ok(()),
        Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
            Ok(unlink_at(dir, name, libc::AT_REMOVEDIR)?)
        }
        Some(_) => Ok(unlink_at(dir, name, 0)?),
    }
}

fn chown_at(dir: BorrowedFd, name: &CStr, meta: &Meta) -> io::Result<()> {
    // SAFETY: valid dirfd and NUL-terminated name; AT_SYMLINK_NOFOLLOW changes a symlink itself.
    cvt(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            name.as_ptr(),
            meta.uid,
            meta.gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// Owner, then mode (chown clears set-id bits), then xattrs (chown clears file capabilities).
fn apply_meta(fd: BorrowedFd, meta: &Meta) -> io::Result<()> {
    // SAFETY: fchown/fchmod on an fd we hold.
    cvt(unsafe { libc::fchown(fd.as_raw_fd(), meta.uid, meta.gid) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), meta.mode) })?;
    for (name, value) in &meta.xattrs {
        set_xattr_fd(fd, name, value)?;
    }
    Ok(())
}

fn xattr_result(rc: libc::c_int) -> io::Result<()> {
    match cvt(rc) {
        // A filesystem without xattrs (or this namespace) loses them rather than failing.
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
        other => other,
    }
}

fn set_xattr_fd(fd: BorrowedFd, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: valid fd, NUL-terminated name, value pointer/length from a live slice.
    xattr_result(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

/// Set xattrs on a node that cannot be opened for writing (device, fifo), through
/// `/proc/self/fd/<dir>/<name>` with `lsetxattr`, which does not follow `name`.
fn set_xattrs_at(dir: BorrowedFd, name: &CStr, meta: &Meta) -> io::Result<()> {
    if meta.xattrs.is_empty() {
        return Ok(());
    }
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name.to_bytes());
    let path = CString::new(path)?;
    for (key, value) in &meta.xattrs {
        // SAFETY: NUL-terminated path and key; value pointer/length from a live slice.
        xattr_result(unsafe {
            libc::lsetxattr(
                path.as_ptr(),
                key.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        })?;
    }
    Ok(())
}

/// Set atime and mtime to `mtime`: of `fd` itself when `name` is `None`, else of `name` in the
/// directory `fd`, not following a symlink.
fn set_times_at(fd: BorrowedFd, name: Option<&CStr>, mtime: i64) -> io::Result<()> {
    let t = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    let times = [t, t];
    match name {
        // SAFETY: valid fd; `times` holds two timespecs as futimens requires.
        None => cvt(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) }),
        // SAFETY: valid dirfd, NUL-terminated name, two timespecs.
        Some(n) => cvt(unsafe {
            libc::utimensat(
                fd.as_raw_fd(),
                n.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(p: &str) -> Result<Vec<String>, String> {
        clean_path(p.as_bytes())
            .map(|v| v.iter().map(|c| c.to_string_lossy().into_owned()).collect())
            .map_err(|f| match f {
                Fail::Unsafe(r) => r,
                Fail::TooLarge => "too large".into(),
                Fail::Io(e) => e.to_string(),
            })
    }

    #[test]
    fn paths_are_cleaned_or_refused() {
        assert_eq!(clean("./a/b/").unwrap(), ["a", "b"]);
        assert_eq!(clean("a//./b").unwrap(), ["a", "b"]);
        assert!(clean("./").unwrap().is_empty());
        assert!(clean("../x").is_err());
        assert!(clean("a/../../x").is_err());
        assert!(clean("a/..").is_err());
        assert!(clean("/etc/passwd").is_err());
    }
}

//! The lab's block in a hosts file (`/etc/hosts` in production):
//!
//! ```text
//! ###### CLAB-<lab>-START ######
//! <ip>\t<name>
//! ###### CLAB-<lab>-END ######
//! ```
//!
//! Owns adding, replacing and removing that one block. Every other byte of the file — other labs'
//! blocks included — is left exactly as found. Writers serialise on an `flock` held on a lock file
//! outside `/etc` (`/run/labwire/hosts.lock` by default). An existing file is rewritten in place
//! (same inode) under that lock rather than renamed over: a rename detaches every bind mount of the
//! file in other mount namespaces, and each native node mounts its own hosts file over
//! `/etc/hosts` — replacing the inode would silently hand every running node the host's file.
//! A missing file is created with temp file + rename.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::ArtifactError;

/// The system hosts file.
pub const HOSTS_FILE: &str = "/etc/hosts";
/// The lock file every labwire process takes before touching a hosts file.
pub const DEFAULT_LOCK_PATH: &str = "/run/labwire/hosts.lock";

/// The line opening lab `lab`'s block.
pub fn start_marker(lab: &str) -> String {
    format!("###### CLAB-{lab}-START ######")
}

/// The line closing lab `lab`'s block.
pub fn end_marker(lab: &str) -> String {
    format!("###### CLAB-{lab}-END ######")
}

/// Add lab `lab`'s block to `path` (replacing its old block in place), locking
/// [`DEFAULT_LOCK_PATH`].
pub fn add_block(
    path: &Path,
    lab: &str,
    entries: &[(IpAddr, String)],
) -> Result<(), ArtifactError> {
    add_block_locked(path, Path::new(DEFAULT_LOCK_PATH), lab, entries)
}

/// Remove lab `lab`'s block from `path`, locking [`DEFAULT_LOCK_PATH`]. True if there was one.
pub fn remove_block(path: &Path, lab: &str) -> Result<bool, ArtifactError> {
    remove_block_locked(path, Path::new(DEFAULT_LOCK_PATH), lab)
}

/// [`add_block`] with an explicit lock file. A missing hosts file is created (mode 0644).
pub fn add_block_locked(
    path: &Path,
    lock_path: &Path,
    lab: &str,
    entries: &[(IpAddr, String)],
) -> Result<(), ArtifactError> {
    check_word(lab)?;
    for (_, name) in entries {
        check_word(name)?;
    }
    let block = render_block(lab, entries);
    let _lock = Lock::exclusive(lock_path)?;
    let original = read_if_exists(path)?;
    let text = original.as_deref().unwrap_or_default();
    let (updated, _) =
        splice(text, lab, Some(block.as_bytes())).map_err(|()| unterminated(path, lab))?;
    if original.as_deref() != Some(updated.as_slice()) {
        replace_file(path, &updated)?;
    }
    Ok(())
}

/// [`remove_block`] with an explicit lock file. A missing hosts file holds no block.
pub fn remove_block_locked(
    path: &Path,
    lock_path: &Path,
    lab: &str,
) -> Result<bool, ArtifactError> {
    check_word(lab)?;
    let _lock = Lock::exclusive(lock_path)?;
    let Some(original) = read_if_exists(path)? else {
        return Ok(false);
    };
    let (updated, found) = splice(&original, lab, None).map_err(|()| unterminated(path, lab))?;
    if found {
        replace_file(path, &updated)?;
    }
    Ok(found)
}

/// The block's text: markers around `<ip>\t<name>` lines, IPv4 before IPv6, each family in the
/// order given.
pub fn render_block(lab: &str, entries: &[(IpAddr, String)]) -> String {
    let mut out = start_marker(lab);
    out.push('\n');
    let v4 = entries.iter().filter(|(ip, _)| ip.is_ipv4());
    let v6 = entries.iter().filter(|(ip, _)| ip.is_ipv6());
    for (ip, name) in v4.chain(v6) {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out.push_str(&end_marker(lab));
    out.push('\n');
    out
}

/// `text` with lab `lab`'s block(s) taken out and, when `block` is given, `block` put where the
/// first one was (or at the end). Returns the new text and whether an old block was found;
/// `Err` when a start line has no end line (the file is then left for a person to fix).
fn splice(text: &[u8], lab: &str, block: Option<&[u8]>) -> Result<(Vec<u8>, bool), ()> {
    let start = start_marker(lab);
    let end = end_marker(lab);
    let mut out = Vec::with_capacity(text.len() + block.map_or(0, <[u8]>::len));
    let mut found = false;
    let mut inside = false;
    for line in text.split_inclusive(|&b| b == b'\n') {
        let bare = line.trim_ascii();
        if inside {
            if bare == end.as_bytes() {
                inside = false;
            }
            continue;
        }
        if bare == start.as_bytes() {
            inside = true;
            if !found {
                out.extend_from_slice(block.unwrap_or_default());
            }
            found = true;
            continue;
        }
        out.extend_from_slice(line);
    }
    if inside {
        return Err(());
    }
    if let (Some(block), false) = (block, found) {
        if out.last().is_some_and(|&b| b != b'\n') {
            out.push(b'\n');
        }
        out.extend_from_slice(block);
    }
    Ok((out, found))
}

/// Lab names and host names must stay on one line and one field.
fn check_word(s: &str) -> Result<(), ArtifactError> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ArtifactError::HostsName(s.to_string()));
    }
    Ok(())
}

fn unterminated(path: &Path, lab: &str) -> ArtifactError {
    ArtifactError::UnterminatedBlock {
        path: path.to_path_buf(),
        lab: lab.to_string(),
    }
}

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, ArtifactError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ArtifactError::io("read", path, e)),
    }
}

/// An exclusive `flock`, released when dropped (the file is closed).
struct Lock {
    _file: File,
}

impl Lock {
    fn exclusive(lock_path: &Path) -> Result<Lock, ArtifactError> {
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|e| ArtifactError::io("create directory", dir, e))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(lock_path)
            .map_err(|e| ArtifactError::io("open", lock_path, e))?;
        unix::flock(&file, unix::Flock::Exclusive, &|| false)
            .map_err(|e| ArtifactError::io("lock", lock_path, e))?;
        Ok(Lock { _file: file })
    }
}

/// Replace `path`'s content with `data`: a temp file beside the real file (symlinks followed),
/// synced and renamed over it with the old mode and owner; an in-place rewrite when that cannot
/// be done (rename refused with EBUSY/EXDEV, or no temp file can be made beside it).
fn replace_file(path: &Path, data: &[u8]) -> Result<(), ArtifactError> {
    match fs::canonicalize(path) {
        // Keep the inode: see the module documentation.
        Ok(real) => rewrite_in_place(&real, data),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let tmp = temp_path(path);
            if let Err(e) = write_temp(&tmp, data, 0o644, None) {
                let _ = fs::remove_file(&tmp);
                return Err(ArtifactError::io("write", &tmp, e));
            }
            fs::rename(&tmp, path).map_err(|e| {
                let _ = fs::remove_file(&tmp);
                ArtifactError::io("rename", &tmp, e)
            })?;
            sync_parent(path);
            Ok(())
        }
        Err(e) => Err(ArtifactError::io("resolve", path, e)),
    }
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// `.<name>.labwire-<pid>-<seq>` beside `real`.
fn temp_path(real: &Path) -> PathBuf {
    let name = real
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    real.with_file_name(format!(".{name}.labwire-{}-{seq}", std::process::id()))
}

fn write_temp(tmp: &Path, data: &[u8], mode: u32, owner: Option<(u32, u32)>) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(tmp)?;
    if let Some((uid, gid)) = owner {
        let m = f.metadata()?;
        if (m.uid(), m.gid()) != (uid, gid) {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
    }
    // After fchown, which may clear set-id bits.
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    f.write_all(data)?;
    f.sync_all()
}

/// Overwrite `path` where it is, touching only what changes: the bytes `data` shares with the
/// file at its start are not written again, the rest is written after them, and only then is the
/// file cut to its new length. The host's own lines come before labwire's blocks (a new block is
/// appended), so a reader never sees them rewritten or cut short; adding a block is an append
/// and removing the last one a truncation.
fn rewrite_in_place(path: &Path, data: &[u8]) -> Result<(), ArtifactError> {
    use std::io::Read as _;
    use std::os::unix::fs::FileExt as _;
    let err = |e| ArtifactError::io("rewrite", path, e);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(err)?;
    let mut old = Vec::new();
    f.read_to_end(&mut old).map_err(err)?;
    let same = old.iter().zip(data).take_while(|(a, b)| a == b).count();
    if same < data.len() {
        f.write_all_at(&data[same..], same as u64).map_err(err)?;
    }
    if data.len() < old.len() {
        f.set_len(data.len() as u64).map_err(err)?;
    }
    f.sync_all().map_err(err)
}

/// Best effort: make the rename durable.
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::test_dir;

    fn entries(pairs: &[(&str, &str)]) -> Vec<(IpAddr, String)> {
        pairs
            .iter()
            .map(|(ip, n)| (ip.parse().unwrap(), n.to_string()))
            .collect()
    }

    struct Fixture {
        dir: PathBuf,
        hosts: PathBuf,
        lock: PathBuf,
    }

    impl Fixture {
        fn new(name: &str, content: &str) -> Fixture {
            let dir = test_dir(name);
            let hosts = dir.join("hosts");
            fs::write(&hosts, content).unwrap();
            Fixture {
                lock: dir.join("run/labwire/hosts.lock"),
                dir,
                hosts,
            }
        }
        fn read(&self) -> String {
            fs::read_to_string(&self.hosts).unwrap()
        }
        fn add(&self, lab: &str, e: &[(IpAddr, String)]) {
            add_block_locked(&self.hosts, &self.lock, lab, e).unwrap();
        }
        fn remove(&self, lab: &str) -> bool {
            remove_block_locked(&self.hosts, &self.lock, lab).unwrap()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    const BASE: &str = "127.0.0.1\tlocalhost\n\
        # a comment   with  spaces  \n\
        ###### CLAB-other-START ######\n\
        172.20.20.5\tclab-other-a\n\
        ###### CLAB-other-END ######\n\
        ::1\tlocalhost ip6-localhost\n";

    /// Readers racing add/remove cycles always see the host's own lines whole.
    #[test]
    fn readers_never_see_the_host_lines_cut_during_rewrites() {
        let host = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n10.0.0.1\tgateway\n";
        let f = Fixture::new("race", host);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, stop) = (f.hosts.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let text = fs::read(&path).unwrap();
                    assert!(
                        text.starts_with(host.as_bytes()),
                        "read {reads}: {:?}",
                        String::from_utf8_lossy(&text)
                    );
                    reads += 1;
                }
                reads
            })
        };
        let e = entries(&[("10.1.0.2", "clab-a-n1"), ("10.1.0.3", "clab-a-n2")]);
        for i in 0..300 {
            f.add("a", &e);
            if i % 2 == 0 {
                f.add("b", &e);
            }
            f.remove("a");
            f.remove("b");
        }
        stop.store(true, Ordering::Relaxed);
        let reads = reader.join().expect("the reader saw a cut file");
        assert!(reads > 0);
        assert_eq!(f.read(), host);
    }

    #[test]
    fn block_text_puts_ipv4_first() {
        let e = entries(&[
            ("3fff:172:20:20::2", "clab-t-n1"),
            ("172.20.20.2", "clab-t-n1"),
            ("172.20.20.3", "clab-t-n2"),
        ]);
        assert_eq!(
            render_block("t", &e),
            "###### CLAB-t-START ######\n\
             172.20.20.2\tclab-t-n1\n\
             172.20.20.3\tclab-t-n2\n\
             3fff:172:20:20::2\tclab-t-n1\n\
             ###### CLAB-t-END ######\n"
        );
    }

    #[test]
    fn add_replace_remove_keep_everything_else() {
        let f = Fixture::new("hosts-cycle", BASE);
        let mode_before = 0o640;
        fs::set_permissions(&f.hosts, fs::Permissions::from_mode(mode_before)).unwrap();

        f.add(
            "t",
            &entries(&[("172.20.20.2", "clab-t-n1"), ("3fff::2", "clab-t-n1")]),
        );
        let block1 = "###### CLAB-t-START ######\n172.20.20.2\tclab-t-n1\n3fff::2\tclab-t-n1\n###### CLAB-t-END ######\n";
        assert_eq!(f.read(), format!("{BASE}{block1}"));
        assert_eq!(fs::metadata(&f.hosts).unwrap().mode() & 0o7777, mode_before);

        // A line after the block stays after it; replacing keeps the block where it was.
        let mut text = f.read();
        text.push_str("10.0.0.1\tafter\n");
        fs::write(&f.hosts, &text).unwrap();
        f.add("t", &entries(&[("172.20.20.7", "clab-t-n7")]));
        let block2 =
            "###### CLAB-t-START ######\n172.20.20.7\tclab-t-n7\n###### CLAB-t-END ######\n";
        assert_eq!(f.read(), format!("{BASE}{block2}10.0.0.1\tafter\n"));

        assert!(f.remove("t"));
        assert_eq!(f.read(), format!("{BASE}10.0.0.1\tafter\n"));
        assert!(!f.remove("t"));
        assert_eq!(f.read(), format!("{BASE}10.0.0.1\tafter\n"));

        // Only the other lab's block goes when it is removed.
        assert!(f.remove("other"));
        assert_eq!(
            f.read(),
            "127.0.0.1\tlocalhost\n# a comment   with  spaces  \n::1\tlocalhost ip6-localhost\n10.0.0.1\tafter\n"
        );
        assert!(f.lock.exists());
    }

    #[test]
    fn lab_names_that_prefix_each_other_are_distinct() {
        let f = Fixture::new("hosts-prefix", "");
        f.add("a", &entries(&[("10.0.0.1", "x")]));
        f.add("a-b", &entries(&[("10.0.0.2", "y")]));
        assert!(f.remove("a"));
        assert_eq!(
            f.read(),
            "###### CLAB-a-b-START ######\n10.0.0.2\ty\n###### CLAB-a-b-END ######\n"
        );
    }

    #[test]
    fn missing_final_newline_gets_one_before_the_block() {
        let f = Fixture::new("hosts-nonl", "127.0.0.1 localhost");
        f.add("t", &entries(&[("10.0.0.1", "n")]));
        assert_eq!(
            f.read(),
            "127.0.0.1 localhost\n###### CLAB-t-START ######\n10.0.0.1\tn\n###### CLAB-t-END ######\n"
        );
        assert!(f.remove("t"));
        assert_eq!(f.read(), "127.0.0.1 localhost\n");
    }

    #[test]
    fn crlf_and_odd_bytes_survive() {
        let content = b"127.0.0.1 localhost\r\n\xff\xfe raw\n";
        let f = Fixture::new("hosts-bytes", "");
        fs::write(&f.hosts, content).unwrap();
        f.add("t", &entries(&[("10.0.0.1", "n")]));
        assert!(f.remove("t"));
        assert_eq!(fs::read(&f.hosts).unwrap(), content);
    }

    #[test]
    fn missing_file_is_created_and_removing_from_it_is_a_no_op() {
        let f = Fixture::new("hosts-missing", "");
        fs::remove_file(&f.hosts).unwrap();
        assert!(!f.remove("t"));
        assert!(!f.hosts.exists());
        f.add("t", &entries(&[("10.0.0.1", "n")]));
        assert_eq!(fs::metadata(&f.hosts).unwrap().mode() & 0o777, 0o644);
    }

    #[test]
    fn unterminated_block_is_an_error_and_the_file_is_untouched() {
        let text = "127.0.0.1 localhost\n###### CLAB-t-START ######\n10.0.0.1\tn\n";
        let f = Fixture::new("hosts-unterminated", text);
        let err = remove_block_locked(&f.hosts, &f.lock, "t").unwrap_err();
        assert!(
            matches!(err, ArtifactError::UnterminatedBlock { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("hosts"), "{err}");
        assert!(add_block_locked(&f.hosts, &f.lock, "t", &[]).is_err());
        assert_eq!(f.read(), text);
    }

    #[test]
    fn names_with_whitespace_are_refused() {
        let f = Fixture::new("hosts-names", BASE);
        assert!(add_block_locked(&f.hosts, &f.lock, "a b", &[]).is_err());
        let bad = entries(&[("10.0.0.1", "x\ny")]);
        assert!(add_block_locked(&f.hosts, &f.lock, "t", &bad).is_err());
        assert_eq!(f.read(), BASE);
    }

    #[test]
    fn symlinked_hosts_file_is_replaced_behind_the_link() {
        let f = Fixture::new("hosts-symlink", BASE);
        let link = f.dir.join("hosts-link");
        std::os::unix::fs::symlink(&f.hosts, &link).unwrap();
        add_block_locked(&link, &f.lock, "t", &entries(&[("10.0.0.1", "n")])).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(f.read().ends_with("###### CLAB-t-END ######\n"));
    }

    #[test]
    fn adding_and_removing_keep_the_inode() {
        let f = Fixture::new("hosts-inode", BASE);
        let ino = fs::metadata(&f.hosts).unwrap().ino();
        f.add("t", &entries(&[("10.0.0.1", "n")]));
        assert_eq!(fs::metadata(&f.hosts).unwrap().ino(), ino);
        assert!(f.remove("t"));
        assert_eq!(fs::metadata(&f.hosts).unwrap().ino(), ino);
        assert_eq!(f.read(), BASE);
    }

    #[test]
    fn in_place_rewrite_keeps_the_inode() {
        let f = Fixture::new("hosts-inplace", "long old content that is cut\n");
        let ino = fs::metadata(&f.hosts).unwrap().ino();
        rewrite_in_place(&f.hosts, b"short\n").unwrap();
        assert_eq!(f.read(), "short\n");
        assert_eq!(fs::metadata(&f.hosts).unwrap().ino(), ino);
    }

    #[test]
    fn concurrent_adds_from_many_threads_all_land() {
        let f = Fixture::new("hosts-concurrent", BASE);
        std::thread::scope(|s| {
            for i in 0..20 {
                let (hosts, lock) = (&f.hosts, &f.lock);
                s.spawn(move || {
                    let e = entries(&[(&format!("10.1.0.{i}"), &format!("clab-lab{i}-n1"))]);
                    add_block_locked(hosts, lock, &format!("lab{i}"), &e).unwrap();
                });
            }
        });
        let text = f.read();
        assert!(text.starts_with(BASE));
        for i in 0..20 {
            let block = format!(
                "###### CLAB-lab{i}-START ######\n10.1.0.{i}\tclab-lab{i}-n1\n###### CLAB-lab{i}-END ######\n"
            );
            assert_eq!(text.matches(&block).count(), 1, "lab{i} in:\n{text}");
        }
        assert_eq!(text.lines().count(), BASE.lines().count() + 20 * 3);
        // No temp files left behind.
        let stray: Vec<_> = fs::read_dir(&f.dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".labwire-"))
            .collect();
        assert!(stray.is_empty(), "{stray:?}");
    }
}

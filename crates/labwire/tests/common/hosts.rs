//! labwire's block in /etc/hosts, read under labwire's own hosts lock.

use std::os::fd::AsRawFd as _;

/// /etc/hosts read under labwire's hosts lock, so a concurrent rewrite is never half-seen.
pub fn read_etc_hosts() -> String {
    let lock_path = lab::paths::lock_dir().join("hosts.lock");
    let _ = std::fs::create_dir_all(lab::paths::lock_dir());
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
    // SAFETY: flock on a descriptor `lock` keeps open; released when it is closed.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_SH) };
    assert_eq!(rc, 0, "flock {}", lock_path.display());
    let t = std::fs::read_to_string("/etc/hosts").expect("read /etc/hosts");
    drop(lock);
    t
}

/// The lines of lab `lab`'s block (markers excluded), or None.
pub fn hosts_block(text: &str, lab: &str) -> Option<Vec<String>> {
    let start = format!("###### CLAB-{lab}-START ######");
    let end = format!("###### CLAB-{lab}-END ######");
    let lines: Vec<&str> = text.lines().collect();
    let s = lines.iter().position(|l| *l == start)?;
    let e = lines[s..].iter().position(|l| *l == end).map(|e| e + s)?;
    Some(lines[s + 1..e].iter().map(|l| l.to_string()).collect())
}

/// The file without any labwire/containerlab block (other tests' labs come and go meanwhile).
pub fn without_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    for l in text.lines() {
        if l.starts_with("###### CLAB-") && l.ends_with("-START ######") {
            in_block = true;
        } else if l.starts_with("###### CLAB-") && l.ends_with("-END ######") {
            in_block = false;
        } else if !in_block {
            out.push(l.to_string());
        }
    }
    out
}

//! Where labwire keeps host-wide things: lab state, locks. Overridable for tests by environment.

use std::path::PathBuf;

/// Recorded state of deployed labs: `<state>/labs/<lab>/{lab.json,journal}`.
pub fn state_root() -> PathBuf {
    std::env::var_os("LABWIRE_STATE_DIR")
        .map_or_else(|| PathBuf::from("/var/lib/labwire"), PathBuf::from)
}

pub fn lab_state_dir(lab: &str) -> PathBuf {
    state_root().join("labs").join(lab)
}

/// Locks live on tmpfs: they mean nothing after a reboot.
pub fn lock_dir() -> PathBuf {
    std::env::var_os("LABWIRE_RUN_DIR").map_or_else(|| PathBuf::from("/run/labwire"), PathBuf::from)
}

/// The hosts file labwire edits (`LABWIRE_HOSTS_FILE` lets tests use a scratch copy).
pub fn hosts_file() -> PathBuf {
    std::env::var_os("LABWIRE_HOSTS_FILE")
        .map_or_else(|| PathBuf::from("/etc/hosts"), PathBuf::from)
}

/// The directory for per-lab ssh client configs, when the host has one.
pub fn ssh_config_dir() -> PathBuf {
    std::env::var_os("LABWIRE_SSH_CONFIG_DIR")
        .map_or_else(|| PathBuf::from("/etc/ssh/ssh_config.d"), PathBuf::from)
}

/// Runtime files of a deployed lab's nodes (hosts, hostname, console logs), on tmpfs.
pub fn lab_run_dir(lab: &str) -> PathBuf {
    lock_dir().join("run").join(lab)
}

/// Make `dir` (and its missing parents) and set it to 0700: labwire's own directories hold image
/// content (set-uid programs a node installed in its writable layer), VM disks and initramfs
/// images with the node's secrets. A directory that exists gets its mode corrected, since a
/// release before this one made them 0755.
pub fn private_dir(dir: &std::path::Path) -> crate::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(crate::error::io(format!("create {}", dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(crate::error::io(format!("make {} private", dir.display())))
}

/// The directories of a lab that hold what other users must not reach, each 0700: the state root,
/// `labs/` and the lab's state directory (node layers, VM disks), and the runtime root and the
/// lab's runtime directory (initramfs images, console logs).
pub fn private_lab_dirs(lab: &str) -> crate::Result<()> {
    for d in [
        state_root(),
        state_root().join("labs"),
        lab_state_dir(lab),
        lock_dir().join("run"),
        lab_run_dir(lab),
    ] {
        private_dir(&d)?;
    }
    Ok(())
}

/// A lab name given on the command line becomes part of paths labwire removes: it must be a name
/// the topology would accept (letters, digits, `.`, `_`, `-`; no `..`; not empty).
pub fn check_lab_name(name: &str) -> crate::Result<()> {
    topology::node::check_node_name(name).map_err(|e| crate::Error::BadLabName {
        name: name.to_string(),
        reason: e.to_string(),
    })
}

/// Make sure labwire's runtime directory is on tmpfs. Nodes' runtime files (hosts, hostname,
/// console logs) are created there by the thousand; where `/run` is not a tmpfs (some minimal VMs),
/// creating them on a disk file system costs more than starting the node. The mount stays (like
/// `/run/netns`): it holds nothing after a reboot anyway.
pub fn ensure_run_tmpfs() -> crate::Result<()> {
    let dir = lock_dir();
    std::fs::create_dir_all(&dir).map_err(crate::error::io(format!("create {}", dir.display())))?;
    // Unknown (statfs failed): leave it as it is.
    if unix::is_tmpfs(&dir).unwrap_or(true) {
        return Ok(());
    }
    unix::mount_tmpfs(c"labwire", &dir, c"mode=755").map_err(crate::error::io(format!(
        "mount a tmpfs on {}",
        dir.display()
    )))?;
    Ok(())
}

//! The files a deployed lab leaves for its users: the Ansible and Nornir inventories,
//! `topology-data.json`, `authorized_keys` and an SSH client config in the lab directory, and the
//! lab's block in `/etc/hosts` ([`hosts`]).
//!
//! Everything is rendered from the normalised [`Lab`] (never from YAML) by pure functions that
//! return text; [`write_lab_artifacts`] and [`hosts`] are the only parts that touch the file
//! system, and they write nothing outside the lab directory and the hosts file they are given.

pub mod hosts;
mod inventory;
mod ssh;
pub mod topology_data;
mod yaml;

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use topology::Lab;

pub use inventory::{
    ansible_inventory, nornir_inventory, ANSIBLE_GROUP_LABEL, ANSIBLE_NO_HOST_VAR_LABEL,
    NORNIR_GROUP_LABEL_PREFIX,
};
pub use ssh::{collect_ssh_pub_keys, ssh_config};
pub use topology_data::{topology_data, MGMT_INTERFACE};

/// File names of the artifacts inside the lab directory.
pub const ANSIBLE_INVENTORY_FILE: &str = "ansible-inventory.yml";
pub const NORNIR_INVENTORY_FILE: &str = "nornir-simple-inventory.yml";
pub const TOPOLOGY_DATA_FILE: &str = "topology-data.json";
pub const AUTHORIZED_KEYS_FILE: &str = "authorized_keys";
pub const SSH_CONFIG_FILE: &str = "ssh_config";

/// Why an artifact could not be written.
///
/// Messages name the operation and the file; the OS reason is the error's source, so print the
/// chain (`{:#}` with anyhow) to get `write /path/x: Permission denied (os error 13)`.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: the block of lab `{lab}` has a START line but no END line; fix the file by hand", path.display())]
    UnterminatedBlock { path: PathBuf, lab: String },
    #[error("lab directory {} is a symbolic link or not a directory; labwire writes only into a directory of its own there: remove it, or deploy from another directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("`{0}` cannot go into a hosts file: names must be non-empty, without spaces or control characters")]
    HostsName(String),
}

impl ArtifactError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> ArtifactError {
        ArtifactError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Write every lab-directory artifact into `lab.dir` (created if missing), each atomically with
/// mode 0644, and return the paths written: the Ansible inventory, the Nornir inventory,
/// `topology-data.json`, `authorized_keys` (`keys`, one per line) and `ssh_config`.
///
/// The files are written relative to the directory opened without following a link: a lab
/// directory replaced by a symbolic link (to `/etc`, someone's `~/.ssh`) is refused, never written
/// through.
pub fn write_lab_artifacts(lab: &Lab, keys: &[String]) -> Result<Vec<PathBuf>, ArtifactError> {
    let dir = open_lab_dir(&lab.dir)?;
    let data = || {
        let mut data = topology_data::topology_data_text(lab, keys);
        data.push('\n');
        data
    };
    let authorized = || {
        let mut authorized = keys.join("\n");
        if !authorized.is_empty() {
            authorized.push('\n');
        }
        authorized
    };
    type Render<'a> = &'a (dyn Fn() -> String + Sync);
    let files: [(&str, Render); 5] = [
        (ANSIBLE_INVENTORY_FILE, &|| ansible_inventory(lab)),
        (NORNIR_INVENTORY_FILE, &|| nornir_inventory(lab)),
        (TOPOLOGY_DATA_FILE, &data),
        (AUTHORIZED_KEYS_FILE, &authorized),
        (SSH_CONFIG_FILE, &|| ssh_config(lab)),
    ];
    // Each file rendered and written by a thread of its own: the writes' syncs overlap (a
    // converging deploy that adds one node to a running lab waits for one, not five).
    let dir = &dir;
    let results: Vec<Result<PathBuf, ArtifactError>> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .map(|(name, text)| {
                s.spawn(move || {
                    let path = lab.dir.join(name);
                    write_atomic_in(dir, &path, text().as_bytes(), 0o644).map(|()| path)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an artifact writer panicked"))
            .collect()
    });
    results.into_iter().collect()
}

/// Make the lab directory if missing (not its parents: the topology's directory exists) and open
/// it, refusing a symbolic link or anything not a directory.
pub fn open_lab_dir(path: &Path) -> Result<fs::File, ArtifactError> {
    match fs::DirBuilder::new().create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(ArtifactError::io("create directory", path, e)),
    }
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
                ArtifactError::NotADirectory(path.to_path_buf())
            }
            _ => ArtifactError::io("open directory", path, e),
        })
}

/// Write `data` atomically (a temporary file, synced, given `mode`, renamed) as a file of the open
/// directory `dir` (`path` names it in messages): the
/// temporary file is created and renamed relative to `dir`, never through a link.
fn write_atomic_in(
    dir: &fs::File,
    path: &Path,
    data: &[u8],
    mode: u32,
) -> Result<(), ArtifactError> {
    use std::ffi::CString;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp_name = format!(".{name}.labwire-{}-{seq}", std::process::id());
    let tmp = path.with_file_name(&tmp_name);
    let c = |s: &str| {
        CString::new(s).map_err(|e| ArtifactError::io("write", path, io::Error::other(e)))
    };
    let (c_tmp, c_name) = (c(&tmp_name)?, c(&name)?);
    if same_file(path, data, mode) {
        return Ok(());
    }
    let result = (|| -> io::Result<()> {
        let mut f = unix::create_new_at(dir, &c_tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        f.sync_all()?;
        unix::rename_at(dir, &c_tmp, &c_name)
    })();
    result.map_err(|e| {
        // A missing temporary file is fine: the error came before it was made.
        let _ = unix::unlink_at(dir, &c_tmp);
        ArtifactError::io("write", &tmp, e)
    })
}

/// Whether `path` is already a regular file with exactly `data` and `mode` (then it is left as it
/// is: a deploy that changes a running lab rewrites only the files that change). Never read
/// through a link.
fn same_file(path: &Path, data: &[u8], mode: u32) -> bool {
    use std::io::Read as _;
    let Ok(mut f) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    else {
        return false;
    };
    let Ok(meta) = f.metadata() else {
        return false;
    };
    if !meta.is_file()
        || meta.len() != data.len() as u64
        || meta.permissions().mode() & 0o7777 != mode
    {
        return false;
    }
    let mut old = Vec::with_capacity(data.len());
    f.read_to_end(&mut old).is_ok() && old == data
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "labwire-artifacts-{name}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(test)]
pub(crate) mod test_lab {
    use std::path::Path;

    use topology::Lab;

    pub const YAML: &str = r#"
name: t
topology:
  groups:
    leaf: {}
  nodes:
    n1:
      kind: linux
      image: alpine:3
      group: leaf
      labels: {ansible-group: edge, site: lab1}
    n2:
      kind: nokia_srlinux
      type: ixr-d2
      mgmt-ipv4: 172.20.20.9
      labels: {ansible-group: "yes", nornir-group: spine, nornir-group-2: core}
    n3:
      kind: linux
      network-mode: none
      labels: {ansible-group: edge}
    br0: {kind: bridge}
  links:
    - type: veth
      endpoints:
        - {node: n1, interface: e1-1, ipv4: 10.0.0.1/30}
        - {node: n2, interface: e1-1, ipv4: 10.0.0.2/30}
    - endpoints: ["n1:eth2", "host:n1-eth2"]
    - endpoints: ["n1:eth3", "mgmt-net:n1-eth3"]
    - endpoints: ["n1:eth4", "br0:n1-eth4"]
    - type: macvlan
      endpoint: {node: n2, interface: eth5}
      host-interface: eth0
    - type: vxlan
      endpoint: {node: n2, interface: vx0}
      remote: 10.0.0.2
      vni: 100
    - type: dummy
      endpoint: {node: n3, interface: d0}
"#;

    pub fn lab() -> Lab {
        let src = topology::Source::from_text("t.clab.yml", YAML, Path::new("/tmp/x"));
        topology::load(&src, &topology::Options::default())
            .expect("test topology loads")
            .lab
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn writes_every_artifact_atomically_with_mode_0644() {
        let root = test_dir("write");
        let mut lab = test_lab::lab();
        lab.dir = root.join("clab-t");
        let keys = vec!["ssh-ed25519 AAAA".to_string(), "ssh-rsa BBBB".to_string()];
        let paths = write_lab_artifacts(&lab, &keys).unwrap();
        let names: Vec<_> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                ANSIBLE_INVENTORY_FILE,
                NORNIR_INVENTORY_FILE,
                TOPOLOGY_DATA_FILE,
                AUTHORIZED_KEYS_FILE,
                SSH_CONFIG_FILE
            ]
        );
        for p in &paths {
            assert_eq!(p.parent().unwrap(), lab.dir);
            assert_eq!(
                fs::metadata(p).unwrap().mode() & 0o777,
                0o644,
                "{}",
                p.display()
            );
        }
        assert_eq!(
            fs::read_to_string(lab.dir.join(AUTHORIZED_KEYS_FILE)).unwrap(),
            "ssh-ed25519 AAAA\nssh-rsa BBBB\n"
        );
        assert_eq!(
            fs::read_to_string(lab.dir.join(ANSIBLE_INVENTORY_FILE)).unwrap(),
            ansible_inventory(&lab)
        );
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(lab.dir.join(TOPOLOGY_DATA_FILE)).unwrap()).unwrap();
        assert_eq!(json, topology_data(&lab, &keys));

        // A second run overwrites and leaves no temp files.
        write_lab_artifacts(&lab, &[]).unwrap();
        assert_eq!(
            fs::read_to_string(lab.dir.join(AUTHORIZED_KEYS_FILE)).unwrap(),
            ""
        );
        let count = fs::read_dir(&lab.dir).unwrap().count();
        assert_eq!(count, 5);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn io_errors_name_operation_and_file() {
        let root = test_dir("err");
        let blocker = root.join("not-a-dir");
        fs::write(&blocker, "").unwrap();
        let mut lab = test_lab::lab();
        lab.dir = blocker.join("clab-t");
        let err = write_lab_artifacts(&lab, &[]).unwrap_err();
        let msg = err.to_string();
        assert_eq!(msg, format!("create directory {}", lab.dir.display()));
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("os error"), "{source}");
        fs::remove_dir_all(&root).unwrap();
    }
}

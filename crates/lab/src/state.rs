//! A deployed lab's recorded state: the normalised lab (`lab.json`) and a journal of every host
//! object, written *before* the object is made, so `destroy` can remove everything even after the
//! deploying process was killed at any instant.
//!
//! The journal is append-only JSON lines on an O_APPEND descriptor; a line is one `write(2)`, so a
//! crash leaves at worst a torn last line, which reading skips. Files are created 0600.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use runtime::docker::EngineKind;
pub use runtime::engine::RecordedContainer;
use runtime::process::ProcId;
use runtime::Made;
use serde::{Deserialize, Serialize};
use topology::Lab;

use crate::error::{io, Result};

/// One object labwire is about to make (or has made) on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Entry {
    /// The lab directory; `created` when labwire made it.
    LabDir { path: PathBuf, created: bool },
    /// About to start a node.
    Spawning { node: String },
    /// A node's init is running.
    Node { node: String, proc: ProcId },
    /// A node's container: recorded with its name before it is created (`id` none), then again
    /// with the engine's id. Its first process is recorded as the node's `Node` entry. `engine`
    /// made it, reached at `socket` (entries written before Podman name neither: Docker at its
    /// default socket).
    Container {
        node: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default)]
        engine: EngineKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        socket: Option<PathBuf>,
    },
    /// The lab's management network in a container engine (made or joined): destroy removes it
    /// when labwire made it and no container uses it any more.
    EngineNetwork {
        engine: EngineKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        socket: Option<PathBuf>,
        name: String,
    },
    /// About to accept a bridge's traffic in the Docker engine's `DOCKER-USER` chain (`tool` is
    /// iptables or ip6tables); removed with the bridge.
    FirewallAccept { tool: String, bridge: String },
    /// About to register /run/netns/<name> for the namespace whose nsfs inode is `ino`: destroy
    /// unregisters the name only while it still holds that namespace (entries written before
    /// labwire recorded the inode have none, and are trusted).
    Netns {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ino: Option<u64>,
    },
    /// The engine refused to create container `name` (the name is someone else's): destroy never
    /// removes a container by that name.
    ContainerNotMade { name: String },
    /// About to add address `addr/prefix` to host link `link`, which labwire did not make (a
    /// management bridge that already existed): destroy removes the address again, once no other
    /// lab uses that bridge.
    HostAddress {
        link: String,
        addr: std::net::IpAddr,
        prefix: u8,
    },
    /// About to bring up host link `name`, which labwire did not make and found down (a bridge
    /// named as the management bridge or by a bridge node): destroy sets it down again, once no
    /// other lab uses it.
    HostLinkUp { name: String },
    /// About to install the management network's flood filter (see
    /// [`crate::mgmt_fabric::filter_flood`]), shared by every lab: the last lab out removes it.
    MgmtFloodFilter,
    /// About to make a link in the host namespace (deleted on destroy only if its MAC matches).
    HostLink { name: String, mac: String },
    /// About to make a bridge in the host; `shared` for a management bridge other labs may use.
    Bridge {
        name: String,
        mac: String,
        shared: bool,
    },
    /// About to write the /etc/hosts block.
    HostsBlock { path: PathBuf },
    /// About to write an ssh client config.
    SshConfig { path: PathBuf },
    /// About to make a cgroup directory for a node (removed with everything below it).
    Cgroup { path: PathBuf },
    /// A node runs from this image (its config digest): `image rm` refuses it while recorded.
    NodeImage { node: String, id: String },
    /// The node was stopped (`labwire stop`), its network namespace kept; a later `Node` entry
    /// for it says it runs again.
    Stopped { node: String },
    /// The deploy finished.
    Done,
}

pub struct Journal {
    file: Mutex<File>,
}

impl Journal {
    /// Open (creating) the journal of a lab.
    pub fn open(dir: &Path) -> Result<Journal> {
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        let path = dir.join("journal");
        let file = File::options()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(format!("open {}", path.display())))?;
        Ok(Journal {
            file: Mutex::new(file),
        })
    }

    /// Record entries with one write.
    pub fn record(&self, entries: &[Entry]) -> Result<()> {
        self.write(entries).map_err(io("write the journal"))
    }

    fn write(&self, entries: &[Entry]) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut buf, e)?;
            buf.push(b'\n');
        }
        let mut f = self.file.lock().expect("journal lock");
        f.write_all(&buf)
    }
}

impl From<&Made> for Entry {
    fn from(m: &Made) -> Entry {
        match m.clone() {
            Made::Process { node, proc } => Entry::Node { node, proc },
            Made::Cgroup { path } => Entry::Cgroup { path },
            Made::ContainerNotMade { name } => Entry::ContainerNotMade { name },
            Made::Container {
                node,
                name,
                id,
                engine,
                socket,
            } => Entry::Container {
                node,
                name,
                id,
                engine,
                socket,
            },
            Made::EngineNetwork {
                engine,
                socket,
                name,
            } => Entry::EngineNetwork {
                engine,
                socket,
                name,
            },
        }
    }
}

/// A runtime records what it makes in the lab's journal.
impl runtime::Record for Journal {
    fn record(&self, made: &[Made]) -> std::io::Result<()> {
        let entries: Vec<Entry> = made.iter().map(Entry::from).collect();
        self.write(&entries)
    }
}

/// Everything known about one deployed lab.
pub struct Recorded {
    pub dir: PathBuf,
    pub lab: Option<Lab>,
    pub entries: Vec<Entry>,
}

impl Recorded {
    pub fn read(dir: &Path) -> Recorded {
        let lab = std::fs::read(dir.join("lab.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Lab>(&b).ok());
        let entries = std::fs::read_to_string(dir.join("journal"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        Recorded {
            dir: dir.to_path_buf(),
            lab,
            entries,
        }
    }

    /// Each node's first process, as recorded.
    pub fn procs(&self) -> Vec<(String, ProcId)> {
        crate::destroy::teardown(&self.entries).procs
    }

    /// Containers, one per (engine, name), in order, with the id when recorded.
    pub fn containers(&self) -> Vec<RecordedContainer> {
        crate::destroy::teardown(&self.entries).containers
    }

    /// A node's first process as last recorded (a restart records a new one).
    pub fn node_proc(&self, node: &str) -> Option<ProcId> {
        self.entries.iter().rev().find_map(|e| match e {
            Entry::Node { node: n, proc } if n == node => Some(*proc),
            _ => None,
        })
    }

    /// Each node's first process as last recorded, and whether `labwire stop` stopped it since
    /// (one pass over the journal, for a lab's every node at once).
    pub fn node_states(&self) -> std::collections::HashMap<&str, (Option<ProcId>, bool)> {
        let mut out: std::collections::HashMap<&str, (Option<ProcId>, bool)> =
            std::collections::HashMap::new();
        for e in &self.entries {
            match e {
                Entry::Node { node, proc } => {
                    out.insert(node, (Some(*proc), false));
                }
                Entry::Stopped { node } => {
                    out.entry(node).or_default().1 = true;
                }
                _ => {}
            }
        }
        out
    }

    /// Whether the node was stopped by `labwire stop` and not started since.
    pub fn stopped(&self, node: &str) -> bool {
        self.entries
            .iter()
            .rev()
            .find_map(|e| match e {
                Entry::Node { node: n, .. } if n == node => Some(false),
                Entry::Stopped { node: n } if n == node => Some(true),
                _ => None,
            })
            .unwrap_or(false)
    }

    pub fn done(&self) -> bool {
        self.entries.contains(&Entry::Done)
    }
}

/// Write `lab.json` atomically, 0600.
pub fn write_lab(dir: &Path, lab: &Lab) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    // Streamed: a 10,000-node lab's state is tens of megabytes as one buffer.
    write_private_with(dir, "lab.json", &mut |w| {
        serde_json::to_writer_pretty(w, lab).map_err(std::io::Error::from)
    })
}

/// Replace `dir/name` with `data` atomically (a 0600 temporary renamed over it).
pub(crate) fn write_private(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    write_private_with(dir, name, &mut |w| w.write_all(data))
}

/// Replace `dir/name` with what `fill` writes, atomically (a 0600 temporary renamed over it).
fn write_private_with(
    dir: &Path,
    name: &str,
    fill: &mut dyn FnMut(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let f = File::options()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(format!("write {}", tmp.display())))?;
    let mut w = std::io::BufWriter::new(f);
    fill(&mut w)
        .and_then(|()| w.flush())
        .map_err(io(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, dir.join(name)).map_err(io(format!("rename {}", tmp.display())))
}

/// Names of every lab with recorded state.
pub fn recorded_labs() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(crate::paths::state_root().join("labs"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| crate::paths::check_lab_name(n).is_ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_entries_without_an_engine_are_docker_ones() {
        let old = r#"{"op":"container","node":"a","name":"clab-x-a","id":"abc"}"#;
        let e: Entry = serde_json::from_str(old).unwrap();
        assert_eq!(
            e,
            Entry::Container {
                node: "a".into(),
                name: "clab-x-a".into(),
                id: Some("abc".into()),
                engine: EngineKind::Docker,
                socket: None,
            }
        );
        let podman = Entry::Container {
            node: "b".into(),
            name: "clab-x-b".into(),
            id: None,
            engine: EngineKind::Podman,
            socket: Some("/run/podman/podman.sock".into()),
        };
        let line = serde_json::to_string(&podman).unwrap();
        assert!(line.contains(r#""engine":"podman""#), "{line}");
        assert_eq!(serde_json::from_str::<Entry>(&line).unwrap(), podman);
    }

    #[test]
    fn containers_merge_their_two_entries() {
        let entry = |id: Option<&str>| Entry::Container {
            node: "b".into(),
            name: "clab-x-b".into(),
            id: id.map(str::to_string),
            engine: EngineKind::Podman,
            socket: None,
        };
        let rec = Recorded {
            dir: PathBuf::from("/nonexistent"),
            lab: None,
            entries: vec![entry(None), entry(Some("f00"))],
        };
        let c = rec.containers();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].id.as_deref(), Some("f00"));
        assert_eq!(c[0].engine, EngineKind::Podman);
    }
}

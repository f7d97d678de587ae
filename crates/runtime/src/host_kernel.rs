//! What the host's kernel offers the nodes that share it (native nodes and containers): whether
//! a kernel module a node names in `kernel-modules` is loaded, built in, or loadable. Owns only
//! these read-only checks of `/sys/module`, `/proc/modules` and `/lib/modules/<release>`; it
//! never loads a module (that changes the host for good) and says nothing of a VM node's kernel.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use topology::Node;

/// One problem per kernel module the nodes ask for and the host's kernel lacks, naming the
/// nodes, the module and every place looked at.
pub fn missing_modules(nodes: &[&Node]) -> Vec<String> {
    let mut wanted: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in nodes {
        for m in &n.kernel_modules {
            wanted.entry(m.as_str()).or_default().push(n.name.as_str());
        }
    }
    if wanted.is_empty() {
        return Vec::new();
    }
    let host = HostKernel::read(Path::new("/"));
    wanted
        .into_iter()
        .filter_map(|(m, users)| {
            host.lacks(m).map(|why| {
                let who = if users.len() == 1 {
                    format!("node {}", users[0])
                } else {
                    format!("nodes {}", users.join(", "))
                };
                format!(
                    "{who}: kernel module `{m}` (kernel-modules) is missing from the host's kernel {}, which {who} shares: {why}; give {} `runtime: vm` (a VM node has its own kernel) or use a host kernel with it",
                    host.release,
                    if users.len() == 1 { "it" } else { "them" },
                )
            })
        })
        .collect()
}

/// The host kernel's release and where its modules are described, under a root directory (`/`,
/// or a test's copy).
struct HostKernel {
    root: PathBuf,
    release: String,
}

impl HostKernel {
    fn read(root: &Path) -> HostKernel {
        let release = std::fs::read_to_string(root.join("proc/sys/kernel/osrelease"))
            .map(|r| r.trim().to_string())
            .unwrap_or_default();
        HostKernel {
            root: root.to_path_buf(),
            release,
        }
    }

    /// Why the kernel lacks `module`, or None when it has it.
    fn lacks(&self, module: &str) -> Option<String> {
        // The kernel names modules with `_`; modprobe takes `-` for `_`.
        let name = module.replace('-', "_");
        let loaded = self.root.join("sys/module").join(&name);
        if loaded.exists() {
            return None;
        }
        let dir = self.root.join("lib/modules").join(&self.release);
        let builtin = dir.join("modules.builtin");
        if lists_module(&builtin, &name) {
            return None;
        }
        let can_load = self.root.join("proc/modules").exists();
        let dep = dir.join("modules.dep");
        if can_load && lists_module(&dep, &name) {
            return None;
        }
        let mut why = format!(
            "not loaded ({}), not built in ({})",
            loaded.display(),
            builtin.display()
        );
        if can_load {
            why.push_str(&format!(", not among its modules ({})", dep.display()));
        } else {
            why.push_str(", and this kernel cannot load modules (no /proc/modules)");
        }
        Some(why)
    }
}

/// Whether a `modules.builtin` or `modules.dep` file lists a module file named `name` (any
/// compression, `-` and `_` alike).
fn lists_module(file: &Path, name: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(file) else {
        return false;
    };
    text.lines().any(|l| {
        let path = l.split(':').next().unwrap_or_default();
        let base = path.rsplit('/').next().unwrap_or_default();
        let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
            .iter()
            .find_map(|ext| base.strip_suffix(ext));
        stem.is_some_and(|s| s.replace('-', "_") == name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for (p, text) in files {
            let p = t.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        t
    }

    #[test]
    fn a_kernel_without_loadable_modules_lacks_what_is_not_built_in() {
        let t = root(&[
            ("proc/sys/kernel/osrelease", "6.9.0-test\n"),
            (
                "lib/modules/6.9.0-test/modules.builtin",
                "kernel/drivers/net/vxlan/vxlan.ko\n",
            ),
        ]);
        std::fs::create_dir_all(t.path().join("sys/module/bridge")).unwrap();
        let k = HostKernel::read(t.path());
        assert_eq!(k.lacks("vxlan"), None);
        assert_eq!(k.lacks("bridge"), None);
        let why = k.lacks("bonding").expect("bonding is missing");
        assert!(why.contains("cannot load modules"), "{why}");
        assert!(why.contains("sys/module/bonding"), "{why}");
    }

    #[test]
    fn a_loadable_module_counts_whatever_its_compression() {
        let t = root(&[
            ("proc/sys/kernel/osrelease", "6.12.0-test\n"),
            ("proc/modules", ""),
            (
                "lib/modules/6.12.0-test/modules.dep",
                "kernel/drivers/net/bonding/bonding.ko.xz: kernel/net/tls/tls.ko.xz\nkernel/net/8021q/8021q.ko.zst:\n",
            ),
        ]);
        let k = HostKernel::read(t.path());
        assert_eq!(k.lacks("bonding"), None);
        assert_eq!(k.lacks("8021q"), None);
        let why = k.lacks("vrf").expect("vrf is missing");
        assert!(why.contains("modules.dep"), "{why}");
    }
}

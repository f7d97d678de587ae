//! Which host paths a topology deployed through the API may name: only those inside the server's
//! allowed directory. Checked on the parsed lab (the topology crate has resolved every relative
//! path), before anything is made: bind sources, startup-config, license, kernel files, the
//! topology file itself; `env-files` are refused while the topology is read. Host-side stage
//! commands are refused outright: they would run as root on the host.

use std::path::{Component, Path, PathBuf};

use topology::{ExecTarget, Lab};

/// `p` with `.` and `..` taken out lexically (for paths that do not exist yet).
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Whether `p` (relative paths start at `base`) lies inside `root`, links resolved.
pub fn inside(root: &Path, base: &Path, p: &Path) -> bool {
    let abs = normalise(&base.join(p));
    let real = std::fs::canonicalize(&abs).unwrap_or(abs);
    real.starts_with(root)
}

/// Every path of `lab` outside `root`, and every host-side command, as one message each.
pub fn refusals(lab: &Lab, root: &Path, base: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |node: &str, field: &str, p: &Path| {
        if !inside(root, base, p) {
            out.push(format!(
                "node {node}: {field} {} is outside the allowed directory {}",
                p.display(),
                root.display()
            ));
        }
    };
    for n in &lab.nodes {
        for b in &n.binds {
            check(&n.name, "bind source", &b.source);
        }
        if let Some(p) = &n.startup_config {
            check(&n.name, "startup-config", p);
        }
        if let Some(p) = &n.license {
            check(&n.name, "license", p);
        }
        if let Some(k) = n.kernel.as_deref().filter(|k| k.contains('/')) {
            check(&n.name, "kernel", Path::new(k));
        }
    }
    for n in &lab.nodes {
        for spec in n.stages.values() {
            if spec.exec.iter().any(|e| e.target == ExecTarget::Host) {
                out.push(format!(
                    "node {}: stage commands on the host are not run for API deploys (they would run as root on the server)",
                    n.name
                ));
            }
        }
    }
    out
}

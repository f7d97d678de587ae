//! What VM nodes boot: Debian's kernel, fetched once per machine with images/kernel/fetch.sh.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::open_nos::repo_root;
use super::*;

pub const KERNEL_DIR: &str = "/var/tmp/lwt-kernel";

/// Debian's kernel, fetched (once) with images/kernel/fetch.sh; returns the vmlinuz path.
pub fn debian_kernel() -> PathBuf {
    static ONCE: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut k = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = k.as_ref() {
        return p.clone();
    }
    let mut c = Command::new("bash");
    c.arg(repo_root().join("images/kernel/fetch.sh"))
        .arg(KERNEL_DIR);
    let out = run_timeout(c, Duration::from_secs(600));
    assert!(
        out.status.success(),
        "images/kernel/fetch.sh failed: {}",
        describe(&out)
    );
    let p = PathBuf::from(text(&out.stdout).trim());
    assert!(p.is_file(), "fetch.sh printed {}", p.display());
    *k = Some(p.clone());
    p
}

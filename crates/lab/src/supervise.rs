//! Keeping a deployed lab's processes parented: the deploy forks a per-lab subreaper before it starts
//! any node, so node inits are reaped when they die even where the host's PID 1 does not reap
//! adopted processes.
//!
//! The process tree of `labwire deploy`:
//!
//! ```text
//! labwire (the command the user waits on)  ── waits for the worker's exit code, forwards Ctrl-C
//! └─ labwire-init reaper --lab LAB          ── new session, child subreaper; lives while nodes do
//!    └─ labwire (worker)                    ── does the deploy; node inits end up under the reaper
//! ```
//!
//! If the command the user waits on dies (even by SIGKILL), the worker sees its lifeline pipe close
//! and rolls the deploy back, as for Ctrl-C.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use unix::Forked;

use crate::error::{io, Error, Result};

/// Where this process stands after [`split`].
pub enum Split {
    /// The original process: the deploy has finished with this exit code.
    Waited(u8),
    /// The worker: do the deploy, then call [`Worker::finish`].
    Worker(Worker),
}

pub struct Worker {
    result: File,
}

static WORKER_PID: AtomicI32 = AtomicI32::new(0);
/// A signal that arrived before the worker's pid was known.
static PENDING: AtomicI32 = AtomicI32::new(0);

/// Async-signal-safe: one kill call or one atomic store.
extern "C" fn forward(sig: libc::c_int) {
    let pid = WORKER_PID.load(Ordering::SeqCst);
    if pid > 0 {
        unix::kill(pid, sig);
    } else {
        PENDING.store(sig, Ordering::SeqCst);
    }
}

fn install_forwarding() {
    unix::on_signals(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP], forward, true);
}

fn pipe() -> Result<(File, File)> {
    unix::pipe().map_err(io("create a pipe"))
}

fn read_all(mut f: File) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = f.read_to_end(&mut out);
    out
}

/// Fork the reaper and the worker. Must be called while the process has a single thread.
pub fn split(lab: &str) -> Result<Split> {
    let init = runtime::node::init_path()?;
    split_with(lab, &init)
}

fn split_with(lab: &str, init: &Path) -> Result<Split> {
    let (result_r, result_w) = pipe()?;
    let (pid_r, mut pid_w) = pipe()?;
    let (life_r, life_w) = pipe()?;
    let init_c = CString::new(init.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Path("bad labwire-init path".into()))?;
    let args: Vec<CString> = ["labwire-init", "reaper", "--lab", lab]
        .iter()
        .map(|a| CString::new(*a).expect("no NUL in lab names"))
        .collect();
    // From here on Ctrl-C must reach the worker, not end this process.
    install_forwarding();
    let reaper = match unix::fork().map_err(io("fork"))? {
        Forked::Parent(pid) => pid,
        Forked::Child => 0,
    };
    if reaper > 0 {
        // The original process.
        drop(result_w);
        drop(pid_w);
        drop(life_r);
        let pid = String::from_utf8_lossy(&read_all(pid_r))
            .trim()
            .parse::<i32>()
            .unwrap_or(0);
        WORKER_PID.store(pid, Ordering::SeqCst);
        let pending = PENDING.swap(0, Ordering::SeqCst);
        if pending != 0 && pid > 0 {
            // A signal that arrived before the worker's pid was known.
            unix::kill(pid, pending);
        }
        let answer = read_all(result_r);
        // Keep the lifeline open until the worker has answered.
        drop(life_w);
        let code = answer.first().copied().unwrap_or(1);
        let reaper_exits = answer.get(1) == Some(&1);
        if reaper_exits {
            // No node outlived the deploy: the reaper is leaving; collect it.
            unix::wait_child(reaper);
        }
        return Ok(Split::Waited(code));
    }
    // The reaper-to-be.
    unix::new_session_as_subreaper();
    drop(result_r);
    drop(pid_r);
    drop(life_w);
    let worker = match unix::fork().map_err(io("fork"))? {
        Forked::Parent(pid) => pid,
        Forked::Child => {
            crate::signals::install();
            drop(pid_w);
            watch_lifeline(life_r);
            return Ok(Split::Worker(Worker { result: result_w }));
        }
    };
    drop(result_w);
    drop(life_r);
    let _ = pid_w.write_all(format!("{worker}\n").as_bytes());
    drop(pid_w);
    // The reaper outlives the command: it must not hold the caller's terminal or pipes open.
    unix::stdio_to_dev_null();
    // On success this never returns.
    let _ = unix::execv(&init_c, &args);
    // exec failed: reap here instead.
    while unix::wait_any_child() {}
    std::process::exit(0);
}

/// In the worker: when the user's process goes away, behave as if interrupted.
fn watch_lifeline(life_r: File) {
    std::thread::spawn(move || {
        let _ = read_all(life_r);
        crate::signals::interrupt();
    });
}

impl Worker {
    /// Tell the waiting process the exit code; `nodes_left` says whether node processes outlive us.
    pub fn finish(mut self, code: u8, nodes_left: bool) {
        let msg = [code, u8::from(!nodes_left)];
        let _ = self.result.write_all(&msg);
    }
}

//! Starting node inits through one `labwire-init spawner` per labwire process.
//!
//! A deploy holds a descriptor for every node namespace it made. A process forked from it copies
//! that table, and exec closes every entry again: at 10,000 nodes that was a fifth of the CPU time
//! of node creation, and it grew with the lab. The spawner is started once, before the table
//! grows, and forks each init from its own three descriptors instead.
//!
//! A request is one message on a sequenced-packet socket: `argc` and `envc` (u32, little-endian),
//! then the NUL-terminated argument strings (the first names the program) and environment strings,
//! with the write end of the init's report pipe attached. The init's report (`ok PID` or
//! `error MESSAGE`) comes back on that pipe, as it did on its standard output before. The spawner
//! forks the init without an exec when its strings fit in the room it was started with (see
//! `labwire-init spawner`). The message's format is in `spawner/request.rs`, which the spawner
//! includes too.

#[path = "spawner/request.rs"]
mod request;
pub use request::{decode, encode, MAX_REQUEST};

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// Bytes of arguments and of environment an init started without an exec may have: a larger one
/// is exec'd.
const ARG_ROOM: usize = 8 * 1024;
const ENV_ROOM: usize = 16 * 1024;

struct Spawner {
    sock: Arc<OwnedFd>,
    /// The process that started it: a forked child of that process must start its own, under
    /// its own reaper.
    owner: u32,
    init: PathBuf,
    child: Child,
}

static SPAWNER: Mutex<Option<Spawner>> = Mutex::new(None);

/// Start `request` (from [`encode`]) through this process's spawner of `init`, starting the
/// spawner first if needed. Returns the read end of the init's report pipe.
pub fn start(init: &Path, request: &[u8]) -> std::io::Result<File> {
    let sock = socket(init)?;
    let (report_r, report_w) = unix::pipe()?;
    unix::send_with_fd(&*sock, request, &report_w)?;
    Ok(report_r)
}

fn socket(init: &Path) -> std::io::Result<Arc<OwnedFd>> {
    let mut slot = SPAWNER.lock().unwrap_or_else(|e| e.into_inner());
    let me = std::process::id();
    if let Some(s) = slot.as_mut() {
        let alive = matches!(s.child.try_wait(), Ok(None));
        if s.owner == me && s.init == init && alive {
            return Ok(s.sock.clone());
        }
        if s.owner == me {
            // Ended (or another init binary): the socket closes, it exits; reap it.
            let old = slot.take().expect("checked");
            drop(old.sock);
            let mut child = old.child;
            let _ = child.wait();
        } else {
            // Inherited through a fork: the parent's spawner, not ours to wait for.
            let old = slot.take().expect("checked");
            std::mem::forget(old.child);
        }
    }
    let (ours, theirs) = unix::seqpacket_pair()?;
    // Room for the arguments and environment of the inits it becomes without an exec (see
    // `labwire-init spawner`).
    let child = Command::new(init)
        .args(["spawner", "--room", &" ".repeat(ARG_ROOM)])
        .env_clear()
        .env("LABWIRE_SPAWNER_ROOM", " ".repeat(ENV_ROOM))
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let sock = Arc::new(ours);
    *slot = Some(Spawner {
        sock: sock.clone(),
        owner: me,
        init: init.to_path_buf(),
        child,
    });
    Ok(sock)
}

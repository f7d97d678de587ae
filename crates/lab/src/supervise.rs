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
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::error::{Error, Result};

/// Where this process stands after [`split`].
pub enum Split {
    /// The original process: the deploy has finished with this exit code.
    Waited(u8),
    /// The worker: do the deploy, then call [`Worker::finish`].
    Worker(Worker),
}

pub struct Worker {
    result: OwnedFd,
}

static WORKER_PID: AtomicI32 = AtomicI32::new(0);
/// A signal that arrived before the worker's pid was known.
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = WORKER_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    } else {
        PENDING.store(sig, Ordering::SeqCst);
    }
}

fn install_forwarding() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs an async-signal-safe handler (one kill call or one atomic store).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills a two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::Io {
            op: "create a pipe".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: both descriptors were just created and are owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn read_all(fd: &OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reads into a local buffer.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            out.extend_from_slice(&buf[..n as usize]);
        } else if n == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return out;
        }
    }
}

/// Fork the reaper and the worker. Must be called while the process has a single thread.
pub fn split(lab: &str) -> Result<Split> {
    let init = runtime::node::init_path()?;
    split_with(lab, &init)
}

fn split_with(lab: &str, init: &Path) -> Result<Split> {
    let (result_r, result_w) = pipe()?;
    let (pid_r, pid_w) = pipe()?;
    let (life_r, life_w) = pipe()?;
    let init_c = CString::new(init.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Path("bad labwire-init path".into()))?;
    let args: Vec<CString> = ["labwire-init", "reaper", "--lab", lab]
        .iter()
        .map(|a| CString::new(*a).expect("no NUL in lab names"))
        .collect();
    // From here on Ctrl-C must reach the worker, not end this process.
    install_forwarding();
    // SAFETY: the caller guarantees a single-threaded process, so the child may run ordinary code.
    let reaper = unsafe { libc::fork() };
    if reaper < 0 {
        return Err(Error::Io {
            op: "fork".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    if reaper > 0 {
        // The original process.
        drop(result_w);
        drop(pid_w);
        drop(life_r);
        let pid = String::from_utf8_lossy(&read_all(&pid_r))
            .trim()
            .parse::<i32>()
            .unwrap_or(0);
        WORKER_PID.store(pid, Ordering::SeqCst);
        let pending = PENDING.swap(0, Ordering::SeqCst);
        if pending != 0 && pid > 0 {
            // SAFETY: forwards a signal that arrived before the worker's pid was known.
            unsafe { libc::kill(pid, pending) };
        }
        let answer = read_all(&result_r);
        // Keep the lifeline open until the worker has answered.
        drop(life_w);
        let code = answer.first().copied().unwrap_or(1);
        let reaper_exits = answer.get(1) == Some(&1);
        if reaper_exits {
            // No node outlived the deploy: the reaper is leaving; collect it.
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(reaper, &mut status, 0) };
        }
        return Ok(Split::Waited(code));
    }
    // The reaper-to-be.
    // SAFETY: single-threaded child; these calls change only this process.
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    drop(result_r);
    drop(pid_r);
    drop(life_w);
    // SAFETY: still single-threaded.
    let worker = unsafe { libc::fork() };
    if worker == 0 {
        crate::signals::install();
        drop(pid_w);
        watch_lifeline(life_r);
        return Ok(Split::Worker(Worker { result: result_w }));
    }
    drop(result_w);
    drop(life_r);
    let line = format!("{worker}\n");
    // SAFETY: writes a short message to the pipe this process owns.
    unsafe { libc::write(pid_w.as_raw_fd(), line.as_ptr().cast(), line.len()) };
    drop(pid_w);
    // The reaper outlives the command: it must not hold the caller's terminal or pipes open.
    // SAFETY: opens /dev/null and duplicates it over this process's standard descriptors.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > 2 {
                libc::close(null);
            }
        }
    }
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: argv is NULL-terminated; on success this never returns.
    unsafe { libc::execv(init_c.as_ptr(), argv.as_ptr()) };
    // exec failed: reap here instead.
    loop {
        let mut status = 0;
        // SAFETY: blocking wait for any child.
        if unsafe { libc::waitpid(-1, &mut status, 0) } < 0 {
            std::process::exit(0);
        }
    }
}

/// In the worker: when the user's process goes away, behave as if interrupted.
fn watch_lifeline(life_r: OwnedFd) {
    std::thread::spawn(move || {
        let _ = read_all(&life_r);
        crate::signals::interrupt();
    });
}

impl Worker {
    /// Tell the waiting process the exit code; `nodes_left` says whether node processes outlive us.
    pub fn finish(self, code: u8, nodes_left: bool) {
        let msg = [code, u8::from(!nodes_left)];
        // SAFETY: writes two bytes to the pipe this process owns.
        unsafe { libc::write(self.result.as_raw_fd(), msg.as_ptr().cast(), msg.len()) };
    }
}

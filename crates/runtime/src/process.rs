//! Processes seen from the host: identity (pid + start time, so a reused pid is never signalled),
//! liveness, stopping, and finding a lab's node inits by their command line after a crash.

use std::path::Path;
use std::time::{Duration, Instant};

/// A process identified beyond its pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcId {
    pub pid: i32,
    /// Start time in clock ticks since boot (field 22 of /proc/PID/stat).
    pub start: u64,
}

/// Field 22 of /proc/PID/stat and the state letter, or None when the process is gone.
fn stat(pid: i32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: parse after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

impl ProcId {
    pub fn of(pid: i32) -> Option<ProcId> {
        stat(pid).map(|(_, start)| ProcId { pid, start })
    }

    /// Running (not gone, not a zombie, not another process that reused the pid).
    pub fn is_alive(&self) -> bool {
        matches!(stat(self.pid), Some((state, start)) if start == self.start && state != 'Z' && state != 'X')
    }

    /// SIGKILL the process if it is still this one. Returns whether a signal was sent.
    pub fn kill(&self) -> bool {
        if !self.is_alive() {
            return false;
        }
        // SAFETY: kill(2) with a pid checked against its start time just above.
        unsafe { libc::kill(self.pid, libc::SIGKILL) == 0 }
    }

    /// Tell a node's labwire-init to run the node's command (SIGUSR1), if it is still this one.
    pub fn signal_start(&self) {
        if self.is_alive() {
            // SAFETY: kill(2) with a pid checked against its start time just above.
            unsafe { libc::kill(self.pid, libc::SIGUSR1) };
        }
    }
}

/// Makes the TCP connections in `pid`'s network namespace let go soon after its processes die,
/// for a node about to be killed for good. A killed process's connections live on in its namespace
/// as orphans, sending their FIN until the peer answers: when the peer is gone too (a VM whose
/// VMM was killed, a node whose link is down), the kernel retries for 100 s or more (8 retries
/// from an RTO of at least 200 ms, far longer when the peer was a slow guest), and the namespace,
/// with every link in it and their ends in the host, outlives the destroy that removed it.
/// One retry, and a second of `FIN_WAIT2`, end them within seconds. A namespace where no socket
/// is open (most nodes of a large lab) is left untouched: one small read tells.
/// Returns whether the namespace was changed.
pub fn let_connections_go(p: &ProcId) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/net/sockstat", p.pid)) else {
        return false;
    };
    let used = stat
        .lines()
        .find_map(|l| l.strip_prefix("sockets: used "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    if used == Some(0) || !p.is_alive() {
        return false;
    }
    let Ok(ns) = wire::netns::NetNs::of_pid(p.pid) else {
        return false;
    };
    let written = ns.run_in(|| {
        ["tcp_orphan_retries", "tcp_fin_timeout"].iter().all(|key| {
            std::fs::write(format!("/proc/sys/net/ipv4/{key}"), "1")
                .map_err(|e| log::debug!("set net.ipv4.{key} for node process {}: {e}", p.pid))
                .is_ok()
        })
    });
    matches!(written, Ok(true))
}

/// Stop `procs`: SIGTERM first when `grace` is not zero, SIGKILL to those still alive after it,
/// then wait for them. Returns those that did not go.
pub fn terminate(procs: &[ProcId], grace: Duration) -> Vec<ProcId> {
    let mut left = procs.to_vec();
    if !grace.is_zero() {
        for p in &left {
            if p.is_alive() {
                // SAFETY: kill(2) with a pid checked against its start time just above.
                unsafe { libc::kill(p.pid, libc::SIGTERM) };
            }
        }
        left = wait_gone(&left, grace);
    }
    for p in &left {
        p.kill();
    }
    wait_gone(&left, Duration::from_secs(5))
}

/// Wait until none of `procs` is alive, up to `timeout`. Returns those still alive.
pub fn wait_gone(procs: &[ProcId], timeout: Duration) -> Vec<ProcId> {
    let deadline = Instant::now() + timeout;
    let mut left: Vec<ProcId> = procs.to_vec();
    loop {
        left.retain(ProcId::is_alive);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every live labwire-init of `lab` (by its `--lab LAB --node NODE` arguments): (process, node).
pub fn find_inits(lab: &str) -> Vec<(ProcId, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline"))
        else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let Some(first) = args.first() else { continue };
        if !first.ends_with(b"labwire-init") {
            continue;
        }
        let arg = |name: &[u8]| {
            args.iter()
                .position(|a| *a == name)
                .and_then(|i| args.get(i + 1))
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        if arg(b"--lab").as_deref() == Some(lab) {
            if let (Some(node), Some(id)) = (arg(b"--node"), ProcId::of(pid)) {
                if id.is_alive() {
                    out.push((id, node));
                }
            }
        }
    }
    out
}

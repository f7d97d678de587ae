//! The native runtime: a node is a labwire-init process in fresh net, mount, UTS, IPC and PID
//! namespaces, over the host's file system with private /run, /tmp and /var/log.
//!
//! Owns starting a node (spawn + wait for its `ok`), running a command inside it, and the node's
//! files that its init mounts (hosts, hostname). It never creates links: the node's network namespace
//! is returned to the caller, which wires it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use topology::{Lab, NetworkMode, Node};
use wire::NetNs;

use crate::backend::{
    record, record_process, Backend, CreateNode, Deployment, Made, Record, Resume, Running,
};
use crate::node::{
    environment_of_process, hosts_file, image_command, process_environment, runs_init_system,
    shell_command, ExecOutput, ImageRoot, NodeContext,
};
use crate::process::ProcId;
use crate::{io, Error, Result};

/// Directories each host-filesystem node gets its own empty copy of (tmpfs), with their modes.
pub const PRIVATE_DIRS: [(&str, &str); 4] = [
    ("/run", "755"),
    ("/var/run", "755"),
    ("/tmp", "1777"),
    ("/var/log", "755"),
];

/// What to start for one node.
pub struct Spawn<'a> {
    /// The lab's name, topology file and the node's interface count (its environment).
    pub ctx: NodeContext<'a>,
    pub node: &'a Node,
    pub init: &'a Path,
    /// Directory for the node's runtime files (hosts, hostname, console log): on tmpfs, so starting
    /// a thousand nodes does not create thousands of files on a disk file system.
    pub run_dir: &'a Path,
    /// Another node's network namespace to join (`network-mode: container:<node>`), as a path
    /// such as `/proc/<pid>/ns/net`.
    pub join_netns: Option<&'a Path>,
    /// The node's root from an image; `None` runs the node over the host's file system.
    pub image: Option<&'a ImageRoot>,
    /// A cgroup (v2) directory of the node's own: the init joins it and gets a cgroup namespace
    /// rooted there, so an init system inside (systemd) manages only the node.
    pub cgroup: Option<&'a Path>,
    /// The command to run instead of the node's own (a VM node runs its VMM). Such a node keeps
    /// the host's /run and /tmp, where its VMM's files are.
    pub argv: Option<&'a [String]>,
}

/// Where the host's cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified`
/// on hybrid hosts), if it is.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split(' ').next()? != "cgroup2" {
            return None;
        }
        Some(PathBuf::from(pre.split(' ').nth(4)?))
    })
}

/// Remove a node's cgroup and every cgroup systemd made inside it (deepest first). Missing is fine.
pub fn remove_cgroup(dir: &Path) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&e.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Start the node's init and wait for it to report. The node's directory in the lab directory is
/// created; its runtime files go to `run_dir`.
pub fn spawn(s: &Spawn<'_>) -> Result<ProcId> {
    let node = s.node;
    crate::node::node_dir(node)?;
    let dir = s.run_dir;
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, hosts_file(node)).map_err(io(format!("write {}", hosts.display())))?;
    let hostname = dir.join("hostname");
    std::fs::write(&hostname, format!("{}\n", node.hostname))
        .map_err(io(format!("write {}", hostname.display())))?;

    let mut cmd = Command::new(s.init);
    cmd.args([
        "--lab",
        s.ctx.lab,
        "--node",
        &node.name,
        "--hostname",
        &node.hostname,
    ]);
    cmd.arg("--log").arg(dir.join("console.log"));
    match s.image {
        None if s.argv.is_some() => {}
        None => {
            for (d, mode) in PRIVATE_DIRS {
                cmd.args(["--tmpfs", d, mode]);
            }
            if let Some(u) = node.user.as_deref().filter(|u| !u.is_empty()) {
                cmd.args(["--user", u]);
            }
        }
        Some(img) => {
            for l in &img.layers {
                cmd.arg("--lower").arg(l);
            }
            for d in [&img.upper, &img.work] {
                std::fs::create_dir_all(d).map_err(io(format!("create {}", d.display())))?;
            }
            cmd.arg("--upper")
                .arg(&img.upper)
                .arg("--work")
                .arg(&img.work);
            cmd.arg("--rootfs").arg(dir.join("rootfs"));
            // Daemons (FRR among them) want a fresh /run of their own.
            cmd.args(["--tmpfs", "/run", "755"]);
            let resolv = dir.join("resolv.conf");
            let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            std::fs::write(&resolv, text).map_err(io(format!("write {}", resolv.display())))?;
            cmd.arg("--file").arg(&resolv).arg("/etc/resolv.conf");
            if let Some(w) = img.working_dir.as_deref().filter(|w| !w.is_empty()) {
                cmd.args(["--workdir", w]);
            }
            // The lab's authorized_keys lets the host's users log in as root where the image runs
            // sshd (unless the topology binds something there itself).
            let keys = node.dir.parent().map(|d| d.join("authorized_keys"));
            let target = "/root/.ssh/authorized_keys";
            if let Some(k) = keys.filter(|k| k.is_file()) {
                if !node.binds.iter().any(|b| b.target == target) {
                    cmd.arg("--bind").arg(k).arg(target).arg("ro");
                }
            }
            let user = node.user.as_deref().or(img.user.as_deref());
            if let Some(u) = user.filter(|u| !u.is_empty()) {
                cmd.args(["--user", u]);
            }
        }
    }
    cmd.arg("--file").arg(&hosts).arg("/etc/hosts");
    cmd.arg("--file").arg(&hostname).arg("/etc/hostname");
    for b in &node.binds {
        cmd.arg("--bind")
            .arg(&b.source)
            .arg(&b.target)
            .arg(if b.read_only() { "ro" } else { "rw" });
    }
    for (k, v) in node.sysctls.iter() {
        cmd.args(["--sysctl", k, v]);
    }
    let mut flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID;
    if let Some(dir) = s.cgroup {
        std::fs::create_dir_all(dir).map_err(io(format!("create cgroup {}", dir.display())))?;
        flags |= libc::CLONE_NEWCGROUP;
        cmd.arg("--cgroup");
        cmd.arg("--cgroup-procs").arg(dir.join("cgroup.procs"));
    }
    match node.network_mode {
        NetworkMode::Host => {}
        NetworkMode::Container(_) => {}
        // A restarted node joins the namespace it kept.
        _ if s.join_netns.is_none() => flags |= libc::CLONE_NEWNET,
        _ => {}
    }
    if let Some(p) = s.join_netns {
        cmd.arg("--join-netns").arg(p);
    }
    // labwire-init makes its namespaces itself, first thing: no code runs between fork and exec
    // here, so the standard library can start it with posix_spawn instead of forking labwire.
    cmd.args(["--unshare", &format!("{flags:x}")]);
    let argv = match (s.argv, s.image) {
        (Some(a), _) => a.to_vec(),
        (None, Some(img)) => image_command(node, img),
        (None, None) => shell_command(node),
    };
    if !argv.is_empty() {
        cmd.arg("--").args(&argv);
    }
    let env = process_environment(&s.ctx, node, s.image);
    let started = || io(format!("start labwire-init for node {}", node.name));
    let argv: Vec<OsString> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(OsString::from)
        .collect();
    // Through the spawner, which holds none of this process's descriptors; a request too large
    // for one message starts the init from here.
    let through_spawner = match crate::spawner::encode(&argv, &env) {
        // A message larger than the socket's send buffer (a host with a small
        // net.core.wmem_default) starts from here too.
        Some(request) => match crate::spawner::start(s.init, &request) {
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => None,
            r => Some(r.map_err(started())?),
        },
        None => None,
    };
    let (report, mut direct) = match through_spawner {
        Some(report) => (report, None),
        None => {
            cmd.env_clear().envs(&env);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            let mut child = cmd.spawn().map_err(started())?;
            let stdout = child.stdout.take().expect("piped");
            (File::from(OwnedFd::from(stdout)), Some(child))
        }
    };
    let mut line = String::new();
    let read = BufReader::new(report).read_line(&mut line);
    let status = match direct.as_mut() {
        Some(child) => Some(
            child
                .wait()
                .map_err(io(format!("wait for labwire-init of node {}", node.name)))?,
        ),
        None => None,
    };
    read.map_err(io(format!("read the report of node {}", node.name)))?;
    let line = line.trim_end();
    if let Some(pid) = line.strip_prefix("ok ") {
        let pid: i32 = pid.parse().map_err(|_| Error::NodeSetup {
            node: node.name.clone(),
            message: format!("bad report `{line}`"),
        })?;
        return ProcId::of(pid).ok_or_else(|| Error::NodeSetup {
            node: node.name.clone(),
            message: "its init exited right after starting (see console.log in the node directory)"
                .into(),
        });
    }
    Err(Error::NodeSetup {
        node: node.name.clone(),
        message: match line.strip_prefix("error ") {
            Some(m) => m.to_string(),
            None => match status {
                Some(status) => format!("labwire-init exited with {status} without a report"),
                None => "labwire-init exited without a report".to_string(),
            },
        },
    })
}

/// Run `sh -c cmd` inside the node whose PID 1 is `pid`, with the node's environment.
pub fn exec(
    init: &Path,
    pid: i32,
    env: &BTreeMap<String, String>,
    cmd: &str,
) -> Result<ExecOutput> {
    let out = Command::new(init)
        .args(["exec", &pid.to_string(), "--", "/bin/sh", "-c", cmd])
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("run `{cmd}` in process {pid}")))?;
    Ok(ExecOutput {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    })
}

/// The environment commands run with inside a running node: its PID 1's (image variables
/// included), or the one the topology gives when that cannot be read.
pub fn node_environment(ctx: &NodeContext<'_>, pid: i32, node: &Node) -> BTreeMap<String, String> {
    environment_of_process(pid).unwrap_or_else(|| process_environment(ctx, node, None))
}

/// The native runtime as a [`Backend`]: labwire-init over the host's file system or an image root
/// from labwire's store.
#[derive(Debug, Default)]
pub struct Native;

impl Backend for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    /// Beyond what the lab checks for every node (binds, images in the store): the host's
    /// kernel has the nodes' `kernel-modules`.
    fn preflight(&self, _lab: &Lab, nodes: &[&Node]) -> Vec<String> {
        crate::host_kernel::missing_modules(nodes)
    }

    fn create(&self, d: &Deployment<'_>, req: &CreateNode<'_>, rec: &dyn Record) -> Result<ProcId> {
        let n = req.node;
        let image = d.images.get(&n.name);
        let cgroup = node_cgroup(d.lab, n, image, rec)?;
        let join = req
            .share_net_with
            .map(|s| PathBuf::from(format!("/proc/{}/ns/net", s.proc.pid)));
        let proc = spawn(&Spawn {
            ctx: req.ctx,
            node: n,
            init: d.init,
            run_dir: &d.dirs.node_run(&n.name),
            join_netns: join.as_deref(),
            image,
            cgroup: cgroup.as_deref(),
            argv: None,
        })?;
        record_process(rec, n, proc)
    }

    fn start(&self, node: &Running<'_>, _ns: &NetNs, _home: &NetNs) -> Result<()> {
        node.proc.signal_start();
        Ok(())
    }

    /// A fresh init (new mount, PID, UTS and IPC namespaces; the same root, binds and writable
    /// layer) in the network namespace the node kept.
    fn resume(&self, r: &Resume<'_>, rec: &dyn Record) -> Result<ProcId> {
        let n = r.node;
        let cgroup = node_cgroup(r.lab, n, r.image, rec)?;
        let join = (n.network_mode != NetworkMode::Host).then_some(r.netns);
        let proc = spawn(&Spawn {
            ctx: NodeContext::of(r.lab, n),
            node: n,
            init: r.init,
            run_dir: &r.dirs.node_run(&n.name),
            join_netns: join,
            image: r.image,
            cgroup: cgroup.as_deref(),
            argv: None,
        })?;
        record_process(rec, n, proc)
    }

    fn exec(&self, node: &Running<'_>, cmd: &str) -> Result<ExecOutput> {
        exec_in_namespaces(node, cmd)
    }
}

/// Run a command in a node's namespaces through labwire-init, with its PID 1's environment (the
/// native and engine runtimes).
pub fn exec_in_namespaces(node: &Running<'_>, cmd: &str) -> Result<ExecOutput> {
    let ctx = NodeContext::of(node.lab, node.node);
    let env = node_environment(&ctx, node.proc.pid, node.node);
    exec(node.init, node.proc.pid, &env, cmd)
}

/// The cgroup of a node that runs an init system (recorded before it is made), none otherwise.
fn node_cgroup(
    lab: &Lab,
    n: &Node,
    image: Option<&ImageRoot>,
    rec: &dyn Record,
) -> Result<Option<PathBuf>> {
    match image {
        Some(img) if runs_init_system(n, img) => {
            let base = cgroup2_mount().ok_or_else(|| Error::NodeSetup {
                node: n.name.clone(),
                message: "it runs an init system, which needs a cgroup v2 hierarchy; none is mounted on this host".into(),
            })?;
            let path = base.join("labwire").join(&lab.name).join(&n.name);
            record(rec, &[Made::Cgroup { path: path.clone() }])?;
            Ok(Some(path))
        }
        _ => Ok(None),
    }
}

//! The native runtime: a node is a labwire-init process in fresh net, mount, UTS, IPC and PID
//! namespaces, over the host's file system with private /run, /tmp and /var/log.
//!
//! Owns starting a node (spawn + wait for its `ok`), running a command inside it, and the node's
//! files that its init mounts (hosts, hostname). It never creates links: the node's network namespace
//! is returned to the caller, which wires it.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use topology::{NetworkMode, Node};

use crate::process::ProcId;
use crate::{io, Error, Result};

/// Directories each host-filesystem node gets its own empty copy of (tmpfs), with their modes.
pub const PRIVATE_DIRS: [(&str, &str); 4] = [
    ("/run", "755"),
    ("/var/run", "755"),
    ("/tmp", "1777"),
    ("/var/log", "755"),
];

/// Where labwire-init lives: next to the running labwire binary (cargo puts both in target/*/),
/// or `LABWIRE_INIT` when set.
pub fn init_path() -> Result<PathBuf> {
    sibling_binary("labwire-init", "LABWIRE_INIT")
}

/// A helper binary of labwire's: `$env` when set, else next to the running labwire binary (or
/// one directory up, for test binaries under target/*/deps).
pub fn sibling_binary(name: &str, env: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(io("locate the labwire binary"))?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    for cand in [dir.join(name), dir.join("..").join(name)] {
        if cand.is_file() {
            return Ok(cand);
        }
    }
    Err(Error::Unsupported(format!(
        "{name} not found next to {} (build the workspace with `cargo build --release`, or set {env})",
        exe.display()
    )))
}

/// What to start for one node.
pub struct Spawn<'a> {
    pub lab: &'a str,
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

/// Whether the node's command (from its image) is an init system, which must be PID 1 and gets a
/// cgroup of its own.
pub fn runs_init_system(node: &Node, image: &ImageRoot) -> bool {
    is_init_system(&image_command(node, image))
}

/// Whether an argv starts an init system (`/sbin/init`, `/lib/systemd/systemd`). labwire-init, a
/// separate small binary, applies the same rule when it hands PID 1 over.
pub fn is_init_system(argv: &[String]) -> bool {
    argv.first().is_some_and(|a| {
        let base = a.rsplit('/').next().unwrap_or(a);
        matches!(base, "init" | "systemd")
    })
}

/// The argv a node runs, merged as container engines merge it: the node's `entrypoint` (even
/// empty) replaces the image's; the node's `cmd` replaces the image's, and the image's `CMD` only
/// applies when the node gave no non-empty entrypoint. Node strings are split into words as a shell
/// would, without a shell.
pub fn container_argv(
    n: &Node,
    image_entrypoint: Option<&[String]>,
    image_cmd: Option<&[String]>,
) -> Vec<String> {
    let split = |s: &str| split_words(s).unwrap_or_else(|| vec![s.to_string()]);
    let node_entrypoint = n.entrypoint.as_deref().map(split);
    let cmd = match (n.cmd.as_deref().map(split), &node_entrypoint) {
        (Some(c), _) => c,
        (None, Some(e)) if !e.is_empty() => Vec::new(),
        (None, _) => image_cmd.map(<[String]>::to_vec).unwrap_or_default(),
    };
    let mut argv = node_entrypoint
        .unwrap_or_else(|| image_entrypoint.map(<[String]>::to_vec).unwrap_or_default());
    argv.extend(cmd);
    argv
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

/// What a node started from an image needs: its layers and the image's run configuration.
#[derive(Debug, Clone, Default)]
pub struct ImageRoot {
    /// The image's id (config digest).
    pub id: String,
    /// Unpacked layer directories, bottom first (overlayfs lower layers).
    pub layers: Vec<PathBuf>,
    /// The node's own writable layer and overlayfs work directory (same file system).
    pub upper: PathBuf,
    pub work: PathBuf,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=VALUE` entries from the image.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// Split a command line into words as a POSIX shell would (quotes and backslashes), without
/// expanding anything; `None` for an unterminated quote.
pub fn split_words(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        x => cur.push(x),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            x @ ('"' | '\\' | '$' | '`') => cur.push(x),
                            x => {
                                cur.push('\\');
                                cur.push(x);
                            }
                        },
                        x => cur.push(x),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Some(out)
}

/// The node's /etc/hosts content: localhost lines plus the node's own name.
pub fn hosts_file(node: &Node) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(a) = node.mgmt_ipv4 {
        s.push_str(&format!("{a}\t{} {}\n", node.hostname, node.long_name));
    } else {
        s.push_str(&format!(
            "127.0.1.1\t{} {}\n",
            node.hostname, node.long_name
        ));
    }
    if let Some(a) = node.mgmt_ipv6 {
        s.push_str(&format!("{a}\t{} {}\n", node.hostname, node.long_name));
    }
    s
}

/// The command of a node started from an image, as docker composes it: the entrypoint (the node's,
/// else the image's) followed by the command (the node's; else the image's unless the node replaced
/// the entrypoint). Node strings are split into words like a shell would, without a shell.
pub fn image_command(node: &Node, image: &ImageRoot) -> Vec<String> {
    container_argv(node, Some(&image.entrypoint), Some(&image.cmd))
}

/// The node's command as argv: `sh -c "<entrypoint> <cmd>"`, or nothing (the init just waits).
pub fn command(node: &Node) -> Vec<String> {
    let line = match (&node.entrypoint, &node.cmd) {
        (Some(e), Some(c)) => format!("{e} {c}"),
        (Some(e), None) => e.clone(),
        (None, Some(c)) => c.clone(),
        (None, None) => return Vec::new(),
    };
    vec!["/bin/sh".into(), "-c".into(), line]
}

/// The environment a node's processes see.
pub fn environment(node: &Node) -> BTreeMap<String, String> {
    environment_with(node, None)
}

/// The environment of a node, an image's environment under the node's own.
pub fn environment_with(node: &Node, image: Option<&ImageRoot>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".into(),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    );
    for kv in image.map(|i| i.env.as_slice()).unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            env.insert(k.to_string(), v.to_string());
        }
    }
    if image.is_some() {
        env.insert("container".into(), "labwire".into());
    }
    env.insert("HOME".into(), "/root".into());
    env.insert("HOSTNAME".into(), node.hostname.clone());
    env.insert("CLAB_NODE_NAME".into(), node.name.clone());
    env.insert("CLAB_NODE_LONGNAME".into(), node.long_name.clone());
    env.extend(node.env.clone());
    env
}

/// Start the node's init and wait for it to report. The node's directory in the lab directory is
/// created; its runtime files go to `run_dir`.
pub fn spawn(s: &Spawn<'_>) -> Result<ProcId> {
    let node = s.node;
    std::fs::create_dir_all(&node.dir).map_err(io(format!("create {}", node.dir.display())))?;
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
        s.lab,
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
    for (k, v) in &node.sysctls {
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
        _ => flags |= libc::CLONE_NEWNET,
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
        (None, None) => command(node),
    };
    if !argv.is_empty() {
        cmd.arg("--").args(&argv);
    }
    cmd.env_clear().envs(environment_with(node, s.image));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd
        .spawn()
        .map_err(io(format!("start labwire-init for node {}", node.name)))?;
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line);
    let status = child
        .wait()
        .map_err(io(format!("wait for labwire-init of node {}", node.name)))?;
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
            None => format!("labwire-init exited with {status} without a report"),
        },
    })
}

/// The environment commands run with inside a running node: its PID 1's (image variables
/// included), or the one the topology gives when that cannot be read.
pub fn node_environment(pid: i32, node: &Node) -> BTreeMap<String, String> {
    process_environment(pid).unwrap_or_else(|| environment(node))
}

/// The environment of a running process (the node's PID 1 carries the node's environment,
/// image variables included).
pub fn process_environment(pid: i32) -> Option<BTreeMap<String, String>> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect(),
    )
}

/// Output of a command run inside a node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
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

#[cfg(test)]
mod tests {
    use super::split_words;

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(split_words("a b  c").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            split_words("sh -c 'echo $X; ls'").unwrap(),
            ["sh", "-c", "echo $X; ls"]
        );
        assert_eq!(
            split_words(r#"x "a \"b\" c" d\ e"#).unwrap(),
            ["x", "a \"b\" c", "d e"]
        );
        assert_eq!(split_words("''").unwrap(), [""]);
        assert!(split_words("'open").is_none());
    }
}

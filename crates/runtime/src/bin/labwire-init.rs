//! labwire-init: the first process of every native node.
//!
//! It first joins the node's cgroup and makes the node's namespaces (`--unshare`: network, mount,
//! UTS, IPC, PID; the PID namespace applies to its children). It then, still as the "setup" process:
//!   1. makes the mount tree private, mounts fresh tmpfs on the node's private directories, binds the
//!      node's `/etc/hosts` and `/etc/hostname` and the topology's `binds`, and sets the hostname;
//!   2. forks the node's PID 1, which mounts `/proc` and `/sys` for the node's namespaces, writes the
//!      node's sysctls, waits for SIGUSR1 (sent once the node's links are up), then runs the node's
//!      command (if any) and reaps every orphan until SIGTERM;
//!   3. prints `ok <pid of PID 1>` (or `error <message>`) on standard output and exits.
//!
//! Forked by the spawner without an exec, it is born as the first process of the node's PID
//! namespace (see `spawner`): it does PID 1's setup, prints the report and stays PID 1 itself.
//!
//! It owns nothing else: no networking, no files outside the node's mount namespace.
//! `labwire-init exec PID -- COMMAND…` runs a command inside a running node instead.
//!
//! Arguments (written by labwire, not meant for people):
//!   --lab LAB --node NODE [--hostname H] [--log FILE] [--tmpfs DIR MODE]... [--file SRC DST]...
//!   [--bind SRC DST ro|rw]... [--sysctl KEY VALUE]... [-- COMMAND ARGS...]
//! The environment of labwire-init is the node's environment; the command inherits it.

use std::ffi::CString;
use std::io::Write as _;
use std::os::fd::{AsFd as _, AsRawFd as _};
use std::path::Path;

/// The spawner's message format, shared with labwire's side (`runtime::spawner`).
#[path = "../spawner/request.rs"]
#[allow(dead_code)]
mod request;

#[derive(Default)]
struct Config {
    hostname: Option<String>,
    log: Option<String>,
    tmpfs: Vec<(String, String)>,
    files: Vec<(String, String)>,
    binds: Vec<(String, String, bool)>,
    sysctls: Vec<(String, String)>,
    command: Vec<String>,
    /// Image root: overlay of `lower` (bottom first) with `upper`/`work`, mounted on `rootfs`.
    lower: Vec<String>,
    upper: Option<String>,
    work: Option<String>,
    rootfs: Option<String>,
    /// Mount the node's own cgroup v2 tree at /sys/fs/cgroup (it runs in a cgroup namespace).
    cgroup: bool,
    /// Directory the command starts in, and the user it runs as (`uid[:gid]` or names).
    workdir: Option<String>,
    user: Option<String>,
}

fn parse(args: &[String]) -> Result<Config, String> {
    let mut c = Config::default();
    let mut i = 0;
    let need = |i: usize, n: usize| -> Result<(), String> {
        if i + n < args.len() {
            Ok(())
        } else {
            Err(format!("{} needs {n} value(s)", args[i]))
        }
    };
    while i < args.len() {
        match args[i].as_str() {
            "--cgroup" => {
                c.cgroup = true;
                i += 1;
            }
            // Handled by enter_namespaces before parsing.
            "--cgroup-procs" | "--join-netns" | "--unshare" => {
                need(i, 1)?;
                i += 2;
            }
            "--lab" | "--node" => {
                need(i, 1)?;
                i += 2;
            }
            "--hostname" => {
                need(i, 1)?;
                c.hostname = Some(args[i + 1].clone());
                i += 2;
            }
            "--log" => {
                need(i, 1)?;
                c.log = Some(args[i + 1].clone());
                i += 2;
            }
            "--tmpfs" => {
                need(i, 2)?;
                c.tmpfs.push((args[i + 1].clone(), args[i + 2].clone()));
                i += 3;
            }
            "--file" => {
                need(i, 2)?;
                c.files.push((args[i + 1].clone(), args[i + 2].clone()));
                i += 3;
            }
            "--bind" => {
                need(i, 3)?;
                c.binds.push((
                    args[i + 1].clone(),
                    args[i + 2].clone(),
                    args[i + 3] == "ro",
                ));
                i += 4;
            }
            "--lower" | "--upper" | "--work" | "--rootfs" | "--workdir" | "--user" => {
                need(i, 1)?;
                let v = args[i + 1].clone();
                match args[i].as_str() {
                    "--lower" => c.lower.push(v),
                    "--upper" => c.upper = Some(v),
                    "--work" => c.work = Some(v),
                    "--rootfs" => c.rootfs = Some(v),
                    "--workdir" => c.workdir = Some(v),
                    _ => c.user = Some(v),
                }
                i += 2;
            }
            "--sysctl" => {
                need(i, 2)?;
                c.sysctls.push((args[i + 1].clone(), args[i + 2].clone()));
                i += 3;
            }
            "--" => {
                c.command = args[i + 1..].to_vec();
                break;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(c)
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap_or_else(|_| CString::new("?").expect("no NUL"))
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn mount(
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), String> {
    let s = src.map(cstr);
    let t = cstr(target);
    let f = fstype.map(cstr);
    let d = data.map(cstr);
    // SAFETY: every pointer is either null or a valid NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            t.as_ptr(),
            f.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            flags,
            d.as_ref().map_or(std::ptr::null(), |c| c.as_ptr().cast()),
        )
    };
    if rc != 0 {
        return Err(format!(
            "mount {} on {target}: {}",
            src.or(fstype).unwrap_or("-"),
            errno()
        ));
    }
    Ok(())
}

fn bind(src: &str, dst: &str, ro: bool) -> Result<(), String> {
    mount(Some(src), dst, None, libc::MS_BIND | libc::MS_REC, None)?;
    if ro {
        mount(
            None,
            dst,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC,
            None,
        )?;
    }
    Ok(())
}

/// A bind source opened before any tmpfs can hide it (sources may live under /tmp or /run).
struct Source {
    file: std::fs::File,
    is_dir: bool,
}

impl Source {
    fn open(path: &str) -> Result<Source, String> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(path)
            .map_err(|e| format!("open bind source {path}: {e}"))?;
        let is_dir = Path::new(path).is_dir();
        Ok(Source { file, is_dir })
    }

    fn path(&self) -> String {
        format!("/proc/self/fd/{}", self.file.as_raw_fd())
    }
}

/// Mount work done in the node's mount namespace before PID 1's own (`/proc`, `/sys`).
fn setup_mounts(c: &Config) -> Result<(), String> {
    mount(None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    let files: Vec<(Source, &str)> = c
        .files
        .iter()
        .map(|(src, dst)| Source::open(src).map(|s| (s, dst.as_str())))
        .collect::<Result<_, _>>()?;
    let binds: Vec<(Source, &str, bool)> = c
        .binds
        .iter()
        .map(|(src, dst, ro)| Source::open(src).map(|s| (s, dst.as_str(), *ro)))
        .collect::<Result<_, _>>()?;
    // With an image, everything below happens inside the node's own root, so no path in the image
    // (a symlink, say) can point a mount or a created file at the host.
    let old_root = match &c.rootfs {
        Some(root) => Some(enter_image_root(c, root)?),
        None => None,
    };
    let src_path = |s: &Source| match &old_root {
        Some(old) => format!("{old}/proc/self/fd/{}", s.file.as_raw_fd()),
        None => s.path(),
    };
    let in_image = old_root.is_some();
    let mut private_dirs: Vec<&str> = Vec::new();
    for (dir, mode) in &c.tmpfs {
        let p = Path::new(dir);
        // /var/run is a link to /run on most systems: covered by /run already.
        if p.is_symlink() {
            continue;
        }
        if !p.is_dir() {
            if !in_image {
                continue;
            }
            std::fs::create_dir_all(p).map_err(|e| format!("create {dir}: {e}"))?;
        }
        mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(&format!("mode={mode}")),
        )?;
        private_dirs.push(dir);
    }
    for (src, dst) in &files {
        if in_image && !Path::new(dst).exists() {
            create_mount_point(dst, false)?;
        }
        bind(&src_path(src), dst, false)?;
    }
    for (src, dst, ro) in &binds {
        let target = Path::new(dst);
        if !target.exists() {
            // Only create mount points inside the node's own root or its tmpfs directories, never
            // on the host.
            let inside_private = in_image || private_dirs.iter().any(|d| target.starts_with(d));
            if !inside_private {
                return Err(format!(
                    "bind target {dst} does not exist; a node without an image shares the host's file system, so binds can only cover existing paths (or paths under /tmp, /run, /var/log)"
                ));
            }
            create_mount_point(dst, src.is_dir)?;
        }
        bind(&src_path(src), dst, *ro)?;
    }
    if let Some(old) = &old_root {
        let c_old = cstr(old);
        // SAFETY: detaches the host's root from this namespace and removes its mount point.
        unsafe {
            if libc::umount2(c_old.as_ptr(), libc::MNT_DETACH) != 0 {
                return Err(format!("detach the host root: {}", errno()));
            }
            libc::rmdir(c_old.as_ptr());
        }
    }
    if let Some(h) = &c.hostname {
        // SAFETY: the pointer and length describe the bytes of `h`.
        if unsafe { libc::sethostname(h.as_ptr().cast(), h.len()) } != 0 {
            return Err(format!("set hostname {h}: {}", errno()));
        }
    }
    Ok(())
}

/// A node's own /dev, as container engines make it: a tmpfs with the harmless character devices,
/// /dev/net/tun (labs build taps and VMs), a private devpts and /dev/shm. No host disk or terminal
/// is reachable, so an init system in the node cannot start gettys on the host's consoles.
fn populate_dev(dev: &str) -> Result<(), String> {
    std::fs::create_dir_all(dev).map_err(|e| format!("create {dev}: {e}"))?;
    mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        libc::MS_NOSUID,
        Some("mode=755"),
    )?;
    let nodes: [(&str, u32, u32, u32); 7] = [
        ("null", 1, 3, 0o666),
        ("zero", 1, 5, 0o666),
        ("full", 1, 7, 0o666),
        ("random", 1, 8, 0o666),
        ("urandom", 1, 9, 0o666),
        ("tty", 5, 0, 0o666),
        ("net/tun", 10, 200, 0o666),
    ];
    for (name, major, minor, mode) in nodes {
        let path = format!("{dev}/{name}");
        if let Some(parent) = Path::new(&path).parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("create {}: {e}", parent.display()))?;
        }
        let c = cstr(&path);
        // SAFETY: mknod on a path inside the node's fresh tmpfs; then set the mode exactly.
        unsafe {
            if libc::mknod(
                c.as_ptr(),
                libc::S_IFCHR | mode,
                libc::makedev(major, minor),
            ) != 0
            {
                return Err(format!("create {path}: {}", errno()));
            }
            libc::chmod(c.as_ptr(), mode);
        }
    }
    for d in ["pts", "shm", "mqueue"] {
        std::fs::create_dir_all(format!("{dev}/{d}"))
            .map_err(|e| format!("create {dev}/{d}: {e}"))?;
    }
    mount(
        Some("devpts"),
        &format!("{dev}/pts"),
        Some("devpts"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    mount(
        Some("shm"),
        &format!("{dev}/shm"),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=1777"),
    )?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, format!("{dev}/{link}"))
            .map_err(|e| format!("create {dev}/{link}: {e}"))?;
    }
    Ok(())
}

fn create_mount_point(dst: &str, dir: bool) -> Result<(), String> {
    let target = Path::new(dst);
    if dir {
        return std::fs::create_dir_all(target).map_err(|e| format!("create {dst}: {e}"));
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
    }
    std::fs::write(target, b"").map_err(|e| format!("create {dst}: {e}"))
}

/// Mount the image's overlay on `root`, give it a /dev of its own, and pivot into it. Returns where the host's root now
/// is (still mounted, so bind sources opened earlier stay reachable through its /proc).
fn enter_image_root(c: &Config, root: &str) -> Result<String, String> {
    let (Some(upper), Some(work)) = (&c.upper, &c.work) else {
        return Err("an image root needs --upper and --work".into());
    };
    if c.lower.is_empty() {
        return Err("an image root needs at least one --lower".into());
    }
    std::fs::create_dir_all(root).map_err(|e| format!("create {root}: {e}"))?;
    // overlayfs lists the top layer first.
    let lower: Vec<&str> = c.lower.iter().rev().map(String::as_str).collect();
    let data = format!(
        "lowerdir={},upperdir={upper},workdir={work}",
        lower.join(":")
    );
    mount(Some("overlay"), root, Some("overlay"), 0, Some(&data))?;
    populate_dev(&format!("{root}/dev"))?;
    let old = ".labwire-host-root";
    let old_abs = format!("{root}/{old}");
    std::fs::create_dir_all(&old_abs).map_err(|e| format!("create {old_abs}: {e}"))?;
    let c_root = cstr(root);
    let c_old = cstr(&old_abs);
    // SAFETY: pivot_root(2) with two existing directories; then move to the new root.
    unsafe {
        if libc::syscall(libc::SYS_pivot_root, c_root.as_ptr(), c_old.as_ptr()) != 0 {
            return Err(format!("pivot into the image root: {}", errno()));
        }
        libc::chdir(c"/".as_ptr());
    }
    Ok(format!("/{old}"))
}

/// The node's console log, opened before any tmpfs can hide its directory.
fn open_log(c: &Config) -> Result<std::fs::File, String> {
    match &c.log {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| format!("open {p}: {e}")),
        None => std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("open /dev/null: {e}")),
    }
}

/// PID 1's own setup: its /proc and /sys, sysctls, log file as standard output.
fn setup_pid1(c: &Config, log: &std::fs::File) -> Result<(), String> {
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    for d in ["/proc", "/sys"] {
        if !Path::new(d).is_dir() {
            std::fs::create_dir_all(d).map_err(|e| format!("create {d}: {e}"))?;
        }
    }
    mount(Some("proc"), "/proc", Some("proc"), flags, None)?;
    // sysfs shows the mounting process's network namespace: the node's interfaces.
    mount(Some("sysfs"), "/sys", Some("sysfs"), flags, None)?;
    if c.cgroup {
        let dir = "/sys/fs/cgroup";
        std::fs::create_dir_all(dir).map_err(|e| format!("create {dir}: {e}"))?;
        mount(Some("cgroup2"), dir, Some("cgroup2"), flags, None)?;
    }
    for (k, v) in &c.sysctls {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v).map_err(|e| format!("sysctl {k}={v}: {e}"))?;
    }
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?;
    // SAFETY: dup2 on descriptors this process owns.
    unsafe {
        libc::dup2(null.as_raw_fd(), 0);
        libc::dup2(log.as_raw_fd(), 1);
        libc::dup2(log.as_raw_fd(), 2);
    }
    Ok(())
}

fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; the calls only touch this process's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
        ] {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Resolve `user[:group]` (names or numbers) against the node's own /etc/passwd and /etc/group.
fn resolve_user(spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |file: &str, name: &str| -> Option<(u32, u32)> {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.first() != Some(&name) {
                return None;
            }
            let id: u32 = f.get(2)?.parse().ok()?;
            let gid: u32 = f.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
            Some((id, gid))
        })
    };
    let (uid, mut gid) = match user.parse::<u32>() {
        Ok(u) => (u, lookup_gid_of_uid(u).unwrap_or(u)),
        Err(_) => lookup("/etc/passwd", user)
            .ok_or_else(|| format!("user {user} is not in the node's /etc/passwd"))?,
    };
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup("/etc/group", g)
                .map(|(id, _)| id)
                .ok_or_else(|| format!("group {g} is not in the node's /etc/group"))?,
        };
    }
    Ok((uid, gid))
}

fn lookup_gid_of_uid(uid: u32) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.get(2)?.parse::<u32>().ok()? == uid)
            .then(|| f.get(3)?.parse().ok())
            .flatten()
    })
}

/// In the process about to run the node's command: its directory, its user, then exec.
fn exec_command(c: &Config, mask: &libc::sigset_t) -> ! {
    // SAFETY: restores the signal mask for the command, and SIGPIPE's default action, which the
    // Rust runtime of this process set to ignore (an ignored signal stays ignored across exec).
    unsafe {
        libc::sigprocmask(libc::SIG_SETMASK, mask, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let fail = |msg: String| -> ! {
        let msg = format!("labwire-init: {msg}\n");
        // SAFETY: writes to standard error and leaves.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(127)
        }
    };
    if let Some(d) = &c.workdir {
        if let Err(e) = std::env::set_current_dir(d) {
            fail(format!("working directory {d}: {e}"));
        }
    }
    if let Some(u) = &c.user {
        match resolve_user(u) {
            // SAFETY: drop supplementary groups, then group, then user.
            Ok((uid, gid)) => unsafe {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    fail(format!("become user {u}: {}", errno()));
                }
            },
            Err(e) => fail(e),
        }
    }
    let args: Vec<CString> = c.command.iter().map(|a| cstr(a)).collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: argv is a NULL-terminated array of valid strings.
    unsafe { libc::execvp(argv[0], argv.as_ptr()) };
    fail(format!("exec {}: {}", c.command[0], errno()))
}

/// An init system (systemd, sysvinit) must itself be PID 1: labwire-init hands over to it.
fn is_init_system(command: &[String]) -> bool {
    command.first().is_some_and(|a| {
        let base = a.rsplit('/').next().unwrap_or(a);
        matches!(base, "init" | "systemd")
    })
}

fn spawn_command(c: &Config, mask: &libc::sigset_t) {
    // SAFETY: single-threaded process; the child only sets itself up and execs.
    unsafe {
        if libc::fork() == 0 {
            exec_command(c, mask);
        }
    }
}

/// PID 1's life: run the command, reap everything, stop on SIGTERM/SIGINT.
fn run_pid1(c: &Config, set: &libc::sigset_t) -> ! {
    // SAFETY: an empty mask for the command's process.
    let empty: libc::sigset_t = unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        s
    };
    // The command starts when labwire says the node's links are up (SIGUSR1).
    let mut started = false;
    loop {
        // SAFETY: siginfo_t is plain data, valid all zeroes.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waits for one of the blocked signals.
        let sig = unsafe { libc::sigwaitinfo(set, &mut info) };
        match sig {
            libc::SIGCHLD => reap(),
            libc::SIGUSR1 if !started => {
                started = true;
                if is_init_system(&c.command) {
                    exec_command(c, &empty);
                }
                if !c.command.is_empty() {
                    spawn_command(c, &empty);
                }
            }
            libc::SIGTERM | libc::SIGINT | libc::SIGHUP => {
                // SAFETY: signals every process of this PID namespace, then waits a moment.
                unsafe { libc::kill(-1, libc::SIGTERM) };
                for _ in 0..20 {
                    reap();
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                // SAFETY: ends this process; the kernel ends the rest of the namespace.
                unsafe { libc::_exit(0) };
            }
            _ => {}
        }
    }
}

fn reap() {
    loop {
        let mut status = 0;
        // SAFETY: non-blocking wait for any child.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
    }
}

fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// `labwire-init exec PID -- COMMAND…`: run a command inside every namespace of the node whose PID 1
/// is PID, as a child of that namespace (so it sees its own process tree), and exit with its status.
fn exec_in(args: &[String]) -> ! {
    let (Some(pid), Some(sep)) = (args.first(), args.get(1)) else {
        eprintln!("labwire-init: exec needs PID -- COMMAND");
        std::process::exit(125);
    };
    if sep != "--" || args.len() < 3 {
        eprintln!("labwire-init: exec needs PID -- COMMAND");
        std::process::exit(125);
    }
    let mut fds = Vec::new();
    // The mount namespace goes last: after it, /proc is the node's.
    for ns in ["net", "uts", "ipc", "pid", "mnt"] {
        match std::fs::File::open(format!("/proc/{pid}/ns/{ns}")) {
            Ok(f) => fds.push((ns, f)),
            Err(e) => {
                eprintln!("labwire-init: open namespace {ns} of {pid}: {e}");
                std::process::exit(125);
            }
        }
    }
    let root = std::fs::File::open(format!("/proc/{pid}/root")).ok();
    for (ns, f) in &fds {
        // SAFETY: setns on a namespace file this process holds open.
        if unsafe { libc::setns(f.as_raw_fd(), 0) } != 0 {
            eprintln!("labwire-init: enter {ns} namespace of {pid}: {}", errno());
            std::process::exit(125);
        }
    }
    if let Some(r) = root {
        // SAFETY: fchdir/chroot to the node's root directory, then to its /.
        unsafe {
            libc::fchdir(r.as_raw_fd());
            libc::chroot(c".".as_ptr());
        }
    }
    let _ = std::env::set_current_dir("/");
    // SAFETY: fork so the command is born inside the node's PID namespace.
    let child = unsafe { libc::fork() };
    if child == 0 {
        let argv: Vec<CString> = args[2..].iter().map(|a| cstr(a)).collect();
        let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        // SAFETY: argv is a NULL-terminated array of valid strings.
        unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
        eprintln!("labwire-init: exec {}: {}", args[2], errno());
        // SAFETY: leaving the failed child.
        unsafe { libc::_exit(127) };
    }
    let mut status = 0;
    loop {
        // SAFETY: waits for the child forked above.
        let r = unsafe { libc::waitpid(child, &mut status, 0) };
        if r == child || (r < 0 && errno().raw_os_error() != Some(libc::EINTR)) {
            break;
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    std::process::exit(code);
}

/// `labwire-init reaper --lab LAB`: the lab's subreaper. labwire's deploy forks it before starting
/// nodes, so every node's PID 1 becomes its child when its parent (the short-lived setup process,
/// or the deploy's spawner when the deploy ends) exits; it reaps
/// them when they die and exits when none is left. Without it, node processes would be adopted by
/// the host's PID 1, which on some machines (minimal VM or container inits) never reaps them.
fn reaper() -> ! {
    // SAFETY: prctl and signal only change this process's own attributes.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    loop {
        let mut status = 0;
        // SAFETY: blocking wait for any child.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 && errno().raw_os_error() == Some(libc::ECHILD) {
            std::process::exit(0);
        }
    }
}

/// `labwire-init spawner`: starts node inits on labwire's behalf. labwire's deploy holds a
/// descriptor per node namespace, and every process it starts copies that table and closes it
/// again at exec: at 10,000 nodes, more work than the rest of the node. This process holds no
/// more than its standard descriptors and one of its own PID namespace. On standard input, a sequenced-packet socket, each message
/// asks for one init: its argument and environment strings (see `runtime::spawner`), with the
/// write end of the init's report pipe attached. It forks; the child makes that pipe its standard
/// output and /dev/null its input, and becomes the node's init. It exits when labwire closes the
/// socket.
///
/// An init it forks without an exec (below) is born as the first process of a PID namespace the
/// spawner makes for it (`unshare(CLONE_NEWPID)` before the fork, its own namespace restored for
/// the next one), so it is the node's PID 1 itself: no second fork, no setup process that exits.
/// It learns its PID as labwire sees it from the spawner, through a pipe. It stays the spawner's
/// child while the spawner lives (the spawner ignores SIGCHLD, so a node that dies leaves no
/// zombie), then goes to the nearest subreaper (the lab's reaper, for a deploy) with every other
/// orphan. The spawner's own namespace is restored for its children right after each such fork;
/// if that fails it exits, and labwire starts another. An init that is exec'd is forked
/// in the spawner's own PID namespace and makes the node's itself, as labwire-init started any
/// other way does.
///
/// The child runs the init's code without an exec (an exec, the dynamic loader and the C
/// library's start-up cost as much as the rest of a node's setup): it takes the request's
/// environment and writes the request's arguments and environment over the ones it was started
/// with, which `/proc/PID/cmdline` and `/proc/PID/environ` show, so the node's processes read as
/// if exec'd (`labwire-init --lab LAB --node NODE …`, the node's variables). labwire starts the
/// spawner with room for that (`--room`, and a variable of spaces). A request that does not fit
/// is exec'd.
fn spawner() -> ! {
    let room = Room::of_this_process();
    // Where children are born again after a fork into a namespace of their own.
    let own_pid_ns = std::fs::File::open("/proc/self/ns/pid").ok();
    // SAFETY: this process's own disposition: its children are reaped by the kernel.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    // One byte more than the largest request: a longer one is truncated, and refused.
    let mut buf = vec![0u8; request::MAX_REQUEST + 1];
    loop {
        let (len, fd) = match unix::recv_with_fd(&std::io::stdin(), &mut buf) {
            Ok((0, None)) => std::process::exit(0),
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("labwire-init spawner: {e}");
                std::process::exit(1);
            }
        };
        let Some(report) = fd else {
            eprintln!("labwire-init spawner: a request without its report pipe");
            continue;
        };
        let start = request::decode(&buf[..len]);
        let exec_free = match (&start, room.as_ref()) {
            (Ok((argv, envp)), Some(room)) => room.fits(argv, envp),
            _ => false,
        };
        // The node's PID namespace, for a child that becomes its init without an exec, with the
        // pipe that tells it its PID.
        let mut pid_pipe = [-1; 2];
        let mut made_ns = false;
        if exec_free && own_pid_ns.is_some() {
            // SAFETY: pipe2(2) into a two-element array, then unshare(2) of the PID namespace of
            // this process's children; the pipe closed again if that fails.
            unsafe {
                if libc::pipe2(pid_pipe.as_mut_ptr(), libc::O_CLOEXEC) == 0 {
                    if libc::unshare(libc::CLONE_NEWPID) == 0 {
                        made_ns = true;
                    } else {
                        libc::close(pid_pipe[0]);
                        libc::close(pid_pipe[1]);
                        pid_pipe = [-1; 2];
                    }
                }
            }
        }
        // SAFETY: this process is single-threaded, so the child may run any code.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: the child's own dispositions; the spawner's descriptors it has no use for.
            unsafe {
                libc::signal(libc::SIGCHLD, libc::SIG_DFL);
                if let Some(ns) = &own_pid_ns {
                    libc::close(ns.as_raw_fd());
                }
            }
            let pid1 = made_ns.then(|| {
                // Born as its namespace's PID 1: a signal the node gets is queued from now on, not
                // dropped by the kernel's protection of PID 1s without a handler (see `run_pid1`).
                block_signals();
                read_pid(pid_pipe)
            });
            if pid1 == Some(0) {
                write_raw(
                    report.as_raw_fd(),
                    "error spawner: the node's init was not told its process ID\n",
                );
                // SAFETY: leaves the child without running the spawner's exit handlers.
                unsafe { libc::_exit(1) };
            }
            let null = c"/dev/null";
            // SAFETY: descriptors of this process: the report pipe becomes standard output and
            // /dev/null standard input, replacing the socket, which no node process may keep.
            unsafe {
                let n = libc::open(null.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                if n < 0 || libc::dup2(n, 0) != 0 || libc::dup2(report.as_raw_fd(), 1) != 1 {
                    let msg = format!("error spawner: standard descriptors: {}\n", errno());
                    write_raw(report.as_raw_fd(), &msg);
                    libc::_exit(127);
                }
                libc::close(n);
            }
            drop(report);
            let msg = match start {
                Ok((argv, envp)) => {
                    if let (Some(room), true) = (room.as_ref(), exec_free) {
                        room.become_init(&argv, &envp, pid1);
                    }
                    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
                    a.push(std::ptr::null());
                    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
                    e.push(std::ptr::null());
                    // SAFETY: NULL-terminated arrays of strings that outlive the call.
                    unsafe {
                        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                        libc::execve(a[0], a.as_ptr(), e.as_ptr());
                    }
                    format!("error start labwire-init: {}\n", errno())
                }
                Err(e) => format!("error {e}\n"),
            };
            write_raw(1, &msg);
            // SAFETY: leaves without running the parent's exit handlers.
            unsafe { libc::_exit(127) };
        }
        if pid < 0 {
            write_raw(report.as_raw_fd(), &format!("error fork: {}\n", errno()));
        }
        if made_ns {
            // SAFETY: the pipe made above: the child's PID to its read end, then both ends
            // closed; then setns on the descriptor of this process's own PID namespace.
            unsafe {
                if pid > 0 {
                    libc::write(pid_pipe[1], (&pid as *const libc::pid_t).cast(), 4);
                }
                libc::close(pid_pipe[0]);
                libc::close(pid_pipe[1]);
                let ns = own_pid_ns.as_ref().expect("made only with it");
                if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWPID) != 0 {
                    // The next child would be born in this node's namespace: no next child.
                    eprintln!(
                        "labwire-init spawner: restore its PID namespace: {}",
                        errno()
                    );
                    std::process::exit(1);
                }
            }
        }
        drop(report);
    }
}

/// One `write(2)` of `msg` to `fd`, unbuffered (the spawner's children leave by `_exit`, which
/// flushes nothing); a report that cannot be written is lost with its reader.
fn write_raw(fd: libc::c_int, msg: &str) {
    // SAFETY: writes from a live string to a descriptor the caller holds.
    unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
}

/// In a child of the spawner: its PID as the spawner sees it, from the pipe the spawner writes it
/// to; 0 if it could not be read.
fn read_pid(pipe: [libc::c_int; 2]) -> libc::pid_t {
    let mut pid: libc::pid_t = 0;
    // SAFETY: closes this process's copy of the write end, reads at most the four bytes of `pid`
    // from the read end, and closes it.
    let n = unsafe {
        libc::close(pipe[1]);
        let n = libc::read(pipe[0], (&mut pid as *mut libc::pid_t).cast(), 4);
        libc::close(pipe[0]);
        n
    };
    if n == 4 && pid > 0 {
        pid
    } else {
        0
    }
}

/// The memory the kernel shows as this process's arguments and environment (`arg_start`..
/// `arg_end` and `env_start`..`env_end` of /proc/self/stat).
struct Room {
    args: (usize, usize),
    env: (usize, usize),
    /// This process's program as labwire named it (labwire names the same path in its requests):
    /// a request for another program is exec'd.
    program: Vec<u8>,
}

/// Bytes `strings` take in an argument or environment block.
fn block_len(strings: &[CString]) -> usize {
    strings.iter().map(|s| s.as_bytes_with_nul().len()).sum()
}

impl Room {
    fn of_this_process() -> Option<Room> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which may hold spaces: field 3 is the state.
        let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| rest.get(n - 3)?.parse::<usize>().ok();
        let room = Room {
            args: (field(48)?, field(49)?),
            env: (field(50)?, field(51)?),
            program: std::env::args_os().next()?.into_encoded_bytes(),
        };
        (room.args.0 < room.args.1 && room.env.0 < room.env.1).then_some(room)
    }

    fn fits(&self, argv: &[CString], envp: &[CString]) -> bool {
        argv.first().is_some_and(|p| p.as_bytes() == self.program)
            && block_len(argv) <= self.args.1 - self.args.0
            && block_len(envp) <= self.env.1 - self.env.0
    }

    /// Take `envp` as this process's environment, show `argv` and `envp` in place of the
    /// spawner's, and run the node's init with `argv`'s arguments (as the node's PID 1 when
    /// `pid1` gives its PID outside, see [`node_init`]). Only in a child of the spawner,
    /// single-threaded; `fits` was checked.
    fn become_init(&self, argv: &[CString], envp: &[CString], pid1: Option<libc::pid_t>) -> ! {
        for (k, _) in std::env::vars_os() {
            std::env::remove_var(k);
        }
        for kv in envp {
            let kv = kv.to_string_lossy();
            if let Some((k, v)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) {
                std::env::set_var(k, v);
            }
        }
        // The environment now lives in the C library's own memory: the spawner's strings, which
        // it pointed at, may be written over.
        for ((start, end), strings) in [(self.args, argv), (self.env, envp)] {
            // SAFETY: [start, end) is this process's argument (or environment) block, writable
            // stack memory that nothing reads any more (the Rust runtime's copy of the arguments
            // is not used after start-up, and the environment was just replaced); `fits` checked
            // that the strings fit in it.
            let block = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, end - start) };
            let mut at = 0;
            for s in strings {
                let b = s.as_bytes_with_nul();
                block[at..at + b.len()].copy_from_slice(b);
                at += b.len();
            }
            block[at..].fill(0);
        }
        // Where the kernel lets this process say so (CAP_SYS_RESOURCE), the blocks end where the
        // strings do; elsewhere /proc shows the rest of the room as NUL bytes (empty strings).
        // SAFETY: prctl on this process's own memory map, with addresses inside the blocks above.
        unsafe {
            libc::prctl(
                libc::PR_SET_MM,
                libc::PR_SET_MM_ARG_END,
                self.args.0 + block_len(argv),
                0,
                0,
            );
            libc::prctl(
                libc::PR_SET_MM,
                libc::PR_SET_MM_ENV_END,
                self.env.0 + block_len(envp),
                0,
                0,
            );
        }
        let args: Vec<String> = argv[1..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        node_init(&args, pid1)
    }
}

/// The node's namespaces, made by labwire-init itself before anything else: join the node's
/// cgroup (`--cgroup-procs`) and another node's network namespace (`--join-netns`), then
/// `unshare(--unshare FLAGS)` (less the PID namespace for a process born in its own: `pid1`), a new
/// session, and no inherited descriptor beyond stdio survives exec.
fn enter_namespaces(args: &[String], pid1: bool) -> Result<(), String> {
    let value = |name: &str| {
        args.iter()
            .take_while(|a| *a != "--")
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    if let Some(procs) = value("--cgroup-procs") {
        std::fs::write(procs, b"0").map_err(|e| format!("join cgroup {procs}: {e}"))?;
    }
    if let Some(path) = value("--join-netns") {
        let f = std::fs::File::open(path).map_err(|e| format!("open {path}: {e}"))?;
        // SAFETY: setns on a namespace file held open for the call.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(format!("join network namespace {path}: {}", errno()));
        }
    }
    if let Some(flags) = value("--unshare") {
        let mut flags =
            i32::from_str_radix(flags, 16).map_err(|_| format!("bad --unshare {flags}"))?;
        if pid1 {
            if flags & libc::CLONE_NEWPID == 0 {
                return Err("born in a PID namespace of its own, asked for none".into());
            }
            flags &= !libc::CLONE_NEWPID;
        }
        // SAFETY: unshare(2) and setsid(2) change only this process.
        unsafe {
            if libc::unshare(flags) != 0 {
                return Err(format!("create namespaces: {}", errno()));
            }
            libc::setsid();
        }
    }
    // SAFETY: marks every descriptor above stdio close-on-exec.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("exec") => exec_in(&args[1..]),
        Some("reaper") => reaper(),
        Some("spawner") => spawner(),
        _ => node_init(&args, None),
    }
}

/// The node's init as described at the top: namespaces, mounts, PID 1, the report.
///
/// `pid1` is set for a process born as the first of its own PID namespace (see [`spawner`]): it
/// holds that process's PID outside, as labwire sees it (the spawner refuses to go on without
/// it). That process sets up and then stays the node's PID 1 itself, with no fork.
fn node_init(args: &[String], pid1: Option<libc::pid_t>) -> ! {
    if let Err(e) = enter_namespaces(args, pid1.is_some()) {
        report(&format!("error {e}"));
        std::process::exit(1);
    }
    let c = match parse(args) {
        Ok(c) => c,
        Err(e) => {
            report(&format!("error {e}"));
            std::process::exit(2);
        }
    };
    let log = match open_log(&c) {
        Ok(f) => f,
        Err(e) => {
            report(&format!("error {e}"));
            std::process::exit(1);
        }
    };
    if let Err(e) = setup_mounts(&c) {
        report(&format!("error {e}"));
        std::process::exit(1);
    }
    if let Some(pid) = pid1 {
        be_pid1(&c, &log, pid);
    }
    let mut fds = [0; 2];
    // SAFETY: creates a pipe into a valid two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        report(&format!("error pipe: {}", errno()));
        std::process::exit(1);
    }
    let set = block_signals();
    // SAFETY: this process is single-threaded; the child continues as PID 1 of the new namespace.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        report(&format!("error fork: {}", errno()));
        std::process::exit(1);
    }
    if pid == 0 {
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(fds[0]) };
        let msg = match setup_pid1(&c, &log) {
            Ok(()) => "ok".to_string(),
            Err(e) => e,
        };
        // SAFETY: writing to the pipe's write end, which this process owns.
        unsafe {
            libc::write(fds[1], msg.as_ptr().cast(), msg.len());
            libc::close(fds[1]);
        }
        if msg != "ok" {
            // SAFETY: leaving after a failed setup.
            unsafe { libc::_exit(1) };
        }
        run_pid1(&c, &set);
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(fds[1]) };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        // SAFETY: reads into a local buffer of the given size.
        let n = unsafe { libc::read(fds[0], chunk.as_mut_ptr().cast(), chunk.len()) };
        if n <= 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n as usize]);
    }
    let msg = String::from_utf8_lossy(&buf).into_owned();
    if msg == "ok" {
        report(&format!("ok {pid}"));
        std::process::exit(0);
    }
    let msg = if msg.is_empty() {
        "PID 1 died during setup".to_string()
    } else {
        msg
    };
    report(&format!("error {msg}"));
    std::process::exit(1);
}

/// The rest of [`node_init`] for a process born as its node's PID 1 (`pid` is its PID outside):
/// PID 1's own setup, the report, then PID 1's life.
fn be_pid1(c: &Config, log: &std::fs::File, pid: libc::pid_t) -> ! {
    // PID 1's setup points standard output at the node's log: the report goes on a copy.
    let out = match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => {
            report(&format!("error keep the report pipe: {e}"));
            std::process::exit(1);
        }
    };
    let set = block_signals();
    let (line, ok) = match setup_pid1(c, log) {
        Ok(()) => (format!("ok {pid}\n"), true),
        Err(e) => (format!("error {e}\n"), false),
    };
    let _ = (&out).write_all(line.as_bytes());
    // The report pipe's last writer: labwire reads one line, or its end.
    drop(out);
    if !ok {
        std::process::exit(1);
    }
    run_pid1(c, &set)
}

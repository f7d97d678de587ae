//! labwire-guest: the guest agent of a VM node, PID 1 of its initramfs.
//!
//! It loads the boot modules, mounts the root disk (found by its virtio serial `labwire-root`),
//! switches into it, names each NIC by MAC as the topology names it, applies the addresses and
//! gateways, writes the hostname, hosts file and the node's files, then forks the exec server
//! (which answers labwire on the `labwire.agent` virtio-serial port) and hands PID 1 to the image's
//! init system, or runs the image's command and reaps.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runtime::vm::{proto, GuestConfig};

type Result<T> = std::result::Result<T, String>;

fn main() {
    if std::process::id() != 1 {
        eprintln!("labwire-guest is the init of a VM node's initramfs; it only runs as PID 1");
        std::process::exit(2);
    }
    if let Err(e) = boot() {
        eprintln!("labwire-guest: {e}");
        // PID 1 exiting panics the kernel; with panic=-1 and -no-reboot the VMM stops.
        std::thread::sleep(Duration::from_secs(1));
        std::process::exit(1);
    }
}

fn log(msg: &str) {
    eprintln!("labwire-guest: {msg}");
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL in path")
}

fn mount(src: &str, target: &str, fstype: &str, flags: libc::c_ulong, data: &str) -> Result<()> {
    let (s, t, f, d) = (c(src), c(target), c(fstype), c(data));
    // SAFETY: NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            if fstype.is_empty() {
                std::ptr::null()
            } else {
                f.as_ptr()
            },
            flags,
            if data.is_empty() {
                std::ptr::null()
            } else {
                d.as_ptr().cast()
            },
        )
    };
    if rc != 0 {
        return Err(format!(
            "mount {src} on {target} ({fstype}): {}",
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The guest's clock (seconds since its kernel started, as the console's timestamps count):
/// boot phases are logged on it, so a reader can line them up with the kernel's own lines.
fn uptime() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn boot() -> Result<()> {
    let t0 = Instant::now();
    let mut phases = vec![("init", uptime())];
    mount("proc", "/proc", "proc", 0, "")?;
    mount("sysfs", "/sys", "sysfs", 0, "")?;
    mount("devtmpfs", "/dev", "devtmpfs", 0, "")?;
    let raw = fs::read("/labwire/config.json").map_err(|e| format!("read config: {e}"))?;
    let cfg: GuestConfig =
        serde_json::from_slice(&raw).map_err(|e| format!("parse config: {e}"))?;
    for m in &cfg.modules {
        load_module(m, "")?;
    }
    for (m, options) in &cfg.node_modules {
        load_module(m, options)?;
    }
    phases.push(("boot modules", uptime()));
    let root = wait_disk("labwire-root", Duration::from_secs(20))?;
    mount(&root, "/newroot", "ext4", 0, "")?;
    phases.push(("root mounted", uptime()));
    // The node's files, read now: after the switch the initramfs is out of sight.
    let mut files = Vec::new();
    for (i, target, mode) in &cfg.files {
        let data =
            fs::read(format!("/labwire/files/{i}")).map_err(|e| format!("read file {i}: {e}"))?;
        files.push((target.clone(), *mode, data));
    }
    switch_root()?;
    if cfg.modules_disk {
        let dev = wait_disk("labwire-modules", Duration::from_secs(10))?;
        let dir = format!("/lib/modules/{}", cfg.kernel_release);
        fs::create_dir_all(&dir).map_err(|e| format!("create {dir}: {e}"))?;
        mount(&dev, &dir, "ext4", libc::MS_RDONLY, "")?;
    }
    load_kernel_modules(&cfg.kernel_modules)?;
    phases.push(("modules disk", uptime()));
    let _ = fs::create_dir_all("/run");
    mount(
        "tmpfs",
        "/run",
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        "mode=755",
    )?;
    let _ = fs::create_dir_all("/dev/pts");
    let _ = mount(
        "devpts",
        "/dev/pts",
        "devpts",
        0,
        "gid=5,mode=620,ptmxmode=666",
    );
    let _ = fs::create_dir_all("/dev/shm");
    let _ = mount(
        "tmpfs",
        "/dev/shm",
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        "",
    );
    // The node's directory binds, shared by the VMM over virtio 9p (after /run's tmpfs, which
    // would hide one made under it).
    for share in &cfg.shares {
        fs::create_dir_all(&share.target).map_err(|e| format!("create {}: {e}", share.target))?;
        let flags = if share.read_only { libc::MS_RDONLY } else { 0 };
        mount(
            &share.tag,
            &share.target,
            "9p",
            flags,
            "trans=virtio,version=9p2000.L,msize=262144",
        )?;
    }
    set_hostname(&cfg.hostname)?;
    write_file(
        "/etc/hostname",
        format!("{}\n", cfg.hostname).as_bytes(),
        0o644,
    )?;
    write_file("/etc/hosts", cfg.hosts.as_bytes(), 0o644)?;
    for (target, mode, data) in &files {
        write_file(target, data, *mode)?;
    }
    configure_network(&cfg)?;
    for (key, value) in &cfg.sysctls {
        let path = wire::sysctl::sysctl_path(key);
        fs::write(&path, value).map_err(|e| format!("sysctl {key}={value}: {e}"))?;
    }
    phases.push(("network", uptime()));
    // One line a benchmark reads (benches/vm.sh): when each phase ended, on the guest's clock.
    let marks: Vec<String> = phases
        .iter()
        .map(|(name, t)| format!("{name} {t:.3}"))
        .collect();
    log(&format!(
        "up in {} ms; phases (guest s): {}",
        t0.elapsed().as_millis(),
        marks.join(", ")
    ));
    // SAFETY: fork in a single-threaded process.
    match unsafe { libc::fork() } {
        0 => {
            // SAFETY: a new session for the server, away from the console's.
            unsafe { libc::setsid() };
            serve(&cfg.env);
        }
        -1 => return Err(format!("fork: {}", io::Error::last_os_error())),
        _ => {}
    }
    run_command(&cfg)
}

fn write_file(path: &str, data: &[u8], mode: u32) -> Result<()> {
    if let Some(dir) = Path::new(path).parent() {
        fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    // A symlink at the target (Debian's /etc/hosts is a file, but images vary) is replaced.
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        let _ = fs::remove_file(path);
    }
    fs::write(path, data).map_err(|e| format!("write {path}: {e}"))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {path}: {e}"))
}

fn load_module(path: &str, options: &str) -> Result<()> {
    let f = fs::File::open(path).map_err(|e| format!("open {path}: {e}"))?;
    use std::os::fd::AsRawFd as _;
    let params = c(options);
    // SAFETY: finit_module with an open descriptor and a NUL-terminated parameter string.
    let rc = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), 0) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EKEYREJECTED) {
            return Err(format!(
                "load module {path}: {e}: this kernel refuses unsigned modules, and labwire \
                 strips the boot modules' signatures unless the kernel's config \
                 (CONFIG_MODULE_SIG_FORCE=y, in <modules>/config or boot/config-<release>) or \
                 its command line (module.sig_enforce=1 in LABWIRE_VM_KERNEL_ARGS) says so"
            ));
        }
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(format!("load module {path}: {e}"));
        }
    }
    Ok(())
}

/// Load the node's `kernel-modules` with the image's modprobe (it resolves their dependencies
/// from the modules disk's index).
fn load_kernel_modules(modules: &[String]) -> Result<()> {
    if modules.is_empty() {
        return Ok(());
    }
    let modprobe = ["/usr/sbin/modprobe", "/sbin/modprobe", "/bin/modprobe"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| {
            format!(
                "kernel-modules {}: the image has no modprobe (/usr/sbin, /sbin, /bin; Debian's package kmod)",
                modules.join(", ")
            )
        })?;
    let out = Command::new(modprobe)
        .arg("-a")
        .args(modules)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {modprobe}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "modprobe -a {}: {}",
            modules.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// The block device whose virtio serial is `serial`, waiting for it to appear.
fn wait_disk(serial: &str, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(entries) = fs::read_dir("/sys/block") {
            for e in entries.flatten() {
                let s = fs::read_to_string(e.path().join("serial")).unwrap_or_default();
                if s.trim() == serial {
                    return Ok(format!("/dev/{}", e.file_name().to_string_lossy()));
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no disk with serial {serial} appeared"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Make /newroot the root, carrying /dev, /proc and /sys along.
fn switch_root() -> Result<()> {
    for d in ["dev", "proc", "sys"] {
        let target = format!("/newroot/{d}");
        let _ = fs::create_dir_all(&target);
        mount(&format!("/{d}"), &target, "", libc::MS_MOVE, "")?;
    }
    std::env::set_current_dir("/newroot").map_err(|e| format!("chdir /newroot: {e}"))?;
    mount(".", "/", "", libc::MS_MOVE, "")?;
    let dot = c(".");
    // SAFETY: chroot to the current directory, then chdir to the new root.
    if unsafe { libc::chroot(dot.as_ptr()) } != 0 {
        return Err(format!("chroot: {}", io::Error::last_os_error()));
    }
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))
}

fn set_hostname(name: &str) -> Result<()> {
    // SAFETY: pointer and length of a live byte slice.
    let rc = unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };
    if rc != 0 {
        return Err(format!("sethostname: {}", io::Error::last_os_error()));
    }
    Ok(())
}

/// Rename an interface (it must be down).
fn rename(from: &str, to: &str) -> Result<()> {
    // SAFETY: a datagram socket for the ioctl; closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", io::Error::last_os_error()));
    }
    // SAFETY: a zeroed ifreq with both names copied in bounds (IFNAMSIZ - 1 at most).
    let rc = unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in from.bytes().take(libc::IFNAMSIZ - 1).enumerate() {
            req.ifr_name[i] = b as libc::c_char;
        }
        for (i, b) in to.bytes().take(libc::IFNAMSIZ - 1).enumerate() {
            req.ifr_ifru.ifru_newname[i] = b as libc::c_char;
        }
        let rc = libc::ioctl(fd, libc::SIOCSIFNAME, &req);
        libc::close(fd);
        rc
    };
    if rc != 0 {
        return Err(format!(
            "rename {from} to {to}: {}",
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Give each NIC (its name now, the name it must have) its name: directly when that name is free,
/// through a temporary name when NICs swap names. Each rename waits for an RCU grace period in the
/// kernel (about 12 ms of a TCG guest's boot), so a NIC already named right is left alone.
fn name_nics(mut nics: Vec<(String, String)>) -> Result<()> {
    let mut taken: std::collections::HashSet<String> = fs::read_dir("/sys/class/net")
        .map_err(|e| format!("list /sys/class/net: {e}"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut temp = 0;
    while nics.iter().any(|(now, want)| now != want) {
        let mut moved = false;
        for (now, want) in nics.iter_mut().filter(|(now, want)| now != want) {
            if !taken.contains(want.as_str()) {
                rename(now, want)?;
                taken.remove(now.as_str());
                taken.insert(want.clone());
                *now = want.clone();
                moved = true;
            }
        }
        if !moved {
            // Every wanted name is held by another of these NICs: move one aside.
            let (now, _) = nics
                .iter_mut()
                .find(|(now, want)| now != want)
                .expect("one NIC is misnamed");
            let aside = loop {
                temp += 1;
                let t = format!("lwnic{temp}");
                if !taken.contains(&t) {
                    break t;
                }
            };
            rename(now, &aside)?;
            taken.remove(now.as_str());
            taken.insert(aside.clone());
            *now = aside;
        }
    }
    Ok(())
}

fn configure_network(cfg: &GuestConfig) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let by_mac: HashMap<String, &runtime::vm::GuestNic> = cfg
        .nics
        .iter()
        .map(|n| (n.mac.to_ascii_lowercase(), n))
        .collect();
    // Wait for every NIC to appear.
    let present = loop {
        let mut found: Vec<(String, String)> = Vec::new();
        for e in fs::read_dir("/sys/class/net")
            .map_err(|e| format!("list /sys/class/net: {e}"))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let mac = fs::read_to_string(e.path().join("address")).unwrap_or_default();
            let mac = mac.trim().to_ascii_lowercase();
            if by_mac.contains_key(&mac) {
                found.push((name, mac));
            }
        }
        if found.len() == cfg.nics.len() || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if present.len() != cfg.nics.len() {
        return Err(format!(
            "{} of {} NICs appeared",
            present.len(),
            cfg.nics.len()
        ));
    }
    name_nics(
        present
            .iter()
            .map(|(name, mac)| (name.clone(), by_mac[mac].name.clone()))
            .collect(),
    )?;
    let mut h = wire::Handle::new().map_err(|e| format!("netlink: {e}"))?;
    let links = h.links().map_err(|e| format!("list interfaces: {e}"))?;
    let index: HashMap<&str, u32> = links.iter().map(|l| (l.name.as_str(), l.index)).collect();
    if let Some(&lo) = index.get("lo") {
        h.set_up(lo).map_err(|e| format!("lo up: {e}"))?;
    }
    for nic in &cfg.nics {
        let i = *index
            .get(nic.name.as_str())
            .ok_or_else(|| format!("NIC {} vanished", nic.name))?;
        if nic.mtu > 0 {
            h.set_mtu(i, nic.mtu)
                .map_err(|e| format!("MTU {} on {}: {e}", nic.mtu, nic.name))?;
        }
        for (a, p) in &nic.addresses {
            h.add_address(i, *a, *p)
                .map_err(|e| format!("address {a}/{p} on {}: {e}", nic.name))?;
        }
        // Addressed first, then up, announcing its addresses as it comes up (a gratuitous ARP, an
        // unsolicited neighbour advertisement): whoever tried to reach the node while it booted
        // holds an unanswered neighbour entry, retried only once a second, and learns the MAC
        // now instead. Best effort: a NIC without these settings is just up.
        for (family, key) in [("ipv4", "arp_notify"), ("ipv6", "ndisc_notify")] {
            let _ = fs::write(
                format!("/proc/sys/net/{family}/conf/{}/{key}", nic.name),
                "1",
            );
        }
        h.set_up(i)
            .map_err(|e| format!("bring up {}: {e}", nic.name))?;
    }
    let eth0 = index.get("eth0").copied();
    for gw in &cfg.gateways {
        h.add_default_route(*gw, eth0)
            .map_err(|e| format!("default route via {gw}: {e}"))?;
    }
    Ok(())
}

/// The exec server: answer labwire on the agent port, forever.
fn serve(base_env: &[(String, String)]) -> ! {
    let port = loop {
        match find_port() {
            Some(p) => break p,
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    // The port stays open for good: while the guest has it closed, whatever the host sends is
    // dropped, and a host connecting in that moment would lose its first request.
    let file = loop {
        match fs::OpenOptions::new().read(true).write(true).open(&port) {
            Ok(f) => break f,
            Err(e) => {
                log(&format!("open {}: {e}", port.display()));
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    };
    loop {
        session(&file, base_env);
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn find_port() -> Option<PathBuf> {
    for e in fs::read_dir("/sys/class/virtio-ports").ok()?.flatten() {
        let name = fs::read_to_string(e.path().join("name")).unwrap_or_default();
        if name.trim() == proto::PORT_NAME {
            return Some(Path::new("/dev").join(e.file_name()));
        }
    }
    None
}

/// Serve requests while the host end is connected; return when it goes away (a frame cut short
/// by a host leaving is dropped: the next host starts with a fresh frame).
fn session(mut port: &fs::File, base_env: &[(String, String)]) {
    use std::os::fd::AsRawFd as _;
    loop {
        let mut pfd = libc::pollfd {
            fd: port.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 1000) };
        if n <= 0 {
            continue;
        }
        if pfd.revents & libc::POLLIN == 0 {
            // No host on the other end: the port reads as end-of-file until one connects.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let (kind, payload) = match proto::read_frame(&mut port) {
            Ok(f) => f,
            Err(_) => return,
        };
        let ok = match kind {
            proto::PING => proto::write_frame(&mut port, proto::PONG, &payload).is_ok(),
            proto::EXEC => run_request(port, &payload, base_env).is_ok(),
            _ => true,
        };
        if !ok {
            return;
        }
    }
}

/// Run one request with the node's environment (`base_env`, what its init got) under the
/// request's own variables.
fn run_request(
    mut port: &fs::File,
    payload: &[u8],
    base_env: &[(String, String)],
) -> io::Result<()> {
    let req: proto::ExecRequest = match serde_json::from_slice(payload) {
        Ok(r) => r,
        Err(e) => {
            proto::write_frame(
                &mut port,
                proto::STDERR,
                format!("bad request: {e}\n").as_bytes(),
            )?;
            return proto::write_frame(&mut port, proto::EXIT, &127i32.to_le_bytes());
        }
    };
    let out = Command::new("/bin/sh")
        .args(["-c", &req.command])
        .env_clear()
        .envs(base_env.iter().cloned())
        .envs(req.env)
        .current_dir("/")
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) => {
            for chunk in o.stdout.chunks(1 << 20) {
                proto::write_frame(&mut port, proto::STDOUT, chunk)?;
            }
            for chunk in o.stderr.chunks(1 << 20) {
                proto::write_frame(&mut port, proto::STDERR, chunk)?;
            }
            let code = o.status.code().unwrap_or(128 + 9);
            proto::write_frame(&mut port, proto::EXIT, &code.to_le_bytes())
        }
        Err(e) => {
            proto::write_frame(
                &mut port,
                proto::STDERR,
                format!("/bin/sh: {e}\n").as_bytes(),
            )?;
            proto::write_frame(&mut port, proto::EXIT, &127i32.to_le_bytes())
        }
    }
}

/// Hand PID 1 to the image's init system, or run the image's command and reap orphans.
fn run_command(cfg: &GuestConfig) -> Result<()> {
    if let Some(dir) = &cfg.workdir {
        let _ = std::env::set_current_dir(dir);
    }
    if cfg.init {
        let argv: Vec<CString> = cfg.argv.iter().map(|a| c(a)).collect();
        let env: Vec<CString> = cfg
            .env
            .iter()
            .map(|(k, v)| c(&format!("{k}={v}")))
            .collect();
        let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_p.push(std::ptr::null());
        let mut env_p: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
        env_p.push(std::ptr::null());
        // SAFETY: NULL-terminated arrays of NUL-terminated strings that outlive the call.
        unsafe { libc::execve(argv_p[0], argv_p.as_ptr(), env_p.as_ptr()) };
        // The node stays up (and reachable through exec) with the agent as its init.
        log(&format!(
            "exec {}: {}; the agent stays PID 1",
            cfg.argv[0],
            io::Error::last_os_error()
        ));
    } else if let Some((prog, args)) = cfg.argv.split_first() {
        let child = Command::new(prog)
            .args(args)
            .env_clear()
            .envs(cfg.env.iter().cloned())
            .stdin(Stdio::null())
            .spawn();
        if let Err(e) = child {
            log(&format!("start {prog}: {e}"));
        }
    }
    // Reap whatever ends: daemons that fork into the background (FRR's, sshd) are reparented
    // here, and a service script that stops one waits until its PID is gone, which a zombie never
    // is. (Nothing may block before this loop: a read of the console would never return.)
    loop {
        let mut status = 0;
        // SAFETY: waits for any child; status is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

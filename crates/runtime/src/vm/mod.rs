//! The vm runtime: a node is a microVM (QEMU's `microvm` machine) running inside a network
//! namespace made as for a native node. Each of the namespace's interfaces (eth0 and every data
//! link) gets a tap, joined to it by a two-way tc redirect; the guest NIC takes the interface's MAC
//! and, inside the guest, its name. The guest boots the node's kernel with an initramfs holding
//! labwire's guest agent, the modules it needs and the node's configuration; the agent mounts the
//! root disk (the image as ext4, under a per-node copy-on-write overlay), names the NICs, applies
//! addresses, serves `exec` over a virtio-serial port and hands over to the image's init.
//!
//! This module composes the files and the VMM command line; the `lab` layer makes the namespace,
//! the links and the taps, and starts the VMM as the node's command.

pub mod cpio;
pub mod node;
pub mod proto;
pub mod qemu;
pub mod qmp;
pub mod vmm;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::node::{ExecOutput, ImageRoot, NodeContext};
use crate::{io, Error, Result};

/// Modules the guest needs before its root is mounted (Debian's stock kernel builds them as
/// modules): virtio over MMIO, its NIC, disk and serial port, and ext4 with its checksum.
pub const BOOT_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_net",
    "virtio_blk",
    "virtio_console",
    "crc32c_generic",
    "ext4",
];

/// Guest RAM when the node sets no `memory`.
pub const DEFAULT_MEMORY_MIB: u64 = 512;

/// What the guest agent is told (`/labwire/config.json` in the initramfs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GuestConfig {
    pub hostname: String,
    /// Module files in the initramfs, in load order.
    pub modules: Vec<String>,
    pub nics: Vec<GuestNic>,
    /// Default gateways (on eth0).
    pub gateways: Vec<IpAddr>,
    /// The image's command (entrypoint + cmd, merged as container engines do).
    pub argv: Vec<String>,
    /// Whether `argv` is an init system, which gets PID 1.
    #[serde(default)]
    pub init: bool,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    /// Files to put into the root: (index in /labwire/files, path in the guest, mode).
    pub files: Vec<(usize, String, u32)>,
    /// /etc/hosts content.
    pub hosts: String,
    /// The kernel release, where the modules disk is mounted (`/lib/modules/<release>`).
    pub kernel_release: String,
    /// Whether a modules disk is attached.
    pub modules_disk: bool,
    /// Modules the node names in `kernel-modules`, loaded with the image's `modprobe` once the
    /// modules disk is mounted (when labwire could not put them into the initramfs).
    #[serde(default)]
    pub kernel_modules: Vec<String>,
    /// The node's `kernel-modules` (and 9p for its binds) with their dependencies, as files in
    /// the initramfs in load order with their options from the image's `modprobe.d`, loaded
    /// right after the boot modules.
    #[serde(default)]
    pub node_modules: Vec<(String, String)>,
    /// Host directories shared over virtio 9p (the node's directory `binds`), mounted by tag.
    #[serde(default)]
    pub shares: Vec<GuestShare>,
    /// The node's sysctls, applied in the guest once its NICs are named.
    #[serde(default)]
    pub sysctls: Vec<(String, String)>,
}

/// One guest NIC: found by MAC, renamed, addressed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GuestNic {
    pub mac: String,
    pub name: String,
    pub mtu: u32,
    /// The link speed the NIC reports (Mbit/s, full duplex): 802.3ad bonding takes a member of
    /// unknown speed for down.
    #[serde(default)]
    pub speed_mbps: u32,
    pub addresses: Vec<(IpAddr, u8)>,
}

/// A host directory the guest mounts (a directory bind): QEMU exports it over virtio 9p under
/// `tag`; the agent mounts it at `target`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GuestShare {
    pub tag: String,
    pub target: String,
    pub read_only: bool,
}

/// The node's directory binds as 9p shares, in bind order (the tag is the share's index).
pub fn shares(node: &topology::Node) -> Vec<(GuestShare, &Path)> {
    node.binds
        .iter()
        .filter(|b| b.source.is_dir())
        .enumerate()
        .map(|(i, b)| {
            (
                GuestShare {
                    tag: format!("lwbind{i}"),
                    target: b.target.clone(),
                    read_only: b.read_only(),
                },
                b.source.as_path(),
            )
        })
        .collect()
}

/// The modules the guest loads after its root: the node's `kernel-modules`, and 9p over virtio
/// when it has directory binds.
pub fn guest_modules(node: &topology::Node) -> Vec<String> {
    let mut m = node.kernel_modules.clone();
    if node.binds.iter().any(|b| b.source.is_dir()) {
        for x in ["9pnet_virtio", "9p"] {
            if !m.iter().any(|k| k == x) {
                m.push(x.to_string());
            }
        }
    }
    m
}

/// Which accelerator QEMU uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// Everything needed to start one VM node.
pub struct VmSpec<'a> {
    pub node: &'a topology::Node,
    /// The lab's name, topology file and the node's interface count (its environment).
    pub ctx: NodeContext<'a>,
    pub image: &'a ImageRoot,
    pub kernel: &'a image::Kernel,
    /// What every node of this kernel shares ([`boot_image`]).
    pub boot: &'a BootImage,
    /// The kernel's modules as a disk, when the guest gets them.
    pub modules_disk: Option<&'a Path>,
    pub root_disk: &'a Path,
    /// The node's NICs in QEMU order: eth0 first (when bridged), then its links.
    pub nics: Vec<GuestNic>,
    pub gateways: Vec<IpAddr>,
    /// Where the node's runtime files go (sockets, initramfs) and its writable disk layer.
    pub run_dir: &'a Path,
    pub state_dir: &'a Path,
    pub accel: Accel,
}

/// The tap joined to the namespace's `i`-th NIC.
pub fn tap_name(i: usize) -> String {
    format!("lwtap{i}")
}

/// The agent's socket (QEMU listens on it; labwire connects).
pub fn agent_socket(run_dir: &Path) -> PathBuf {
    run_dir.join("agent.sock")
}

/// The VMM's control socket (QMP for QEMU).
pub fn control_socket(run_dir: &Path) -> PathBuf {
    run_dir.join("qmp.sock")
}

/// The VMM command line a node booted with, kept so a restart boots it the same way.
pub fn argv_file(run_dir: &Path) -> PathBuf {
    run_dir.join("vmm.argv")
}

/// The serial console's socket.
pub fn console_socket(run_dir: &Path) -> PathBuf {
    run_dir.join("console.sock")
}

/// The VMM binary.
pub const QEMU: &str = "qemu-system-x86_64";

/// Where the guest agent binary lives: next to the running labwire binary, or `LABWIRE_GUEST`.
pub fn agent_path() -> Result<PathBuf> {
    crate::node::sibling_binary("labwire-guest", "LABWIRE_GUEST")
}

/// Whether KVM can run this host's QEMU guests, judged by booting `kernel` (the first VM node's)
/// under it to its first panic: no root device, `panic=-1` and `-no-reboot`, so a kernel that runs
/// makes QEMU exit at once (well under a second under KVM). Starting a paused machine is not
/// enough: on some nested hosts KVM starts a machine and then hangs a real kernel in its early
/// boot for good, where TCG boots the same kernel in seconds.
/// `LABWIRE_VM_ACCEL=kvm|tcg` overrides the probe.
///
/// Returns the accelerator and whether the verdict is definitive: the kernel ran, QEMU failed
/// under KVM, or the kernel did not reach its panic within the probe's time (slower than TCG would
/// boot it). A missing `/dev/kvm` or a QEMU that does not start say TCG for now only.
pub fn probe_accel(kernel: &Path) -> (Accel, bool) {
    match std::env::var("LABWIRE_VM_ACCEL").as_deref() {
        Ok("kvm") => return (Accel::Kvm, true),
        Ok("tcg") => return (Accel::Tcg, true),
        _ => {}
    }
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return (Accel::Tcg, false);
    }
    let child = Command::new(QEMU)
        .args([
            "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "128",
        ])
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ])
        .arg("-kernel")
        .arg(kernel)
        .args(["-append", PROBE_CMDLINE])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return (Accel::Tcg, false);
    };
    let deadline = Instant::now() + PROBE_TIME;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let accel = if status.success() {
                    Accel::Kvm
                } else {
                    Accel::Tcg
                };
                return (accel, true);
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return (Accel::Tcg, true);
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return (Accel::Tcg, false);
            }
        }
    }
}

/// The probe kernel's command line: no init anywhere and no root device, so the kernel panics as
/// soon as it has booted, and reboots at once (which `-no-reboot` turns into QEMU's exit).
const PROBE_CMDLINE: &str =
    "panic=-1 root=/dev/labwire-probe rdinit=/labwire-probe init=/labwire-probe";

/// How long the probe waits for the kernel's panic under KVM. TCG boots Debian's kernel to it in
/// about 7 s on a 2-vCPU host; a KVM that takes longer than this is of no use.
const PROBE_TIME: Duration = Duration::from_secs(20);

/// The dynamic libraries (and loader) a binary needs, as `ldd` lists them.
fn shared_libraries(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(bin)
        .output()
        .map_err(io(format!("run ldd on {}", bin.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    let libs = text
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with('/'))
                .map(PathBuf::from)
        })
        .collect();
    Ok(libs)
}

/// The agent binary without debug information when `strip` is at hand (a debug build carries
/// tens of megabytes of it, which the guest would unpack into RAM).
fn agent_bytes(agent: &Path, scratch: &Path) -> Result<Vec<u8>> {
    let stripped = scratch.join(format!("labwire-guest.{}.stripped", std::process::id()));
    let ok = image::find_tool("strip").is_some()
        && Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&stripped)
            .arg(agent)
            .status()
            .is_ok_and(|s| s.success());
    let path = if ok { stripped.as_path() } else { agent };
    let data = std::fs::read(path).map_err(io(format!("read {}", path.display())));
    let _ = std::fs::remove_file(&stripped);
    data
}

/// What every VM node booting one kernel shares: the initramfs part with the agent, the
/// libraries it links and the boot modules (a finished cpio archive; each node's own archive is
/// appended to it, which the kernel unpacks as one), the modules' load order, and the kernel
/// command line.
pub struct BootImage {
    pub initramfs: Vec<u8>,
    pub modules: Vec<String>,
    pub cmdline: String,
    /// The kernel's module tree, which each node's own modules come from.
    pub index: Option<image::Modules>,
    /// Whether modules go into the initramfs without their signatures.
    pub unsigned: bool,
}

/// Build the shared boot image for `kernel` (its `modules` when it has any) and the agent.
/// `scratch` takes a temporary stripped copy of the agent.
pub fn boot_image(
    kernel: &image::Kernel,
    modules: Option<image::Modules>,
    agent: &Path,
    accel: Accel,
    scratch: &Path,
) -> Result<BootImage> {
    let mut a = cpio::Archive::new();
    for d in ["dev", "proc", "sys", "newroot", "lib", "lib64", "labwire"] {
        a.dir(d);
    }
    a.dir("labwire/files");
    a.dir("labwire/modules");
    a.char_device("dev/console", 5, 1);
    a.char_device("dev/null", 1, 3);
    let read = |p: &Path| std::fs::read(p).map_err(io(format!("read {}", p.display())));
    a.file("init", 0o755, &agent_bytes(agent, scratch)?);
    for lib in shared_libraries(agent)? {
        let real = std::fs::canonicalize(&lib).unwrap_or_else(|_| lib.clone());
        let mut made = PathBuf::new();
        for c in lib.parent().into_iter().flat_map(Path::components).skip(1) {
            made.push(c);
            a.dir(&made.to_string_lossy());
        }
        a.file(&lib.to_string_lossy(), 0o755, &read(&real)?);
    }
    let cmdline = kernel_command_line(accel);
    let mut loaded = Vec::new();
    let unsigned = modules
        .as_ref()
        .is_some_and(|m| !enforces_module_signatures(m, &cmdline));
    if let Some(m) = &modules {
        let order = m
            .load_order(BOOT_MODULES)
            .map_err(crate::image_err(format!("kernel {}", kernel.version)))?;
        for (i, rel) in order.iter().enumerate() {
            let name = pack_module(&mut a, m, rel, &format!("{i:02}"), unsigned)
                .map_err(crate::image_err(format!("kernel {}", kernel.version)))?;
            loaded.push(name);
        }
    }
    let mut initramfs = Vec::new();
    a.finish(&mut initramfs)
        .map_err(io("assemble the initramfs"))?;
    Ok(BootImage {
        initramfs,
        modules: loaded,
        cmdline,
        index: modules,
        unsigned,
    })
}

/// Put the node's own modules (its `kernel-modules`, 9p for its directory binds) with their
/// dependencies into its initramfs archive, past those the boot image loads, and return their
/// paths in load order. The agent loads them itself: no `modprobe` to start in the guest (a
/// process costs a TCG guest a tenth of a second and more) and, like the boot modules, no
/// signature to verify. `None` when the kernel's module tree is not indexed here (the agent
/// then runs the image's modprobe over the modules disk).
fn add_node_modules(
    spec: &VmSpec<'_>,
    a: &mut cpio::Archive,
    wanted: &[String],
) -> Result<Option<Vec<(String, String)>>> {
    let Some(index) = &spec.boot.index else {
        return Ok(None);
    };
    if wanted.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let err = |e| Error::VmConfig {
        node: spec.node.name.clone(),
        message: format!("kernel-modules: {e}"),
    };
    let names: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let boot = index.load_order(BOOT_MODULES).map_err(err)?;
    let mut paths = Vec::new();
    for (i, rel) in index
        .load_order(&names)
        .map_err(err)?
        .into_iter()
        .filter(|rel| !boot.contains(rel))
        .enumerate()
    {
        let name = pack_module(a, index, &rel, &format!("node-{i:02}"), spec.boot.unsigned)
            .map_err(err)?;
        let file = image::kernel::plain_module_name(
            &rel.file_name().unwrap_or_default().to_string_lossy(),
        );
        let module = image::kernel::module_name(file.trim_end_matches(".ko"));
        paths.push((name, modprobe_options(&spec.image.layers, &module)));
    }
    Ok(Some(paths))
}

/// Adds module `rel` of `index` to the initramfs as `/labwire/modules/<prefix>-<file>.ko`,
/// decompressed (the agent loads plain ELF modules, whatever the kernel takes) and, when
/// `unsigned`, without its signature. Returns its path in the guest.
fn pack_module(
    a: &mut cpio::Archive,
    index: &image::Modules,
    rel: &Path,
    prefix: &str,
    unsigned: bool,
) -> image::Result<String> {
    let file =
        image::kernel::plain_module_name(&rel.file_name().unwrap_or_default().to_string_lossy());
    let name = format!("labwire/modules/{prefix}-{file}");
    let mut data = image::kernel::read_module(&index.dir().join(rel))?;
    if unsigned {
        strip_module_signature(&mut data);
    }
    a.file(&name, 0o644, &data);
    Ok(format!("/{name}"))
}

/// The options the image's `modprobe` would give `module`: the `options <module> …` lines of its
/// `modprobe.d` files, read as kmod reads them (a file in `/etc/modprobe.d` hides one of the same
/// name in `/run`, `/usr/local/lib`, `/lib` or `/usr/lib`; files in name order; the topmost
/// layer holding a path wins). Debian's systemd, for one, ships `options bonding max_bonds=0`, so
/// that loading bonding makes no `bond0`.
fn modprobe_options(layers: &[PathBuf], module: &str) -> String {
    const DIRS: [&str; 5] = [
        "etc/modprobe.d",
        "run/modprobe.d",
        "usr/local/lib/modprobe.d",
        "lib/modprobe.d",
        "usr/lib/modprobe.d",
    ];
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in DIRS {
        for layer in layers.iter().rev() {
            let Ok(entries) = std::fs::read_dir(layer.join(dir)) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                // Whiteouts and directories are not files: only regular ones count.
                if name.ends_with(".conf") && e.file_type().is_ok_and(|t| t.is_file()) {
                    files.entry(name).or_insert_with(|| e.path());
                }
            }
        }
    }
    let mut options = Vec::new();
    for path in files.values() {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words.next() == Some("options")
                && words.next().map(image::kernel::module_name).as_deref() == Some(module)
            {
                options.extend(words.map(str::to_string));
            }
        }
    }
    options.join(" ")
}

/// The marker the kernel's `sign-file` appends after a module's signature.
const MODULE_SIGNATURE_MAGIC: &[u8] = b"~Module signature appended~\n";

/// Drop the signature appended to a module, if it has one. A kernel that does not enforce
/// signatures still checks one it finds: it hashes the whole module and verifies the signature,
/// which under TCG was about 70 % of the guest instructions spent loading the boot modules (ext4
/// alone is a megabyte); an unsigned module only marks the kernel tainted (`E`).
pub fn strip_module_signature(data: &mut Vec<u8>) {
    // Signature, then its 12-byte descriptor (whose last 4 bytes are the signature's length, big
    // endian), then the magic.
    let Some(body) = data.len().checked_sub(MODULE_SIGNATURE_MAGIC.len()) else {
        return;
    };
    if &data[body..] != MODULE_SIGNATURE_MAGIC || body < 12 {
        return;
    }
    let len = u32::from_be_bytes(data[body - 4..body].try_into().expect("4 bytes")) as usize;
    if let Some(end) = (body - 12).checked_sub(len) {
        data.truncate(end);
    }
}

/// Whether the guest kernel refuses unsigned modules: built to (`CONFIG_MODULE_SIG_FORCE=y` in
/// the config its package ships beside the modules or in `boot/`), or told to on its command line
/// (`module.sig_enforce=1`, through `LABWIRE_VM_KERNEL_ARGS`). Then its boot modules keep their
/// signatures.
fn enforces_module_signatures(modules: &image::Modules, cmdline: &str) -> bool {
    if cmdline
        .split_whitespace()
        .any(|a| a == "module.sig_enforce=1" || a == "module.sig_enforce=y")
    {
        return true;
    }
    let dir = modules.dir();
    let release = dir.file_name().unwrap_or_default().to_string_lossy();
    let mut configs = vec![dir.join("config")];
    // <root>/lib/modules/<release> or <root>/usr/lib/modules/<release> → <root>/boot/config-<release>
    for up in [3, 4] {
        if let Some(root) = dir.ancestors().nth(up) {
            configs.push(root.join("boot").join(format!("config-{release}")));
        }
    }
    configs.iter().any(|c| {
        std::fs::read_to_string(c)
            .is_ok_and(|t| t.lines().any(|l| l.trim() == "CONFIG_MODULE_SIG_FORCE=y"))
    })
}

/// The largest file copied into a VM node's initramfs (it sits in the guest's memory).
const MAX_GUEST_FILE_BYTES: u64 = 64 << 20;

/// Write the node's initramfs: the shared boot image followed by the node's configuration and
/// files.
fn write_initramfs(spec: &VmSpec<'_>, out: &Path) -> Result<()> {
    let mut a = cpio::Archive::new();
    let mut files = Vec::new();
    let mut add_file = |a: &mut cpio::Archive, src: &Path, target: &str| -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Opened without blocking (a FIFO with no writer) and judged by what was opened.
        let file = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(src)
            .map_err(io(format!("read {}", src.display())))?;
        let meta = file
            .metadata()
            .map_err(io(format!("read {}", src.display())))?;
        if !meta.is_file() {
            return Err(Error::VmConfig {
                node: spec.node.name.clone(),
                message: format!(
                    "bind {} → {}: a VM node gets files copied in, and this is not a regular file",
                    src.display(),
                    target
                ),
            });
        }
        use std::os::unix::fs::PermissionsExt as _;
        let i = files.len();
        if meta.len() > MAX_GUEST_FILE_BYTES {
            return Err(Error::VmConfig {
                node: spec.node.name.clone(),
                message: format!(
                    "bind {} → {target}: {} bytes; a file copied into a VM node holds at most {MAX_GUEST_FILE_BYTES}",
                    src.display(),
                    meta.len()
                ),
            });
        }
        let mut data = Vec::new();
        file.take(MAX_GUEST_FILE_BYTES)
            .read_to_end(&mut data)
            .map_err(io(format!("read {}", src.display())))?;
        a.file(&format!("labwire/files/{i}"), 0o644, &data);
        files.push((i, target.to_string(), meta.permissions().mode() & 0o7777));
        Ok(())
    };
    // Directories are shared over 9p (see `shares`); files are copied in.
    for b in spec.node.binds.iter().filter(|b| !b.source.is_dir()) {
        add_file(&mut a, &b.source, &b.target)?;
    }
    if let Some(cfg) = &spec.node.startup_config {
        add_file(&mut a, cfg, "/etc/labwire/startup-config")?;
    }
    let keys = spec.node.dir.parent().map(|d| d.join("authorized_keys"));
    if let Some(k) = keys.filter(|k| k.is_file()) {
        if !spec
            .node
            .binds
            .iter()
            .any(|b| b.target == "/root/.ssh/authorized_keys")
        {
            add_file(&mut a, &k, "/root/.ssh/authorized_keys")?;
        }
    }
    let wanted = guest_modules(spec.node);
    let node_modules = add_node_modules(spec, &mut a, &wanted)?;
    let env = crate::node::process_environment(&spec.ctx, spec.node, Some(spec.image));
    let config = GuestConfig {
        hostname: spec.node.hostname.clone(),
        modules: spec.boot.modules.clone(),
        nics: spec.nics.clone(),
        gateways: spec.gateways.clone(),
        argv: crate::node::image_command(spec.node, spec.image),
        init: crate::node::runs_init_system(spec.node, spec.image),
        env: env.into_iter().collect(),
        workdir: spec.image.working_dir.clone().filter(|w| !w.is_empty()),
        files,
        hosts: crate::node::hosts_file(spec.node),
        kernel_release: spec.kernel.version.clone(),
        modules_disk: spec.modules_disk.is_some(),
        kernel_modules: if node_modules.is_some() {
            Vec::new()
        } else {
            wanted
        },
        node_modules: node_modules.unwrap_or_default(),
        shares: shares(spec.node).into_iter().map(|(s, _)| s).collect(),
        sysctls: spec
            .node
            .sysctls
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&config).expect("config serialises");
    a.file("labwire/config.json", 0o644, &json);
    let mut f = private_file(out, true)?;
    f.write_all(&spec.boot.initramfs)
        .map_err(io(format!("write {}", out.display())))?;
    a.finish(&mut f)
        .map_err(io(format!("write {}", out.display())))
}

/// Open `path` for writing, created 0600 (an existing file is made 0600, and emptied with
/// `truncate`): the node's files carry its environment, its bind sources and its disk.
pub(crate) fn private_file(path: &Path, truncate: bool) -> Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let f = std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(truncate)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io(format!("create {}", path.display())))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io(format!("make {} private", path.display())))?;
    Ok(f)
}

/// What the guest's serial console printed (the VMM appends to it).
pub(crate) fn serial_log(run_dir: &Path) -> PathBuf {
    run_dir.join("serial.log")
}

/// Make the node's files (initramfs, and the VMM's own: a copy-on-write disk) and return the
/// VMM's argv.
pub fn prepare(spec: &VmSpec<'_>) -> Result<Vec<String>> {
    let vmm = vmm::of(spec.node)?;
    let node = spec.node;
    for d in [spec.run_dir, spec.state_dir] {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(d)
            .map_err(io(format!("create {}", d.display())))?;
    }
    let node_dir = crate::node::node_dir(node)?;
    let initrd = spec.run_dir.join("initramfs.cpio");
    write_initramfs(spec, &initrd)?;
    // The guest's serial console shows what it prints (keys, passwords typed at a prompt): the
    // VMM appends to this file, which keeps the mode it is created with here. It lives in the
    // node's private run directory, where the VMM (root) opens it by path; the node's directory
    // in the lab directory (under the topology owner's tree) gets only a link to it, made
    // relative to the directory opened above.
    let serial = serial_log(spec.run_dir);
    private_file(&serial, false)?;
    let target = std::ffi::CString::new(serial.as_os_str().as_encoded_bytes())
        .map_err(|e| io(format!("link {}", serial.display()))(std::io::Error::other(e)))?;
    unix::symlink_at(&target, &node_dir, c"console.log").map_err(io(format!(
        "link {}",
        node.dir.join("console.log").display()
    )))?;
    vmm.command(spec, &initrd)
}

/// The guest kernel's command line. Under TCG the guest's TSC ticks at the host's rate, but the
/// kernel's calibration of it against the emulated PIT fails on a busy host (the guest then waits
/// forever for a timer to calibrate its delay loop): give it the host's TSC frequency instead.
///
/// What a lab guest can go without, each measured under TCG (benches/vm.sh): `quiet` (every byte
/// on the emulated 16550 is a trap into the VMM; warnings and panics still print), the crypto
/// self-tests (`cryptomgr.notests`: about a tenth of the kernel's boot, and again for each crypto
/// module loaded) and zeroing every page and slab allocation (`init_on_alloc=0`, a hardening
/// default of Debian's kernels). `LABWIRE_VM_KERNEL_ARGS` is appended last, so it can undo any of
/// them (`loglevel=7` shows the kernel's whole boot in console.log).
fn kernel_command_line(accel: Accel) -> String {
    let mut line = String::from(
        "console=ttyS0 panic=-1 rdinit=/init net.ifnames=0 quiet cryptomgr.notests init_on_alloc=0",
    );
    if accel == Accel::Tcg {
        // TCG does not execute speculatively, so the side channels the kernel's mitigations
        // guard against do not exist in the emulated CPU; they would only cost (page-table
        // isolation switches page tables on every system call, which flushes TCG's TLB).
        line.push_str(" mitigations=off");
        // Making the kernel's text and read-only data read-only splits the huge pages mapping
        // them and then walks every page table for writable executable pages (Debian builds
        // with CONFIG_DEBUG_WX): about a quarter of the guest instructions from the kernel's
        // start to init, for a protection a lab guest can go without (as it does without the
        // mitigations).
        line.push_str(" rodata=off");
        if let Some(khz) = host_tsc_khz() {
            // Debian's kernels run at HZ=250: loops per jiffy = cycles per second / 250.
            line.push_str(&format!(
                " tsc_early_khz={khz} lpj={} tsc=reliable",
                khz * 1000 / 250
            ));
        }
    }
    if let Ok(extra) = std::env::var("LABWIRE_VM_KERNEL_ARGS") {
        if !extra.trim().is_empty() {
            line.push(' ');
            line.push_str(extra.trim());
        }
    }
    line
}

/// The host's TSC frequency, when the CPU's TSC is constant (its rate is then `cpu MHz`).
fn host_tsc_khz() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let flags = info.lines().find(|l| l.starts_with("flags"))?;
    if !flags.split_whitespace().any(|f| f == "constant_tsc") {
        return None;
    }
    let mhz: f64 = info
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    Some((mhz * 1000.0) as u64).filter(|k| *k > 0)
}

/// A connection to a node's guest agent, after the ping/pong handshake.
struct Agent {
    stream: UnixStream,
}

impl Agent {
    fn connect(run_dir: &Path, timeout: Duration) -> Result<Agent> {
        let path = agent_socket(run_dir);
        let mut stream =
            UnixStream::connect(&path).map_err(io(format!("connect to {}", path.display())))?;
        // A ping can be lost (the guest agent may be between sessions): ask again every second
        // until `timeout`, and take only the answer to the latest question.
        let deadline = Instant::now() + timeout;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let nonce = format!("{}-{}-{attempt}", std::process::id(), nonce_seed());
            proto::write_frame(&mut stream, proto::PING, nonce.as_bytes())
                .map_err(io("send a ping to the guest agent"))?;
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1))
                .max(Duration::from_millis(10));
            stream
                .set_read_timeout(Some(wait))
                .map_err(io("set agent timeout"))?;
            let answered = loop {
                match proto::read_frame(&mut stream) {
                    Ok((proto::PONG, payload)) if payload == nonce.as_bytes() => break true,
                    Ok(_) => continue,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break false
                    }
                    Err(e) => return Err(io("wait for the guest agent's answer")(e)),
                }
            };
            if answered {
                stream
                    .set_read_timeout(Some(timeout))
                    .map_err(io("set agent timeout"))?;
                return Ok(Agent { stream });
            }
            if Instant::now() >= deadline {
                return Err(Error::Guest("the guest agent does not answer".into()));
            }
        }
    }
}

fn nonce_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Wait until the node's guest agent answers (it does once the guest's NICs are configured),
/// or fail after `timeout` or when `alive` says the VMM is gone.
pub fn wait_ready(
    run_dir: &Path,
    logs: &[&Path],
    timeout: Duration,
    alive: &dyn Fn() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        if !alive() {
            return Err(Error::Guest(format!(
                "the VMM exited before the guest was up{}",
                log_tail(logs)
            )));
        }
        match Agent::connect(run_dir, Duration::from_millis(500)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        // A ping sent while the guest's port is closed waits in the socket and is answered as
        // soon as the agent opens it; one dropped with its connection is sent again after this
        // pause, which is all the latency this loop adds to a boot.
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(Error::Guest(format!(
        "the guest agent did not answer within {} s ({last}){}",
        timeout.as_secs(),
        log_tail(logs)
    )))
}

/// The last lines of the VMM's and the guest's logs, for an error message.
fn log_tail(logs: &[&Path]) -> String {
    let mut out = String::new();
    for p in logs {
        let Ok(text) = std::fs::read(p) else { continue };
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            continue;
        }
        // The agent's own lines and the kernel's verdict say most; then the last few lines.
        let telling: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| {
                l.contains("labwire-guest") || l.contains("Kernel panic") || l.contains("init")
            })
            .collect();
        let tail = &lines[lines.len().saturating_sub(4)..];
        out.push_str(&format!("\n  from {}:", p.display()));
        for l in telling.iter().rev().take(6).rev().chain(tail) {
            out.push_str(&format!("\n    {}", l.trim_end()));
        }
    }
    out
}

/// Run `sh -c command` in the guest through its agent (one command at a time per node: the
/// agent's port has one host end).
pub fn exec(
    run_dir: &Path,
    command: &str,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<ExecOutput> {
    let lock_path = run_dir.join("agent.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(format!("open {}", lock_path.display())))?;
    // Released when `lock` is dropped.
    unix::flock(&lock, unix::Flock::Exclusive, &|| false).map_err(io("lock the guest agent"))?;
    let mut agent = Agent::connect(run_dir, timeout)?;
    let req = proto::ExecRequest {
        command: command.to_string(),
        env: env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    };
    let json = serde_json::to_vec(&req).expect("request serialises");
    proto::write_frame(&mut agent.stream, proto::EXEC, &json)
        .map_err(io("send the command to the guest agent"))?;
    let mut out = ExecOutput {
        stdout: String::new(),
        stderr: String::new(),
        code: -1,
    };
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    loop {
        let (kind, payload) = proto::read_frame(&mut agent.stream)
            .map_err(io(format!("read the output of `{command}` from the guest")))?;
        match kind {
            proto::STDOUT => stdout.extend_from_slice(&payload),
            proto::STDERR => stderr.extend_from_slice(&payload),
            proto::EXIT => {
                let mut code = [0u8; 4];
                code.copy_from_slice(payload.get(..4).unwrap_or(&[255; 4]));
                out.code = i32::from_le_bytes(code);
                break;
            }
            _ => {}
        }
    }
    out.stdout = String::from_utf8_lossy(&stdout).into_owned();
    out.stderr = String::from_utf8_lossy(&stderr).into_owned();
    drop(lock);
    Ok(out)
}

/// Attach the terminal to a node's serial console until Ctrl-] (or the console closes).
pub fn console(run_dir: &Path, node: &str) -> Result<()> {
    let path = console_socket(run_dir);
    let stream = UnixStream::connect(&path).map_err(io(format!(
        "connect to the console of node {node} ({})",
        path.display()
    )))?;
    let tty = Raw::enter();
    if tty.is_some() {
        eprint!("Connected to the console of {node}; Ctrl-] leaves.\r\n");
    }
    let mut from_vm = stream.try_clone().map_err(io("clone the console socket"))?;
    let printer = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut stdout = std::io::stdout();
        while let Ok(n) = from_vm.read(&mut buf) {
            if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                break;
            }
            let _ = stdout.flush();
        }
    });
    let mut to_vm = stream;
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 1024];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(i) = buf[..n].iter().position(|&b| b == 0x1d) {
            let _ = to_vm.write_all(&buf[..i]);
            break;
        }
        if to_vm.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to_vm.shutdown(std::net::Shutdown::Both);
    let _ = printer.join();
    drop(tty);
    Ok(())
}

/// The terminal in raw mode while this lives.
struct Raw(libc::termios);

impl Raw {
    fn enter() -> Option<Raw> {
        // SAFETY: termios calls on fd 0 with a zeroed, then filled, struct.
        unsafe {
            if libc::isatty(0) != 1 {
                return None;
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return None;
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(0, libc::TCSANOW, &t);
            Some(Raw(saved))
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `enter`.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module as `sign-file` leaves it: body, signature, descriptor (length last), magic.
    fn signed(body: &[u8], sig: &[u8]) -> Vec<u8> {
        let mut m = body.to_vec();
        m.extend_from_slice(sig);
        m.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0]);
        m.extend_from_slice(&(sig.len() as u32).to_be_bytes());
        m.extend_from_slice(MODULE_SIGNATURE_MAGIC);
        m
    }

    #[test]
    fn modprobe_options_read_as_kmod_reads_them() {
        let root = std::env::temp_dir().join(format!("bt2-modprobe-{}", std::process::id()));
        let (low, high) = (root.join("low"), root.join("high"));
        for d in ["lib/modprobe.d", "etc/modprobe.d"] {
            std::fs::create_dir_all(low.join(d)).unwrap();
            std::fs::create_dir_all(high.join(d)).unwrap();
        }
        std::fs::write(
            low.join("lib/modprobe.d/systemd.conf"),
            "# comment\noptions bonding max_bonds=0\noptions dummy numdummies=0\n",
        )
        .unwrap();
        std::fs::write(
            high.join("etc/modprobe.d/lab.conf"),
            "options bonding miimon=100\n",
        )
        .unwrap();
        let layers = vec![low.clone(), high.clone()];
        assert_eq!(
            modprobe_options(&layers, "bonding"),
            "miimon=100 max_bonds=0"
        );
        assert_eq!(modprobe_options(&layers, "vxlan"), "");
        // /etc hides /lib's file of the same name.
        std::fs::write(high.join("etc/modprobe.d/systemd.conf"), "\n").unwrap();
        assert_eq!(modprobe_options(&layers, "bonding"), "miimon=100");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn module_signature_is_stripped_and_unsigned_modules_are_left_alone() {
        let body = b"\x7fELF module body".to_vec();
        let mut m = signed(&body, &[0xab; 517]);
        strip_module_signature(&mut m);
        assert_eq!(m, body);
        let mut plain = body.clone();
        strip_module_signature(&mut plain);
        assert_eq!(plain, body);
        // A length past the start of the file: left as it is.
        let mut bad = signed(b"x", &[1; 4]);
        let n = bad.len() - MODULE_SIGNATURE_MAGIC.len() - 4;
        bad[n..n + 4].copy_from_slice(&1000u32.to_be_bytes());
        let before = bad.clone();
        strip_module_signature(&mut bad);
        assert_eq!(bad, before);
    }

    #[test]
    fn signature_enforcement_read_from_the_kernel_config_and_command_line() {
        let root = std::env::temp_dir().join(format!("bt2-sigforce-{}", std::process::id()));
        let dir = root.join("lib/modules/6.1.0-test");
        std::fs::create_dir_all(dir.join("kernel")).unwrap();
        std::fs::write(dir.join("modules.dep"), "").unwrap();
        let modules = image::Modules::scan(&dir).unwrap();
        assert!(!enforces_module_signatures(&modules, "quiet"));
        assert!(enforces_module_signatures(
            &modules,
            "quiet module.sig_enforce=1"
        ));
        std::fs::create_dir_all(root.join("boot")).unwrap();
        std::fs::write(
            root.join("boot/config-6.1.0-test"),
            "CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_FORCE=y\n",
        )
        .unwrap();
        assert!(enforces_module_signatures(&modules, "quiet"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}

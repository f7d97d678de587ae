//! The vm runtime as a [`Backend`]: checking VM nodes before anything is touched, preparing what
//! they boot from (kernel, modules, root disk — cached in the image store), starting each VMM as
//! the command of a namespace holder made as for a native node, stitching each namespace
//! interface to a tap, waiting for the guest agent, and running commands through it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use topology::{Lab, NetworkMode, Node};
use wire::netlink::Handle;
use wire::NetNs;

use super::{Accel, GuestNic};
use crate::backend::{
    record_process, Backend, CreateNode, Deployment, Record, Resume, Running, Status,
};
use crate::native::{spawn, Spawn};
use crate::network::NodeNetwork;
use crate::node::{ExecOutput, ImageRoot};
use crate::process::ProcId;
use crate::{image_err, wire_err, Error, Result};

/// How long a guest may take from VMM start to its agent answering (TCG is slow; a busy host
/// slower). `LABWIRE_VM_BOOT_TIMEOUT` (seconds) overrides.
pub fn boot_timeout() -> Duration {
    std::env::var("LABWIRE_VM_BOOT_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(300), Duration::from_secs)
}

/// A command run through the guest agent waits at most this long for its answer.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(600);

/// What every VM node of one kernel boots from.
struct KernelBoot {
    kernel: image::Kernel,
    /// The agent, libraries, boot modules and command line, built once per kernel.
    image: super::BootImage,
    modules_disk: Option<PathBuf>,
}

/// What one VM node boots from.
struct Boot {
    kernel: Arc<KernelBoot>,
    root_disk: PathBuf,
}

/// Everything the lab's VM nodes boot from, prepared once per deploy (disks are cached in the
/// image store across deploys).
struct Assets {
    boots: HashMap<String, Boot>,
    accel: Accel,
}

/// The vm runtime's nodes.
#[derive(Default)]
pub struct Vm {
    assets: OnceLock<Assets>,
}

impl Backend for Vm {
    fn name(&self) -> &'static str {
        "vm"
    }

    fn addresses_in_namespace(&self) -> bool {
        false
    }

    fn takes_new_links(&self) -> bool {
        false
    }

    fn preflight(&self, lab: &Lab, nodes: &[&Node]) -> Vec<String> {
        // Not the native runtime's checks: a VM node's `kernel-modules` are its own kernel's.
        let mut problems = Vec::new();
        let mut scanned = std::collections::HashMap::new();
        for n in nodes {
            match super::vmm::of(n) {
                Ok(vmm) => problems.extend(vmm.preflight(n)),
                Err(e) => problems.push(e.to_string()),
            }
            if n.image.is_none() {
                problems.push(format!(
                    "node {}: runtime vm needs an `image` (its root file system)",
                    n.name
                ));
            }
            if n.network_mode != NetworkMode::Bridged && n.network_mode != NetworkMode::None {
                problems.push(format!(
                    "node {}: this network-mode is not possible for a VM node (it has its own kernel); accepted: bridge (the default), none",
                    n.name
                ));
            }
            if let Some(k) = n
                .kernel
                .as_deref()
                .filter(|k| image::kernel::is_file_spec(k))
            {
                let path = kernel_path(lab, k);
                if !path.is_file() {
                    problems.push(format!(
                        "node {}: kernel {} does not exist (want a vmlinuz file, or an image holding /boot/vmlinuz*)",
                        n.name,
                        path.display()
                    ));
                } else {
                    match image::Kernel::from_file(&path) {
                        Err(e) => problems.push(format!("node {}: kernel: {e}", n.name)),
                        Ok(kernel) if kernel.modules.is_none() => {
                            let tried = image::kernel::module_dirs_for_file(&path, &kernel.version);
                            problems.push(format!(
                                "node {}: {}",
                                n.name,
                                missing_modules(&kernel, &tried)
                            ));
                        }
                        Ok(kernel) if !super::guest_modules(n).is_empty() => {
                            let dir = kernel.modules.unwrap_or_default();
                            // Indexed once per module tree: every node of a lab shares a kernel.
                            let index = scanned
                                .entry(dir.clone())
                                .or_insert_with(|| image::kernel::Modules::scan(&dir).ok());
                            for m in super::guest_modules(n) {
                                let has = index
                                    .as_ref()
                                    .is_some_and(|i| i.file(&m).is_some() || i.is_builtin(&m));
                                if !has {
                                    problems.push(format!(
                                        "node {}: kernel module `{m}` ({}) is neither a module file under {} nor built into kernel {}",
                                        n.name,
                                        if n.kernel_modules.contains(&m) { "kernel-modules" } else { "for its directory binds" },
                                        dir.display(),
                                        kernel.version
                                    ));
                                }
                            }
                        }
                        Ok(_) => {}
                    }
                }
            }
        }
        problems
    }

    /// Resolve each VM node's kernel and build (or find cached) its disks.
    fn prepare(&self, d: &Deployment<'_>, nodes: &[&Node], notice: &dyn Fn(&str)) -> Result<()> {
        if nodes.is_empty() || self.assets.get().is_some() {
            return Ok(());
        }
        let assets = prepare_assets(d, nodes, notice)?;
        let _ = self.assets.set(assets);
        Ok(())
    }

    /// A namespace holder whose command is the VMM (held until [`Backend::start`]).
    fn create(&self, d: &Deployment<'_>, req: &CreateNode<'_>, rec: &dyn Record) -> Result<ProcId> {
        let n = req.node;
        let setup = |message: &str| Error::NodeSetup {
            node: n.name.clone(),
            message: message.to_string(),
        };
        let assets = self
            .assets
            .get()
            .ok_or_else(|| setup("nothing prepared to boot"))?;
        let boot = assets
            .boots
            .get(&n.name)
            .ok_or_else(|| setup("nothing prepared to boot"))?;
        let img = d
            .images
            .get(&n.name)
            .ok_or_else(|| setup("runtime vm needs an `image`"))?;
        let run_dir = d.dirs.node_run(&n.name);
        let state_dir = d.dirs.state.join("nodes").join(&n.name);
        let spec = super::VmSpec {
            node: n,
            ctx: req.ctx,
            image: img,
            kernel: &boot.kernel.kernel,
            boot: &boot.kernel.image,
            modules_disk: boot.kernel.modules_disk.as_deref(),
            root_disk: &boot.root_disk,
            nics: guest_nics(req.network),
            gateways: req.network.gateways.clone(),
            run_dir: &run_dir,
            state_dir: &state_dir,
            accel: assets.accel,
        };
        let argv = super::prepare(&spec)?;
        let saved = super::argv_file(&run_dir);
        let text = serde_json::to_vec(&argv).map_err(|e| {
            crate::io(format!("encode {}", saved.display()))(std::io::Error::other(e))
        })?;
        std::fs::write(&saved, text).map_err(crate::io(format!("write {}", saved.display())))?;
        let proc = spawn_holder(req.ctx, n, d.init, &run_dir, None, &argv)?;
        record_process(rec, n, proc)
    }

    /// Every NIC gets its tap before the guest boots; then the VMM starts.
    fn start(&self, node: &Running<'_>, ns: &NetNs, home: &NetNs) -> Result<()> {
        stitch(&NodeNetwork::of(node.lab, node.node), node.node, ns, home)?;
        node.proc.signal_start();
        Ok(())
    }

    fn waits_until_ready(&self) -> bool {
        true
    }

    /// With a grace period, the guest is asked to power off (ACPI) and given that long; then the
    /// namespace holder goes, and the VMM with it. The taps stay in the node's namespace.
    fn halt(&self, node: &Running<'_>, grace: Duration) -> Result<()> {
        if let (false, Some(vmm)) = (grace.is_zero(), vmm_pid(node.proc)) {
            let asked = super::vmm::of(node.node).and_then(|v| v.power_down(&node.run_dir));
            match asked {
                Ok(()) => {
                    let vmm = ProcId::of(vmm).into_iter().collect::<Vec<_>>();
                    if !crate::process::wait_gone(&vmm, grace).is_empty() {
                        log::info!(
                            "VM node {}: the guest did not power off within {} s (nothing in it handles the power button); its disk is synced and its VMM stopped",
                            node.node.name,
                            grace.as_secs()
                        );
                        // What the guest wrote reaches its disk before the VMM goes.
                        let _ = super::exec(
                            &node.run_dir,
                            "sync",
                            &BTreeMap::new(),
                            Duration::from_secs(10),
                        );
                    }
                }
                Err(e) => log::info!(
                    "VM node {}: no ACPI power-down ({}); stopping its VMM",
                    node.node.name,
                    crate::chain(&e)
                ),
            }
        }
        crate::backend::halt_process(node, node.proc, Duration::ZERO)
    }

    /// A new namespace holder in the kept namespace boots the VMM with the command line it booted
    /// with first: the same taps, MACs and disk overlay (so the guest's disk keeps its writes).
    fn resume(&self, r: &Resume<'_>, rec: &dyn Record) -> Result<ProcId> {
        let n = r.node;
        let run_dir = r.dirs.node_run(&n.name);
        let saved = super::argv_file(&run_dir);
        let argv: Vec<String> = std::fs::read(&saved)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| Error::NodeSetup {
                node: n.name.clone(),
                message: format!(
                    "its VMM command line ({}) is gone; redeploy the node",
                    saved.display()
                ),
            })?;
        // Sockets of the VMM that is gone.
        for sock in [
            super::agent_socket(&run_dir),
            super::console_socket(&run_dir),
            super::control_socket(&run_dir),
        ] {
            let _ = std::fs::remove_file(sock);
        }
        let ctx = crate::node::NodeContext::of(r.lab, n);
        let proc = spawn_holder(ctx, n, r.init, &run_dir, Some(r.netns), &argv)?;
        record_process(rec, n, proc)
    }

    /// The taps and their redirects were kept: the VMM just starts.
    fn resume_start(&self, node: &Running<'_>, _ns: &NetNs, _home: &NetNs) -> Result<()> {
        node.proc.signal_start();
        Ok(())
    }

    /// Wait until the guest agent answers.
    fn wait_ready(&self, node: &Running<'_>, interrupted: &dyn Fn() -> bool) -> Result<()> {
        let proc = node.proc;
        // The VMM appears once the node's init has the start signal; it may take a moment to
        // fork it.
        let since = Instant::now();
        let seen = std::cell::Cell::new(false);
        let alive = || {
            if !proc.is_alive() {
                return false;
            }
            if vmm_pid(proc).is_some() {
                seen.set(true);
                return !interrupted();
            }
            !seen.get() && since.elapsed() < Duration::from_secs(10)
        };
        let logs = [
            node.run_dir.join("console.log"),
            super::serial_log(&node.run_dir),
        ];
        let logs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
        super::wait_ready(&node.run_dir, &logs, boot_timeout(), &alive)
            .map_err(|e| Error::Guest(format!("VM node {}: {}", node.node.name, crate::chain(&e))))
    }

    /// Through the guest agent, which runs the command with the environment the node's init got
    /// (the image's variables under the node's), as native exec does.
    fn exec(&self, node: &Running<'_>, cmd: &str) -> Result<ExecOutput> {
        super::exec(&node.run_dir, cmd, &BTreeMap::new(), EXEC_TIMEOUT)
    }

    fn console(&self, node: &Running<'_>) -> Result<()> {
        super::console(&node.run_dir, &node.node.name)
    }

    /// The guest NIC's link through QMP `set_link` on its netdev (`n<i>`, in the order of the
    /// node's network): the guest sees carrier loss, as a pulled cable.
    fn set_carrier(&self, node: &Running<'_>, iface: &str, up: bool) -> Result<()> {
        let net = NodeNetwork::of(node.lab, node.node);
        let i = net
            .interfaces
            .iter()
            .position(|x| x.name == iface)
            .ok_or_else(|| Error::Guest(format!("node {} has no NIC {iface}", node.node.name)))?;
        super::qmp::command(
            &node.run_dir,
            "set_link",
            serde_json::json!({"name": format!("n{i}"), "up": up}),
        )?;
        Ok(())
    }

    /// A VM node shows its VMM; a holder without one is a guest that went away.
    fn status(&self, _lab: &Lab, _node: &Node, proc: Option<ProcId>) -> Status {
        let vmm = proc.and_then(vmm_pid);
        let mut s = crate::backend::process_status(proc);
        if s.state == "running" && vmm.is_none() {
            s.state = "exited";
            s.status = "VMM exited".into();
        }
        s.pid = vmm.unwrap_or(0);
        s
    }
}

fn kernel_path(lab: &Lab, spec: &str) -> PathBuf {
    let base = lab
        .topology_file
        .as_deref()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    image::kernel::resolve_path(spec, &base)
}

fn prepare_assets(d: &Deployment<'_>, vms: &[&Node], notice: &dyn Fn(&str)) -> Result<Assets> {
    let store = image::Store::open_default().map_err(image_err("open the image store"))?;
    // Judged once per deploy, with the first kernel a VM node boots.
    let mut accel: Option<Accel> = None;
    let agent = super::agent_path()?;
    let mut kernels: HashMap<String, Arc<KernelBoot>> = HashMap::new();
    let mut disks: HashMap<String, PathBuf> = HashMap::new();
    let mut boots = HashMap::new();
    for n in vms {
        let setup = |message: String| Error::NodeSetup {
            node: n.name.clone(),
            message,
        };
        let img = d
            .images
            .get(&n.name)
            .ok_or_else(|| setup("runtime vm needs an `image`".into()))?;
        let key = n
            .kernel
            .clone()
            .unwrap_or_else(|| format!("image:{}", img.id));
        if !kernels.contains_key(&key) {
            let mut kernel = resolve_kernel(d.lab, n, img, &store)?;
            let accel = *accel.get_or_insert_with(|| {
                let accel = accel_cached(&d.dirs.locks, &kernel.image);
                if accel == Accel::Tcg {
                    notice("vm: KVM cannot run guests on this host; VM nodes use QEMU's TCG emulation (slower boots)");
                }
                accel
            });
            // Under TCG a guest decompressing its own bzImage spends seconds in emulated xz:
            // boot the ELF inside it instead, decompressed once on the host (PVH entry). Under
            // KVM the bzImage is kept, as the probe booted it.
            if accel == Accel::Tcg {
                if let Some(elf) = store
                    .pvh_kernel(&kernel)
                    .map_err(image_err(format!("node {}: decompress the kernel", n.name)))?
                {
                    kernel.image = elf;
                }
            }
            let modules = match &kernel.modules {
                Some(dir) => Some(
                    image::Modules::scan(dir)
                        .map_err(image_err(format!("node {}: kernel modules", n.name)))?,
                ),
                None => None,
            };
            let disk = match &modules {
                Some(m) => Some(store.modules_disk(&kernel, m).map_err(image_err(format!(
                    "node {}: build the modules disk",
                    n.name
                )))?),
                None => None,
            };
            let image = super::boot_image(&kernel, modules, &agent, accel, &d.dirs.locks)?;
            kernels.insert(
                key.clone(),
                Arc::new(KernelBoot {
                    kernel,
                    image,
                    modules_disk: disk,
                }),
            );
        }
        if !disks.contains_key(&img.id) {
            let image = store
                .resolve(&img.id)
                .map_err(image_err(format!("node {}: image", n.name)))?
                .ok_or_else(|| setup(format!("image {} vanished", img.id)))?;
            let disk = store
                .root_disk(&image, &img.layers)
                .map_err(image_err(format!("node {}: build the root disk", n.name)))?;
            disks.insert(img.id.clone(), disk);
        }
        boots.insert(
            n.name.clone(),
            Boot {
                kernel: kernels[&key].clone(),
                root_disk: disks[&img.id].clone(),
            },
        );
    }
    Ok(Assets {
        boots,
        accel: accel.unwrap_or(Accel::Tcg),
    })
}

/// The accelerator probe's verdict, kept for the host's uptime in labwire's run directory (a
/// tmpfs): the probe boots a kernel, which costs more than the rest of a VM node's orchestration.
/// The file's name says which probe gave the verdict (`vm-accel` held an older probe's, which
/// could say KVM where KVM hangs real kernels). `LABWIRE_VM_ACCEL` still overrides it.
fn accel_cached(locks: &Path, kernel: &Path) -> Accel {
    if std::env::var_os("LABWIRE_VM_ACCEL").is_some() {
        return super::probe_accel(kernel).0;
    }
    let path = locks.join("vm-accel.boot");
    match std::fs::read_to_string(&path).as_deref().map(str::trim) {
        Ok("kvm") => return Accel::Kvm,
        Ok("tcg") => return Accel::Tcg,
        _ => {}
    }
    let (accel, definitive) = super::probe_accel(kernel);
    if definitive {
        let word = if accel == Accel::Kvm { "kvm" } else { "tcg" };
        let _ = std::fs::write(&path, word);
    }
    accel
}

/// The refusal of a kernel whose modules are nowhere labwire looks: without them the guest
/// finds neither its disks nor its NICs.
fn missing_modules(kernel: &image::Kernel, tried: &[PathBuf]) -> String {
    let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    format!(
        "kernel {} (release {}) has no modules where labwire looks; tried {} (unpack the whole kernel package, as images/kernel/fetch.sh does, so lib/modules/{} lies beside boot/)",
        kernel.image.display(),
        kernel.version,
        tried.join(", "),
        kernel.version
    )
}

fn resolve_kernel(
    lab: &Lab,
    n: &Node,
    img: &ImageRoot,
    store: &image::Store,
) -> Result<image::Kernel> {
    let (kernel, tried) = find_kernel(lab, n, img, store)?;
    if kernel.modules.is_none() {
        return Err(Error::NodeSetup {
            node: n.name.clone(),
            message: missing_modules(&kernel, &tried),
        });
    }
    Ok(kernel)
}

/// The node's kernel and the places its modules were looked for.
fn find_kernel(
    lab: &Lab,
    n: &Node,
    img: &ImageRoot,
    store: &image::Store,
) -> Result<(image::Kernel, Vec<PathBuf>)> {
    let bad = || image_err(format!("node {}: kernel", n.name));
    let setup = |message: String| Error::NodeSetup {
        node: n.name.clone(),
        message,
    };
    let in_layers = |k: image::Kernel, layers: &[PathBuf]| {
        let tried = image::kernel::module_dirs_in_layers(layers, &k.version);
        (k, tried)
    };
    match n.kernel.as_deref() {
        Some(k) if image::kernel::is_file_spec(k) => {
            let path = kernel_path(lab, k);
            let kernel = image::Kernel::from_file(&path).map_err(bad())?;
            let tried = image::kernel::module_dirs_for_file(&path, &kernel.version);
            Ok((kernel, tried))
        }
        Some(reference) => {
            let kimg = store.resolve(reference).map_err(bad())?.ok_or_else(|| {
                setup(format!(
                    "kernel image `{reference}` is not in labwire's image store (import it with `labwire image import FILE --name {}`, or give a vmlinuz path)",
                    crate::node::shell_quote(reference)
                ))
            })?;
            let layers = store.layer_dirs(&kimg).map_err(bad())?;
            image::Kernel::from_layers(&layers)
                .map_err(bad())?
                .map(|k| in_layers(k, &layers))
                .ok_or_else(|| setup(format!("image `{reference}` holds no /boot/vmlinuz* kernel")))
        }
        None => image::Kernel::from_layers(&img.layers)
            .map_err(bad())?
            .map(|k| in_layers(k, &img.layers))
            .ok_or_else(|| {
                setup(
                    "runtime vm needs a kernel: the image has no /boot/vmlinuz*, so set `kernel:` to a vmlinuz file or an image holding one".into(),
                )
            }),
    }
}

/// The guest's NICs in VMM order, as the node's network describes them.
fn guest_nics(net: &NodeNetwork) -> Vec<GuestNic> {
    net.interfaces
        .iter()
        .map(|i| GuestNic {
            mac: i.mac.to_string(),
            name: i.name.clone(),
            mtu: i.mtu,
            speed_mbps: i.speed_mbps,
            addresses: i.addresses.clone(),
        })
        .collect()
}

/// The node as the native runtime starts it: a namespace holder whose command is the VMM. The
/// node's own command, binds and environment go to the guest instead.
fn shell_node(n: &Node) -> Node {
    let mut s = n.clone();
    s.image = None;
    s.cmd = None;
    s.entrypoint = None;
    s.binds.clear();
    s.user = None;
    s.env = Default::default();
    // The namespace's interfaces only carry the guest's frames: no addresses, no IPv6 of their
    // own (their MACs are the guest's).
    s.sysctls = std::sync::Arc::new(BTreeMap::from([
        (
            "net.ipv6.conf.all.disable_ipv6".to_string(),
            "1".to_string(),
        ),
        (
            "net.ipv6.conf.default.disable_ipv6".to_string(),
            "1".to_string(),
        ),
    ]));
    s
}

/// Start the node's namespace holder (in namespace `join`, or a new one) with the VMM `argv` as
/// its command, held until the start signal.
fn spawn_holder(
    ctx: crate::node::NodeContext<'_>,
    n: &Node,
    init: &Path,
    run_dir: &Path,
    join: Option<&Path>,
    argv: &[String],
) -> Result<ProcId> {
    spawn(&Spawn {
        ctx,
        node: &shell_node(n),
        init,
        run_dir,
        join_netns: join,
        image: None,
        cgroup: None,
        argv: Some(argv),
    })
}

/// Give each of the node's interfaces a tap and join the two with a two-way tc redirect.
fn stitch(net: &NodeNetwork, n: &Node, ns: &NetNs, home: &NetNs) -> Result<()> {
    let op = |what: String| format!("{what} in VM node {}", n.name);
    let missing = |what: String| Error::NodeSetup {
        node: n.name.clone(),
        message: what,
    };
    let mut h = Handle::in_netns_from(ns, home).map_err(wire_err(op("open netlink".into())))?;
    for (i, nic) in net.interfaces.iter().enumerate() {
        let tap = super::tap_name(i);
        wire::create_tap(ns, &tap).map_err(wire_err(op(format!("create tap {tap}"))))?;
        let t = h
            .link(&tap)
            .map_err(wire_err(op(format!("look up {tap}"))))?
            .ok_or_else(|| missing(format!("tap {tap} vanished")))?;
        let l = h
            .link(&nic.name)
            .map_err(wire_err(op(format!("look up {}", nic.name))))?
            .ok_or_else(|| missing(format!("interface {} is missing", nic.name)))?;
        h.set_mtu(t.index, nic.mtu)
            .map_err(wire_err(op(format!("set the MTU of {tap}"))))?;
        h.set_up(t.index)
            .map_err(wire_err(op(format!("bring up {tap}"))))?;
        h.stitch(l.index, t.index)
            .map_err(wire_err(op(format!("redirect {} ⇄ {tap}", nic.name))))?;
    }
    Ok(())
}

/// The VMM process of a VM node whose namespace holder is `holder` (its only child).
pub fn vmm_pid(holder: ProcId) -> Option<i32> {
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", holder.pid)).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

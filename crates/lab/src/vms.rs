//! VM nodes in a lab: checking them before anything is touched, preparing what they boot from
//! (kernel, modules, root disk — cached), stitching each namespace interface to a tap, running
//! commands through the guest agent, and finding the VMM of a running node.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use runtime::native::{self, ExecOutput, ImageRoot};
use runtime::process::ProcId;
use runtime::vm::{self, Accel, GuestNic};
use topology::{Lab, NetworkMode, Node, Runtime};
use wire::netlink::Handle;
use wire::NetNs;

use crate::error::{wire as wire_err, Error, Result};
use crate::paths;

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

/// Problems with a VM node that can be found without touching the host.
pub(crate) fn preflight(lab: &Lab, n: &Node, problems: &mut Vec<String>) {
    match n.vmm.as_deref() {
        None | Some("qemu") => {
            for tool in [vm::QEMU, "qemu-img", "mkfs.ext4", "debugfs"] {
                if image::find_tool(tool).is_none() {
                    problems.push(format!(
                        "node {}: runtime vm needs `{tool}`, which is not installed (apt-get install qemu-system-x86 qemu-utils e2fsprogs)",
                        n.name
                    ));
                }
            }
        }
        Some("firecracker") => problems.push(format!(
            "node {}: vmm firecracker is not supported by this version of labwire (it needs KVM, which does not run guests on this host); use `vmm: qemu`",
            n.name
        )),
        Some(other) => problems.push(format!(
            "node {}: unknown vmm `{other}`; accepted: qemu, firecracker",
            n.name
        )),
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
                    problems.push(missing_modules(n, &kernel, &tried));
                }
                Ok(_) => {}
            }
        }
    }
    for b in &n.binds {
        if b.source.is_dir() {
            problems.push(format!(
                "node {}: bind {}: a VM node gets files copied into its disk, not directories",
                n.name,
                b.source.display()
            ));
        }
    }
}

/// The refusal of a kernel whose modules are nowhere labwire looks: without them the guest
/// finds neither its disks nor its NICs.
fn missing_modules(n: &Node, kernel: &image::Kernel, tried: &[PathBuf]) -> String {
    let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    format!(
        "node {}: kernel {} (release {}) has no modules where labwire looks; tried {} (unpack the whole kernel package, as images/kernel/fetch.sh does, so lib/modules/{} lies beside boot/)",
        n.name,
        kernel.image.display(),
        kernel.version,
        tried.join(", "),
        kernel.version
    )
}

fn kernel_path(lab: &Lab, spec: &str) -> PathBuf {
    let base = lab
        .topology_file
        .as_deref()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    image::kernel::resolve_path(spec, &base)
}

/// What every VM node of one kernel boots from.
pub(crate) struct KernelBoot {
    pub kernel: image::Kernel,
    /// The agent, libraries, boot modules and command line, built once per kernel.
    pub image: vm::BootImage,
    pub modules_disk: Option<PathBuf>,
}

/// What one VM node boots from.
pub(crate) struct Boot {
    pub kernel: Arc<KernelBoot>,
    pub root_disk: PathBuf,
}

/// Everything the lab's VM nodes boot from, prepared once per deploy (disks are cached in the
/// image store across deploys).
pub(crate) struct Assets {
    pub boots: HashMap<String, Boot>,
    pub accel: Accel,
}

/// Resolve each VM node's kernel and build (or find cached) its disks.
pub(crate) fn prepare_assets(
    lab: &Lab,
    images: &HashMap<String, ImageRoot>,
    notice: &dyn Fn(&str),
) -> Result<Option<Assets>> {
    let vms: Vec<&Node> = lab
        .nodes
        .iter()
        .filter(|n| n.is_workload() && n.runtime == Runtime::Vm)
        .collect();
    if vms.is_empty() {
        return Ok(None);
    }
    let store = crate::images::image_store().map_err(Error::Invalid)?;
    let accel = accel_cached();
    if accel == Accel::Tcg {
        notice("vm: KVM cannot run guests on this host; VM nodes use QEMU's TCG emulation (slower boots)");
    }
    let agent = vm::agent_path()?;
    let mut kernels: HashMap<String, Arc<KernelBoot>> = HashMap::new();
    let mut disks: HashMap<String, PathBuf> = HashMap::new();
    let mut boots = HashMap::new();
    for n in vms {
        let img = images.get(&n.name).ok_or_else(|| {
            Error::Invalid(format!("node {}: runtime vm needs an `image`", n.name))
        })?;
        let key = n
            .kernel
            .clone()
            .unwrap_or_else(|| format!("image:{}", img.id));
        if !kernels.contains_key(&key) {
            let kernel = resolve_kernel(lab, n, img, &store)?;
            let modules = match &kernel.modules {
                Some(dir) => Some(image::Modules::scan(dir).map_err(|e| {
                    Error::Invalid(format!("node {}: kernel modules: {e}", n.name))
                })?),
                None => None,
            };
            let disk = match &modules {
                Some(m) => Some(store.modules_disk(&kernel, m).map_err(|e| {
                    Error::Invalid(format!("node {}: build the modules disk: {e}", n.name))
                })?),
                None => None,
            };
            let image =
                vm::boot_image(&kernel, modules.as_ref(), &agent, accel, &paths::lock_dir())?;
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
                .map_err(|e| Error::Invalid(format!("node {}: image: {e}", n.name)))?
                .ok_or_else(|| {
                    Error::Invalid(format!("node {}: image {} vanished", n.name, img.id))
                })?;
            let disk = store.root_disk(&image, &img.layers).map_err(|e| {
                Error::Invalid(format!("node {}: build the root disk: {e}", n.name))
            })?;
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
    Ok(Some(Assets { boots, accel }))
}

/// The accelerator probe's verdict, kept for the host's uptime in labwire's run directory (a
/// tmpfs): the probe starts a VMM, which costs more than the rest of a VM node's orchestration.
/// `LABWIRE_VM_ACCEL` still overrides it.
fn accel_cached() -> Accel {
    if std::env::var_os("LABWIRE_VM_ACCEL").is_some() {
        return vm::probe_accel().0;
    }
    let path = paths::lock_dir().join("vm-accel");
    match std::fs::read_to_string(&path).as_deref().map(str::trim) {
        Ok("kvm") => return Accel::Kvm,
        Ok("tcg") => return Accel::Tcg,
        _ => {}
    }
    let (accel, definitive) = vm::probe_accel();
    if definitive {
        let word = if accel == Accel::Kvm { "kvm" } else { "tcg" };
        let _ = std::fs::write(&path, word);
    }
    accel
}

fn resolve_kernel(
    lab: &Lab,
    n: &Node,
    img: &ImageRoot,
    store: &image::Store,
) -> Result<image::Kernel> {
    let (kernel, tried) = find_kernel(lab, n, img, store)?;
    if kernel.modules.is_none() {
        return Err(Error::Invalid(missing_modules(n, &kernel, &tried)));
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
    let bad = |e: image::Error| Error::Invalid(format!("node {}: kernel: {e}", n.name));
    let in_layers = |k: image::Kernel, layers: &[PathBuf]| {
        let tried = image::kernel::module_dirs_in_layers(layers, &k.version);
        (k, tried)
    };
    match n.kernel.as_deref() {
        Some(k) if image::kernel::is_file_spec(k) => {
            let path = kernel_path(lab, k);
            let kernel = image::Kernel::from_file(&path).map_err(bad)?;
            let tried = image::kernel::module_dirs_for_file(&path, &kernel.version);
            Ok((kernel, tried))
        }
        Some(reference) => {
            let kimg = store.resolve(reference).map_err(bad)?.ok_or_else(|| {
                Error::Invalid(format!(
                    "node {}: kernel image `{reference}` is not in labwire's image store (import it with `labwire image import FILE --name {}`, or give a vmlinuz path)",
                    n.name,
                    crate::deploy::shell_quote(reference)
                ))
            })?;
            let layers = store.layer_dirs(&kimg).map_err(bad)?;
            image::Kernel::from_layers(&layers)
                .map_err(bad)?
                .map(|k| in_layers(k, &layers))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "node {}: image `{reference}` holds no /boot/vmlinuz* kernel",
                        n.name
                    ))
                })
        }
        None => image::Kernel::from_layers(&img.layers)
            .map_err(bad)?
            .map(|k| in_layers(k, &img.layers))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "node {}: runtime vm needs a kernel: the image has no /boot/vmlinuz*, so set `kernel:` to a vmlinuz file or an image holding one",
                    n.name
                ))
            }),
    }
}

/// The node's NICs in VMM order: eth0 (bridged nodes), then each link end, with the addresses the
/// guest applies. Names are the namespace's interface names.
pub(crate) fn nics(lab: &Lab, n: &Node) -> Vec<GuestNic> {
    let mut out = Vec::new();
    if n.network_mode == NetworkMode::Bridged {
        let mut addresses = Vec::new();
        if let (Some(a), Some(s)) = (n.mgmt_ipv4, lab.mgmt.ipv4_subnet) {
            addresses.push((IpAddr::V4(a), s.prefix_len()));
        }
        if let (Some(a), Some(s)) = (n.mgmt_ipv6, lab.mgmt.ipv6_subnet) {
            addresses.push((IpAddr::V6(a), s.prefix_len()));
        }
        out.push(GuestNic {
            mac: n.mgmt_mac.to_string(),
            name: "eth0".into(),
            mtu: lab.mgmt.mtu,
            speed_mbps: topology::Link::DEFAULT_SPEED_MBPS,
            addresses,
        });
    }
    for l in &lab.links {
        for e in l.endpoints().filter(|e| e.node == n.name) {
            let mut addresses = Vec::new();
            if let Some(a) = e.ipv4 {
                addresses.push((IpAddr::V4(a.addr()), a.prefix_len()));
            }
            if let Some(a) = e.ipv6 {
                addresses.push((IpAddr::V6(a.addr()), a.prefix_len()));
            }
            out.push(GuestNic {
                mac: e.mac.to_string(),
                name: e.iface.clone(),
                mtu: l.mtu,
                speed_mbps: l.speed_mbps(),
                addresses,
            });
        }
    }
    out
}

/// The gateways a bridged VM node routes by default through.
pub(crate) fn gateways(lab: &Lab, n: &Node) -> Vec<IpAddr> {
    if n.network_mode != NetworkMode::Bridged {
        return Vec::new();
    }
    let mut gws = Vec::new();
    if n.mgmt_ipv4.is_some() {
        gws.extend(lab.mgmt.ipv4_gw.map(IpAddr::V4));
    }
    if n.mgmt_ipv6.is_some() {
        gws.extend(lab.mgmt.ipv6_gw.map(IpAddr::V6));
    }
    gws
}

/// The VMM's argv for a node (its files are written now).
pub(crate) fn vmm_argv(
    lab: &Lab,
    n: &Node,
    img: &ImageRoot,
    boot: &Boot,
    assets: &Assets,
) -> Result<Vec<String>> {
    let run_dir = node_run_dir(&lab.name, &n.name);
    let state_dir = paths::lab_state_dir(&lab.name).join("nodes").join(&n.name);
    let spec = vm::VmSpec {
        node: n,
        image: img,
        kernel: &boot.kernel.kernel,
        boot: &boot.kernel.image,
        modules_disk: boot.kernel.modules_disk.as_deref(),
        root_disk: &boot.root_disk,
        nics: nics(lab, n),
        gateways: gateways(lab, n),
        run_dir: &run_dir,
        state_dir: &state_dir,
        accel: assets.accel,
    };
    Ok(vm::prepare(&spec)?)
}

/// The node as the native runtime starts it: a namespace holder whose command is the VMM. The
/// node's own command, binds and environment go to the guest instead.
pub(crate) fn shell_node(n: &Node) -> Node {
    let mut s = n.clone();
    s.image = None;
    s.cmd = None;
    s.entrypoint = None;
    s.binds.clear();
    s.user = None;
    s.env.clear();
    // The namespace's interfaces only carry the guest's frames: no addresses, no IPv6 of their
    // own (their MACs are the guest's).
    s.sysctls = BTreeMap::from([
        (
            "net.ipv6.conf.all.disable_ipv6".to_string(),
            "1".to_string(),
        ),
        (
            "net.ipv6.conf.default.disable_ipv6".to_string(),
            "1".to_string(),
        ),
    ]);
    s
}

pub(crate) fn node_run_dir(lab: &str, node: &str) -> PathBuf {
    paths::lab_run_dir(lab).join(node)
}

/// Give each of the node's interfaces a tap and join the two with a two-way tc redirect.
pub(crate) fn stitch(lab: &Lab, n: &Node, ns: &NetNs, home: &NetNs) -> Result<()> {
    let op = |what: String| format!("{what} in VM node {}", n.name);
    let mut h = Handle::in_netns_from(ns, home).map_err(wire_err(op("open netlink".into())))?;
    for (i, nic) in nics(lab, n).iter().enumerate() {
        let tap = vm::tap_name(i);
        wire::create_tap(ns, &tap).map_err(wire_err(op(format!("create tap {tap}"))))?;
        let t = h
            .link(&tap)
            .map_err(wire_err(op(format!("look up {tap}"))))?
            .ok_or_else(|| Error::Invalid(op(format!("tap {tap} vanished"))))?;
        let l = h
            .link(&nic.name)
            .map_err(wire_err(op(format!("look up {}", nic.name))))?
            .ok_or_else(|| Error::Invalid(op(format!("interface {} is missing", nic.name))))?;
        h.set_mtu(t.index, nic.mtu)
            .map_err(wire_err(op(format!("set the MTU of {tap}"))))?;
        h.set_up(t.index)
            .map_err(wire_err(op(format!("bring up {tap}"))))?;
        h.stitch(l.index, t.index)
            .map_err(wire_err(op(format!("redirect {} ⇄ {tap}", nic.name))))?;
    }
    Ok(())
}

/// Run `sh -c cmd` inside a VM node through its guest agent, which runs it with the environment
/// the node's init got (the image's variables under the node's), as native exec does.
pub(crate) fn exec(lab: &str, n: &Node, cmd: &str) -> Result<ExecOutput> {
    let env = BTreeMap::new();
    Ok(vm::exec(
        &node_run_dir(lab, &n.name),
        cmd,
        &env,
        EXEC_TIMEOUT,
    )?)
}

/// Run a command in any node: through the guest agent for VM nodes, in the node's namespaces
/// otherwise.
pub(crate) fn exec_in_node(
    lab: &str,
    n: &Node,
    proc: ProcId,
    init: &Path,
    cmd: &str,
) -> Result<ExecOutput> {
    if n.runtime == Runtime::Vm {
        return exec(lab, n, cmd);
    }
    let env = native::node_environment(proc.pid, n);
    Ok(native::exec(init, proc.pid, &env, cmd)?)
}

/// The VMM process of a VM node whose namespace holder is `holder` (its only child).
pub fn vmm_pid(holder: ProcId) -> Option<i32> {
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", holder.pid)).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// Attach the terminal to the serial console of VM node `node` of deployed lab `lab`.
pub fn console(lab: &str, node: &str) -> Result<()> {
    paths::check_lab_name(lab)?;
    let rec = crate::state::Recorded::read(&paths::lab_state_dir(lab));
    let Some(l) = rec.lab.as_ref() else {
        return Err(Error::Invalid(format!("lab {lab} is not deployed")));
    };
    let n = l
        .nodes
        .iter()
        .find(|n| n.name == node || n.long_name == node)
        .ok_or_else(|| Error::Invalid(format!("lab {lab} has no node {node}")))?;
    if n.runtime != Runtime::Vm {
        return Err(Error::Invalid(format!(
            "node {node} runs on the {} runtime; only VM nodes have a console (use `labwire exec`)",
            n.runtime
        )));
    }
    Ok(vm::console(&node_run_dir(lab, &n.name), &n.name)?)
}

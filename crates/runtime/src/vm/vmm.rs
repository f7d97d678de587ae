//! The VMM seam of the vm runtime: what a virtual machine monitor must do for a VM node — say
//! what it lacks on this host, and turn the node's spec (kernel, initramfs, root disk, NICs) into
//! the command that boots it. A second VMM is one more file beside `qemu.rs` and one arm in
//! [`of`].

use std::path::Path;

use topology::Node;

use super::VmSpec;
use crate::{Error, Result};

/// A virtual machine monitor.
pub trait Vmm: Sync {
    /// Its name in topologies (`vmm:`).
    fn name(&self) -> &'static str;

    /// What this host lacks to run the node under this VMM, one line each.
    fn preflight(&self, node: &Node) -> Vec<String>;

    /// Make the VMM's own files for the node (its disk overlays) and return the argv that boots
    /// it with `initrd`. The VMM runs inside the node's network namespace and opens the taps
    /// named by [`super::tap_name`], one per NIC of `spec.nics` in order.
    fn command(&self, spec: &VmSpec<'_>, initrd: &Path) -> Result<Vec<String>>;

    /// Ask the guest to power off (an ACPI power button press) through the VMM's control socket
    /// in `run_dir`; the VMM exits once the guest has.
    fn power_down(&self, run_dir: &Path) -> Result<()>;
}

/// The VMM a node asks for (`vmm:`, QEMU by default), or why there is none.
pub fn of(node: &Node) -> Result<&'static dyn Vmm> {
    match node.vmm.as_deref() {
        None | Some("qemu") => Ok(&super::qemu::Qemu),
        Some("firecracker") => Err(Error::VmConfig {
            node: node.name.clone(),
            message: "vmm firecracker is not supported by this version of labwire (it needs KVM, which does not run guests on this host); use `vmm: qemu`".into(),
        }),
        Some(other) => Err(Error::VmConfig {
            node: node.name.clone(),
            message: format!("unknown vmm `{other}`; accepted: qemu, firecracker"),
        }),
    }
}

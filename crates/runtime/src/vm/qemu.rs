//! QEMU as the vm runtime's VMM: the `microvm` machine, KVM when usable and TCG otherwise, the
//! root disk as a qcow2 overlay over the image's cached ext4 file, one virtio-net device per tap.
//!
//! Owns QEMU's command line and the overlay disk it boots; everything else a VM node needs is the
//! vm module's, shared with any other VMM.

use std::path::Path;
use std::process::Command;

use topology::Node;

use super::{
    agent_socket, console_socket, proto, tap_name, Accel, VmSpec, DEFAULT_MEMORY_MIB, QEMU,
};
use crate::vm::vmm::Vmm;
use crate::{io, Error, Result};

/// QEMU's microvm machine.
pub struct Qemu;

impl Vmm for Qemu {
    fn name(&self) -> &'static str {
        "qemu"
    }

    fn preflight(&self, n: &Node) -> Vec<String> {
        [QEMU, "qemu-img", "mkfs.ext4", "debugfs"]
            .into_iter()
            .filter(|tool| image::find_tool(tool).is_none())
            .map(|tool| {
                format!(
                    "node {}: runtime vm needs `{tool}`, which is not installed (apt-get install qemu-system-x86 qemu-utils e2fsprogs)",
                    n.name
                )
            })
            .collect()
    }

    fn command(&self, spec: &VmSpec<'_>, initrd: &Path) -> Result<Vec<String>> {
        let node = spec.node;
        let overlay = spec.state_dir.join("root.qcow2");
        let _ = std::fs::remove_file(&overlay);
        // qemu-img creates the overlay with the default 0644: made empty and private first, it
        // keeps 0600 (qemu-img truncates an existing file rather than replacing it).
        super::private_file(&overlay, true)?;
        let out = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(spec.root_disk)
            .arg(&overlay)
            .output()
            .map_err(io("run qemu-img (install qemu-utils)"))?;
        if !out.status.success() {
            return Err(Error::NodeSetup {
                node: node.name.clone(),
                message: format!(
                    "qemu-img create failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        let mem_mib = node
            .memory_bytes
            .map_or(DEFAULT_MEMORY_MIB, |b| (b >> 20).max(64));
        let cpus = node.cpu.map_or(1, |c| (c.ceil() as u64).max(1));
        let mut argv: Vec<String> = vec![
            image::find_tool(QEMU).map_or_else(|| QEMU.to_string(), |p| p.display().to_string()),
            "-name".into(),
            node.long_name.clone(),
            "-M".into(),
            "microvm,isa-serial=on,rtc=on".into(),
        ];
        match spec.accel {
            Accel::Kvm => {
                argv.extend(["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()])
            }
            // A bounded translation cache keeps the VMM's own memory small; below 32 MiB a guest
            // booting systemd and Python retranslates so often that it boots several times slower.
            Accel::Tcg => {
                argv.extend([
                    "-accel".into(),
                    "tcg,tb-size=32".into(),
                    "-cpu".into(),
                    "max".into(),
                ]);
                // For measuring a boot: the guest's clock counts its instructions (1 ns each)
                // and skips its idle waits, so the agent's phase line gives the same figures on
                // an idle and a busy host (the boot itself runs several times slower).
                if std::env::var("LABWIRE_VM_ICOUNT").is_ok_and(|v| v == "1") {
                    argv.extend(["-icount".into(), "shift=0,sleep=off".into()]);
                }
            }
        }
        argv.extend([
            "-m".into(),
            format!("{mem_mib}M"),
            "-smp".into(),
            cpus.to_string(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-no-reboot".into(),
            // Modern (virtio 1.0) MMIO transport: a legacy one carries only the first 32 feature
            // bits, and a NIC's speed and duplex (bit 63) would never reach the guest.
            "-global".into(),
            "virtio-mmio.force-legacy=false".into(),
            "-kernel".into(),
            spec.kernel.image.display().to_string(),
            "-initrd".into(),
            initrd.display().to_string(),
            "-append".into(),
            spec.boot.cmdline.clone(),
            "-chardev".into(),
            format!(
                "socket,id=con,path={},server=on,wait=off,logfile={},logappend=on",
                console_socket(spec.run_dir).display(),
                super::serial_log(spec.run_dir).display()
            ),
            "-serial".into(),
            "chardev:con".into(),
            "-qmp".into(),
            format!(
                "unix:{},server=on,wait=off",
                super::control_socket(spec.run_dir).display()
            ),
            "-device".into(),
            "virtio-serial-device".into(),
            "-chardev".into(),
            format!(
                "socket,id=agent,path={},server=on,wait=off",
                agent_socket(spec.run_dir).display()
            ),
            "-device".into(),
            format!("virtserialport,chardev=agent,name={}", proto::PORT_NAME),
            // QMP, for a NIC's link state (`labwire tools link down|up`).
            "-qmp".into(),
            format!(
                "unix:{},server=on,wait=off",
                super::qmp::qmp_socket(spec.run_dir).display()
            ),
            "-drive".into(),
            format!(
                "id=root,file={},format=qcow2,if=none,cache=unsafe",
                overlay.display()
            ),
            "-device".into(),
            "virtio-blk-device,drive=root,serial=labwire-root".into(),
        ]);
        if let Some(d) = spec.modules_disk {
            argv.extend([
                "-drive".into(),
                format!(
                    "id=modules,file={},format=raw,if=none,readonly=on",
                    d.display()
                ),
                "-device".into(),
                "virtio-blk-device,drive=modules,serial=labwire-modules".into(),
            ]);
        }
        for (share, source) in super::shares(node) {
            // QEMU's option syntax doubles a comma inside a value.
            let path = source.display().to_string().replace(',', ",,");
            argv.extend([
                "-fsdev".into(),
                format!(
                    "local,id={tag},path={path},security_model=passthrough{}",
                    if share.read_only { ",readonly=on" } else { "" },
                    tag = share.tag
                ),
                "-device".into(),
                format!(
                    "virtio-9p-device,fsdev={tag},mount_tag={tag}",
                    tag = share.tag
                ),
            ]);
        }
        for (i, nic) in spec.nics.iter().enumerate() {
            argv.extend([
                "-netdev".into(),
                format!("tap,id=n{i},ifname={},script=no,downscript=no", tap_name(i)),
                "-device".into(),
                format!(
                    "virtio-net-device,netdev=n{i},mac={},host_mtu={},speed={},duplex=full",
                    nic.mac, nic.mtu, nic.speed_mbps
                ),
            ]);
        }
        Ok(argv)
    }

    /// QMP: capabilities negotiation, then `system_powerdown` (microvm's ACPI power button).
    fn power_down(&self, run_dir: &Path) -> Result<()> {
        use std::io::{BufRead as _, BufReader, Write as _};
        let path = super::control_socket(run_dir);
        let op = || format!("power down through {}", path.display());
        let stream = std::os::unix::net::UnixStream::connect(&path).map_err(io(op()))?;
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .map_err(io(op()))?;
        let mut reader = BufReader::new(stream.try_clone().map_err(io(op()))?);
        let mut writer = stream;
        let mut line = String::new();
        // The greeting, then one answer per command (events may come between: skipped).
        reader.read_line(&mut line).map_err(io(op()))?;
        for cmd in ["qmp_capabilities", "system_powerdown"] {
            writeln!(writer, "{{\"execute\":\"{cmd}\"}}").map_err(io(op()))?;
            loop {
                line.clear();
                if reader.read_line(&mut line).map_err(io(op()))? == 0 {
                    return Err(Error::Guest(format!("{}: QMP closed", op())));
                }
                if line.contains("\"error\"") {
                    return Err(Error::Guest(format!("{}: {}", op(), line.trim())));
                }
                if line.contains("\"return\"") {
                    break;
                }
            }
        }
        Ok(())
    }
}

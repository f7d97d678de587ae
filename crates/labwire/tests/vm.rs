//! The vm runtime end to end (issue 6), under QEMU with Debian's stock kernel
//! (`images/kernel/fetch.sh` unpacks `linux-image-amd64` into `/var/tmp/lwt-kernel`, reused while
//! the package version is unchanged) and the open-nos image (Debian + FRR, built with mmdebstrap
//! by `images/open-nos/build.sh` into `/var/tmp/lwt-c2-images`, shared with the cldemo2 tests).
//!
//! - `vm_node_linked_to_native_node`: pings both ways over the stitched link (IPv4 and IPv6) and
//!   over the management network; the guest's NIC has the topology's name and the namespace
//!   interface's MAC; `exec` sees the image's files, the bound file and the node's own kernel,
//!   whose modules the guest can load (dummy, which this host's kernel lacks); inspect shows the
//!   VMM; destroy leaves no VMM, tap, overlay or namespace.
//! - `two_vm_nodes_linked`: two VM nodes ping each other; one boots its kernel from an image in
//!   the store (`fetch.sh --import`), the other hands PID 1 to systemd, which boots to running
//!   while `exec` keeps working.
//! - `bad_vm_input_is_refused_before_anything`: a missing kernel and an unknown VMM are refused
//!   with the node named, and nothing is made.
//!
//! - `vk_debian_612_kernel_with_xz_modules`: a VM node boots Debian's 6.12 cloud kernel from
//!   bookworm-security (`fetch.sh --package linux-image-6.12-cloud-amd64`), whose modules are all
//!   `.ko.xz`, loads `bonding` from them in the guest and makes an 802.3ad bond; its NICs report
//!   the link's `speed` (25G) and the 10 Gbit/s default, full duplex.
//! - `vk_lacp_bond_between_two_vm_nodes`: two VM nodes bond their two links with 802.3ad; with
//!   the speed their NICs report, both members find their LACP partner and aggregate, and the
//!   bonds carry traffic — no `ethtool` in the guests.
//! - `vk_kernel_without_modules_is_refused_at_once`: a kernel with no modules where labwire looks
//!   is refused in under 2 s, naming the release and every path tried, and nothing is made.
//!
//! - `vmf_guest_features_binds_sysctls_exec_healthcheck`: directory binds shared over virtio 9p
//!   (written both ways, `:ro` refused a write), a file bind, sysctls (a non-namespaced one too),
//!   startup-config, exec and a healthcheck that deploy waits for and inspect reports.
//!
//! Runs as root. Labs `lwt-vm1`, `lwt-vm2`, `lwt-vm3` on 172.31.211-213.0/24; `vk-612`,
//! `vk-nomod`, `vk-lacp` on 172.31.181-183.0/24; `vmf-feat` on 172.30.184.0/24.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::open_nos::{debian_kernel as kernel, ensure_image, repo_root, IMAGE_DIR, KERNEL_DIR};
use common::*;

/// The release of a kernel file named as Debian names it (`vmlinuz-<release>`).
fn release_of(kernel: &std::path::Path) -> String {
    kernel
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .expect("vmlinuz-<release>")
        .to_string()
}

/// The same kernel as an image in the test store (`fetch.sh --import`), for `kernel: IMAGE`.
fn kernel_image() -> String {
    let k = kernel();
    let release = release_of(&k);
    let name = format!("lwt-kernel:{release}");
    let mut inspect = labwire();
    inspect
        .env("LABWIRE_IMAGE_DIR", IMAGE_DIR)
        .args(["image", "inspect", &name]);
    if run_timeout(inspect, Duration::from_secs(60))
        .status
        .success()
    {
        return name;
    }
    let mut c = Command::new("bash");
    c.arg(repo_root().join("images/kernel/fetch.sh"))
        .args(["--import", &name, KERNEL_DIR])
        .env("LABWIRE", labwire_bin())
        .env("LABWIRE_IMAGE_DIR", IMAGE_DIR);
    let out = run_timeout(c, Duration::from_secs(600));
    assert!(
        out.status.success(),
        "fetch.sh --import failed: {}",
        describe(&out)
    );
    name
}

fn vm_lab(test: &str, name: &str, nodes: &[&str], yaml: &str) -> TestLab {
    let mut lab = TestLab::new(test, name, name, nodes, yaml);
    lab.env.push(("LABWIRE_IMAGE_DIR".into(), IMAGE_DIR.into()));
    lab
}

/// Deploy a lab that must be refused before anything is made; returns the error text.
fn deploy_refused(lab: &TestLab) -> String {
    let before = host_link_names();
    let out = lab.try_deploy();
    assert!(
        !out.status.success(),
        "deploy succeeded: {}",
        describe(&out)
    );
    assert_eq!(host_link_names(), before, "deploy touched the host's links");
    assert!(!lab.state_dir().exists(), "a state directory was made");
    text(&out.stderr)
}

fn deploy_vms(lab: &TestLab) -> Duration {
    let t = Instant::now();
    let out = run_timeout(lab.deploy_cmd(), Duration::from_secs(900));
    assert!(
        out.status.success(),
        "deploy of lab {} failed: {}",
        lab.name,
        describe(&out)
    );
    t.elapsed()
}

/// Live processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || proc_state(&name) == Some('Z') {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) {
            out.push(format!("{name} {cmd}"));
        }
    }
    out
}

#[test]
fn vm_node_linked_to_native_node() {
    require_root();
    ensure_image();
    let kernel = kernel();
    let name = "lwt-vm1";
    let yaml = format!(
        "name: {name}\nmgmt:\n  network: {name}\n  ipv4-subnet: 172.31.211.0/24\n  ipv6-subnet: fd00:211::/64\n\
         topology:\n  nodes:\n    r1:\n      kind: linux\n      runtime: vm\n      image: open-nos:latest\n\
         \x20     kernel: {}\n      memory: 512MB\n      binds:\n        - motd:/etc/motd-from-host:ro\n\
         \x20     exec:\n        - touch /etc/exec-ran\n      sysctls:\n        net.ipv4.ip_forward: \"1\"\n\
         \x20   h1:\n      kind: linux\n\
         \x20 links:\n    - endpoints: [\"r1:swp1\", \"h1:eth1\"]\n      ipv4: [\"10.211.1.1/24\", \"10.211.1.2/24\"]\n\
         \x20     ipv6: [\"fd00:211:1::1/64\", \"fd00:211:1::2/64\"]\n",
        kernel.display()
    );
    let lab = vm_lab("vm1", name, &["r1", "h1"], &yaml);
    std::fs::write(lab.dir.join("motd"), "bound into the guest\n").expect("write motd");
    let took = deploy_vms(&lab);
    eprintln!(
        "vm: deploy with one VM node (guest up) took {:.2} s",
        took.as_secs_f64()
    );

    // The guest NIC carries the topology's name and the namespace interface's MAC.
    let ns_links = lab.links("r1");
    let ns_mac = ns_links
        .iter()
        .find(|l| l["ifname"] == "swp1")
        .and_then(|l| l["address"].as_str())
        .expect("swp1 in r1's namespace")
        .to_string();
    let guest_mac = lab.exec_ok("r1", "cat /sys/class/net/swp1/address");
    assert_eq!(guest_mac.trim(), ns_mac, "guest swp1 MAC");
    // The namespace side is only a conduit: a tap per interface, no addresses of its own.
    let taps: Vec<&str> = ns_links
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .filter(|n| n.starts_with("lwtap"))
        .collect();
    assert_eq!(taps.len(), 2, "taps in r1's namespace: {ns_links:?}");
    let (v4, _) = lab.eth0_addrs("r1");
    assert_eq!(v4, None, "the namespace's eth0 has no address of its own");

    // Pings both ways over the stitched link, and over the management network.
    lab.assert_ping("r1", "10.211.1.2");
    lab.assert_ping("h1", "10.211.1.1");
    poll(Duration::from_secs(20), || {
        let out = lab.exec("h1", "ping -6 -c1 -W2 fd00:211:1::1");
        if out.status.success() {
            Ok(())
        } else {
            Err(describe(&out))
        }
    })
    .unwrap_or_else(|e| panic!("IPv6 ping h1 → r1 over the stitched link: {e}"));
    lab.assert_ping("h1", "172.31.211.2");
    let out = run_timeout(
        {
            let mut c = Command::new("ping");
            c.args(["-c1", "-W2", "172.31.211.2"]);
            c
        },
        Duration::from_secs(10),
    );
    assert!(
        out.status.success(),
        "host → r1 mgmt ping: {}",
        describe(&out)
    );

    // The image's files, the bound file, the node's own kernel and its modules.
    assert!(lab.exec_ok("r1", "cat /etc/os-release").contains("Debian"));
    lab.exec_ok("r1", "test -x /usr/lib/frr/bgpd");
    assert_eq!(
        lab.exec_ok("r1", "cat /etc/motd-from-host"),
        "bound into the guest\n"
    );
    let release = lab.exec_ok("r1", "uname -r");
    assert!(
        kernel.display().to_string().ends_with(release.trim()),
        "guest runs {release} from {}",
        kernel.display()
    );
    assert_eq!(lab.exec_ok("r1", "hostname").trim(), "r1");
    lab.exec_ok("r1", "test -f /etc/exec-ran"); // the node's `exec`, run at deploy

    // The NICs announced their addresses as they came up (gratuitous ARP, unsolicited NA).
    assert_eq!(
        lab.exec_ok(
            "r1",
            "cat /proc/sys/net/ipv4/conf/eth0/arp_notify /proc/sys/net/ipv6/conf/swp1/ndisc_notify"
        )
        .split_whitespace()
        .collect::<Vec<_>>(),
        ["1", "1"]
    );
    assert_eq!(
        lab.exec_ok("r1", "cat /proc/sys/net/ipv4/ip_forward")
            .trim(),
        "1",
        "the node's sysctls apply in the guest"
    );
    lab.exec_ok(
        "r1",
        "modprobe dummy && ip link add lwd0 type dummy && ip link show lwd0",
    );
    let out = lab.exec("r1", "echo out; echo err >&2; exit 3");
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");

    // inspect shows the VMM; the console log is in the node directory.
    let v = lab.inspect_json();
    let rows = v[name].as_array().expect("inspect rows");
    let r1 = rows
        .iter()
        .find(|r| r["name"] == lab.long_name("r1"))
        .expect("r1 row");
    assert_eq!(r1["state"], "running");
    let pid = r1["pid"].as_i64().expect("pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("qemu-system"),
        "inspect pid {pid} is not the VMM"
    );
    let console = std::fs::read_to_string(lab.lab_dir().join("r1/console.log")).unwrap_or_default();
    assert!(
        console.contains("labwire-guest: up"),
        "console.log: {console}"
    );

    let overlay = lab.state_dir().join("nodes/r1/root.qcow2");
    assert!(
        overlay.is_file(),
        "{} exists while deployed",
        overlay.display()
    );
    let out = lab.destroy(false);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&[]);
    let vmms = processes_with(&format!("clab-{name}-"));
    assert!(vmms.is_empty(), "processes left: {vmms:?}");
    assert!(!overlay.exists(), "overlay {} left", overlay.display());
}

#[test]
fn two_vm_nodes_linked() {
    require_root();
    ensure_image();
    let kernel = kernel();
    let kernel_image = kernel_image();
    let name = "lwt-vm2";
    // a boots the kernel from an image in the store, b from the file.
    let yaml = format!(
        "name: {name}\nmgmt:\n  network: {name}\n  ipv4-subnet: 172.31.212.0/24\n\
         topology:\n  defaults:\n    runtime: vm\n    image: open-nos:latest\n    kernel: {}\n\
         \x20 nodes:\n    a:\n      kind: linux\n      kernel: {kernel_image}\n    b:\n      kind: linux\n      cmd: /lib/systemd/systemd\n\
         \x20 links:\n    - endpoints: [\"a:swp1\", \"b:swp1\"]\n      ipv4: [\"10.212.1.1/24\", \"10.212.1.2/24\"]\n",
        kernel.display()
    );
    let lab = vm_lab("vm2", name, &["a", "b"], &yaml);
    let took = deploy_vms(&lab);
    eprintln!(
        "vm: deploy with two VM nodes took {:.2} s",
        took.as_secs_f64()
    );
    lab.assert_ping("a", "10.212.1.2");
    lab.assert_ping("b", "10.212.1.1");
    // a's VMM boots the kernel from the image's unpacked layer (in the store), b's the file.
    let rows = lab.inspect_json();
    let vmm_kernel = |node: &str| -> String {
        let long = lab.long_name(node);
        let row = rows[name]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == long.as_str()))
            .unwrap_or_else(|| panic!("no inspect row for {long}"));
        let pid = row["pid"].as_i64().expect("pid");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let i = args
            .iter()
            .position(|a| a == "-kernel")
            .unwrap_or_else(|| panic!("{long}: no -kernel in the VMM's command line {args:?}"));
        args[i + 1].clone()
    };
    // Under TCG each node boots the ELF decompressed from its kernel (cached in the store's
    // disks, one per kernel file); under KVM the kernel files themselves.
    let (a_kernel, b_kernel) = (vmm_kernel("a"), vmm_kernel("b"));
    let elf = format!("{IMAGE_DIR}/disks/vmlinux-");
    assert!(
        a_kernel.starts_with(&format!("{IMAGE_DIR}/layers/"))
            || (a_kernel.starts_with(&elf) && a_kernel != b_kernel),
        "a boots {a_kernel}, not the kernel image's"
    );
    assert!(
        b_kernel == kernel.display().to_string() || b_kernel.starts_with(&elf),
        "b boots {b_kernel}, not {}",
        kernel.display()
    );
    let release = lab.exec_ok("a", "uname -r");
    assert!(kernel_image.ends_with(release.trim()), "a runs {release}");
    lab.exec_ok("a", "modprobe dummy && ip link add lwd0 type dummy");
    // b handed PID 1 to systemd; exec still answers while it boots and after. Asked once a
    // second: each systemctl costs the emulated guest CPU its boot needs.
    let state = poll(Duration::from_secs(300), || {
        let out = lab.exec("b", "systemctl is-system-running");
        let s = text(&out.stdout).trim().to_string();
        if s == "running" || s == "degraded" {
            Ok(s)
        } else {
            std::thread::sleep(Duration::from_secs(1));
            Err(format!("{s} {}", text(&out.stderr)))
        }
    })
    .unwrap_or_else(|e| panic!("systemd in VM node b did not finish booting: {e}"));
    eprintln!("vm: systemd in b is {state}");
    assert_eq!(lab.exec_ok("b", "cat /proc/1/comm").trim(), "systemd");
    // The serial console, both ways: a user name typed into `labwire console` reaches the
    // guest's getty, whose password prompt comes back on the command's output.
    let mut c = lab.cmd();
    c.args(["console", "--name", name, "b"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("start labwire console");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            use std::io::Read as _;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let prompt = poll(Duration::from_secs(90), || {
        use std::io::Write as _;
        stdin.write_all(b"root\r").map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_secs(3));
        let out = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        if out.contains("Password:") {
            Ok(())
        } else {
            Err(out)
        }
    });
    drop(stdin);
    let status = wait_timeout(&mut child, Duration::from_secs(20));
    let _ = reader.join();
    assert!(
        status.is_some_and(|s| s.success()),
        "console did not end with its input"
    );
    prompt.unwrap_or_else(|e| panic!("no password prompt through labwire console: {e}"));
    lab.assert_ping("b", "10.212.1.1");
    let out = lab.destroy(false);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&[]);
    assert!(processes_with(&format!("clab-{name}-")).is_empty());
}

#[test]
fn bad_vm_input_is_refused_before_anything() {
    require_root();
    let name = "lwt-vm3";
    let yaml = format!(
        "name: {name}\nmgmt:\n  network: {name}\n  ipv4-subnet: 172.31.213.0/24\n\
         topology:\n  nodes:\n    a:\n      kind: linux\n      runtime: vm\n      image: lwt-busybox:1\n\
         \x20     kernel: /nonexistent/vmlinuz-1\n    b:\n      kind: linux\n      runtime: vm\n"
    );
    let lab = vm_lab("vm3", name, &["a", "b"], &yaml);
    let err = deploy_refused(&lab);
    assert!(
        err.contains("node a: kernel /nonexistent/vmlinuz-1 does not exist"),
        "{err}"
    );
    assert!(err.contains("node b: runtime vm needs an `image`"), "{err}");

    // An unknown VMM is a topology error, with its position.
    let bad = lab.dir.join("vmm.clab.yml");
    std::fs::write(
        &bad,
        format!("name: {name}\ntopology:\n  nodes:\n    a:\n      kind: linux\n      runtime: vm\n      vmm: bochs\n"),
    )
    .expect("write topology");
    let mut c = lab.cmd();
    c.arg("deploy").arg("-t").arg(&bad);
    let out = run_timeout(c, Duration::from_secs(60));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("vmm.clab.yml:7:12"), "{err}");
    assert!(err.contains("accepted: qemu, firecracker"), "{err}");
    assert!(!lab.state_dir().exists(), "a state directory was made");
}

/// A deploy killed outright (SIGKILL to all its processes) while its guest boots leaves a lab
/// that destroy removes completely, VMM included.
#[test]
fn killed_deploy_of_a_vm_lab_is_destroyed_completely() {
    require_root();
    let kernel = kernel();
    let name = "lwt-vm4";
    let yaml = format!(
        "name: {name}\nmgmt:\n  network: {name}\n  ipv4-subnet: 172.31.214.0/24\n\
         topology:\n  nodes:\n    a:\n      kind: linux\n      runtime: vm\n      image: open-nos:latest\n\
         \x20     kernel: {}\n",
        kernel.display()
    );
    ensure_image();
    let lab = vm_lab("vm4", name, &["a"], &yaml);
    let mut deploy = lab.deploy_cmd();
    // Its own process group, so the kill takes every labwire process of the deploy at once.
    std::os::unix::process::CommandExt::process_group(&mut deploy, 0);
    deploy
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = deploy.spawn().expect("start deploy");
    // Wait until the VMM runs, then kill the deploy outright.
    poll(Duration::from_secs(120), || {
        if processes_with(&format!("-name clab-{name}-a")).is_empty() {
            Err("no VMM yet".to_string())
        } else {
            Ok(())
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: kill(2) on our own child's process group.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
    let alive = processes_with(&format!("clab-{name}-"));
    assert!(
        !alive.is_empty(),
        "nothing of the lab outlived the killed deploy, so destroy is not tested"
    );
    let out = lab.destroy(false);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&[]);
    let left = processes_with(&format!("clab-{name}-"));
    assert!(left.is_empty(), "processes left: {left:?}");
}

/// Where `fetch.sh --package linux-image-6.12-cloud-amd64` unpacks Debian's 6.12 kernel for these
/// tests (reused while the package version is unchanged).
const KERNEL_612_DIR: &str = "/var/tmp/vk-kernel-612";

/// Debian's 6.12 cloud kernel from bookworm-security, whose modules are compressed with xz.
fn kernel_612() -> PathBuf {
    let mut c = Command::new("bash");
    c.arg(repo_root().join("images/kernel/fetch.sh")).args([
        "--package",
        "linux-image-6.12-cloud-amd64",
        KERNEL_612_DIR,
    ]);
    let out = run_timeout(c, Duration::from_secs(600));
    assert!(
        out.status.success(),
        "fetch.sh --package linux-image-6.12-cloud-amd64 failed (is bookworm-security in the apt sources?): {}",
        describe(&out)
    );
    let p = PathBuf::from(text(&out.stdout).trim());
    assert!(p.is_file(), "fetch.sh printed {}", p.display());
    p
}

#[test]
fn vk_debian_612_kernel_with_xz_modules() {
    require_root();
    ensure_image();
    let kernel = kernel_612();
    let release = release_of(&kernel);
    assert!(release.starts_with("6.12."), "fetched {release}");
    let modules = kernel
        .parent()
        .expect("boot/")
        .join("../lib/modules")
        .join(&release);
    let bonding = modules.join("kernel/drivers/net/bonding/bonding.ko.xz");
    assert!(
        bonding.is_file(),
        "the package ships {} (the compressed module this test loads)",
        bonding.display()
    );
    let name = "vk-612";
    let yaml = format!(
        "name: {name}\nmgmt:\n  network: {name}\n  ipv4-subnet: 172.31.181.0/24\n\
         topology:\n  nodes:\n    r1:\n      kind: linux\n      runtime: vm\n      image: open-nos:latest\n\
         \x20     kernel: {}\n      memory: 512MB\n\
         \x20   h1:\n      kind: linux\n\
         \x20 links:\n    - endpoints: [\"r1:swp1\", \"h1:eth1\"]\n      speed: 25G\n      ipv4: [\"10.181.1.1/24\", \"10.181.1.2/24\"]\n\
         \x20   - endpoints: [\"r1:swp2\", \"h1:eth2\"]\n",
        kernel.display()
    );
    let lab = vm_lab("vk612", name, &["r1", "h1"], &yaml);
    let took = deploy_vms(&lab);
    eprintln!(
        "vm: deploy with one VM node on the 6.12 kernel took {:.2} s",
        took.as_secs_f64()
    );
    assert_eq!(lab.exec_ok("r1", "uname -r").trim(), release);
    lab.assert_ping("r1", "10.181.1.2");
    lab.assert_ping("h1", "10.181.1.1");

    // The boot modules came out of .ko.xz files (virtio_net is a module in this kernel): the
    // guest's NICs exist. Now a module the kernel does not build in, from the modules disk.
    assert!(
        !lab.exec_ok("r1", "cat /proc/modules").contains("bonding "),
        "bonding loaded before the test asked for it"
    );
    let file = lab.exec_ok("r1", "modinfo -F filename bonding");
    assert!(
        file.trim().ends_with("/bonding.ko"),
        "the guest sees decompressed modules: {file}"
    );
    lab.exec_ok(
        "r1",
        "modprobe bonding && ip link add bond0 type bond mode 802.3ad && ip link show bond0",
    );
    let mods = lab.exec_ok("r1", "cat /proc/modules");
    assert!(
        mods.lines().any(|l| l.starts_with("bonding ")),
        "bonding is not in /proc/modules: {mods}"
    );

    // Each NIC reports a speed and duplex: the link's `speed`, or 10 Gbit/s.
    let speeds = lab.exec_ok(
        "r1",
        "for i in swp1 swp2 eth0; do echo $i $(cat /sys/class/net/$i/speed) $(cat /sys/class/net/$i/duplex); done",
    );
    assert_eq!(
        speeds.trim(),
        "swp1 25000 full\nswp2 10000 full\neth0 10000 full",
        "guest NIC speeds"
    );

    let out = lab.destroy(false);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&[]);
}

#[test]
fn vk_kernel_without_modules_is_refused_at_once() {
    require_root();
    let kernel = kernel();
    let release = release_of(&kernel);
    let name = "vk-nomod";
    let lab = vm_lab(
        "vknomod",
        name,
        &["a"],
        "name: vk-nomod\n", // rewritten below, once the kernel is in the lab's directory
    );
    // The bzImage alone, without the lib/modules tree its package lays beside it.
    let boot = lab.dir.join("bare/boot");
    std::fs::create_dir_all(&boot).expect("mkdir");
    let bare = boot.join(format!("vmlinuz-{release}"));
    std::fs::copy(&kernel, &bare).expect("copy the kernel");
    let yaml = format!(
        "name: {name}\nmgmt:\n  network: {name}\n  ipv4-subnet: 172.31.182.0/24\n\
         topology:\n  nodes:\n    a:\n      kind: linux\n      runtime: vm\n      image: open-nos:latest\n\
         \x20     kernel: bare/boot/vmlinuz-{release}\n"
    );
    std::fs::write(&lab.file, yaml).expect("write topology");
    let t = Instant::now();
    let err = deploy_refused(&lab);
    let took = t.elapsed();
    assert!(
        err.contains(&format!(
            "node a: kernel {} (release {release}) has no modules where labwire looks",
            bare.display()
        )),
        "{err}"
    );
    for tried in [
        boot.join("../lib/modules").join(&release),
        boot.join("../usr/lib/modules").join(&release),
        PathBuf::from("/lib/modules").join(&release),
    ] {
        assert!(
            err.contains(&tried.display().to_string()),
            "{} not named: {err}",
            tried.display()
        );
    }
    assert!(took < Duration::from_secs(2), "refused after {took:?}");
    eprintln!(
        "vm: a kernel without modules was refused in {:.3} s",
        took.as_secs_f64()
    );
}

#[test]
fn vk_lacp_bond_between_two_vm_nodes() {
    require_root();
    ensure_image();
    let kernel = kernel_612();
    let name = "vk-lacp";
    let node = |n: &str| {
        format!(
            "    {n}:\n      kind: linux\n      runtime: vm\n      image: open-nos:latest\n      kernel: {}\n      memory: 384MB\n",
            kernel.display()
        )
    };
    let yaml = format!(
        "name: {name}\nmgmt:\n  network: {name}\n  ipv4-subnet: 172.31.183.0/24\n\
         topology:\n  nodes:\n{}{}\
         \x20 links:\n    - endpoints: [\"a:swp1\", \"b:swp1\"]\n\
         \x20   - endpoints: [\"a:swp2\", \"b:swp2\"]\n",
        node("a"),
        node("b")
    );
    let lab = vm_lab("vklacp", name, &["a", "b"], &yaml);
    deploy_vms(&lab);
    for (n, addr) in [("a", "10.183.1.1/24"), ("b", "10.183.1.2/24")] {
        lab.exec_ok(
            n,
            &format!(
                "modprobe bonding && ip link add bond0 type bond mode 802.3ad miimon 100 lacp_rate fast \
                 && for i in swp1 swp2; do ip link set $i down && ip link set $i master bond0; done \
                 && ip link set bond0 up && ip addr add {addr} dev bond0"
            ),
        );
    }
    // Both members of each bond get a partner and join one aggregator.
    for n in ["a", "b"] {
        poll(Duration::from_secs(60), || {
            let state = lab.exec_ok(n, "cat /proc/net/bonding/bond0");
            let field = |name: &str| -> Vec<&str> {
                state
                    .lines()
                    .filter_map(|l| l.trim_start().strip_prefix(name))
                    .collect()
            };
            // The bond's active aggregator, then one line per member: all one aggregator of two
            // ports, whose partner is the other node.
            let ids = field("Aggregator ID: ");
            let ports = field("Number of ports: ");
            let partner = field("Partner Mac Address: ");
            if ids.len() == 3
                && ids.iter().all(|i| *i == ids[0])
                && ports == ["2"]
                && partner.len() == 1
                && partner[0] != "00:00:00:00:00:00"
            {
                Ok(())
            } else {
                Err(format!("node {n}: bond not aggregated yet:\n{state}"))
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let state = lab.exec_ok(n, "cat /proc/net/bonding/bond0");
        assert_eq!(
            state.matches("Speed: 10000 Mbps\nDuplex: full").count(),
            2,
            "node {n}: both members at the links' speed:\n{state}"
        );
    }
    // The first frames after the members start distributing may be lost: ask for a while.
    for (n, peer) in [("a", "10.183.1.2"), ("b", "10.183.1.1")] {
        poll(Duration::from_secs(30), || {
            let out = lab.exec(n, &format!("ping -c1 -W2 {peer}"));
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "node {n}: no answer from {peer} over bond0: {}",
                    describe(&out)
                ))
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let out = lab.destroy(false);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&[]);
}

/// A VM node gets what a native node gets, through its agent: directory `binds` (shared over
/// virtio 9p; `:ro` read-only), a file bind, `sysctls` (a non-namespaced key too: the guest has
/// its own kernel), `startup-config`, `exec` commands and a `healthcheck` deploy waits for and
/// inspect reports.
#[test]
fn vmf_guest_features_binds_sysctls_exec_healthcheck() {
    require_root();
    ensure_image();
    let kernel = kernel();
    let name = "vmf-feat";
    let yaml = format!(
        "name: {name}\nmgmt:\n  network: {name}\n  ipv4-subnet: 172.30.184.0/24\n\
         topology:\n  nodes:\n    r1:\n      kind: linux\n      runtime: vm\n      image: open-nos:latest\n\
         \x20     kernel: {}\n      memory: 384MB\n\
         \x20     binds: [shared:/mnt/rw, conf:/mnt/ro:ro, note.txt:/etc/note.txt]\n\
         \x20     sysctls: {{net.ipv4.ip_forward: \"1\", vm.swappiness: \"13\"}}\n\
         \x20     startup-config: startup.cfg\n\
         \x20     exec: [\"sh -c 'cat /mnt/ro/setting > /tmp/exec-mark'\"]\n\
         \x20     healthcheck: {{test: [CMD-SHELL, \"test -s /tmp/exec-mark\"], interval: 1, retries: 30}}\n",
        kernel.display()
    );
    let lab = vm_lab("vmffeat", name, &["r1"], &yaml);
    for (path, body) in [
        ("shared/hello", "from the host\n"),
        ("conf/setting", "read-only setting\n"),
        ("note.txt", "a file bind\n"),
        ("startup.cfg", "hostname r1\n"),
    ] {
        let p = lab.dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
    }
    deploy_vms(&lab);

    // Directory binds: read both ways through the rw share, read-only through the ro one.
    assert_eq!(lab.exec_ok("r1", "cat /mnt/rw/hello"), "from the host\n");
    lab.exec_ok("r1", "echo from the guest > /mnt/rw/back");
    assert_eq!(
        std::fs::read_to_string(lab.dir.join("shared/back")).unwrap_or_default(),
        "from the guest\n",
        "a file the guest wrote into the rw bind is not on the host"
    );
    assert_eq!(
        lab.exec_ok("r1", "cat /mnt/ro/setting"),
        "read-only setting\n"
    );
    let out = lab.exec("r1", "touch /mnt/ro/nope");
    assert!(
        !out.status.success() && text(&out.stderr).contains("Read-only file system"),
        "the ro bind is writable: {}",
        describe(&out)
    );
    assert!(!lab.dir.join("conf/nope").exists());
    let mounts = lab.exec_ok("r1", "grep ' 9p ' /proc/mounts");
    assert!(
        mounts.contains("/mnt/rw 9p rw") && mounts.contains("/mnt/ro 9p ro"),
        "/proc/mounts: {mounts}"
    );
    // A file bind, the startup-config, sysctls.
    assert_eq!(lab.exec_ok("r1", "cat /etc/note.txt"), "a file bind\n");
    assert_eq!(
        lab.exec_ok("r1", "cat /etc/labwire/startup-config"),
        "hostname r1\n"
    );
    assert_eq!(
        lab.exec_ok(
            "r1",
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/vm/swappiness"
        ),
        "1\n13\n"
    );
    // exec ran (after the binds were there), and the healthcheck passes in inspect.
    assert_eq!(
        lab.exec_ok("r1", "cat /tmp/exec-mark"),
        "read-only setting\n"
    );
    let v = lab.inspect_json();
    let status = v[name][0]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(status.ends_with("(healthy)"), "inspect status: {v}");

    let out = lab.destroy(false);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&[]);
    assert_eq!(
        std::fs::read_to_string(lab.dir.join("conf/setting")).unwrap_or_default(),
        "read-only setting\n",
        "destroy touched a bind source"
    );
}

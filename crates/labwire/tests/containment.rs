//! Containment (issue 20): labwire runs as root, so each test here sets up what a less trusted
//! local user or a careless topology would (as root), then checks that labwire hands nothing to
//! the user `nobody` (checked with `setpriv --reuid=65534 --regid=65534 --clear-groups`), reads
//! or writes nothing outside the lab, and leaves what it did not make exactly as it was.
//!
//! - lab state, runtime files and the image store are unreachable to other users, including a
//!   set-uid program a node wrote into its layer, and a VM node's initramfs, disk and console;
//! - bind sources and env-files that are links out of the topology's tree, or that the topology's
//!   owner cannot read, are refused; env-files that are devices, FIFOs or too large are refused at
//!   once;
//! - a symbolic link in place of the lab directory is refused and its target stays untouched;
//! - a foreign network namespace with a node's name, a long name that collides with a deployed
//!   lab's node, a container already holding the lab's label, an existing bridge used as the
//!   management bridge and someone else's ssh config all stay as they were;
//! - non-namespaced sysctls, `0.0.0.0/0`/`::/0` and a management subnet over a host route are
//!   refused before anything is made.
//!
//! They run as root. Labs `ct-…`, management subnets 10.231.N.0/24 and fd00:231:N::/64, bridges
//! `ctm-…`; each test cleans up after itself.

mod common;

use std::os::unix::fs::MetadataExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::store::{busybox_rootfs, image_ok, tar_dir};
use common::*;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A lab `name` on its own management network (`ctm-<tag>`, 10.231.`n`.0/24) with its own image
/// store under its directory; `body` is the YAML under `topology:`.
fn ct_lab(test: &str, name: &str, tag: &str, n: u8, nodes: &[&str], body: &str) -> TestLab {
    let bridge = format!("ctm-{tag}");
    let yaml = format!(
        "name: {name}\n\
         mgmt: {{network: ct-{tag}, bridge: {bridge}, ipv4-subnet: 10.231.{n}.0/24, ipv6-subnet: \"fd00:231:{n}::/64\"}}\n\
         topology:\n{body}"
    );
    let mut lab = TestLab::new(test, name, &format!("ct-{tag}"), nodes, &yaml);
    lab.bridge = bridge;
    lab.env.push((
        "LABWIRE_IMAGE_DIR".into(),
        lab.dir.join("store").to_string_lossy().into_owned(),
    ));
    lab
}

/// Import the busybox test image into the lab's store as `ct/busybox:1`.
fn import_busybox(lab: &TestLab) {
    let root = lab.dir.join("rootfs");
    busybox_rootfs(&root, &lab.name);
    let tar = lab.dir.join("rootfs.tar");
    tar_dir(&root, &tar);
    image_ok(
        lab,
        &[
            "import",
            tar.to_str().expect("utf-8"),
            "--name",
            "ct/busybox:1",
        ],
    );
}

/// `args` run as the user nobody, without groups.
fn as_nobody(args: &[&str]) -> Output {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(args);
    run_timeout(c, Duration::from_secs(60))
}

/// Every file and directory below `roots` (as root sees them).
fn walk(roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo: Vec<PathBuf> = roots.to_vec();
    while let Some(p) = todo.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                todo.extend(rd.flatten().map(|e| e.path()));
            }
        }
        out.push(p);
    }
    out
}

/// Panics listing every path of `paths` (regular files and directories) nobody can read or
/// execute; `paths` must not be empty (the check would prove nothing).
fn assert_unreachable_to_nobody(paths: &[PathBuf]) {
    let files: Vec<String> = paths
        .iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file() || m.is_dir()))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert!(files.len() > 5, "too few files to check: {files:?}");
    let mut script = vec![
        "sh",
        "-c",
        "for f in \"$@\"; do if [ -r \"$f\" ]; then echo \"readable $f\"; fi; if [ -f \"$f\" ] && [ -x \"$f\" ]; then echo \"executable $f\"; fi; done",
        "sh",
    ];
    script.extend(files.iter().map(String::as_str));
    let out = as_nobody(&script);
    assert!(
        out.status.success(),
        "the check as nobody failed: {}",
        describe(&out)
    );
    assert!(
        out.stdout.is_empty(),
        "nobody reaches files labwire wrote:\n{}",
        text(&out.stdout)
    );
}

/// An empty directory `/tmp/lwt-ct-<tag>-<pid>` for a test's files.
fn scratch(tag: &str) -> PathBuf {
    let dir = PathBuf::from(format!("/tmp/lwt-ct-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn validate(file: &Path) -> Output {
    let mut c = labwire();
    c.arg("validate").arg("-t").arg(file);
    run_timeout(c, Duration::from_secs(60))
}

fn registered(netns: &str) -> bool {
    Path::new("/run/netns").join(netns).exists()
}

/// Removes a host link when dropped (a bridge a test made).
struct LinkGuard(String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.0]);
    }
}

/// Unregisters a network namespace when dropped (a foreign one a test made).
struct NetnsGuard(String);

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

fn assert_refused_untouched(lab: &TestLab, out: &Output, needle: &str) {
    assert!(
        !out.status.success(),
        "deploy of {} should have been refused: {}",
        lab.name,
        describe(out)
    );
    let err = text(&out.stderr);
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(
        !lab.state_dir().exists(),
        "a refused deploy left {}",
        lab.state_dir().display()
    );
    assert!(
        !host_link_names().contains(&lab.bridge),
        "a refused deploy made bridge {}",
        lab.bridge
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Permissions
// ---------------------------------------------------------------------------------------------

#[test]
fn lab_state_runtime_files_and_image_store_are_unreachable_to_other_users() {
    let body = "  nodes:\n\
                \x20   img: {kind: linux, image: ct/busybox:1, cmd: sleep 100000}\n\
                \x20   host: {kind: linux, cmd: sleep 100000}\n";
    let lab = ct_lab("ct-perm", "ct-perm", "perm", 1, &["img", "host"], body);
    import_busybox(&lab);
    lab.deploy();
    // What a package install inside the node does: a set-uid root program in its layer.
    lab.exec_ok(
        "img",
        "cp /bin/busybox /root/suid && chmod 4755 /root/suid && ls -l /root/suid",
    );
    let upper = lab.state_dir().join("nodes/img/upper/root/suid");
    let meta = std::fs::metadata(&upper)
        .unwrap_or_else(|e| panic!("the node's layer has no {}: {e}", upper.display()));
    assert_eq!(meta.mode() & 0o4000, 0o4000, "the copy is set-uid");
    // nobody cannot run it from the host path (which would give euid 0).
    let out = as_nobody(&[upper.to_str().unwrap(), "id", "-u"]);
    assert!(
        !out.status.success(),
        "nobody ran the node's set-uid program: {}",
        describe(&out)
    );

    let store = lab.dir.join("store");
    let run_dir = PathBuf::from("/run/labwire/run").join(&lab.name);
    for (d, mode) in [
        (PathBuf::from("/var/lib/labwire"), 0o700),
        (PathBuf::from("/var/lib/labwire/labs"), 0o700),
        (lab.state_dir(), 0o700),
        (PathBuf::from("/run/labwire/run"), 0o700),
        (run_dir.clone(), 0o700),
        (store.clone(), 0o700),
    ] {
        let m = std::fs::metadata(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        assert_eq!(m.mode() & 0o777, mode, "mode of {}", d.display());
    }
    let paths = walk(&[lab.state_dir(), run_dir, store.clone()]);
    assert!(paths.contains(&upper), "the walk misses the node's layer");
    assert_unreachable_to_nobody(&paths);
    // Blobs are private even below the private root.
    for p in walk(&[store.join("blobs")]) {
        let m = std::fs::metadata(&p).unwrap();
        if m.is_file() {
            assert_eq!(m.mode() & 0o077, 0, "{} is reachable by mode", p.display());
        }
    }
    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
}

#[test]
fn vm_node_initramfs_disk_and_console_are_private() {
    use common::open_nos::{debian_kernel, ensure_image, IMAGE_DIR};
    require_root();
    ensure_image();
    let kernel = debian_kernel();
    let body = format!(
        "  nodes:\n\
         \x20   vm: {{kind: linux, runtime: vm, image: open-nos:latest, kernel: {}, memory: 512MB,\n\
         \x20         env: {{CT_SECRET: ct-env-secret}}, binds: [secret.txt:/etc/ct-secret]}}\n",
        kernel.display()
    );
    let mut lab = ct_lab("ct-vmperm", "ct-vmperm", "vmperm", 2, &["vm"], &body);
    lab.env.retain(|(k, _)| k != "LABWIRE_IMAGE_DIR");
    lab.env.push(("LABWIRE_IMAGE_DIR".into(), IMAGE_DIR.into()));
    // Stock guest kernels can hang under this host's KVM (see DESIGN.md); TCG always boots.
    lab.env.push(("LABWIRE_VM_ACCEL".into(), "tcg".into()));
    std::fs::write(lab.dir.join("secret.txt"), "ct-bind-secret\n").unwrap();
    let out = run_timeout(lab.deploy_cmd(), Duration::from_secs(900));
    assert!(out.status.success(), "deploy: {}", describe(&out));
    let run_dir = PathBuf::from("/run/labwire/run").join(&lab.name).join("vm");
    let initramfs = run_dir.join("initramfs.cpio");
    let qcow = lab.state_dir().join("nodes/vm/root.qcow2");
    let console = lab.lab_dir().join("vm/console.log");
    for f in [&initramfs, &qcow, &console] {
        let m = std::fs::metadata(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(m.mode() & 0o777, 0o600, "mode of {}", f.display());
    }
    let cpio = std::fs::read(&initramfs).unwrap();
    let has = |needle: &[u8]| cpio.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(b"ct-env-secret") && has(b"ct-bind-secret"),
        "the initramfs carries the node's secrets (so its mode matters)"
    );
    let disks: Vec<PathBuf> = walk(&[Path::new(IMAGE_DIR).join("disks")])
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ext4"))
        .collect();
    assert!(!disks.is_empty(), "no cached disk in {IMAGE_DIR}/disks");
    let mut paths = walk(&[lab.state_dir(), run_dir]);
    paths.push(console);
    paths.extend(disks);
    assert_unreachable_to_nobody(&paths);
    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
}

// ---------------------------------------------------------------------------------------------
// 2. Bind sources and env-files
// ---------------------------------------------------------------------------------------------

#[test]
fn bind_sources_leading_out_of_the_tree_or_unreadable_by_the_owner_are_refused() {
    // A link inside the topology's directory to a file outside it.
    let body = "  nodes:\n\
                \x20   n1: {kind: linux, cmd: sleep 100000, binds: [shadow-link:/etc/x:ro]}\n";
    let lab = ct_lab("ct-bindlink", "ct-bindlink", "bindl", 3, &["n1"], body);
    std::os::unix::fs::symlink("/etc/shadow", lab.dir.join("shadow-link")).unwrap();
    let out = lab.try_deploy();
    assert_refused_untouched(
        &lab,
        &out,
        "symbolic link leading out of the topology's directory",
    );
    assert!(
        !lab.lab_dir().exists(),
        "a refused deploy made the lab directory"
    );

    // A topology written by nobody naming a file nobody cannot read.
    let body = "  nodes:\n\
                \x20   n1: {kind: linux, cmd: sleep 100000, binds: [/etc/shadow:/tmp/ct-x:ro]}\n";
    let lab = ct_lab("ct-bindown", "ct-bindown", "bindo", 4, &["n1"], body);
    std::os::unix::fs::chown(&lab.file, Some(65534), Some(65534)).unwrap();
    let out = lab.try_deploy();
    assert_refused_untouched(&lab, &out, "cannot be read by uid 65534");
    // The same topology from root deploys (the check follows the owner).
    std::os::unix::fs::chown(&lab.file, Some(0), Some(0)).unwrap();
    lab.deploy();
    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));

    // The kernel decides, ACLs included: a root-only file granted to nobody by an ACL is
    // accepted, and a world-readable file whose ACL denies nobody is refused.
    let setfacl = |args: &[&str]| {
        let st = Command::new("setfacl")
            .args(args)
            .status()
            .expect("setfacl");
        assert!(st.success(), "setfacl {args:?}");
    };
    let granted = lab.dir.join("granted.conf");
    std::fs::write(&granted, "granted\n").unwrap();
    std::fs::set_permissions(&granted, std::fs::Permissions::from_mode(0o600)).unwrap();
    setfacl(&["-m", "u:65534:r", granted.to_str().unwrap()]);
    let denied = lab.dir.join("denied.conf");
    std::fs::write(&denied, "denied\n").unwrap();
    std::fs::set_permissions(&denied, std::fs::Permissions::from_mode(0o644)).unwrap();
    setfacl(&["-m", "u:65534:-", denied.to_str().unwrap()]);
    let acl_body = |src: &str| {
        format!(
            "  nodes:\n    n1: {{kind: linux, cmd: sleep 100000, binds: [{src}:/tmp/ct-x:ro]}}\n"
        )
    };
    let lab = ct_lab(
        "ct-bindacl",
        "ct-bindacl",
        "bindo",
        4,
        &["n1"],
        &acl_body(denied.to_str().unwrap()),
    );
    std::os::unix::fs::chown(&lab.file, Some(65534), Some(65534)).unwrap();
    let out = lab.try_deploy();
    assert_refused_untouched(&lab, &out, "cannot be read by uid 65534");
    let lab = ct_lab(
        "ct-bindacl",
        "ct-bindacl",
        "bindo",
        4,
        &["n1"],
        &acl_body(granted.to_str().unwrap()),
    );
    std::os::unix::fs::chown(&lab.file, Some(65534), Some(65534)).unwrap();
    lab.deploy();
    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
}

#[test]
fn env_files_are_bounded_and_read_with_the_owners_rights() {
    let dir = scratch("envf");
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let big = dir.join("big.env");
    std::fs::write(&big, "A=".to_string() + &"x".repeat(2 << 20)).unwrap();
    for (src, needle) in [
        ("/dev/zero", "not a regular file"),
        (fifo.to_str().unwrap(), "not a regular file"),
        (big.to_str().unwrap(), "the most an env file may hold"),
    ] {
        let file = dir.join("topo.clab.yml");
        std::fs::write(
            &file,
            format!("name: ct-envf\ntopology:\n  nodes:\n    n1:\n      kind: linux\n      env-files: [{src}]\n"),
        )
        .unwrap();
        let t = Instant::now();
        let out = validate(&file);
        let took = t.elapsed();
        assert!(!out.status.success(), "{src} validated: {}", describe(&out));
        let err = text(&out.stderr);
        assert!(err.contains(needle) && err.contains(src), "{src}: {err}");
        assert!(
            err.contains("topo.clab.yml:6:"),
            "{src}: no location in {err}"
        );
        assert!(took < Duration::from_secs(2), "{src} took {took:?}");
    }
    // Read with the topology owner's rights: a link out of the topology's directory, and a file
    // the owner (nobody) cannot read, are refused.
    std::os::unix::fs::symlink("/etc/shadow", dir.join("link.env")).unwrap();
    let file = dir.join("topo.clab.yml");
    for (src, owner, needle) in [
        (
            "link.env",
            0,
            "symbolic link leading out of the topology's directory",
        ),
        ("/etc/shadow", 65534, "cannot be read by uid 65534"),
    ] {
        std::fs::write(
            &file,
            format!("name: ct-envf\ntopology:\n  nodes:\n    n1:\n      kind: linux\n      env-files: [{src}]\n"),
        )
        .unwrap();
        std::os::unix::fs::chown(&file, Some(owner), Some(owner)).unwrap();
        let out = validate(&file);
        assert!(!out.status.success(), "{src} validated: {}", describe(&out));
        let err = text(&out.stderr);
        assert!(
            err.contains(needle) && !err.contains("root:"),
            "{src}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// 3. The lab directory
// ---------------------------------------------------------------------------------------------

#[test]
fn a_symlinked_lab_directory_is_refused_and_its_target_untouched() {
    let body = "  nodes:\n    n1: {kind: linux, cmd: sleep 100000}\n";
    let lab = ct_lab("ct-symlink", "ct-symlink", "syml", 5, &["n1"], body);
    // Stands for /etc or someone's ~/.ssh.
    let target = lab.dir.join("victim");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("keep"), "mine\n").unwrap();
    std::os::unix::fs::symlink(&target, lab.lab_dir()).unwrap();
    let out = lab.try_deploy();
    assert_refused_untouched(&lab, &out, "is a symbolic link");
    let left: Vec<_> = std::fs::read_dir(&target)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("keep")],
        "written into the link's target"
    );
    assert!(
        std::fs::symlink_metadata(lab.lab_dir())
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced"
    );
    // destroy --cleanup leaves the link's target alone too.
    let _ = lab.destroy(true);
    assert_eq!(
        std::fs::read_to_string(target.join("keep")).unwrap(),
        "mine\n"
    );

    // A node directory that is a link is refused the same way.
    let _ = std::fs::remove_file(lab.lab_dir());
    std::fs::create_dir_all(lab.lab_dir()).unwrap();
    std::os::unix::fs::symlink(&target, lab.lab_dir().join("n1")).unwrap();
    let out = lab.try_deploy();
    assert_refused_untouched(&lab, &out, "node n1: its directory");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 1);
}

// ---------------------------------------------------------------------------------------------
// 4. Foreign objects
// ---------------------------------------------------------------------------------------------

#[test]
fn a_foreign_netns_with_a_node_name_is_refused_and_kept() {
    let body = "  nodes:\n    n1: {kind: linux, cmd: sleep 100000}\n";
    let lab = ct_lab("ct-fns", "ct-fns", "fns", 6, &["n1"], body);
    let name = lab.netns("n1");
    let _g = NetnsGuard(name.clone());
    run_ok({
        let mut c = Command::new("ip");
        c.args(["netns", "add", &name]);
        c
    });
    let ino = std::fs::metadata(Path::new("/run/netns").join(&name))
        .unwrap()
        .ino();
    let out = lab.try_deploy();
    assert_refused_untouched(&lab, &out, "already exists and is not this lab's");
    let _ = lab.destroy(true);
    assert!(registered(&name), "the foreign namespace was unregistered");
    assert_eq!(
        std::fs::metadata(Path::new("/run/netns").join(&name))
            .unwrap()
            .ino(),
        ino
    );

    // A journal whose entry names another namespace (the foreign one took the name after this
    // lab's registration failed or was removed): destroy keeps it.
    let dir = lab.state_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("journal"),
        format!(
            "{{\"op\":\"netns\",\"name\":\"{name}\",\"ino\":{}}}\n",
            ino + 1
        ),
    )
    .unwrap();
    let out = lab.destroy(false);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    assert!(
        registered(&name),
        "destroy removed a namespace it did not make"
    );
}

#[test]
fn a_long_name_colliding_with_a_deployed_lab_is_refused() {
    let body = "  nodes:\n    x-n1: {kind: linux, cmd: sleep 100000}\n";
    let first = ct_lab("ct-coll1", "ct-a", "colla", 7, &["x-n1"], body);
    first.deploy();
    let body = "  nodes:\n    n1: {kind: linux, cmd: sleep 100000}\n";
    let second = ct_lab("ct-coll2", "ct-a-x", "collb", 8, &["n1"], body);
    assert_eq!(first.netns("x-n1"), second.netns("n1"));
    let out = second.try_deploy();
    assert_refused_untouched(&second, &out, "is already node x-n1 of deployed lab ct-a");
    let _ = second.destroy(true);
    // The first lab is intact.
    assert!(registered(&first.netns("x-n1")));
    first.exec_ok("x-n1", "true");
    let out = first.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    assert!(!registered(&first.netns("x-n1")));
}

#[test]
fn a_container_already_holding_the_lab_label_survives_deploy_and_destroy() {
    require_root();
    DOCKER.ensure_running();
    let image = "lwt-busybox:latest";
    DOCKER.ensure_busybox_image(image);
    let lab_name = "ct-409";
    let long = format!("clab-{lab_name}-n1");
    let _ = DOCKER.run(&["rm", "-f", &long]);
    let id = DOCKER.ok(&[
        "run",
        "-d",
        "--name",
        &long,
        "--label",
        &format!("containerlab={lab_name}"),
        "--network",
        "none",
        image,
        "sleep",
        "100000",
    ]);
    let id = id.trim().to_string();
    struct Rm(String);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = DOCKER.run(&["rm", "-f", &self.0]);
        }
    }
    let _rm = Rm(id.clone());
    let body = format!("  nodes:\n    n1: {{kind: linux, runtime: docker, image: \"{image}\"}}\n");
    let lab = ct_lab("ct-409", lab_name, "c409", 9, &["n1"], &body);
    let out = lab.try_deploy();
    assert!(
        !out.status.success(),
        "deploy over a foreign container: {}",
        describe(&out)
    );
    let still = DOCKER.ok(&["inspect", "-f", "{{.Id}} {{.State.Running}}", &long]);
    assert_eq!(
        still.trim(),
        format!("{id} true"),
        "the rollback touched the container"
    );
    // By topology file: the rolled-back lab is not recorded, so `destroy --name` would refuse it;
    // destroy from the file must still leave the foreign container alone.
    let mut c = lab.cmd();
    c.args(["destroy", "--cleanup", "-t"]).arg(&lab.file);
    let out = run_timeout(c, Duration::from_secs(120));
    assert!(out.status.success(), "destroy: {}", describe(&out));
    let still = DOCKER.ok(&["inspect", "-f", "{{.Id}} {{.State.Running}}", &long]);
    assert_eq!(
        still.trim(),
        format!("{id} true"),
        "destroy removed the container"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Host changes
// ---------------------------------------------------------------------------------------------

/// `ip -j addr show dev DEV` as sorted `addr/prefix` strings (link-local IPv6 left out: the
/// kernel adds it when the bridge comes up).
fn addresses(dev: &str) -> Vec<String> {
    let v = ip_json(&["-j", "addr", "show", "dev", dev]);
    let mut out: Vec<String> = v[0]["addr_info"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["scope"] != "link")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    out.sort();
    out
}

#[test]
fn an_existing_bridge_and_someone_elses_ssh_config_are_left_as_they_were() {
    require_root();
    // Two bridges someone else made, both down: one named as the management bridge, one by a
    // bridge node.
    let (bridge, node_bridge) = ("ctfbr0", "ctfbr1");
    let mut guards = Vec::new();
    for br in [bridge, node_bridge] {
        let _ = ip(&["link", "del", br]);
        guards.push(LinkGuard(br.into()));
        run_ok({
            let mut c = Command::new("ip");
            c.args(["link", "add", br, "type", "bridge"]);
            c
        });
        assert!(!link_is_up(br), "a new bridge {br} is down");
    }
    run_ok({
        let mut c = Command::new("ip");
        c.args(["addr", "add", "10.231.11.254/24", "dev", bridge]);
        c
    });
    let before = addresses(bridge);
    let body = format!(
        "  nodes:\n    n1: {{kind: linux, cmd: sleep 100000}}\n    {node_bridge}: {{kind: bridge}}\n  links:\n    - endpoints: [n1:eth1, {node_bridge}:ctfbr1p1]\n"
    );
    let mut lab = TestLab::new(
        "ct-fbr",
        "ct-fbr",
        "ct-fbr",
        &["n1"],
        &format!(
            "name: ct-fbr\nmgmt: {{network: ct-fbr, bridge: {bridge}, ipv4-subnet: 10.231.10.0/24, ipv6-subnet: \"fd00:231:10::/64\"}}\ntopology:\n{body}"
        ),
    );
    lab.bridge = bridge.into();
    let ssh_dir = lab.dir.join("ssh_config.d");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let foreign = ssh_dir.join("clab-ct-fbr.conf");
    std::fs::write(&foreign, "Host mine\n  User someone\n").unwrap();
    std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
    lab.env.push((
        "LABWIRE_SSH_CONFIG_DIR".into(),
        ssh_dir.to_string_lossy().into_owned(),
    ));
    lab.deploy();
    let during = addresses(bridge);
    assert!(
        during.contains(&"10.231.10.1/24".to_string()),
        "the gateway address is on the bridge: {during:?}"
    );
    for br in [bridge, node_bridge] {
        assert!(link_is_up(br), "deploy brought {br} up");
    }
    // On a bridge labwire did not make (it may snoop multicast), the node's port stays in the
    // default group, out of the management network's flood filter.
    let ports = ip_json(&["-d", "-j", "link", "show", "master", bridge]);
    let ports = ports.as_array().expect("ip -j output");
    assert_eq!(ports.len(), 1, "ports of {bridge}: {ports:?}");
    assert_eq!(ports[0]["group"], "default", "{}", ports[0]);
    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    assert!(
        host_link_names().contains(bridge),
        "destroy removed the bridge"
    );
    assert_eq!(
        addresses(bridge),
        before,
        "the bridge's addresses after destroy"
    );
    assert_eq!(
        std::fs::read_to_string(&foreign).unwrap(),
        "Host mine\n  User someone\n",
        "the foreign ssh config changed"
    );
    assert_eq!(std::fs::metadata(&foreign).unwrap().uid(), 65534);
    for br in [bridge, node_bridge] {
        assert!(
            !link_is_up(br),
            "destroy left {br} up, as it was not before"
        );
    }
}

/// Whether host link `dev` is administratively up.
fn link_is_up(dev: &str) -> bool {
    let v = ip_json(&["-j", "link", "show", "dev", dev]);
    v[0]["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "UP"))
}

#[test]
fn non_namespaced_sysctls_and_default_route_subnets_are_refused() {
    let dir = scratch("sysctl");
    let file = dir.join("topo.clab.yml");
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    for (key, ok) in [
        ("kernel.pid_max", false),
        ("vm.swappiness", false),
        ("fs.file-max", false),
        ("kernel.shmmax", true),
        ("kernel.hostname", true),
        ("net.ipv4.ip_forward", true),
    ] {
        std::fs::write(
            &file,
            format!("name: ct-sysctl\ntopology:\n  nodes:\n    n1:\n      kind: linux\n      sysctls:\n        {key}: \"1\"\n"),
        )
        .unwrap();
        let out = validate(&file);
        assert_eq!(out.status.success(), ok, "{key}: {}", describe(&out));
        if !ok {
            let err = text(&out.stderr);
            assert!(
                err.contains(&format!("sysctl `{key}` of node n1 is not namespaced"))
                    && err.contains("topo.clab.yml:7:"),
                "{key}: {err}"
            );
        }
        // The same key on a VM node goes to the guest's kernel.
        std::fs::write(
            &file,
            format!("name: ct-sysctl\ntopology:\n  nodes:\n    n1:\n      kind: linux\n      runtime: vm\n      image: x\n      sysctls:\n        {key}: \"1\"\n"),
        )
        .unwrap();
        let out = validate(&file);
        assert!(
            out.status.success(),
            "{key} on a vm node: {}",
            describe(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap(),
        pid_max
    );
    for (k, v, needle) in [
        ("ipv4-subnet", "0.0.0.0/0", "covers every IPv4 address"),
        ("ipv6-subnet", "\"::/0\"", "covers every IPv6 address"),
    ] {
        std::fs::write(
            &file,
            format!("name: ct-sysctl\nmgmt:\n  {k}: {v}\ntopology:\n  nodes:\n    n1: {{kind: linux}}\n"),
        )
        .unwrap();
        let out = validate(&file);
        assert!(!out.status.success(), "{v}: {}", describe(&out));
        let err = text(&out.stderr);
        assert!(
            err.contains(needle) && err.contains("topo.clab.yml:3:"),
            "{v}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_mgmt_subnet_over_a_host_route_is_refused_before_anything() {
    require_root();
    let other = "ctrt0";
    let _ = ip(&["link", "del", other]);
    let _g = LinkGuard(other.into());
    for args in [
        vec!["link", "add", other, "type", "bridge"],
        vec!["addr", "add", "10.231.12.1/24", "dev", other],
        vec!["link", "set", other, "up"],
    ] {
        let mut c = Command::new("ip");
        c.args(&args);
        run_ok(c);
    }
    let body = "  nodes:\n    n1: {kind: linux, cmd: sleep 100000}\n";
    let lab = ct_lab("ct-route", "ct-route", "route", 12, &["n1"], body);
    let out = lab.try_deploy();
    assert_refused_untouched(
        &lab,
        &out,
        "overlaps the host's route 10.231.12.0/24 on ctrt0",
    );
    assert_eq!(addresses(other), vec!["10.231.12.1/24".to_string()]);
}

// ---------------------------------------------------------------------------------------------
// 6. Unbounded inputs: the image store
// ---------------------------------------------------------------------------------------------

/// Disk blocks under `dir` (what `du` counts), in bytes.
fn disk_usage(dir: &Path) -> u64 {
    walk(&[dir.to_path_buf()])
        .iter()
        .filter_map(|p| std::fs::symlink_metadata(p).ok())
        .map(|m| m.blocks() * 512)
        .sum()
}

#[test]
fn image_store_writes_holes_caps_unpacked_size_and_sweeps_killed_imports() {
    require_root();
    let dir = scratch("img");
    std::fs::create_dir_all(dir.join("root")).unwrap();
    let store = dir.join("store");
    let image = |args: &[&str], extra: &[(&str, &str)]| {
        let mut c = labwire();
        c.env("LABWIRE_IMAGE_DIR", &store).arg("image").args(args);
        for (k, v) in extra {
            c.env(k, v);
        }
        run_timeout(c, Duration::from_secs(300))
    };

    // A 40 GiB sparse file with 4 bytes of data: a 10 KB tar.
    let root = dir.join("root");
    std::fs::write(root.join("small"), "hello\n").unwrap();
    let f = std::fs::File::create(root.join("sparse")).unwrap();
    f.set_len(40 << 30).unwrap();
    std::os::unix::fs::FileExt::write_at(&f, b"data", 1 << 20).unwrap();
    drop(f);
    let tar = dir.join("sparse.tar");
    run_ok({
        let mut c = Command::new("tar");
        c.args(["--format=gnu", "--sparse", "-cf"])
            .arg(&tar)
            .arg("-C")
            .arg(&root)
            .arg(".");
        c
    });
    assert!(std::fs::metadata(&tar).unwrap().len() < 1 << 20);
    // 40 GiB is over the default cap (32 GiB, holes count: a VM disk holds them whole).
    let out = image(
        &["import", tar.to_str().unwrap(), "--name", "ct/sparse:1"],
        &[],
    );
    assert!(
        !out.status.success()
            && text(&out.stderr).contains("unpacks to more than 34359738368 bytes"),
        "sparse import over the default cap: {}",
        describe(&out)
    );
    let out = image(
        &["import", tar.to_str().unwrap(), "--name", "ct/sparse:1"],
        &[("LABWIRE_IMAGE_MAX_UNPACKED", "64G")],
    );
    assert!(out.status.success(), "sparse import: {}", describe(&out));
    let used = disk_usage(&store.join("layers"));
    assert!(
        used < 16 << 20,
        "the sparse layer takes {used} bytes of disk"
    );
    let out = image(&["ls"], &[]);
    let ls = text(&out.stdout);
    assert!(
        ls.contains("UNPACKED") && ls.contains("42949.7MB"),
        "image ls: {ls}"
    );

    // A gzip bomb: 256 MiB of one byte, a few hundred KB compressed, against a 64 MiB cap.
    let _ = std::fs::remove_file(root.join("sparse"));
    std::fs::write(root.join("bomb"), vec![b'a'; 256 << 20]).unwrap();
    let bomb = dir.join("bomb.tar.gz");
    run_ok({
        let mut c = Command::new("tar");
        c.arg("-czf").arg(&bomb).arg("-C").arg(&root).arg(".");
        c
    });
    let big_tar = dir.join("bomb.tar");
    run_ok({
        let mut c = Command::new("tar");
        c.arg("-cf").arg(&big_tar).arg("-C").arg(&root).arg(".");
        c
    });
    let _ = std::fs::remove_file(root.join("bomb"));
    assert!(std::fs::metadata(&bomb).unwrap().len() < 2 << 20);
    let out = image(
        &["import", bomb.to_str().unwrap(), "--name", "ct/bomb:1"],
        &[("LABWIRE_IMAGE_MAX_UNPACKED", "64M")],
    );
    assert!(
        !out.status.success(),
        "the bomb was imported: {}",
        describe(&out)
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("unpacks to more than 67108864 bytes")
            && err.contains("LABWIRE_IMAGE_MAX_UNPACKED"),
        "{err}"
    );
    assert!(!text(&image(&["ls"], &[]).stdout).contains("ct/bomb"));

    // Devices and FIFOs are refused at once.
    let t = Instant::now();
    let out = image(&["import", "/dev/zero", "--name", "ct/zero:1"], &[]);
    assert!(
        !out.status.success() && text(&out.stderr).contains("not a regular file"),
        "{}",
        describe(&out)
    );
    assert!(t.elapsed() < Duration::from_secs(5));

    // An import killed midway leaves residue in tmp/ that the next store operation removes.
    let tmp = store.join("tmp");
    let mut child = {
        let mut c = labwire();
        c.env("LABWIRE_IMAGE_DIR", &store)
            .args([
                "image",
                "import",
                big_tar.to_str().unwrap(),
                "--name",
                "ct/killed:1",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c.spawn().unwrap()
    };
    let residue = poll(Duration::from_secs(60), || {
        (disk_usage(&tmp) > 8 << 20)
            .then_some(())
            .ok_or_else(|| "no residue yet".to_string())
    });
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        residue.is_ok(),
        "the import wrote nothing to tmp/ before it ended"
    );
    assert!(disk_usage(&tmp) > 8 << 20, "no residue to sweep");
    let out = image(&["ls"], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        left.is_empty(),
        "residue after the next store operation: {left:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// 7. Names, 8. warnings
// ---------------------------------------------------------------------------------------------

#[test]
fn names_the_kernel_refuses_fail_validate_and_destroy_copes_with_them() {
    let dir = scratch("names");
    let file = dir.join("topo.clab.yml");
    let lab = format!("ct-{}", "l".repeat(120));
    let node = "n".repeat(128);
    std::fs::write(
        &file,
        format!("name: {lab}\ntopology:\n  nodes:\n    {node}: {{kind: linux}}\n    n2:\n      kind: linux\n      hostname: {}\n", "h".repeat(65)),
    )
    .unwrap();
    let out = validate(&file);
    assert!(!out.status.success(), "{}", describe(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("has 257 bytes; as a network namespace name it can have at most 255")
            && err.contains("topo.clab.yml:4:5"),
        "{err}"
    );
    assert!(
        err.contains("has 65 bytes; Linux takes at most 64") && err.contains("topo.clab.yml:7:"),
        "{err}"
    );

    // A lab recorded by an earlier labwire with such a name can still be destroyed.
    let name = "ct-nametoolong";
    let state = PathBuf::from("/var/lib/labwire/labs").join(name);
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("journal"),
        format!(
            "{{\"op\":\"netns\",\"name\":\"clab-{name}-{}\"}}\n",
            "x".repeat(260)
        ),
    )
    .unwrap();
    let mut c = labwire();
    c.args(["destroy", "--name", name]);
    let out = run_timeout(c, Duration::from_secs(60));
    assert!(out.status.success(), "destroy: {}", describe(&out));
    assert!(!state.exists(), "destroy left {}", state.display());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn duplicate_macs_and_a_node_named_host_are_warned_about() {
    let dir = scratch("warn");
    let file = dir.join("topo.clab.yml");
    std::fs::write(
        &file,
        "name: ct-warn\ntopology:\n  nodes:\n    host: {kind: linux}\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n\
         \x20   - type: veth\n      endpoints:\n        - {node: a, interface: e1, mac: \"02:00:00:00:00:01\"}\n        - {node: b, interface: e1, mac: \"02:00:00:00:00:01\"}\n",
    )
    .unwrap();
    let out = validate(&file);
    assert!(out.status.success(), "{}", describe(&out));
    let all = text(&out.stderr) + &text(&out.stdout);
    assert!(
        all.contains("a node named `host`") && all.contains("topo.clab.yml:4:5"),
        "{all}"
    );
    assert!(
        all.contains("MAC 02:00:00:00:00:01 of b:e1 is also the MAC of a:e1"),
        "{all}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! Labs with their own image store, the busybox test image and `labwire image` commands, shared
//! by the image tests (`images.rs`, `pull.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::*;

/// The busybox applets linked into the test image's /bin.
pub const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "ip", "ping", "ps", "sleep", "hostname", "id", "touch", "env",
    "grep", "test", "readlink", "wc", "mkdir", "mount", "tr", "cut", "pwd", "rm",
];

/// What the test image's /etc/motd holds (a file only in the image).
pub const MOTD: &str = "labwire test image";

/// `tar -cf out -C dir .` with root ownership.
pub fn tar_dir(dir: &Path, out: &Path) {
    let mut c = Command::new("tar");
    c.args(["--numeric-owner", "--owner=0", "--group=0", "-cf"])
        .arg(out)
        .arg("-C")
        .arg(dir)
        .arg(".");
    run_ok(c);
}

/// A busybox root file system under `root`: /bin/busybox and its applets, /etc/passwd with `root`
/// and `lw` (uid 1000), /etc/group, /etc/motd, and the usual empty directories; /etc/lwt-image
/// holds `tag`, so images of different tests (or variants within one) never share an id: labwire
/// resolves a deployed lab's image references in whatever store `image rm` opens (see
/// `rm_refused_for_the_image_a_lab_runs_after_a_retag`).
pub fn busybox_rootfs(root: &Path, tag: &str) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.is_file(),
        "/bin/busybox is missing: install Debian's busybox-static package (scripts/test does)"
    );
    for d in [
        "bin", "etc", "root", "srv", "tmp", "proc", "sys", "dev", "home/lw",
    ] {
        std::fs::create_dir_all(root.join(d)).expect("create a rootfs directory");
    }
    std::fs::copy(busybox, root.join("bin/busybox")).expect("copy busybox");
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).expect("link an applet");
    }
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nlw:x:1000:1000:lw:/home/lw:/bin/sh\n",
        ),
        ("etc/group", "root:x:0:\nlw:x:1000:\n"),
        ("etc/motd", &format!("{MOTD}\n")),
        ("etc/lwt-image", &format!("{tag}\n")),
    ];
    for (p, t) in files {
        std::fs::write(root.join(p), t).expect("write a rootfs file");
    }
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))
        .expect("chmod /tmp");
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A lab `name` (`lwt-XN`) on its own management network (bridge `lwtm-XN`, 10.<n>.0.0/24,
/// fd00:<n>::/64) with its own image store `<dir>/store`; `body` is the YAML under `topology:`.
pub fn store_lab(test: &str, name: &str, n: u16, nodes: &[&str], body: &str) -> TestLab {
    require_root();
    let bridge = format!("lwtm-{}", name.trim_start_matches("lwt-"));
    let dir = PathBuf::from(format!("/tmp/lwt-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test directory");
    let file = dir.join(format!("{name}.clab.yml"));
    let yaml = topo_yaml(name, &bridge, n, body);
    std::fs::write(&file, yaml).expect("write the topology");
    let lab = TestLab {
        name: name.into(),
        dir: dir.clone(),
        file,
        bridge,
        nodes: nodes.iter().map(|s| s.to_string()).collect(),
        env: vec![(
            "LABWIRE_IMAGE_DIR".into(),
            dir.join("store").to_string_lossy().into_owned(),
        )],
    };
    lab.destroy_quietly();
    lab
}

pub fn topo_yaml(name: &str, bridge: &str, n: u16, body: &str) -> String {
    format!(
        "name: {name}\n\
         mgmt: {{network: {name}, bridge: {bridge}, ipv4-subnet: 10.{n}.0.0/24, ipv6-subnet: \"fd00:{n}::/64\"}}\n\
         topology:\n{body}"
    )
}

/// `labwire image ARGS` with the lab's image store.
pub fn image_cmd(lab: &TestLab, args: &[&str]) -> Output {
    let mut c = lab.cmd();
    c.arg("image").args(args);
    run_timeout(c, Duration::from_secs(120))
}

pub fn image_ok(lab: &TestLab, args: &[&str]) -> Output {
    let out = image_cmd(lab, args);
    assert!(
        out.status.success(),
        "labwire image {args:?} failed: {}",
        describe(&out)
    );
    out
}

/// `image ls --format json`.
pub fn image_list(lab: &TestLab) -> Vec<Value> {
    let out = image_ok(lab, &["ls", "--format", "json"]);
    match serde_json::from_slice(&out.stdout) {
        Ok(Value::Array(a)) => a,
        r => panic!(
            "image ls --format json printed no JSON array ({r:?}): {}",
            describe(&out)
        ),
    }
}

/// The listed image with a name that is `name` or ends in `/name` (`lwt/bb:1` matches
/// `docker.io/lwt/bb:1`).
pub fn listed<'a>(images: &'a [Value], name: &str) -> Option<&'a Value> {
    let suffix = format!("/{name}");
    images.iter().find(|i| {
        i["names"].as_array().into_iter().flatten().any(|n| {
            n.as_str()
                .is_some_and(|n| n == name || n.ends_with(&suffix))
        })
    })
}

/// Lines of the host's mountinfo naming `needle`.
pub fn host_mounts_with(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read mountinfo")
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Destroy with --cleanup and check nothing of the lab is left (netns, links, mounts, inits, state
/// directory), nor any host mount naming the lab's state or run directory.
pub fn destroy_and_check(lab: &TestLab) {
    let out = lab.destroy(true);
    assert!(
        out.status.success(),
        "destroy of {} failed: {}",
        lab.name,
        describe(&out)
    );
    lab.assert_nothing_left(&[]);
    let state = lab.state_dir().to_string_lossy().into_owned();
    let run = lab::paths::lab_run_dir(&lab.name)
        .to_string_lossy()
        .into_owned();
    for needle in [&state, &run] {
        let m = host_mounts_with(needle);
        assert!(
            m.is_empty(),
            "lab {}: mounts remain after destroy: {m:#?}",
            lab.name
        );
    }
    assert!(
        !lab.state_dir().exists(),
        "{} remains after destroy",
        lab.state_dir().display()
    );
}

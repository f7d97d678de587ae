//! End-to-end tests of native nodes started from images: `labwire image import` of a plain rootfs
//! tarball, a `docker save` archive and an OCI layout (directory and tar), `image ls/inspect/rm`,
//! nodes on overlay roots (isolation, the image's Env/Cmd/WorkingDir/User and the node's overrides,
//! binds), a missing image refused before anything is touched, and destroy leaving nothing behind.
//!
//! The image is busybox (Debian's `busybox-static`, `/bin/busybox` on the host) in a rootfs each
//! test builds itself; the docker-save and OCI variants are assembled by hand (sha256 computed
//! here). Every test has its own lab (`lwt-i…`), management network and bridge (`lwtm-i…`),
//! subnet (10.24x.0.0/24, fd00:24x::/64), temp directory, and image store (`LABWIRE_IMAGE_DIR`
//! on every labwire call), and a drop guard that destroys the lab with `--cleanup`.
//!
//! They run as root. Run `cargo build` (same profile and target directory) first: labwire-init
//! must sit next to the labwire binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::store::*;
use common::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Images built by the tests
// ---------------------------------------------------------------------------------------------

/// The bytes of a tar of `dir`, made in `scratch`.
fn tar_bytes(dir: &Path, scratch: &Path) -> Vec<u8> {
    let out = scratch.join(format!(
        "{}.tar",
        dir.file_name().unwrap().to_string_lossy()
    ));
    tar_dir(dir, &out);
    std::fs::read(&out).expect("read the tar")
}

fn gzip(data: &[u8], scratch: &Path) -> Vec<u8> {
    let p = scratch.join("gzip-input");
    std::fs::write(&p, data).expect("write gzip input");
    let mut c = Command::new("gzip");
    c.args(["-n", "-c"]).arg(&p);
    run_ok(c).stdout
}

fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).expect("create a parent directory");
    }
    std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// An image config document (Docker's and OCI's shape) for uncompressed layer tars `layers`.
fn config_json(layers: &[&[u8]], config: Value) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha256_hex(l)))
        .collect();
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("serialise a config")
}

/// A `docker save` archive (legacy layout: manifest.json, <config>.json, <id>/layer.tar) tagged
/// `tag`, written to `out`.
fn docker_save(scratch: &Path, out: &Path, tag: &str, layers: &[&[u8]], config: Value) {
    let root = scratch.join("docker-save");
    std::fs::create_dir_all(&root).expect("create the docker-save directory");
    let cfg = config_json(layers, config);
    let cfg_name = format!("{}.json", sha256_hex(&cfg));
    write(&root.join(&cfg_name), &cfg);
    let mut layer_names = Vec::new();
    for l in layers {
        let name = format!("{}/layer.tar", sha256_hex(l));
        write(&root.join(&name), l);
        layer_names.push(name);
    }
    let manifest = json!([{"Config": cfg_name, "RepoTags": [tag], "Layers": layer_names}]);
    write(
        &root.join("manifest.json"),
        &serde_json::to_vec(&manifest).unwrap(),
    );
    tar_dir(&root, out);
}

/// An OCI image layout in directory `dir`: gzip-compressed layers, the manifest named `name` by
/// the `io.containerd.image.name` annotation (and the tag by `org.opencontainers.image.ref.name`).
fn oci_layout(scratch: &Path, dir: &Path, name: &str, layers: &[&[u8]], config: Value) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("create blobs/sha256");
    let blob = |data: &[u8]| -> (String, usize) {
        let hex = sha256_hex(data);
        write(&blobs.join(&hex), data);
        (format!("sha256:{hex}"), data.len())
    };
    let cfg = config_json(layers, config);
    let (cfg_digest, cfg_size) = blob(&cfg);
    let mut layer_descs = Vec::new();
    for l in layers {
        let (d, size) = blob(&gzip(l, scratch));
        layer_descs.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": d,
            "size": size,
        }));
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cfg_digest,
            "size": cfg_size,
        },
        "layers": layer_descs,
    }))
    .unwrap();
    let (m_digest, m_size) = blob(&manifest);
    let tag = name.rsplit_once(':').map_or("latest", |(_, t)| t);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m_digest,
            "size": m_size,
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    });
    write(
        &dir.join("index.json"),
        &serde_json::to_vec(&index).unwrap(),
    );
    write(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
}

// ---------------------------------------------------------------------------------------------
// Labs and labwire image commands
// ---------------------------------------------------------------------------------------------

fn import(lab: &TestLab, file: &Path, name: Option<&str>) -> Output {
    let f = file.to_string_lossy().into_owned();
    let mut args = vec!["import", f.as_str()];
    if let Some(n) = name {
        args.extend(["--name", n]);
    }
    image_ok(lab, &args)
}

fn inspect(lab: &TestLab, reference: &str) -> Value {
    let out = image_ok(lab, &["inspect", reference]);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("image inspect printed no JSON ({e}): {}", describe(&out)))
}

/// Build the busybox rootfs in the lab's dir, tar it and import it as `name`.
fn import_busybox(lab: &TestLab, name: &str) {
    import_busybox_variant(lab, name, "");
}

/// [`import_busybox`] of a variant of the image (`/etc/lwt-image` holds the lab and `variant`).
fn import_busybox_variant(lab: &TestLab, name: &str, variant: &str) {
    let root = lab.dir.join(format!("rootfs{variant}"));
    busybox_rootfs(&root, &format!("{} {variant}", lab.name));
    let tarball = lab.dir.join(format!("rootfs{variant}.tar"));
    tar_dir(&root, &tarball);
    let out = import(lab, &tarball, Some(name));
    assert!(
        text(&out.stdout).contains("imported"),
        "import printed {}",
        describe(&out)
    );
}

/// `cmd` in `node`, which must fail.
fn sh_fails(lab: &TestLab, node: &str, cmd: &str, why: &str) {
    let out = lab.exec(node, cmd);
    assert!(
        !out.status.success(),
        "lab {}: `{cmd}` in {node} succeeded, but {why}: {}",
        lab.name,
        describe(&out)
    );
}

/// The pid of the labwire-init of `node`.
fn init_pid(lab: &TestLab, node: &str) -> String {
    let want = format!(" --node {node} ");
    live_inits(&lab.name)
        .into_iter()
        .find(|l| l.contains(&want))
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| panic!("lab {}: no live labwire-init for node {node}", lab.name))
}

// ---------------------------------------------------------------------------------------------
// 1. A rootfs tarball: import, ls, inspect, two nodes pinging over their link
// ---------------------------------------------------------------------------------------------

#[test]
fn rootfs_image_import_list_inspect_and_ping() {
    let body = "  nodes:\n\
                \x20   a: {kind: linux, image: lwt/bb:1}\n\
                \x20   b: {kind: linux, image: lwt/bb:1}\n\
                \x20 links:\n\
                \x20   - endpoints: [\"a:eth1\", \"b:eth1\"]\n\
                \x20     ipv4: [10.241.9.1/24, 10.241.9.2/24]\n";
    let lab = store_lab("img-rootfs", "lwt-i1", 241, &["a", "b"], body);
    import_busybox(&lab, "lwt/bb:1");

    let images = image_list(&lab);
    let img = listed(&images, "lwt/bb:1")
        .unwrap_or_else(|| panic!("image ls does not list lwt/bb:1: {images:#?}"));
    assert!(
        img["id"].as_str().is_some_and(|i| i.starts_with("sha256:")),
        "listed image has no sha256 id: {img}"
    );
    assert_eq!(
        img["layers"].as_array().map(Vec::len),
        Some(1),
        "a rootfs tarball is one layer: {img}"
    );
    let table = text(&image_ok(&lab, &["ls"]).stdout);
    assert!(
        table.contains("lwt/bb:1"),
        "image ls (table) does not show lwt/bb:1:\n{table}"
    );
    let ins = inspect(&lab, "lwt/bb:1");
    assert_eq!(ins["id"], img["id"], "inspect and ls disagree on the id");
    assert!(
        ins["config"].is_object(),
        "image inspect shows no config: {ins}"
    );
    assert!(
        ins["config"]["cmd"].as_array().is_some_and(Vec::is_empty),
        "a plain rootfs has no command: {ins}"
    );

    lab.deploy();
    lab.assert_ping("a", "10.241.9.2");
    lab.assert_ping("b", "10.241.9.1");

    // A file only in the image.
    assert_eq!(lab.exec_ok("a", "cat /etc/motd").trim(), MOTD);
    // The host's tree is not there.
    let ls: Vec<String> = lab
        .exec_ok("a", "ls -a /")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    for want in ["bin", "etc", "root", "srv"] {
        assert!(ls.contains(&want.to_string()), "ls / lacks {want}: {ls:?}");
    }
    for host_only in ["usr", "work", "lib", "var", ".labwire-host-root"] {
        assert!(
            Path::new("/").join(host_only).exists() || host_only.starts_with('.'),
            "test premise: the host has /{host_only}"
        );
        assert!(
            !ls.contains(&host_only.to_string()),
            "ls / inside the image node shows the host's /{host_only}: {ls:?}"
        );
    }
    sh_fails(
        &lab,
        "a",
        "cat /etc/os-release",
        "the image has no /etc/os-release (the host's is visible)",
    );
    sh_fails(
        &lab,
        "a",
        &format!("test -e {}", lab.dir.display()),
        "the host's test directory is visible inside",
    );

    // Managed files and a private /run.
    let hostname = lab.exec_ok("a", "hostname");
    let etc_hostname = lab.exec_ok("a", "cat /etc/hostname");
    assert_eq!(
        hostname.trim(),
        etc_hostname.trim(),
        "/etc/hostname vs hostname"
    );
    assert_eq!(hostname.trim(), "a", "the node's hostname");
    let hosts = lab.exec_ok("a", "cat /etc/hosts");
    assert!(
        hosts.contains("localhost") && hosts.contains("clab-lwt-i1-a"),
        "/etc/hosts inside a is not labwire's: {hosts}"
    );
    lab.exec_ok("a", "test -f /etc/resolv.conf");
    let mounts = lab.exec_ok("a", "cat /proc/mounts");
    assert!(
        mounts.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&"/run") && f.get(2) == Some(&"tmpfs")
        }),
        "/run inside a is not a tmpfs:\n{mounts}"
    );
    assert!(
        mounts.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&"/") && f.get(2) == Some(&"overlay")
        }),
        "/ inside a is not an overlay:\n{mounts}"
    );

    destroy_and_check(&lab);
}

// ---------------------------------------------------------------------------------------------
// 2. Isolation: a node's writes stay in its upper dir; destroy removes it and every mount
// ---------------------------------------------------------------------------------------------

#[test]
fn image_nodes_are_isolated_and_destroy_leaves_nothing() {
    let body = "  nodes:\n\
                \x20   a: {kind: linux, image: lwt/bb:1}\n\
                \x20   b: {kind: linux, image: lwt/bb:1}\n";
    let lab = store_lab("img-iso", "lwt-i2", 242, &["a", "b"], body);
    import_busybox(&lab, "lwt/bb:1");
    lab.deploy();

    let secret = format!("lwt-secret-{}", std::process::id());
    lab.exec_ok("a", &format!("echo s3cret > /root/{secret}"));
    assert_eq!(
        lab.exec_ok("a", &format!("cat /root/{secret}")).trim(),
        "s3cret"
    );
    sh_fails(
        &lab,
        "b",
        &format!("test -e /root/{secret}"),
        "a's file is visible in b",
    );
    let host_path = Path::new("/root").join(&secret);
    assert!(
        !host_path.exists(),
        "a's file is visible on the host at {}",
        host_path.display()
    );
    // The write went to a's own upper directory, not to the shared image layers.
    let upper_a = lab.state_dir().join("nodes/a/upper");
    let upper_b = lab.state_dir().join("nodes/b/upper");
    assert!(
        upper_a.join("root").join(&secret).is_file(),
        "a's write is not in its upper directory {}",
        upper_a.display()
    );
    assert!(
        !upper_b.join("root").join(&secret).exists(),
        "a's write is in b's upper directory"
    );
    let layers = lab.dir.join("store/layers/sha256");
    for l in std::fs::read_dir(&layers)
        .unwrap_or_else(|e| panic!("read {}: {e}", layers.display()))
        .flatten()
    {
        assert!(
            !l.path().join("root").join(&secret).exists(),
            "a's write landed in the image layer {}",
            l.path().display()
        );
    }
    // Deleting an image file in a hides it in a only.
    lab.exec_ok("a", "rm /etc/motd");
    sh_fails(&lab, "a", "test -e /etc/motd", "a deleted its /etc/motd");
    assert_eq!(lab.exec_ok("b", "cat /etc/motd").trim(), MOTD);

    // The overlay is mounted in the node's mount namespace, not the host's.
    let state = lab.state_dir().to_string_lossy().into_owned();
    let m = host_mounts_with(&state);
    assert!(
        m.is_empty(),
        "the node's overlay shows in the host's mount table: {m:#?}"
    );
    let pid = init_pid(&lab, "a");
    let node_mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .expect("read the node's mountinfo");
    assert!(
        node_mounts
            .lines()
            .any(|l| l.contains(" overlay ") && l.contains(&*upper_a.to_string_lossy())),
        "node a's mount table has no overlay with upper dir {}:\n{node_mounts}",
        upper_a.display()
    );

    destroy_and_check(&lab);
    assert!(!upper_a.exists(), "{} remains", upper_a.display());
    assert!(
        !Path::new("/var/lib/labwire/labs/lwt-i2").exists(),
        "/var/lib/labwire/labs/lwt-i2 remains"
    );
    // The image itself stays.
    assert!(
        listed(&image_list(&lab), "lwt/bb:1").is_some(),
        "destroy removed the image"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. The image's Env, Cmd, WorkingDir and User apply; the node's cmd and env override them
// ---------------------------------------------------------------------------------------------

/// (pid, user, args) of the node's processes, from busybox `ps` inside it.
fn node_ps(lab: &TestLab, node: &str) -> Vec<(String, String, String)> {
    lab.exec_ok(node, "ps -o pid,user,args")
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let pid = f.next()?.to_string();
            let user = f.next()?.to_string();
            let args = f.collect::<Vec<_>>().join(" ");
            Some((pid, user, args))
        })
        .collect()
}

/// The process of `node` whose command line is `args`, waiting a little for it to start.
fn node_process(lab: &TestLab, node: &str, args: &str) -> (String, String) {
    poll(Duration::from_secs(5), || {
        let ps = node_ps(lab, node);
        ps.iter()
            .find(|(_, _, a)| a == args)
            .map(|(p, u, _)| (p.clone(), u.clone()))
            .ok_or_else(|| format!("no process `{args}` in {node}: {ps:?}"))
    })
    .unwrap_or_else(|e| panic!("lab {}: {e}", lab.name))
}

#[test]
fn image_config_applies_and_node_overrides() {
    let body = "  nodes:\n\
                \x20   a: {kind: linux, image: lwt/cfg:1}\n\
                \x20   b:\n\
                \x20     kind: linux\n\
                \x20     image: lwt/cfg:1\n\
                \x20     cmd: \"sleep 2000\"\n\
                \x20     env: {BAZ: node}\n";
    let lab = store_lab("img-cfg", "lwt-i3", 243, &["a", "b"], body);
    let root = lab.dir.join("rootfs");
    busybox_rootfs(&root, &lab.name);
    let layer = tar_bytes(&root, &lab.dir);
    let archive = lab.dir.join("cfg.docker.tar");
    docker_save(
        &lab.dir,
        &archive,
        "lwt/cfg:1",
        &[&layer],
        json!({
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "FOO=bar", "BAZ=image"],
            "Cmd": ["sleep", "1000"],
            "WorkingDir": "/srv",
            "User": "lw",
        }),
    );
    import(&lab, &archive, None);
    let ins = inspect(&lab, "lwt/cfg:1");
    let c = &ins["config"];
    assert_eq!(c["cmd"], json!(["sleep", "1000"]), "inspect: {ins}");
    assert_eq!(c["working_dir"], "/srv", "inspect: {ins}");
    assert_eq!(c["user"], "lw", "inspect: {ins}");
    assert!(
        c["env"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("FOO=bar"))),
        "inspect: {ins}"
    );

    lab.deploy();

    // Env: exec sees PID 1's environment.
    assert_eq!(lab.exec_ok("a", "echo $FOO").trim(), "bar");
    assert_eq!(lab.exec_ok("a", "echo $BAZ").trim(), "image");
    assert_eq!(lab.exec_ok("b", "echo $FOO").trim(), "bar");
    assert_eq!(
        lab.exec_ok("b", "echo $BAZ").trim(),
        "node",
        "the node's env does not override the image's"
    );

    // Cmd runs as User in WorkingDir.
    let (pid, user) = node_process(&lab, "a", "sleep 1000");
    assert_eq!(user, "lw", "the image's command does not run as lw");
    let status = lab.exec_ok("a", &format!("cat /proc/{pid}/status"));
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap_or_default();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("1000"),
        "the image's command runs with {uid_line}"
    );
    assert_eq!(
        lab.exec_ok("a", &format!("readlink /proc/{pid}/cwd"))
            .trim(),
        "/srv",
        "the image's command does not run in WorkingDir"
    );

    // The node's cmd replaces the image's.
    let (_, user_b) = node_process(&lab, "b", "sleep 2000");
    assert_eq!(user_b, "lw", "the image's User applies to the node's cmd");
    let ps_b = node_ps(&lab, "b");
    assert!(
        !ps_b.iter().any(|(_, _, a)| a == "sleep 1000"),
        "b runs the image's Cmd although its cmd overrides it: {ps_b:?}"
    );

    destroy_and_check(&lab);
}

// ---------------------------------------------------------------------------------------------
// 4. docker save archive and OCI layout (directory and tar)
// ---------------------------------------------------------------------------------------------

#[test]
fn docker_save_and_oci_layout_import_and_run() {
    let body = "  nodes:\n\
                \x20   ds: {kind: linux, image: lwt/ds:1, mgmt-ipv4: 10.244.0.11}\n\
                \x20   od: {kind: linux, image: lwt/oci:1, mgmt-ipv4: 10.244.0.12}\n\
                \x20   ot: {kind: linux, image: lwt/ocitar:2, mgmt-ipv4: 10.244.0.13}\n";
    let lab = store_lab("img-fmt", "lwt-i4", 244, &["ds", "od", "ot"], body);
    let root = lab.dir.join("rootfs");
    busybox_rootfs(&root, &lab.name);
    let base = tar_bytes(&root, &lab.dir);
    // A second layer: a new file and a whiteout deleting /etc/motd.
    let top = lab.dir.join("top");
    write(&top.join("srv/hello"), b"from layer two\n");
    write(&top.join("etc/.wh.motd"), b"");
    let top_tar = tar_bytes(&top, &lab.dir);

    let ds = lab.dir.join("ds.tar");
    docker_save(&lab.dir, &ds, "lwt/ds:1", &[&base, &top_tar], json!({}));
    import(&lab, &ds, None);

    let od = lab.dir.join("oci-dir");
    oci_layout(&lab.dir, &od, "docker.io/lwt/oci:1", &[&base], json!({}));
    import(&lab, &od, None);

    let ot_dir = lab.dir.join("oci-for-tar");
    oci_layout(
        &lab.dir,
        &ot_dir,
        "docker.io/lwt/unused:0",
        &[&base, &top_tar],
        json!({"Env": ["ORIGIN=oci-tar"]}),
    );
    let ot = lab.dir.join("oci.tar");
    tar_dir(&ot_dir, &ot);
    import(&lab, &ot, Some("lwt/ocitar:2"));

    let images = image_list(&lab);
    for (name, layers) in [("lwt/ds:1", 2), ("lwt/oci:1", 1), ("lwt/ocitar:2", 2)] {
        let img = listed(&images, name)
            .unwrap_or_else(|| panic!("image ls does not list {name}: {images:#?}"));
        assert_eq!(
            img["layers"].as_array().map(Vec::len),
            Some(layers),
            "{name}: {img}"
        );
    }
    assert!(
        listed(&images, "lwt/unused:0").is_none(),
        "--name did not replace the archive's own name: {images:#?}"
    );

    lab.deploy();
    // docker save: both layers, whiteout honoured.
    assert_eq!(lab.exec_ok("ds", "cat /srv/hello").trim(), "from layer two");
    sh_fails(
        &lab,
        "ds",
        "test -e /etc/motd",
        "layer two deletes /etc/motd",
    );
    lab.exec_ok("ds", "test -x /bin/busybox");
    // OCI directory.
    assert_eq!(lab.exec_ok("od", "cat /etc/motd").trim(), MOTD);
    sh_fails(&lab, "od", "test -e /srv/hello", "od's image has one layer");
    // OCI tar.
    assert_eq!(lab.exec_ok("ot", "cat /srv/hello").trim(), "from layer two");
    sh_fails(
        &lab,
        "ot",
        "test -e /etc/motd",
        "layer two deletes /etc/motd",
    );
    assert_eq!(lab.exec_ok("ot", "echo $ORIGIN").trim(), "oci-tar");
    // They run and talk over the management network.
    lab.assert_ping("ds", "10.244.0.12");
    lab.assert_ping("od", "10.244.0.13");
    lab.assert_ping("ot", "10.244.0.11");

    destroy_and_check(&lab);
}

// ---------------------------------------------------------------------------------------------
// 5. A missing image is refused before anything is touched; image rm refused while in use
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_image_refused_and_rm_refused_while_deployed() {
    let body = "  nodes:\n\
                \x20   a: {kind: linux, image: lwt/bb:1}\n\
                \x20   b: {kind: linux, image: lwt/missing:9}\n";
    let lab = store_lab("img-missing", "lwt-i5", 245, &["a", "b"], body);
    import_busybox(&lab, "lwt/bb:1");

    let out = lab.try_deploy();
    assert!(
        !out.status.success(),
        "deploy with a missing image succeeded: {}",
        describe(&out)
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("lwt/missing:9"),
        "the error does not name the image: {err}"
    );
    assert!(
        err.contains("labwire image import"),
        "the error does not name the import command: {err}"
    );
    assert!(
        !lab.state_dir().exists(),
        "a refused deploy created {}",
        lab.state_dir().display()
    );
    assert!(
        !lab.lab_dir().exists(),
        "a refused deploy created {}",
        lab.lab_dir().display()
    );
    let left = leftovers_in(
        &lab.state_root(),
        &lab.name,
        &lab.expected_host_objects().into_iter().collect(),
    );
    assert!(left.is_empty(), "a refused deploy left {left:#?}");

    // Now with the image present for both nodes.
    std::fs::write(
        &lab.file,
        topo_yaml(
            "lwt-i5",
            &lab.bridge,
            245,
            "  nodes:\n\
             \x20   a: {kind: linux, image: lwt/bb:1}\n\
             \x20   b: {kind: linux, image: lwt/bb:1}\n",
        ),
    )
    .expect("rewrite the topology");
    lab.deploy();
    let rm = image_cmd(&lab, &["rm", "lwt/bb:1"]);
    assert!(
        !rm.status.success(),
        "image rm of an image a deployed lab uses succeeded: {}",
        describe(&rm)
    );
    assert!(
        text(&rm.stderr).contains("lwt-i5"),
        "the refusal does not name the lab: {}",
        describe(&rm)
    );
    assert!(
        listed(&image_list(&lab), "lwt/bb:1").is_some(),
        "a refused rm removed the image"
    );
    let (b4, _) = lab.eth0_addrs("b");
    lab.assert_ping("a", &b4.expect("b has a management IPv4 address"));

    destroy_and_check(&lab);
    image_ok(&lab, &["rm", "lwt/bb:1"]);
    assert!(
        listed(&image_list(&lab), "lwt/bb:1").is_none(),
        "image rm left lwt/bb:1 listed"
    );
    assert!(
        !image_cmd(&lab, &["inspect", "lwt/bb:1"]).status.success(),
        "image inspect finds a removed image"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Binds into an image node
// ---------------------------------------------------------------------------------------------

#[test]
fn binds_into_image_node() {
    let body = "  nodes:\n\
                \x20   a:\n\
                \x20     kind: linux\n\
                \x20     image: lwt/bb:1\n\
                \x20     binds:\n\
                \x20       - lwt-bind.conf:/etc/lwt-bind.conf:ro\n\
                \x20       - data:/mnt/lwt-data\n";
    let lab = store_lab("img-bind", "lwt-i6", 246, &["a"], body);
    import_busybox(&lab, "lwt/bb:1");
    let content = format!("bound {}\n", std::process::id());
    let conf = lab.dir.join("lwt-bind.conf");
    std::fs::write(&conf, &content).expect("write the bind source");
    std::fs::create_dir_all(lab.dir.join("data")).expect("create the data dir");
    lab.deploy();

    assert_eq!(lab.exec_ok("a", "cat /etc/lwt-bind.conf"), content);
    sh_fails(
        &lab,
        "a",
        "echo changed > /etc/lwt-bind.conf",
        "the bind is read-only",
    );
    sh_fails(
        &lab,
        "a",
        "rm /etc/lwt-bind.conf",
        "the bind is read-only and a mount point",
    );
    assert_eq!(
        std::fs::read_to_string(&conf).expect("read the bind source"),
        content,
        "the read-only bind source changed"
    );
    // A read-write directory bind to a target the image does not have.
    lab.exec_ok("a", "echo from-node > /mnt/lwt-data/out");
    assert_eq!(
        std::fs::read_to_string(lab.dir.join("data/out"))
            .expect("the node's write through the rw bind reaches the host")
            .trim(),
        "from-node"
    );
    assert!(
        !Path::new("/mnt/lwt-data").exists(),
        "the bind target was created on the host"
    );

    destroy_and_check(&lab);
}

// ---------------------------------------------------------------------------------------------
// 7. image rm protects the image a lab was deployed with, even after its name moved
// ---------------------------------------------------------------------------------------------

/// A lab deployed from `lwt/bb:1` (image X, also named `lwt/keep:1`); then `lwt/bb:1` is
/// re-imported with other content (image Y). The lab still runs on X's layers, so removing X's
/// last name (`lwt/keep:1`), which garbage-collects X's blobs and unpacked layers, must be refused.
#[test]
fn rm_refused_for_the_image_a_lab_runs_after_a_retag() {
    let body = "  nodes:\n\
                \x20   a: {kind: linux, image: lwt/bb:1}\n";
    let lab = store_lab("img-retag", "lwt-i7", 247, &["a"], body);
    import_busybox_variant(&lab, "lwt/bb:1", "x");
    let tarball = lab.dir.join("rootfsx.tar");
    import(&lab, &tarball, Some("lwt/keep:1"));
    let x = inspect(&lab, "lwt/keep:1")["id"].clone();
    assert_eq!(
        inspect(&lab, "lwt/bb:1")["id"],
        x,
        "same archive, same image"
    );
    lab.deploy();
    assert_eq!(lab.exec_ok("a", "cat /etc/motd").trim(), MOTD);

    // The name moves to other content.
    import_busybox_variant(&lab, "lwt/bb:1", "y");
    let y = inspect(&lab, "lwt/bb:1")["id"].clone();
    assert_ne!(x, y, "the re-import made a different image");

    let x_layers: Vec<PathBuf> = inspect(&lab, "lwt/keep:1")["diff_ids"]
        .as_array()
        .expect("inspect shows diff_ids")
        .iter()
        .map(|d| {
            let hex = d.as_str().unwrap().trim_start_matches("sha256:");
            lab.dir.join("store/layers/sha256").join(hex)
        })
        .collect();
    assert!(
        x_layers.iter().all(|l| l.is_dir()),
        "X's layers are unpacked"
    );
    let rm = image_cmd(&lab, &["rm", "lwt/keep:1"]);
    if rm.status.success() {
        let gone: Vec<&PathBuf> = x_layers.iter().filter(|l| !l.exists()).collect();
        let after = lab.exec("a", "cat /etc/lwt-image; ls /bin | wc -l");
        panic!(
            "image rm lwt/keep:1 (image {x}, the one lab lwt-i7 runs on) was not refused: {}\n\
             unpacked layers of the running node deleted: {gone:?}\n\
             node a afterwards, `cat /etc/lwt-image; ls /bin | wc -l`: {}",
            describe(&rm),
            describe(&after)
        );
    }
    assert!(
        text(&rm.stderr).contains("lwt-i7"),
        "the refusal does not name the lab: {}",
        describe(&rm)
    );

    destroy_and_check(&lab);
    image_ok(&lab, &["rm", "lwt/keep:1"]);
}

/// The unpacked-size cap is per image: two layers that each fit under it but not together are
/// refused (with the variable to raise it named), and one of them alone is accepted.
#[test]
fn the_unpacked_size_cap_counts_all_of_an_images_layers() {
    let mut lab = store_lab("img-cap", "lwt-icap", 226, &[], "  nodes: {}\n");
    lab.env
        .push(("LABWIRE_IMAGE_MAX_UNPACKED".into(), "5M".into()));
    let layer = |n: &str| {
        let dir = lab.dir.join(format!("layer-{n}"));
        write(
            &dir.join(format!("data-{n}")),
            &vec![n.as_bytes()[0]; 3 << 20],
        );
        tar_bytes(&dir, &lab.dir)
    };
    let (a, b) = (layer("a"), layer("b"));
    let two = lab.dir.join("two.tar");
    docker_save(&lab.dir, &two, "lwt/cap:2", &[&a, &b], json!({}));
    let out = image_cmd(&lab, &["import", two.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("the image unpacks to more than 5242880 bytes")
            && err.contains("LABWIRE_IMAGE_MAX_UNPACKED"),
        "two layers of 3 MiB under a 5 MiB cap: {}",
        describe(&out)
    );
    assert!(listed(&image_list(&lab), "lwt/cap:2").is_none());
    let _ = std::fs::remove_dir_all(lab.dir.join("docker-save"));
    let one = lab.dir.join("one.tar");
    docker_save(&lab.dir, &one, "lwt/cap:1", &[&a], json!({}));
    import(&lab, &one, None);
    assert!(listed(&image_list(&lab), "lwt/cap:1").is_some());
}

//! Importing each supported format and checking what the store then shows: names, config, layers,
//! and the unpacked trees with their metadata.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use common::*;

fn rootfs_tar() -> Vec<u8> {
    Tb::new()
        .dir("./", 0o755)
        .dir("./bin/", 0o755)
        .file("./bin/tool", b"#!/bin/sh\necho tool\n", 0o4755)
        .hardlink("./bin/tool2", "./bin/tool")
        .symlink("./bin/sh", "/bin/busybox")
        .dir("./etc/", 0o755)
        .file_owned("./etc/hostname", b"router\n", 0o640, 1000, 1001)
        .file_with_xattr("./etc/tagged", b"x", "user.labwire", b"yes")
        .dir("./dev/", 0o755)
        .chardev("./dev/null", 1, 3)
        .fifo("./run/initctl")
        .file("deep/implicit/parent", b"p", 0o600)
        .finish()
}

#[test]
fn rootfs_tarball_plain_gzip_and_zstd() {
    let t = TestDir::new();
    let store = t.store();
    let tar = rootfs_tar();
    let plain = t.write("rootfs.tar", &tar);
    let gz = t.write("rootfs.tar.gz", &gzip(&tar));
    let zst = t.write("rootfs.tar.zst", &zstd(&tar));

    let err = store.import(&plain, None).unwrap_err().to_string();
    assert!(err.contains("--name"), "{err}");
    assert!(store.list().unwrap().is_empty());

    let img = store.import(&gz, Some("open-nos:latest")).unwrap();
    assert_eq!(img.names, ["docker.io/library/open-nos:latest"]);
    assert_eq!(img.layers, [sha(&gzip(&tar))]);
    assert_eq!(img.diff_ids, [sha(&tar)]);
    assert!(img.created.is_some());
    assert!(img.config.cmd.is_empty());

    // Same content, other compression: another image, but the same unpacked layer.
    let img_z = store.import(&zst, Some("open-nos:zstd")).unwrap();
    let img_p = store
        .import(&plain, Some("localhost/open-nos:plain"))
        .unwrap();
    assert_eq!(img_z.diff_ids, img.diff_ids);
    assert_eq!(img_p.layers, [sha(&tar)]);
    assert_eq!(store.list().unwrap().len(), 3);
    let dirs = store.layer_dirs(&img).unwrap();
    assert_eq!(dirs, store.layer_dirs(&img_z).unwrap());
    assert_eq!(dirs, store.layer_dirs(&img_p).unwrap());
    assert_eq!(
        std::fs::read_dir(t.join("store/layers/sha256"))
            .unwrap()
            .count(),
        1
    );

    for r in [
        "open-nos",
        "docker.io/library/open-nos:latest",
        &img.id,
        &hex_of(&img.id)[..8],
    ] {
        let found = store
            .resolve(r)
            .unwrap()
            .unwrap_or_else(|| panic!("resolve {r}"));
        if r.starts_with("open") || r.starts_with("docker") {
            assert_eq!(found.manifest, img.manifest);
        }
        assert_eq!(found.id, img.id);
    }
    assert_eq!(
        store.resolve(&img_p.manifest).unwrap().unwrap().manifest,
        img_p.manifest
    );
    assert!(store.resolve("nothing-here").unwrap().is_none());

    let root = &dirs[0];
    let md = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap();
    assert_eq!(
        std::fs::read(root.join("bin/tool")).unwrap(),
        b"#!/bin/sh\necho tool\n"
    );
    assert_eq!(md("bin/tool").permissions().mode() & 0o7777, 0o4755);
    assert_eq!(md("bin/tool").ino(), md("bin/tool2").ino());
    assert_eq!(md("bin/tool").mtime(), MTIME as i64);
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap().to_str(),
        Some("/bin/busybox")
    );
    assert_eq!(
        (md("etc/hostname").uid(), md("etc/hostname").gid()),
        (1000, 1001)
    );
    assert_eq!(md("etc/hostname").permissions().mode() & 0o7777, 0o640);
    assert_eq!(
        md("etc").mtime(),
        MTIME as i64,
        "directory mtimes are set last"
    );
    assert!(md("dev/null").file_type().is_char_device());
    assert_eq!(md("dev/null").rdev(), libc::makedev(1, 3));
    assert!(md("run/initctl").file_type().is_fifo());
    assert_eq!(md("deep/implicit").permissions().mode() & 0o777, 0o755);
    let mut value = [0u8; 8];
    let path = std::ffi::CString::new(root.join("etc/tagged").to_str().unwrap()).unwrap();
    // SAFETY: NUL-terminated strings and a writable buffer of the given length.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            c"user.labwire".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    assert_eq!(&value[..n.max(0) as usize], b"yes");
}

/// `docker save` as Docker < 25 writes it: `<id>/layer.tar`, `<config hex>.json`, manifest.json.
fn legacy_docker_save(layers: &[&[u8]], tags: &[&str]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    let config = config_json(&diff_ids);
    let config_name = format!("{}.json", hex_of(&sha(&config)));
    let layer_names: Vec<String> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{}/layer.tar", hex_of(&sha(&[l, &[i as u8][..]].concat()))))
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": config_name, "RepoTags": tags, "Layers": layer_names}
    ]))
    .unwrap();
    let mut files: Vec<(&str, &[u8])> = Vec::new();
    for (name, data) in layer_names.iter().zip(layers) {
        files.push((name, data));
    }
    files.push((&config_name, &config));
    files.push(("manifest.json", &manifest));
    files.push(("repositories", b"{}"));
    tar_of(&files)
}

#[test]
fn docker_save_legacy_archive() {
    let t = TestDir::new();
    let store = t.store();
    let (base, top) = two_layers();
    let archive = t.write(
        "frr.tar",
        &legacy_docker_save(&[&base, &top], &["frr:8.4", "quay.io/x/frr:8"]),
    );
    let img = store.import(&archive, None).unwrap();
    assert_eq!(img.names, ["docker.io/library/frr:8.4", "quay.io/x/frr:8"]);
    assert_eq!(img.diff_ids, [sha(&base), sha(&top)]);
    assert_eq!(img.config.entrypoint, ["/usr/lib/frr/docker-start"]);
    assert_eq!(img.config.cmd, ["-d"]);
    assert_eq!(img.config.env, ["PATH=/usr/sbin:/usr/bin", "FRR=1"]);
    assert_eq!(img.config.working_dir.as_deref(), Some("/etc/frr"));
    assert_eq!(img.config.user.as_deref(), Some("frr"));
    assert_eq!(img.config.labels["org.example.nos"], "frr");
    assert_eq!(img.config.stop_signal.as_deref(), Some("SIGTERM"));
    assert_eq!(img.created.as_deref(), Some("2024-05-01T10:00:00Z"));
    let dirs = store.layer_dirs(&img).unwrap();
    assert_eq!(dirs.len(), 2);
    assert_eq!(std::fs::read(dirs[0].join("etc/kept")).unwrap(), b"kept\n");

    // A gzip-compressed `docker save` imports too, and names the same image.
    let gz = t.write("frr.tar.gz", &gzip(&std::fs::read(&archive).unwrap()));
    let again = store.import(&gz, Some("frr:gz")).unwrap();
    assert_eq!(again.manifest, img.manifest);
    assert_eq!(store.list().unwrap().len(), 1);
    assert_eq!(store.resolve("frr:gz").unwrap().unwrap().names.len(), 3);
}

/// An OCI layout's files: (path, bytes), with the layer gzip-compressed.
fn oci_layout_files(
    name_annotation: Option<(&str, &str)>,
    nested: bool,
) -> (Vec<(String, Vec<u8>)>, Vec<u8>) {
    let layer = Tb::new()
        .dir("usr/", 0o755)
        .file("usr/os-release", b"ID=opennos\n", 0o644)
        .finish();
    let layer_gz = gzip(&layer);
    let config = config_json(&[sha(&layer)]);
    let manifest = oci_manifest(
        &config,
        &[("application/vnd.oci.image.layer.v1.tar+gzip", &layer_gz)],
    );
    let mut files = vec![
        (
            "oci-layout".to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        (
            format!("blobs/sha256/{}", hex_of(&sha(&layer_gz))),
            layer_gz.clone(),
        ),
        (
            format!("blobs/sha256/{}", hex_of(&sha(&config))),
            config.clone(),
        ),
        (
            format!("blobs/sha256/{}", hex_of(&sha(&manifest))),
            manifest.clone(),
        ),
    ];
    let mut top = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha(&manifest),
        "size": manifest.len(),
    });
    if nested {
        let list = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "digest": sha(b"not here"), "size": 8,
                 "platform": {"architecture": "s390x", "os": "linux"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "digest": sha(&manifest), "size": manifest.len(),
                 "platform": {"architecture": "amd64", "os": "linux"}},
            ]
        }))
        .unwrap();
        top = serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": sha(&list),
            "size": list.len(),
        });
        files.push((format!("blobs/sha256/{}", hex_of(&sha(&list))), list));
    }
    if let Some((k, v)) = name_annotation {
        top["annotations"] = serde_json::json!({ k: v });
    }
    let index =
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [top]})).unwrap();
    files.push(("index.json".to_string(), index));
    (files, manifest)
}

#[test]
fn oci_layout_directory() {
    let t = TestDir::new();
    let store = t.store();
    let (files, manifest) =
        oci_layout_files(Some(("org.opencontainers.image.ref.name", "1.0")), false);
    for (p, data) in &files {
        t.write(&format!("layout/{p}"), data);
    }
    // The layout names only a tag: that names nothing, so a name is needed.
    let err = store
        .import(&t.join("layout"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--name"), "{err}");
    assert!(
        std::fs::read_dir(t.join("store/blobs/sha256"))
            .unwrap()
            .next()
            .is_none(),
        "failed import leaves no blobs"
    );

    let img = store
        .import(
            &t.join("layout"),
            Some("registry.lab:5000/nos/open-nos:1.0"),
        )
        .unwrap();
    assert_eq!(
        img.manifest,
        sha(&manifest),
        "the layout's manifest is kept as it is"
    );
    assert_eq!(img.names, ["registry.lab:5000/nos/open-nos:1.0"]);
    let dirs = store.layer_dirs(&img).unwrap();
    assert_eq!(
        std::fs::read(dirs[0].join("usr/os-release")).unwrap(),
        b"ID=opennos\n"
    );

    // A corrupted blob is refused (by a store that does not hold the blob already).
    let store = image::Store::open(&t.join("store2")).unwrap();
    let (files, _) = oci_layout_files(None, false);
    let layer_path = &files[1].0;
    for (p, data) in &files {
        t.write(&format!("bad/{p}"), data);
    }
    t.write(&format!("bad/{layer_path}"), b"garbage");
    let err = store
        .import(&t.join("bad"), Some("bad:1"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("digest mismatch"), "{err}");
}

#[test]
fn oci_layout_tar_with_image_index() {
    let t = TestDir::new();
    let store = t.store();
    let (files, manifest) = oci_layout_files(
        Some(("io.containerd.image.name", "docker.io/nos/open-nos:2")),
        true,
    );
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let archive = t.write("layout.tar", &tar_of(&refs));
    let img = store.import(&archive, None).unwrap();
    assert_eq!(img.names, ["docker.io/nos/open-nos:2"]);
    assert_eq!(
        img.manifest,
        sha(&manifest),
        "the linux/amd64 manifest is chosen"
    );
    assert_eq!(
        store.resolve("nos/open-nos:2").unwrap().unwrap().manifest,
        img.manifest
    );
}

/// `docker save` as Docker ≥ 25 writes it: an OCI layout plus manifest.json pointing into blobs/.
#[test]
fn docker_save_oci_layout_archive() {
    let t = TestDir::new();
    let store = t.store();
    let (files, manifest) = oci_layout_files(None, false);
    let config_digest = serde_json::from_slice::<serde_json::Value>(&manifest).unwrap()["config"]
        ["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let layer_digest = sha(&files[1].1);
    let docker_manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": format!("blobs/sha256/{}", hex_of(&config_digest)),
        "RepoTags": ["open-nos:25"],
        "Layers": [format!("blobs/sha256/{}", hex_of(&layer_digest))]
    }]))
    .unwrap();
    let mut refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    refs.push(("manifest.json", &docker_manifest));
    let archive = t.write("save.tar", &tar_of(&refs));
    let img = store.import(&archive, None).unwrap();
    assert_eq!(img.names, ["docker.io/library/open-nos:25"]);
    assert_eq!(img.manifest, sha(&manifest));
    assert_eq!(img.id, config_digest);
}

#[test]
fn garbage_and_unsupported_inputs_are_reported() {
    let t = TestDir::new();
    let store = t.store();
    let text = t.write("notes.txt", &b"just some text, not an archive\n".repeat(40));
    let err = store.import(&text, Some("x")).unwrap_err().to_string();
    assert!(err.contains("notes.txt"), "{err}");
    let xz = t.write("rootfs.tar.xz", b"\xfd7zXZ\x00rest");
    let err = store.import(&xz, Some("x")).unwrap_err().to_string();
    assert!(err.contains("xz compression is not supported"), "{err}");
    let err = store
        .import(&t.join("missing.tar"), Some("x"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.tar"), "{err}");
    let err = store
        .import(&text, Some("bad name"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid image reference"), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert!(std::fs::read_dir(t.join("store/blobs/sha256"))
        .unwrap()
        .next()
        .is_none());
}

/// A rootfs made by GNU tar (long names, pax headers, hard links) unpacks as the tree it came from.
#[test]
fn rootfs_made_by_gnu_tar() {
    let t = TestDir::new();
    let src = t.join("src");
    let long = format!("{}/{}", "d".repeat(80), "f".repeat(90));
    std::fs::create_dir_all(src.join(&long).parent().unwrap()).unwrap();
    std::fs::write(src.join(&long), b"long\n").unwrap();
    std::fs::write(src.join("a"), b"a\n").unwrap();
    std::fs::hard_link(src.join("a"), src.join("b")).unwrap();
    std::os::unix::fs::symlink("../../etc/shadow", src.join("rel")).unwrap();
    let out = t.join("gnu.tar.gz");
    let status = std::process::Command::new("tar")
        .args(["--numeric-owner", "--xattrs", "-czf"])
        .arg(&out)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let store = t.store();
    let img = store.import(&out, Some("gnu")).unwrap();
    let root = &store.layer_dirs(&img).unwrap()[0];
    assert_eq!(std::fs::read(root.join(&long)).unwrap(), b"long\n");
    let ino = |p: &str| std::fs::metadata(root.join(p)).unwrap().ino();
    assert_eq!(ino("a"), ino("b"));
    assert_eq!(
        std::fs::read_link(root.join("rel")).unwrap().to_str(),
        Some("../../etc/shadow")
    );
}

//! The store's own operations: whiteouts seen through a real overlayfs mount, concurrent imports,
//! removal and garbage collection, and adding blobs fetched elsewhere (`put_blob` + `tag`).

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::*;

fn overlay_opaque(dir: &Path) -> Option<Vec<u8>> {
    let path = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
    let mut value = [0u8; 16];
    // SAFETY: NUL-terminated strings and a writable buffer of the given length.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    (n >= 0).then(|| value[..n as usize].to_vec())
}

/// Unmounts on drop, so a failing assertion does not leave a mount behind.
struct Mount<'a>(&'a Path);

impl Drop for Mount<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

#[test]
fn whiteouts_and_opaque_dirs_work_in_an_overlay() {
    let t = TestDir::new();
    let store = t.store();
    let (base, top) = two_layers();
    // Two layers through the OCI-free path: put_blob + config + manifest + tag.
    let config = config_json(&[sha(&base), sha(&top)]);
    let manifest = oci_manifest(
        &config,
        &[
            ("application/vnd.oci.image.layer.v1.tar", &base),
            ("application/vnd.oci.image.layer.v1.tar", &top),
        ],
    );
    for blob in [&base, &top, &config, &manifest] {
        store.put_blob(&sha(blob), &mut blob.as_slice()).unwrap();
    }
    let img = store.tag("overlay-test", &sha(&manifest)).unwrap();
    let dirs = store.layer_dirs(&img).unwrap();
    let whiteout = std::fs::symlink_metadata(dirs[1].join("etc/gone")).unwrap();
    assert!(whiteout.file_type().is_char_device());
    assert_eq!(whiteout.rdev(), 0);
    assert!(!dirs[1].join("etc/.wh.gone").exists());
    assert_eq!(
        overlay_opaque(&dirs[1].join("opq")).as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(overlay_opaque(&dirs[0].join("opq")), None);

    let merged = t.join("merged");
    std::fs::create_dir(&merged).unwrap();
    let lower = format!("lowerdir={}:{}", dirs[1].display(), dirs[0].display());
    let status = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &lower])
        .arg(&merged)
        .status()
        .unwrap();
    assert!(status.success(), "mount -t overlay failed");
    let _mount = Mount(&merged);
    assert!(
        !merged.join("etc/gone").exists(),
        "the whiteout hides the file"
    );
    assert_eq!(std::fs::read(merged.join("etc/kept")).unwrap(), b"kept\n");
    let mut opq: Vec<_> = std::fs::read_dir(merged.join("opq"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    opq.sort();
    assert_eq!(
        opq,
        ["new"],
        "the opaque directory hides the lower one's content"
    );
}

#[test]
fn concurrent_imports_of_one_archive_yield_one_image() {
    let t = TestDir::new();
    let layer = Tb::new()
        .dir("etc/", 0o755)
        .file("etc/motd", b"hello\n", 0o644)
        .finish();
    let rootfs = Arc::new(t.write("rootfs.tar.gz", &gzip(&layer)));
    let root = Arc::new(t.join("store"));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (rootfs, root) = (rootfs.clone(), root.clone());
            std::thread::spawn(move || {
                let store = image::Store::open(&root).unwrap();
                let img = store.import(&rootfs, Some("conc:1")).unwrap();
                store.layer_dirs(&img).unwrap();
                img.manifest
            })
        })
        .collect();
    let manifests: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(manifests.windows(2).all(|w| w[0] == w[1]), "{manifests:?}");
    let store = t.store();
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].names, ["docker.io/library/conc:1"]);
    assert_eq!(
        std::fs::read_dir(t.join("store/layers/sha256"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(
        std::fs::read_dir(t.join("store/blobs/sha256"))
            .unwrap()
            .count(),
        3
    );
    assert_eq!(std::fs::read_dir(t.join("store/tmp")).unwrap().count(), 0);

    // Layer unpacking races too: drop the layer and ask from 4 threads at once.
    let img = list[0].clone();
    std::fs::remove_dir_all(store.layer_dirs(&img).unwrap()[0].clone()).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (root, img) = (root.clone(), img.clone());
            std::thread::spawn(move || image::Store::open(&root).unwrap().layer_dirs(&img).unwrap())
        })
        .collect();
    for h in handles {
        let dirs = h.join().unwrap();
        assert_eq!(std::fs::read(dirs[0].join("etc/motd")).unwrap(), b"hello\n");
    }
}

#[test]
fn remove_drops_unreferenced_blobs_and_layers() {
    let t = TestDir::new();
    let store = t.store();
    let shared = Tb::new().file("shared", b"both\n", 0o644).finish();
    let own = Tb::new().file("own", b"b only\n", 0o644).finish();
    let a = store
        .import(&t.write("a.tar", &shared), Some("a:1"))
        .unwrap();
    store.tag("a:2", &a.manifest).unwrap();
    // Image b: the shared layer plus its own, as a two-layer image.
    let config = config_json(&[sha(&shared), sha(&own)]);
    let manifest = oci_manifest(
        &config,
        &[
            ("application/vnd.oci.image.layer.v1.tar", &shared),
            ("application/vnd.oci.image.layer.v1.tar", &own),
        ],
    );
    for blob in [&own, &config, &manifest] {
        store.put_blob(&sha(blob), &mut blob.as_slice()).unwrap();
    }
    let b = store.tag("b", &sha(&manifest)).unwrap();
    let b_dirs = store.layer_dirs(&b).unwrap();
    let a_dirs = store.layer_dirs(&a).unwrap();
    assert_eq!(a_dirs[0], b_dirs[0], "the shared layer is unpacked once");
    let blobs = || {
        std::fs::read_dir(t.join("store/blobs/sha256"))
            .unwrap()
            .count()
    };
    let layers = || {
        std::fs::read_dir(t.join("store/layers/sha256"))
            .unwrap()
            .count()
    };
    assert_eq!((blobs(), layers()), (6, 2));

    assert_eq!(store.remove("a:1").unwrap(), ["docker.io/library/a:1"]);
    assert_eq!((blobs(), layers()), (6, 2), "a:2 still names image a");
    assert!(store.resolve("a:1").unwrap().is_none());
    assert_eq!(
        store.resolve("a:2").unwrap().unwrap().names,
        ["docker.io/library/a:2"]
    );

    assert_eq!(store.remove("a:2").unwrap(), ["docker.io/library/a:2"]);
    assert_eq!(
        (blobs(), layers()),
        (4, 2),
        "a's config and manifest go; the shared layer stays"
    );
    assert!(b_dirs[0].join("shared").exists());

    // By id prefix: every name goes, and with them everything else.
    store.tag("b:also", &b.manifest).unwrap();
    let mut removed = store.remove(&hex_of(&b.id)[..12]).unwrap();
    removed.sort();
    assert_eq!(
        removed,
        ["docker.io/library/b:also", "docker.io/library/b:latest"]
    );
    assert_eq!((blobs(), layers()), (0, 0));
    assert!(store.list().unwrap().is_empty());
    let err = store.remove("b").unwrap_err().to_string();
    assert!(err.contains("no image `b`"), "{err}");
}

#[test]
fn put_blob_verifies_and_tag_needs_every_blob() {
    let t = TestDir::new();
    let store = t.store();
    let layer = Tb::new().file("f", b"f", 0o644).finish();
    let err = store
        .put_blob(&sha(b"other"), &mut layer.as_slice())
        .unwrap_err()
        .to_string();
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(!store.has_blob(&sha(b"other")) && !store.has_blob(&sha(&layer)));
    assert!(store
        .put_blob("sha256:../../etc", &mut layer.as_slice())
        .is_err());

    let config = config_json(&[sha(&layer)]);
    let manifest = oci_manifest(
        &config,
        &[("application/vnd.oci.image.layer.v1.tar", &layer)],
    );
    store
        .put_blob(&sha(&config), &mut config.as_slice())
        .unwrap();
    let path = store
        .put_blob(&sha(&manifest), &mut manifest.as_slice())
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), manifest);
    let err = store.tag("x", &sha(&manifest)).unwrap_err().to_string();
    assert!(
        err.contains(&sha(&layer)) && err.contains("missing"),
        "{err}"
    );
    store.put_blob(&sha(&layer), &mut layer.as_slice()).unwrap();
    let img = store.tag("x", &sha(&manifest)).unwrap();
    assert_eq!(img.names, ["docker.io/library/x:latest"]);
    assert_eq!(img.layers, [sha(&layer)]);
    assert_eq!(
        store.resolve(&sha(&manifest)).unwrap().unwrap().id,
        sha(&config)
    );

    // A layer whose content does not match its diff-id is refused at unpack time.
    let wrong = config_json(&[sha(b"not the layer")]);
    let manifest = oci_manifest(
        &wrong,
        &[("application/vnd.oci.image.layer.v1.tar", &layer)],
    );
    store.put_blob(&sha(&wrong), &mut wrong.as_slice()).unwrap();
    store
        .put_blob(&sha(&manifest), &mut manifest.as_slice())
        .unwrap();
    let img = store.tag("wrong", &sha(&manifest)).unwrap();
    let err = store.layer_dirs(&img).unwrap_err().to_string();
    assert!(err.contains("digest mismatch"), "{err}");
}

#[test]
fn open_default_honours_the_environment() {
    let t = TestDir::new();
    // The only test that sets this variable; other tests open stores by path.
    std::env::set_var("LABWIRE_IMAGE_DIR", t.join("env-store"));
    let store = image::Store::open_default().unwrap();
    assert_eq!(store.root(), t.join("env-store"));
    assert!(t.join("env-store/oci-layout").is_file());
    assert!(t.join("env-store/blobs/sha256").is_dir());
}

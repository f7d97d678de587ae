//! Crafted layer tarballs that try to write outside the layer directory: each must be refused with
//! an error naming the entry, leave nothing behind in the store, and write nothing outside it.

mod common;

use std::os::unix::fs::MetadataExt;

use common::*;

/// Import `tar` as a rootfs and expect a refusal naming `entry`; then check that the store holds
/// no image, blob or stray layer, and that no file called `marker` exists anywhere in the test dir.
fn refused(t: &TestDir, case: &str, tar: Vec<u8>, entry: &str, marker: &str) {
    let store = image::Store::open(&t.join(&format!("store-{case}"))).unwrap();
    let src = t.write(&format!("{case}.tar"), &tar);
    let err = store
        .import(&src, Some("evil:latest"))
        .unwrap_err()
        .to_string();
    eprintln!("{case}: {err}");
    assert!(
        err.contains(entry),
        "{case}: error should name `{entry}`: {err}"
    );
    assert!(err.contains("refusing"), "{case}: {err}");
    assert!(
        store.list().unwrap().is_empty(),
        "{case}: nothing is tagged"
    );
    let root = store.root();
    for sub in ["blobs/sha256", "layers/sha256", "tmp"] {
        let left: Vec<_> = std::fs::read_dir(root.join(sub)).unwrap().collect();
        assert!(left.is_empty(), "{case}: {sub} left {left:?}");
    }
    assert!(
        !all_names(t.path()).iter().any(|n| n == marker),
        "{case}: `{marker}` was written somewhere"
    );
}

/// Up from a layer temp dir (<test>/store-x/tmp/layer-…) to `/`, then down to `path`.
fn climb_to(path: &std::path::Path) -> String {
    format!("../../../../../../../../..{}", path.display())
}

#[test]
fn dotdot_entries_are_refused() {
    let t = TestDir::new();
    std::fs::create_dir(t.join("outside")).unwrap();
    let tar = Tb::new()
        .file("ok", b"fine", 0o644)
        .file("../escape1", b"x", 0o644)
        .finish();
    refused(&t, "dotdot", tar, "../escape1", "escape1");
    let deep = climb_to(&t.join("outside/escape2"));
    let tar = Tb::new().file(&deep, b"x", 0o644).finish();
    refused(&t, "dotdot-deep", tar, &deep, "escape2");
    let tar = Tb::new()
        .dir("a/", 0o755)
        .file("a/../../escape3", b"x", 0o644)
        .finish();
    refused(&t, "dotdot-mid", tar, "a/../../escape3", "escape3");
}

#[test]
fn absolute_entries_are_refused() {
    let t = TestDir::new();
    std::fs::create_dir(t.join("outside")).unwrap();
    let abs = t.join("outside/abs1").display().to_string();
    let tar = Tb::new().file(&abs, b"x", 0o644).finish();
    refused(&t, "absolute", tar, &abs, "abs1");
    let tar = Tb::new()
        .dir("/abs/", 0o755)
        .file("/abs/path", b"x", 0o644)
        .finish();
    refused(&t, "absolute-short", tar, "/abs", "path");
}

#[test]
fn writing_through_a_symlink_is_refused() {
    let t = TestDir::new();
    let outside = t.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let target = outside.display().to_string();

    let tar = Tb::new()
        .symlink("evil", &target)
        .file("evil/pwned", b"x", 0o644)
        .finish();
    refused(&t, "symlink-file", tar, "evil/pwned", "pwned");

    let tar = Tb::new()
        .symlink("evil", &target)
        .dir("evil/pwned-dir/", 0o755)
        .finish();
    refused(&t, "symlink-dir", tar, "evil/pwned-dir", "pwned-dir");

    // A relative symlink climbing out, and a nested write through it.
    let tar = Tb::new()
        .dir("a/", 0o755)
        .symlink("a/up", "../../../../../../../../../..")
        .file(&format!("a/up{}/pwned-rel", outside.display()), b"x", 0o644)
        .finish();
    refused(&t, "symlink-relative", tar, "pwned-rel", "pwned-rel");

    // A directory replaced by a symlink later in the same layer.
    let tar = Tb::new()
        .dir("d/", 0o755)
        .symlink("d", &target)
        .file("d/pwned-replaced", b"x", 0o644)
        .finish();
    refused(
        &t,
        "symlink-replaces-dir",
        tar,
        "d/pwned-replaced",
        "pwned-replaced",
    );

    // Special files through a symlink.
    let tar = Tb::new()
        .symlink("evil", &target)
        .fifo("evil/pwned-fifo")
        .finish();
    refused(&t, "symlink-fifo", tar, "evil/pwned-fifo", "pwned-fifo");
    let tar = Tb::new()
        .symlink("evil", &target)
        .symlink("evil/pwned-link", "/etc")
        .finish();
    refused(&t, "symlink-symlink", tar, "evil/pwned-link", "pwned-link");
    let tar = Tb::new()
        .symlink("evil", &target)
        .file("evil/.wh.pwned-wh", b"", 0o644)
        .finish();
    refused(&t, "symlink-whiteout", tar, "evil/.wh.pwned-wh", "pwned-wh");
}

#[test]
fn escaping_hard_links_are_refused() {
    let t = TestDir::new();
    let outside = t.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let secret = outside.join("secret");
    std::fs::write(&secret, b"secret").unwrap();
    let passwd_links = std::fs::metadata("/etc/passwd").unwrap().nlink();

    let tar = Tb::new().hardlink("passwd", "../../etc/passwd").finish();
    refused(&t, "hardlink-dotdot", tar, "../../etc/passwd", "passwd");

    let tar = Tb::new().hardlink("stolen1", &climb_to(&secret)).finish();
    refused(&t, "hardlink-climb", tar, "stolen1", "stolen1");

    let tar = Tb::new()
        .hardlink("stolen2", &secret.display().to_string())
        .finish();
    refused(&t, "hardlink-absolute", tar, "stolen2", "stolen2");

    let tar = Tb::new()
        .symlink("evil", &outside.display().to_string())
        .hardlink("stolen3", "evil/secret")
        .finish();
    refused(&t, "hardlink-through-symlink", tar, "stolen3", "stolen3");

    let tar = Tb::new().hardlink("stolen4", "not/in/layer").finish();
    refused(&t, "hardlink-missing", tar, "stolen4", "stolen4");

    assert_eq!(
        std::fs::metadata(&secret).unwrap().nlink(),
        1,
        "no link was made to the secret"
    );
    assert_eq!(std::fs::read(&secret).unwrap(), b"secret");
    assert_eq!(
        std::fs::metadata("/etc/passwd").unwrap().nlink(),
        passwd_links
    );
}

#[test]
fn a_hostile_layer_inside_docker_save_is_refused_too() {
    let t = TestDir::new();
    let outside = t.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let layer = Tb::new()
        .symlink("evil", &outside.display().to_string())
        .file("evil/pwned-save", b"x", 0o644)
        .finish();
    let config = config_json(&[sha(&layer)]);
    let config_name = format!("{}.json", hex_of(&sha(&config)));
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": config_name, "RepoTags": ["evil:1"], "Layers": ["l/layer.tar"]}
    ]))
    .unwrap();
    let layer_dir = "a".repeat(64);
    let layer_path = format!("{layer_dir}/layer.tar");
    let manifest = String::from_utf8(manifest)
        .unwrap()
        .replace("l/layer.tar", &layer_path);
    let archive = tar_of(&[
        (&layer_path, &layer),
        (&config_name, &config),
        ("manifest.json", manifest.as_bytes()),
    ]);
    let store = t.store();
    let src = t.write("evil-save.tar", &archive);
    let err = store.import(&src, None).unwrap_err().to_string();
    assert!(
        err.contains("evil/pwned-save") && err.contains("symlink"),
        "{err}"
    );
    assert!(store.list().unwrap().is_empty());
    assert!(!outside.join("pwned-save").exists());
    assert!(std::fs::read_dir(t.join("store/blobs/sha256"))
        .unwrap()
        .next()
        .is_none());
}

/// A later entry that replaces a non-empty directory wins, as in docker and containerd: the
/// directory goes with everything in it, without following a symlink inside it.
#[test]
fn a_file_replacing_a_full_directory_removes_it_and_nothing_outside() {
    let t = TestDir::new();
    std::fs::create_dir_all(t.join("outside")).unwrap();
    std::fs::write(t.join("outside/keep"), b"keep").unwrap();
    let outside = t.join("outside");
    let tar = Tb::new()
        .dir("d", 0o755)
        .dir("d/sub", 0o755)
        .file("d/sub/f", b"x", 0o644)
        .symlink("d/out", outside.to_str().unwrap())
        .file("d", b"now a file", 0o644)
        .finish();
    let src = t.write("replace.tar", &tar);
    let store = t.store();
    let img = store
        .import(&src, Some("replace:1"))
        .expect("the later entry wins");
    let layers = store.layer_dirs(&img).unwrap();
    assert_eq!(std::fs::read(layers[0].join("d")).unwrap(), b"now a file");
    assert_eq!(std::fs::read(t.join("outside/keep")).unwrap(), b"keep");
}

//! Property tests for the layer unpacker: random small tar archives (files, directories, symlinks
//! with hostile targets, hard links, whiteouts, opaque markers, fifos) with random paths (`..`,
//! `.`, empty components, leading `/` or `./`) are imported as a rootfs. Whatever the archive, the
//! import must not panic, and whether it succeeds or fails nothing may be written outside the
//! store: a sentinel directory next to the store (which symlink targets often point at) must stay
//! as the test left it, and no file named like one of the generator's markers may appear outside
//! the store. On success, the unpacked layer must hold nothing that resolves outside of it.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::Tb;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// File names that only the generator uses: none may ever show up outside the store.
const MARKERS: [&str; 2] = ["pwnA", "pwnB"];

/// What the test itself puts in the sentinel directory `<tmp>/outside`.
const SECRET: &str = "secret";
const SECRET_DATA: &[u8] = b"do not touch";

/// The name the rootfs is imported under.
const NAME: &str = "prop:latest";

#[derive(Debug, Clone, Copy)]
enum Lead {
    None,
    Slash,
    Dot,
}

/// A path as written in the tar header: an optional lead, components joined by `/`, and an
/// optional trailing `/`.
#[derive(Debug, Clone)]
struct GenPath {
    lead: Lead,
    comps: Vec<&'static str>,
    trailing: bool,
}

impl GenPath {
    fn render_with_leaf(&self, leaf: Option<&str>) -> String {
        let mut comps: Vec<&str> = self.comps.clone();
        if let Some(leaf) = leaf {
            comps.pop();
            comps.push(leaf);
        }
        let lead = match self.lead {
            Lead::None => "",
            Lead::Slash => "/",
            Lead::Dot => "./",
        };
        let tail = if self.trailing { "/" } else { "" };
        format!("{lead}{}{tail}", comps.join("/"))
    }

    fn render(&self) -> String {
        self.render_with_leaf(None)
    }
}

/// A symlink or hard link target; the sentinel directory's absolute path is only known per case.
#[derive(Debug, Clone)]
enum Target {
    /// A generated path, relative or absolute.
    Path(GenPath),
    /// `../` repeated, then a suffix (often the sentinel directory, seen from some depth).
    Up(usize, &'static str),
    /// The sentinel directory's absolute path, then a suffix.
    Outside(&'static str),
    /// A fixed string.
    Lit(&'static str),
}

impl Target {
    fn render(&self, outside: &Path) -> String {
        match self {
            Target::Path(p) => p.render(),
            Target::Up(n, suffix) => format!("{}{suffix}", "../".repeat(*n)),
            Target::Outside(suffix) => outside.join(suffix).display().to_string(),
            Target::Lit(s) => (*s).to_string(),
        }
    }
}

#[derive(Debug, Clone)]
enum Kind {
    File,
    Dir,
    Symlink(Target),
    HardLink(Target),
    /// `.wh.NAME` in place of the path's last component.
    Whiteout(&'static str),
    /// `.wh..wh..opq` in place of the path's last component.
    Opaque,
    Fifo,
}

#[derive(Debug, Clone)]
struct Entry {
    path: GenPath,
    kind: Kind,
}

impl Entry {
    fn header_path(&self) -> String {
        match self.kind {
            Kind::Whiteout(name) => self.path.render_with_leaf(Some(&format!(".wh.{name}"))),
            Kind::Opaque => self.path.render_with_leaf(Some(".wh..wh..opq")),
            _ => self.path.render(),
        }
    }
}

/// A path component. Tame archives have no `..`, so more of them unpack.
fn comp(hostile: bool) -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => Just("a"),
        4 => Just("b"),
        3 => Just("evil"),
        2 => Just(MARKERS[0]),
        2 => Just(MARKERS[1]),
        u32::from(hostile) => Just(".."),
        1 => Just("."),
        1 => Just(""),
    ]
}

/// A path; tame ones are never absolute.
fn gen_path(hostile: bool) -> impl Strategy<Value = GenPath> {
    let lead = prop_oneof![
        6 => Just(Lead::None),
        2 => Just(Lead::Dot),
        u32::from(hostile) => Just(Lead::Slash),
    ];
    (
        lead,
        prop::collection::vec(comp(hostile), 1..=4),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(lead, comps, trailing)| GenPath {
            lead,
            comps,
            trailing,
        })
}

fn target(hostile: bool) -> impl Strategy<Value = Target> {
    let suffix = prop_oneof![
        Just(""),
        Just("outside"),
        Just("outside/secret"),
        Just("outside/pwnA"),
        Just("etc"),
        Just("tmp"),
    ];
    prop_oneof![
        4 => gen_path(hostile).prop_map(Target::Path),
        3 => (0usize..=9, suffix).prop_map(|(n, s)| Target::Up(n, s)),
        3 => prop_oneof![Just(""), Just(SECRET), Just(MARKERS[0])].prop_map(Target::Outside),
        2 => prop_oneof![
            Just("/"),
            Just(".."),
            Just("."),
            Just("/tmp"),
            Just("/etc"),
            Just("/etc/passwd"),
            Just(""),
        ]
        .prop_map(Target::Lit),
    ]
}

/// Hard link targets: tame ones name paths of the archive, so some links are made.
fn link_target(hostile: bool) -> impl Strategy<Value = Target> {
    prop_oneof![
        u32::from(!hostile) * 8 + 1 => gen_path(hostile).prop_map(Target::Path),
        1 => target(hostile),
    ]
}

fn kind(hostile: bool) -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => Just(Kind::File),
        3 => Just(Kind::Dir),
        4 => target(hostile).prop_map(Kind::Symlink),
        2 => link_target(hostile).prop_map(Kind::HardLink),
        1 => comp(hostile).prop_map(Kind::Whiteout),
        1 => Just(Kind::Opaque),
        1 => Just(Kind::Fifo),
    ]
}

fn entries(hostile: bool) -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec(
        (gen_path(hostile), kind(hostile)).prop_map(|(path, kind)| Entry { path, kind }),
        1..=12,
    )
}

/// A third of the archives are hostile throughout; the others avoid `..` and absolute entry paths
/// (their symlinks still point anywhere), so that the success path gets exercised too.
fn archive() -> impl Strategy<Value = Vec<Entry>> {
    prop_oneof![1 => entries(true), 2 => entries(false)]
}

fn build(entries: &[Entry], outside: &Path) -> Vec<u8> {
    let mut tb = Tb::new();
    for e in entries {
        let path = e.header_path();
        match &e.kind {
            Kind::File => tb.file(&path, b"data\n", 0o644),
            Kind::Dir => tb.dir(&path, 0o755),
            Kind::Symlink(t) => tb.symlink(&path, &t.render(outside)),
            Kind::HardLink(t) => tb.hardlink(&path, &t.render(outside)),
            Kind::Whiteout(_) | Kind::Opaque => tb.file(&path, b"", 0o644),
            Kind::Fifo => tb.fifo(&path),
        };
    }
    tb.finish()
}

/// A fresh `/tmp/lwt-img-prop-*` with the sentinel directory `outside/` holding one file.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        assert!(
            // SAFETY: geteuid has no preconditions.
            unsafe { libc::geteuid() } == 0,
            "the image store tests must run as root (ownership, device nodes, overlayfs)"
        );
        let dir = tempfile::Builder::new()
            .prefix("lwt-img-prop-")
            .tempdir_in("/tmp")
            .unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join(SECRET), SECRET_DATA).unwrap();
        Case { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn outside(&self) -> PathBuf {
        self.path().join("outside")
    }
    fn store_root(&self) -> PathBuf {
        self.path().join("store")
    }
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Every path below `dir`, recursively, not following symlinks and not entering `skip`.
fn walk(dir: &Path, skip: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if Some(p.as_path()) == skip {
                continue;
            }
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// Import `entries` as a rootfs into a fresh store and check every invariant. Returns whether the
/// import succeeded.
fn check(entries: &[Entry]) -> bool {
    let case = Case::new();
    let tar = build(entries, &case.outside());
    let src = case.path().join("case.tar");
    fs::write(&src, &tar).unwrap();
    let store = image::Store::open(&case.store_root()).unwrap();

    let result = catch_unwind(AssertUnwindSafe(|| store.import(&src, Some(NAME))));
    let result = match result {
        Ok(r) => r,
        Err(_) => panic!("import panicked on {entries:#?}"),
    };

    assert_nothing_outside(&case);

    match result {
        Ok(image) => {
            assert_eq!(store.list().unwrap().len(), 1, "one image is tagged");
            let layers = store.layer_dirs(&image).unwrap();
            assert_eq!(layers.len(), 1, "a rootfs is one layer");
            assert_contained(&layers[0], &case.store_root());
            // Unpacking (done again if needed) still wrote nothing outside.
            assert_nothing_outside(&case);
            true
        }
        Err(err) => {
            // Whatever the reason, a failed import leaves the store as it found it.
            assert!(store.list().unwrap().is_empty(), "nothing tagged: {err}");
            for sub in ["blobs/sha256", "layers/sha256", "tmp"] {
                let left = names_in(&case.store_root().join(sub));
                assert!(left.is_empty(), "{sub} left {left:?} after: {err}");
            }
            false
        }
    }
}

/// The sentinel directory is as the test left it, the test dir holds only what the test made, and
/// no marker name exists outside the store (nor where climbing symlinks would lead: `/`, `/tmp`,
/// `/etc`).
fn assert_nothing_outside(case: &Case) {
    let outside = case.outside();
    assert_eq!(
        names_in(&outside),
        BTreeSet::from([SECRET.to_string()]),
        "the sentinel directory was written to"
    );
    let secret = outside.join(SECRET);
    let md = fs::symlink_metadata(&secret).unwrap();
    assert!(md.is_file(), "the secret is still a plain file");
    assert_eq!(md.nlink(), 1, "nothing hard-linked the secret");
    assert_eq!(fs::read(&secret).unwrap(), SECRET_DATA);
    assert_eq!(
        names_in(case.path()),
        BTreeSet::from([
            "case.tar".to_string(),
            "outside".to_string(),
            "store".to_string()
        ]),
        "the test dir holds only what the test made"
    );
    let store_root = case.store_root();
    for p in walk(case.path(), Some(&store_root)) {
        let name = p.file_name().unwrap().to_string_lossy();
        assert!(
            !MARKERS.contains(&name.as_ref()),
            "marker written outside the store: {}",
            p.display()
        );
    }
    for dir in ["/", "/tmp", "/etc"] {
        for m in MARKERS {
            let p = Path::new(dir).join(m);
            assert!(
                fs::symlink_metadata(&p).is_err(),
                "marker written at {}",
                p.display()
            );
        }
    }
}

/// Nothing in the layer resolves outside it: it is reached through real directories only (never
/// a symlink), stays on the layer's filesystem, and every hard-linked inode has all its names in
/// the layer.
fn assert_contained(layer: &Path, store_root: &Path) {
    let store_root = fs::canonicalize(store_root).unwrap();
    let md = fs::symlink_metadata(layer).unwrap();
    assert!(md.is_dir(), "the layer is a real directory");
    let root = fs::canonicalize(layer).unwrap();
    assert!(
        root.starts_with(&store_root),
        "layer {} is outside the store",
        root.display()
    );
    let dev = md.dev();
    let mut names_per_inode: HashMap<u64, (u64, Vec<PathBuf>)> = HashMap::new();
    for p in walk(&root, None) {
        let parent = fs::canonicalize(p.parent().unwrap()).unwrap();
        let resolved = parent.join(p.file_name().unwrap());
        assert!(
            resolved.starts_with(&root) && resolved != root,
            "{} resolves to {} outside the layer {}",
            p.display(),
            resolved.display(),
            root.display()
        );
        let md = fs::symlink_metadata(&p).unwrap();
        assert_eq!(md.dev(), dev, "{} is on another filesystem", p.display());
        if !md.is_dir() {
            let slot = names_per_inode
                .entry(md.ino())
                .or_insert((md.nlink(), Vec::new()));
            slot.1.push(p);
        }
    }
    for (ino, (nlink, names)) in names_per_inode {
        assert_eq!(
            nlink,
            names.len() as u64,
            "inode {ino} has names outside the layer: {names:?}"
        );
    }
}

#[test]
fn random_archives_never_escape_the_store() {
    // 200 cases unless PROPTEST_CASES asks for another number (for a longer run by hand).
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let ok = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let result = runner.run(&archive(), |entries| {
        if check(&entries) {
            ok.fetch_add(1, Ordering::Relaxed);
        } else {
            failed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    let (ok, failed) = (ok.into_inner(), failed.into_inner());
    eprintln!("imports (shrinking included): {ok} succeeded, {failed} refused");
    if let Err(e) = result {
        panic!("{e}");
    }
    // The generator must reach the success path often enough to check the unpacked tree.
    assert!(ok >= 10, "only {ok} of the generated archives unpacked");
    assert!(
        failed >= 10,
        "only {failed} of the generated archives were refused"
    );
}

/// The generator can make archives that unpack; make sure the success path is checked at all.
#[test]
fn a_benign_generated_archive_unpacks() {
    let p = |comps: &[&'static str]| GenPath {
        lead: Lead::None,
        comps: comps.to_vec(),
        trailing: false,
    };
    let entries = vec![
        Entry {
            path: p(&["a"]),
            kind: Kind::Dir,
        },
        Entry {
            path: p(&["a", "b"]),
            kind: Kind::File,
        },
        Entry {
            path: p(&["a", "evil"]),
            kind: Kind::Symlink(Target::Up(9, "outside")),
        },
        Entry {
            path: p(&["b"]),
            kind: Kind::Symlink(Target::Outside(SECRET)),
        },
        Entry {
            path: p(&["pwnA"]),
            kind: Kind::HardLink(Target::Path(p(&["a", "b"]))),
        },
        Entry {
            path: p(&["a", "x"]),
            kind: Kind::Whiteout("b"),
        },
        Entry {
            path: p(&["a", "x"]),
            kind: Kind::Opaque,
        },
    ];
    assert!(check(&entries), "the benign archive unpacks");
}

/// The oracles catch what they are meant to: a marker outside the store, a touched sentinel, a
/// hard link shared with a file outside the layer.
#[test]
fn the_checks_catch_escapes() {
    let fails = |f: &dyn Fn()| catch_unwind(AssertUnwindSafe(f)).is_err();

    let case = Case::new();
    fs::write(case.path().join("case.tar"), b"").unwrap();
    image::Store::open(&case.store_root()).unwrap();
    assert_nothing_outside(&case);
    fs::write(case.outside().join(MARKERS[0]), b"x").unwrap();
    assert!(fails(&|| assert_nothing_outside(&case)));
    fs::remove_file(case.outside().join(MARKERS[0])).unwrap();
    fs::create_dir(case.path().join("elsewhere")).unwrap();
    fs::write(case.path().join("elsewhere").join(MARKERS[1]), b"x").unwrap();
    assert!(fails(&|| assert_nothing_outside(&case)));
    fs::remove_dir_all(case.path().join("elsewhere")).unwrap();
    let layer = case.store_root().join("layers/sha256/fake");
    fs::create_dir(&layer).unwrap();
    fs::hard_link(case.outside().join(SECRET), layer.join("stolen")).unwrap();
    assert!(fails(&|| assert_nothing_outside(&case)));
    assert!(fails(&|| assert_contained(&layer, &case.store_root())));
    fs::remove_file(layer.join("stolen")).unwrap();
    std::os::unix::fs::symlink(case.outside(), layer.join("evil")).unwrap();
    assert_contained(&layer, &case.store_root());
    assert_nothing_outside(&case);
}

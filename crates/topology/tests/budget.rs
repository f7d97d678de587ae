//! Fuzzing the topology loader against a budget: every generated input — large `env`/`labels`
//! maps and `binds` lists merged across defaults, kinds, groups and nodes, alias fan-outs, long
//! names, env-files naming devices and FIFOs — must load (or be refused) within a time and a
//! memory budget per input. Memory is measured by this test binary's own allocator (peak bytes
//! live during one `load`, above what was live before it).
//!
//! The budget per input is 200 MB and 2 s (10 s in a debug build). The inputs stay below about
//! 1 MB of text: the normalised lab holds every inherited entry once per node, so it is up to ~100
//! times larger than such a file (a known limit, see RELIABILITY.md). A 48 MB file has a test of its
//! own (memory only); its time is measured by the `validate_file` example.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use topology::{load, Options, Source};

/// Counts live bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// One measurement at a time: the counters are process-wide.
static MEASURE: Mutex<()> = Mutex::new(());

/// 2 s in an optimised build; a debug build (what `cargo test` runs) is about five times slower
/// on this loader, so it gets 10 s.
const TIME_BUDGET: Duration = Duration::from_secs(if cfg!(debug_assertions) { 10 } else { 2 });
const MEMORY_BUDGET: usize = 200 << 20;

/// Load `text` with the real env-file reader; return (time, peak bytes above the start).
fn measure(text: &str) -> (Duration, usize) {
    let _g = MEASURE.lock().unwrap_or_else(|e| e.into_inner());
    let src = Source::from_text("fuzz.clab.yml", text, Path::new("/tmp"));
    let env = |_: &str| None;
    let opts = Options {
        env: &env,
        runtime: None,
        read_file: &topology::read_env_file,
    };
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let t = Instant::now();
    let out = load(&src, &opts);
    let took = t.elapsed();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    drop(out);
    (took, peak)
}

/// A topology whose map and list fields are `width` entries at each level they are given, over
/// `nodes` nodes, with `alias` anchors reused `fanout` times and optional hostile env-files.
fn topology(
    width: usize,
    nodes: usize,
    levels: u8,
    fanout: usize,
    env_file: Option<&str>,
    long: bool,
) -> String {
    let mut t = String::from("name: fz\ntopology:\n");
    let map = |t: &mut String, indent: &str, key: &str, tag: &str| {
        let _ = writeln!(t, "{indent}{key}:");
        for i in 0..width {
            let _ = writeln!(t, "{indent}  K{i}: {tag}{i}");
        }
    };
    let list = |t: &mut String, indent: &str, tag: &str| {
        let _ = writeln!(t, "{indent}binds:");
        for i in 0..width {
            let _ = writeln!(t, "{indent}  - /tmp/{tag}{i}:/mnt/{tag}{i}");
        }
    };
    t.push_str("  defaults:\n    kind: linux\n");
    if levels & 1 != 0 {
        map(&mut t, "    ", "env", "d");
        map(&mut t, "    ", "labels", "d");
        list(&mut t, "    ", "d");
    }
    t.push_str("  kinds:\n    linux:\n      image: x\n");
    if levels & 2 != 0 {
        map(&mut t, "      ", "env", "k");
        list(&mut t, "      ", "k");
    }
    t.push_str("  groups:\n    g:\n      labels: &shared\n        a: b\n");
    if levels & 4 != 0 {
        map(&mut t, "      ", "env", "g");
    }
    t.push_str("  nodes:\n");
    for n in 0..nodes {
        let name = if long {
            format!("n{n}{}", "x".repeat(120))
        } else {
            format!("n{n}")
        };
        let _ = writeln!(t, "    {name}:\n      group: g");
        if n < fanout {
            t.push_str("      labels: *shared\n");
        }
        if let Some(f) = env_file {
            let _ = writeln!(t, "      env-files: [{f}]");
        }
        if levels & 8 != 0 && n == 0 {
            map(&mut t, "      ", "env", "n");
        }
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn load_stays_within_its_budget(
        width in prop_oneof![0usize..50, 500usize..2000],
        nodes in 1usize..30,
        levels in 0u8..16,
        fanout in 0usize..40,
        env_file in prop_oneof![Just(None), Just(Some("/dev/zero")), Just(Some("/dev/urandom")), Just(Some("/proc/self/mem"))],
        long in any::<bool>(),
    ) {
        let text = topology(width, nodes, levels, fanout, env_file, long);
        let (took, peak) = measure(&text);
        prop_assert!(took < TIME_BUDGET, "{} bytes took {took:?}", text.len());
        prop_assert!(peak < MEMORY_BUDGET, "{} bytes peaked at {peak} bytes", text.len());
    }
}

/// A FIFO as an env-file: refused at once (the open does not wait for a writer).
#[test]
fn a_fifo_env_file_is_refused_within_budget() {
    let dir = std::env::temp_dir().join(format!("lwt-fz-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let text = topology(10, 2, 15, 1, Some(fifo.to_str().unwrap()), false);
    let (took, peak) = measure(&text);
    assert!(took < TIME_BUDGET, "took {took:?}");
    assert!(peak < MEMORY_BUDGET, "peaked at {peak} bytes");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A 48 MB topology (220,000 `env` entries over defaults and a kind, inherited by 40 nodes):
/// the source held once, its scalars borrowed from it, one merged map shared by the nodes. Peak
/// bytes live from reading the text to the loaded lab stay under 160 MB, which keeps `labwire
/// validate`'s peak RSS (allocator slack and the binary on top) under the 200 MB budget; holding
/// the scalars' text a second time would not fit.
#[test]
fn a_48_mb_topology_loads_within_the_memory_budget() {
    let mut text = String::from("name: big\ntopology:\n  defaults:\n    env:\n");
    let value = "v".repeat(200);
    for i in 0..110_000 {
        writeln!(text, "      K{i:06}: {value}").unwrap();
    }
    text.push_str("  kinds:\n    linux:\n      env:\n");
    for i in 0..110_000 {
        writeln!(text, "        L{i:06}: {value}").unwrap();
    }
    text.push_str("  nodes:\n");
    for n in 0..40 {
        writeln!(text, "    n{n}: {{kind: linux}}").unwrap();
    }
    assert!(text.len() > 45 << 20, "{} bytes", text.len());
    let _g = MEASURE.lock().unwrap_or_else(|e| e.into_inner());
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let src = Source::from_text("big.clab.yml", text.as_str(), Path::new("/tmp"));
    let env = |_: &str| None;
    let opts = Options {
        env: &env,
        runtime: None,
        read_file: &topology::read_env_file,
    };
    let lab = load(&src, &opts).expect("loads").lab;
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert_eq!(lab.nodes.len(), 40);
    assert_eq!(lab.nodes[0].env.len(), 220_000);
    assert!(
        std::sync::Arc::ptr_eq(&lab.nodes[0].env, &lab.nodes[39].env),
        "the nodes share one map"
    );
    assert!(peak < 160 << 20, "peaked at {} MB", peak >> 20);
    eprintln!("48 MB topology: peak {} MB live", peak >> 20);
}

//! Reliability and hostile-input tests (issue 8): a deploy killed with SIGKILL at random instants
//! (the command, its worker, the lab's reaper) and then destroyed leaves nothing; a deploy failing
//! on its last link leaves nothing; two labs deployed at once on one management network stay
//! isolated; deploy/destroy cycles do not grow namespaces, links, mounts, descriptors, processes
//! or memory; a lab that already runs is refused clearly; hostile names and oversized or
//! alias-bomb YAML are refused quickly with bounded memory.
//!
//! They run as root, each with its own lab name (`lwt-r…`), management network and subnet
//! (10.230.0.0/24 … 10.237.0.0/24, fd00:230::/64 …; the heavy 300-node ring uses 10.238.0.0/23),
//! temp directory and drop-guard cleanup, so they run in parallel with the other end-to-end tests.
//!
//! `LABWIRE_HEAVY=1` switches to the sizes of the issue (300-node ring, 20 kills per target, two
//! 60-node labs, 200 deploy/destroy cycles); the default sizes keep the file under ~90 s on two
//! cores. `LABWIRE_SEED=N` replays the random kill instants of an earlier run (each test prints
//! its seed).
//!
//! labwire-init (a binary of the `runtime` crate) must be built next to `labwire`: run
//! `cargo build` (same profile and target directory) before `cargo test`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Shared helpers of this file
// ---------------------------------------------------------------------------------------------

fn heavy() -> bool {
    std::env::var("LABWIRE_HEAVY").is_ok_and(|v| v == "1")
}

/// Tests of this file share the machine; the cycle test, which counts host-wide objects and this
/// process's descriptors, runs alone (write lock), the others together (read lock).
static SERIAL: RwLock<()> = RwLock::new(());
/// The heavy 300-node rings of the kill tests share 10.238.0.0/23: one at a time.
static HEAVY_SUBNET: Mutex<()> = Mutex::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    SERIAL.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    SERIAL.write().unwrap_or_else(|e| e.into_inner())
}

/// xorshift64*: enough for kill instants; seeded from LABWIRE_SEED or the clock (printed).
struct Rng(u64);

impl Rng {
    fn new(test: &str) -> Rng {
        let seed = std::env::var("LABWIRE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock after 1970");
                (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32)
            });
        eprintln!("{test}: LABWIRE_SEED={seed}");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, max].
    fn below(&mut self, max: Duration) -> Duration {
        let us = max.as_micros() as u64;
        Duration::from_micros(if us == 0 { 0 } else { self.next() % (us + 1) })
    }
}

/// `labwire generate ring --nodes N --name NAME`, its management block replaced by `mgmt`.
fn ring_yaml(name: &str, nodes: usize, mgmt: &str) -> String {
    let mut c = labwire();
    c.args([
        "generate",
        "ring",
        "--nodes",
        &nodes.to_string(),
        "--name",
        name,
    ]);
    let generated = text(&run_ok(c).stdout);
    let mut out = String::new();
    let mut in_mgmt = false;
    for line in generated.lines() {
        if !line.starts_with([' ', '\t', '#']) && !line.is_empty() {
            in_mgmt = false;
        }
        if line.starts_with("mgmt:") {
            in_mgmt = true;
            continue;
        }
        if in_mgmt {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.starts_with("name:") {
            out.push_str(mgmt);
            out.push('\n');
        }
    }
    out
}

fn ring_nodes(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

fn mgmt_block(network: &str, v4: &str, v6: &str) -> String {
    format!("mgmt: {{network: {network}, ipv4-subnet: {v4}, ipv6-subnet: {v6}}}")
}

/// A TestLab over a ring of `n` nodes.
fn ring_lab(test: &str, name: &str, network: &str, n: usize, v4: &str, v6: &str) -> TestLab {
    let nodes = ring_nodes(n);
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let yaml = ring_yaml(name, n, &mgmt_block(network, v4, v6));
    TestLab::new(test, name, network, &refs, &yaml)
}

/// Arguments of a process (empty for a zombie or a process that is gone).
fn cmdline(pid: &str) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            c.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(text)
                .collect()
        })
        .unwrap_or_default()
}

fn ppid(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)
        .map(str::to_string)
}

fn pids() -> Vec<String> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .collect()
}

/// Live (non-zombie) processes of this lab: any labwire-init with `--lab LAB` (node inits and the
/// reaper) and any process whose arguments name the lab's topology file (the deploy worker).
fn live_lab_processes(lab: &TestLab) -> Vec<String> {
    let file = lab.file.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for pid in pids() {
        if proc_state(&pid).is_none_or(|s| s == 'Z') {
            continue;
        }
        let args = cmdline(&pid);
        let of_lab =
            args.windows(2).any(|w| w[0] == "--lab" && w[1] == lab.name) || args.contains(&file);
        if of_lab {
            out.push(format!("{pid} {}", args.join(" ")));
        }
    }
    out
}

/// The lab's live reaper (`labwire-init reaper --lab LAB`), by pid.
fn reapers(lab: &str) -> Vec<String> {
    pids()
        .into_iter()
        .filter(|p| proc_state(p).is_some_and(|s| s != 'Z'))
        .filter(|p| {
            let a = cmdline(p);
            a.len() == 4 && a[0].ends_with("labwire-init") && a[1] == "reaper" && a[3] == lab
        })
        .collect()
}

/// The deploy worker: the `labwire` process whose parent is the lab's reaper.
fn worker_of(reaper: &str) -> Option<String> {
    pids().into_iter().find(|p| {
        ppid(p).as_deref() == Some(reaper)
            && proc_state(p).is_some_and(|s| s != 'Z')
            && cmdline(p).first().is_some_and(|a| a.ends_with("/labwire"))
    })
}

/// Host links and bridges the lab's journal records (empty when it has no state).
fn journal_host_objects(lab: &TestLab) -> BTreeSet<String> {
    let path = lab.state_dir().join("journal");
    let Ok(j) = std::fs::read_to_string(&path) else {
        return BTreeSet::new();
    };
    j.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| matches!(v["op"].as_str(), Some("host-link" | "bridge")))
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect()
}

fn journal_lines(lab: &TestLab) -> usize {
    std::fs::read(lab.state_dir().join("journal"))
        .map(|j| j.iter().filter(|b| **b == b'\n').count())
        .unwrap_or(0)
}

fn journal_done(lab: &TestLab) -> bool {
    std::fs::read_to_string(lab.state_dir().join("journal"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|v| v["op"] == "done")
}

/// Everything of the lab on the host that [`TestLab::assert_nothing_left`] does not already
/// check: the worker and reaper, the hosts block, the runtime directory, mounts naming it, the
/// lab directory.
fn more_leftovers(lab: &TestLab, lab_dir_too: bool) -> Vec<String> {
    let mut left: Vec<String> = live_lab_processes(lab)
        .into_iter()
        .map(|p| format!("process {p}"))
        .collect();
    if hosts_block(&read_etc_hosts(), &lab.name).is_some() {
        left.push("the /etc/hosts block".into());
    }
    let run = lab::paths::lab_run_dir(&lab.name);
    if run.exists() {
        left.push(format!("runtime directory {}", run.display()));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let needles = [
        format!("clab-{}-", lab.name),
        format!("clab-{}/", lab.name),
        format!("/{}/", lab.name),
    ];
    for m in mountinfo.lines() {
        if needles.iter().any(|n| m.contains(n.as_str())) {
            left.push(format!("mount {m}"));
        }
    }
    if lab_dir_too && lab.lab_dir().exists() {
        left.push(format!("lab directory {}", lab.lab_dir().display()));
    }
    left
}

/// Zero leftovers: netns entries, recorded and expected host links, the management bridge,
/// mounts, processes (non-zombie), state and runtime directories, the hosts block; and the lines
/// of /etc/hosts outside labwire's blocks are what they were before (`hosts_before`).
fn assert_zero_leftovers(lab: &TestLab, links: &BTreeSet<String>, hosts_before: &[String]) {
    let extra: Vec<String> = links.iter().cloned().collect();
    lab.assert_nothing_left(&extra);
    let r = poll(Duration::from_secs(8), || {
        let l = more_leftovers(lab, true);
        if l.is_empty() {
            Ok(())
        } else {
            Err(l.join("\n  "))
        }
    });
    if let Err(l) = r {
        panic!("lab {} left things behind:\n  {l}", lab.name);
    }
    assert_eq!(
        without_blocks(&read_etc_hosts()),
        hosts_before,
        "/etc/hosts outside labwire's blocks changed"
    );
}

/// `destroy -t FILE --cleanup` must succeed: by its topology, a lab with nothing left to remove
/// is destroyed as a no-op (by a name nothing is recorded under, destroy fails as inspect does).
fn destroy_ok(lab: &TestLab) {
    let mut c = lab.cmd();
    c.args(["destroy", "--cleanup", "-t"]).arg(&lab.file);
    let out = run_timeout(c, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "destroy of {}: {}",
        lab.name,
        describe(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// 1. SIGKILL at random instants during a deploy, then destroy
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    /// The `labwire deploy` the user waits on (the one the test spawned).
    Command,
    /// The worker: the `labwire` whose parent is the reaper.
    Worker,
    /// The lab's reaper, `labwire-init reaper --lab LAB`.
    Reaper,
}

/// Deploy a ring and SIGKILL `target` at a random instant within the time a full deploy takes;
/// then `destroy` must leave nothing. Repeated `runs` times.
fn kill_during_deploy(test: &str, name: &str, octet: u8, target: Target) {
    let _s = shared();
    let (n, runs) = if heavy() { (300, 20) } else { (60, 8) };
    let _subnet = heavy().then(|| HEAVY_SUBNET.lock().unwrap_or_else(|e| e.into_inner()));
    let (v4, v6) = if heavy() {
        ("10.238.0.0/23".to_string(), "fd00:238::/64".to_string())
    } else {
        (format!("10.{octet}.0.0/24"), format!("fd00:{octet}::/64"))
    };
    let lab = ring_lab(test, name, name, n, &v4, &v6);
    let hosts_before = without_blocks(&read_etc_hosts());
    let mut rng = Rng::new(test);

    // Calibrate: how many journal lines a whole deploy writes (and it leaves nothing after
    // destroy). Kill instants are then drawn over the deploy's progress — "after the k-th journal
    // line, plus a random 0-3 ms" — which covers every phase however fast the machine is.
    let t0 = Instant::now();
    lab.deploy();
    let full = t0.elapsed();
    let total = journal_lines(&lab);
    let links = journal_host_objects(&lab);
    destroy_ok(&lab);
    assert_zero_leftovers(&lab, &links, &hosts_before);
    eprintln!("{test}: a full deploy of {n} nodes takes {full:?} and writes {total} journal lines");

    let mut landed_before_done = 0;
    for run in 0..runs {
        let k = (rng.next() % (total as u64 + 1)) as usize;
        let jitter = rng.below(Duration::from_millis(3));
        let err_path = lab.dir.join(format!("deploy-{run}.err"));
        let mut c = lab.deploy_cmd();
        c.stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_path).expect("create deploy.err"));
        let start = Instant::now();
        let mut child = c.spawn().expect("start labwire deploy");
        let exited =
            |child: &mut std::process::Child| child.try_wait().expect("try_wait").is_some();
        // Find the victim as soon as it exists (the reaper execs after forking the worker).
        let mut victim: Option<i32> = None;
        if target != Target::Command {
            while victim.is_none()
                && !exited(&mut child)
                && start.elapsed() < Duration::from_secs(10)
            {
                if let Some(r) = reapers(&lab.name).first() {
                    victim = if target == Target::Reaper {
                        Some(r.parse().expect("pid"))
                    } else {
                        worker_of(r).map(|w| w.parse().expect("pid"))
                    };
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(
                victim.is_some() || exited(&mut child),
                "{test}: no {target:?} found for a running deploy"
            );
        }
        let mut seen = 0;
        while seen < k && !exited(&mut child) && start.elapsed() < Duration::from_secs(60) {
            seen = journal_lines(&lab);
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(jitter);
        let finished_before = exited(&mut child);
        let at = start.elapsed();
        match (target, victim) {
            (Target::Command, _) => {
                let _ = child.kill();
            }
            // SAFETY: the pid was a live process of this lab a moment ago; the reaper and the
            // worker are not reaped by anyone but their parents, so the pid is not reused yet.
            (_, Some(pid)) => unsafe {
                libc::kill(pid, libc::SIGKILL);
            },
            (_, None) => {}
        }
        let status = wait_timeout(&mut child, Duration::from_secs(120)).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("{test} run {run}: labwire deploy hangs after SIGKILL to the {target:?}");
        });
        // A worker rolling back (Command) or still deploying (Reaper) goes away by itself.
        let gone = poll(Duration::from_secs(120), || {
            let w: Vec<String> = live_lab_processes(&lab)
                .into_iter()
                .filter(|p| p.contains(&*lab.file.to_string_lossy()))
                .collect();
            if w.is_empty() {
                Ok(())
            } else {
                Err(w.join("\n"))
            }
        });
        if let Err(w) = gone {
            panic!("{test} run {run}: the deploy worker outlives the kill by 120 s:\n{w}");
        }
        let done = journal_done(&lab);
        if !finished_before {
            landed_before_done += 1;
        }
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        eprintln!(
            "{test} run {run}: SIGKILL to the {target:?} after journal line {k} (+{jitter:?}, at {at:?}; deploy {}; {status}; journal done: {done})",
            if finished_before { "already finished" } else { "running" }
        );
        let mut links = journal_host_objects(&lab);
        links.extend(lab.expected_host_objects());
        destroy_ok(&lab);
        assert!(
            !lab.state_dir().exists(),
            "{test} run {run}: destroy succeeded but kept {}\n{err}",
            lab.state_dir().display()
        );
        // A second destroy is a no-op.
        destroy_ok(&lab);
        assert_zero_leftovers(&lab, &links, &hosts_before);
    }
    eprintln!("{test}: {landed_before_done} of {runs} kills landed while the deploy command ran");
}

#[test]
fn sigkill_deploy_command_at_random_instants_then_destroy_leaves_nothing() {
    kill_during_deploy("rkc", "lwt-rkc", 230, Target::Command);
}

#[test]
fn sigkill_worker_at_random_instants_then_destroy_leaves_nothing() {
    kill_during_deploy("rkw", "lwt-rkw", 231, Target::Worker);
}

#[test]
fn sigkill_reaper_at_random_instants_then_destroy_leaves_nothing() {
    kill_during_deploy("rkr", "lwt-rkr", 232, Target::Reaper);
}

/// SIGKILL to the command while its deploy runs: the worker rolls back by itself (before any
/// destroy) — the lifeline promise.
#[test]
fn sigkill_deploy_command_mid_deploy_rolls_back_without_destroy() {
    let _s = shared();
    let n = if heavy() { 300 } else { 60 };
    let _subnet = heavy().then(|| HEAVY_SUBNET.lock().unwrap_or_else(|e| e.into_inner()));
    let (v4, v6) = if heavy() {
        ("10.238.0.0/23", "fd00:238::/64")
    } else {
        ("10.238.0.0/24", "fd00:238::/64")
    };
    let lab = ring_lab("rkl", "lwt-rkl", "lwt-rkl", n, v4, v6);
    let hosts_before = without_blocks(&read_etc_hosts());
    let mut rolled_back = 0;
    for run in 0..3 {
        let mut c = lab.deploy_cmd();
        c.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = c.spawn().expect("start labwire deploy");
        // Kill once the first nodes are journalled: the deploy is surely under way.
        let t0 = Instant::now();
        let started = loop {
            let j = std::fs::read_to_string(lab.state_dir().join("journal")).unwrap_or_default();
            if j.contains("\"op\":\"node\"") {
                break true;
            }
            if t0.elapsed() > Duration::from_secs(10) || child.try_wait().ok().flatten().is_some() {
                break false;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let _ = child.kill();
        let _ = wait_timeout(&mut child, Duration::from_secs(60));
        if !started || journal_done(&lab) {
            eprintln!("rkl run {run}: the deploy was done before the kill; destroying");
            destroy_ok(&lab);
        } else {
            rolled_back += 1;
        }
        // No destroy: whatever the rollback left is a leftover.
        assert_zero_leftovers(
            &lab,
            &lab.expected_host_objects().into_iter().collect(),
            &hosts_before,
        );
    }
    eprintln!("rkl: {rolled_back} of 3 runs rolled back by themselves");
}

/// SIGKILL to `labwire destroy` at a random instant: a second destroy finishes the job.
#[test]
fn sigkill_destroy_at_random_instants_then_destroy_again_leaves_nothing() {
    let _s = shared();
    let n = if heavy() { 300 } else { 60 };
    let _subnet = heavy().then(|| HEAVY_SUBNET.lock().unwrap_or_else(|e| e.into_inner()));
    let (v4, v6) = if heavy() {
        ("10.238.0.0/23", "fd00:238::/64")
    } else {
        ("10.239.0.0/24", "fd00:239::/64")
    };
    let lab = ring_lab("rkd", "lwt-rkd", "lwt-rkd", n, v4, v6);
    let hosts_before = without_blocks(&read_etc_hosts());
    let mut rng = Rng::new("rkd");
    lab.deploy();
    let links = journal_host_objects(&lab);
    let t0 = Instant::now();
    destroy_ok(&lab);
    let full = t0.elapsed();
    assert_zero_leftovers(&lab, &links, &hosts_before);
    for run in 0..5 {
        lab.deploy();
        let mut links = journal_host_objects(&lab);
        links.extend(lab.expected_host_objects());
        let delay = rng.below(full);
        let mut c = lab.cmd();
        c.args(["destroy", "--name", &lab.name, "--cleanup"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().expect("start labwire destroy");
        std::thread::sleep(delay);
        let finished = child.try_wait().expect("try_wait").is_some();
        let _ = child.kill();
        let _ = wait_timeout(&mut child, Duration::from_secs(60));
        eprintln!(
            "rkd run {run}: SIGKILL to destroy at {delay:?} (of {full:?}; {})",
            if finished {
                "already finished"
            } else {
                "running"
            }
        );
        destroy_ok(&lab);
        assert_zero_leftovers(&lab, &links, &hosts_before);
    }
}

// ---------------------------------------------------------------------------------------------
// 2. A deploy failing on its last link
// ---------------------------------------------------------------------------------------------

#[test]
fn deploy_failing_on_last_link_leaves_nothing() {
    let _s = shared();
    // A 20-node ring, then a VXLAN to a multicast group without a parent interface: validation and
    // preflight pass, the kernel refuses it (EINVAL) after every node and other link was made.
    let n = 20;
    let mut yaml = ring_yaml(
        "lwt-rfl",
        n,
        &mgmt_block("lwt-rfl", "10.233.0.0/24", "fd00:233::/64"),
    );
    yaml.push_str(
        "    - {type: vxlan, endpoint: {node: n20, interface: vx0}, remote: 239.1.1.1, vni: 10}\n",
    );
    let nodes = ring_nodes(n);
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let lab = TestLab::new("rfl", "lwt-rfl", "lwt-rfl", &refs, &yaml);
    let hosts_before = without_blocks(&read_etc_hosts());
    let t0 = Instant::now();
    let out = lab.try_deploy();
    assert!(
        !out.status.success(),
        "the deploy should fail: {}",
        describe(&out)
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("vxlan link of n20:vx0") && err.contains("removing what was made"),
        "the failure should name the link and come after nodes and links were made: {}",
        describe(&out)
    );
    eprintln!("rfl: failed and rolled back in {:?}", t0.elapsed());
    // Without any destroy.
    assert_zero_leftovers(&lab, &BTreeSet::new(), &hosts_before);
    // And destroy afterwards is a no-op.
    destroy_ok(&lab);
}

/// Holds one TCP connection, from the side given (`s`: listen on 5000, `c HOST`: connect), until
/// killed; the client writes its pid to /tmp/client.pid once connected.
const HOLD_CONNECTION: &str = r#"import os, socket, sys, time
if sys.argv[1] == "s":
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 5000))
    srv.listen()
    conn, _ = srv.accept()
else:
    conn = socket.create_connection((sys.argv[2], 5000), timeout=10)
    open("/tmp/client.pid", "w").write(str(os.getpid()))
time.sleep(100000)
"#;

/// A node killed while it holds a TCP connection whose peer can no longer answer (a routing
/// daemon whose neighbour went first: the VM of `d2k_vm_impairments_and_link_flap`, here a link
/// taken down) leaves an orphaned socket retrying its FIN in the node's namespace. Without care
/// the namespace, its links and their ends in the host outlive the destroy by 100 s or more.
#[test]
fn destroy_of_a_node_with_a_connection_to_a_dead_peer_leaves_nothing() {
    let _g = shared();
    open_nos::ensure_image();
    let lab = LabBuilder::new()
        .env("LABWIRE_IMAGE_DIR", open_nos::IMAGE_DIR)
        .topology(
            r#"
            defaults:
              kind: linux
              image: open-nos:latest
              binds: [hold.py:/lab/hold.py:ro]
            nodes:
              a: {}
              b: {}
            links:
              - endpoints: ["a:eth1", "b:eth1"]
                ipv4: ["10.201.7.1/24", "10.201.7.2/24"]
            "#,
        )
        .build();
    std::fs::write(lab.dir.join("hold.py"), HOLD_CONNECTION).expect("write hold.py");
    lab.deploy();
    let detached = |script: &str| format!("sh -c 'setsid {script} </dev/null >/dev/null 2>&1 &'");
    lab.exec_ok("b", &detached("python3 /lab/hold.py s"));
    poll(Duration::from_secs(10), || {
        lab.exec_ok("b", "ss -Htln 'sport = :5000'")
            .contains("5000")
            .then_some(())
            .ok_or_else(|| "not listening".to_string())
    })
    .expect("the server in b never listened");
    lab.exec_ok("a", &detached("python3 /lab/hold.py c 10.201.7.2"));
    poll(Duration::from_secs(10), || {
        lab.exec("a", "cat /tmp/client.pid")
            .status
            .success()
            .then_some(())
            .ok_or_else(|| "no pid file".to_string())
    })
    .expect("the client in a never connected");

    // b can no longer answer; a's process dies with its connection open.
    lab.exec_ok("b", "ip link set eth1 down");
    lab.exec_ok("a", "sh -c 'kill -9 $(cat /tmp/client.pid)'");
    let orphan = poll(Duration::from_secs(5), || {
        let ss = lab.exec_ok("a", "ss -Htn state fin-wait-1");
        ss.contains("10.201.7.2:5000").then_some(()).ok_or(ss)
    });
    orphan.unwrap_or_else(|ss| panic!("no orphaned connection in a to set the case up: {ss}"));

    let t = Instant::now();
    destroy_ok(&lab);
    // The kernel frees the namespaces' links in the background: seconds, not minutes.
    lab.assert_nothing_left_within(&[], Duration::from_secs(10));
    eprintln!("destroy → nothing left: {:.1} s", t.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------------------------
// 3. Two labs deployed at once on one shared management network
// ---------------------------------------------------------------------------------------------

#[test]
fn two_labs_deployed_at_once_on_a_shared_network_stay_isolated() {
    let _s = shared();
    let n = if heavy() { 60 } else { 30 };
    let net = "lwt-r2l";
    // Dropped last: removes the shared bridge if labwire left it (so later runs start clean).
    let _bridge = RemoveBridgeOnDrop("br-lwt-r2l");
    let mgmt = mgmt_block(net, "10.234.0.0/24", "fd00:234::/64");
    let nodes = ring_nodes(n);
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let one = TestLab::with_file(
        "r2l",
        "lwt-r2la",
        net,
        &refs,
        "a.clab.yml",
        &ring_yaml("lwt-r2la", n, &mgmt),
    );
    let two = TestLab::with_file(
        "r2l",
        "lwt-r2lb",
        net,
        &refs,
        "b.clab.yml",
        &ring_yaml("lwt-r2lb", n, &mgmt),
    );
    let hosts_before = without_blocks(&read_etc_hosts());

    let spawn = |l: &TestLab| {
        let mut c = l.deploy_cmd();
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        c.spawn().expect("start labwire deploy")
    };
    let t0 = Instant::now();
    let mut children = [spawn(&one), spawn(&two)];
    for (c, l) in children.iter_mut().zip([&one, &two]) {
        let status = wait_timeout(c, Duration::from_secs(120))
            .unwrap_or_else(|| panic!("deploy of {} hangs", l.name));
        let mut err = String::new();
        let _ = c.stderr.take().expect("piped").read_to_string(&mut err);
        assert!(
            status.success(),
            "concurrent deploy of {} failed ({status}):\n{err}",
            l.name
        );
    }
    eprintln!(
        "r2l: two {n}-node labs deployed at once in {:?}",
        t0.elapsed()
    );

    // Distinct management addresses, from inspect JSON.
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for l in [&one, &two] {
        let j = l.inspect_json();
        let rows = j[&l.name]
            .as_array()
            .unwrap_or_else(|| panic!("inspect: {j}"));
        assert_eq!(rows.len(), n, "inspect rows of {}", l.name);
        for r in rows {
            assert_eq!(r["state"], "running", "{r}");
            for f in ["ipv4_address", "ipv6_address"] {
                let a = r[f].as_str().unwrap_or_default().to_string();
                assert!(!a.is_empty() && a != "N/A", "{} has no {f}: {r}", r["name"]);
                let who = r["name"].as_str().unwrap_or_default().to_string();
                if let Some(other) = seen.insert(a.clone(), who.clone()) {
                    panic!("{other} and {who} both have management address {a}");
                }
            }
        }
    }
    assert_eq!(seen.len(), 4 * n);

    let first_links: BTreeSet<String> = journal_host_objects(&one)
        .into_iter()
        .filter(|l| *l != one.bridge)
        .collect();
    let second_links = journal_host_objects(&two);
    destroy_ok(&one);
    // The first lab is gone (all but the shared bridge, which the second still uses)...
    let gone = poll(Duration::from_secs(8), || {
        let mut l = leftovers(&one.name, &first_links);
        l.extend(more_leftovers(&one, true));
        if l.is_empty() {
            Ok(())
        } else {
            Err(l.join("\n  "))
        }
    });
    if let Err(l) = gone {
        panic!("destroying {} left:\n  {l}", one.name);
    }
    assert!(
        host_link_names().contains(&two.bridge),
        "the shared bridge went away with {}",
        one.name
    );
    // ...and the second one's nodes still reach each other: over the management network and over
    // a ring link (addressed now).
    let (v4_2, _) = two.eth0_addrs("n2");
    let (v4_last, v6_last) = two.eth0_addrs(&format!("n{n}"));
    two.assert_ping("n1", &v4_2.expect("n2 has a management address"));
    two.assert_ping(
        "n1",
        &v4_last.expect("the last node has a management address"),
    );
    let out = two.exec(
        "n1",
        &format!("ping -6 -c1 -W2 {}", v6_last.expect("IPv6 address")),
    );
    assert!(
        out.status.success(),
        "IPv6 ping over the shared bridge: {}",
        describe(&out)
    );
    for (node, iface, addr) in [
        ("n1", "eth1", "10.234.1.1/24"),
        ("n2", "eth2", "10.234.1.2/24"),
    ] {
        let out = two.exec(node, &format!("ip addr add {addr} dev {iface}"));
        assert!(out.status.success(), "address {node}: {}", describe(&out));
    }
    two.assert_ping("n1", "10.234.1.2");

    destroy_ok(&two);
    let mut all = second_links;
    all.insert(two.bridge.clone());
    assert_zero_leftovers(&two, &all, &hosts_before);
    assert!(
        !host_link_names().contains(&two.bridge),
        "the shared bridge outlived both labs"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Deploy/destroy cycles: nothing grows
// ---------------------------------------------------------------------------------------------

/// Host-wide counts, and the objects behind them, for leak detection.
struct HostSnapshot {
    netns: BTreeSet<String>,
    links: BTreeSet<String>,
    /// Mount points (field 5 of mountinfo) with their count.
    mounts: BTreeMap<String, usize>,
    mount_lines: usize,
    live_procs: BTreeSet<String>,
    zombies: usize,
    fds: usize,
    mem_available_kb: u64,
    /// nftables tables (`table FAMILY NAME`), where labwire keeps its management flood filter.
    nft_tables: BTreeSet<String>,
}

fn snapshot() -> HostSnapshot {
    let netns = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let mut mounts = BTreeMap::new();
    for m in mountinfo.lines() {
        if let Some(p) = m.split(' ').nth(4) {
            *mounts.entry(p.to_string()).or_insert(0) += 1;
        }
    }
    let mut live_procs = BTreeSet::new();
    let mut zombies = 0;
    for p in pids() {
        match proc_state(&p) {
            Some('Z') => zombies += 1,
            Some(_) => {
                live_procs.insert(p);
            }
            None => {}
        }
    }
    let fds = std::fs::read_dir("/proc/self/fd").expect("fds").count();
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    let mem_available_kb = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("MemAvailable");
    HostSnapshot {
        netns,
        links: host_link_names(),
        mounts,
        mount_lines: mountinfo.lines().count(),
        live_procs,
        zombies,
        fds,
        mem_available_kb,
        nft_tables: nft_tables(),
    }
}

fn nft_tables() -> BTreeSet<String> {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .expect("run nft");
    assert!(out.status.success(), "nft list tables: {}", describe(&out));
    text(&out.stdout).lines().map(str::to_string).collect()
}

/// How `nft list tables` names the management network's flood filter, which a lab journals as
/// `mgmt-flood-filter`.
const FLOOD_FILTER_TABLE: &str = "table bridge labwire";

/// Objects other deployed labs own right now (their journals), so that labs of concurrently
/// running suites are not counted as our leaks.
fn owned_by_recorded_labs() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let root = lab::paths::state_root().join("labs");
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let j = std::fs::read_to_string(e.path().join("journal")).unwrap_or_default();
        for v in j
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        {
            if let Some(n) = v["name"].as_str() {
                out.insert(n.to_string());
            }
            if v["op"] == "mgmt-flood-filter" {
                out.insert(FLOOD_FILTER_TABLE.to_string());
            }
        }
    }
    out
}

/// What is on the host now and was not at `start`, minus what recorded labs own.
fn leaked_since(start: &HostSnapshot, lab: &TestLab) -> Vec<String> {
    let now = snapshot();
    let owned = owned_by_recorded_labs();
    let mut out = Vec::new();
    for n in now.netns.difference(&start.netns) {
        if !owned.contains(n) {
            out.push(format!("netns {n}"));
        }
    }
    for l in now.links.difference(&start.links) {
        if !owned.contains(l) {
            out.push(format!("host link {l}"));
        }
    }
    for t in now.nft_tables.difference(&start.nft_tables) {
        if !owned.contains(t) {
            out.push(format!("nftables {t}"));
        }
    }
    for (m, c) in &now.mounts {
        let before = start.mounts.get(m).copied().unwrap_or(0);
        let owned_mount = m
            .strip_prefix("/run/netns/")
            .is_some_and(|n| owned.contains(n));
        if *c > before && !owned_mount {
            out.push(format!("mount {m} ({before} → {c})"));
        }
    }
    for p in now.live_procs.difference(&start.live_procs) {
        let args = cmdline(p);
        let labwire = args
            .first()
            .is_some_and(|a| a.ends_with("/labwire") || a.ends_with("labwire-init"));
        let of_lab = args
            .iter()
            .any(|a| *a == lab.name || a.contains(&*lab.dir.to_string_lossy()));
        if labwire && of_lab {
            out.push(format!("process {p} {}", args.join(" ")));
        }
    }
    out
}

#[test]
fn deploy_destroy_cycles_grow_nothing() {
    let _x = exclusive();
    let cycles = if heavy() { 200 } else { 20 };
    let lab = ring_lab(
        "rcy",
        "lwt-rcy",
        "lwt-rcy",
        10,
        "10.235.0.0/24",
        "fd00:235::/64",
    );
    let hosts_before = without_blocks(&read_etc_hosts());
    // One warm-up cycle (first-use allocations: lock files, caches), then the baseline.
    lab.deploy();
    destroy_ok(&lab);
    assert_zero_leftovers(&lab, &BTreeSet::new(), &hosts_before);
    let start = snapshot();
    let t0 = Instant::now();
    for cycle in 0..cycles {
        let out = lab.try_deploy();
        assert!(
            out.status.success(),
            "cycle {cycle}: deploy failed: {}",
            describe(&out)
        );
        let out = lab.destroy(true);
        assert!(
            out.status.success(),
            "cycle {cycle}: destroy failed: {}",
            describe(&out)
        );
        let ns: Vec<String> = std::fs::read_dir("/run/netns")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let mine: Vec<&String> = ns
            .iter()
            .filter(|n| n.starts_with("clab-lwt-rcy-"))
            .collect();
        assert!(mine.is_empty(), "cycle {cycle}: netns left {mine:?}");
    }
    let elapsed = t0.elapsed();
    assert_zero_leftovers(&lab, &BTreeSet::new(), &hosts_before);
    // Leaks persist; a lab of another suite coming and going does not.
    let leaks = poll(Duration::from_secs(15), || {
        let l = leaked_since(&start, &lab);
        if l.is_empty() {
            Ok(())
        } else {
            Err(l.join("\n  "))
        }
    });
    // The kernel frees namespaces' memory in the background: allow it time.
    let tolerance_kb: u64 = 64 * 1024;
    let mem = poll(Duration::from_secs(15), || {
        let now = snapshot().mem_available_kb;
        if now + tolerance_kb >= start.mem_available_kb {
            Ok(now)
        } else {
            Err(format!("{now} kB"))
        }
    });
    let end = snapshot();
    let report = format!(
        "{cycles} cycles of a 10-node lab in {elapsed:?}\n\
         \x20 /run/netns entries  {} → {}\n\
         \x20 host links          {} → {}\n\
         \x20 mountinfo lines     {} → {}\n\
         \x20 test process fds    {} → {}\n\
         \x20 live processes      {} → {}\n\
         \x20 zombies             {} → {}\n\
         \x20 MemAvailable (kB)   {} → {}",
        start.netns.len(),
        end.netns.len(),
        start.links.len(),
        end.links.len(),
        start.mount_lines,
        end.mount_lines,
        start.fds,
        end.fds,
        start.live_procs.len(),
        end.live_procs.len(),
        start.zombies,
        end.zombies,
        start.mem_available_kb,
        end.mem_available_kb,
    );
    eprintln!("rcy: {report}");
    if let Err(l) = leaks {
        panic!("after {cycles} cycles these remain:\n  {l}\n{report}");
    }
    assert!(
        end.fds <= start.fds,
        "descriptors of the test process grew:\n{report}"
    );
    if let Err(m) = mem {
        panic!("MemAvailable dropped by more than {tolerance_kb} kB (now {m}):\n{report}");
    }
    // Host-wide counts: a concurrently running suite can add its own labs; without one these are
    // equal. Anything labwire leaked was caught above by name.
    let others = !owned_by_recorded_labs().is_empty();
    if !others {
        assert!(
            end.netns.len() <= start.netns.len(),
            "netns entries grew:\n{report}"
        );
        assert!(
            end.links.len() <= start.links.len(),
            "host links grew:\n{report}"
        );
        assert!(
            end.mount_lines <= start.mount_lines,
            "mounts grew:\n{report}"
        );
    }
    assert!(
        end.live_procs.len() <= start.live_procs.len() + 10,
        "live processes grew:\n{report}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Deploying a lab that already runs
// ---------------------------------------------------------------------------------------------

#[test]
fn deploying_a_running_lab_converges_and_reconfigure_works() {
    let _s = shared();
    let lab = ring_lab(
        "rrun",
        "lwt-rrun",
        "lwt-rrun",
        4,
        "10.236.0.0/24",
        "fd00:236::/64",
    );
    let hosts_before = without_blocks(&read_etc_hosts());

    // Two deploys of the same (new) lab at once: one makes it; the other either finds it busy and
    // says so, or runs after it and finds nothing to change.
    let spawn = || {
        let mut c = lab.deploy_cmd();
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        c.spawn().expect("start labwire deploy")
    };
    let mut both = [spawn(), spawn()];
    let mut ok = 0;
    for c in &mut both {
        let status = wait_timeout(c, Duration::from_secs(120)).expect("deploy hangs");
        let mut err = String::new();
        let _ = c.stderr.take().expect("piped").read_to_string(&mut err);
        if status.success() {
            ok += 1;
        } else {
            assert!(
                err.contains("already deployed") || err.contains("busy"),
                "the losing deploy should say the lab is deployed or busy:\n{err}"
            );
        }
    }
    assert!(
        ok >= 1,
        "one of two simultaneous deploys of one lab succeeds"
    );
    let reaper_ok = poll(Duration::from_secs(5), || {
        let r = reapers(&lab.name);
        if r.len() == 1 {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    });
    assert!(reaper_ok.is_ok(), "one live reaper expected: {reaper_ok:?}");

    let inits_before: BTreeSet<String> = live_inits(&lab.name).into_iter().collect();
    // Deploying the running lab again converges: nothing differs, so nothing changes.
    let out = lab.try_deploy();
    assert!(
        out.status.success(),
        "deploying an unchanged running lab: {}",
        describe(&out)
    );
    assert_eq!(
        live_inits(&lab.name).into_iter().collect::<BTreeSet<_>>(),
        inits_before,
        "the converging deploy changed the running nodes"
    );
    let r = poll(Duration::from_secs(5), || {
        let r = reapers(&lab.name);
        if r.len() == 1 {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    });
    assert!(
        r.is_ok(),
        "the converging deploy left an extra reaper: {r:?}"
    );
    let (v4, _) = lab.eth0_addrs("n2");
    lab.assert_ping("n1", &v4.expect("n2 address"));

    // --reconfigure: destroyed and deployed again, new node processes, works.
    let mut c = lab.deploy_cmd();
    c.arg("--reconfigure");
    let out = run_timeout(c, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "deploy --reconfigure: {}",
        describe(&out)
    );
    let inits_after: BTreeSet<String> = live_inits(&lab.name).into_iter().collect();
    assert!(
        inits_after.is_disjoint(&inits_before),
        "--reconfigure kept old node processes: {inits_before:?} / {inits_after:?}"
    );
    let r = poll(Duration::from_secs(5), || {
        let r = reapers(&lab.name);
        if r.len() == 1 {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    });
    assert!(
        r.is_ok(),
        "one live reaper expected after --reconfigure: {r:?}"
    );
    let (v4, _) = lab.eth0_addrs("n3");
    lab.assert_ping("n1", &v4.expect("n3 address"));
    let links = journal_host_objects(&lab);
    destroy_ok(&lab);
    assert_zero_leftovers(&lab, &links, &hosts_before);
}

// ---------------------------------------------------------------------------------------------
// 6. Hostile input
// ---------------------------------------------------------------------------------------------

/// `file:line:col` of the first occurrence of `needle` in `yaml`.
fn at(file: &str, yaml: &str, needle: &str) -> String {
    let (line, col) = yaml
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find(needle).map(|c| (i + 1, c + 1)))
        .unwrap_or_else(|| panic!("{needle} is not in the text"));
    format!("{file}:{line}:{col}:")
}

/// Nothing of lab `name` exists on the host.
fn assert_untouched(lab: &TestLab) {
    assert!(
        !lab.state_dir().exists(),
        "a state dir was created: {}",
        lab.state_dir().display()
    );
    assert!(
        !lab.lab_dir().exists(),
        "a lab dir was created: {}",
        lab.lab_dir().display()
    );
    assert!(
        !host_link_names().contains(&lab.bridge),
        "the bridge {} was created",
        lab.bridge
    );
    assert!(
        reapers(&lab.name).is_empty() && live_inits(&lab.name).is_empty(),
        "processes were started"
    );
    assert!(
        hosts_block(&read_etc_hosts(), &lab.name).is_none(),
        "a hosts block was written"
    );
    let prefix = format!("clab-{}-", lab.name);
    let ns: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !ns.iter().any(|n| n.starts_with(&prefix)),
        "a netns was registered: {ns:?}"
    );
}

#[test]
fn hostile_node_interface_and_lab_names_are_refused_with_their_location() {
    let _s = shared();
    let pwned = Path::new("/tmp/lwt-rpwned");
    let _ = std::fs::remove_file(pwned);
    let yaml = r#"name: lwt-rhn
mgmt: {network: lwt-rhn, ipv4-subnet: 10.237.0.0/24, ipv6-subnet: fd00:237::/64}
topology:
  nodes:
    "../evil": {kind: linux}
    "a/b": {kind: linux}
    "sp ace": {kind: linux}
    "$(touch /tmp/lwt-rpwned)": {kind: linux}
    "x;rm -rf /tmp/lwt-rpwned": {kind: linux}
    ok: {kind: linux}
    ok2: {kind: linux}
  links:
    - endpoints: ["ok:../e1", "ok2:a/b"]
    - endpoints: ["ok:sp ace", "ok2:$(touch /tmp/lwt-rpwned)"]
    - endpoints: ["ok:..", "ok2:."]
"#;
    let lab = TestLab::with_file(
        "rhn",
        "lwt-rhn",
        "lwt-rhn",
        &["ok", "ok2"],
        "h.clab.yml",
        yaml,
    );
    let expect = [
        ("\"../evil\"", "../evil"),
        ("\"a/b\"", "a/b"),
        ("\"sp ace\"", "sp ace"),
        ("\"$(touch /tmp/lwt-rpwned)\"", "$(touch /tmp/lwt-rpwned)"),
        ("\"x;rm -rf", "x;rm -rf /tmp/lwt-rpwned"),
    ];
    // Interface names Linux cannot take are not errors (containerlab keeps them as the written name on
    // a generated interface name); they must never be reported as invalid, nor reach a shell.
    let mapped = [
        "\"ok:../e1\"",
        "\"ok2:a/b\"",
        "\"ok:sp ace\"",
        "\"ok2:$(touch",
    ];
    let mut v = lab.cmd();
    v.arg("validate").arg("-t").arg(&lab.file);
    for out in [run_timeout(v, Duration::from_secs(30)), lab.try_deploy()] {
        assert!(
            !out.status.success(),
            "hostile names accepted: {}",
            describe(&out)
        );
        let err = text(&out.stderr);
        for (needle, name) in expect {
            let loc = at("h.clab.yml", yaml, needle);
            assert!(
                err.lines()
                    .any(|l| l.contains(&loc) && l.contains(&format!("`{name}`"))),
                "no error at {loc} naming `{name}`:\n{err}"
            );
        }
        for needle in mapped {
            let loc = at("h.clab.yml", yaml, needle);
            assert!(
                !err.lines().any(|l| l.contains(&loc)),
                "interface name {needle} reported as an error at {loc}:\n{err}"
            );
        }
    }
    assert!(
        !pwned.exists(),
        "a shell ran a node name: {} exists",
        pwned.display()
    );
    assert_untouched(&lab);

    // Lab names that would leave the state or lab directory.
    for bad in ["..", "../lwt-rhn", "a/b", "lwt..rhn", "x;id", "$(id)"] {
        let yaml = format!("name: \"{bad}\"\ntopology:\n  nodes:\n    a: {{kind: linux}}\n");
        let f = lab.dir.join("bad-name.clab.yml");
        std::fs::write(&f, &yaml).expect("write");
        for sub in ["validate", "deploy"] {
            let mut c = lab.cmd();
            c.arg(sub).arg("-t").arg(&f);
            let out = run_timeout(c, Duration::from_secs(30));
            let err = text(&out.stderr);
            assert!(
                !out.status.success()
                    && err.contains("bad-name.clab.yml:1:7:")
                    && err.contains("lab name"),
                "{sub}: lab name {bad:?} should be refused at 1:7: {}",
                describe(&out)
            );
        }
    }
    let labs = lab::paths::state_root().join("labs");
    assert!(labs.is_dir() || !labs.exists());
}

/// Interface names with shell metacharacters are refused by validation, like node names (names
/// Linux cannot take for other reasons, `/`, white space, length, are mapped instead: see
/// `hostile_node_interface_and_lab_names_are_refused_with_their_location`);
/// `accepted_interface_names_reach_no_shell` shows the names accepted do not reach a shell.
#[test]
fn interface_names_with_shell_metacharacters_are_refused() {
    let _s = shared();
    let yaml = r#"name: lwt-rhi
mgmt: {network: lwt-rhi, ipv4-subnet: 10.237.0.0/24, ipv6-subnet: fd00:237::/64}
topology:
  nodes:
    ok: {kind: linux}
    ok2: {kind: linux}
  links:
    - endpoints: ["ok:;rm", "ok2:$(>lwtp1)"]
    - endpoints: ["ok:`>lwtp2`", "ok2:a|b&c"]
    - endpoints: ["ok:-x", "ok2:a'b\"c"]
"#;
    let lab = TestLab::with_file(
        "rhi",
        "lwt-rhi",
        "lwt-rhi",
        &["ok", "ok2"],
        "i.clab.yml",
        yaml,
    );
    let mut v = lab.cmd();
    v.arg("validate").arg("-t").arg(&lab.file);
    let out = run_timeout(v, Duration::from_secs(30));
    let err = text(&out.stderr);
    let mut accepted = Vec::new();
    for (needle, name) in [
        ("\"ok:;rm\"", ";rm"),
        ("\"ok2:$(>lwtp1)\"", "$(>lwtp1)"),
        ("\"ok:`>lwtp2`\"", "`>lwtp2`"),
        ("\"ok2:a|b&c\"", "a|b&c"),
        ("\"ok:-x\"", "-x"),
        ("\"ok2:a'b", "a'b\"c"),
    ] {
        let loc = at("i.clab.yml", yaml, needle);
        if !err.lines().any(|l| l.contains(&loc)) {
            accepted.push(format!("{name} ({loc})"));
        }
    }
    assert!(
        accepted.is_empty() && !out.status.success(),
        "interface names with shell metacharacters were accepted by validation: {accepted:?}\n{}",
        describe(&out)
    );
}

/// Interface names the validator accepts, however odd, and environment and label values that look
/// like shell commands never reach a shell: the deploy makes the interfaces verbatim, the values
/// arrive literally, and no command they spell runs.
#[test]
fn accepted_interface_names_reach_no_shell() {
    let _s = shared();
    let yaml = r#"name: lwt-rhs
mgmt: {network: lwt-rhs, ipv4-subnet: 10.237.0.0/24, ipv6-subnet: fd00:237::/64}
topology:
  nodes:
    ok:
      kind: linux
      env: {PWN: "$(>lwtp1)"}
      labels: {note: "`>lwtp2`"}
    ok2: {kind: linux, labels: {x: "$(>lwtp1);>lwtp2"}}
  links:
    - endpoints: ["ok:a@b", "ok2:x+y.1"]
      labels: {l: "$(>lwtp2)"}
    - endpoints: ["ok:_u-2", "ok2:z@9+"]
    - endpoints: ["ok:v.1", "ok2:A_b-c@d"]
"#;
    let lab = TestLab::with_file(
        "rhs",
        "lwt-rhs",
        "lwt-rhs",
        &["ok", "ok2"],
        "s.clab.yml",
        yaml,
    );
    let mut v = lab.cmd();
    v.arg("validate").arg("-t").arg(&lab.file);
    let out = run_timeout(v, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "validation must accept these names and values: {}",
        describe(&out)
    );
    let hosts_before = without_blocks(&read_etc_hosts());
    let mut c = lab.deploy_cmd();
    c.current_dir(&lab.dir);
    let out = run_timeout(c, Duration::from_secs(120));
    assert!(out.status.success(), "deploy: {}", describe(&out));
    let mut want: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    want.insert("ok", vec!["a@b", "_u-2", "v.1"]);
    want.insert("ok2", vec!["x+y.1", "z@9+", "A_b-c@d"]);
    for (node, ifaces) in want {
        let r = poll(Duration::from_secs(5), || {
            let have = if_states(&lab.links(node));
            match ifaces.iter().find(|i| !have.get(**i).is_some_and(|s| s.up)) {
                None => Ok(()),
                Some(i) => Err(format!(
                    "{node} has no interface {i:?} up: {:?}",
                    have.keys()
                )),
            }
        });
        if let Err(e) = r {
            panic!("{e}");
        }
    }
    // The variable arrives as written; printing it runs nothing it spells.
    let env = lab.exec("ok", "printenv PWN");
    assert_eq!(text(&env.stdout).trim(), "$(>lwtp1)", "{}", describe(&env));
    let lab_dir = lab.lab_dir();
    let mut dirs: Vec<PathBuf> = vec![
        "/".into(),
        "/tmp".into(),
        "/root".into(),
        lab.dir.clone(),
        lab_dir.clone(),
        lab_dir.join("ok"),
        lab_dir.join("ok2"),
        lab::paths::lab_run_dir(&lab.name),
    ];
    dirs.push(std::env::current_dir().expect("cwd"));
    for d in &dirs {
        for f in ["lwtp1", "lwtp2"] {
            assert!(
                !d.join(f).exists(),
                "a shell ran a name or value from the topology: {} exists",
                d.join(f).display()
            );
        }
    }
    let links = journal_host_objects(&lab);
    destroy_ok(&lab);
    assert_zero_leftovers(&lab, &links, &hosts_before);
}

/// `destroy --name` (and `destroy -t` with a name that fails validation) must refuse a name that
/// leaves the state directory: `--name ../../x` would `remove_dir_all` the state root's
/// grandparent's `x`. Run in a sandbox (LABWIRE_STATE_DIR, LABWIRE_RUN_DIR, LABWIRE_HOSTS_FILE
/// under the test's temp dir), so the host is safe even while the bug exists.
#[test]
fn destroy_refuses_lab_names_that_leave_the_state_directory() {
    let _s = shared();
    require_root();
    let base = PathBuf::from(format!("/tmp/lwt-rdn-{}", std::process::id()));
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(base.clone());
    let mut failures = Vec::new();
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "--name ../../victim",
            vec!["destroy".into(), "--name".into(), "../../victim".into()],
        ),
        (
            "--name ..",
            vec!["destroy".into(), "--name".into(), "..".into()],
        ),
        (
            "--name .",
            vec!["destroy".into(), "--name".into(), ".".into()],
        ),
        (
            "--name ''",
            vec!["destroy".into(), "--name".into(), String::new()],
        ),
        (
            "-t (name ../../victim)",
            vec![
                "destroy".into(),
                "-t".into(),
                base.join("t.yml").to_string_lossy().into_owned(),
            ],
        ),
    ];
    for (what, args) in cases {
        let _ = std::fs::remove_dir_all(&base);
        let state = base.join("state");
        let run = base.join("run");
        let other = state.join("labs/other");
        std::fs::create_dir_all(&other).expect("mkdir");
        std::fs::write(other.join("journal"), "").expect("write");
        std::fs::create_dir_all(run.join("run/other")).expect("mkdir");
        std::fs::create_dir_all(base.join("victim")).expect("mkdir");
        std::fs::write(base.join("victim/precious"), "keep").expect("write");
        std::fs::write(base.join("hosts"), "127.0.0.1 localhost\n").expect("write");
        std::fs::write(
            base.join("t.yml"),
            "name: ../../victim\ntopology:\n  nodes:\n    a: {kind: linux}\n",
        )
        .expect("write");
        let mut c = labwire();
        c.env("LABWIRE_STATE_DIR", &state)
            .env("LABWIRE_RUN_DIR", &run)
            .env("LABWIRE_HOSTS_FILE", base.join("hosts"))
            .args(&args);
        let out = run_timeout(c, Duration::from_secs(60));
        let mut problems = Vec::new();
        if out.status.success() {
            problems.push("exit 0".to_string());
        }
        for p in [
            base.join("victim/precious"),
            other.join("journal"),
            run.join("run/other"),
        ] {
            if !p.exists() {
                problems.push(format!(
                    "deleted {}",
                    p.strip_prefix(&base).unwrap_or(&p).display()
                ));
            }
        }
        if base.join("victim.lock").exists() {
            problems.push("created victim.lock outside the lock directory".into());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "destroy {what}: {} [{}]",
                problems.join(", "),
                text(&out.stderr).trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "destroy with a hostile lab name:\n  {}",
        failures.join("\n  ")
    );
}

#[test]
fn state_files_are_private() {
    let _s = shared();
    let lab = ring_lab(
        "rmode",
        "lwt-rmode",
        "lwt-rmode",
        2,
        "10.237.0.0/24",
        "fd00:237::/64",
    );
    let hosts_before = without_blocks(&read_etc_hosts());
    lab.deploy();
    let mut bad = Vec::new();
    for f in ["journal", "lab.json"] {
        let p = lab.state_dir().join(f);
        let m = std::fs::metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        if m.permissions().mode() & 0o777 != 0o600 || m.uid() != 0 {
            bad.push(format!(
                "{} mode {:o} uid {}",
                p.display(),
                m.permissions().mode() & 0o777,
                m.uid()
            ));
        }
    }
    // Nothing labwire wrote is writable by others.
    let mut walk = vec![
        lab.state_dir(),
        lab.lab_dir(),
        lab::paths::lab_run_dir(&lab.name),
    ];
    while let Some(d) = walk.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let m = e.metadata().expect("metadata");
            if m.permissions().mode() & 0o002 != 0 && !m.file_type().is_symlink() {
                bad.push(format!("{} is world-writable", e.path().display()));
            }
            if m.is_dir() {
                walk.push(e.path());
            }
        }
    }
    let links = journal_host_objects(&lab);
    destroy_ok(&lab);
    assert_zero_leftovers(&lab, &links, &hosts_before);
    assert!(bad.is_empty(), "state files are not private: {bad:?}");
}

/// How a `labwire` run ended, with its peak RSS (from wait4) and wall time.
struct Measured {
    code: Option<i32>,
    stderr: String,
    max_rss_kb: i64,
    elapsed: Duration,
}

/// Run `cmd` (stdin from `feed` when given), at most `timeout`, under RLIMIT_AS `as_limit` bytes.
fn run_measured(
    mut cmd: Command,
    timeout: Duration,
    as_limit: u64,
    feed: Option<Box<dyn FnOnce(std::process::ChildStdin) + Send>>,
) -> Measured {
    // SAFETY: setrlimit is async-signal-safe and changes only the child.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: as_limit,
                rlim_max: as_limit,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    if feed.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let start = Instant::now();
    // Reaped below with wait4 (for its rusage), not with Child::wait.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().expect("start labwire");
    let feeder = feed.map(|f| {
        let stdin = child.stdin.take().expect("piped");
        std::thread::spawn(move || f(stdin))
    });
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let pid = child.id() as i32;
    let mut status = 0;
    // SAFETY: zeroed rusage is valid; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waits (without blocking) for our own child, which nothing else reaps.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break;
        }
        if start.elapsed() > timeout {
            // SAFETY: our own child, not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // SAFETY: as above.
            unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed();
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Measured {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stderr: reader.join().expect("stderr reader"),
        max_rss_kb: ru.ru_maxrss,
        elapsed,
    }
}

/// `labwire validate` and `labwire deploy` of `file` are refused within 5 s, with peak RSS under
/// `max_rss_mb`, saying `expect`.
fn assert_refused_bounded(what: &str, file: &Path, expect: &str, max_rss_mb: i64) {
    for sub in ["validate", "deploy"] {
        let mut c = labwire();
        c.arg(sub).arg("-t").arg(file);
        let m = run_measured(c, Duration::from_secs(30), 4 << 30, None);
        eprintln!(
            "{what}: labwire {sub}: exit {:?} in {:?}, peak RSS {} MB",
            m.code,
            m.elapsed,
            m.max_rss_kb / 1024
        );
        assert_eq!(
            m.code,
            Some(1),
            "{what}: {sub} should be refused with exit 1:\n{}",
            m.stderr
        );
        assert!(
            m.stderr.contains(expect),
            "{what}: {sub} should say `{expect}`:\n{}",
            m.stderr
        );
        assert!(
            m.elapsed < Duration::from_secs(5),
            "{what}: {sub} took {:?}",
            m.elapsed
        );
        assert!(
            m.max_rss_kb < max_rss_mb * 1024,
            "{what}: {sub} peaked at {} MB (limit {max_rss_mb} MB)",
            m.max_rss_kb / 1024
        );
    }
}

#[test]
fn yaml_alias_bombs_are_refused_quickly_with_bounded_memory() {
    let _s = shared();
    require_root();
    let dir = PathBuf::from(format!("/tmp/lwt-rbomb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    // fan-out, depth, leaf scalar
    let bomb = |fan: usize, depth: usize, leaf: &str| {
        let mut s = String::from("name: lwt-rbomb\n");
        s.push_str(&format!(
            "a0: &a0 [{}]\n",
            vec![format!("\"{leaf}\""); fan].join(",")
        ));
        for i in 1..depth {
            s.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                vec![format!("*a{}", i - 1); fan].join(",")
            ));
        }
        s.push_str(&format!(
            "topology:\n  nodes:\n    n1: {{kind: linux, labels: {{x: *a{}}}}}\n",
            depth - 1
        ));
        s
    };
    let mut merge = String::from("name: lwt-rbomb\n");
    merge.push_str(
        "m0: &m0 {k0: v, k1: v, k2: v, k3: v, k4: v, k5: v, k6: v, k7: v, k8: v, k9: v}\n",
    );
    for i in 1..10 {
        let kids: Vec<String> = (0..10).map(|k| format!("c{k}: *m{}", i - 1)).collect();
        merge.push_str(&format!(
            "m{i}: &m{i} {{<<: *m{}, {}}}\n",
            i - 1,
            kids.join(", ")
        ));
    }
    merge.push_str("topology:\n  nodes:\n    n1: {kind: linux, labels: *m9}\n");
    let deep = format!(
        "name: lwt-rbomb\nx: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let big_leaf = "x".repeat(1 << 20);
    for (what, yaml, expect) in [
        (
            "billion laughs (10^9 values)",
            bomb(10, 9, "lol"),
            "refusing it",
        ),
        ("fan-out 100, depth 6", bomb(100, 6, "lol"), "refusing it"),
        ("binary, depth 40", bomb(2, 40, "lol"), "refusing it"),
        (
            "1 MB scalar aliased 10^5 times",
            bomb(10, 6, &big_leaf),
            "refusing it",
        ),
        ("merge keys", merge.clone(), "refusing it"),
        ("100 000 nested lists", deep.clone(), "YAML syntax"),
    ] {
        let f = dir.join("bomb.clab.yml");
        std::fs::write(&f, &yaml).expect("write");
        assert_refused_bounded(what, &f, expect, 768);
    }
}

#[test]
fn file_of_70_mb_is_refused_quickly_with_bounded_memory() {
    let _s = shared();
    require_root();
    let dir = PathBuf::from(format!("/tmp/lwt-rbig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    let f = dir.join("big.clab.yml");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&f).expect("create"));
    w.write_all(b"name: lwt-rbig\ntopology:\n  nodes:\n")
        .expect("write");
    let mut i = 0u64;
    let mut size = 0usize;
    while size < 70 << 20 {
        let line = format!("    n{i}: {{kind: linux}}\n");
        size += line.len();
        w.write_all(line.as_bytes()).expect("write");
        i += 1;
    }
    drop(w);
    assert_refused_bounded("70 MB topology", &f, "at most 67108864", 256);
}

/// A topology larger than the 64 MiB limit must be refused before it is read whole: a 2 GiB
/// (sparse) file, `-t /dev/zero` and an endless standard input. Each runs under RLIMIT_AS 1 GiB so
/// the host is safe; today labwire reads the whole input first and dies with "out of memory".
#[test]
fn oversized_input_is_refused_before_being_read_whole() {
    let _s = shared();
    require_root();
    let dir = PathBuf::from(format!("/tmp/lwt-rhuge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    let sparse = dir.join("sparse.clab.yml");
    std::fs::File::create(&sparse)
        .and_then(|f| f.set_len(2 << 30))
        .expect("sparse file");
    let mut failures = Vec::new();
    let cases: Vec<(&str, Vec<String>, bool)> = vec![
        (
            "2 GiB sparse file",
            vec![
                "validate".into(),
                "-t".into(),
                sparse.to_string_lossy().into_owned(),
            ],
            false,
        ),
        (
            "-t /dev/zero",
            vec!["validate".into(), "-t".into(), "/dev/zero".into()],
            false,
        ),
        (
            "endless standard input",
            vec!["validate".into(), "-t".into(), "-".into()],
            true,
        ),
    ];
    for (what, args, stdin) in cases {
        let mut c = labwire();
        c.args(&args);
        let feed: Option<Box<dyn FnOnce(std::process::ChildStdin) + Send>> = stdin.then(|| {
            Box::new(|mut s: std::process::ChildStdin| {
                let chunk = "x: 1\n".repeat(1 << 16);
                // Up to 8 GiB; stops when labwire closes the pipe.
                for _ in 0..(8usize << 30) / chunk.len() {
                    if s.write_all(chunk.as_bytes()).is_err() {
                        break;
                    }
                }
            }) as Box<dyn FnOnce(std::process::ChildStdin) + Send>
        });
        let m = run_measured(c, Duration::from_secs(20), 1 << 30, feed);
        eprintln!(
            "{what}: exit {:?} in {:?}, peak RSS {} MB: {}",
            m.code,
            m.elapsed,
            m.max_rss_kb / 1024,
            m.stderr.trim()
        );
        let ok = m.code == Some(1)
            && m.stderr.contains("at most")
            && m.elapsed < Duration::from_secs(5)
            && m.max_rss_kb < 256 * 1024;
        if !ok {
            failures.push(format!(
                "{what}: exit {:?} after {:?}, peak RSS {} MB: {}",
                m.code,
                m.elapsed,
                m.max_rss_kb / 1024,
                m.stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "oversized input not refused up front (size limit, < 5 s, < 256 MB):\n  {}",
        failures.join("\n  ")
    );
}

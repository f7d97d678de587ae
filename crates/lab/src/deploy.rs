//! Deploying a lab: preflight (nothing touched), then the stages create → create-links → configure →
//! healthy → exit, run in rounds so `wait-for` across nodes is honoured, then the artifacts.
//!
//! Every host object is journalled before it is made; any failure or interruption rolls back
//! through `destroy`. Nodes are started and configured by a worker pool; links are made in one
//! batch per round from the host's netlink socket, each veth born in its target namespaces.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use runtime::docker::{self, EngineKind};
use runtime::native;
use runtime::process::ProcId;
use topology::{
    ExecPhase, ExecTarget, KindClass, Lab, Link, NetworkMode, Node, Peer, Runtime, Stage,
};
use wire::netlink::Handle;
use wire::NetNs;

use crate::error::{io, wire as wire_err, Error, Result};
use crate::progress::Progress;
use crate::state::{self, Entry, Journal, Recorded};
use crate::{artifacts, destroy, lock::Lock, paths, pool, signals, vms, wiring};

pub struct DeployOptions {
    pub max_workers: usize,
    pub reconfigure: bool,
    /// No progress display (tests, scripts).
    pub quiet: bool,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            max_workers: pool::default_workers(),
            reconfigure: false,
            quiet: false,
        }
    }
}

/// Output of node `exec` commands and stage commands, for the caller to show.
#[derive(Debug, Clone)]
pub struct ExecReport {
    pub node: String,
    pub command: String,
    pub output: native::ExecOutput,
}

pub struct Deployed {
    pub lab: Lab,
    /// Wall time of each step, in order (for `--stats`).
    pub timings: Vec<(String, Duration)>,
    pub execs: Vec<ExecReport>,
    pub elapsed: Duration,
}

/// Everything checked before the host is touched.
pub fn preflight(lab: &Lab) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::Invalid(
            "labwire deploy needs root: it creates namespaces, links and bridges (run it with sudo)".into(),
        ));
    }
    let mut problems = Vec::new();
    let mut checked_images: HashMap<(String, Option<String>), std::result::Result<(), String>> =
        HashMap::new();
    let engines = engine_preflight(lab, &mut problems);
    for n in &lab.nodes {
        if let Some(kind) = EngineKind::of(n.runtime).filter(|_| n.is_workload()) {
            if let Some(Err(e)) = engines.get(&kind) {
                problems.push(format!("node {}: {e}", n.name));
            }
            // A container joins another's network by the engine's `container:NAME`, so that one
            // must be a container of the same engine.
            if let NetworkMode::Container(other) = &n.network_mode {
                if let Some(o) = lab.node(other).filter(|o| o.runtime != n.runtime) {
                    problems.push(format!(
                        "node {}: network-mode container:{other} needs {other} to run on the {kind} runtime too (it runs on {})",
                        n.name, o.runtime
                    ));
                }
            }
            continue;
        }
        if n.is_workload() && n.runtime == Runtime::Vm {
            crate::vms::preflight(lab, n, &mut problems);
        }
        if n.is_workload() && !matches!(n.runtime, Runtime::Native | Runtime::Vm) {
            problems.push(format!(
                "node {}: the {} runtime is not available in this version of labwire; use `runtime: native` (or -r native)",
                n.name, n.runtime
            ));
            continue;
        }
        if n.is_workload() && n.class != KindClass::ExtContainer {
            if let Some(img) = &n.image {
                let key = (img.clone(), n.image_pull_policy.clone());
                let verdict = checked_images.entry(key).or_insert_with(|| {
                    crate::images::ensure_image(img, n.image_pull_policy.as_deref())
                });
                if let Err(e) = verdict {
                    problems.push(format!("node {}: {e}", n.name));
                }
            }
        }
        for b in &n.binds {
            if !b.source.exists() && !b.source.starts_with(&lab.dir) {
                problems.push(format!(
                    "node {}: bind source {} does not exist",
                    n.name,
                    b.source.display()
                ));
            }
        }
    }
    crate::contain::check_lab_dir(lab, &mut problems);
    crate::contain::check_sources(lab, &mut problems);
    crate::contain::check_foreign_names(lab, &mut problems);
    if lab
        .nodes
        .iter()
        .any(|n| n.is_workload() && n.network_mode == NetworkMode::Bridged)
    {
        crate::contain::check_mgmt_routes(lab, &mut problems);
    }
    // One dump of the host's interfaces answers every name check below.
    let host_links: HashSet<String> = Handle::new()
        .and_then(|mut h| h.links())
        .map_err(wire_err("list host interfaces"))?
        .into_iter()
        .map(|l| l.name)
        .collect();
    let exists = |name: &str| host_links.contains(name);
    for l in &lab.links {
        match &l.peer {
            Peer::Host { host_iface, .. } | Peer::MgmtNet { host_iface, .. }
                if exists(host_iface) =>
            {
                problems.push(format!(
                    "link {}:{}: host interface {host_iface} already exists",
                    l.a.node, l.a.iface
                ));
            }
            Peer::Macvlan { parent, .. }
                if !lab
                    .node(parent)
                    .is_some_and(|n| n.class == KindClass::Bridge)
                    && !exists(parent) =>
            {
                problems.push(format!(
                    "link {}:{}: macvlan parent interface {parent} does not exist in the host",
                    l.a.node, l.a.iface
                ));
            }
            Peer::Veth { b } => {
                for ep in [&l.a, b] {
                    let host_side = lab.node(&ep.node).is_some_and(|n| n.in_host());
                    if host_side && exists(&ep.iface) {
                        problems.push(format!(
                            "link end {}:{}: an interface {} already exists in the host",
                            ep.node, ep.iface, ep.iface
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    if lab.links.iter().any(|l| matches!(l.peer, Peer::Dummy)) {
        probe_kind_dummy(&mut problems)?;
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "lab {} cannot be deployed:\n  {}",
            lab.name,
            problems.join("\n  ")
        )))
    }
}

/// The container runtimes' checks: each engine the lab's nodes use answers, and every such node's
/// image is in its engine (pulled as `image-pull-policy` says). One verdict per engine used.
fn engine_preflight(
    lab: &Lab,
    problems: &mut Vec<String>,
) -> BTreeMap<EngineKind, std::result::Result<(), String>> {
    let mut by_engine: BTreeMap<EngineKind, Vec<&Node>> = BTreeMap::new();
    for n in lab.nodes.iter().filter(|n| n.is_workload()) {
        if let Some(kind) = EngineKind::of(n.runtime) {
            by_engine.entry(kind).or_default().push(n);
        }
    }
    let mut verdicts = BTreeMap::new();
    for (kind, nodes) in by_engine {
        let engine = match docker::Engine::connect(kind) {
            Ok(e) => e,
            Err(e) => {
                verdicts.insert(kind, Err(e.to_string()));
                continue;
            }
        };
        let mut checked = HashSet::new();
        // An ext-container node's container exists already; nothing is made from an image.
        for n in nodes
            .into_iter()
            .filter(|n| n.class != KindClass::ExtContainer)
        {
            let Some(img) = &n.image else {
                problems.push(format!(
                    "node {}: the {kind} runtime needs an `image`",
                    n.name
                ));
                continue;
            };
            if checked.insert((img.clone(), n.image_pull_policy.clone())) {
                if let Err(e) = engine.ensure_image(img, n.image_pull_policy.as_deref()) {
                    problems.push(format!("node {}: {e}", n.name));
                }
            }
        }
        verdicts.insert(kind, Ok(()));
    }
    verdicts
}

/// Try a dummy interface in a throwaway namespace: a missing module is reported before anything.
fn probe_kind_dummy(problems: &mut Vec<String>) -> Result<()> {
    let ns = NetNs::create_anonymous().map_err(wire_err("create a probe namespace"))?;
    let mut h = Handle::in_netns(&ns).map_err(wire_err("open netlink"))?;
    match h.add_dummy("lwprobe0", None, None, None, false) {
        Ok(()) => Ok(()),
        Err(wire::Error::KernelLacks { kind }) => {
            problems.push(format!(
                "the topology has `dummy` links but the running kernel lacks the \"{kind}\" link type (module not available)"
            ));
            Ok(())
        }
        Err(e) => Err(Error::Wire {
            op: "probe dummy links".into(),
            source: e,
        }),
    }
}

/// Management addresses used by other deployed labs on the same network.
fn addresses_taken_elsewhere(lab: &Lab) -> BTreeSet<IpAddr> {
    let mut taken = BTreeSet::new();
    for other in state::recorded_labs() {
        if other == lab.name {
            continue;
        }
        let rec = Recorded::read(&paths::lab_state_dir(&other));
        if let Some(o) = rec.lab {
            if o.mgmt.network == lab.mgmt.network || o.mgmt.bridge == lab.mgmt.bridge {
                taken.extend(o.mgmt_addresses());
            }
        }
    }
    taken
}

/// Deploy a normalised lab. On failure everything made is removed again.
pub fn deploy(mut lab: Lab, opts: &DeployOptions) -> Result<Deployed> {
    let start = Instant::now();
    preflight(&lab)?;
    paths::ensure_run_tmpfs()?;
    let _lab_lock = Lock::lab(&lab.name)?;
    signals::install();
    let state_dir = paths::lab_state_dir(&lab.name);
    if state_dir.exists() {
        let rec = Recorded::read(&state_dir);
        let alive = rec.procs().iter().any(|(_, p)| p.is_alive())
            || !runtime::process::find_inits(&lab.name).is_empty();
        if alive && !opts.reconfigure {
            return Err(Error::Invalid(format!(
                "lab {} is already deployed; destroy it first (`labwire destroy --name {}`) or deploy with --reconfigure",
                lab.name, shell_quote(&lab.name)
            )));
        }
        destroy::destroy_recorded(&lab.name, &rec, false)?;
    }
    paths::private_lab_dirs(&lab.name)?;
    let journal;
    {
        let _g = Lock::global()?;
        let taken = addresses_taken_elsewhere(&lab);
        if lab.mgmt_addresses().any(|a| taken.contains(&a)) {
            let clashes: Vec<String> = lab
                .nodes
                .iter()
                .filter(|n| n.mgmt_static)
                .filter(|n| {
                    n.mgmt_ipv4
                        .map(IpAddr::V4)
                        .is_some_and(|a| taken.contains(&a))
                        || n.mgmt_ipv6
                            .map(IpAddr::V6)
                            .is_some_and(|a| taken.contains(&a))
                })
                .map(|n| n.name.clone())
                .collect();
            if !clashes.is_empty() {
                return Err(Error::Invalid(format!(
                    "the static management addresses of {} are used by another lab on network {}",
                    clashes.join(", "),
                    lab.mgmt.network
                )));
            }
            topology::reassign_mgmt(&mut lab, &taken).map_err(Error::Invalid)?;
        }
        state::write_lab(&state_dir, &lab)?;
        journal = Journal::open(&state_dir)?;
    }
    let progress = Progress::new(opts.quiet);
    let mut run = Run {
        lab: &lab,
        journal: &journal,
        opts,
        progress: &progress,
        nets: Mutex::new(HashMap::new()),
        procs: Mutex::new(HashMap::new()),
        made_links: HashSet::new(),
        configured: HashSet::new(),
        execs: Mutex::new(Vec::new()),
        init: native::init_path()?,
        timings: Mutex::new(Vec::new()),
        images: HashMap::new(),
        engines: HashMap::new(),
        vms: None,
    };
    let result = run.all();
    let execs = std::mem::take(&mut *run.execs.lock().expect("execs"));
    let timings = std::mem::take(&mut *run.timings.lock().expect("timings"));
    drop(run);
    match result {
        Ok(()) => {
            journal.record(&[Entry::Done])?;
            progress.finish();
            Ok(Deployed {
                lab,
                timings,
                execs,
                elapsed: start.elapsed(),
            })
        }
        Err(e) => {
            progress.message(&format!(
                "deploy of lab {} failed: {e}; removing what was made",
                lab.name
            ));
            progress.finish();
            let rec = Recorded::read(&state_dir);
            // A lab directory this deploy created goes too; one that existed before stays.
            let made_dir = rec
                .entries
                .iter()
                .any(|e| matches!(e, Entry::LabDir { created: true, .. }));
            if let Err(d) = destroy::destroy_recorded(&lab.name, &rec, made_dir) {
                return Err(Error::Invalid(format!(
                    "{e}; the rollback also failed: {d}"
                )));
            }
            Err(e)
        }
    }
}

struct Run<'a> {
    lab: &'a Lab,
    journal: &'a Journal,
    opts: &'a DeployOptions,
    progress: &'a Progress,
    nets: Mutex<HashMap<String, NetNs>>,
    procs: Mutex<HashMap<String, ProcId>>,
    /// Indexes into lab.links already made.
    made_links: HashSet<usize>,
    /// Nodes whose management addressing is applied.
    configured: HashSet<String>,
    execs: Mutex<Vec<ExecReport>>,
    init: PathBuf,
    timings: Mutex<Vec<(String, Duration)>>,
    /// Roots of the nodes that run from images.
    images: HashMap<String, native::ImageRoot>,
    /// The container engines the lab's docker and podman nodes use, connected before the nodes
    /// are created.
    engines: HashMap<EngineKind, docker::Engine>,
    /// What the VM nodes boot from, when the lab has any.
    vms: Option<vms::Assets>,
}

/// Whether a node's eth0 is on the container engine's management network: docker nodes in the
/// default network mode. (Podman nodes are wired by labwire: Podman's own networking is not used
/// yet.)
pub(crate) fn on_engine_network(n: &Node) -> bool {
    n.is_workload() && n.runtime == Runtime::Docker && n.network_mode == NetworkMode::Bridged
}

fn check_interrupt() -> Result<()> {
    if signals::interrupted() {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

impl Run<'_> {
    fn timed<T>(&self, what: &str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        self.timings
            .lock()
            .expect("timings")
            .push((what.to_string(), t.elapsed()));
        r
    }

    /// With a Docker engine on the host, its firewall drops traffic forwarded by other bridges:
    /// accept this bridge's (journalled first; removed on destroy).
    fn accept_bridge_traffic(&self, bridge: &str) -> Result<()> {
        let entries: Vec<Entry> = ["iptables", "ip6tables"]
            .into_iter()
            .map(|tool| Entry::FirewallAccept {
                tool: tool.into(),
                bridge: bridge.to_string(),
            })
            .collect();
        self.journal.record(&entries)?;
        docker::allow_bridge_forwarding(bridge)?;
        Ok(())
    }

    fn workers(&self) -> usize {
        self.opts.max_workers.max(1)
    }

    fn all(&mut self) -> Result<()> {
        let lab = self.lab;
        let existed = std::fs::symlink_metadata(&lab.dir).is_ok();
        self.journal.record(&[Entry::LabDir {
            path: lab.dir.clone(),
            created: !existed,
        }])?;
        artifacts::open_lab_dir(&lab.dir)?;
        let state_dir = paths::lab_state_dir(&lab.name);
        // Container nodes' images live in their engine, not in labwire's store.
        let mut native_view = lab.clone();
        for n in &mut native_view.nodes {
            if EngineKind::of(n.runtime).is_some() {
                n.image = None;
            }
        }
        self.images = self.timed("unpack images", || {
            crate::images::image_roots(&native_view, &state_dir)
        })?;
        self.vms = self.timed("vm disks", || {
            vms::prepare_assets(lab, &self.images, &|m| self.progress.message(m))
        })?;
        for n in lab.nodes.iter().filter(|n| n.is_workload()) {
            if let Some(kind) = EngineKind::of(n.runtime) {
                if let std::collections::hash_map::Entry::Vacant(v) = self.engines.entry(kind) {
                    v.insert(docker::Engine::connect(kind)?);
                }
            }
        }
        let used: Vec<Entry> = self
            .images
            .iter()
            .map(|(node, root)| Entry::NodeImage {
                node: node.clone(),
                id: root.id.clone(),
            })
            .collect();
        self.journal.record(&used)?;
        // The lab directory's files come first: nodes bind some of them (authorized_keys), and a
        // file replaced after a node bound it would be detached from the node.
        self.timed("lab files", || -> Result<()> {
            let home =
                std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
            let keys = artifacts::collect_ssh_pub_keys(&home);
            artifacts::write_lab_artifacts(lab, &keys)?;
            Ok(())
        })?;

        let t = Instant::now();
        let mut host = Handle::new().map_err(wire_err("open netlink"))?;
        let needs_mgmt = lab
            .nodes
            .iter()
            .any(|n| n.is_workload() && n.network_mode == NetworkMode::Bridged)
            || lab
                .links
                .iter()
                .any(|l| matches!(l.peer, Peer::MgmtNet { .. }));
        // Docker nodes' eth0 is on the engine's own bridge network (so `ports` publish); that
        // network's bridge is the management bridge, which native nodes join as usual.
        if lab.nodes.iter().any(on_engine_network) {
            let engine = self
                .engines
                .get(&EngineKind::Docker)
                .ok_or_else(|| Error::Invalid("the Docker engine is not connected".into()))?;
            let _g = Lock::global()?;
            self.journal.record(&[Entry::EngineNetwork {
                engine: EngineKind::Docker,
                socket: Some(engine.socket().to_path_buf()),
                name: lab.mgmt.network.clone(),
            }])?;
            self.timed("engine network", || {
                engine.ensure_network(&lab.name, &lab.mgmt)
            })?;
        }
        if needs_mgmt {
            let _g = Lock::global()?;
            wiring::ensure_mgmt_bridge(lab, &mut host, self.journal)?;
            self.accept_bridge_traffic(&lab.mgmt.bridge)?;
        }
        wiring::ensure_bridge_nodes(lab, &mut host, self.journal)?;
        for n in lab
            .nodes
            .iter()
            .filter(|n| n.class == KindClass::Bridge && n.in_host())
        {
            self.accept_bridge_traffic(&n.name)?;
        }
        self.timings
            .lock()
            .expect("timings")
            .push(("bridges".into(), t.elapsed()));

        // Stage rounds: each round moves every node whose waits are met one stage on.
        let workloads: Vec<&Node> = lab.nodes.iter().filter(|n| n.is_workload()).collect();
        let mut reached: HashMap<&str, Option<Stage>> =
            workloads.iter().map(|n| (n.name.as_str(), None)).collect();
        loop {
            check_interrupt()?;
            let mut ready: BTreeMap<Stage, Vec<&Node>> = BTreeMap::new();
            for n in &workloads {
                let next = match reached[n.name.as_str()] {
                    None => Stage::Create,
                    Some(Stage::Exit) => continue,
                    Some(s) => Stage::ALL[s as usize + 1],
                };
                if self.waits_met(n, next, &reached) {
                    ready.entry(next).or_default().push(n);
                }
            }
            if ready.is_empty() {
                if reached.values().all(|s| *s == Some(Stage::Exit)) {
                    break;
                }
                let stuck: Vec<&str> = reached
                    .iter()
                    .filter(|(_, s)| **s != Some(Stage::Exit))
                    .map(|(n, _)| *n)
                    .collect();
                return Err(Error::Invalid(format!(
                    "stages cannot progress: nodes {} wait for each other",
                    stuck.join(", ")
                )));
            }
            for (stage, nodes) in ready {
                self.stage_execs(&nodes, stage, ExecPhase::OnEnter)?;
                let t = Instant::now();
                match stage {
                    Stage::Create => self.create(&nodes)?,
                    Stage::CreateLinks => self.create_links(&nodes, &mut host)?,
                    Stage::Configure => self.configure(&nodes)?,
                    Stage::Healthy => self.healthy(&nodes)?,
                    Stage::Exit => {}
                }
                self.timings
                    .lock()
                    .expect("timings")
                    .push((stage.as_str().to_string(), t.elapsed()));
                self.stage_execs(&nodes, stage, ExecPhase::OnExit)?;
                for n in nodes {
                    reached.insert(n.name.as_str(), Some(stage));
                }
            }
        }
        check_interrupt()?;
        self.timed("artifacts", || self.artifacts())
    }

    fn waits_met(&self, n: &Node, stage: Stage, reached: &HashMap<&str, Option<Stage>>) -> bool {
        let mut waits: Vec<(&str, Stage)> = n
            .stages
            .get(&stage)
            .map(|s| {
                s.wait_for
                    .iter()
                    .map(|w| (w.node.as_str(), w.stage))
                    .collect()
            })
            .unwrap_or_default();
        // Sharing another node's network needs that node created first.
        if let (Stage::Create, NetworkMode::Container(other)) = (stage, &n.network_mode) {
            waits.push((other.as_str(), Stage::Create));
        }
        waits.iter().all(|(other, s)| match reached.get(other) {
            Some(Some(r)) => r >= s,
            Some(None) => false,
            None => true,
        })
    }

    fn create(&self, nodes: &[&Node]) -> Result<()> {
        self.progress.stage("create nodes", nodes.len());
        let spawning: Vec<Entry> = nodes
            .iter()
            .map(|n| Entry::Spawning {
                node: n.name.clone(),
            })
            .collect();
        self.journal.record(&spawning)?;
        let results = pool::run(
            nodes,
            self.workers(),
            &signals::interrupted,
            &|n: &&Node| -> Result<()> {
                let join = match &n.network_mode {
                    NetworkMode::Container(other) if self.lab.node(other).is_none() => {
                        let p = self.external_container(n, other)?;
                        Some(PathBuf::from(format!("/proc/{}/ns/net", p.pid)))
                    }
                    NetworkMode::Container(other) => {
                        let procs = self.procs.lock().expect("procs");
                        let p = procs.get(other).ok_or_else(|| {
                            Error::Invalid(format!("node {}: node {other} is not running", n.name))
                        })?;
                        Some(PathBuf::from(format!("/proc/{}/ns/net", p.pid)))
                    }
                    _ => None,
                };
                if n.startup_delay_s > 0 && n.class != KindClass::ExtContainer {
                    sleep_interruptible(Duration::from_secs(n.startup_delay_s))?;
                }
                let proc = match EngineKind::of(n.runtime) {
                    // An ext-container node is a container started outside labwire: its namespace
                    // is joined, never made, and it is never stopped (no node entry in the journal).
                    _ if n.class == KindClass::ExtContainer => {
                        self.external_container(n, &n.name)?
                    }
                    Some(kind) => self.create_container(n, kind)?,
                    None => self.spawn_native(n, join.as_deref())?,
                };
                let ns = NetNs::of_pid(proc.pid)
                    .map_err(wire_err(format!("open the namespace of node {}", n.name)))?;
                self.procs
                    .lock()
                    .expect("procs")
                    .insert(n.name.clone(), proc);
                self.nets.lock().expect("nets").insert(n.name.clone(), ns);
                self.progress.step(1);
                Ok(())
            },
        );
        first_error(results)?;
        // Names under /run/netns are bind mounts, and every new mount namespace copies all of them:
        // registering only after this round's nodes exist keeps node creation linear in lab size.
        let t = Instant::now();
        let nets = self.nets.lock().expect("nets");
        let entries: Vec<Entry> = nodes
            .iter()
            .map(|n| Entry::Netns {
                name: n.long_name.clone(),
                ino: nets.get(&n.name).and_then(|ns| ns.inode().ok()),
            })
            .collect();
        self.journal.record(&entries)?;
        for n in nodes {
            let ns = nets
                .get(&n.name)
                .ok_or_else(|| Error::Invalid(format!("node {} has no namespace", n.name)))?;
            wire::netns::register(ns, &n.long_name)
                .map_err(wire_err(format!("register namespace {}", n.long_name)))?;
        }
        self.timings
            .lock()
            .expect("timings")
            .push(("register netns".into(), t.elapsed()));
        Ok(())
    }

    /// A container outside the lab that node `n` needs (an ext-container node, or the `X` of
    /// `network-mode: container:X`), waited for as containerlab does: asked of the node's engine
    /// (Docker for native nodes, then Podman) until it runs, for at most
    /// `LABWIRE_EXTERNAL_WAIT` seconds (default 120).
    fn external_container(&self, n: &Node, name: &str) -> Result<ProcId> {
        let kinds: Vec<EngineKind> = match EngineKind::of(n.runtime) {
            Some(k) => vec![k],
            None => vec![EngineKind::Docker, EngineKind::Podman],
        };
        let engines: Vec<docker::Engine> = kinds
            .into_iter()
            .filter_map(|k| docker::Engine::connect(k).ok())
            .collect();
        if engines.is_empty() {
            return Err(Error::Invalid(format!(
                "node {}: container {name} is outside the lab and no Docker or Podman engine answers to find it",
                n.name
            )));
        }
        let wait = std::env::var("LABWIRE_EXTERNAL_WAIT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(120);
        let deadline = Instant::now() + Duration::from_secs(wait);
        let mut told = false;
        loop {
            for e in &engines {
                let pid = e.running_pid(name).map_err(|err| {
                    Error::Invalid(format!("node {}: find container {name}: {err}", n.name))
                })?;
                if let Some(p) = pid.and_then(ProcId::of) {
                    return Ok(p);
                }
            }
            check_interrupt()?;
            if Instant::now() >= deadline {
                return Err(Error::Invalid(format!(
                    "node {}: container {name} (outside the lab) was not running after {wait} s",
                    n.name
                )));
            }
            if !told {
                eprintln!("node {}: waiting for container {name} to run", n.name);
                told = true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A native node: its init, in new namespaces (or joining `join`'s network namespace).
    fn spawn_native(&self, n: &Node, join: Option<&std::path::Path>) -> Result<ProcId> {
        let lab = self.lab;
        let image = self.images.get(&n.name);
        let cgroup = match image {
            Some(img) if n.runtime != Runtime::Vm && native::runs_init_system(n, img) => {
                let base = native::cgroup2_mount().ok_or_else(|| {
                    Error::Invalid(format!(
                        "node {} runs an init system, which needs a cgroup v2 hierarchy; none is mounted on this host",
                        n.name
                    ))
                })?;
                let path = base.join("labwire").join(&lab.name).join(&n.name);
                self.journal
                    .record(&[Entry::Cgroup { path: path.clone() }])?;
                Some(path)
            }
            _ => None,
        };
        let vm = match (&self.vms, n.runtime, image) {
            (Some(assets), Runtime::Vm, Some(img)) => {
                let boot = assets.boots.get(&n.name).ok_or_else(|| {
                    Error::Invalid(format!("node {}: nothing prepared to boot", n.name))
                })?;
                Some((
                    vms::shell_node(n),
                    vms::vmm_argv(lab, n, img, boot, assets)?,
                ))
            }
            _ => None,
        };
        let proc = native::spawn(&native::Spawn {
            lab: &lab.name,
            node: vm.as_ref().map_or(n, |(shell, _)| shell),
            init: &self.init,
            run_dir: &paths::lab_run_dir(&lab.name).join(&n.name),
            join_netns: join,
            image: if vm.is_some() { None } else { image },
            cgroup: cgroup.as_deref(),
            argv: vm.as_ref().map(|(_, argv)| argv.as_slice()),
        })?;
        self.journal.record(&[Entry::Node {
            node: n.name.clone(),
            proc,
        }])?;
        Ok(proc)
    }

    /// A docker or podman node: its container, created by engine `kind` (journalled by name first,
    /// then by id) and started; the container's first process is recorded as the node's process.
    fn create_container(&self, n: &Node, kind: EngineKind) -> Result<ProcId> {
        let lab = self.lab;
        let engine = self.engines.get(&kind).ok_or_else(|| {
            Error::Invalid(format!(
                "node {}: no connection to the {kind} engine",
                n.name
            ))
        })?;
        std::fs::create_dir_all(&n.dir).map_err(io(format!("create {}", n.dir.display())))?;
        // A container outside the lab is joined by its own name, once it runs.
        let share = match &n.network_mode {
            NetworkMode::Container(other) => match lab.node(other) {
                Some(o) => Some(o.long_name.as_str()),
                None => {
                    self.external_container(n, other)?;
                    Some(other.as_str())
                }
            },
            _ => None,
        };
        let intfs = lab
            .links
            .iter()
            .flat_map(|l| l.endpoints())
            .filter(|e| e.node == n.name)
            .count();
        let spec = docker::Container {
            lab: &lab.name,
            node: n,
            topo_file: lab.topology_file.as_deref(),
            share_net_with: share,
            intfs,
            network: on_engine_network(n).then_some(lab.mgmt.network.as_str()),
        };
        let entry = |id: Option<String>| Entry::Container {
            node: n.name.clone(),
            name: n.long_name.clone(),
            id,
            engine: kind,
            socket: Some(engine.socket().to_path_buf()),
        };
        self.journal.record(&[entry(None)])?;
        let id = match engine.create(&spec) {
            Ok(id) => id,
            Err(e) => {
                // Refused (a name conflict): whatever holds the name is not this lab's.
                self.journal.record(&[Entry::ContainerNotMade {
                    name: n.long_name.clone(),
                }])?;
                return Err(e.into());
            }
        };
        self.journal.record(&[entry(Some(id.clone()))])?;
        let pid = engine.start(&id, &n.long_name)?;
        let proc = runtime::process::ProcId::of(pid).ok_or_else(|| {
            Error::Invalid(format!(
                "node {}: container {} exited right after it started",
                n.name, n.long_name
            ))
        })?;
        self.journal.record(&[Entry::Node {
            node: n.name.clone(),
            proc,
        }])?;
        Ok(proc)
    }

    fn create_links(&mut self, nodes: &[&Node], host: &mut Handle) -> Result<()> {
        let lab = self.lab;
        let names: HashSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        let nets = self.nets.lock().expect("nets");
        // A bridge inside a node's namespace exists once that node does.
        let created = |node: &str| -> bool {
            match lab.node(node) {
                Some(n) => match n.netns_bridge() {
                    Some((_, owner)) => nets.contains_key(owner),
                    None => nets.contains_key(node) || !n.is_workload(),
                },
                None => nets.contains_key(node),
            }
        };
        let mut todo: Vec<(usize, &Link)> = Vec::new();
        for (i, l) in lab.links.iter().enumerate() {
            if self.made_links.contains(&i) {
                continue;
            }
            let ends: Vec<&str> = l.endpoints().map(|e| e.node.as_str()).collect();
            if ends.iter().any(|n| names.contains(n)) && ends.iter().all(|n| created(n)) {
                todo.push((i, l));
            }
        }
        let mgmt: Vec<&Node> = nodes
            .iter()
            .copied()
            .filter(|n| {
                n.network_mode == NetworkMode::Bridged
                    && n.class != KindClass::ExtContainer
                    && !self.configured.contains(&n.name)
                    && !on_engine_network(n)
            })
            .collect();
        self.progress.stage("create links", todo.len() + mgmt.len());
        let ns_refs: HashMap<String, &NetNs> = nets.iter().map(|(k, v)| (k.clone(), v)).collect();
        // Bridges inside these nodes' namespaces exist before their links and their `exec`.
        wiring::ensure_netns_bridges(lab, &names, &ns_refs)?;
        // Large rounds go in slices so progress moves and the journal stays ahead of the kernel.
        let links: Vec<&Link> = todo.iter().map(|(_, l)| *l).collect();
        let t = Instant::now();
        for chunk in mgmt.chunks(512) {
            check_interrupt()?;
            wiring::create_links(lab, &[], chunk, &ns_refs, host, self.journal)?;
            self.progress.step(chunk.len());
        }
        let t_mgmt = t.elapsed();
        for chunk in links.chunks(512) {
            check_interrupt()?;
            wiring::create_links(lab, chunk, &[], &ns_refs, host, self.journal)?;
            self.progress.step(chunk.len());
        }
        let t_links = t.elapsed() - t_mgmt;
        self.timings.lock().expect("timings").extend([
            ("  mgmt veths".to_string(), t_mgmt),
            ("  link veths".to_string(), t_links),
        ]);
        let t = Instant::now();
        // Configure every node that got an interface this round.
        let mut touched: BTreeSet<&str> = names.clone().into_iter().collect();
        for l in &links {
            for e in l.endpoints() {
                if nets.contains_key(&e.node) {
                    touched.insert(e.node.as_str());
                }
            }
        }
        let touched: Vec<&Node> = touched.into_iter().filter_map(|n| lab.node(n)).collect();
        let mut endpoints: HashMap<&str, Vec<&topology::Endpoint>> = HashMap::new();
        for l in &lab.links {
            for e in l.endpoints() {
                endpoints.entry(e.node.as_str()).or_default().push(e);
            }
        }
        let home = NetNs::current().map_err(wire_err("open the host network namespace"))?;
        self.progress.stage("configure interfaces", touched.len());
        let configured = &self.configured;
        let results = pool::run(
            &touched,
            self.workers(),
            &signals::interrupted,
            &|n: &&Node| -> Result<()> {
                let ns = ns_refs
                    .get(&n.name)
                    .ok_or_else(|| Error::Invalid(format!("node {} has no namespace", n.name)))?;
                // The engine addresses eth0 of a node on its network.
                let base = !configured.contains(&n.name)
                    && names.contains(n.name.as_str())
                    && !on_engine_network(n)
                    && n.class != KindClass::ExtContainer;
                if n.network_mode == NetworkMode::Container(String::new())
                    || matches!(n.network_mode, NetworkMode::Host)
                {
                    return Ok(());
                }
                let eps = endpoints
                    .get(n.name.as_str())
                    .map_or(&[][..], Vec::as_slice);
                let cfg = wiring::NodeConfig {
                    node: n,
                    endpoints: eps,
                    base,
                    // A VM node's guest holds its addresses.
                    addresses: n.runtime != Runtime::Vm,
                };
                wiring::configure_node(lab, &cfg, ns, &home)?;
                self.progress.step(1);
                Ok(())
            },
        );
        first_error(results)?;
        self.timings
            .lock()
            .expect("timings")
            .push(("  addresses".to_string(), t.elapsed()));
        drop(nets);
        for (i, _) in todo {
            self.made_links.insert(i);
        }
        for n in nodes {
            self.configured.insert(n.name.clone());
        }
        Ok(())
    }

    fn configure(&self, nodes: &[&Node]) -> Result<()> {
        let vm_nodes: Vec<&Node> = nodes
            .iter()
            .copied()
            .filter(|n| n.runtime == Runtime::Vm)
            .collect();
        if !vm_nodes.is_empty() {
            // Every NIC exists before the guest boots.
            let home = NetNs::current().map_err(wire_err("open the host network namespace"))?;
            let nets = self.nets.lock().expect("nets");
            for n in &vm_nodes {
                let ns = nets
                    .get(&n.name)
                    .ok_or_else(|| Error::Invalid(format!("node {} has no namespace", n.name)))?;
                vms::stitch(self.lab, n, ns, &home)?;
            }
        }
        // Start each node's command now that its links are up.
        for n in nodes
            .iter()
            .filter(|n| EngineKind::of(n.runtime).is_none() && n.class != KindClass::ExtContainer)
        {
            if let Some(p) = self.procs.lock().expect("procs").get(&n.name) {
                if p.is_alive() {
                    // SAFETY: signals a process whose identity (pid + start time) was just checked.
                    unsafe { libc::kill(p.pid, libc::SIGUSR1) };
                }
            }
        }
        if !vm_nodes.is_empty() {
            self.wait_for_guests(&vm_nodes)?;
        }
        let with_exec: Vec<&Node> = nodes
            .iter()
            .copied()
            .filter(|n| !n.exec.is_empty())
            .collect();
        if with_exec.is_empty() {
            return Ok(());
        }
        self.progress.stage("exec", with_exec.len());
        let results = pool::run(
            &with_exec,
            self.workers(),
            &signals::interrupted,
            &|n: &&Node| -> Result<()> {
                for c in &n.exec {
                    self.exec_in(n, c)?;
                }
                self.progress.step(1);
                Ok(())
            },
        );
        first_error(results)
    }

    /// Wait until every VM node's guest agent answers (the guests boot in parallel).
    fn wait_for_guests(&self, vm_nodes: &[&Node]) -> Result<()> {
        self.progress.stage("boot VMs", vm_nodes.len());
        let t = Instant::now();
        let timeout = vms::boot_timeout();
        let results = pool::run(
            vm_nodes,
            vm_nodes.len().min(64),
            &signals::interrupted,
            &|n: &&Node| -> Result<()> {
                let proc = self.procs.lock().expect("procs").get(&n.name).copied();
                // The VMM appears once the node's init has the start signal; it may take a
                // moment to fork it.
                let since = Instant::now();
                let seen = std::cell::Cell::new(false);
                let alive = || {
                    let Some(p) = proc.filter(|p| p.is_alive()) else {
                        return false;
                    };
                    if vms::vmm_pid(p).is_some() {
                        seen.set(true);
                        return !signals::interrupted();
                    }
                    !seen.get() && since.elapsed() < Duration::from_secs(10)
                };
                let run_dir = vms::node_run_dir(&self.lab.name, &n.name);
                let logs = [run_dir.join("console.log"), n.dir.join("console.log")];
                let logs: Vec<&std::path::Path> = logs.iter().map(PathBuf::as_path).collect();
                runtime::vm::wait_ready(&run_dir, &logs, timeout, &alive)
                    .map_err(|e| Error::Invalid(format!("VM node {}: {e}", n.name)))?;
                self.progress.step(1);
                Ok(())
            },
        );
        check_interrupt()?;
        first_error(results)?;
        self.timings
            .lock()
            .expect("timings")
            .push(("  guests up".to_string(), t.elapsed()));
        Ok(())
    }

    fn exec_in(&self, n: &Node, command: &str) -> Result<native::ExecOutput> {
        let proc = self
            .procs
            .lock()
            .expect("procs")
            .get(&n.name)
            .copied()
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "node {} is not running, so `{command}` cannot run in it",
                    n.name
                ))
            })?;
        let out = vms::exec_in_node(&self.lab.name, n, proc, &self.init, command)?;
        self.execs.lock().expect("execs").push(ExecReport {
            node: n.name.clone(),
            command: command.to_string(),
            output: out.clone(),
        });
        Ok(out)
    }

    fn stage_execs(&self, nodes: &[&Node], stage: Stage, phase: ExecPhase) -> Result<()> {
        for n in nodes {
            let Some(spec) = n.stages.get(&stage) else {
                continue;
            };
            for e in spec.exec.iter().filter(|e| e.phase == phase) {
                match e.target {
                    ExecTarget::Container => {
                        self.exec_in(n, &e.command)?;
                    }
                    ExecTarget::Host => {
                        let out = std::process::Command::new("/bin/sh")
                            .args(["-c", &e.command])
                            .env("CLAB_NODE_NAME", &n.name)
                            .env("CLAB_NODE_LONGNAME", &n.long_name)
                            .output()
                            .map_err(io(format!(
                                "run `{}` on the host for node {}",
                                e.command, n.name
                            )))?;
                        self.execs.lock().expect("execs").push(ExecReport {
                            node: format!("{} (host)", n.name),
                            command: e.command.clone(),
                            output: native::ExecOutput {
                                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                                code: out.status.code().unwrap_or(-1),
                            },
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn healthy(&self, nodes: &[&Node]) -> Result<()> {
        let checked: Vec<&Node> = nodes
            .iter()
            .copied()
            .filter(|n| n.healthcheck.as_ref().is_some_and(|h| !h.test.is_empty()))
            .collect();
        if checked.is_empty() {
            return Ok(());
        }
        self.progress.stage("healthy", checked.len());
        let workers = checked.len().min(64);
        let results = pool::run(
            &checked,
            workers,
            &signals::interrupted,
            &|n: &&Node| -> Result<()> {
                let h = n.healthcheck.as_ref().expect("filtered");
                let cmd = healthcheck_command(&h.test);
                let proc = self
                    .procs
                    .lock()
                    .expect("procs")
                    .get(&n.name)
                    .copied()
                    .ok_or_else(|| Error::Invalid(format!("node {} is not running", n.name)))?;
                let start = Instant::now();
                sleep_interruptible(Duration::from_secs(h.start_period_s.min(1)))?;
                let mut failures = 0;
                loop {
                    check_interrupt()?;
                    let out = vms::exec_in_node(&self.lab.name, n, proc, &self.init, &cmd)?;
                    if out.code == 0 {
                        self.progress.step(1);
                        return Ok(());
                    }
                    if start.elapsed() >= Duration::from_secs(h.start_period_s) {
                        failures += 1;
                    }
                    if failures >= h.retries.max(1) {
                        return Err(Error::Invalid(format!(
                        "node {} is unhealthy: `{cmd}` failed {failures} times (last exit {}: {})",
                        n.name,
                        out.code,
                        out.stderr.trim()
                    )));
                    }
                    sleep_interruptible(Duration::from_secs(h.interval_s.max(1)))?;
                }
            },
        );
        first_error(results)
    }

    fn artifacts(&self) -> Result<()> {
        let lab = self.lab;
        let entries: Vec<(IpAddr, String)> = lab
            .nodes
            .iter()
            .filter(|n| n.is_workload())
            .flat_map(|n| {
                n.mgmt_ipv4
                    .map(IpAddr::V4)
                    .into_iter()
                    .chain(n.mgmt_ipv6.map(IpAddr::V6))
                    .map(|a| (a, n.long_name.clone()))
            })
            .collect();
        if !entries.is_empty() {
            let hosts = paths::hosts_file();
            self.journal.record(&[Entry::HostsBlock {
                path: hosts.clone(),
            }])?;
            artifacts::hosts::add_block_locked(
                &hosts,
                &paths::lock_dir().join("hosts.lock"),
                &lab.name,
                &entries,
            )?;
        }
        let ssh_dir = paths::ssh_config_dir();
        if ssh_dir.is_dir() {
            let path = ssh_dir.join(format!("clab-{}.conf", lab.name));
            if std::fs::symlink_metadata(&path).is_ok()
                && !crate::contain::ssh_config_is_labwires(&path)
            {
                // Someone else's file by that name: it stays as it is, and is not recorded.
                self.progress.message(&format!(
                    "warning: {} exists and was not written by labwire; leaving it alone (no ssh config for lab {})",
                    path.display(),
                    lab.name
                ));
                return Ok(());
            }
            self.journal
                .record(&[Entry::SshConfig { path: path.clone() }])?;
            write_new_file(&path, artifacts::ssh_config(lab).as_bytes())?;
        }
        Ok(())
    }
}

/// Write `data` to `path` as a root-owned 0644 file, never through a link: a file put there
/// between the check and the write is replaced, not written into.
fn write_new_file(path: &std::path::Path, data: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension(format!("labwire-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f| f.write_all(data))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io(format!("write {}", path.display())))
}

/// A healthcheck `test` as one shell command.
pub fn healthcheck_command(test: &[String]) -> String {
    match test.first().map(String::as_str) {
        Some("CMD-SHELL") => test[1..].join(" "),
        Some("CMD") => test[1..]
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" "),
        _ => test.join(" "),
    }
}

pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn sleep_interruptible(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        check_interrupt()?;
        std::thread::sleep(
            Duration::from_millis(50).min(end.saturating_duration_since(Instant::now())),
        );
    }
    Ok(())
}

fn first_error(results: Vec<Option<Result<()>>>) -> Result<()> {
    let mut interrupted = false;
    for r in results {
        match r {
            Some(Err(e)) => return Err(e),
            Some(Ok(())) => {}
            None => interrupted = true,
        }
    }
    if interrupted || signals::interrupted() {
        return Err(Error::Interrupted);
    }
    Ok(())
}

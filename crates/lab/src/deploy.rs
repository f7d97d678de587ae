//! Deploying a lab: preflight (nothing touched), then the stages create → create-links → configure →
//! healthy → exit, run in rounds so `wait-for` across nodes is honoured, then the artifacts.
//!
//! Every host object is journalled before it is made; any failure or interruption rolls back
//! through `destroy`. Nodes are started and configured by a worker pool; links are made in one
//! batch per round from the host's netlink socket, each veth born in its target namespaces.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use runtime::backend::{CreateNode, Deployment, LabDirs, SharedNet};
use runtime::node::{ExecOutput, ImageRoot, NodeContext};
use runtime::process::ProcId;
use runtime::{Backends, NodeNetwork, Running};
use topology::{ExecPhase, ExecTarget, KindClass, Lab, Link, NetworkMode, Node, Stage};
use wire::netlink::Handle;
use wire::NetNs;

use crate::error::{io, wire as wire_err, Error, Result};
use crate::progress::Progress;
use crate::state::{self, Entry, Journal, Recorded};
use crate::{
    artifacts, converge, destroy, links, lock::Lock, mgmt_fabric, paths, pool, signals, wiring,
};

pub struct DeployOptions {
    pub max_workers: usize,
    pub reconfigure: bool,
    /// No progress display (tests, scripts).
    pub quiet: bool,
    /// On a running lab, converge only these nodes (and their links); the rest stays as it runs.
    pub node_filter: Vec<String>,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            max_workers: pool::default_workers(),
            reconfigure: false,
            quiet: false,
            node_filter: Vec::new(),
        }
    }
}

/// Output of node `exec` commands and stage commands, for the caller to show.
#[derive(Debug, Clone)]
pub struct ExecReport {
    pub node: String,
    pub command: String,
    pub output: ExecOutput,
}

pub struct Deployed {
    pub lab: Lab,
    /// Wall time of each step, in order (for `--stats`).
    pub timings: Vec<(String, Duration)>,
    pub execs: Vec<ExecReport>,
    pub elapsed: Duration,
}

/// Everything checked before the host is touched.
pub fn preflight(lab: &Lab, backends: &Backends) -> Result<()> {
    preflight_nodes(lab, backends, &|_| true)
}

/// [`preflight`] with the runtimes' checks of nodes (images, binds, what each runtime needs)
/// only for the nodes `checked` accepts: a converging deploy checks only the nodes it makes.
fn preflight_nodes(lab: &Lab, backends: &Backends, checked: &dyn Fn(&Node) -> bool) -> Result<()> {
    if !unix::is_root() {
        return Err(Error::NotRoot { command: "deploy" });
    }
    // The nodes checked, as a lab of their own for the containment checks (only when that is
    // fewer than all: a fresh deploy's lab is not copied).
    let subset = lab
        .nodes
        .iter()
        .any(|n| !checked(n))
        .then(|| converge::part_of(lab, checked, Vec::new()));
    let checked_lab = subset.as_ref().unwrap_or(lab);
    let mut problems = Vec::new();
    let mut checked_images: HashMap<(String, Option<String>), std::result::Result<(), String>> =
        HashMap::new();
    let workloads: Vec<&Node> = lab
        .nodes
        .iter()
        .filter(|n| n.is_workload() && checked(n))
        .collect();
    for (backend, nodes) in backends.group(&workloads) {
        problems.extend(backend.preflight(lab, &nodes));
        if !backend.uses_image_store() {
            continue;
        }
        for n in nodes {
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
    }
    for n in lab.nodes.iter().filter(|n| checked(n)) {
        // An engine checks its containers' binds itself.
        if !backends.node(n).uses_image_store() && n.is_workload() {
            continue;
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
    crate::contain::check_lab_dir(checked_lab, &mut problems);
    crate::contain::check_sources(checked_lab, &mut problems);
    crate::contain::check_foreign_names(checked_lab, &mut problems);
    if checked_lab
        .nodes
        .iter()
        .any(|n| n.is_workload() && n.network_mode == NetworkMode::Bridged)
    {
        crate::contain::check_mgmt_routes(lab, &mut problems);
    }
    // One dump of the host's interfaces answers every name check below (none is needed when
    // every link is between nodes' own namespaces).
    if links::needs_host_names(lab) {
        let host_links: HashSet<String> = Handle::new()
            .and_then(|mut h| h.links())
            .map_err(wire_err("list host interfaces"))?
            .into_iter()
            .map(|l| l.name)
            .collect();
        links::preflight(lab, &host_links, &mut problems);
    }
    crate::linkops::preflight(lab, backends, &mut problems)?;
    if links::uses_dummy(lab) {
        probe_kind_dummy(&mut problems)?;
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Preflight {
            lab: lab.name.clone(),
            problems,
        })
    }
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
        Err(e) => Err(wire_err("probe dummy links")(e)),
    }
}

/// Management addresses used by other deployed labs on the same network.
pub(crate) fn addresses_taken_elsewhere(lab: &Lab) -> BTreeSet<IpAddr> {
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

/// Deploy a normalised lab; on a lab that runs (without `reconfigure`), change only what differs
/// from the recorded lab ([`converge`]). On failure everything made is removed again.
pub fn deploy(mut lab: Lab, opts: &DeployOptions) -> Result<Deployed> {
    let start = Instant::now();
    let backends = Backends::new();
    crate::partition::skip_mgmt_ipv6_if_disabled(&mut lab);
    // Steps before the node rounds, timed for `--stats`.
    let mut before = Vec::new();
    let mut mark = Instant::now();
    let mut lap = |what: &str| {
        before.push((what.to_string(), mark.elapsed()));
        mark = Instant::now();
    };
    if !unix::is_root() {
        return Err(Error::NotRoot { command: "deploy" });
    }
    // The lock first: a running lab's record is then read once, and stays what the plan saw.
    paths::ensure_run_tmpfs()?;
    let _lab_lock = Lock::lab(&lab.name)?;
    // What ran when the lock was taken (a converging deploy keeps it).
    let running = converge::running(&lab.name).filter(|_| !opts.reconfigure);
    let converging = match &running {
        Some(rec) => Some(converge::prepare(&mut lab, rec, &opts.node_filter)?),
        None => None,
    };
    lap("plan");
    match &converging {
        // Only what the deploy makes: the rest passed its checks when it was made.
        Some((_, plan)) => preflight_nodes(
            &converge::preflight_view(&lab, plan),
            &backends,
            &|n: &Node| plan.made().any(|m| *m == n.name),
        )?,
        None => preflight(&lab, &backends)?,
    }
    lap("preflight");
    if !opts.quiet {
        log::info!(
            "deploy lab {}: {} nodes, {} links",
            lab.name,
            lab.nodes.iter().filter(|n| n.is_workload()).count(),
            lab.links.len()
        );
    }
    signals::install();
    let state_dir = paths::lab_state_dir(&lab.name);
    if let (Some((old, plan)), Some(rec)) = (&converging, &running) {
        log::info!("{}", plan.render(old, &lab).trim_end());
        converge::remove(&lab.name, rec, old, plan)?;
        lap("remove");
    } else if state_dir.exists() {
        let rec = Recorded::read(&state_dir);
        let alive = rec.procs().iter().any(|(_, p)| p.is_alive())
            || !runtime::process::find_inits(&lab.name).is_empty();
        if alive && !opts.reconfigure {
            return Err(Error::AlreadyDeployed {
                lab: lab.name.clone(),
            });
        }
        destroy::destroy_recorded(&lab.name, &rec, false)?;
    }
    paths::private_lab_dirs(&lab.name)?;
    let recorded = (|| -> Result<Journal> {
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
                return Err(Error::AddressesTaken {
                    nodes: clashes,
                    network: lab.mgmt.network.clone(),
                });
            }
            topology::reassign_mgmt(&mut lab, &taken).map_err(Error::MgmtAddresses)?;
        }
        state::write_lab(&state_dir, &lab)?;
        Journal::open(&state_dir)
    })();
    let journal = match recorded {
        Ok(journal) => journal,
        Err(e) => {
            // Nothing was made yet (an interrupt while waiting for the lock, an address clash):
            // the directories just made go, unless a running lab's are converged.
            if converging.is_none() {
                let _ = std::fs::remove_dir_all(&state_dir);
                let _ = std::fs::remove_dir_all(paths::lab_run_dir(&lab.name));
            }
            return Err(e);
        }
    };
    lap("record lab");
    let progress = Progress::new(opts.quiet);
    let dirs = LabDirs {
        run: paths::lab_run_dir(&lab.name),
        state: state_dir.clone(),
        locks: paths::lock_dir(),
    };
    let mut run = Run {
        lab: &lab,
        backends: &backends,
        dirs: &dirs,
        journal: &journal,
        opts,
        progress: &progress,
        nets: Mutex::new(HashMap::new()),
        procs: Mutex::new(HashMap::new()),
        made_links: HashSet::new(),
        configured: HashSet::new(),
        execs: Mutex::new(Vec::new()),
        init: runtime::node::init_path()?,
        timings: Mutex::new(before),
        images: HashMap::new(),
        kept: HashSet::new(),
        mgmt_down: false,
        mgmt_group: None,
        unregistered: Vec::new(),
    };
    if let (Some((_, plan)), Some(rec)) = (&converging, &running) {
        run.adopt_running(plan, rec)?;
    }
    let result = run.all();
    let execs = std::mem::take(&mut *run.execs.lock().expect("execs"));
    let mut timings = std::mem::take(&mut *run.timings.lock().expect("timings"));
    drop(run);
    let t = Instant::now();
    let made_links = converging
        .as_ref()
        .map(|(_, plan)| plan.make_links.as_slice());
    let result = result.and_then(|()| crate::linkops::apply_deployed(&lab, &backends, made_links));
    match result {
        Ok(()) => {
            journal.record(&[Entry::Done])?;
            timings.push(("impairments".into(), t.elapsed()));
            let nodes = lab.nodes.iter().filter(|n| n.is_workload()).count();
            crate::events::emit(&lab.name, crate::events::Event::LabDeployed { nodes });
            if let Some((_, plan)) = &converging {
                plan.emit_events(&lab.name);
            }
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
                "deploy of lab {} failed: {}; removing what was made",
                lab.name,
                crate::error::chain(&e)
            ));
            progress.finish();
            let rec = Recorded::read(&state_dir);
            if let Some((_, plan)) = &converging {
                // Only what this deploy made goes; the nodes that ran before keep running.
                return match converge::undo(&lab, &rec, plan) {
                    Ok(()) => Err(e),
                    Err(d) => Err(Error::Rollback {
                        failed: Box::new(e),
                        rollback: Box::new(d),
                    }),
                };
            }
            // A lab directory this deploy created goes too; one that existed before stays.
            let made_dir = destroy::teardown(&rec.entries)
                .lab_dir
                .is_some_and(|(_, created)| created);
            if let Err(d) = destroy::destroy_recorded(&lab.name, &rec, made_dir) {
                return Err(Error::Rollback {
                    failed: Box::new(e),
                    rollback: Box::new(d),
                });
            }
            Err(e)
        }
    }
}

struct Run<'a> {
    lab: &'a Lab,
    /// The runtime of each node.
    backends: &'a Backends,
    dirs: &'a LabDirs,
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
    /// Roots of the nodes that run from images in labwire's store.
    images: HashMap<String, ImageRoot>,
    /// Nodes that already run, untouched by a converging deploy.
    kept: HashSet<String>,
    /// The management network this deploy made, held down until its nodes' interfaces are up
    /// (see [`crate::mgmt_fabric::bring_up`]).
    mgmt_down: bool,
    /// The interface group of the nodes' management ports (see [`mgmt_fabric::filter_flood`]).
    mgmt_group: Option<u32>,
    /// Nodes made whose namespaces are not named under /run/netns yet (see [`Run::register`]).
    unregistered: Vec<String>,
}

/// Nodes of a round whose links and addresses are made together (see [`Run::create_links`]).
const LINK_SLICE: usize = 512;

/// One slice of a round's link step.
struct Slice<'n> {
    nodes: &'n [&'n Node],
    /// Its nodes that get a management interface.
    mgmt: Vec<&'n Node>,
    /// The links whose last end (by slice) is in it.
    links: Vec<&'n Link>,
    /// The interfaces its links add to nodes of earlier slices or rounds: only those are
    /// configured there.
    added: HashMap<&'n str, BTreeSet<&'n str>>,
}

/// Native nodes started at once per worker (see [`Run::create`]): on 2 CPUs, 1000 nodes started
/// 8 at a time took 30 % less time than 2 at a time.
const NATIVE_SPAWNS_PER_WORKER: usize = 4;

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
        wiring::accept_bridge_traffic(bridge, self.journal)
    }

    fn workers(&self) -> usize {
        self.opts.max_workers.max(1)
    }

    /// What the runtimes are given about this deploy.
    fn deployment(&self) -> Deployment<'_> {
        Deployment {
            lab: self.lab,
            dirs: self.dirs,
            init: &self.init,
            images: &self.images,
        }
    }

    /// A created node as the runtimes reach it.
    fn running<'n>(&'n self, n: &'n Node) -> Result<Running<'n>> {
        let proc = self
            .procs
            .lock()
            .expect("procs")
            .get(&n.name)
            .copied()
            .ok_or_else(|| Error::NotRunning {
                lab: self.lab.name.clone(),
                node: n.name.clone(),
            })?;
        Ok(Running {
            lab: self.lab,
            node: n,
            proc,
            run_dir: self.dirs.node_run(&n.name),
            init: &self.init,
        })
    }

    /// Whether labwire wires and addresses a node's management `eth0` (not its engine).
    fn wires_mgmt(&self, n: &Node) -> bool {
        !n.is_workload() || self.backends.node(n).labwire_wires_mgmt(n)
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
        // Container nodes' images live in their engine, not in labwire's store, and nodes that
        // run already have theirs (a copy of the lab without them only when there are some: a
        // large lab's copy is tens of megabytes).
        let skip = |n: &Node| {
            n.image.is_some()
                && (!self.backends.node(n).uses_image_store() || self.kept.contains(&n.name))
        };
        let store_view = lab.nodes.iter().any(skip).then(|| {
            let mut view = lab.clone();
            for n in view.nodes.iter_mut().filter(|n| skip(n)) {
                n.image = None;
            }
            view
        });
        self.images = self.timed("unpack images", || {
            crate::images::image_roots(store_view.as_ref().unwrap_or(lab), &state_dir)
        })?;
        drop(store_view);
        let workloads: Vec<&Node> = lab
            .nodes
            .iter()
            .filter(|n| n.is_workload() && !self.kept.contains(&n.name))
            .collect();
        let backends = self.backends;
        let groups = backends.group(&workloads);
        self.timed("prepare nodes", || -> Result<()> {
            let d = self.deployment();
            for (backend, nodes) in &groups {
                backend.prepare(&d, nodes, &|m| self.progress.message(m))?;
            }
            Ok(())
        })?;
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
            artifacts::write_lab_artifacts(lab.whole(), &keys)?;
            Ok(())
        })?;

        let t = Instant::now();
        let mut host = Handle::new().map_err(wire_err("open netlink"))?;
        let needs_mgmt = lab
            .nodes
            .iter()
            .any(|n| n.is_workload() && n.network_mode == NetworkMode::Bridged)
            || links::uses_mgmt_bridge(lab);
        // Networks of a runtime's own (the Docker engine's, whose bridge is the management
        // bridge, which other nodes join as usual).
        {
            let _g = Lock::global()?;
            let d = self.deployment();
            for (backend, nodes) in &groups {
                backend.host_networks(&d, nodes, self.journal)?;
            }
        }
        if needs_mgmt {
            let _g = Lock::global()?;
            let bridge = wiring::ensure_mgmt_bridge(lab, &mut host, self.journal)?;
            self.mgmt_down = bridge.created;
            self.accept_bridge_traffic(&lab.mgmt.bridge)?;
            // Before the bridge comes up, on a bridge that does not snoop, once nodes get ports.
            let ports = lab.nodes.iter().any(|n| {
                n.is_workload() && n.network_mode == NetworkMode::Bridged && self.wires_mgmt(n)
            });
            if bridge.labwires && ports {
                mgmt_fabric::filter_flood(self.journal)?;
                self.mgmt_group = Some(mgmt_fabric::PORT_GROUP);
            }
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
        let mut reached: HashMap<&str, Option<Stage>> = workloads
            .iter()
            .map(|n| {
                let done = self.kept.contains(&n.name).then_some(Stage::Exit);
                (n.name.as_str(), done)
            })
            .collect();
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
                return Err(Error::StagesStuck {
                    nodes: stuck.into_iter().map(str::to_string).collect(),
                });
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
        // Links a converging deploy adds between nodes that ran already (one pass over the links:
        // a large lab's kept nodes are not each matched against every link).
        let unmade: HashSet<&str> = lab
            .links
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.made_links.contains(i))
            .flat_map(|(_, l)| l.endpoints().map(|e| e.node.as_str()))
            .collect();
        let pending: Vec<&Node> = workloads
            .iter()
            .copied()
            .filter(|n| self.kept.contains(&n.name) && unmade.contains(n.name.as_str()))
            .collect();
        if !pending.is_empty() {
            self.create_links(&pending, &mut host)?;
        }
        // Nodes whose links waited on a stage that never came still get their names.
        self.register_pending()?;
        self.mgmt_up(&mut host)?;
        check_interrupt()?;
        self.timed("artifacts", || self.artifacts())
    }

    /// Take the nodes a converging deploy keeps as they run: their processes and namespaces, and
    /// their links that stay.
    fn adopt_running(&mut self, plan: &converge::Plan, rec: &Recorded) -> Result<()> {
        let lab = self.lab;
        // One pass over the journal for every node's process.
        let states = rec.node_states();
        for name in &plan.keep {
            let Some(n) = lab.node(name).filter(|n| n.is_workload()) else {
                continue;
            };
            let ns = crate::lifecycle::kept_netns(n)?;
            if let Some(p) = states.get(name.as_str()).and_then(|(p, _)| *p) {
                self.procs.lock().expect("procs").insert(name.clone(), p);
            }
            self.nets.lock().expect("nets").insert(name.clone(), ns);
            self.configured.insert(name.clone());
            self.kept.insert(name.clone());
        }
        let make: HashSet<usize> = plan.make_links.iter().copied().collect();
        self.made_links = (0..lab.links.len()).filter(|i| !make.contains(i)).collect();
        Ok(())
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

    fn create(&mut self, nodes: &[&Node]) -> Result<()> {
        // The last round's names first: this round's new mount namespaces copy them once.
        self.register_pending()?;
        self.progress.stage("create nodes", nodes.len());
        let spawning: Vec<Entry> = nodes
            .iter()
            .map(|n| Entry::Spawning {
                node: n.name.clone(),
            })
            .collect();
        self.journal.record(&spawning)?;
        // A native node's worker mostly waits for its init (exec, namespaces, mounts, a fork),
        // so a few inits per worker keep the CPUs busy; other runtimes say how many of their
        // nodes to create at once (an engine: a few requests per worker).
        let native = nodes
            .iter()
            .all(|n| self.backends.node(n).name() == "native");
        let in_flight = if native {
            self.workers() * NATIVE_SPAWNS_PER_WORKER
        } else {
            nodes
                .iter()
                .map(|n| self.backends.node(n).create_concurrency(self.workers()))
                .max()
                .unwrap_or(1)
        };
        let results = pool::run(
            nodes,
            in_flight,
            &signals::interrupted,
            &|n: &&Node| -> Result<()> {
                let share_net_with = match &n.network_mode {
                    // A container outside the lab is joined by its own name, once it runs.
                    NetworkMode::Container(other) if self.lab.node(other).is_none() => {
                        let proc = runtime::external::find(n, other, &signals::interrupted)?;
                        Some(SharedNet { name: other, proc })
                    }
                    NetworkMode::Container(other) => {
                        let procs = self.procs.lock().expect("procs");
                        let proc = *procs.get(other).ok_or_else(|| Error::NotRunning {
                            lab: self.lab.name.clone(),
                            node: other.clone(),
                        })?;
                        let o = self.lab.node(other).ok_or_else(|| Error::NoSuchNode {
                            lab: self.lab.name.clone(),
                            node: other.clone(),
                        })?;
                        Some(SharedNet {
                            name: &o.long_name,
                            proc,
                        })
                    }
                    _ => None,
                };
                if n.startup_delay_s > 0 && n.class != KindClass::ExtContainer {
                    sleep_interruptible(Duration::from_secs(n.startup_delay_s))?;
                }
                let t = Instant::now();
                let network = NodeNetwork::of(self.lab, n);
                let req = CreateNode {
                    node: n,
                    ctx: NodeContext::of(self.lab, n),
                    network: &network,
                    share_net_with,
                };
                let proc = self
                    .backends
                    .node(n)
                    .create(&self.deployment(), &req, self.journal)?;
                let ns = NetNs::of_pid(proc.pid)
                    .map_err(wire_err(format!("open the namespace of node {}", n.name)))?;
                self.procs
                    .lock()
                    .expect("procs")
                    .insert(n.name.clone(), proc);
                self.nets.lock().expect("nets").insert(n.name.clone(), ns);
                log::debug!(
                    "node {}: created on the {} runtime, pid {}",
                    n.name,
                    self.backends.node(n).name(),
                    proc.pid
                );
                self.progress
                    .step_item(&format!("node {}", n.name), t.elapsed());
                Ok(())
            },
        );
        first_error(results)?;
        self.unregistered
            .extend(nodes.iter().map(|n| n.name.clone()));
        Ok(())
    }

    /// Name the namespaces of the nodes made since the last call under /run/netns, journalled
    /// first. Names are bind mounts, and every new mount namespace copies all of them: naming a
    /// round's nodes only after they all exist keeps node creation linear in the lab's size.
    /// [`Run::create_links`] does it beside making the round's links (a mount for each node on
    /// one CPU while netlink works on the other); a deploy ends, or makes more nodes, only after
    /// it.
    fn register(
        &self,
        names: &[String],
        nets: &HashMap<String, &NetNs>,
        give_up: &(dyn Fn() -> bool + Sync),
    ) -> Result<()> {
        let t = Instant::now();
        let lab = self.lab;
        let named: Vec<(&NetNs, &str)> = names
            .iter()
            .map(|n| match (nets.get(n), lab.node(n)) {
                (Some(ns), Some(node)) => Ok((*ns, node.long_name.as_str())),
                _ => Err(Error::NoNamespace { node: n.clone() }),
            })
            .collect::<Result<_>>()?;
        let entries: Vec<Entry> = named
            .iter()
            .map(|(ns, long)| Entry::Netns {
                name: long.to_string(),
                ino: ns.inode().ok(),
            })
            .collect();
        self.journal.record(&entries)?;
        for (ns, long) in named {
            check_interrupt()?;
            if give_up() {
                return Ok(());
            }
            wire::netns::register(ns, long)
                .map_err(wire_err(format!("register namespace {long}")))?;
        }
        self.timings
            .lock()
            .expect("timings")
            .push(("register netns".into(), t.elapsed()));
        Ok(())
    }

    /// [`Run::register`] for every node made and not named yet.
    fn register_pending(&mut self) -> Result<()> {
        let names = std::mem::take(&mut self.unregistered);
        if names.is_empty() {
            return Ok(());
        }
        let nets = self.nets.lock().expect("nets");
        let refs: HashMap<String, &NetNs> = nets.iter().map(|(k, v)| (k.clone(), v)).collect();
        self.register(&names, &refs, &|| false)
    }

    fn create_links(&mut self, nodes: &[&Node], host: &mut Handle) -> Result<()> {
        let lab = self.lab;
        let pending = std::mem::take(&mut self.unregistered);
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
        // The round goes in slices of its nodes, each slice whole before the next: its nodes'
        // management interfaces, the links whose last end is in it, then the addresses and the
        // state of every interface those touched. An end made down stays on the kernel's list of
        // link events until it comes up, and each run of that list under RTNL walks all of them:
        // a round whose interfaces all came up at its end made the walk quadratic in its size.
        // Slices also move the progress.
        let mut slices: Vec<Slice<'_>> = nodes
            .chunks(LINK_SLICE)
            .map(|chunk| Slice {
                nodes: chunk,
                mgmt: chunk
                    .iter()
                    .copied()
                    .filter(|n| {
                        n.network_mode == NetworkMode::Bridged
                            && n.class != KindClass::ExtContainer
                            && !self.configured.contains(&n.name)
                            && self.wires_mgmt(n)
                    })
                    .collect(),
                links: Vec::new(),
                added: HashMap::new(),
            })
            .collect();
        let slot: HashMap<&str, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i / LINK_SLICE))
            .collect();
        for (_, l) in &todo {
            // Every link to make has an end in this round.
            let Some(s) = l
                .endpoints()
                .filter_map(|e| slot.get(e.node.as_str()))
                .max()
            else {
                continue;
            };
            let slice = &mut slices[*s];
            slice.links.push(l);
            for e in l.endpoints() {
                if nets.contains_key(&e.node) && slot.get(e.node.as_str()) != Some(s) {
                    slice
                        .added
                        .entry(e.node.as_str())
                        .or_default()
                        .insert(e.iface.as_str());
                }
            }
        }
        let mgmt_ports: usize = slices.iter().map(|s| s.mgmt.len()).sum();
        self.progress.stage(
            "create links and addresses",
            todo.len()
                + mgmt_ports
                + slices
                    .iter()
                    .map(|s| s.nodes.len() + s.added.len())
                    .sum::<usize>(),
        );
        let ns_refs: HashMap<String, &NetNs> = nets.iter().map(|(k, v)| (k.clone(), v)).collect();
        // Bridges inside these nodes' namespaces exist before their links and their `exec`.
        wiring::ensure_netns_bridges(lab, &names, &ns_refs)?;
        let home = NetNs::current().map_err(wire_err("open the host network namespace"))?;
        let configured = &self.configured;
        // The namespaces made since the last round get their names meanwhile, on another thread.
        let stop = AtomicBool::new(false);
        let (made, registered) = std::thread::scope(|sc| {
            let reg = (!pending.is_empty()).then(|| {
                sc.spawn(|| self.register(&pending, &ns_refs, &|| stop.load(Ordering::Relaxed)))
            });
            let made = (|| -> Result<[Duration; 3]> {
                let mut took = [Duration::ZERO; 3];
                let t = Instant::now();
                // The seats on the management bridge are held until the ports exist, so labs
                // sharing it do not overfill it; the host-wide lock only while counting them.
                let mut lock = None;
                let mut seats = Vec::new();
                if mgmt_ports > 0 {
                    lock = Some(Lock::mgmt_seats(&lab.mgmt.bridge)?);
                    let _g = Lock::global()?;
                    seats = mgmt_fabric::seat(lab, host, self.journal, mgmt_ports)?;
                }
                let last_mgmt = slices.iter().rposition(|s| !s.mgmt.is_empty());
                let mut seats = seats.as_slice();
                took[0] += t.elapsed();
                for (s, slice) in slices.iter().enumerate() {
                    let t = Instant::now();
                    if !slice.mgmt.is_empty() {
                        check_interrupt()?;
                        let (bridges, rest) = seats.split_at(slice.mgmt.len());
                        seats = rest;
                        let plan = links::plan_mgmt_on(lab, &slice.mgmt, bridges, self.mgmt_group);
                        log::debug!("management interfaces: {} requests", plan.requests.len());
                        links::execute(lab, &plan, &ns_refs, host, self.journal)?;
                        self.progress.step(slice.mgmt.len());
                    }
                    if last_mgmt == Some(s) {
                        drop(lock.take());
                    }
                    took[0] += t.elapsed();
                    let t = Instant::now();
                    // A slice of a dense lab may have many links: a batch takes 512 at most.
                    for chunk in slice.links.chunks(512) {
                        check_interrupt()?;
                        let plan = links::plan(lab, chunk, &[]);
                        log::debug!(
                            "links: {} requests, {} host objects, {} made first",
                            plan.requests.len(),
                            plan.intents.len(),
                            plan.prereqs.len()
                        );
                        links::execute(lab, &plan, &ns_refs, host, self.journal)?;
                        self.progress.step(chunk.len());
                    }
                    took[1] += t.elapsed();
                    let t = Instant::now();
                    let touched: Vec<&Node> = slice
                        .nodes
                        .iter()
                        .copied()
                        .chain(slice.added.keys().filter_map(|n| lab.node(n)))
                        .collect();
                    let results = pool::run(
                        &touched,
                        self.workers(),
                        &signals::interrupted,
                        &|n: &&Node| -> Result<()> {
                            let ns = ns_refs.get(&n.name).ok_or_else(|| Error::NoNamespace {
                                node: n.name.clone(),
                            })?;
                            if n.network_mode == NetworkMode::Container(String::new())
                                || matches!(n.network_mode, NetworkMode::Host)
                            {
                                self.progress.step(1);
                                return Ok(());
                            }
                            let network = NodeNetwork::of(lab, n);
                            let cfg = wiring::NodeConfig {
                                node: n,
                                network: &network,
                                // The engine addresses eth0 of a node on its network; a node's
                                // management addresses come with its own slice.
                                base: !slice.added.contains_key(n.name.as_str())
                                    && !configured.contains(&n.name)
                                    && self.wires_mgmt(n),
                                // A VM node's guest holds its addresses.
                                addresses: !n.is_workload()
                                    || self.backends.node(n).addresses_in_namespace(),
                                only: slice.added.get(n.name.as_str()),
                            };
                            wiring::configure_node(&cfg, ns, &home)?;
                            self.progress.step(1);
                            Ok(())
                        },
                    );
                    first_error(results)?;
                    took[2] += t.elapsed();
                }
                Ok(took)
            })();
            if made.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            let registered = reg.map_or(Ok(()), |h| {
                h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
            });
            (made, registered)
        });
        let [t_mgmt, t_links, t_addresses] = made?;
        registered?;
        self.timings.lock().expect("timings").extend([
            ("  mgmt veths".to_string(), t_mgmt),
            ("  link veths".to_string(), t_links),
            ("  addresses".to_string(), t_addresses),
        ]);
        drop(nets);
        self.mgmt_up(host)?;
        for (i, _) in todo {
            self.made_links.insert(i);
        }
        for n in nodes {
            self.configured.insert(n.name.clone());
        }
        Ok(())
    }

    /// Brings up the management network this deploy made, once: after the first round's nodes
    /// have their interfaces, before any node's command runs.
    fn mgmt_up(&mut self, host: &mut Handle) -> Result<()> {
        if std::mem::take(&mut self.mgmt_down) {
            self.timed("  mgmt up", || mgmt_fabric::bring_up(self.lab, host))?;
        }
        Ok(())
    }

    fn configure(&self, nodes: &[&Node]) -> Result<()> {
        // Start each node's command now that its links are up.
        let home = NetNs::current().map_err(wire_err("open the host network namespace"))?;
        {
            let nets = self.nets.lock().expect("nets");
            for n in nodes {
                let ns = nets.get(&n.name).ok_or_else(|| Error::NoNamespace {
                    node: n.name.clone(),
                })?;
                self.backends.node(n).start(&self.running(n)?, ns, &home)?;
            }
        }
        let waiting: Vec<&Node> = nodes
            .iter()
            .copied()
            .filter(|n| self.backends.node(n).waits_until_ready())
            .collect();
        if !waiting.is_empty() {
            self.wait_ready(&waiting)?;
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

    /// Wait until every node that boots (a VM's guest) is up; they boot in parallel.
    fn wait_ready(&self, nodes: &[&Node]) -> Result<()> {
        self.progress.stage("boot VMs", nodes.len());
        let t = Instant::now();
        let results = pool::run(
            nodes,
            nodes.len().min(64),
            &signals::interrupted,
            &|n: &&Node| -> Result<()> {
                let t = Instant::now();
                self.backends
                    .node(n)
                    .wait_ready(&self.running(n)?, &signals::interrupted)?;
                log::debug!(
                    "node {}: up after {:.1} s",
                    n.name,
                    t.elapsed().as_secs_f64()
                );
                self.progress
                    .step_item(&format!("node {}", n.name), t.elapsed());
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

    fn exec_in(&self, n: &Node, command: &str) -> Result<ExecOutput> {
        let out = self.backends.node(n).exec(&self.running(n)?, command)?;
        self.execs.lock().expect("execs").push(ExecReport {
            node: n.name.clone(),
            command: command.to_string(),
            output: out.clone(),
        });
        Ok(out)
    }

    fn stage_execs(&mut self, nodes: &[&Node], stage: Stage, phase: ExecPhase) -> Result<()> {
        let any = nodes.iter().any(|n| {
            n.stages
                .get(&stage)
                .is_some_and(|s| s.exec.iter().any(|e| e.phase == phase))
        });
        if !any {
            return Ok(());
        }
        // A hook may use the nodes' names under /run/netns (`ip netns exec $CLAB_NODE_LONGNAME`).
        self.register_pending()?;
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
                            output: ExecOutput {
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
                let running = self.running(n)?;
                let backend = self.backends.node(n);
                let start = Instant::now();
                sleep_interruptible(Duration::from_secs(h.start_period_s.min(1)))?;
                let mut failures = 0;
                loop {
                    check_interrupt()?;
                    let out = backend.exec(&running, &cmd)?;
                    if out.code == 0 {
                        self.progress.step(1);
                        return Ok(());
                    }
                    if start.elapsed() >= Duration::from_secs(h.start_period_s) {
                        failures += 1;
                    }
                    if failures >= h.retries.max(1) {
                        return Err(Error::Unhealthy {
                            node: n.name.clone(),
                            command: cmd,
                            failures,
                            code: out.code,
                            stderr: out.stderr.trim().to_string(),
                        });
                    }
                    sleep_interruptible(Duration::from_secs(h.interval_s.max(1)))?;
                }
            },
        );
        first_error(results)
    }

    fn artifacts(&self) -> Result<()> {
        // A partition's artifacts name the whole lab.
        let lab = self.lab.whole();
        let entries = hosts_entries(lab);
        if !entries.is_empty() {
            let hosts = paths::hosts_file();
            self.journal.record(&[Entry::HostsBlock {
                path: hosts.clone(),
            }])?;
            write_hosts_block(lab, &entries)?;
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
            let text = artifacts::ssh_config(lab);
            // labwire's own file (checked above): rewritten only when the lab's nodes changed.
            if std::fs::read(&path).ok().as_deref() != Some(text.as_bytes()) {
                write_new_file(&path, text.as_bytes())?;
            }
        }
        Ok(())
    }
}

/// The lab's lines in /etc/hosts: each workload node's management addresses and long name.
pub(crate) fn hosts_entries(lab: &Lab) -> Vec<(IpAddr, String)> {
    lab.nodes
        .iter()
        .filter(|n| n.is_workload())
        .flat_map(|n| {
            n.mgmt_ipv4
                .map(IpAddr::V4)
                .into_iter()
                .chain(n.mgmt_ipv6.map(IpAddr::V6))
                .map(|a| (a, n.long_name.clone()))
        })
        .collect()
}

/// Write the lab's block of /etc/hosts (replacing the one it had).
pub(crate) fn write_hosts_block(lab: &Lab, entries: &[(IpAddr, String)]) -> Result<()> {
    artifacts::hosts::add_block_locked(
        &paths::hosts_file(),
        &paths::lock_dir().join("hosts.lock"),
        &lab.name,
        entries,
    )?;
    Ok(())
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

pub use runtime::node::shell_quote;

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

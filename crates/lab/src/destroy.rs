//! Destroying a lab from its recorded state: the journal says what was (or was about to be) made,
//! and each object is removed only if it is still what labwire made (pid + start time, MAC of host
//! links and bridges). Works when the topology file changed or is gone; a second destroy is a no-op.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use runtime::docker::{Engine, EngineKind};
use runtime::process::{self, ProcId};
use wire::netlink::{format_mac, Handle};

use crate::error::{io, wire as wire_err, Error, Result};
use crate::lock::Lock;
use crate::state::{self, Entry, Recorded, RecordedContainer};
use crate::{artifacts, paths};

#[derive(Debug, Default)]
pub struct Destroyed {
    pub nodes: usize,
    pub links: usize,
    pub bridges: usize,
    /// Wall time of each step (for `--stats`).
    pub timings: Vec<(&'static str, Duration)>,
}

/// Destroy the lab `name` (its lock is taken here).
pub fn destroy(name: &str, cleanup: bool) -> Result<Destroyed> {
    paths::check_lab_name(name)?;
    let _lock = Lock::lab_wait(name, Duration::from_secs(120))?;
    let dir = paths::lab_state_dir(name);
    let rec = Recorded::read(&dir);
    destroy_recorded(name, &rec, cleanup)
}

/// Every lab with recorded state.
pub fn destroy_all(cleanup: bool) -> Result<Vec<(String, Destroyed)>> {
    let mut out = Vec::new();
    for name in state::recorded_labs() {
        out.push((name.clone(), destroy(&name, cleanup)?));
    }
    Ok(out)
}

/// Remove everything `rec` names (caller holds the lab lock).
pub fn destroy_recorded(name: &str, rec: &Recorded, cleanup: bool) -> Result<Destroyed> {
    let mut report = Destroyed::default();
    let mut errors: Vec<String> = Vec::new();

    let mut t = Instant::now();
    let mut lap = |what: &'static str, report: &mut Destroyed| {
        report.timings.push((what, t.elapsed()));
        t = Instant::now();
    };
    // 0. Containers (force-removed, which stops them), each through the engine that made it: by
    //    id when recorded, else by name if the container there carries this lab's label. Those
    //    sharing another's network go first (in waves, deepest first): Podman refuses to remove a
    //    container others depend on.
    let not_made = rec.containers_not_made();
    let containers: Vec<RecordedContainer> = rec
        .containers()
        .into_iter()
        .filter(|c| c.id.is_some() || !not_made.contains(c.name.as_str()))
        .collect();
    let mut by_engine: BTreeMap<(EngineKind, Option<&Path>), Vec<&RecordedContainer>> =
        BTreeMap::new();
    for c in &containers {
        by_engine
            .entry((c.engine, c.socket.as_deref()))
            .or_default()
            .push(c);
    }
    for ((kind, socket), list) in by_engine {
        let engine = match socket {
            Some(s) => Engine::connect_at(kind, s),
            None => Engine::connect(kind),
        };
        let engine = match engine {
            Ok(e) => e,
            Err(e) => {
                errors.push(format!(
                    "{} {kind} containers were not removed: {e}",
                    list.len()
                ));
                continue;
            }
        };
        let mut waves: BTreeMap<Reverse<usize>, Vec<&RecordedContainer>> = BTreeMap::new();
        for c in list {
            waves
                .entry(Reverse(network_depth(rec.lab.as_ref(), &c.node)))
                .or_default()
                .push(c);
        }
        for wave in waves.into_values() {
            let results = crate::pool::run(
                &wave,
                8,
                &|| false,
                &|c: &&RecordedContainer| -> Result<bool, String> {
                    let target = match &c.id {
                        Some(id) => id.clone(),
                        None => match engine.lab_label(&c.name).map_err(|e| e.to_string())? {
                            Some(l) if l == name => c.name.clone(),
                            _ => return Ok(false),
                        },
                    };
                    engine.remove(&target).map_err(|e| e.to_string())
                },
            );
            for r in results.into_iter().flatten() {
                match r {
                    Ok(true) => report.nodes += 1,
                    Ok(false) => {}
                    Err(e) => errors.push(e),
                }
            }
        }
    }
    let container_nodes: HashSet<&str> = containers.iter().map(|c| c.node.as_str()).collect();
    // Engine networks, once their containers are gone (kept while another lab's use them).
    let mut networks: Vec<(EngineKind, Option<&Path>, &str)> = Vec::new();
    for e in &rec.entries {
        if let Entry::EngineNetwork {
            engine,
            socket,
            name: net,
        } = e
        {
            let key = (*engine, socket.as_deref(), net.as_str());
            if !networks.contains(&key) {
                networks.push(key);
            }
        }
    }
    for (kind, socket, net) in networks {
        let engine = match socket {
            Some(s) => Engine::connect_at(kind, s),
            None => Engine::connect(kind),
        };
        if let Err(e) = engine.and_then(|en| en.remove_network(net)) {
            errors.push(format!("{kind} network {net}: {e}"));
        }
    }
    lap("containers", &mut report);

    // 1. Processes: recorded ones, plus any init of this lab started but not yet recorded.
    let mut procs: Vec<ProcId> = rec.procs().into_iter().map(|(_, p)| p).collect();
    procs.extend(process::find_inits(name).into_iter().map(|(p, _)| p));
    let mut seen = HashSet::new();
    procs.retain(|p| seen.insert(p.pid));
    let container_procs: HashSet<i32> = rec
        .procs()
        .into_iter()
        .filter(|(n, _)| container_nodes.contains(n.as_str()))
        .map(|(_, p)| p.pid)
        .collect();
    for p in &procs {
        if p.kill() && !container_procs.contains(&p.pid) {
            report.nodes += 1;
        }
    }
    let left = process::wait_gone(&procs, Duration::from_secs(5));
    if !left.is_empty() {
        errors.push(format!("{} node processes did not stop", left.len()));
    }

    lap("stop nodes", &mut report);

    // 2. Host links (only if still ours: same MAC), found with one dump taken before the namespaces
    // go (afterwards the kernel's namespace cleanup holds the netlink lock for a while). A veth end
    // whose peer is in a node's namespace vanishes with that namespace, in the kernel's batched
    // cleanup, far cheaper than deleting pairs one by one; everything else is deleted here. The
    // kernel frees those veths in the background after destroy returns (a redeploy that finds one
    // of its own names still there waits for it).
    let mut host = Handle::new().map_err(wire_err("open netlink"))?;
    let present: HashMap<String, (u32, Option<String>, Option<String>)> = host
        .links()
        .map_err(wire_err("list host links"))?
        .into_iter()
        .map(|l| (l.name, (l.index, l.mac.map(|m| format_mac(&m)), l.kind)))
        .collect();
    for e in &rec.entries {
        if let Entry::HostLink { name, mac } = e {
            match present.get(name) {
                Some((_, Some(m), Some(kind)))
                    if m == mac && kind == "veth" && !procs.is_empty() =>
                {
                    report.links += 1
                }
                Some((index, Some(m), _)) if m == mac => match host.delete_link(*index) {
                    Ok(()) => report.links += 1,
                    // Gone meanwhile: its peer's namespace was freed.
                    Err(err) if err.raw_os_error() == Some(libc::ENODEV) => {}
                    Err(err) => errors.push(format!("delete {name}: {err}")),
                },
                _ => {}
            }
        }
    }
    lap("host links", &mut report);

    // 3. Bridges labwire made; a management bridge stays while another lab uses it. Deleted while
    //    the nodes' namespaces still exist: afterwards the kernel's cleanup of those namespaces holds
    //    the netlink lock and the deletion would wait for all of it.
    let bridges: Vec<(&String, &String, bool)> = rec
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Bridge { name, mac, shared } => Some((name, mac, *shared)),
            _ => None,
        })
        .collect();
    if !bridges.is_empty() {
        let _g = Lock::global()?;
        let in_use = bridges_used_by_others(name);
        for (br, mac, shared) in bridges {
            if shared && in_use.contains(br.as_str()) {
                continue;
            }
            match host.link(br) {
                Ok(Some(l)) if l.mac.map(|m| format_mac(&m)).as_deref() == Some(mac.as_str()) => {
                    match host.delete_link(l.index) {
                        Ok(()) => report.bridges += 1,
                        Err(err) => errors.push(format!("delete bridge {br}: {err}")),
                    }
                }
                Ok(_) => {}
                Err(err) => errors.push(format!("look up bridge {br}: {err}")),
            }
        }
    }

    // Addresses added to a bridge labwire did not make, unless another lab still uses it.
    let added: Vec<(&String, std::net::IpAddr, u8)> = rec
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::HostAddress { link, addr, prefix } => Some((link, *addr, *prefix)),
            _ => None,
        })
        .collect();
    if !added.is_empty() {
        let _g = Lock::global()?;
        let in_use = bridges_used_by_others(name);
        for (link, addr, prefix) in added {
            if in_use.contains(link.as_str()) {
                continue;
            }
            match host.link(link) {
                Ok(Some(l)) => {
                    if let Err(err) = host.delete_address(l.index, addr, prefix) {
                        errors.push(format!("remove address {addr}/{prefix} from {link}: {err}"));
                    }
                }
                Ok(None) => {}
                Err(err) => errors.push(format!("look up {link}: {err}")),
            }
        }
    }

    // Firewall rules accepting a bridge's traffic, unless another lab still uses the bridge.
    let rules: Vec<(&String, &String)> = rec
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::FirewallAccept { tool, bridge } => Some((tool, bridge)),
            _ => None,
        })
        .collect();
    if !rules.is_empty() {
        let _g = Lock::global()?;
        let in_use = bridges_used_by_others(name);
        let mut done = HashSet::new();
        for (tool, bridge) in rules {
            if !in_use.contains(bridge.as_str()) && done.insert((tool, bridge)) {
                runtime::docker::remove_bridge_forwarding(tool, bridge);
            }
        }
    }

    lap("bridges", &mut report);

    // 4. Namespace names. Each unmount waits for an RCU grace period; doing them from several
    // threads lets those waits overlap.
    let names: Vec<(&String, Option<u64>)> = rec
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Netns { name, ino } => Some((name, *ino)),
            _ => None,
        })
        .collect();
    let results = crate::pool::run(&names, 16, &|| false, &|(name, ino): &(
        &String,
        Option<u64>,
    )| {
        // A name registered by someone else (taken before this lab's registration failed, or
        // after this lab's was removed) holds another namespace: it stays.
        match ino {
            Some(ino) => wire::netns::unregister_if(name, *ino).map(|_| ()),
            None => wire::netns::unregister(name),
        }
        .map_err(|err| format!("unregister namespace {name}: {err}"))
    });
    errors.extend(results.into_iter().flatten().filter_map(Result::err));
    // The kills were sent before; by now most have taken effect.
    let left = process::wait_gone(&procs, Duration::from_secs(5));
    if !left.is_empty() {
        errors.push(format!("{} node processes did not stop", left.len()));
    }
    // Node cgroups (and whatever an init system made inside them), then the lab's own.
    for e in &rec.entries {
        if let Entry::Cgroup { path } = e {
            if let Err(err) = runtime::native::remove_cgroup(path) {
                errors.push(format!("remove cgroup {}: {err}", path.display()));
            }
            if let Some(parent) = path.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
    lap("unregister netns", &mut report);

    // 5. Files on the host.
    for e in &rec.entries {
        match e {
            Entry::HostsBlock { path } => {
                if let Err(err) = artifacts::hosts::remove_block_locked(
                    path,
                    &paths::lock_dir().join("hosts.lock"),
                    name,
                ) {
                    errors.push(err.to_string());
                }
            }
            // Only while it is still labwire's file (someone may have replaced it since).
            Entry::SshConfig { path } if crate::contain::ssh_config_is_labwires(path) => {
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => errors.push(format!("remove {}: {err}", path.display())),
                }
            }
            _ => {}
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(format!(
            "destroy of lab {name} left things behind:\n  {}",
            errors.join("\n  ")
        )));
    }

    // 6. The lab directory (with --cleanup), then the state itself.
    if cleanup {
        let dir = rec.lab.as_ref().map(|l| l.dir.clone()).or_else(|| {
            rec.entries.iter().find_map(|e| match e {
                Entry::LabDir { path, .. } => Some(path.clone()),
                _ => None,
            })
        });
        if let Some(d) = dir {
            if d.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with("clab-"))
                && d.exists()
            {
                std::fs::remove_dir_all(&d).map_err(io(format!("remove {}", d.display())))?;
            }
        }
    }
    let run = paths::lab_run_dir(name);
    if run.exists() {
        std::fs::remove_dir_all(&run).map_err(io(format!("remove {}", run.display())))?;
    }
    if rec.dir.exists() {
        std::fs::remove_dir_all(&rec.dir).map_err(io(format!("remove {}", rec.dir.display())))?;
    }
    Ok(report)
}

/// How many `network-mode: container:X` hops lead from `node` to a node with a network of its own
/// (0 without the lab, or for a node with its own network).
fn network_depth(lab: Option<&topology::Lab>, node: &str) -> usize {
    let Some(lab) = lab else {
        return 0;
    };
    let mut depth = 0;
    let mut at = node;
    while let Some(topology::NetworkMode::Container(other)) = lab.node(at).map(|n| &n.network_mode)
    {
        // A cycle cannot be deployed; stop anyway.
        if depth > lab.nodes.len() {
            break;
        }
        depth += 1;
        at = other;
    }
    depth
}

/// Bridges that other recorded labs use (their management bridge or a recorded bridge).
fn bridges_used_by_others(me: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for other in state::recorded_labs() {
        if other == me {
            continue;
        }
        let rec = Recorded::read(&paths::lab_state_dir(&other));
        if let Some(l) = &rec.lab {
            out.insert(l.mgmt.bridge.clone());
        }
        for e in &rec.entries {
            if let Entry::Bridge { name, .. } | Entry::FirewallAccept { bridge: name, .. } = e {
                out.insert(name.clone());
            }
        }
    }
    out
}

//! Converging deploy: `deploy` on a lab that runs compares the topology with the recorded lab and
//! changes only the difference — new nodes and links are made, removed ones destroyed, a node
//! whose definition changed is recreated, and every other node keeps running untouched (same
//! process, same uptime). Also the subset removal behind `destroy --node-filter`.
//!
//! Owns the plan (pure: two labs in, a difference out) and the removal of single nodes and links
//! from a running lab through its journal; the making is the deploy's own ([`crate::deploy`]),
//! told which nodes and links already exist.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use runtime::process::{self, ProcId};
use topology::{Lab, Link, Node};
use wire::netlink::Handle;

use crate::destroy::teardown;
use crate::error::{wire as wire_err, Error, Result};
use crate::lock::Lock;
use crate::state::{self, Recorded};
use crate::{artifacts, paths};

/// What a converging deploy changes. Names are node names; links are shown as `a:eth1 -- b:eth1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Nodes that stay as they run.
    pub keep: Vec<String>,
    /// Nodes to make.
    pub add: Vec<String>,
    /// Nodes whose definition changed: destroyed and made again.
    pub recreate: Vec<String>,
    /// Nodes no longer in the topology.
    pub remove: Vec<String>,
    /// Indexes into the new lab's links of those to make.
    pub make_links: Vec<usize>,
    /// Indexes into the recorded lab's links of those to delete while both their nodes stay.
    pub delete_links: Vec<usize>,
    /// Indexes into the recorded lab's links that go with a removed or recreated node.
    pub links_going_with_nodes: Vec<usize>,
}

impl Plan {
    /// Whether the lab already is as the topology says.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty()
            && self.recreate.is_empty()
            && self.remove.is_empty()
            && self.make_links.is_empty()
            && self.delete_links.is_empty()
    }

    /// Nodes that are made by the deploy (new and recreated).
    pub fn made(&self) -> impl Iterator<Item = &String> {
        self.add.iter().chain(&self.recreate)
    }

    /// Report the nodes it changed on the lab's event stream.
    pub fn emit_events(&self, lab: &str) {
        use crate::events::{emit, Event};
        for node in &self.remove {
            emit(lab, Event::NodeStopped { node: node.clone() });
        }
        for node in &self.recreate {
            emit(lab, Event::NodeRestarted { node: node.clone() });
        }
        for node in &self.add {
            emit(lab, Event::NodeStarted { node: node.clone() });
        }
    }

    /// The plan as `deploy --dry-run` prints it.
    pub fn render(&self, old: &Lab, new: &Lab) -> String {
        let mut out = String::new();
        let list = |v: &[String]| v.join(", ");
        let _ = writeln!(out, "lab {}: converging deploy", new.name);
        if self.is_empty() {
            let _ = writeln!(out, "  nothing to change");
        }
        for (what, nodes) in [
            ("add node", &self.add),
            ("recreate node", &self.recreate),
            ("remove node", &self.remove),
        ] {
            if !nodes.is_empty() {
                let _ = writeln!(out, "  {what:<14} {}", list(nodes));
            }
        }
        for i in &self.make_links {
            let _ = writeln!(out, "  {:<14} {}", "add link", link_label(&new.links[*i]));
        }
        for i in &self.delete_links {
            let _ = writeln!(
                out,
                "  {:<14} {}",
                "remove link",
                link_label(&old.links[*i])
            );
        }
        match self.keep.len() {
            0 => {}
            n if n > 12 => {
                let _ = writeln!(out, "  {:<14} {n} nodes", "keep running");
            }
            _ => {
                let _ = writeln!(out, "  {:<14} {}", "keep running", list(&self.keep));
            }
        }
        out
    }
}

/// A link as the user reads it: its node endpoints, and the kind of its far end when that is not
/// a node.
pub fn link_label(l: &Link) -> String {
    let ends: Vec<String> = l
        .endpoints()
        .map(|e| format!("{}:{}", e.node, e.iface))
        .collect();
    match &l.peer {
        topology::Peer::Veth { .. } => ends.join(" -- "),
        p => format!("{} ({})", ends.join(" -- "), p.type_name()),
    }
}

/// The recorded state of lab `name` when some node of it runs (a converging deploy's start).
pub fn running(name: &str) -> Option<Recorded> {
    let rec = Recorded::read(&paths::lab_state_dir(name));
    rec.lab.as_ref()?;
    let alive =
        rec.procs().iter().any(|(_, p)| p.is_alive()) || !process::find_inits(name).is_empty();
    alive.then_some(rec)
}

/// The lab a deploy restricted to `scope` (`--node-filter`) aims at on a running lab: nodes
/// outside the scope stay as recorded, nodes inside are as the topology says, and the links are
/// the recorded ones that touch no scoped node plus the topology's that touch one (and whose
/// nodes all exist).
pub fn scoped_target(old: &Lab, new: &Lab, scope: &[String]) -> Lab {
    let inside = |n: &str| scope.iter().any(|s| s == n);
    let mut target = new.clone();
    target.nodes = Vec::new();
    for n in &new.nodes {
        if inside(&n.name) {
            target.nodes.push(n.clone());
        } else if let Some(o) = old.node(&n.name) {
            target.nodes.push(o.clone());
        }
    }
    // Recorded nodes the topology no longer has stay too (outside the scope nothing goes).
    for o in &old.nodes {
        if !inside(&o.name) && new.node(&o.name).is_none() {
            target.nodes.push(o.clone());
        }
    }
    let exists = |n: &str| target.nodes.iter().any(|x| x.name == n);
    let mut links: Vec<Link> = old
        .links
        .iter()
        .filter(|l| l.endpoints().all(|e| !inside(&e.node)))
        .cloned()
        .collect();
    links.extend(
        new.links
            .iter()
            .filter(|l| l.endpoints().any(|e| inside(&e.node)))
            .filter(|l| l.endpoints().all(|e| exists(&e.node)))
            .cloned(),
    );
    target.links = links;
    target
}

/// Why a running lab cannot be converged to `new` (only a fresh deploy changes it), if so.
pub fn refusal(old: &Lab, new: &Lab) -> Option<String> {
    if old.mgmt != new.mgmt {
        return Some("its management network changed".into());
    }
    if old.prefix != new.prefix || old.dir != new.dir {
        return Some("its prefix or lab directory changed".into());
    }
    None
}

/// Compare `new` with the recorded `old`. Nodes that stay keep their management addresses (an
/// added node takes a free one), so adding a node never renumbers the others.
pub fn plan(
    old: &Lab,
    new: &mut Lab,
    taken_elsewhere: &BTreeSet<std::net::IpAddr>,
    fixed_links: &dyn Fn(&Node) -> bool,
) -> Result<Plan> {
    for n in new.nodes.iter_mut().filter(|n| !n.mgmt_static) {
        match old.node(&n.name) {
            Some(o) => {
                n.mgmt_ipv4 = o.mgmt_ipv4;
                n.mgmt_ipv6 = o.mgmt_ipv6;
            }
            None => {
                n.mgmt_ipv4 = None;
                n.mgmt_ipv6 = None;
            }
        }
    }
    topology::mgmt::assign(new, taken_elsewhere).map_err(Error::MgmtAddresses)?;
    let mut p = Plan::default();
    for n in &new.nodes {
        match old.node(&n.name) {
            None => p.add.push(n.name.clone()),
            // A node whose interfaces are fixed while it runs is made again when they change.
            Some(o)
                if same_node(o, n) && !(fixed_links(n) && links_of(old, o) != links_of(new, n)) =>
            {
                p.keep.push(n.name.clone())
            }
            Some(_) => p.recreate.push(n.name.clone()),
        }
    }
    for o in &old.nodes {
        if new.node(&o.name).is_none() {
            p.remove.push(o.name.clone());
        }
    }
    let kept: HashSet<&str> = p.keep.iter().map(String::as_str).collect();
    let stays = |l: &Link| l.endpoints().all(|e| kept.contains(e.node.as_str()));
    let (in_old, in_new) = (LinkSet::of(&old.links), LinkSet::of(&new.links));
    for (i, l) in new.links.iter().enumerate() {
        if !(stays(l) && in_old.contains(l)) {
            p.make_links.push(i);
        }
    }
    for (i, l) in old.links.iter().enumerate() {
        if stays(l) && !in_new.contains(l) {
            p.delete_links.push(i);
        } else if !stays(l) {
            p.links_going_with_nodes.push(i);
        }
    }
    Ok(p)
}

/// The recorded lab and the plan that turns it into `lab` (which a scoped deploy narrows and
/// whose management addresses follow the recorded ones), or why it cannot be converged.
pub fn prepare(lab: &mut Lab, rec: &Recorded, scope: &[String]) -> Result<(Lab, Plan)> {
    let old = rec.lab.clone().ok_or_else(|| Error::NotDeployed {
        lab: lab.name.clone(),
    })?;
    if !scope.is_empty() {
        *lab = scoped_target(&old, lab, scope);
    }
    if let Some(why) = refusal(&old, lab) {
        return Err(Error::CannotConverge {
            lab: lab.name.clone(),
            why,
        });
    }
    // Other labs' addresses matter only to nodes that get one now.
    let adds = lab.nodes.iter().any(|n| old.node(&n.name).is_none());
    let taken = if adds {
        crate::deploy::addresses_taken_elsewhere(lab)
    } else {
        BTreeSet::new()
    };
    let backends = runtime::Backends::new();
    let fixed = |n: &Node| n.is_workload() && !backends.node(n).takes_new_links();
    let plan = plan(&old, lab, &taken, &fixed)?;
    Ok((old, plan))
}

/// What a converging deploy checks before it touches the host: the nodes it makes and the links
/// it makes, with the nodes at their ends (what exists already is the lab's own and passed its
/// checks when it was made). Its size is the change's, not the lab's.
pub fn preflight_view(lab: &Lab, plan: &Plan) -> Lab {
    let links: Vec<Link> = plan
        .make_links
        .iter()
        .map(|i| lab.links[*i].clone())
        .collect();
    let wanted: HashSet<String> = plan
        .made()
        .cloned()
        .chain(
            links
                .iter()
                .flat_map(|l| l.endpoints().map(|e| e.node.clone())),
        )
        .collect();
    part_of(lab, &|n| wanted.contains(&n.name), links)
}

/// A lab of `lab`'s nodes that `keep` accepts and of `links`, with the lab's own name,
/// directories and management network (what a check of part of a lab reads).
pub(crate) fn part_of(lab: &Lab, keep: &dyn Fn(&Node) -> bool, links: Vec<Link>) -> Lab {
    let nodes = lab.nodes.iter().filter(|n| keep(n)).cloned().collect();
    let mut part = Lab::new(
        lab.name.clone(),
        lab.prefix.clone(),
        lab.topology_file.clone(),
        lab.dir.clone(),
        lab.mgmt.clone(),
        nodes,
        links,
    );
    part.partitions = lab.partitions.clone();
    part
}

/// `deploy --dry-run`: what a deploy of `lab` would change, changing nothing.
pub fn dry_run(mut lab: Lab, scope: &[String], reconfigure: bool) -> Result<String> {
    match running(&lab.name) {
        Some(rec) if !reconfigure => {
            let (old, plan) = prepare(&mut lab, &rec, scope)?;
            Ok(plan.render(&old, &lab))
        }
        running => {
            let workloads = lab.nodes.iter().filter(|n| n.is_workload()).count();
            let mut out = format!(
                "lab {}: {}deploy of {} nodes and {} links\n",
                lab.name,
                if running.is_some() {
                    "destroy, then "
                } else {
                    ""
                },
                workloads,
                lab.links.len()
            );
            for n in lab.nodes.iter().filter(|n| n.is_workload()) {
                let _ = writeln!(out, "  {:<14} {}", "add node", n.name);
            }
            for l in &lab.links {
                let _ = writeln!(out, "  {:<14} {}", "add link", link_label(l));
            }
            Ok(out)
        }
    }
}

/// Undo a converging deploy that failed: the nodes it made go again, and the recorded lab no
/// longer names them (the nodes that ran before keep running).
pub fn undo(lab: &Lab, rec: &Recorded, plan: &Plan) -> Result<()> {
    let made: Vec<String> = plan.made().cloned().collect();
    remove_nodes(&lab.name, rec, lab, &made, Duration::ZERO)?;
    let mut left = lab.clone();
    left.nodes.retain(|n| !made.contains(&n.name));
    left.links
        .retain(|l| l.endpoints().all(|e| !made.contains(&e.node)));
    state::write_lab(&rec.dir, &left)
}

/// Links by their first end, so a large lab's links are each found without a scan of all.
struct LinkSet<'a>(std::collections::HashMap<(&'a str, &'a str), Vec<&'a Link>>);

impl<'a> LinkSet<'a> {
    fn of(links: &'a [Link]) -> Self {
        let mut m: std::collections::HashMap<(&str, &str), Vec<&Link>> =
            std::collections::HashMap::new();
        for l in links {
            m.entry(first_end(l)).or_default().push(l);
        }
        LinkSet(m)
    }

    fn contains(&self, l: &Link) -> bool {
        self.0.get(&first_end(l)).is_some_and(|v| v.contains(&l))
    }
}

fn first_end(l: &Link) -> (&str, &str) {
    l.endpoints()
        .next()
        .map_or(("", ""), |e| (e.node.as_str(), e.iface.as_str()))
}

/// The links of node `n` in `lab`, in order (a link to itself once).
fn links_of<'a>(lab: &'a Lab, n: &Node) -> Vec<&'a Link> {
    let mut out: Vec<&Link> = lab.ends_of(&n.name).into_iter().map(|(l, _)| l).collect();
    out.dedup_by(|a, b| std::ptr::eq(*a, *b));
    out
}

/// Whether a node runs as the topology now describes it.
fn same_node(a: &Node, b: &Node) -> bool {
    a == b
}

/// Remove what `plan` takes away from the running lab: removed and recreated nodes (with their
/// links), then links between nodes that stay. The caller holds the lab's lock.
pub fn remove(name: &str, rec: &Recorded, old: &Lab, plan: &Plan) -> Result<()> {
    let going: Vec<String> = plan.remove.iter().chain(&plan.recreate).cloned().collect();
    let kept = |n: &str| plan.keep.iter().any(|k| k == n);
    // The ends in nodes that stay go first and at once: the kernel frees a deleted namespace's
    // veths only a moment later, and a new link may want the same name.
    let with_nodes = plan.links_going_with_nodes.iter().map(|i| &old.links[*i]);
    delete_links(old, with_nodes, &kept)?;
    remove_nodes(name, rec, old, &going, Duration::ZERO)?;
    delete_links(old, plan.delete_links.iter().map(|i| &old.links[*i]), &kept)
}

/// Delete links of a running lab, each by its end in the namespace of a node `at` accepts (a veth
/// pair goes whole; the far end of a link to the host with it).
fn delete_links<'a>(
    lab: &Lab,
    links: impl Iterator<Item = &'a Link>,
    at: &dyn Fn(&str) -> bool,
) -> Result<()> {
    for l in links {
        let Some(e) = l
            .endpoints()
            .find(|e| at(&e.node) && lab.node(&e.node).is_some_and(Node::is_workload))
        else {
            continue;
        };
        let Some(n) = lab.node(&e.node) else { continue };
        let ns = crate::lifecycle::kept_netns(n)?;
        let mut h = Handle::in_netns(&ns).map_err(wire_err("open netlink"))?;
        h.delete_link_by_name(&e.iface).map_err(wire_err(format!(
            "delete {} of node {} (link {})",
            e.iface,
            n.name,
            link_label(l)
        )))?;
    }
    Ok(())
}

/// Remove `nodes` of running lab `name` as its journal records them — containers, processes
/// (SIGTERM and `grace` first when it is not zero), namespace names, cgroups, run and state
/// directories — leaving the rest of the lab running.
pub fn remove_nodes(
    name: &str,
    rec: &Recorded,
    lab: &Lab,
    nodes: &[String],
    grace: Duration,
) -> Result<()> {
    if nodes.is_empty() {
        return Ok(());
    }
    let t = teardown(&rec.entries);
    let mine = |n: &str| nodes.iter().any(|x| x == n);
    let long: Vec<&str> = lab
        .nodes
        .iter()
        .filter(|n| mine(&n.name))
        .map(|n| n.long_name.as_str())
        .collect();
    let mut errors = Vec::new();
    let containers: Vec<_> = t
        .containers
        .iter()
        .filter(|c| mine(&c.node))
        .cloned()
        .collect();
    if !grace.is_zero() {
        let going: Vec<&Node> = lab.nodes.iter().filter(|n| mine(&n.name)).collect();
        errors.extend(crate::lifecycle::halt_nodes(lab, rec, &going, grace));
    }
    let (_, failures) = runtime::engine::remove_containers(name, &containers, &|_| 0);
    errors.extend(failures);
    let procs: Vec<ProcId> = t
        .procs
        .iter()
        .filter(|(n, _)| mine(n))
        .map(|(_, p)| *p)
        .collect();
    for p in &procs {
        process::let_connections_go(p);
    }
    let left = process::terminate(&procs, grace);
    if !left.is_empty() {
        errors.push(format!("{} node processes did not stop", left.len()));
    }
    for (netns, ino) in t.netns.iter().filter(|(n, _)| long.contains(&n.as_str())) {
        let r = match ino {
            Some(ino) => wire::netns::unregister_if(netns, *ino).map(|_| ()),
            None => wire::netns::unregister(netns),
        };
        if let Err(e) = r {
            errors.push(format!("unregister namespace {netns}: {e}"));
        }
    }
    for path in t
        .cgroups
        .iter()
        .filter(|p| p.file_name().is_some_and(|f| mine(&f.to_string_lossy())))
    {
        if let Err(e) = runtime::native::remove_cgroup(path) {
            errors.push(format!("remove cgroup {}: {e}", path.display()));
        }
    }
    for n in nodes {
        for dir in [
            paths::lab_run_dir(name).join(n),
            rec.dir.join("nodes").join(n),
        ] {
            if dir.exists() {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    errors.push(format!("remove {}: {e}", dir.display()));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Teardown {
            lab: name.to_string(),
            failures: errors,
        })
    }
}

/// `destroy --node-filter`: remove `nodes` (and their links) from running lab `name`; the rest of
/// the lab keeps running, and its recorded lab and files no longer name them.
pub fn destroy_nodes(name: &str, nodes: &[String], grace: Duration) -> Result<usize> {
    paths::check_lab_name(name)?;
    let _lock = Lock::lab_wait(name, Duration::from_secs(120))?;
    let dir = paths::lab_state_dir(name);
    let rec = Recorded::read(&dir);
    let mut lab = rec.lab.clone().ok_or_else(|| Error::NotDeployed {
        lab: name.to_string(),
    })?;
    let unknown: Vec<&String> = nodes.iter().filter(|n| lab.node(n).is_none()).collect();
    if !unknown.is_empty() {
        return Err(Error::NoMatchingNode {
            lab: name.to_string(),
            nodes: lab.nodes.iter().map(|n| n.name.clone()).collect(),
        });
    }
    let stays = |n: &str| !nodes.iter().any(|x| x == n);
    let going = lab
        .links
        .iter()
        .filter(|l| l.endpoints().any(|e| !stays(&e.node)));
    delete_links(&lab, going, &stays)?;
    remove_nodes(name, &rec, &lab, nodes, grace)?;
    for node in nodes {
        crate::events::emit(
            name,
            crate::events::Event::NodeStopped { node: node.clone() },
        );
    }
    lab.nodes.retain(|n| !nodes.contains(&n.name));
    lab.links
        .retain(|l| l.endpoints().all(|e| !nodes.contains(&e.node)));
    rewrite_files(&lab)?;
    Ok(nodes.len())
}

/// The recorded lab and the lab's files, after nodes went.
fn rewrite_files(lab: &Lab) -> Result<()> {
    state::write_lab(&paths::lab_state_dir(&lab.name), lab)?;
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    artifacts::write_lab_artifacts(lab, &artifacts::collect_ssh_pub_keys(&home))?;
    if paths::hosts_file().exists() {
        crate::deploy::write_hosts_block(lab, &crate::deploy::hosts_entries(lab))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Lab {
        let src = topology::Source::from_text("c.clab.yml", yaml, std::path::Path::new("/tmp"));
        topology::load(&src, &topology::Options::default())
            .unwrap()
            .lab
    }

    const HEAD: &str =
        "name: c\nmgmt: {network: c, ipv4-subnet: 172.30.99.0/24}\ntopology:\n  nodes:\n";
    const NONE: &dyn Fn(&Node) -> bool = &|_| false;

    #[test]
    fn the_plan_names_what_changes_and_keeps_the_rest() {
        let old = load(&format!(
            "{HEAD}    a: {{kind: linux}}\n    b: {{kind: linux}}\n    d: {{kind: linux}}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n    - endpoints: [a:eth2, b:eth2]\n"
        ));
        let mut new = load(&format!(
            "{HEAD}    a: {{kind: linux}}\n    b: {{kind: linux, env: {{X: \"1\"}}}}\n    c: {{kind: linux}}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n    - endpoints: [a:eth3, c:eth1]\n"
        ));
        let p = plan(&old, &mut new, &BTreeSet::new(), NONE).unwrap();
        assert_eq!(p.keep, ["a"]);
        assert_eq!(p.add, ["c"]);
        assert_eq!(p.recreate, ["b"]);
        assert_eq!(p.remove, ["d"]);
        // a–b goes with b (recreated) and is made again; a–c is new.
        let made: Vec<String> = p
            .make_links
            .iter()
            .map(|i| link_label(&new.links[*i]))
            .collect();
        assert_eq!(made, ["a:eth1 -- b:eth1", "a:eth3 -- c:eth1"]);
        assert!(p.delete_links.is_empty());
        assert_eq!(p.links_going_with_nodes, [0, 1]);
        assert!(!p.is_empty());
        let text = p.render(&old, &new);
        assert!(text.contains("recreate node  b"), "{text}");
    }

    #[test]
    fn a_link_gone_between_kept_nodes_is_deleted_alone() {
        let old = load(&format!(
            "{HEAD}    a: {{kind: linux}}\n    b: {{kind: linux}}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n    - endpoints: [a:eth2, b:eth2]\n"
        ));
        let mut new = load(&format!(
            "{HEAD}    a: {{kind: linux}}\n    b: {{kind: linux}}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n"
        ));
        let p = plan(&old, &mut new, &BTreeSet::new(), NONE).unwrap();
        assert_eq!(p.keep, ["a", "b"]);
        assert!(p.make_links.is_empty());
        assert_eq!(p.delete_links, [1]);
        let mut same = old.clone();
        assert!(plan(&old, &mut same, &BTreeSet::new(), NONE)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_node_added_first_takes_a_free_address_and_renumbers_nobody() {
        let old = load(&format!("{HEAD}    b: {{kind: linux}}\n"));
        let mut new = load(&format!(
            "{HEAD}    a: {{kind: linux}}\n    b: {{kind: linux}}\n"
        ));
        let b_before = old.node("b").unwrap().mgmt_ipv4;
        let p = plan(&old, &mut new, &BTreeSet::new(), NONE).unwrap();
        assert_eq!(p.keep, ["b"]);
        assert_eq!(new.node("b").unwrap().mgmt_ipv4, b_before);
        assert_ne!(new.node("a").unwrap().mgmt_ipv4, b_before);
        assert!(new.node("a").unwrap().mgmt_ipv4.is_some());
    }

    #[test]
    fn a_node_with_fixed_interfaces_is_recreated_when_its_links_change() {
        let old = load(&format!(
            "{HEAD}    a: {{kind: linux}}\n    b: {{kind: linux}}\n"
        ));
        let mut new = load(&format!(
            "{HEAD}    a: {{kind: linux}}\n    b: {{kind: linux}}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n"
        ));
        let fixed = |n: &Node| n.name == "a";
        let p = plan(&old, &mut new, &BTreeSet::new(), &fixed).unwrap();
        assert_eq!(p.keep, ["b"]);
        assert_eq!(p.recreate, ["a"]);
    }

    #[test]
    fn a_scoped_target_keeps_what_lies_outside_the_scope() {
        let old = load(&format!(
            "{HEAD}    a: {{kind: linux}}\n    b: {{kind: linux}}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n"
        ));
        let new = load(&format!(
            "{HEAD}    b: {{kind: linux}}\n    c: {{kind: linux}}\n  links:\n    - endpoints: [b:eth2, c:eth1]\n"
        ));
        let t = scoped_target(&old, &new, &["c".to_string()]);
        let names: Vec<&str> = t.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["b", "c", "a"]);
        let links: Vec<String> = t.links.iter().map(link_label).collect();
        assert_eq!(links, ["a:eth1 -- b:eth1", "b:eth2 -- c:eth1"]);
    }
}

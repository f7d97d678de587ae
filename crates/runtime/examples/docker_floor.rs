//! The docker engine's floor for a labwire deploy of a topology: the very containers labwire would
//! make for its docker nodes (the same create request, names, labels and privileges, eth0 on the
//! lab's management network with the node's addresses, IPv4 and IPv6 as the topology says), made
//! on the same Docker network, through the Engine API alone: the network first, then each
//! container created and started (and its pid looked up, which anything wiring links into it
//! needs) by `--workers W` threads, each with its own [`Engine`]. No links, no journal, no
//! namespaces. Prints the seconds from the network's creation to the last start, then removes
//! the containers (force, as labwire does) and the network the same way and prints the seconds
//! that took: `<deploy floor> <removal floor>`.
//!
//!   cargo run --release -p runtime --example docker_floor -- --topology ring.clab.yml --workers 8
//!
//! With `--remove` it only removes the topology's containers and then its network (a labwire
//! deploy's, with links in them) the same way and prints the seconds that took.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use runtime::docker::{Container, Engine, EngineKind};
use topology::{Lab, Node};

struct Args {
    topology: String,
    workers: usize,
    remove: bool,
}

fn usage() -> ! {
    eprintln!("usage: docker_floor --topology FILE [--workers W] [--remove]");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut topology = None;
    let mut workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut remove = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--remove" => remove = true,
            "--topology" => topology = Some(it.next().unwrap_or_else(|| usage())),
            "--workers" => {
                workers = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            _ => usage(),
        }
    }
    Args {
        topology: topology.unwrap_or_else(|| usage()),
        workers: workers.max(1),
        remove,
    }
}

fn fail(what: impl std::fmt::Display) -> ! {
    eprintln!("docker_floor: {what}");
    std::process::exit(1)
}

fn main() {
    let args = parse_args();
    let src = topology::Source::from_file(std::path::Path::new(&args.topology))
        .unwrap_or_else(|e| fail(format!("read {}: {e}", args.topology)));
    let lab = topology::load(&src, &topology::Options::default())
        .unwrap_or_else(|e| fail(format!("{} does not load: {e}", args.topology)))
        .lab;
    let nodes: Vec<&Node> = lab
        .nodes
        .iter()
        .filter(|n| n.is_workload() && n.runtime == topology::Runtime::Docker)
        .collect();
    let engines: Vec<Engine> = (0..args.workers.min(nodes.len()).max(1))
        .map(|_| Engine::connect(EngineKind::Docker).unwrap_or_else(|e| fail(runtime::chain(&e))))
        .collect();
    if args.remove {
        let t = Instant::now();
        remove(&lab, &nodes, &engines);
        println!("{:.2}", t.elapsed().as_secs_f64());
        return;
    }
    for n in &nodes {
        if engines[0]
            .running_pid(&n.long_name)
            .is_ok_and(|p| p.is_some())
        {
            fail(format!("container {} runs already", n.long_name));
        }
    }

    let failed = AtomicUsize::new(0);
    let t0 = Instant::now();
    let made = engines[0]
        .ensure_network(&lab.name, &lab.mgmt)
        .unwrap_or_else(|e| fail(runtime::chain(&e)));
    each(&nodes, &engines, |engine, node| {
        let network = runtime::NodeNetwork::of(&lab, node);
        let spec = Container {
            ctx: runtime::node::NodeContext::of(&lab, node),
            node,
            share_net_with: None,
            network: Some((&lab.mgmt.network, &network)),
        };
        let started = engine
            .create(&spec)
            .and_then(|id| engine.start(&id, &node.long_name));
        if let Err(e) = started {
            eprintln!("docker_floor: {}: {}", node.long_name, runtime::chain(&e));
            failed.fetch_add(1, Ordering::Relaxed);
        }
    });
    let secs = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    remove(&lab, &nodes, &engines);
    let removal = t1.elapsed().as_secs_f64();
    if !made {
        eprintln!(
            "docker_floor: network {} existed before: the floor did not make it",
            lab.mgmt.network
        );
    }
    if failed.load(Ordering::Relaxed) > 0 {
        std::process::exit(1);
    }
    println!("{secs:.2} {removal:.2}");
}

/// Run `f` on every node, one thread per engine, each taking the next node.
fn each(nodes: &[&Node], engines: &[Engine], f: impl Fn(&Engine, &Node) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for engine in engines {
            let (next, f) = (&next, &f);
            s.spawn(move || {
                while let Some(node) = nodes.get(next.fetch_add(1, Ordering::Relaxed)) {
                    f(engine, node);
                }
            });
        }
    });
}

/// Force-remove the nodes' containers, then the lab's network (waiting, as labwire does, for
/// the engine to release the removed containers' endpoints).
fn remove(lab: &Lab, nodes: &[&Node], engines: &[Engine]) {
    each(nodes, engines, |engine, node| {
        if let Err(e) = engine.remove(&node.long_name) {
            eprintln!("docker_floor: {}", runtime::chain(&e));
        }
    });
    if let Err(e) = engines[0].remove_network(&lab.mgmt.network) {
        eprintln!(
            "docker_floor: network {}: {}",
            lab.mgmt.network,
            runtime::chain(&e)
        );
    }
}

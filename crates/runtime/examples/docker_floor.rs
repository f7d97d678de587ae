//! The docker engine's floor for a labwire deploy: `--nodes N` containers named `lwf-<i>`, made
//! with the request labwire makes for a docker node (the same privileges and labels, eth0 on the
//! lab's management network as a Docker network with the node's address) and created then
//! started through the Engine API by `--workers W` threads, each with its own [`Engine`]. The
//! network is made first, as labwire makes it. No links, no journal. Prints the seconds from the
//! network's creation to the last start, then removes the containers (force, as labwire does) and
//! the network the same way and prints the seconds that took: `<deploy floor> <removal floor>`.
//!
//!   cargo run --release -p runtime --example docker_floor -- --nodes 50 --workers 4 --image IMG
//!
//! With `--remove PREFIX` it only removes containers `PREFIX1`…`PREFIXN` (another tool's, e.g. a
//! labwire lab's `clab-LAB-n`) the same way and prints the seconds that took.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use runtime::docker::{Container, Engine, EngineKind};

struct Args {
    remove: Option<String>,
    nodes: usize,
    workers: usize,
    image: String,
}

fn usage() -> ! {
    eprintln!("usage: docker_floor [--nodes N] [--workers W] (--image IMAGE | --remove PREFIX)");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        remove: None,
        nodes: 50,
        workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        image: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--nodes" => a.nodes = value.parse().unwrap_or_else(|_| usage()),
            "--workers" => a.workers = value.parse().unwrap_or_else(|_| usage()),
            "--image" => a.image = value,
            "--remove" => a.remove = Some(value),
            _ => usage(),
        }
    }
    if (a.image.is_empty() && a.remove.is_none()) || a.nodes == 0 {
        usage();
    }
    a.workers = a.workers.clamp(1, a.nodes);
    a
}

fn main() {
    let args = parse_args();
    if let Some(prefix) = &args.remove {
        remove_only(prefix, &args);
        return;
    }
    // A tiny lab whose nodes are long-named `lwf-<i>` (empty prefix), as labwire would load it.
    let mut yaml = format!(
        "name: lwf\nprefix: \"\"\nmgmt: {{network: lwf-floor, ipv4-subnet: 172.31.251.0/24}}\n\
         topology:\n  defaults: {{runtime: docker, image: \"{}\"}}\n  nodes:\n",
        args.image
    );
    for i in 1..=args.nodes {
        yaml.push_str(&format!("    lwf-{i}: {{kind: linux}}\n"));
    }
    let src = topology::Source::from_text("lwf.clab.yml", yaml, &std::env::temp_dir());
    let lab = match topology::load(&src, &topology::Options::default()) {
        Ok(l) => l.lab,
        Err(e) => {
            eprintln!("docker_floor: the generated lab does not load: {e}");
            std::process::exit(1)
        }
    };
    let connect = || {
        Engine::connect(EngineKind::Docker).unwrap_or_else(|e| {
            eprintln!("docker_floor: {}", runtime::chain(&e));
            std::process::exit(1)
        })
    };
    let engines: Vec<Engine> = (0..args.workers).map(|_| connect()).collect();
    for n in &lab.nodes {
        let _ = engines[0].remove(&n.long_name);
    }

    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let t0 = Instant::now();
    if let Err(e) = engines[0].ensure_network(&lab.name, &lab.mgmt) {
        eprintln!("docker_floor: {}", runtime::chain(&e));
        std::process::exit(1);
    }
    std::thread::scope(|s| {
        for engine in &engines {
            let (lab, next, failed) = (&lab, &next, &failed);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(node) = lab.nodes.get(i) else { break };
                let network = runtime::NodeNetwork::of(lab, node);
                let spec = Container {
                    ctx: runtime::node::NodeContext {
                        lab: &lab.name,
                        topo_file: Some(Path::new("/tmp/lwf.clab.yml")),
                        // A ring node has two data interfaces (`CLAB_INTFS`).
                        intfs: 2,
                    },
                    node,
                    share_net_with: None,
                    network: Some((&lab.mgmt.network, &network)),
                };
                let made = engine
                    .create(&spec)
                    .and_then(|id| engine.start(&id, &node.long_name));
                if let Err(e) = made {
                    eprintln!("docker_floor: {}: {}", node.long_name, runtime::chain(&e));
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let secs = t0.elapsed().as_secs_f64();

    let next = AtomicUsize::new(0);
    let t1 = Instant::now();
    std::thread::scope(|s| {
        for engine in &engines {
            let (lab, next) = (&lab, &next);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(node) = lab.nodes.get(i) else { break };
                if let Err(e) = engine.remove(&node.long_name) {
                    eprintln!("docker_floor: {}", runtime::chain(&e));
                }
            });
        }
    });
    if let Err(e) = engines[0].remove_network(&lab.mgmt.network) {
        eprintln!("docker_floor: {}", runtime::chain(&e));
    }
    let removal = t1.elapsed().as_secs_f64();
    if failed.load(Ordering::Relaxed) > 0 {
        std::process::exit(1);
    }
    println!("{secs:.2} {removal:.2}");
}

/// Force-remove containers `<prefix>1`…`<prefix>N` with the workers, each on its own connection;
/// print the seconds.
fn remove_only(prefix: &str, args: &Args) {
    let engines: Vec<Engine> = (0..args.workers)
        .map(|_| {
            Engine::connect(EngineKind::Docker).unwrap_or_else(|e| {
                eprintln!("docker_floor: {}", runtime::chain(&e));
                std::process::exit(1)
            })
        })
        .collect();
    let next = AtomicUsize::new(1);
    let t = Instant::now();
    std::thread::scope(|s| {
        for engine in &engines {
            let next = &next;
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i > args.nodes {
                    break;
                }
                if let Err(e) = engine.remove(&format!("{prefix}{i}")) {
                    eprintln!("docker_floor: {}", runtime::chain(&e));
                }
            });
        }
    });
    println!("{:.2}", t.elapsed().as_secs_f64());
}

//! Benchmark (not a test): how long `topology::load` takes on a 10 000-node, 20 000-link lab.
//!
//! Generates the topology text in memory (a ring plus a chord to the node two steps on, so every node
//! has four links), loads it three times and prints the median. Run with
//! `cargo run --release -p topology --example validate_bench`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

const NODES: usize = 10_000;
const TARGET: Duration = Duration::from_secs(1);

fn topology_text(nodes: usize) -> (String, usize) {
    let mut t = String::with_capacity(nodes * 120);
    t.push_str("name: bench\nmgmt:\n  network: bench\n  ipv4-subnet: 10.0.0.0/16\n  ipv6-subnet: 3fff:10::/64\n");
    t.push_str("topology:\n  defaults:\n    kind: linux\n    binds:\n      - /tmp:/tmp:ro\n");
    t.push_str("  nodes:\n");
    for i in 0..nodes {
        let _ = writeln!(t, "    n{i}:\n      env: {{ID: \"{i}\"}}");
    }
    t.push_str("  links:\n");
    let mut links = 0;
    for i in 0..nodes {
        // Ring: n{i}:eth1 — n{i+1}:eth2.
        let _ = writeln!(
            t,
            "    - endpoints: [\"n{i}:eth1\", \"n{}:eth2\"]",
            (i + 1) % nodes
        );
        links += 1;
    }
    for i in 0..nodes {
        // Chord: n{i}:eth3 — n{i+2}:eth4.
        let _ = writeln!(
            t,
            "    - endpoints: [\"n{i}:eth3\", \"n{}:eth4\"]",
            (i + 2) % nodes
        );
        links += 1;
    }
    (t, links)
}

fn main() {
    let (text, links) = topology_text(NODES);
    let src = topology::Source::from_text("bench.clab.yml", text, Path::new("/tmp"));
    let env = |_: &str| None;
    let read_file = |p: &Path| std::fs::read_to_string(p);
    let opts = topology::Options {
        env: &env,
        runtime: None,
        read_file: &read_file,
    };
    let mut times = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let loaded = match topology::load(&src, &opts) {
            Ok(l) => l,
            Err(e) => {
                eprint!("{}", e.0.render(false));
                std::process::exit(1);
            }
        };
        times.push(start.elapsed());
        assert_eq!(loaded.lab.nodes.len(), NODES);
        assert_eq!(loaded.lab.links.len(), links);
    }
    times.sort();
    let median = times[1];
    println!(
        "validate {NODES} nodes, {links} links: {:.3} s (target < {} s){}",
        median.as_secs_f64(),
        TARGET.as_secs(),
        if median < TARGET { "" } else { "  OVER TARGET" }
    );
}

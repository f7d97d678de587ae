//! The corpus under `tests/corpus/` (workspace root) loads without errors, and its resolved values
//! are the ones containerlab users expect: merged lists, env precedence, magic variables, long names,
//! link defaults, stable MACs and management addresses.

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use topology::yaml::{self, Kind, Value};
use topology::{load, Lab, Loaded, Mac, NetworkMode, Options, Peer, Runtime, Source};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus")
}

/// The fixed environment the corpus is loaded with (never the process environment).
fn test_env(k: &str) -> Option<String> {
    match k {
        "SET_VAR" => Some("set".into()),
        "HOME_DIR" => Some("/home/lab".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn read_file(p: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(p)
}

fn load_file(name: &str) -> Loaded {
    let path = corpus_dir().join(name);
    let src = Source::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let opts = Options {
        env: &test_env,
        runtime: None,
        read_file: &read_file,
    };
    match load(&src, &opts) {
        Ok(l) => l,
        Err(e) => panic!("{name} should be valid:\n{}", e.0.render(false)),
    }
}

fn corpus_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".clab.yml"))
        .collect();
    files.sort();
    files
}

fn node<'a>(lab: &'a Lab, name: &str) -> &'a topology::Node {
    lab.node(name).unwrap_or_else(|| panic!("node {name}"))
}

#[test]
fn every_corpus_file_is_valid() {
    let files = corpus_files();
    assert!(files.len() >= 8, "corpus files: {files:?}");
    for f in &files {
        let loaded = load_file(f);
        assert!(!loaded.warnings.has_errors(), "{f}");
        assert!(!loaded.lab.nodes.is_empty(), "{f}");
    }
}

/// Every key under `defaults`, `kinds.*`, `groups.*` and `nodes.*` of every corpus file.
fn node_keys_used() -> BTreeSet<String> {
    fn keys(v: &Value, out: &mut BTreeSet<String>) {
        if let Kind::Map(m) = &v.kind {
            out.extend(m.iter().filter_map(|(k, _)| k.as_str().map(str::to_string)));
        }
    }
    fn get<'a>(v: &'a Value<'a>, key: &str) -> Option<&'a Value<'a>> {
        match &v.kind {
            Kind::Map(m) => m
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
    let mut out = BTreeSet::new();
    for f in corpus_files() {
        let text = std::fs::read_to_string(corpus_dir().join(&f)).unwrap();
        // A template is YAML only once rendered.
        if text.contains("{{") {
            continue;
        }
        let root = yaml::parse(&text).unwrap();
        let Some(topo) = get(&root, "topology") else {
            continue;
        };
        if let Some(d) = get(topo, "defaults") {
            keys(d, &mut out);
        }
        for section in ["kinds", "groups", "nodes"] {
            if let Some(Value {
                kind: Kind::Map(m), ..
            }) = get(topo, section)
            {
                for (_, def) in m {
                    keys(def, &mut out);
                }
            }
        }
    }
    out
}

#[test]
fn corpus_uses_every_node_field() {
    let used = node_keys_used();
    let missing: Vec<&str> = topology::node::FIELDS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !used.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "node fields no corpus file uses: {missing:?}"
    );
}

#[test]
fn corpus_uses_every_link_type() {
    // The types as loaded, and as written (`brief` and `veth-stitch` load as veths).
    let mut types: BTreeSet<String> = BTreeSet::new();
    for f in corpus_files() {
        for l in &load_file(&f).lab.links {
            types.insert(l.peer.type_name().to_string());
        }
        let text = std::fs::read_to_string(corpus_dir().join(&f)).unwrap();
        for line in text.lines() {
            if let Some(t) = line.trim().strip_prefix("- type: ") {
                types.insert(t.trim().to_string());
            }
        }
    }
    for t in topology::link::LINK_TYPES {
        assert!(types.contains(t), "no corpus link of type {t}");
    }
}

#[test]
fn containerlab_node_fields_resolve_across_levels() {
    let loaded = load_file("compat-fields.clab.yml");
    let lab = &loaded.lab;
    // `${COMPAT_PREFIX:=""}` is substituted before YAML reads the file: an empty prefix.
    assert_eq!(lab.prefix, "");
    assert_eq!(node(lab, "leaf1").long_name, "leaf1");
    assert_eq!(lab.mgmt.ipv4_subnet.unwrap().to_string(), "10.78.0.0/24");
    assert_eq!(lab.mgmt.ipv6_subnet.unwrap().to_string(), "3fff:78::/64");
    let leaf1 = node(lab, "leaf1");
    assert_eq!(leaf1.privileged, Some(true));
    assert_eq!(leaf1.pid_mode.as_deref(), Some("host"));
    assert_eq!(leaf1.volumes, ["leafdata:/data"]);
    // tmpfs merges as a map: kind, group and node entries.
    let tmpfs: Vec<&str> = leaf1.tmpfs.keys().map(String::as_str).collect();
    assert_eq!(tmpfs, ["/run", "/tmp", "/var/log"]);
    assert_eq!(leaf1.security_opts, ["apparmor=unconfined"]);
    // `leaves,edge` names two groups; the first is the more specific.
    let leaf2 = node(lab, "leaf2");
    assert_eq!(leaf2.pid_mode.as_deref(), Some("host"));
    assert_eq!(leaf2.cgroup_parent.as_deref(), Some("labwire.slice"));
    assert_eq!(
        leaf2.security_opts,
        ["apparmor=unconfined", "no-new-privileges"]
    );
    // An undefined group adds nothing and is no error.
    let sros1 = node(lab, "sros1");
    assert_eq!(sros1.cgroupns_mode.as_deref(), Some("private"));
    assert!(sros1.volumes.is_empty());
    let host1 = node(lab, "host1");
    assert_eq!(host1.privileged, Some(false));
    assert_eq!(host1.volumes, ["/srv/shared:/shared:ro"]);
    let warnings = loaded.warnings.render(false);
    assert!(
        warnings.contains("group `not-defined-anywhere`, which topology.groups does not define"),
        "{warnings}"
    );
    // One line per generic kind, however many nodes.
    assert_eq!(
        warnings
            .matches("kind `nokia_srlinux` (nodes leaf1, leaf2) runs as a generic")
            .count(),
        1,
        "{warnings}"
    );
}

#[test]
fn vendor_interface_names_map_and_keep_the_written_name() {
    let lab = load_file("compat-names.clab.yml").lab;
    let ep = |node: &str, written: &str| {
        lab.links
            .iter()
            .flat_map(|l| l.endpoints())
            .find(|e| e.node == node && e.written() == written)
            .unwrap_or_else(|| panic!("endpoint {node}:{written}"))
            .clone()
    };
    for (node, written, linux) in [
        ("srl1", "ethernet-1/1", "e1-1"),
        ("srl2", "ethernet-1/3/1", "e1-3-1"),
        ("sim1", "1/1/c1/1", "e1-1-c1-1"),
        ("sim2", "1/x1/1/c1/1", "e1-x1-1-c1-1"),
        ("sim3", "1/1/1", "e1-1-1"),
        ("iol1", "Ethernet0/1", "eth1"),
        ("iol2", "e1/2", "eth6"),
        ("vmx", "ge-0/0/0", "eth1"),
        ("csr", "GigabitEthernet2", "eth1"),
        ("ros", "ether2", "eth1"),
        ("sim1", "1/1/c2/1", "e1-1-c2-1"),
    ] {
        let e = ep(node, written);
        assert_eq!(e.iface, linux, "{node}:{written}");
        assert_eq!(e.alias.as_deref(), Some(written));
    }
    // Linux names stay as they are, without an alias.
    let ceos = ep("ceos", "eth1");
    assert_eq!((ceos.iface.as_str(), ceos.alias), ("eth1", None));
    // Too long for Linux: a generated name, the written one kept.
    let long = ep("h", "a-name-longer-than-linux-takes");
    assert!(long.iface.len() <= 15 && long.iface != long.written());
    let host = lab
        .links
        .iter()
        .find(|l| l.host_alias.as_deref() == Some("some_very_long_host_side_name"))
        .expect("host link with a long name");
    let Peer::Host { host_iface, .. } = &host.peer else {
        panic!("{:?}", host.peer)
    };
    assert!(host_iface.len() <= 15);
}

#[test]
fn lists_merge_across_levels_in_order() {
    let lab = load_file("fields.clab.yml").lab;
    let base = corpus_dir().canonicalize().unwrap();
    let base = std::path::absolute(corpus_dir()).unwrap_or(base);
    let s1 = node(&lab, "spine1");
    let binds: Vec<(PathBuf, &str, Vec<&str>)> = s1
        .binds
        .iter()
        .map(|b| {
            (
                b.source.clone(),
                b.target.as_str(),
                b.options.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    // defaults, then kind, then group (whose /data replaces the defaults' /data), then node.
    assert_eq!(
        binds,
        vec![
            (PathBuf::from("/etc/hosts"), "/etc/hosts.lab", vec!["ro"]),
            (base.join("kind/common"), "/etc/common", vec![]),
            (base.join("group/spine.conf"), "/etc/spine.conf", vec![]),
            (base.join("group/data"), "/data", vec![]),
            (
                base.join("node/spine1.conf"),
                "/etc/node.conf",
                vec!["ro", "z"]
            ),
        ]
    );
    assert!(s1.binds.iter().all(|b| b.source.is_absolute()));
    // A node outside the group gets the defaults' /data with the magic name substituted.
    let leaf = node(&lab, "leaf1");
    let data = leaf.binds.iter().find(|b| b.target == "/data").unwrap();
    assert_eq!(data.source, base.join("defaults/leaf1"));
    assert_eq!(leaf.binds.len(), 3, "{:?}", leaf.binds);
    // cap-add concatenates kind and node levels.
    assert_eq!(s1.cap_add, vec!["NET_ADMIN", "SYS_ADMIN"]);
    assert_eq!(leaf.cap_add, vec!["NET_ADMIN"]);
}

#[test]
fn maps_merge_with_the_most_specific_level_winning() {
    let lab = load_file("fields.clab.yml").lab;
    let s1 = node(&lab, "spine1");
    let env = |k: &str| s1.env.get(k).map(String::as_str);
    assert_eq!(env("LEVEL"), Some("node"));
    assert_eq!(env("DEFAULT_ONLY"), Some("d"));
    assert_eq!(env("KIND_ONLY"), Some("k"));
    // env-files: defaults' file, then the node's file, then `env` over both.
    assert_eq!(env("FROM_FILE"), Some("file"));
    assert_eq!(env("QUOTED"), Some("single quoted"));
    assert_eq!(env("LEAF_ONLY"), Some("yes"));
    let leaf = node(&lab, "leaf1");
    assert_eq!(
        leaf.env.get("OVERRIDDEN").map(String::as_str),
        Some("from-file")
    );
    assert_eq!(leaf.env.get("LEVEL").map(String::as_str), Some("kind"));
    assert_eq!(env("OVERRIDDEN"), Some("from-leaf-file"));
    assert_eq!(
        s1.labels.get("lab.level").map(String::as_str),
        Some("group")
    );
    assert_eq!(s1.labels.get("role").map(String::as_str), Some("spine"));
    assert_eq!(
        leaf.labels.get("lab.level").map(String::as_str),
        Some("defaults")
    );
    assert_eq!(s1.sysctls.len(), 2);
    assert_eq!(
        s1.sysctls.get("net.ipv4.ip_forward").map(String::as_str),
        Some("1")
    );
}

#[test]
fn variables_and_magic_names_are_substituted() {
    let lab = load_file("fields.clab.yml").lab;
    assert_eq!(lab.name, "fields", "${{LAB_NAME:-fields}}");
    let s1 = node(&lab, "spine1");
    let env = |k: &str| {
        s1.env
            .get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("env {k}"))
    };
    let lab_dir = std::path::absolute(corpus_dir())
        .unwrap()
        .join("clab-fields");
    assert_eq!(lab.dir, lab_dir);
    assert_eq!(env("NAME"), "spine1");
    assert_eq!(env("DIR"), lab_dir.join("spine1").to_str().unwrap());
    assert_eq!(env("LABDIR"), lab_dir.to_str().unwrap());
    assert_eq!(env("LAB"), "fields");
    assert_eq!(env("HOME_VAR"), "/home/lab/x");
    assert_eq!(env("ESCAPED"), "$NOT_A_VAR");
    assert_eq!(env("PLUS"), "alternate");
    assert_eq!(env("REQUIRED"), "set");
    assert_eq!(env("UNSET_LEFT"), "${NOT_SET_ANYWHERE}");
    // `${IMAGE:=debian}` in kinds assigns IMAGE for the rest of the file.
    assert_eq!(env("ASSIGNED_AGAIN"), "debian");
    assert_eq!(s1.image.as_deref(), Some("debian:bookworm"));
    assert_eq!(s1.exec, vec!["ip link set eth1 up", "echo spine1"]);
    assert_eq!(
        s1.startup_config.as_deref(),
        Some(corpus_dir().join("configs/spine1.cfg").as_path())
            .map(|p| std::path::absolute(p).unwrap())
            .as_deref()
    );
}

#[test]
fn every_field_reaches_the_node() {
    let lab = load_file("fields.clab.yml").lab;
    let s1 = node(&lab, "spine1");
    assert_eq!(s1.kind, "linux");
    assert_eq!(s1.group.as_deref(), Some("spines"));
    assert_eq!(s1.node_type.as_deref(), Some("spine"));
    assert_eq!(s1.image_pull_policy.as_deref(), Some("ifnotpresent"));
    assert_eq!(s1.startup_delay_s, 3);
    assert_eq!(s1.cmd.as_deref(), Some("/usr/lib/frr/frrinit.sh start"));
    assert_eq!(s1.entrypoint.as_deref(), Some("/sbin/init"));
    assert_eq!(s1.ports.len(), 4);
    assert_eq!(s1.ports[0].host_port, Some((8080, 8080)));
    assert_eq!(s1.ports[1].host_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_eq!(s1.ports[2].host_ip, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(s1.ports[2].protocol, "udp");
    assert_eq!(s1.ports[3].container_port, (9000, 9001));
    assert_eq!(s1.mgmt_ipv4, Some("10.77.0.2".parse().unwrap()));
    assert_eq!(s1.mgmt_ipv6, Some("3fff:77::2".parse().unwrap()));
    assert!(s1.mgmt_static);
    assert_eq!(s1.runtime, Runtime::Native);
    assert_eq!(s1.cpu, Some(1.5));
    assert_eq!(s1.cpu_set.as_deref(), Some("0-1"));
    assert_eq!(s1.memory_bytes, Some(1 << 30));
    assert_eq!(s1.devices, vec!["/dev/net/tun"]);
    let dns = s1.dns.as_ref().unwrap();
    assert_eq!(dns.servers.len(), 2);
    assert_eq!(dns.search, vec!["lab.example"]);
    assert_eq!(dns.options, vec!["ndots:2"]);
    let hc = s1.healthcheck.as_ref().unwrap();
    assert_eq!(hc.test, vec!["CMD-SHELL", "ip link show eth1"]);
    assert_eq!(
        (hc.start_period_s, hc.interval_s, hc.timeout_s, hc.retries),
        (5, 60, 10, 5)
    );
    assert_eq!(s1.user.as_deref(), Some("root"));
    assert_eq!(s1.hostname, "spine-one");
    assert_eq!(s1.restart_policy.as_deref(), Some("unless-stopped"));
    assert!(s1.auto_remove);
    assert_eq!(s1.aliases, vec!["s1", "spine-a"]);
    assert!(s1.license.as_ref().unwrap().ends_with("licenses/spine.lic"));
    for key in [
        "extras",
        "certificate",
        "config",
        "components",
        "position",
        "sandbox",
    ] {
        assert!(s1.extras.contains_key(key), "{key}");
    }
    assert_eq!(s1.extras["config"]["vars"]["asn"], 65001);
    use topology::{ExecPhase, ExecTarget, Stage};
    let create = &s1.stages[&Stage::Create];
    assert_eq!(create.wait_for[0].node, "leaf1");
    assert_eq!(create.wait_for[0].stage, Stage::Create);
    let conf = &s1.stages[&Stage::Configure];
    assert_eq!(conf.exec.len(), 2);
    assert_eq!(conf.exec[1].target, ExecTarget::Host);
    assert_eq!(conf.exec[1].phase, ExecPhase::OnExit);
    assert_eq!(conf.exec[0].target, ExecTarget::Container);

    // The deprecated `wait-for` becomes a create-stage wait on the node's health.
    let leaf2 = node(&lab, "leaf2");
    assert_eq!(leaf2.network_mode, NetworkMode::Container("leaf1".into()));
    assert_eq!(leaf2.stages[&Stage::Create].wait_for[0].node, "spine1");
    assert_eq!(
        leaf2.stages[&Stage::Create].wait_for[0].stage,
        Stage::Healthy
    );
    assert_eq!(node(&lab, "leaf1").network_mode, NetworkMode::None);
    assert_eq!(
        node(&lab, "leaf1").image_pull_policy.as_deref(),
        Some("always")
    );
    let cumulus = node(&lab, "cumulus");
    assert_eq!(cumulus.runtime, Runtime::Vm);
    assert_eq!(cumulus.kernel.as_deref(), Some("vmlinuz-cumulus"));
    assert_eq!(cumulus.vmm.as_deref(), Some("qemu"));
    assert_eq!(cumulus.image.as_deref(), Some("networkop/cx:5.3.0"));
    assert_eq!(node(&lab, "ext").runtime, Runtime::Docker);
    assert_eq!(node(&lab, "hostnet").network_mode, NetworkMode::Host);
    assert!(node(&lab, "hostnet").mgmt_ipv4.is_none());
}

#[test]
fn long_names_follow_the_prefix() {
    assert_eq!(
        node(&load_file("fields.clab.yml").lab, "spine1").long_name,
        "lw-fields-spine1"
    );
    assert_eq!(
        node(&load_file("prefix-default.clab.yml").lab, "n1").long_name,
        "clab-plain-n1"
    );
    assert_eq!(
        node(&load_file("prefix-empty.clab.yml").lab, "n1").long_name,
        "n1"
    );
    assert_eq!(
        node(&load_file("prefix-lab-name.clab.yml").lab, "n1").long_name,
        "labnamed-n1"
    );
    let lab = load_file("prefix-default.clab.yml").lab;
    assert_eq!(lab.long_name("x"), "clab-plain-x");
    assert_eq!(lab.mgmt.network, "clab");
    assert_eq!(lab.mgmt.bridge, "br-clab");
    assert_eq!(
        lab.mgmt.ipv4_subnet,
        Some("172.20.20.0/24".parse().unwrap())
    );
    assert_eq!(
        lab.mgmt.ipv6_subnet,
        Some("3fff:172:20:20::/64".parse().unwrap())
    );
    assert_eq!(
        node(&lab, "n1").mgmt_ipv4,
        Some("172.20.20.2".parse().unwrap())
    );
}

#[test]
fn links_resolve_with_their_defaults() {
    let lab = load_file("links.clab.yml").lab;
    let l = &lab.links;
    assert_eq!(l.len(), 15);
    // Brief veth: MTU 9500 by default.
    assert_eq!(l[0].mtu, 9500);
    assert!(matches!(&l[0].peer, Peer::Veth { b } if b.node == "r2" && b.iface == "eth1"));
    assert_eq!(l[1].mtu, 1500);
    assert_eq!(l[1].a.ipv4, Some("192.0.2.0/31".parse().unwrap()));
    assert_eq!(l[1].a.ipv6, Some("2001:db8::1/127".parse().unwrap()));
    // Typed veth keeps its per-endpoint MAC and addresses.
    assert_eq!(l[2].mtu, 9000);
    assert_eq!(l[2].a.mac, "02:00:00:00:00:01".parse::<Mac>().unwrap());
    let Peer::Veth { b } = &l[2].peer else {
        panic!("veth")
    };
    assert_eq!(b.mac, "02:00:00:00:00:02".parse::<Mac>().unwrap());
    assert_eq!(b.ipv4, Some("198.51.100.2/30".parse().unwrap()));
    assert_eq!(b.ipv6, Some("2001:db8:1::2/64".parse().unwrap()));
    assert_eq!(
        l[2].labels.get("purpose").map(String::as_str),
        Some("typed")
    );
    assert_eq!(l[2].vars.get("cost"), Some(&serde_json::json!(10)));
    assert!(matches!(&l[3].peer, Peer::Host { host_iface, .. } if host_iface == "r1-eth4"));
    assert_eq!(l[3].mtu, 9500);
    assert!(matches!(&l[4].peer, Peer::MgmtNet { host_iface, .. } if host_iface == "r2-mgmt"));
    assert!(
        matches!(&l[5].peer, Peer::Macvlan { parent, mode: topology::MacvlanMode::Passthru } if parent == "eth0")
    );
    // VXLAN: destination port 14789 unless given.
    assert!(matches!(
        &l[6].peer,
        Peer::Vxlan {
            vni: 100,
            udp_port: 14789,
            parent: None,
            ..
        }
    ));
    match &l[7].peer {
        Peer::VxlanStitch {
            remote,
            vni,
            udp_port,
            parent,
            host_iface,
            ..
        } => {
            assert_eq!(*remote, "2001:db8::100".parse::<IpAddr>().unwrap());
            assert_eq!((*vni, *udp_port), (200, 4789));
            assert_eq!(parent.as_deref(), Some("eth0"));
            assert!(
                host_iface.len() <= 15 && host_iface.starts_with("vxs-"),
                "{host_iface}"
            );
        }
        p => panic!("vxlan-stitch, got {p:?}"),
    }
    assert_eq!(l[8].peer, Peer::Dummy);
    assert_eq!(l[8].a.iface, "dummy0");
    // Brief special endpoints; the node end is always `a`, whichever side it was written on.
    assert!(matches!(&l[9].peer, Peer::Host { host_iface, .. } if host_iface == "r1-eth6"));
    assert_eq!(
        (l[10].a.node.as_str(), l[10].a.iface.as_str()),
        ("r2", "eth6")
    );
    assert!(matches!(&l[10].peer, Peer::MgmtNet { host_iface, .. } if host_iface == "r2-eth6"));
    assert!(
        matches!(&l[11].peer, Peer::Macvlan { parent, mode: topology::MacvlanMode::Bridge } if parent == "eth0")
    );
    // Links to bridge and host kind nodes are veths whose other end is that node.
    assert!(matches!(&l[12].peer, Peer::Veth { b } if b.node == "r1") && l[12].a.node == "br0");
    assert!(matches!(&l[13].peer, Peer::Veth { b } if b.node == "br0"));
    assert_eq!(l[14].a.node, "the-host");
    // Bridge and host nodes get no management address.
    assert!(node(&lab, "br0").mgmt_ipv4.is_none());
    assert!(node(&lab, "the-host").mgmt_ipv4.is_none());
    assert!(node(&lab, "r1").mgmt_ipv4.is_some());
}

#[test]
fn special_endpoint_names_mean_nodes_when_nodes_have_them() {
    let lab = load_file("special-names.clab.yml").lab;
    assert!(lab
        .links
        .iter()
        .all(|l| matches!(l.peer, Peer::Veth { .. })));
}

fn all_macs(lab: &Lab) -> Vec<Mac> {
    let mut out: Vec<Mac> = lab.nodes.iter().map(|n| n.mgmt_mac).collect();
    for l in &lab.links {
        out.extend(l.endpoints().map(|e| e.mac));
        match &l.peer {
            Peer::Host { host_mac, .. }
            | Peer::MgmtNet { host_mac, .. }
            | Peer::VxlanStitch { host_mac, .. } => out.push(*host_mac),
            _ => {}
        }
    }
    out
}

#[test]
fn macs_are_stable_local_and_unique() {
    for f in ["links.clab.yml", "fields.clab.yml"] {
        let first = load_file(f).lab;
        let second = load_file(f).lab;
        let macs = all_macs(&first);
        assert_eq!(
            macs,
            all_macs(&second),
            "{f}: MACs differ between two loads"
        );
        let explicit: HashSet<Mac> = ["02:00:00:00:00:01", "02:00:00:00:00:02"]
            .iter()
            .map(|m| m.parse().unwrap())
            .collect();
        for m in &macs {
            assert_ne!(*m, Mac([0; 6]), "{f}: an interface has no MAC");
            assert_eq!(m.0[0] & 0x01, 0, "{f}: {m} is multicast");
            if !explicit.contains(m) {
                assert_eq!(m.0[0] & 0x02, 0x02, "{f}: {m} is not locally administered");
            }
        }
        let unique: HashSet<&Mac> = macs.iter().collect();
        assert_eq!(unique.len(), macs.len(), "{f}: duplicate MACs");
    }
}

#[test]
fn mgmt_addresses_are_static_first_and_never_the_gateway() {
    let lab = load_file("mgmt.clab.yml").lab;
    let m = &lab.mgmt;
    assert_eq!(m.network, "lab-mgmt");
    assert_eq!(m.bridge, "br-labmgmt");
    assert_eq!(m.mtu, 1400);
    assert!(!m.external_access);
    let v4 = |n: &str| node(&lab, n).mgmt_ipv4.map(|a| a.to_string());
    let v6 = |n: &str| node(&lab, n).mgmt_ipv6.map(|a| a.to_string());
    // .1 is the gateway, .2 and .4 are static: the others fill .3, .5, .6 in node order.
    assert_eq!(v4("b").as_deref(), Some("192.168.50.2"));
    assert_eq!(v4("d").as_deref(), Some("192.168.50.4"));
    assert_eq!(v4("a").as_deref(), Some("192.168.50.3"));
    assert_eq!(v4("c").as_deref(), Some("192.168.50.5"));
    assert_eq!(v4("e").as_deref(), Some("192.168.50.6"));
    assert_eq!(v6("b").as_deref(), Some("3fff:50::2"));
    assert_eq!(v6("a").as_deref(), Some("3fff:50::3"));
    assert_eq!(v6("c").as_deref(), Some("3fff:50::4"));
    assert_eq!(v4("sw"), None);
    assert_eq!(v4("iso"), None);
    let gw: HashSet<IpAddr> = [
        IpAddr::V4(m.ipv4_gw.unwrap()),
        IpAddr::V6(m.ipv6_gw.unwrap()),
    ]
    .into();
    let all: Vec<IpAddr> = lab.mgmt_addresses().collect();
    assert!(all.iter().all(|a| !gw.contains(a)));
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len());

    let ranged = load_file("mgmt-range.clab.yml").lab;
    assert_eq!(ranged.mgmt.ipv4_gw, Some("10.9.0.1".parse().unwrap()));
    assert_eq!(
        node(&ranged, "a").mgmt_ipv4,
        Some("10.9.0.129".parse().unwrap())
    );
    assert_eq!(
        node(&ranged, "b").mgmt_ipv4,
        Some("10.9.0.130".parse().unwrap())
    );
    assert_eq!(
        node(&ranged, "a").mgmt_ipv6,
        Some("3fff:9::101".parse().unwrap())
    );
}

#[test]
fn a_template_topology_renders_with_the_variables_beside_it() {
    let lab = load_file("compat-template.clab.yml").lab;
    assert_eq!(lab.name, "compat-template");
    let names: Vec<&str> = lab.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["spine1", "spine2", "leaf1", "leaf2"]);
    assert_eq!(node(&lab, "spine2").node_type.as_deref(), Some("ixrd3"));
    assert_eq!(
        node(&lab, "spine2").mgmt_ipv4,
        Some(Ipv4Addr::new(172, 20, 20, 12))
    );
    assert_eq!(node(&lab, "leaf1").labels["asn"], "65001");
    assert_eq!(node(&lab, "leaf2").labels["role"], "leaf");
    assert_eq!(
        node(&lab, "leaf1").image.as_deref(),
        Some("ghcr.io/nokia/srlinux")
    );
    assert_eq!(node(&lab, "leaf2").image.as_deref(), Some("srl:custom"));
    assert_eq!(lab.links.len(), 4);
    let l = &lab.links[1];
    assert_eq!(
        (l.a.node.as_str(), l.a.written()),
        ("spine1", "ethernet-1/2")
    );
    let Peer::Veth { b } = &l.peer else { panic!() };
    assert_eq!(
        (b.node.as_str(), b.iface.as_str(), b.written()),
        ("leaf2", "e1-1", "ethernet-1/1")
    );
}

#[test]
fn explicit_template_variables_win_over_the_ones_beside_the_file() {
    let dir = std::env::temp_dir().join(format!("lw-cp-vars-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let vars = dir.join("other.json");
    std::fs::write(
        &vars,
        r#"{"lab": "from-json", "mgmt": "172.20.20.0/24", "spines": {"count": 1, "prefix": "s", "type": "t"}, "leaves": {}, "images": {}}"#,
    )
    .unwrap();
    let src = Source::from_file(&corpus_dir().join("compat-template.clab.yml"))
        .unwrap()
        .with_vars(vec![vars]);
    let opts = Options {
        env: &test_env,
        runtime: None,
        read_file: &read_file,
    };
    let lab = load(&src, &opts)
        .unwrap_or_else(|e| panic!("{}", e.0.render(false)))
        .lab;
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(lab.name, "from-json");
    assert_eq!(lab.nodes.len(), 1);
    assert_eq!(lab.nodes[0].mgmt_ipv4, Some(Ipv4Addr::new(172, 20, 20, 11)));
}

#[test]
fn bridges_in_namespaces_and_containers_outside_the_lab() {
    let loaded = load_file("compat-netns.clab.yml");
    let lab = &loaded.lab;
    assert_eq!(node(lab, "br01|bp1").netns_bridge(), Some(("br01", "bp1")));
    assert!(!node(lab, "br01|bp1").in_host());
    assert_eq!(
        node(lab, "sidecar").network_mode,
        NetworkMode::Container("started-elsewhere".into())
    );
    let w = loaded.warnings.render(false);
    assert!(
        w.contains("deploy waits for a container of that name"),
        "{w}"
    );
}

/// Nodes that inherit the same `env`/`labels`/`sysctls` levels share one map; a node whose map holds
/// a `__clab…` placeholder, or that adds entries of its own, gets a map of its own with the right
/// values; precedence is unchanged (node over group over kind over defaults).
#[test]
fn inherited_maps_are_shared_and_placeholders_stay_per_node() {
    let text = "name: shr\ntopology:\n  defaults:\n    kind: linux\n    env: {A: d, B: d}\n    labels: {L: d}\n\
                \x20 kinds:\n    linux:\n      env: {B: k}\n\
                \x20 nodes:\n    n1: {}\n    n2: {}\n    n3: {env: {A: own}}\n    n4: {labels: {W: __clabNodeName__}}\n";
    let src = Source::from_text("shr.clab.yml", text, Path::new("/tmp"));
    let opts = Options {
        env: &test_env,
        runtime: None,
        read_file: &read_file,
    };
    let lab = load(&src, &opts).expect("valid").lab;
    let node = |n: &str| lab.nodes.iter().find(|x| x.name == n).expect(n);
    let (n1, n2, n3, n4) = (node("n1"), node("n2"), node("n3"), node("n4"));
    assert!(std::sync::Arc::ptr_eq(&n1.env, &n2.env));
    assert!(std::sync::Arc::ptr_eq(&n1.labels, &n2.labels));
    assert_eq!(n1.env.get("A").map(String::as_str), Some("d"));
    assert_eq!(n1.env.get("B").map(String::as_str), Some("k"));
    assert!(!std::sync::Arc::ptr_eq(&n1.env, &n3.env));
    assert_eq!(n3.env.get("A").map(String::as_str), Some("own"));
    assert_eq!(n3.env.get("B").map(String::as_str), Some("k"));
    assert_eq!(n4.labels.get("W").map(String::as_str), Some("n4"));
    assert_eq!(n4.labels.get("L").map(String::as_str), Some("d"));
}

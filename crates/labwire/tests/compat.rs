//! End-to-end tests of containerlab's real-world spellings: vendor interface names and names too
//! long for Linux become Linux interfaces that keep the written name as their alias and
//! alternative name (`ip link show ethernet-1-1` finds `e1-1`), in native and docker nodes, on
//! bridge ports and on host links; the engine fields of docker nodes reach the container.
//!
//! They run as root. Labs `cp-*`, management networks `cp-*` on 10.171.x.0/24 and fd00:171:x::/64;
//! link addresses in 10.171.1xx.0/24.

mod common;

use common::*;
use serde_json::Value;

/// `ip -j -d link show DEV` in namespace `ns` (`None`: the host), or `None` when there is none.
fn link_by_name(ns: Option<&str>, dev: &str) -> Option<Value> {
    let mut args = Vec::new();
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    args.extend(["-j", "-d", "link", "show", "dev", dev]);
    let out = ip(&args);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()?
        .as_array()?
        .first()
        .cloned()
}

/// The interface `written` resolves to in `ns`, found through its alternative name, with its
/// Linux name, alias and altnames checked.
#[track_caller]
fn assert_written_name(ns: Option<&str>, written: &str, linux: Option<&str>) -> String {
    let alt: String = written
        .chars()
        .map(|c| if c == '/' || c == ' ' { '-' } else { c })
        .collect();
    let l = link_by_name(ns, &alt)
        .unwrap_or_else(|| panic!("no interface answers to `{alt}` in {ns:?}"));
    let name = l["ifname"].as_str().unwrap_or_default().to_string();
    if let Some(linux) = linux {
        assert_eq!(name, linux, "{written}: {l}");
    }
    assert!(name.len() <= 15 && name != alt, "{written}: {l}");
    assert_eq!(l["ifalias"].as_str(), Some(written), "{written}: {l}");
    let altnames: Vec<&str> = l["altnames"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(altnames.contains(&alt.as_str()), "{written}: {l}");
    name
}

const NAMES_YAML: &str = r#"name: cp-names
mgmt: {network: cp-names, ipv4-subnet: 10.171.0.0/24, ipv6-subnet: "fd00:171::/64"}
topology:
  nodes:
    srl1: {kind: nokia_srlinux}
    iol1: {kind: cisco_iol}
    sim1: {kind: nokia_srsim}
    h1: {kind: linux}
    cpbr1: {kind: bridge}
  links:
    - endpoints: ["srl1:ethernet-1/1", "iol1:Ethernet0/1"]
      ipv4: [10.171.101.1/30, 10.171.101.2/30]
    - endpoints: ["sim1:1/1/c1/1", "h1:an-interface-name-too-long"]
      ipv4: [10.171.102.1/30, 10.171.102.2/30]
    - endpoints: ["srl1:ethernet-1/3/1", "cpbr1:cp-bridge-port-long-1"]
    - endpoints: ["h1:eth2", "host:cp-host-side-too-long"]
"#;

#[test]
fn vendor_and_long_interface_names_are_kept_as_altnames() {
    let lab = TestLab::new(
        "cp-names",
        "cp-names",
        "cp-names",
        &["srl1", "iol1", "sim1", "h1"],
        NAMES_YAML,
    );
    lab.deploy();
    let ns = |n: &str| lab.netns(n);

    // Vendor names map per kind; the written name is the alias and (made valid) an altname.
    assert_written_name(Some(&ns("srl1")), "ethernet-1/1", Some("e1-1"));
    assert_written_name(Some(&ns("srl1")), "ethernet-1/3/1", Some("e1-3-1"));
    assert_written_name(Some(&ns("iol1")), "Ethernet0/1", Some("eth1"));
    assert_written_name(Some(&ns("sim1")), "1/1/c1/1", Some("e1-1-c1-1"));
    // Too long for Linux: a generated name.
    assert_written_name(Some(&ns("h1")), "an-interface-name-too-long", None);
    // Host side: a bridge port and a host link.
    let port = assert_written_name(None, "cp-bridge-port-long-1", None);
    let port_link = link_by_name(None, &port).expect("bridge port");
    assert_eq!(port_link["master"].as_str(), Some("cpbr1"), "{port_link}");
    let host_end = assert_written_name(None, "cp-host-side-too-long", None);

    // The mapped links carry traffic.
    lab.assert_ping("srl1", "10.171.101.2");
    lab.assert_ping("sim1", "10.171.102.2");

    // topology-data.json and the graph show the names as written.
    let data = lab.topology_data();
    let text = data.to_string();
    for written in [
        "ethernet-1/1",
        "Ethernet0/1",
        "1/1/c1/1",
        "an-interface-name-too-long",
        "cp-host-side-too-long",
    ] {
        assert!(
            text.contains(&format!("\"interface\":\"{written}\"")),
            "{written} in {text}"
        );
    }
    assert!(
        text.contains("\"linux-interface\":\"e1-1\""),
        "Linux name beside the written one: {text}"
    );
    let mut graph = lab.cmd();
    graph.args(["graph", "-t"]).arg(&lab.file).arg("--mermaid");
    let graph = common::text(&run_ok(graph).stdout);
    assert!(
        graph.contains("ethernet-1/1") && graph.contains("Ethernet0/1"),
        "{graph}"
    );

    // inspect --interfaces shows both names.
    let mut inspect = lab.cmd();
    inspect
        .args(["inspect", "-t"])
        .arg(&lab.file)
        .args(["--interfaces", "--format", "json"]);
    let rows: Value = serde_json::from_slice(&run_ok(inspect).stdout).expect("inspect JSON");
    let srl = rows["cp-names"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["node"] == "srl1" && r["interface"] == "ethernet-1/1")
        })
        .unwrap_or_else(|| panic!("srl1 ethernet-1/1 in {rows}"));
    assert_eq!(srl["linux_interface"], "e1-1", "{srl}");
    assert_eq!(srl["peer"], "iol1:Ethernet0/1", "{srl}");

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&[port, host_end]);
}

const IMAGE: &str = "lwt-busybox:cp";

#[test]
fn docker_nodes_get_mapped_names_and_engine_fields() {
    DOCKER.ready_with_busybox(IMAGE);
    let yaml = format!(
        r#"name: cp-dk
mgmt: {{network: cp-dk, ipv4-subnet: 10.171.2.0/24, ipv6-subnet: "fd00:171:2::/64"}}
topology:
  kinds:
    nokia_srlinux:
      runtime: docker
      image: {IMAGE}
      cmd: sleep 3600
      tmpfs:
        /scratch: size=8m
      security-opts: [no-new-privileges]
      pid-mode: host
      cgroup-parent: cp-dk.slice
      volumes: [cp-dk-vol:/vol]
  nodes:
    srl1: {{kind: nokia_srlinux}}
    srl2: {{kind: nokia_srlinux, privileged: true}}
  links:
    - endpoints: ["srl1:ethernet-1/1", "srl2:ethernet-1/1"]
      ipv4: [10.171.111.1/30, 10.171.111.2/30]
"#
    );
    let lab = TestLab::new("cp-dk", "cp-dk", "cp-dk", &["srl1", "srl2"], &yaml);
    lab.deploy();
    for n in ["srl1", "srl2"] {
        assert_written_name(Some(&lab.netns(n)), "ethernet-1/1", Some("e1-1"));
    }
    lab.assert_ping("srl1", "10.171.111.2");

    let inspect = DOCKER.ok(&["inspect", &lab.long_name("srl1")]);
    let c: Value = serde_json::from_str(&inspect).expect("docker inspect JSON");
    let hc = &c[0]["HostConfig"];
    assert_eq!(hc["Tmpfs"]["/scratch"].as_str(), Some("size=8m"), "{hc}");
    assert_eq!(hc["PidMode"].as_str(), Some("host"), "{hc}");
    assert_eq!(hc["CgroupParent"].as_str(), Some("cp-dk.slice"), "{hc}");
    let sec = hc["SecurityOpt"].to_string();
    assert!(sec.contains("no-new-privileges"), "{hc}");
    assert!(hc["Binds"].to_string().contains("cp-dk-vol:/vol"), "{hc}");

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    let _ = DOCKER.run(&["volume", "rm", "cp-dk-vol"]);
    // With the cgroupfs driver the engine leaves the (empty) parent cgroup behind.
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/memory"] {
        let _ = std::fs::remove_dir(format!("{root}/cp-dk.slice"));
    }
    lab.assert_nothing_left(&[]);
}

#[test]
fn bridge_inside_a_node_namespace() {
    let yaml = r#"name: cp-bns
mgmt: {network: cp-bns, ipv4-subnet: 10.171.3.0/24, ipv6-subnet: "fd00:171:3::/64"}
topology:
  nodes:
    cpbr0|bp1:
      kind: bridge
      network-mode: container:bp1
    bp1:
      kind: linux
      exec:
        - ip address add dev cpbr0 10.171.121.1/24
    c1:
      kind: linux
      exec:
        - ip address add dev eth1 10.171.121.2/24
  links:
    - endpoints: ["c1:eth1", "cpbr0|bp1:c1eth1"]
"#;
    let lab = TestLab::new("cp-bns", "cp-bns", "cp-bns", &["bp1", "c1"], yaml);
    lab.deploy();
    // The bridge is in bp1's namespace, not the host's; the link's end is its port there.
    assert!(
        link_by_name(None, "cpbr0").is_none(),
        "cpbr0 leaked into the host"
    );
    let br = link_by_name(Some(&lab.netns("bp1")), "cpbr0").expect("cpbr0 in bp1");
    assert_eq!(br["linkinfo"]["info_kind"].as_str(), Some("bridge"), "{br}");
    let port = link_by_name(Some(&lab.netns("bp1")), "c1eth1").expect("c1eth1 in bp1");
    assert_eq!(port["master"].as_str(), Some("cpbr0"), "{port}");
    lab.assert_ping("c1", "10.171.121.1");
    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&[]);
}

/// Removes a container when dropped.
struct RmContainer(&'static str);

impl Drop for RmContainer {
    fn drop(&mut self) {
        let _ = DOCKER.run(&["rm", "-f", self.0]);
    }
}

#[test]
fn external_containers_are_joined_and_waited_for() {
    DOCKER.ready_with_busybox(IMAGE);
    let _c1 = RmContainer("cp-ext1");
    let _c2 = RmContainer("cp-ext2");
    for c in ["cp-ext1", "cp-ext2"] {
        let _ = DOCKER.run(&["rm", "-f", c]);
    }
    DOCKER.ok(&[
        "run",
        "-d",
        "--name",
        "cp-ext1",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "3600",
    ]);
    let yaml = format!(
        r#"name: cp-ext
mgmt: {{network: cp-ext, ipv4-subnet: 10.171.4.0/24, ipv6-subnet: "fd00:171:4::/64"}}
topology:
  nodes:
    cp-ext1: {{kind: ext-container}}
    h1: {{kind: linux}}
    n1:
      kind: linux
      runtime: docker
      image: {IMAGE}
      cmd: sleep 3600
      network-mode: container:cp-ext2
  links:
    - endpoints: ["h1:eth1", "cp-ext1:an-ext-interface-too-long"]
      ipv4: [10.171.131.1/30, 10.171.131.2/30]
"#
    );
    let lab = TestLab::new("cp-ext", "cp-ext", "cp-ext", &["h1"], &yaml);
    // cp-ext2 starts only after the deploy began: the deploy waits for it.
    let starter = std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(2));
        DOCKER.ok(&[
            "run",
            "-d",
            "--name",
            "cp-ext2",
            "--network",
            "none",
            IMAGE,
            "sleep",
            "3600",
        ]);
    });
    let out = lab.try_deploy();
    starter.join().expect("starter thread");
    assert!(out.status.success(), "deploy: {}", describe(&out));
    assert!(
        text(&out.stderr).contains("waiting for container cp-ext2"),
        "{}",
        describe(&out)
    );

    // The ext-container got the link (and its address) in its own namespace, no eth0 of ours.
    let pid = DOCKER.ok(&["inspect", "-f", "{{.State.Pid}}", "cp-ext1"]);
    let ns_of = |pid: &str| std::fs::read_link(format!("/proc/{}/ns/net", pid.trim())).unwrap();
    let ext_links = ip_json(&["-n", &lab.netns("cp-ext1"), "-j", "-d", "link"]).to_string();
    assert!(
        ext_links.contains("\"ifalias\":\"an-ext-interface-too-long\""),
        "{ext_links}"
    );
    lab.assert_ping("h1", "10.171.131.2");
    // n1 shares cp-ext2's network namespace.
    let n1_pid = DOCKER.ok(&["inspect", "-f", "{{.State.Pid}}", &lab.long_name("n1")]);
    let ext2_pid = DOCKER.ok(&["inspect", "-f", "{{.State.Pid}}", "cp-ext2"]);
    assert_eq!(ns_of(&n1_pid), ns_of(&ext2_pid));

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    // Containers started outside the lab keep running.
    let running = DOCKER.ok(&["inspect", "-f", "{{.State.Running}}", "cp-ext1"]);
    assert_eq!(running.trim(), "true");
    assert_eq!(
        ns_of(&DOCKER.ok(&["inspect", "-f", "{{.State.Pid}}", "cp-ext1"])),
        ns_of(&pid)
    );
    lab.assert_nothing_left(&[]);
}

#[test]
fn a_template_topology_deploys_with_its_variables() {
    let template = r#"name: {{ .lab }}
mgmt: {network: cp-tpl, ipv4-subnet: 10.171.5.0/24, ipv6-subnet: "fd00:171:5::/64"}
topology:
  nodes:
{{- range $i := seq 1 .hosts }}
    h{{ $i }}:
      kind: linux
      exec:
        - ip address add {{ printf "10.171.141.%d/24" $i }} dev eth1
{{- end }}
    cptplsw: {kind: bridge}
  links:
{{- range $i := seq 1 .hosts }}
    - endpoints: ["h{{ $i }}:eth1", "cptplsw:{{ printf "cptpl-p%d" $i }}"]
{{- end }}
"#;
    let lab = TestLab::with_file(
        "cp-tpl",
        "cp-tpl",
        "cp-tpl",
        &["h1", "h2", "h3"],
        "lab.clab.gotmpl",
        template,
    );
    let vars = lab.dir.join("three.yml");
    std::fs::write(&vars, "lab: cp-tpl\nhosts: 3\n").expect("write vars");
    let mut deploy = lab.deploy_cmd();
    deploy.arg("--vars").arg(&vars);
    let out = run_timeout(deploy, std::time::Duration::from_secs(180));
    assert!(out.status.success(), "deploy: {}", describe(&out));
    lab.assert_ping("h1", "10.171.141.3");
    assert!(
        link_by_name(None, "cptpl-p2").is_some(),
        "bridge port of h2"
    );

    let mut destroy = lab.cmd();
    destroy
        .args(["destroy", "-t"])
        .arg(&lab.file)
        .arg("--vars")
        .arg(&vars)
        .arg("--cleanup");
    let out = run_ok(destroy);
    assert!(text(&out.stderr).contains("lab cp-tpl destroyed"));
    lab.assert_nothing_left(&[]);
}

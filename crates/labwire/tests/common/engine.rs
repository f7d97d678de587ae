//! Container engines as their command-line tools drive them (`docker`, `podman`): started when
//! they do not answer, the busybox test image imported, and the lab mixing engine nodes with a
//! native one that docker.rs and podman.rs both check.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;

/// A container engine as its command-line tool drives it (`docker`, `podman`), with how to tell
/// that its API answers and how to start it when not.
#[derive(Clone, Copy)]
pub struct EngineCli {
    /// The tool, which is also the runtime's name in topologies.
    pub cli: &'static str,
    /// A command (argv) that succeeds when labwire's API socket of the engine answers.
    pub probe: &'static [&'static str],
    /// A shell command starting the engine detached (it outlives the test: other test binaries
    /// and runs use it).
    pub start: &'static str,
    /// Where `start` logs.
    pub log: &'static str,
}

pub const DOCKER: EngineCli = EngineCli {
    cli: "docker",
    probe: &["docker", "info"],
    start: "cd / && nohup dockerd >/tmp/lwt-dockerd.log 2>&1 &",
    log: "/tmp/lwt-dockerd.log",
};

/// Podman's Docker-compatible API service at its rootful default socket (scripts/test starts the
/// same).
pub const PODMAN: EngineCli = EngineCli {
    cli: "podman",
    probe: &[
        "podman",
        "--remote",
        "--url",
        "unix:///run/podman/podman.sock",
        "info",
    ],
    start: "mkdir -p /run/podman && cd / && nohup podman system service --time=0 \
            unix:///run/podman/podman.sock >/tmp/lwt-podman.log 2>&1 &",
    log: "/tmp/lwt-podman.log",
};

impl EngineCli {
    /// `<cli> ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(self.cli);
        c.args(args).stdin(Stdio::null());
        run_timeout(c, Duration::from_secs(60))
    }

    /// `<cli> ARGS`, which must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{} {args:?} failed: {}",
            self.cli,
            describe(&out)
        );
        text(&out.stdout)
    }

    fn answers(&self) -> bool {
        let mut c = Command::new(self.probe[0]);
        c.args(&self.probe[1..]).stdin(Stdio::null());
        run_timeout(c, Duration::from_secs(60)).status.success()
    }

    /// The engine answering: started (its `start` command) when it does not, then waited for
    /// up to 30 s.
    pub fn ensure_running(&self) {
        if self.answers() {
            return;
        }
        let st = Command::new("sh")
            .args(["-c", self.start])
            .stdin(Stdio::null())
            .status()
            .expect("run sh");
        assert!(st.success(), "could not start {}: {}", self.cli, self.start);
        let start = Instant::now();
        while !self.answers() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{} did not answer within 30 s; see {}",
                self.cli,
                self.log
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The engine answering and holding the busybox image `image` (see
    /// [`EngineCli::ensure_busybox_image`]), checked once per test binary, engine and image; tests
    /// of one binary running in parallel wait for the first to finish the import.
    pub fn ready_with_busybox(&self, image: &str) {
        static READY: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
        let key = format!("{} {image}", self.cli);
        if ready.contains(&key) {
            return;
        }
        require_root();
        self.ensure_running();
        self.ensure_busybox_image(image);
        ready.push(key);
    }

    /// `image` in the engine: when missing, a `<cli> import` of a root of the host's static
    /// busybox (no registry is reachable), running `sleep` as its command.
    pub fn ensure_busybox_image(&self, image: &str) {
        if self.run(&["image", "inspect", image]).status.success() {
            return;
        }
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .expect("a static busybox (Debian package busybox-static)");
        let dir =
            std::env::temp_dir().join(format!("lwt-{}-image-{}", self.cli, std::process::id()));
        let root = dir.join("root");
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
            std::fs::create_dir_all(root.join(d)).expect("create image dirs");
        }
        std::fs::copy(busybox, root.join("bin/busybox")).expect("copy busybox");
        for applet in [
            "sh", "ls", "cat", "sleep", "ip", "ping", "env", "hostname", "echo", "grep",
        ] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
                .expect("symlink applet");
        }
        let tar = dir.join("rootfs.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("run tar");
        assert!(st.success(), "tar of the busybox root failed");
        self.ok(&[
            "import",
            "-c",
            r#"CMD ["/bin/sleep", "1000000"]"#,
            tar.to_str().expect("utf-8 path"),
            image,
        ]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Ids of every container (running or not) labelled `containerlab=<lab>`.
    pub fn containers_of(&self, lab: &str) -> Vec<String> {
        self.ok(&[
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=containerlab={lab}"),
        ])
        .lines()
        .map(str::to_string)
        .collect()
    }
}

/// The addressing of a lab of [`mixed_yaml`]: management on `<v4>.0.0/24` and `<v6>::/64`, the
/// two data links on `<v4>.1.0/24` and `<v4>.2.0/24` (`v4` is the first two octets).
pub struct MixedNet {
    pub v4: &'static str,
    pub v6: &'static str,
}

/// Lab `lab` (management network of the same name): container nodes `a` (with `env: FOO=bar`)
/// and `b` on `runtime` from `image`, native node `c`; links a:eth1–b:eth1 and b:eth2–c:eth1.
/// The host port a docker node of the mixed lab publishes its port 8080 on (127.0.0.1 only).
pub const MIXED_HOST_PORT: u16 = 18_081;

pub fn mixed_yaml(lab: &str, runtime: &str, image: &str, net: &MixedNet) -> String {
    let MixedNet { v4, v6 } = net;
    // Docker nodes sit on the engine's network, where `ports` publish.
    let ports = if runtime == "docker" {
        format!(", ports: [\"127.0.0.1:{MIXED_HOST_PORT}:8080\"]")
    } else {
        String::new()
    };
    format!(
        "name: {lab}\n\
         mgmt: {{network: {lab}, ipv4-subnet: {v4}.0.0/24, ipv6-subnet: \"{v6}::/64\"}}\n\
         topology:\n  nodes:\n\
         \x20   a: {{kind: linux, runtime: {runtime}, image: \"{image}\", env: {{FOO: bar}}{ports}}}\n\
         \x20   b: {{kind: linux, runtime: {runtime}, image: \"{image}\"}}\n\
         \x20   c: {{kind: linux}}\n\
         \x20 links:\n\
         \x20   - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [\"{v4}.1.1/24\", \"{v4}.1.2/24\"]\n\
         \x20   - endpoints: [\"b:eth2\", \"c:eth1\"]\n      ipv4: [\"{v4}.2.1/24\", \"{v4}.2.2/24\"]\n"
    )
}

/// Deploys a lab of [`mixed_yaml`] made with `engine`, checks it (pings over both links and the
/// management network, the containers' labels, env and hostname as the engine shows them, the
/// engine's ids in `labwire inspect`), destroys it and checks that nothing is left: no
/// container, netns entry or /etc/hosts block.
pub fn check_mixed_lab(engine: &EngineCli, lab: &TestLab, net: &MixedNet) {
    let v4 = net.v4;
    lab.deploy();

    // Data links: container—container and container—native.
    lab.assert_ping("a", &format!("{v4}.1.2"));
    lab.assert_ping("b", &format!("{v4}.1.1"));
    lab.assert_ping("b", &format!("{v4}.2.2"));
    lab.assert_ping("c", &format!("{v4}.2.1"));
    // The management network, between a container and a native node and between containers.
    let (a4, a6) = lab.eth0_addrs("a");
    let (b4, _) = lab.eth0_addrs("b");
    let (c4, c6) = lab.eth0_addrs("c");
    let (a4, a6, b4, c4, c6) = (
        a4.expect("a has an IPv4 management address"),
        a6.expect("a has an IPv6 management address"),
        b4.expect("b has an IPv4 management address"),
        c4.expect("c has an IPv4 management address"),
        c6.expect("c has an IPv6 management address"),
    );
    assert!(
        a4.starts_with(&format!("{v4}.0.")),
        "a's management address {a4}"
    );
    lab.assert_ping("c", &a4);
    lab.assert_ping("a", &c4);
    lab.assert_ping("a", &b4);
    lab.assert_ping("a", &c6);
    lab.assert_ping("c", &a6);

    // The containers as the engine sees them.
    let ids = engine.containers_of(&lab.name);
    assert_eq!(ids.len(), 2, "containers of {}: {ids:?}", lab.name);
    let a_name = lab.long_name("a");
    let info: Value =
        serde_json::from_str(&engine.ok(&["inspect", &a_name])).expect("inspect JSON");
    let labels = &info[0]["Config"]["Labels"];
    let file = lab.file.display().to_string();
    let node_dir = lab.lab_dir().join("a").display().to_string();
    for (k, v) in [
        ("containerlab", lab.name.as_str()),
        ("clab-node-name", "a"),
        ("clab-node-longname", a_name.as_str()),
        ("clab-node-kind", "linux"),
        ("clab-node-type", ""),
        ("clab-node-group", ""),
        ("clab-node-lab-dir", node_dir.as_str()),
        ("clab-topo-file", file.as_str()),
    ] {
        assert_eq!(labels[k].as_str(), Some(v), "label {k} in {labels}");
    }
    // Docker containers join the lab's management network as a Docker network (its bridge is the
    // management bridge the native node joins); Podman containers are wired by labwire.
    let engine_net = engine.cli == "docker";
    assert_eq!(
        info[0]["HostConfig"]["NetworkMode"].as_str(),
        Some(if engine_net {
            lab.name.as_str()
        } else {
            "none"
        }),
        "network mode of {a_name}"
    );
    if engine_net {
        let net: Value = serde_json::from_str(&engine.ok(&["network", "inspect", &lab.name]))
            .expect("network inspect JSON");
        let attached = net[0]["Containers"].as_object().map_or(0, |m| m.len());
        assert_eq!(attached, 2, "containers on network {}: {net}", lab.name);
        assert_eq!(
            net[0]["Options"]["com.docker.network.bridge.name"].as_str(),
            Some(lab.bridge.as_str())
        );
        // `ports`: a's port 8080, published on the host's loopback.
        engine.ok(&[
            "exec", "-d", &a_name, "busybox", "httpd", "-p", "8080", "-h", "/etc",
        ]);
        let page = poll(Duration::from_secs(20), || {
            use std::io::Write as _;
            let mut conn = std::net::TcpStream::connect(("127.0.0.1", MIXED_HOST_PORT))
                .map_err(|e| e.to_string())?;
            conn.set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            conn.write_all(b"GET /hostname HTTP/1.0\r\n\r\n")
                .map_err(|e| e.to_string())?;
            let mut page = String::new();
            conn.read_to_string(&mut page).map_err(|e| e.to_string())?;
            if page.contains("200") {
                Ok(page)
            } else {
                Err(page)
            }
        })
        .unwrap_or_else(|e| panic!("GET 127.0.0.1:{MIXED_HOST_PORT}/hostname: {e}"));
        assert!(page.ends_with("\na\n"), "published port served: {page}");
    }
    let env = engine.ok(&["exec", &a_name, "env"]);
    for line in [
        format!("CLAB_LABEL_CONTAINERLAB={}", lab.name),
        "CLAB_LABEL_CLAB_NODE_NAME=a".to_string(),
        format!("CLAB_LABEL_CLAB_NODE_LONGNAME={a_name}"),
        "CLAB_LABEL_CLAB_NODE_KIND=linux".to_string(),
        "CLAB_INTFS=1".to_string(),
        "FOO=bar".to_string(),
    ] {
        assert!(
            env.lines().any(|l| l == line),
            "{line} not in the container's env:\n{env}"
        );
    }
    let hostname = engine.ok(&["exec", &lab.long_name("b"), "hostname"]);
    assert_eq!(hostname.trim(), "b");
    for n in ["a", "b", "c"] {
        assert!(
            Path::new("/run/netns").join(lab.netns(n)).exists(),
            "/run/netns/{} is missing",
            lab.netns(n)
        );
    }

    // inspect lists the engine's ids.
    let rows = lab.inspect_json();
    let rows = rows[&lab.name]
        .as_array()
        .unwrap_or_else(|| panic!("rows of {}", lab.name));
    for (node, runtime) in [("a", engine.cli), ("b", engine.cli), ("c", "native")] {
        let long = lab.long_name(node);
        let row = rows
            .iter()
            .find(|r| r["name"] == long.as_str())
            .unwrap_or_else(|| panic!("no inspect row for {long}: {rows:?}"));
        assert_eq!(row["runtime"], runtime, "{row}");
        assert_eq!(row["state"], "running", "{row}");
        if runtime == engine.cli {
            let id = engine.ok(&["inspect", "-f", "{{.Id}}", &long]);
            assert_eq!(
                row["container_id"].as_str(),
                Some(&id.trim()[..12]),
                "{row}"
            );
        }
    }
    assert!(hosts_block(&read_etc_hosts(), &lab.name).is_some());

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy failed: {}", describe(&out));
    assert!(
        engine.containers_of(&lab.name).is_empty(),
        "containers left after destroy"
    );
    if engine_net {
        let mut c = Command::new(engine.cli);
        c.args(["network", "inspect", &lab.name]);
        let out = run_timeout(c, Duration::from_secs(30));
        assert!(
            !out.status.success(),
            "network {} left after destroy",
            lab.name
        );
    }
    assert!(
        hosts_block(&read_etc_hosts(), &lab.name).is_none(),
        "/etc/hosts still has the lab's block"
    );
    lab.assert_nothing_left(&[]);
}

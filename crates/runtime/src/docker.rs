//! The container runtimes: a node is a container made through the Docker Engine API (bollard),
//! named and labelled as containerlab names and labels it. The engine is Docker's
//! (`runtime: docker`) or Podman's Docker-compatible API service (`runtime: podman`): one client,
//! one request, with the few differences [`EngineKind`] names.
//!
//! Containers are created with `network_mode: none` (unless the node shares the host's or another
//! node's network): the `lab` layer then wires the management `eth0` and every data link into the
//! container's network namespace (`/proc/<pid>/ns/net`) with the same code as native nodes, so no
//! engine network is needed and a lab may mix native, docker and podman nodes.
//!
//! bollard is async; this module keeps one small current-thread tokio runtime per [`Engine`] and
//! blocks on it, so callers stay synchronous (several threads may block on it at once).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, DeviceMapping, EndpointIpamConfig, EndpointSettings, HealthConfig,
    HostConfig, HostConfigCgroupnsModeEnum, Ipam, IpamConfig, NetworkCreateRequest,
    NetworkingConfig, PortBinding, ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use topology::{MgmtNet, NetworkMode, Node, Runtime};

use crate::network::NodeNetwork;
use crate::node::{self, container_argv, is_init_system, split_or_whole, NodeContext};
use crate::{Error, Result};

/// Where the Docker engine listens unless `DOCKER_HOST` says otherwise.
pub const SOCKET: &str = "/var/run/docker.sock";

/// Where Podman's API service listens (rootful) unless `LABWIRE_PODMAN_SOCKET` says otherwise.
pub const PODMAN_SOCKET: &str = "/run/podman/podman.sock";

/// Which engine makes a node's container. Recorded in the lab's journal with each container, so
/// destroy asks the engine that made it; journals written before Podman existed name none and
/// mean Docker (the default).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    #[default]
    Docker,
    Podman,
}

impl EngineKind {
    /// The engine of a runtime; `None` for runtimes that are not containers of an engine.
    pub fn of(runtime: Runtime) -> Option<EngineKind> {
        match runtime {
            Runtime::Docker => Some(EngineKind::Docker),
            Runtime::Podman => Some(EngineKind::Podman),
            _ => None,
        }
    }

    /// The runtime's name in topologies, which is also the engine's command-line tool.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Docker => "docker",
            EngineKind::Podman => "podman",
        }
    }

    /// How messages name the engine.
    pub fn product(self) -> &'static str {
        match self {
            EngineKind::Docker => "the Docker engine",
            EngineKind::Podman => "Podman",
        }
    }

    /// The engine's socket: `DOCKER_HOST` (a `unix://` address) for Docker,
    /// `LABWIRE_PODMAN_SOCKET` (a path or a `unix://` address) for Podman, else the default.
    pub fn socket(self) -> Result<PathBuf> {
        let var = match self {
            EngineKind::Docker => "DOCKER_HOST",
            EngineKind::Podman => "LABWIRE_PODMAN_SOCKET",
        };
        socket_from(self, std::env::var(var).ok().as_deref()).map_err(Error::EngineAddress)
    }

    /// The error when nothing answers at `socket`.
    fn no_engine(
        self,
        socket: &Path,
        why: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::NoEngine {
            kind: self,
            socket: socket.to_path_buf(),
            source: why.into(),
        }
    }
}

/// What to say when engine `kind` does not answer at `socket` (the reason follows as the source).
pub(crate) fn no_engine_message(kind: EngineKind, socket: &Path) -> String {
    let socket = socket.display();
    match kind {
        EngineKind::Docker => {
            format!("the docker runtime needs a running Docker engine at {socket}; start dockerd")
        }
        EngineKind::Podman => format!(
            "the podman runtime needs Podman's API service at {socket}; start it with: \
             podman system service --time=0 unix://{socket}"
        ),
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The socket of `kind` given the value of its environment variable (`DOCKER_HOST`,
/// `LABWIRE_PODMAN_SOCKET`), unset or empty meaning the default.
fn socket_from(kind: EngineKind, value: Option<&str>) -> Result<PathBuf, String> {
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    match (kind, value) {
        (EngineKind::Docker, None) => Ok(PathBuf::from(SOCKET)),
        (EngineKind::Podman, None) => Ok(PathBuf::from(PODMAN_SOCKET)),
        (_, Some(v)) => match v.strip_prefix("unix://") {
            Some(path) if path.starts_with('/') => Ok(PathBuf::from(path)),
            None if kind == EngineKind::Podman && v.starts_with('/') => Ok(PathBuf::from(v)),
            _ => Err(match kind {
                EngineKind::Docker => format!(
                    "DOCKER_HOST={v}: labwire reaches the Docker engine only through a local socket \
                     (unix:///path); unset DOCKER_HOST for {SOCKET}"
                ),
                EngineKind::Podman => format!(
                    "LABWIRE_PODMAN_SOCKET={v}: expected the path of Podman's API socket \
                     (/path or unix:///path)"
                ),
            }),
        },
    }
}

/// A connection to a container engine, with the API version negotiated.
pub struct Engine {
    rt: tokio::runtime::Runtime,
    docker: Docker,
    kind: EngineKind,
    /// The engine that answers, by its `/version` (Podman's service may sit behind `DOCKER_HOST`,
    /// or Docker behind `LABWIRE_PODMAN_SOCKET`): create requests are made for this one.
    serves: EngineKind,
    socket: PathBuf,
    /// Each image's own ENTRYPOINT and CMD, asked once per image rather than once per node.
    image_argv: std::sync::Mutex<HashMap<String, ImageArgv>>,
}

/// An image's ENTRYPOINT and CMD.
type ImageArgv = (Option<Vec<String>>, Option<Vec<String>>);

fn engine_err(op: impl std::fmt::Display) -> impl FnOnce(DockerError) -> Error {
    let op = op.to_string();
    move |source| Error::Engine { op, source }
}

fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// What one container of a lab is made from.
pub struct Container<'a> {
    /// The lab's name, topology file and the node's interface count (labels and variables).
    pub ctx: NodeContext<'a>,
    pub node: &'a Node,
    /// The container name of the node whose network this one shares (`network-mode: container:X`).
    pub share_net_with: Option<&'a str>,
    /// The engine network the container's eth0 joins with the management interface of `net`
    /// (`None`: no engine network; labwire wires eth0 itself).
    pub network: Option<(&'a str, &'a NodeNetwork)>,
}

/// The label marking an engine network labwire made (so only those are ever removed).
pub const NETWORK_LABEL: &str = "labwire";

/// `ExposedPorts` of a create request: `"<port>/<protocol>"` → `{}`.
pub type ExposedPorts = HashMap<String, HashMap<(), ()>>;

/// `ports` as the engine takes them: exposed ports and their host bindings. A range maps port
/// by port (`8000-8001:80-81`; the topology refuses ranges of different lengths).
pub fn port_bindings(n: &Node) -> (ExposedPorts, bollard::models::PortMap) {
    let mut exposed = HashMap::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &n.ports {
        let (c0, c1) = p.container_port;
        for (i, cport) in (c0..=c1).enumerate() {
            let key = format!("{cport}/{}", p.protocol);
            exposed.insert(key.clone(), HashMap::new());
            let host_port = p.host_port.map(|(h0, _)| (usize::from(h0) + i).to_string());
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: p.host_ip.map(|a| a.to_string()),
                    host_port,
                });
        }
    }
    (exposed, bindings)
}

/// containerlab's labels of a node's container.
pub fn labels(c: &Container<'_>) -> BTreeMap<String, String> {
    node::labels(&c.ctx, c.node)
}

/// The environment of a node's container: the rule every runtime follows ([`node::environment`]);
/// the engine adds the image's variables itself.
pub fn environment(c: &Container<'_>) -> BTreeMap<String, String> {
    node::environment(&c.ctx, c.node)
}

/// The node's `security-opts`, after the unconfined profiles a container asked for without
/// `privileged` needs to act as a privileged one.
fn security_opts(n: &Node, privileged: bool) -> Option<Vec<String>> {
    let mut opts: Vec<String> = if privileged {
        Vec::new()
    } else {
        vec![
            "seccomp=unconfined".to_string(),
            "apparmor=unconfined".to_string(),
        ]
    };
    opts.extend(n.security_opts.iter().cloned());
    (!opts.is_empty()).then_some(opts)
}

/// The Engine API request body for a node's container in engine `kind`, its argv judged without
/// the image's config (see [`create_body_for`]).
pub fn create_body(kind: EngineKind, c: &Container<'_>) -> ContainerCreateBody {
    create_body_for(kind, c, is_init_system(&container_argv(c.node, None, None)))
}

/// The Engine API request body for a node's container in engine `kind`; `init` says its PID 1 is
/// an init system.
///
/// An init system gets what `docker run --privileged` of a systemd image needs to boot: a
/// cgroup namespace of its own (on a cgroup v1 or hybrid host the engine's default is the host's,
/// where systemd finds `/proc/1/cgroup` naming `/docker/<id>` that its cgroup mounts, which are
/// that very cgroup, do not have, and exits with "Failed to allocate manager object"),
/// `container=docker` (`container=podman`) in its environment (systemd's container interface) and
/// `SIGRTMIN+3` as the stop signal (the one systemd halts on; it re-executes itself on `SIGTERM`).
pub fn create_body_for(kind: EngineKind, c: &Container<'_>, init: bool) -> ContainerCreateBody {
    let n = c.node;
    let network_mode = match (&n.network_mode, c.share_net_with) {
        (NetworkMode::Host, _) => "host".to_string(),
        (NetworkMode::Container(_), Some(other)) => format!("container:{other}"),
        _ => "none".to_string(),
    };
    let own_net = network_mode == "none";
    // Engine volumes (`name:/path`) go the same way as binds: the engine tells them apart.
    let binds: Vec<String> = n
        .binds
        .iter()
        .map(|b| {
            let mut s = format!("{}:{}", b.source.display(), b.target);
            if !b.options.is_empty() {
                s.push(':');
                s.push_str(&b.options.join(","));
            }
            s
        })
        .chain(n.volumes.iter().cloned())
        .collect();
    // Docker's `privileged` asks runc for every capability the kernel has; where this host's
    // bounding set lacks some (inside another container), runc fails, so the same is asked for
    // without those. Podman's `privileged` already grants only the capabilities of its own
    // bounding set (the same as labwire's), so it is asked for as it is.
    let missing = match kind {
        EngineKind::Docker => caps_missing_from_host(),
        EngineKind::Podman => Vec::new(),
    };
    let privileged = missing.is_empty();
    let host_config = HostConfig {
        privileged: Some(privileged),
        cap_add: (!privileged).then(|| vec!["ALL".to_string()]),
        cap_drop: (!privileged).then_some(missing),
        security_opt: security_opts(n, privileged),
        pid_mode: n.pid_mode.clone(),
        tmpfs: (!n.tmpfs.is_empty()).then(|| n.tmpfs.clone().into_iter().collect()),
        cgroup_parent: n.cgroup_parent.clone(),
        masked_paths: (!privileged).then(Vec::new),
        readonly_paths: (!privileged).then(Vec::new),
        device_cgroup_rules: (!privileged).then(|| vec!["a *:* rwm".to_string()]),
        network_mode: Some(network_mode),
        binds: (!binds.is_empty()).then_some(binds),
        sysctls: Some(sysctls(n, own_net)),
        memory: n.memory_bytes.and_then(|b| i64::try_from(b).ok()),
        nano_cpus: n.cpu.map(|c| (c * 1e9) as i64),
        cpuset_cpus: n.cpu_set.clone(),
        devices: (!n.devices.is_empty()).then(|| n.devices.iter().map(|d| device(d)).collect()),
        dns: n
            .dns
            .as_ref()
            .map(|d| d.servers.iter().map(|s| s.to_string()).collect()),
        dns_search: n.dns.as_ref().map(|d| d.search.clone()),
        dns_options: n.dns.as_ref().map(|d| d.options.clone()),
        restart_policy: n.restart_policy.as_deref().map(restart_policy),
        auto_remove: n.auto_remove.then_some(true),
        cgroupns_mode: match n.cgroupns_mode.as_deref() {
            Some("host") => Some(HostConfigCgroupnsModeEnum::HOST),
            Some("private") => Some(HostConfigCgroupnsModeEnum::PRIVATE),
            _ => init.then_some(HostConfigCgroupnsModeEnum::PRIVATE),
        },
        ulimits: (kind == EngineKind::Podman).then(podman_ulimits),
        ..Default::default()
    };
    let mut env = environment(c);
    if init {
        env.entry("container".to_string())
            .or_insert_with(|| kind.name().to_string());
    }
    ContainerCreateBody {
        image: n.image.clone(),
        hostname: own_net.then(|| n.hostname.clone()),
        user: n.user.clone(),
        env: Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()),
        stop_signal: init.then(|| "SIGRTMIN+3".to_string()),
        cmd: n.cmd.as_deref().map(split_or_whole),
        // `entrypoint: ""` resets the image's. Docker reads an empty Entrypoint so; Podman's
        // compatible API reads it as unset (the image's stays) and resets on `[""]`, which is what
        // `docker run --entrypoint ""` sends.
        entrypoint: n.entrypoint.as_deref().map(split_or_whole).map(|e| {
            if e.is_empty() && kind == EngineKind::Podman {
                vec![String::new()]
            } else {
                e
            }
        }),
        labels: Some(labels(c).into_iter().collect::<HashMap<_, _>>()),
        healthcheck: n
            .healthcheck
            .as_ref()
            .filter(|h| !h.test.is_empty())
            .map(|h| {
                let secs =
                    |s: u64| i64::try_from(s.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX);
                HealthConfig {
                    test: Some(h.test.clone()),
                    interval: Some(secs(h.interval_s)),
                    timeout: Some(secs(h.timeout_s)),
                    retries: Some(i64::from(h.retries)),
                    start_period: Some(secs(h.start_period_s)),
                    start_interval: None,
                }
            }),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// Podman's own default for the open-files and process limits of a container (soft and hard).
const PODMAN_DEFAULT_RLIMIT: u64 = 1 << 20;

/// The open-files and process limits of a Podman container (soft = hard): what Podman would set
/// by itself, kept within the hard limits Podman's own processes end up with.
///
/// Unless a create request names them, Podman asks runc for RLIMIT_NOFILE 2^20 and RLIMIT_NPROC
/// `kernel.pid_max` (else 2^20) in every container. Raising a limit above the current hard limit
/// needs CAP_SYS_RESOURCE, so on a host without it (labwire inside another container, with lower
/// hard limits) runc fails with "error setting rlimit type 7: operation not permitted" and no
/// container starts. At start-up Podman also sets its own limits to those values where it can:
/// lowering always works, so its NPROC hard limit drops to `pid_max` when that is below the
/// inherited one; raising needs the capability. So the values asked for here are at most
/// labwire's hard limits (which the service inherits alike when both start on the same host),
/// 2^20, and for NPROC `pid_max`: within what runc, a child of Podman, may set, and on a host with
/// the capability and room the same as Podman's own choice (or lower).
///
/// Only Podman gets them: Docker sets no limits of its own (a container inherits dockerd's,
/// always valid), and forcing labwire's there would change what docker nodes run with.
pub fn podman_ulimits() -> Vec<ResourcesUlimits> {
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    // labwire's hard limit of a resource (`RLIM_INFINITY` when unknown). A closure: the type of
    // the resource argument differs between C libraries.
    let hard_limit = |resource| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the rlimit it is given.
        if unsafe { libc::getrlimit(resource, &mut lim) } == 0 {
            lim.rlim_max
        } else {
            libc::RLIM_INFINITY
        }
    };
    let nofile = hard_limit(libc::RLIMIT_NOFILE).min(PODMAN_DEFAULT_RLIMIT);
    let nproc = hard_limit(libc::RLIMIT_NPROC)
        .min(PODMAN_DEFAULT_RLIMIT)
        .min(pid_max);
    [("nofile", nofile), ("nproc", nproc)]
        .into_iter()
        .map(|(name, value)| {
            let value = i64::try_from(value).unwrap_or(i64::MAX);
            ResourcesUlimits {
                name: Some(name.to_string()),
                soft: Some(value),
                hard: Some(value),
            }
        })
        .collect()
}

/// `devices` entries as docker's `--device`: `HOST[:CONTAINER[:PERMISSIONS]]`.
fn device(spec: &str) -> DeviceMapping {
    let mut parts = spec.splitn(3, ':');
    let host = parts.next().unwrap_or_default().to_string();
    let inside = parts.next().map_or_else(|| host.clone(), str::to_string);
    DeviceMapping {
        path_on_host: Some(host),
        path_in_container: Some(inside),
        cgroup_permissions: Some(parts.next().unwrap_or("rwm").to_string()),
    }
}

/// `restart-policy` (validated by the topology: no, always, on-failure, unless-stopped).
fn restart_policy(p: &str) -> RestartPolicy {
    RestartPolicy {
        name: Some(match p {
            "always" => RestartPolicyNameEnum::ALWAYS,
            "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
            "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
            _ => RestartPolicyNameEnum::NO,
        }),
        maximum_retry_count: None,
    }
}

/// The node's sysctls; in its own network namespace IPv6 stays enabled (the engine disables it in
/// containers without an IPv6 network, and labwire puts IPv6 management addresses on eth0) unless
/// the node says otherwise.
fn sysctls(n: &Node, own_net: bool) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    if own_net {
        for k in [
            "net.ipv6.conf.all.disable_ipv6",
            "net.ipv6.conf.default.disable_ipv6",
        ] {
            out.insert(k.to_string(), "0".to_string());
        }
    }
    out.extend(n.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// Linux capability names by number.
const CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Capabilities the kernel has but this host's bounding set lacks (the engine runs with the same
/// set as labwire: both inherit it from the host's outermost container, if any).
pub fn caps_missing_from_host() -> Vec<String> {
    let last: usize = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(CAPS.len() - 1);
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        });
    let Some(bounding) = bounding else {
        return Vec::new();
    };
    (0..=last.min(CAPS.len() - 1))
        .filter(|i| bounding & (1u64 << i) == 0)
        .map(|i| CAPS[i].to_string())
        .collect()
}

impl Engine {
    /// Connect to the engine of `kind` at its socket ([`EngineKind::socket`]) and negotiate the API
    /// version it offers.
    pub fn connect(kind: EngineKind) -> Result<Engine> {
        Engine::connect_at(kind, &kind.socket()?)
    }

    /// Connect to the engine of `kind` at `socket` and negotiate the API version it offers
    /// (Podman's compatible API says 1.41 as Debian's docker.io 20.10 does).
    pub fn connect_at(kind: EngineKind, socket: &Path) -> Result<Engine> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(crate::io("start a tokio runtime"))?;
        if !socket.exists() {
            return Err(kind.no_engine(socket, "no such socket"));
        }
        let path = socket
            .to_str()
            .ok_or_else(|| kind.no_engine(socket, "the path is not UTF-8"))?;
        let docker = Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
            .map_err(|e| kind.no_engine(socket, e))?;
        let (docker, version) = rt
            .block_on(async {
                let d = docker.negotiate_version().await?;
                d.ping().await?;
                let v = d.version().await?;
                Ok::<_, DockerError>((d, v))
            })
            .map_err(|e| kind.no_engine(socket, e))?;
        let podman = version
            .components
            .iter()
            .flatten()
            .any(|c| c.name.starts_with("Podman"));
        Ok(Engine {
            rt,
            docker,
            kind,
            serves: if podman {
                EngineKind::Podman
            } else {
                EngineKind::Docker
            },
            socket: socket.to_path_buf(),
            image_argv: Default::default(),
        })
    }

    /// Which engine this was asked to be (the runtime's).
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// Which engine answers at the socket.
    pub fn serves(&self) -> EngineKind {
        self.serves
    }

    /// The socket it was reached at.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The API version in use.
    pub fn api_version(&self) -> String {
        self.docker.client_version().to_string()
    }

    /// Make sure `reference` is in the engine as `image-pull-policy` says (`never` only looks,
    /// `always` pulls, otherwise pull when missing). The error names the image and how to load it.
    pub fn ensure_image(&self, reference: &str, policy: Option<&str>) -> Result<(), String> {
        let present = self.rt.block_on(async {
            match self.docker.inspect_image(reference).await {
                Ok(_) => Ok(true),
                Err(e) if is_not_found(&e) => Ok(false),
                Err(e) => Err(format!(
                    "inspect image `{reference}` in {}: {e}",
                    self.kind.product()
                )),
            }
        })?;
        let policy = policy.map(str::to_ascii_lowercase);
        let pull = match policy.as_deref() {
            Some("never") => false,
            Some("always") => true,
            _ => !present,
        };
        let cli = self.kind.name();
        let hint = format!(
            "make it with `{cli} import ROOTFS.tar {reference}` (or `{cli} load -i IMAGE.tar`)"
        );
        if !pull {
            return if present {
                Ok(())
            } else {
                Err(format!(
                    "image `{reference}` is not in {} (image-pull-policy: never); {hint}",
                    self.kind.product()
                ))
            };
        }
        let (from, tag) = split_reference(reference);
        let opts = CreateImageOptionsBuilder::new()
            .from_image(&from)
            .tag(&tag)
            .build();
        let pulled = self.rt.block_on(async {
            let mut s = self.docker.create_image(Some(opts), None, None);
            while let Some(item) = s.next().await {
                item?;
            }
            Ok::<_, DockerError>(())
        });
        match pulled {
            Ok(()) => Ok(()),
            Err(_) if present => Ok(()),
            Err(e) => Err(format!(
                "image `{reference}` is not in {} and pulling it failed ({e}); {hint}",
                self.kind.product()
            )),
        }
    }

    /// Create a node's container (not started); returns its id.
    pub fn create(&self, c: &Container<'_>) -> Result<String> {
        let name = c.node.long_name.as_str();
        let opts = CreateContainerOptionsBuilder::new().name(name).build();
        // The image's own ENTRYPOINT/CMD count when the node does not replace them.
        let (entrypoint, cmd) = match &c.node.image {
            Some(image) => self.image_argv(image),
            None => (None, None),
        };
        let argv = container_argv(c.node, entrypoint.as_deref(), cmd.as_deref());
        let mut body = create_body_for(self.serves, c, is_init_system(&argv));
        if let Some((name, net)) = c.network {
            self.attach(&mut body, c.node, name, net);
        }
        let r = self
            .rt
            .block_on(self.docker.create_container(Some(opts), body))
            .map_err(engine_err(format!("create container {name}")))?;
        Ok(r.id)
    }

    /// Image `image`'s ENTRYPOINT and CMD (none when the engine does not know the image).
    fn image_argv(&self, image: &str) -> ImageArgv {
        if let Some(a) = self.image_argv.lock().expect("image argv").get(image) {
            return a.clone();
        }
        let config = self
            .rt
            .block_on(self.docker.inspect_image(image))
            .ok()
            .and_then(|i| i.config);
        let argv = (
            config.as_ref().and_then(|c| c.entrypoint.clone()),
            config.and_then(|c| c.cmd),
        );
        self.image_argv
            .lock()
            .expect("image argv")
            .insert(image.to_string(), argv.clone());
        argv
    }

    /// Put a container's eth0 on engine network `net` with the node's management addresses and
    /// MAC, and publish its `ports` there.
    fn attach(&self, body: &mut ContainerCreateBody, n: &Node, net: &str, nw: &NodeNetwork) {
        let eth0 = nw.mgmt();
        let mac = eth0.map_or_else(|| n.mgmt_mac.to_string(), |i| i.mac.to_string());
        let address = |v4: bool| {
            eth0.into_iter()
                .flat_map(|i| &i.addresses)
                .find(|(a, _)| a.is_ipv4() == v4)
                .map(|(a, _)| a.to_string())
        };
        // Before API 1.44 the MAC is the container's, later the endpoint's.
        let per_endpoint = api_at_least(&self.api_version(), 1, 44);
        let endpoint = EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: address(true),
                ipv6_address: address(false),
                link_local_ips: None,
            }),
            mac_address: per_endpoint.then(|| mac.clone()),
            ..Default::default()
        };
        if !per_endpoint {
            body.mac_address = Some(mac);
        }
        body.networking_config = Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(net.to_string(), endpoint)])),
        });
        let (exposed, bindings) = port_bindings(n);
        if let Some(hc) = body.host_config.as_mut() {
            hc.network_mode = Some(net.to_string());
            if !bindings.is_empty() {
                hc.port_bindings = Some(bindings);
            }
        }
        if !exposed.is_empty() {
            body.exposed_ports = Some(exposed);
        }
    }

    /// Make sure the lab's management network exists in the engine: a bridge network named and
    /// addressed as the topology says, on the topology's bridge. A network of that name that
    /// exists already is used when its bridge is the topology's. Returns whether it was made now.
    pub fn ensure_network(&self, lab: &str, m: &MgmtNet) -> Result<bool> {
        self.rt.block_on(async {
            match self
                .docker
                .inspect_network(
                    &m.network,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                )
                .await
            {
                Ok(existing) => {
                    let bridge = existing
                        .options
                        .as_ref()
                        .and_then(|o| o.get("com.docker.network.bridge.name"))
                        .cloned()
                        .unwrap_or_default();
                    if bridge != m.bridge {
                        return Err(Error::NetworkOnOtherBridge {
                            product: self.kind.product(),
                            network: m.network.clone(),
                            found: bridge,
                            bridge: m.bridge.clone(),
                        });
                    }
                    return Ok(false);
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(engine_err(format!("inspect network {}", m.network))(e)),
            }
            let mut config = Vec::new();
            if let Some(sub) = m.ipv4_subnet {
                config.push(IpamConfig {
                    subnet: Some(sub.to_string()),
                    gateway: m.ipv4_gw.map(|g| g.to_string()),
                    ..Default::default()
                });
            }
            if let Some(sub) = m.ipv6_subnet {
                config.push(IpamConfig {
                    subnet: Some(sub.to_string()),
                    gateway: m.ipv6_gw.map(|g| g.to_string()),
                    ..Default::default()
                });
            }
            let req = NetworkCreateRequest {
                name: m.network.clone(),
                driver: Some("bridge".into()),
                enable_ipv6: Some(m.ipv6_subnet.is_some()),
                ipam: Some(Ipam {
                    driver: Some("default".into()),
                    config: Some(config),
                    options: None,
                }),
                options: Some(HashMap::from([
                    (
                        "com.docker.network.bridge.name".to_string(),
                        m.bridge.clone(),
                    ),
                    (
                        "com.docker.network.driver.mtu".to_string(),
                        m.mtu.to_string(),
                    ),
                ])),
                labels: Some(HashMap::from([
                    ("containerlab".to_string(), String::new()),
                    (NETWORK_LABEL.to_string(), lab.to_string()),
                ])),
                ..Default::default()
            };
            self.docker
                .create_network(req)
                .await
                .map_err(engine_err(format!("create network {}", m.network)))?;
            Ok(true)
        })
    }

    /// Remove engine network `name` if labwire made it and no container is attached any more
    /// (another lab may still use it). Returns whether it was removed.
    pub fn remove_network(&self, name: &str) -> Result<bool> {
        self.rt.block_on(async {
            let net = match self
                .docker
                .inspect_network(
                    name,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                )
                .await
            {
                Ok(n) => n,
                Err(e) if is_not_found(&e) => return Ok(false),
                Err(e) => return Err(engine_err(format!("inspect network {name}"))(e)),
            };
            let Some(lab) = net.labels.as_ref().and_then(|l| l.get(NETWORK_LABEL)) else {
                return Ok(false);
            };
            if net.containers.as_ref().is_some_and(|c| !c.is_empty()) {
                return Ok(false);
            }
            // The engine releases a removed container's endpoint a moment after the removal
            // returns (seconds on a loaded host): until then it refuses with "active endpoints"
            // although no container is attached.
            let mut tries = 0;
            loop {
                match self.docker.remove_network(name).await {
                    Ok(()) => return Ok(true),
                    Err(e) if is_not_found(&e) => return Ok(false),
                    Err(DockerError::DockerResponseServerError {
                        status_code: 403,
                        message,
                    }) if message.contains("active endpoints") => {
                        // Ten seconds on: the count is stale, not late.
                        if tries == 200 {
                            return Err(Error::StaleEndpoints {
                                product: self.kind.product(),
                                lab: lab.clone(),
                            });
                        }
                        // Polled often: a destroy waits for this, and the engine is not loaded
                        // by one refused request.
                        tries += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    Err(e) => return Err(engine_err(format!("remove network {name}"))(e)),
                }
            }
        })
    }

    /// Start container `id` (called `name` in messages) and return the host pid of its first
    /// process.
    pub fn start(&self, id: &str, name: &str) -> Result<i32> {
        self.rt.block_on(async {
            self.docker
                .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
                .await
                .map_err(engine_err(format!("start container {name}")))?;
            let info = self
                .docker
                .inspect_container(
                    id,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .map_err(engine_err(format!("inspect container {name}")))?;
            let state = info.state.unwrap_or_default();
            match state.pid {
                Some(pid) if pid > 0 => Ok(pid as i32),
                _ => Err(Error::ContainerNotRunning {
                    name: name.to_string(),
                    status: format!("{:?}", state.status),
                    code: format!("{:?}", state.exit_code),
                    error: state.error.unwrap_or_default(),
                }),
            }
        })
    }

    /// The host pid of a running container's first process; `None` when there is no such
    /// container or it is not running (yet).
    pub fn running_pid(&self, name: &str) -> Result<Option<i32>> {
        Ok(self.inspect(name)?.and_then(|info| {
            info.state
                .and_then(|s| s.pid)
                .filter(|p| *p > 0)
                .and_then(|p| i32::try_from(p).ok())
        }))
    }

    /// A container's health as the engine keeps it from its healthcheck, in the words of the
    /// engine's status line (`healthy`, `unhealthy`, `health: starting`); `None` when the
    /// container has no healthcheck or does not exist.
    pub fn health(&self, name: &str) -> Result<Option<String>> {
        use bollard::models::HealthStatusEnum as H;
        let status = self
            .inspect(name)?
            .and_then(|i| i.state)
            .and_then(|s| s.health)
            .and_then(|h| h.status);
        Ok(match status {
            Some(H::HEALTHY) => Some("healthy".into()),
            Some(H::UNHEALTHY) => Some("unhealthy".into()),
            Some(H::STARTING) => Some("health: starting".into()),
            _ => None,
        })
    }

    /// The `containerlab` label of a container, `None` when there is no such container.
    pub fn lab_label(&self, name: &str) -> Result<Option<String>> {
        Ok(self.inspect(name)?.map(|info| {
            info.config
                .and_then(|c| c.labels)
                .and_then(|l| l.get("containerlab").cloned())
                .unwrap_or_default()
        }))
    }

    /// A container's details, `None` when there is no such container.
    fn inspect(&self, name: &str) -> Result<Option<bollard::models::ContainerInspectResponse>> {
        self.rt.block_on(async {
            match self
                .docker
                .inspect_container(
                    name,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
            {
                Ok(info) => Ok(Some(info)),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(engine_err(format!("inspect container {name}"))(e)),
            }
        })
    }

    /// Stop a container: its stop signal, then SIGKILL after `grace_s` seconds (0: at once).
    /// Stopping one that is not running is fine.
    pub fn stop(&self, name_or_id: &str, grace_s: u64) -> Result<()> {
        let opts = bollard::query_parameters::StopContainerOptionsBuilder::new()
            .t(i32::try_from(grace_s).unwrap_or(i32::MAX))
            .build();
        match self
            .rt
            .block_on(self.docker.stop_container(name_or_id, Some(opts)))
        {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(DockerError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(engine_err(format!("stop container {name_or_id}"))(e)),
        }
    }

    /// Remove containers (killing them), `in_flight` requests at a time on this one connection's
    /// runtime; results in the order of `names_or_ids`, each whether the container existed.
    pub fn remove_many(&self, names_or_ids: &[String], in_flight: usize) -> Vec<Result<bool>> {
        use futures_util::stream::{self, StreamExt as _};
        self.rt.block_on(
            stream::iter(names_or_ids.iter().map(|target| async move {
                let opts = RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .v(true)
                    .build();
                match self.docker.remove_container(target, Some(opts)).await {
                    Ok(()) => Ok(true),
                    Err(e) if is_not_found(&e) => Ok(false),
                    Err(e) => Err(engine_err(format!("remove container {target}"))(e)),
                }
            }))
            .buffered(in_flight.max(1))
            .collect(),
        )
    }

    /// Remove a container (killing it). Returns whether it existed.
    pub fn remove(&self, name_or_id: &str) -> Result<bool> {
        let opts = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self
            .rt
            .block_on(self.docker.remove_container(name_or_id, Some(opts)))
        {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(engine_err(format!("remove container {name_or_id}"))(e)),
        }
    }
}

/// Whether API version `v` ("1.41") is at least `major.minor`.
fn api_at_least(v: &str, major: u32, minor: u32) -> bool {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// The comment on the firewall rules labwire adds.
const RULE_COMMENT: &str = "set by labwire";

fn firewall_rule(bridge: &str) -> [&str; 8] {
    [
        "DOCKER-USER",
        "-o",
        bridge,
        "-m",
        "comment",
        "--comment",
        RULE_COMMENT,
        "-j",
    ]
}

fn iptables(tool: &str, op: &str, bridge: &str) -> Option<std::process::Output> {
    std::process::Command::new(tool)
        .arg("-w")
        .arg(op)
        .args(firewall_rule(bridge))
        .arg("ACCEPT")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()
}

/// Whether `tool`'s (`iptables`, `ip6tables`) filter table drops forwarded packets by default and
/// has Docker's `DOCKER-USER` chain, where an accept rule takes precedence over Docker's own.
fn docker_forward_drops(tool: &str) -> bool {
    let rules = |chain: &str| {
        std::process::Command::new(tool)
            .args(["-w", "-S", chain])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    rules("DOCKER-USER").is_some()
        && rules("FORWARD").is_some_and(|r| r.lines().any(|l| l.trim() == "-P FORWARD DROP"))
}

/// A running Docker engine sets the FORWARD policy to DROP and makes bridged traffic pass
/// iptables (br_netfilter): a labwire bridge then drops its nodes' IPv4 traffic. As containerlab
/// does, accept what leaves through `bridge` in the engine's `DOCKER-USER` chain. Returns the
/// tools (`iptables`, `ip6tables`) a rule was added with; none when no engine chain exists or the
/// FORWARD policy accepts anyway. Podman (netavark or CNI) leaves the FORWARD policy alone and
/// only adds rules for its own networks, which labwire's containers (network `none`) are not on,
/// so it needs no rule: one is added only where Docker's firewall would drop the traffic,
/// whichever runtime the lab's nodes use.
pub fn allow_bridge_forwarding(bridge: &str) -> Result<Vec<String>> {
    let mut added = Vec::new();
    for tool in ["iptables", "ip6tables"] {
        if !docker_forward_drops(tool) {
            continue;
        }
        if iptables(tool, "-C", bridge).is_some_and(|o| o.status.success()) {
            continue;
        }
        match iptables(tool, "-I", bridge) {
            Some(o) if o.status.success() => added.push(tool.to_string()),
            Some(o) => {
                return Err(Error::Firewall {
                    tool: tool.to_string(),
                    bridge: bridge.to_string(),
                    stderr: String::from_utf8_lossy(&o.stderr).trim().to_string(),
                })
            }
            None => {}
        }
    }
    Ok(added)
}

/// Remove the rule [`allow_bridge_forwarding`] added (nothing when it is gone).
pub fn remove_bridge_forwarding(tool: &str, bridge: &str) {
    while iptables(tool, "-D", bridge).is_some_and(|o| o.status.success()) {}
}

/// `repo[:tag]` (a `@digest` stays in the repository part) → (repository, tag), tag `latest` when absent.
fn split_reference(r: &str) -> (String, String) {
    if r.contains('@') {
        return (r.to_string(), String::new());
    }
    let last = r.rsplit('/').next().unwrap_or(r);
    match last.rsplit_once(':') {
        Some((_, tag)) => (r[..r.len() - tag.len() - 1].to_string(), tag.to_string()),
        None => (r.to_string(), "latest".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repository_and_tag() {
        assert_eq!(
            split_reference("lwt-busybox:dk"),
            ("lwt-busybox".into(), "dk".into())
        );
        assert_eq!(
            split_reference("localhost:5000/a/b"),
            ("localhost:5000/a/b".into(), "latest".into())
        );
        assert_eq!(
            split_reference("localhost:5000/a/b:1.2"),
            ("localhost:5000/a/b".into(), "1.2".into())
        );
    }

    #[test]
    fn node_fields_reach_the_create_request() {
        let yaml = "name: t\ntopology:\n  nodes:\n    n:\n      runtime: docker\n      image: x:1\n      memory: 512m\n      cpu: 1.5\n      cpu-set: 0-1\n      devices: [/dev/net/tun]\n      dns: {servers: [192.0.2.53], search: [lab]}\n      restart-policy: unless-stopped\n      healthcheck: {test: [CMD-SHELL, \"true\"], interval: 2}\n      cmd: \"sleep '10 00'\"\n";
        let src = topology::Source::from_text("t.clab.yml", yaml, Path::new("/tmp"));
        let lab = topology::load(&src, &topology::Options::default())
            .unwrap()
            .lab;
        let c = Container {
            ctx: NodeContext {
                lab: "t",
                topo_file: None,
                intfs: 0,
            },
            node: &lab.nodes[0],
            share_net_with: None,
            network: None,
        };
        let body = create_body(EngineKind::Docker, &c);
        let h = body.host_config.as_ref().unwrap();
        assert_eq!(h.memory, Some(512 << 20));
        assert_eq!(h.nano_cpus, Some(1_500_000_000));
        assert_eq!(h.cpuset_cpus.as_deref(), Some("0-1"));
        let dev = &h.devices.as_ref().unwrap()[0];
        assert_eq!(dev.path_in_container.as_deref(), Some("/dev/net/tun"));
        assert_eq!(h.dns.as_ref().unwrap(), &["192.0.2.53".to_string()]);
        assert_eq!(
            h.restart_policy.as_ref().unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        let hc = body.healthcheck.as_ref().unwrap();
        assert_eq!(hc.interval, Some(2_000_000_000));
        assert_eq!(
            body.cmd.as_ref().unwrap(),
            &["sleep".to_string(), "10 00".to_string()]
        );
    }

    #[test]
    fn ports_map_port_by_port() {
        let n = node("      ports: [\"8080:80\", \"127.0.0.1:9000-9001:90-91/udp\", \"53/udp\"]\n");
        let (exposed, bindings) = port_bindings(&n);
        let mut keys: Vec<&str> = exposed.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["53/udp", "80/tcp", "90/udp", "91/udp"]);
        let host = |k: &str| {
            let b = bindings[k].as_ref().unwrap();
            (b[0].host_ip.clone(), b[0].host_port.clone())
        };
        assert_eq!(host("80/tcp"), (None, Some("8080".into())));
        assert_eq!(
            host("91/udp"),
            (Some("127.0.0.1".into()), Some("9001".into()))
        );
        assert_eq!(host("53/udp"), (None, None));
    }

    fn node(extra: &str) -> topology::Node {
        let yaml = format!(
            "name: t\ntopology:\n  nodes:\n    n:\n      runtime: docker\n      image: x:1\n{extra}"
        );
        let src = topology::Source::from_text("t.clab.yml", &yaml, Path::new("/tmp"));
        let mut lab = topology::load(&src, &topology::Options::default())
            .unwrap()
            .lab;
        lab.nodes.remove(0)
    }

    #[test]
    fn argv_merges_as_the_engine_does() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let wrapper = v(&["/bin/sh", "-c", "x"]);
        let sd = v(&["/lib/systemd/systemd"]);
        let plain = node("");
        assert_eq!(
            container_argv(&plain, Some(&wrapper), Some(&sd)),
            v(&["/bin/sh", "-c", "x", "/lib/systemd/systemd"])
        );
        assert_eq!(container_argv(&plain, None, Some(&sd)), sd);
        let reset = node("      entrypoint: \"\"\n");
        assert_eq!(container_argv(&reset, Some(&wrapper), Some(&sd)), sd);
        let both = node("      entrypoint: \"\"\n      cmd: /sbin/init\n");
        assert_eq!(
            container_argv(&both, Some(&wrapper), None),
            v(&["/sbin/init"])
        );
        let ep = node("      entrypoint: /bin/sleep\n");
        assert_eq!(container_argv(&ep, None, Some(&sd)), v(&["/bin/sleep"]));
        assert!(is_init_system(&sd));
        assert!(is_init_system(&v(&["/sbin/init"])));
        assert!(!is_init_system(&wrapper));
        assert!(!is_init_system(&[]));
    }

    #[test]
    fn an_init_system_gets_its_own_cgroup_namespace() {
        let n = node("      entrypoint: \"\"\n      cmd: /lib/systemd/systemd\n");
        let c = Container {
            ctx: NodeContext {
                lab: "t",
                topo_file: None,
                intfs: 0,
            },
            node: &n,
            share_net_with: None,
            network: None,
        };
        let body = create_body(EngineKind::Docker, &c);
        assert_eq!(body.entrypoint.as_deref(), Some(&[][..]));
        assert_eq!(body.stop_signal.as_deref(), Some("SIGRTMIN+3"));
        assert!(body
            .env
            .as_ref()
            .unwrap()
            .contains(&"container=docker".to_string()));
        assert_eq!(
            body.host_config.as_ref().unwrap().cgroupns_mode,
            Some(HostConfigCgroupnsModeEnum::PRIVATE)
        );
        let plain = create_body_for(EngineKind::Docker, &c, false);
        assert_eq!(plain.stop_signal, None);
        assert_eq!(plain.host_config.unwrap().cgroupns_mode, None);
    }

    #[test]
    fn engine_fields_of_the_node_reach_the_host_config() {
        let n = node(
            "      volumes: [\"data:/data\"]\n      tmpfs: {/scratch: size=8m}\n      pid-mode: host\n      security-opts: [no-new-privileges]\n      cgroup-parent: lab.slice\n      cgroupns-mode: host\n",
        );
        let c = Container {
            ctx: NodeContext {
                lab: "t",
                topo_file: None,
                intfs: 0,
            },
            node: &n,
            share_net_with: None,
            network: None,
        };
        let h = create_body(EngineKind::Podman, &c).host_config.unwrap();
        assert_eq!(h.binds, Some(vec!["data:/data".to_string()]));
        assert_eq!(
            h.tmpfs.unwrap().get("/scratch").map(String::as_str),
            Some("size=8m")
        );
        assert_eq!(h.pid_mode.as_deref(), Some("host"));
        assert_eq!(h.cgroup_parent.as_deref(), Some("lab.slice"));
        assert_eq!(h.cgroupns_mode, Some(HostConfigCgroupnsModeEnum::HOST));
        // Podman runs privileged: only the node's own options are added.
        assert_eq!(h.security_opt, Some(vec!["no-new-privileges".to_string()]));
    }

    #[test]
    fn podman_containers_get_limits_within_the_hard_ones_and_privileged() {
        let n = node("      entrypoint: \"\"\n      cmd: /lib/systemd/systemd\n");
        let c = Container {
            ctx: NodeContext {
                lab: "t",
                topo_file: None,
                intfs: 0,
            },
            node: &n,
            share_net_with: None,
            network: None,
        };
        let body = create_body(EngineKind::Podman, &c);
        assert_eq!(body.entrypoint, Some(vec![String::new()]));
        assert!(body
            .env
            .as_ref()
            .unwrap()
            .contains(&"container=podman".to_string()));
        let h = body.host_config.unwrap();
        assert_eq!(h.privileged, Some(true));
        assert_eq!(h.cap_add, None);
        let ulimits = h.ulimits.expect("podman ulimits");
        for (name, resource) in [
            ("nofile", libc::RLIMIT_NOFILE),
            ("nproc", libc::RLIMIT_NPROC),
        ] {
            let u = ulimits
                .iter()
                .find(|u| u.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("no {name} ulimit"));
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes into the rlimit it is given.
            assert_eq!(unsafe { libc::getrlimit(resource, &mut lim) }, 0);
            let v = u.hard.unwrap();
            assert_eq!(u.soft, Some(v));
            assert!(
                v > 0 && (v as u64) <= lim.rlim_max.min(PODMAN_DEFAULT_RLIMIT),
                "{u:?}"
            );
        }
        // Podman lowers its own process limit to kernel.pid_max; runc, its child, cannot exceed it.
        let pid_max: i64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let nproc = ulimits.iter().find(|u| u.name.as_deref() == Some("nproc"));
        assert!(nproc.and_then(|u| u.hard).is_some_and(|v| v <= pid_max));
        let docker = create_body(EngineKind::Docker, &c);
        assert_eq!(docker.host_config.unwrap().ulimits, None);
    }

    #[test]
    fn engine_sockets_come_from_the_environment() {
        assert_eq!(
            socket_from(EngineKind::Docker, None).unwrap(),
            PathBuf::from(SOCKET)
        );
        assert_eq!(
            socket_from(EngineKind::Docker, Some("unix:///tmp/d.sock")).unwrap(),
            PathBuf::from("/tmp/d.sock")
        );
        assert!(
            socket_from(EngineKind::Docker, Some("tcp://127.0.0.1:2375"))
                .unwrap_err()
                .contains("DOCKER_HOST")
        );
        assert!(socket_from(EngineKind::Docker, Some("/tmp/d.sock")).is_err());
        assert_eq!(
            socket_from(EngineKind::Podman, Some("")).unwrap(),
            PathBuf::from(PODMAN_SOCKET)
        );
        assert_eq!(
            socket_from(EngineKind::Podman, Some("/tmp/p.sock")).unwrap(),
            PathBuf::from("/tmp/p.sock")
        );
        assert_eq!(
            socket_from(EngineKind::Podman, Some("unix:///tmp/p.sock")).unwrap(),
            PathBuf::from("/tmp/p.sock")
        );
        assert!(socket_from(EngineKind::Podman, Some("p.sock")).is_err());
    }

    #[test]
    fn a_silent_podman_socket_says_how_to_start_the_service() {
        let dir = std::env::temp_dir().join(format!("lw-no-podman-{}", std::process::id()));
        let sock = dir.join("podman.sock");
        let e = Engine::connect_at(EngineKind::Podman, &sock)
            .err()
            .expect("no engine at a missing socket")
            .to_string();
        assert!(
            e.contains(&format!(
                "podman system service --time=0 unix://{}",
                sock.display()
            )),
            "{e}"
        );
        // A socket nobody listens on any more.
        std::fs::create_dir_all(&dir).unwrap();
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        let e = Engine::connect_at(EngineKind::Podman, &sock)
            .err()
            .expect("no engine behind a dead socket")
            .to_string();
        assert!(e.contains("podman system service"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

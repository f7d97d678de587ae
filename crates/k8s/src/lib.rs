//! labwire on Kubernetes: a lab as Kubernetes objects, each node's partition in a pod of its own
//! that runs labwire's image and deploys that partition natively (no container engine inside).
//!
//! Owns the placement (which pod runs which nodes, and the name its peers reach it by), the
//! rendering of the objects with `k8s-openapi` types — a namespace per lab, the topology and the
//! files it binds in a ConfigMap, one pod per partition with exactly the capabilities labwire
//! needs, a headless Service per pod for the VXLAN tunnels — and the readiness marker a pod's
//! probe reads. It touches no host and talks to no API server (the binary's `k8s` command does).

use std::collections::BTreeMap;

pub mod client;

use k8s_openapi::api::core::v1::{
    AppArmorProfile, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort,
    EmptyDirVolumeSource, ExecAction, KeyToPath, Lifecycle, LifecycleHandler, Namespace, Pod,
    PodSpec, Probe, SeccompProfile, SecurityContext, Service, ServicePort, ServiceSpec, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use topology::{Lab, Partition};

/// What labwire needs of the kernel inside a pod to deploy native nodes: namespaces and mounts
/// (SYS_ADMIN), links and addresses (NET_ADMIN), ping and raw sockets (NET_RAW), entering nodes'
/// namespaces (SYS_PTRACE), pivoting into node roots (SYS_CHROOT), device nodes in node roots
/// (MKNOD), reading any image file (DAC_READ_SEARCH), stopping nodes (KILL). `privileged` is more
/// than this and fails where the bounding set lacks a capability (CAP_SYS_RESOURCE here).
pub const CAPABILITIES: [&str; 8] = [
    "SYS_ADMIN",
    "NET_ADMIN",
    "NET_RAW",
    "SYS_PTRACE",
    "SYS_CHROOT",
    "MKNOD",
    "DAC_READ_SEARCH",
    "KILL",
];

/// Where a pod's labwire writes the partition it deployed; the readiness probe reads it.
pub const READY_FILE: &str = "/run/labwire-k8s.ready";

/// Where the ConfigMap is mounted in a pod (read-only; `k8s run` copies it to [`LAB_DIR`]).
pub const CONFIG_DIR: &str = "/etc/labwire/lab";

/// The pod's lab directory: the topology and its files, and the lab's artifacts beside them.
pub const LAB_DIR: &str = "/lab";

/// The labwire binary in the pod image.
pub const BINARY: &str = "/usr/local/bin/labwire";

/// Labels every object of a lab carries.
pub const LAB_LABEL: &str = "labwire.dev/lab";
pub const PARTITION_LABEL: &str = "labwire.dev/partition";

/// The most a ConfigMap holds.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// A DNS-1123 label from `s` (lowercase letters, digits, `-`; starts with a letter, at most 63).
pub fn dns_label(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "n-");
    }
    out.truncate(63);
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// The namespace of lab `lab`.
pub fn namespace(lab: &str) -> String {
    dns_label(&format!("labwire-{lab}"))
}

/// The lab as the pods deploy it: its own partitions if it has them, else one per node (named as
/// the node); every partition's address is the name of its pod's Service, which the cluster's
/// DNS resolves inside the namespace. Both `render` and each pod compute it from the topology,
/// so they agree without a file between them.
pub fn place(lab: &Lab) -> Result<Lab, String> {
    let mut placed = lab.clone();
    if placed.partitions.is_empty() {
        for n in &mut placed.nodes {
            if !n.is_workload() {
                return Err(format!(
                    "node {} is a {}, which lives in a host: on Kubernetes give the lab `partitions` and put it with the nodes it links to",
                    n.name, n.kind
                ));
            }
            n.partition = Some(n.name.clone());
        }
        placed.partitions = placed
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    Partition {
                        address: String::new(),
                    },
                )
            })
            .collect();
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (name, p) in &mut placed.partitions {
        let svc = dns_label(name);
        if let Some(other) = seen.insert(svc.clone(), name.clone()) {
            return Err(format!(
                "partitions {other} and {name} both become the Kubernetes name {svc}; rename one"
            ));
        }
        p.address = svc;
    }
    Ok(placed)
}

/// A file the pods need, relative to the topology's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabFile {
    pub path: String,
    pub content: String,
}

/// The files of the lab a pod needs besides the topology: every bind source under the topology's
/// directory (not the lab directory, which deploy writes). `read` reads one file.
pub fn lab_files(
    lab: &Lab,
    read: &dyn Fn(&std::path::Path) -> std::io::Result<String>,
) -> Result<Vec<LabFile>, String> {
    let base = lab
        .dir
        .parent()
        .ok_or("the lab directory has no parent")?
        .to_path_buf();
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for n in &lab.nodes {
        for b in &n.binds {
            if b.source.starts_with(&lab.dir) {
                continue;
            }
            let rel = b.source.strip_prefix(&base).map_err(|_| {
                format!(
                    "node {}: bind source {} is outside the topology's directory {}; a pod gets only files beside the topology",
                    n.name,
                    b.source.display(),
                    base.display()
                )
            })?;
            let content = read(&b.source).map_err(|e| {
                format!(
                    "node {}: bind source {}: {e} (a pod gets regular text files beside the topology)",
                    n.name,
                    b.source.display()
                )
            })?;
            out.insert(rel.to_string_lossy().into_owned(), content);
        }
    }
    Ok(out
        .into_iter()
        .map(|(path, content)| LabFile { path, content })
        .collect())
}

/// What to render.
pub struct Render<'a> {
    /// The lab as loaded (not yet placed).
    pub lab: &'a Lab,
    /// The topology file's name and text, as the pods will read them.
    pub topology_name: &'a str,
    pub topology_text: &'a str,
    pub files: &'a [LabFile],
    /// The pod image (labwire's own).
    pub image: &'a str,
}

/// The objects of a lab, in the order they are applied.
#[derive(Debug, Clone)]
pub struct Objects {
    pub namespace: Namespace,
    pub config: ConfigMap,
    pub services: Vec<Service>,
    pub pods: Vec<Pod>,
}

impl Objects {
    /// Every object as JSON (namespace, ConfigMap, then each partition's Service and pod).
    pub fn to_json(&self) -> Vec<serde_json::Value> {
        let mut out = vec![
            serde_json::to_value(&self.namespace).expect("serialises"),
            serde_json::to_value(&self.config).expect("serialises"),
        ];
        for (s, p) in self.services.iter().zip(&self.pods) {
            out.push(serde_json::to_value(s).expect("serialises"));
            out.push(serde_json::to_value(p).expect("serialises"));
        }
        out
    }

    /// A YAML stream (each object as JSON, which YAML reads, after `---`).
    pub fn to_yaml_stream(&self) -> String {
        let mut s = String::new();
        for o in self.to_json() {
            s.push_str("---\n");
            s.push_str(&serde_json::to_string_pretty(&o).expect("serialises"));
            s.push('\n');
        }
        s
    }
}

/// The ConfigMap key of the `i`th file (keys allow no `/`; the volume's items put it back).
fn config_key(i: usize, path: &str) -> String {
    let base: String = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("f{i}-{base}")
}

fn labels(lab: &str, partition: Option<&str>) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "labwire".to_string()),
        (LAB_LABEL.to_string(), dns_label(lab)),
    ]);
    if let Some(p) = partition {
        l.insert(PARTITION_LABEL.to_string(), dns_label(p));
    }
    l
}

/// Render the lab's objects.
pub fn render(r: &Render<'_>) -> Result<Objects, String> {
    let placed = place(r.lab)?;
    let ns = namespace(&r.lab.name);
    let meta = |name: &str, partition: Option<&str>| ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(ns.clone()),
        labels: Some(labels(&r.lab.name, partition)),
        ..Default::default()
    };
    let mut data = BTreeMap::new();
    let mut items = Vec::new();
    let mut all: Vec<(&str, &str)> = vec![(r.topology_name, r.topology_text)];
    all.extend(
        r.files
            .iter()
            .map(|f| (f.path.as_str(), f.content.as_str())),
    );
    let mut size = 0;
    for (i, (path, content)) in all.iter().enumerate() {
        let key = config_key(i, path);
        size += key.len() + content.len();
        data.insert(key.clone(), content.to_string());
        items.push(KeyToPath {
            key,
            path: path.to_string(),
            ..Default::default()
        });
    }
    if size > MAX_CONFIG_BYTES {
        return Err(format!(
            "the topology and its files take {size} bytes; a ConfigMap holds at most {MAX_CONFIG_BYTES}"
        ));
    }
    let config_name = "lab";
    let config = ConfigMap {
        metadata: meta(config_name, None),
        data: Some(data),
        ..Default::default()
    };
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.clone()),
            labels: Some(labels(&r.lab.name, None)),
            ..Default::default()
        },
        ..Default::default()
    };
    let topo_path = format!("{LAB_DIR}/{}", r.topology_name);
    let mut services = Vec::new();
    let mut pods = Vec::new();
    for (part, p) in &placed.partitions {
        let name = &p.address;
        let selector = BTreeMap::from([
            (LAB_LABEL.to_string(), dns_label(&r.lab.name)),
            (PARTITION_LABEL.to_string(), dns_label(part)),
        ]);
        services.push(Service {
            metadata: meta(name, Some(part)),
            spec: Some(ServiceSpec {
                cluster_ip: Some("None".into()),
                // Peers need each other's address before either is ready (ready = deployed).
                publish_not_ready_addresses: Some(true),
                selector: Some(selector),
                ports: Some(vec![ServicePort {
                    name: Some("vxlan".into()),
                    port: i32::from(topology::partition::VXLAN_PORT),
                    protocol: Some("UDP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        });
        let mount = |name: &str, path: &str, ro: bool| VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            read_only: ro.then_some(true),
            ..Default::default()
        };
        let empty = |name: &str, memory: bool| Volume {
            name: name.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: memory.then(|| "Memory".to_string()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let container = Container {
            name: "labwire".into(),
            image: Some(r.image.to_string()),
            // Deploy, then stay: the nodes live in this pod's namespaces as long as it runs.
            // Partition names are node-name safe (letters, digits, `.`, `_`, `-`): no quoting.
            command: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                format!(
                    "{BINARY} k8s run -t {topo_path} --partition {part} --config {CONFIG_DIR} && exec sleep infinity"
                ),
            ]),
            lifecycle: Some(Lifecycle {
                pre_stop: Some(LifecycleHandler {
                    exec: Some(ExecAction {
                        command: Some(
                            [BINARY, "destroy", "--name", &r.lab.name, "--cleanup"]
                                .map(String::from)
                                .to_vec(),
                        ),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ports: Some(vec![ContainerPort {
                name: Some("vxlan".into()),
                container_port: i32::from(topology::partition::VXLAN_PORT),
                protocol: Some("UDP".into()),
                ..Default::default()
            }]),
            readiness_probe: Some(Probe {
                exec: Some(ExecAction {
                    command: Some(
                        [BINARY, "k8s", "ready", "--partition", part]
                            .map(String::from)
                            .to_vec(),
                    ),
                }),
                period_seconds: Some(2),
                ..Default::default()
            }),
            security_context: Some(SecurityContext {
                privileged: Some(false),
                capabilities: Some(Capabilities {
                    add: Some(CAPABILITIES.map(String::from).to_vec()),
                    drop: None,
                }),
                seccomp_profile: Some(SeccompProfile {
                    type_: "Unconfined".into(),
                    localhost_profile: None,
                }),
                app_armor_profile: Some(AppArmorProfile {
                    type_: "Unconfined".into(),
                    localhost_profile: None,
                }),
                ..Default::default()
            }),
            volume_mounts: Some(vec![
                mount("config", CONFIG_DIR, true),
                mount("lab", LAB_DIR, false),
                mount("state", "/var/lib/labwire", false),
                mount("run", "/run", false),
            ]),
            ..Default::default()
        };
        pods.push(Pod {
            metadata: meta(name, Some(part)),
            spec: Some(PodSpec {
                hostname: Some(name.clone()),
                // A pod whose deploy failed stays failed, with its log; it is not retried over
                // what it left.
                restart_policy: Some("Never".into()),
                containers: vec![container],
                volumes: Some(vec![
                    Volume {
                        name: "config".into(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: config_name.into(),
                            items: Some(items.clone()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    empty("lab", false),
                    // An overlay's upper directory cannot sit on the container's overlay root.
                    empty("state", false),
                    empty("run", true),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    Ok(Objects {
        namespace,
        config,
        services,
        pods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(text: &str) -> Lab {
        let src = topology::Source::from_text("t.clab.yml", text, std::path::Path::new("/labs"));
        topology::load(&src, &topology::Options::default())
            .map_err(|e| e.0.render(false))
            .unwrap()
            .lab
    }

    #[test]
    fn without_partitions_each_node_is_a_pod_reached_by_its_service() {
        let l = lab("name: Prt_K\ntopology:\n  nodes: {Leaf_1: {}, s2: {}}\n  links: [{endpoints: [\"Leaf_1:e1\", \"s2:e1\"]}]\n");
        let placed = place(&l).unwrap();
        assert_eq!(placed.partitions["Leaf_1"].address, "leaf-1");
        assert_eq!(placed.node("s2").unwrap().partition.as_deref(), Some("s2"));
        let view = topology::partition::view(&placed, "s2", &|_, p| {
            assert_eq!(p.address, "leaf-1");
            Ok("10.186.9.1".parse().unwrap())
        })
        .unwrap();
        assert_eq!(view.nodes.len(), 1);
        let objs = render(&Render {
            lab: &l,
            topology_name: "t.clab.yml",
            topology_text: "x",
            files: &[LabFile {
                path: "cfg/a b.conf".into(),
                content: "y".into(),
            }],
            image: "labwire:test",
        })
        .unwrap();
        assert_eq!(
            objs.namespace.metadata.name.as_deref(),
            Some("labwire-prt-k")
        );
        assert_eq!(objs.pods.len(), 2);
        let json = objs.to_json();
        assert_eq!(json[0]["kind"], "Namespace");
        assert_eq!(json[1]["kind"], "ConfigMap");
        assert_eq!(json[1]["data"]["f1-a-b.conf"], "y");
        assert_eq!(json[2]["kind"], "Service");
        assert_eq!(json[2]["spec"]["clusterIP"], "None");
        assert_eq!(json[3]["kind"], "Pod");
        let sc = &json[3]["spec"]["containers"][0]["securityContext"];
        assert_eq!(sc["privileged"], false);
        assert_eq!(sc["capabilities"]["add"].as_array().unwrap().len(), 8);
        let items = &json[3]["spec"]["volumes"][0]["configMap"]["items"];
        assert_eq!(items[1]["path"], "cfg/a b.conf");
    }

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(dns_label("Leaf_01"), "leaf-01");
        assert_eq!(dns_label("1x"), "n-1x");
        assert_eq!(dns_label(&"a".repeat(80)).len(), 63);
    }
}

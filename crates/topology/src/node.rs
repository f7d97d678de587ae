//! Node definitions: the schema of a node's fields, resolution node → group → kind → defaults, and
//! decoding the resolved fields into a typed [`Node`].
//!
//! Owns every per-node check (names, addresses, sizes, ports, stages). It does not assign management
//! addresses or MACs to links; `mgmt` and `link` do.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{did_you_mean, Diagnostics};
use crate::kinds::{self, Known};
use crate::model::*;
use crate::read;
use crate::yaml::{Kind, Span, Value};

/// How a field resolves across node, group, kind and defaults.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The most specific level that sets it wins.
    First,
    /// Lists are concatenated, defaults first, duplicates dropped (binds: the most specific per target).
    List,
    /// Mappings are merged key by key, the most specific level winning.
    Map,
}

/// Every node field containerlab has, plus labwire's `kernel`, `vmm` and `partition`.
pub const FIELDS: &[(&str, Merge)] = &[
    ("kind", Merge::First),
    ("group", Merge::First),
    ("type", Merge::First),
    ("image", Merge::First),
    ("image-pull-policy", Merge::First),
    ("license", Merge::First),
    ("position", Merge::First),
    ("startup-config", Merge::First),
    ("startup-delay", Merge::First),
    ("enforce-startup-config", Merge::First),
    ("suppress-startup-config", Merge::First),
    ("auto-remove", Merge::First),
    ("restart-policy", Merge::First),
    ("config", Merge::First),
    ("entrypoint", Merge::First),
    ("cmd", Merge::First),
    ("exec", Merge::First),
    ("binds", Merge::List),
    ("ports", Merge::List),
    ("publish", Merge::List),
    ("mgmt-ipv4", Merge::First),
    ("mgmt-ipv6", Merge::First),
    ("env", Merge::Map),
    ("env-files", Merge::List),
    ("user", Merge::First),
    ("labels", Merge::Map),
    ("network-mode", Merge::First),
    ("runtime", Merge::First),
    ("cpu", Merge::First),
    ("cpu-set", Merge::First),
    ("memory", Merge::First),
    ("shm-size", Merge::First),
    ("sysctls", Merge::Map),
    ("extras", Merge::First),
    ("wait-for", Merge::First),
    ("dns", Merge::First),
    ("certificate", Merge::First),
    ("healthcheck", Merge::First),
    ("aliases", Merge::List),
    ("devices", Merge::List),
    ("cap-add", Merge::List),
    ("stages", Merge::First),
    ("components", Merge::First),
    ("hostname", Merge::First),
    ("sandbox", Merge::First),
    ("kernel", Merge::First),
    ("kernel-modules", Merge::List),
    ("vmm", Merge::First),
    ("credentials", Merge::First),
    ("username", Merge::First),
    ("password", Merge::First),
    ("identity-file", Merge::First),
    ("volumes", Merge::List),
    ("privileged", Merge::First),
    ("cgroupns-mode", Merge::First),
    ("cgroup-parent", Merge::First),
    ("pid-mode", Merge::First),
    ("tmpfs", Merge::Map),
    ("security-opts", Merge::List),
    ("link-apply-mode", Merge::First),
    ("partition", Merge::First),
];

pub fn field_names() -> Vec<&'static str> {
    FIELDS.iter().map(|(n, _)| *n).collect()
}

/// One level of definition (a node, a group, a kind entry or the defaults), keys already checked.
/// It borrows its values from the document: a large inherited map is held once, however many
/// levels and nodes use it.
#[derive(Debug, Clone, Default)]
pub struct Def<'v> {
    pub span: Option<Span>,
    pub fields: Vec<(String, &'v Value<'v>)>,
}

impl<'v> Def<'v> {
    pub fn read(v: &'v Value<'v>, what: &str, d: &mut Diagnostics) -> Def<'v> {
        let names = field_names();
        let Some(m) = read::map(v, what, &names, d) else {
            return Def::default();
        };
        Def {
            span: Some(v.span),
            fields: m
                .entries
                .into_iter()
                .filter(|(_, _, v)| !v.is_null())
                .map(|(k, _, v)| (k.to_string(), v))
                .collect(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&'v Value<'v>> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// The levels that apply to one node, most specific first.
pub struct Levels<'a> {
    pub levels: Vec<&'a Def<'a>>,
}

impl<'a> Levels<'a> {
    /// The resolved value of `key`, merged as its [`Merge`] says. A value only one level gives is
    /// borrowed from the document, not copied.
    pub fn resolve(&self, key: &str) -> Option<Cow<'a, Value<'a>>> {
        let merge = FIELDS
            .iter()
            .find(|(n, _)| *n == key)
            .map_or(Merge::First, |(_, m)| *m);
        let mut found = self.levels.iter().filter_map(|l| l.get(key));
        match merge {
            Merge::First => found.next().map(Cow::Borrowed),
            Merge::List => {
                let mut items: Vec<Value> = Vec::new();
                // Text items already taken: one lookup each keeps a merge linear in its input.
                let mut seen: HashSet<&str> = HashSet::new();
                let mut span = None;
                // Defaults first, so the node's own items come last.
                let all: Vec<&Value> = found.collect();
                for v in all.iter().rev() {
                    span.get_or_insert(v.span);
                    match &v.kind {
                        Kind::Seq(s) => {
                            for item in s {
                                if item.as_str().is_none_or(|t| seen.insert(t)) {
                                    items.push(item.clone());
                                }
                            }
                        }
                        // Not a list: keep it so the typed reader reports it.
                        _ => return Some(Cow::Borrowed(*v)),
                    }
                }
                span.map(|span| {
                    Cow::Owned(Value {
                        kind: Kind::Seq(items),
                        span,
                    })
                })
            }
            Merge::Map => {
                let mut entries: Vec<(Value, Value)> = Vec::new();
                // Where each key sits in `entries`, so a more specific level replaces its value
                // in one lookup (the merge stays linear in the levels' sizes).
                let mut at: HashMap<Option<&str>, usize> = HashMap::new();
                let mut span = None;
                let all: Vec<&Value> = found.collect();
                if let [only] = all[..] {
                    return Some(Cow::Borrowed(only));
                }
                for v in all.iter().rev() {
                    span.get_or_insert(v.span);
                    match &v.kind {
                        Kind::Map(m) => {
                            for (k, val) in m {
                                match at.get(&k.as_str()) {
                                    Some(&i) => entries[i].1 = val.clone(),
                                    None => {
                                        at.insert(k.as_str(), entries.len());
                                        entries.push((k.clone(), val.clone()));
                                    }
                                }
                            }
                        }
                        _ => return Some(Cow::Borrowed(*v)),
                    }
                }
                span.map(|span| {
                    Cow::Owned(Value {
                        kind: Kind::Map(entries),
                        span,
                    })
                })
            }
        }
    }
}

/// Node names: a letter or digit first, then letters, digits, `.`, `_`, `-`; never `..`.
/// The longest file name (a path component) Linux accepts.
pub const MAX_FILE_NAME: usize = 255;

/// The longest hostname Linux accepts (`HOST_NAME_MAX`).
pub const MAX_HOSTNAME: usize = 64;

/// The sysctls a node's own namespaces hold (net, uts, ipc), as messages list them.
pub const NAMESPACED_SYSCTLS: &str =
    "net.*, kernel.hostname, kernel.domainname, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*";

/// Whether sysctl `key` (dotted or slashed) belongs to a namespace a node has of its own: the
/// network namespace's `net.*`, the UTS namespace's host and domain names, the IPC namespace's
/// `kernel.shm*`, `kernel.msg*`, `kernel.sem` and `fs.mqueue.*` (Docker accepts the same set).
pub fn is_namespaced_sysctl(key: &str) -> bool {
    let key = key.replace('/', ".");
    key.starts_with("net.")
        || key.starts_with("fs.mqueue.")
        || matches!(
            key.as_str(),
            "kernel.hostname" | "kernel.domainname" | "kernel.sem" | "kernel.shm_rmid_forced"
        )
        || key.strip_prefix("kernel.").is_some_and(|k| {
            ["shmall", "shmmax", "shmmni", "msgmax", "msgmnb", "msgmni"].contains(&k)
        })
}

pub fn check_node_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok_first = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok_first || !ok_rest || name.contains("..") {
        return Err("names start with a letter or digit and contain only letters, digits, `.`, `_` and `-` (no `..`)".into());
    }
    if name.len() > 128 {
        return Err("names are at most 128 characters".into());
    }
    Ok(())
}

/// Linux interface names: 1 to 15 bytes, no `/`, no white space, not `.` or `..`.
pub fn check_iface_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an interface name cannot be empty".into());
    }
    if name.len() > 15 {
        return Err(format!(
            "interface names are at most 15 bytes; this one has {}",
            name.len()
        ));
    }
    if name.contains('/')
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
        || name.contains(':')
    {
        return Err("interface names cannot contain `/`, `:` or white space".into());
    }
    if name == "." || name == ".." {
        return Err("`.` and `..` are not interface names".into());
    }
    if name.starts_with('-') {
        return Err("interface names cannot start with `-`".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@' | '+')))
    {
        return Err(format!(
            "interface names may contain letters, digits and `_ . - @ +` only, not `{c}`"
        ));
    }
    if name == "lo" {
        return Err("`lo` is the loopback interface every namespace already has".into());
    }
    Ok(())
}

/// Sizes such as `512m`, `1GB`, `2GiB`, `1024` (bytes), as docker's `--memory` accepts them.
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.trim_end_matches('b');
    let unit = unit.trim_end_matches('i');
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    let bytes = num * mult as f64;
    (bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// `[ip:][host_port[-end]:]container_port[-end][/proto]`.
pub fn parse_port(s: &str) -> Option<PortMap> {
    let (body, protocol) = match s.rsplit_once('/') {
        Some((b, p)) if matches!(p, "tcp" | "udp" | "sctp") => (b, p.to_string()),
        Some(_) => return None,
        None => (s, "tcp".to_string()),
    };
    fn range(s: &str) -> Option<(u16, u16)> {
        let (a, b) = match s.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let p = s.parse().ok()?;
                (p, p)
            }
        };
        (a >= 1 && a <= b).then_some((a, b))
    }
    // An IPv6 host address is bracketed: [::1]:8080:80.
    let (host_ip, rest) = if let Some(r) = body.strip_prefix('[') {
        let (ip, rest) = r.split_once("]:")?;
        (Some(ip.parse::<IpAddr>().ok()?), rest)
    } else {
        let parts: Vec<&str> = body.split(':').collect();
        match parts.len() {
            3 => (
                Some(parts[0].parse::<IpAddr>().ok()?),
                &body[parts[0].len() + 1..],
            ),
            1 | 2 => (None, body),
            _ => return None,
        }
    };
    let (host_port, container) = match rest.split_once(':') {
        Some(("", c)) => (None, c),
        Some((h, c)) => (Some(range(h)?), c),
        None => (None, rest),
    };
    let container_port = range(container)?;
    if let Some(h) = host_port {
        if h.1 - h.0 != container_port.1 - container_port.0 {
            return None;
        }
    }
    Some(PortMap {
        host_ip,
        host_port,
        container_port,
        protocol,
    })
}

/// Context for decoding one node.
pub struct NodeCtx<'a> {
    /// Maps already decoded, shared by the nodes that inherit the same levels.
    pub shared: &'a SharedMaps,
    pub lab: &'a str,
    pub prefix: &'a str,
    pub lab_dir: &'a Path,
    pub base_dir: &'a Path,
    pub runtime_override: Option<Runtime>,
    pub read_file: &'a dyn Fn(&Path) -> std::io::Result<String>,
}

/// The `env`, `labels` and `sysctls` maps of one load, by the document values they were merged
/// from: a node whose levels give the same values (and no `__clab…` placeholder, which differs per
/// node) gets the map already made instead of a copy. The key holds the values' addresses, which
/// stay fixed because the document is not changed while nodes are decoded.
#[derive(Default)]
pub struct SharedMaps {
    maps: RefCell<HashMap<MapKey, SharedMap>>,
}

#[derive(PartialEq, Eq, Hash)]
struct MapKey {
    field: &'static str,
    /// Whether the node is a VM (its sysctls are checked differently).
    vm: bool,
    from: Vec<*const ()>,
}

impl SharedMaps {
    fn key(levels: &Levels<'_>, field: &'static str, also: &[&str], vm: bool) -> MapKey {
        let from = std::iter::once(field)
            .chain(also.iter().copied())
            .flat_map(|f| levels.levels.iter().filter_map(move |l| l.get(f)))
            .map(|v| std::ptr::from_ref(v).cast::<()>())
            .collect();
        MapKey { field, vm, from }
    }

    /// The map for `key`, made by `make` the first time. `make` says whether it may be shared.
    fn get_or(
        &self,
        key: MapKey,
        make: impl FnOnce() -> (BTreeMap<String, String>, bool),
    ) -> SharedMap {
        if let Some(m) = self.maps.borrow().get(&key) {
            return m.clone();
        }
        let (map, shareable) = make();
        let map = Arc::new(map);
        if shareable {
            self.maps.borrow_mut().insert(key, map.clone());
        }
        map
    }
}

/// Merge the text maps `key` of every level into `out`, defaults first so the most specific level
/// wins, reading each level's entries in place (no merged copy of the document is made). `keep`
/// may refuse an entry. Returns whether the map may be shared: no `__clab…` placeholder in it.
fn merge_map(
    levels: &Levels<'_>,
    key: &str,
    what: &str,
    d: &mut Diagnostics,
    magic: &dyn Fn(&str) -> String,
    out: &mut BTreeMap<String, String>,
    keep: &mut dyn FnMut(&str, Span, &mut Diagnostics) -> bool,
) -> bool {
    let mut shareable = true;
    for level in levels.levels.iter().rev() {
        let Some(v) = level.get(key) else { continue };
        read::each_string(v, what, d, &mut |k, text, span, d| {
            if k.contains("__clab") || text.contains("__clab") {
                shareable = false;
            }
            let k = magic(k);
            if keep(&k, span, d) {
                out.insert(k, magic(text));
            }
        });
    }
    shareable
}

/// Decode a node whose levels are known. `name_span` locates the node's key.
pub fn decode(
    name: &str,
    name_span: Span,
    levels: &Levels<'_>,
    cx: &NodeCtx<'_>,
    d: &mut Diagnostics,
) -> Option<Node> {
    let node_dir = cx.lab_dir.join(name);
    let magic = |s: &str| -> String {
        if !s.contains("__clab") {
            return s.to_string();
        }
        s.replace("__clabNodeName__", name)
            .replace("__clabNodeDir__", &node_dir.to_string_lossy())
            .replace("__clabDir__", &cx.lab_dir.to_string_lossy())
            .replace("__clabLabName__", cx.lab)
    };
    let get = |key: &str| -> Option<Cow<'_, Value>> {
        let v = levels.resolve(key)?;
        if !v.any_scalar(&|s| s.text.contains("__clab")) {
            return Some(v);
        }
        let mut v = v.into_owned();
        v.map_scalars(&mut |s, _| s.text = magic(&s.text).into());
        Some(Cow::Owned(v))
    };
    let text = |key: &str, d: &mut Diagnostics| {
        get(key).and_then(|v| read::string(&v, &format!("`{key}` of node {name}"), d))
    };
    let what = |key: &str| format!("`{key}` of node {name}");

    let kind_v = get("kind");
    let kind = kind_v
        .as_ref()
        .and_then(|v| read::string(v, &what("kind"), d))
        .unwrap_or_else(|| "linux".into());
    let class = match kinds::lookup(&kind) {
        Some(Known::Own(c)) => c,
        Some(Known::Foreign) => KindClass::Linux,
        None => {
            let span = kind_v.as_ref().map(|v| v.span).or(Some(name_span));
            let e = d.error(span, format!("unknown kind `{kind}` for node {name}"));
            match did_you_mean(&kind, kinds::all_names()) {
                Some(s) => e.help(format!("did you mean `{s}`?")),
                None => e.help("labwire's kinds: linux, bridge, host, ext-container, cvx, cumulus_cvx (and containerlab's kinds, run as generic nodes)"),
            };
            return None;
        }
    };

    let mut runtime = match get("runtime") {
        Some(v) => match read::string(&v, &what("runtime"), d) {
            Some(s) => match Runtime::parse(&s) {
                Some(r) => Some(r),
                None => {
                    let e = d.error(
                        Some(v.span),
                        format!("unknown runtime `{s}` for node {name}"),
                    );
                    e.help(format!("accepted: {}", Runtime::NAMES.join(", ")));
                    None
                }
            },
            None => None,
        },
        None => None,
    };
    if runtime.is_none() {
        runtime = cx.runtime_override;
    }
    let runtime = runtime.unwrap_or(if class == KindClass::Cvx {
        Runtime::Vm
    } else {
        Runtime::Native
    });

    let network_mode = match get("network-mode") {
        Some(v) => match read::string(&v, &what("network-mode"), d).as_deref() {
            None | Some("") | Some("bridge") | Some("default") => NetworkMode::Bridged,
            Some("none") => NetworkMode::None,
            Some("host") => NetworkMode::Host,
            Some(s) if s.starts_with("container:") => {
                NetworkMode::Container(s["container:".len()..].to_string())
            }
            Some(s) => {
                d.error(
                    Some(v.span),
                    format!("unknown network-mode `{s}` for node {name}"),
                )
                .help("accepted: none, host, container:<node>");
                NetworkMode::Bridged
            }
        },
        None => NetworkMode::Bridged,
    };

    let mgmt_ipv4 = get("mgmt-ipv4").and_then(|v| {
        let s = read::string(&v, &what("mgmt-ipv4"), d)?;
        match s.parse::<Ipv4Addr>() {
            Ok(a) => Some(a),
            Err(_) => {
                d.error(
                    Some(v.span),
                    format!("mgmt-ipv4 `{s}` of node {name} is not an IPv4 address"),
                )
                .help("write an address without a prefix, e.g. 172.20.20.10");
                None
            }
        }
    });
    let mgmt_ipv6 = get("mgmt-ipv6").and_then(|v| {
        let s = read::string(&v, &what("mgmt-ipv6"), d)?;
        match s.parse::<Ipv6Addr>() {
            Ok(a) => Some(a),
            Err(_) => {
                d.error(
                    Some(v.span),
                    format!("mgmt-ipv6 `{s}` of node {name} is not an IPv6 address"),
                )
                .help("write an address without a prefix, e.g. 3fff:172:20:20::10");
                None
            }
        }
    });

    // A map is shared with other nodes when no `__clab…` placeholder made it this node's own.
    let placeholder = |key: &str| {
        levels
            .resolve(key)
            .is_some_and(|v| v.any_scalar(&|s| s.text.contains("__clab")))
    };
    let vm = runtime == Runtime::Vm;
    let env = cx.shared.get_or(
        SharedMaps::key(levels, "env", &["env-files"], false),
        || {
            let mut env = BTreeMap::new();
            for f in get("env-files")
                .map(|v| read::strings(&v, &what("env-files"), d))
                .unwrap_or_default()
            {
                let path = resolve_path(cx.base_dir, &f.0);
                match (cx.read_file)(&path) {
                    Ok(text) => {
                        for line in text.lines() {
                            let line = line.trim();
                            if line.is_empty() || line.starts_with('#') {
                                continue;
                            }
                            let line = line.strip_prefix("export ").unwrap_or(line);
                            match line.split_once('=') {
                                Some((k, v)) => {
                                    let v = v.trim();
                                    let v = v
                                        .strip_prefix('"')
                                        .and_then(|v| v.strip_suffix('"'))
                                        .or_else(|| {
                                            v.strip_prefix('\'').and_then(|v| v.strip_suffix('\''))
                                        })
                                        .unwrap_or(v);
                                    env.insert(k.trim().to_string(), v.to_string());
                                }
                                None => {
                                    d.error(
                                        Some(f.1),
                                        format!(
                                            "env file {} has a line without `=`: `{line}`",
                                            path.display()
                                        ),
                                    );
                                }
                            }
                        }
                    }
                    Err(e) => {
                        d.error(
                            Some(f.1),
                            format!("cannot read env file {}: {e}", path.display()),
                        );
                    }
                }
            }
            let own = merge_map(
                levels,
                "env",
                &what("env"),
                d,
                &magic,
                &mut env,
                &mut |_, _, _| true,
            );
            (env, own && !placeholder("env-files"))
        },
    );
    let labels = cx
        .shared
        .get_or(SharedMaps::key(levels, "labels", &[], false), || {
            let mut map = BTreeMap::new();
            let own = merge_map(
                levels,
                "labels",
                &what("labels"),
                d,
                &magic,
                &mut map,
                &mut |_, _, _| true,
            );
            (map, own)
        });
    let sysctls = cx.shared.get_or(SharedMaps::key(levels, "sysctls", &[], vm), || {
        let mut map = BTreeMap::new();
        // A VM node's sysctls go to its own kernel; elsewhere a key the node's namespaces do not
        // hold would change the host's kernel for good.
        let own = merge_map(levels, "sysctls", &what("sysctls"), d, &magic, &mut map, &mut |k, span, d| {
            if vm || is_namespaced_sysctl(k) {
                return true;
            }
            d.error(
                Some(span),
                format!("sysctl `{k}` of node {name} is not namespaced: setting it would change the host's kernel"),
            )
            .help(format!("accepted: {NAMESPACED_SYSCTLS} (or any key on a `runtime: vm` node)"));
            false
        });
        (map, own)
    });

    // Slots in order; a later bind for the same target empties the earlier one's slot (found in
    // one lookup, so thousands of binds merge in linear time).
    let mut slots: Vec<Option<Bind>> = Vec::new();
    let mut by_target: HashMap<String, usize> = HashMap::new();
    for (b, span) in get("binds")
        .map(|v| read::strings(&v, &what("binds"), d))
        .unwrap_or_default()
    {
        let parts: Vec<&str> = b.splitn(3, ':').collect();
        if parts.len() < 2 || parts[0].is_empty() || !parts[1].starts_with('/') {
            d.error(Some(span), format!("bind `{b}` of node {name} is not `source:/target[:options]`"))
                .help("e.g. `config/frr.conf:/etc/frr/frr.conf:ro` (a relative source is relative to the topology file)");
            continue;
        }
        let bind = Bind {
            source: resolve_path(cx.base_dir, parts[0]),
            target: parts[1].to_string(),
            options: parts
                .get(2)
                .map(|o| o.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        };
        // The most specific level wins for one target.
        if let Some(i) = by_target.insert(bind.target.clone(), slots.len()) {
            slots[i] = None;
        }
        slots.push(Some(bind));
    }
    let binds: Vec<Bind> = slots.into_iter().flatten().collect();

    let mut ports = Vec::new();
    for (p, span) in get("ports")
        .map(|v| read::strings(&v, &what("ports"), d))
        .unwrap_or_default()
    {
        match parse_port(&p) {
            Some(pm) => ports.push(pm),
            None => {
                d.error(
                    Some(span),
                    format!("port mapping `{p}` of node {name} is malformed"),
                )
                .help("use [host-ip:][host-port:]port[/tcp|udp|sctp], e.g. 8080:80/tcp");
            }
        }
    }

    let memory_bytes = get("memory").and_then(|v| {
        let s = read::string(&v, &what("memory"), d)?;
        match parse_size(&s) {
            Some(b) => Some(b),
            None => {
                d.error(
                    Some(v.span),
                    format!("memory size `{s}` of node {name} is malformed"),
                )
                .help("use a number with an optional unit: 512m, 1g, 2GiB");
                None
            }
        }
    });
    if let Some(v) = get("shm-size") {
        if let Some(s) = read::string(&v, &what("shm-size"), d) {
            if parse_size(&s).is_none() {
                d.error(
                    Some(v.span),
                    format!("shm-size `{s}` of node {name} is malformed"),
                )
                .help("use a number with an optional unit: 64m, 1g");
            }
        }
    }
    let cpu = get("cpu").and_then(|v| read::float(&v, &what("cpu"), d));
    let startup_delay_s = get("startup-delay")
        .and_then(|v| read::uint(&v, &what("startup-delay"), 86_400, d))
        .unwrap_or(0);
    let auto_remove = get("auto-remove")
        .and_then(|v| read::boolean(&v, &what("auto-remove"), d))
        .unwrap_or(false);
    for key in ["enforce-startup-config", "suppress-startup-config"] {
        if let Some(v) = get(key) {
            read::boolean(&v, &what(key), d);
        }
    }
    let image_pull_policy = text("image-pull-policy", d).map(|p| p.to_ascii_lowercase());
    if let (Some(p), Some(v)) = (&image_pull_policy, get("image-pull-policy")) {
        if !matches!(p.as_str(), "always" | "never" | "ifnotpresent") {
            d.error(
                Some(v.span),
                format!("image-pull-policy `{p}` of node {name} is not known"),
            )
            .help("accepted: always, never, IfNotPresent");
        }
    }
    let restart_policy = text("restart-policy", d);
    if let (Some(p), Some(v)) = (&restart_policy, get("restart-policy")) {
        if !matches!(
            p.as_str(),
            "no" | "always" | "on-failure" | "unless-stopped"
        ) {
            d.error(
                Some(v.span),
                format!("restart-policy `{p}` of node {name} is not known"),
            )
            .help("accepted: no, always, on-failure, unless-stopped");
        }
    }
    // labwire's extension: kernel modules the node's own kernel must have. A VM node's agent
    // loads them at boot; a node sharing the host's kernel is refused before deploy when the
    // host's kernel lacks one.
    let mut kernel_modules: Vec<String> = Vec::new();
    for (m, span) in get("kernel-modules")
        .map(|v| read::strings(&v, &what("kernel-modules"), d))
        .unwrap_or_default()
    {
        if m.is_empty()
            || m.len() > 55
            || !m
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            d.error(
                Some(span),
                format!("kernel module `{m}` of node {name} is not a module name"),
            )
            .help("a module's name as modprobe takes it: letters, digits, `_` and `-` (e.g. `bonding`, `8021q`, `vxlan`)");
        } else if !kernel_modules.contains(&m) {
            kernel_modules.push(m);
        }
    }
    let vmm = text("vmm", d);
    if let (Some(p), Some(v)) = (&vmm, get("vmm")) {
        if !matches!(p.as_str(), "qemu" | "firecracker") {
            d.error(
                Some(v.span),
                format!("vmm `{p}` of node {name} is not known"),
            )
            .help("accepted: qemu, firecracker");
        }
    }

    let exec = get("exec")
        .map(|v| {
            read::strings(&v, &what("exec"), d)
                .into_iter()
                .map(|(s, _)| s)
                .collect()
        })
        .unwrap_or_default();
    let list = |key: &str, d: &mut Diagnostics| -> Vec<String> {
        get(key)
            .map(|v| {
                read::strings(&v, &what(key), d)
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect()
            })
            .unwrap_or_default()
    };
    let cap_add = list("cap-add", d);
    let volumes = list("volumes", d);
    let security_opts = list("security-opts", d);
    let privileged = get("privileged").and_then(|v| read::boolean(&v, &what("privileged"), d));
    let tmpfs = get("tmpfs")
        .map(|v| read::string_map(&v, &what("tmpfs"), d))
        .unwrap_or_default()
        .into_iter()
        .map(|(k, (v, _))| (k, v))
        .collect();
    let one_of = |key: &str, accepted: &[&str], d: &mut Diagnostics| -> Option<String> {
        let v = get(key)?;
        let s = read::string(&v, &what(key), d)?;
        if !accepted
            .iter()
            .any(|a| a.ends_with(':') && s.starts_with(a) || *a == s)
        {
            d.error(
                Some(v.span),
                format!("{key} `{s}` of node {name} is not known"),
            )
            .help(format!("accepted: {}", accepted.join(", ")));
            return None;
        }
        Some(s)
    };
    let pid_mode = one_of("pid-mode", &["host", "private", "container:"], d);
    let cgroupns_mode = one_of("cgroupns-mode", &["host", "private"], d);
    one_of("link-apply-mode", &["live", "restart", "recreate"], d);
    if let Some(v) = get("credentials") {
        read::map(&v, &what("credentials"), &["username", "password"], d);
    }
    let devices = list("devices", d);
    let aliases = list("aliases", d);
    list("publish", d);

    let dns = get("dns").and_then(|v| decode_dns(&v, name, d));
    let healthcheck = get("healthcheck").and_then(|v| decode_healthcheck(&v, name, d));
    let mut stages = get("stages")
        .map(|v| decode_stages(&v, name, d))
        .unwrap_or_default();
    if let Some(v) = get("wait-for") {
        d.warning(
            Some(v.span),
            format!("`wait-for` of node {name} is deprecated"),
        )
        .help("use `stages: {create: {wait-for: [{node: N, stage: healthy}]}}`");
        for (n, _) in read::strings(&v, &what("wait-for"), d) {
            stages
                .entry(Stage::Create)
                .or_default()
                .wait_for
                .push(WaitFor {
                    node: n,
                    stage: Stage::Healthy,
                });
        }
    }

    let mut extras = BTreeMap::new();
    for key in [
        "extras",
        "certificate",
        "config",
        "components",
        "position",
        "sandbox",
    ] {
        if let Some(v) = get(key) {
            if key == "extras" || key == "certificate" {
                read::entries(&v, &what(key), d);
            }
            extras.insert(key.to_string(), read::to_json(&v));
        }
    }

    let path_field =
        |key: &str, d: &mut Diagnostics| text(key, d).map(|s| resolve_path(cx.base_dir, &s));

    // Names the kernel must accept at deploy: the long name is a file name under /run/netns
    // (at most 255 bytes), the hostname goes to sethostname (at most 64 bytes).
    let long = long_name(cx.prefix, cx.lab, name);
    if long.len() > MAX_FILE_NAME {
        d.error(
            Some(name_span),
            format!(
                "node {name}: its long name `{long}` has {} bytes; as a network namespace name it can have at most {MAX_FILE_NAME}",
                long.len()
            ),
        )
        .help("shorten the lab name, the node name or the prefix");
    }
    let hostname = text("hostname", d).unwrap_or_else(|| name.to_string());
    if hostname.len() > MAX_HOSTNAME {
        let span = get("hostname").map_or(name_span, |v| v.span);
        d.error(
            Some(span),
            format!(
                "node {name}: hostname `{hostname}` has {} bytes; Linux takes at most {MAX_HOSTNAME}",
                hostname.len()
            ),
        )
        .help("set a shorter `hostname` for the node");
    }

    Some(Node {
        name: name.to_string(),
        long_name: long,
        kind,
        class,
        node_type: text("type", d),
        group: text("group", d),
        runtime,
        image: text("image", d),
        image_pull_policy,
        dir: node_dir.clone(),
        hostname,
        network_mode,
        mgmt_static: mgmt_ipv4.is_some() || mgmt_ipv6.is_some(),
        mgmt_ipv4,
        mgmt_ipv6,
        mgmt_mac: Mac([0; 6]),
        cmd: text("cmd", d),
        entrypoint: text("entrypoint", d),
        exec,
        env,
        labels,
        binds,
        ports,
        sysctls,
        user: text("user", d),
        cpu,
        cpu_set: text("cpu-set", d),
        memory_bytes,
        cap_add,
        devices,
        dns,
        healthcheck,
        stages,
        startup_config: path_field("startup-config", d),
        startup_delay_s,
        restart_policy,
        auto_remove,
        aliases,
        license: path_field("license", d),
        kernel: text("kernel", d),
        kernel_modules,
        vmm,
        privileged,
        tmpfs,
        pid_mode,
        volumes,
        security_opts,
        cgroup_parent: text("cgroup-parent", d),
        cgroupns_mode,
        extras,
        partition: text("partition", d),
    })
}

/// A path as written, relative to the topology file's directory; `~/` is the home directory.
pub fn resolve_path(base: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn decode_dns(v: &Value, name: &str, d: &mut Diagnostics) -> Option<Dns> {
    let m = read::map(
        v,
        &format!("`dns` of node {name}"),
        &["servers", "search", "options"],
        d,
    )?;
    let mut dns = Dns::default();
    if let Some(s) = m.get("servers") {
        for (a, span) in read::strings(s, "dns servers", d) {
            match a.parse() {
                Ok(ip) => dns.servers.push(ip),
                Err(_) => {
                    d.error(
                        Some(span),
                        format!("dns server `{a}` of node {name} is not an IP address"),
                    );
                }
            }
        }
    }
    if let Some(s) = m.get("search") {
        dns.search = read::strings(s, "dns search", d)
            .into_iter()
            .map(|x| x.0)
            .collect();
    }
    if let Some(s) = m.get("options") {
        dns.options = read::strings(s, "dns options", d)
            .into_iter()
            .map(|x| x.0)
            .collect();
    }
    Some(dns)
}

/// Durations in seconds, as a number or with a unit (`5s`, `1m`).
fn seconds(v: &Value, what: &str, d: &mut Diagnostics) -> Option<u64> {
    let s = read::string(v, what, d)?;
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600)
    } else {
        (t, 1)
    };
    match num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)) {
        Some(n) => Some(n),
        None => {
            d.error(Some(v.span), format!("{what} `{s}` is not a duration"))
                .help("use seconds (10) or a unit (10s, 1m)");
            None
        }
    }
}

fn decode_healthcheck(v: &Value, name: &str, d: &mut Diagnostics) -> Option<Healthcheck> {
    let what = format!("`healthcheck` of node {name}");
    let m = read::map(
        v,
        &what,
        &["test", "start-period", "interval", "timeout", "retries"],
        d,
    )?;
    let mut h = Healthcheck {
        test: Vec::new(),
        start_period_s: 0,
        interval_s: 30,
        timeout_s: 30,
        retries: 3,
    };
    match m.get("test") {
        Some(t) if matches!(t.kind, Kind::Seq(_)) => {
            h.test = read::strings(t, "healthcheck test", d)
                .into_iter()
                .map(|x| x.0)
                .collect();
        }
        Some(t) => {
            if let Some(s) = read::string(t, "healthcheck test", d) {
                h.test = vec!["CMD-SHELL".into(), s];
            }
        }
        None => {
            d.error(Some(v.span), format!("{what} has no `test`"))
                .help("e.g. test: [CMD-SHELL, \"ip link show eth1\"]");
        }
    }
    if let Some(x) = m.get("start-period") {
        h.start_period_s = seconds(x, "healthcheck start-period", d).unwrap_or(0);
    }
    if let Some(x) = m.get("interval") {
        h.interval_s = seconds(x, "healthcheck interval", d).unwrap_or(30).max(1);
    }
    if let Some(x) = m.get("timeout") {
        h.timeout_s = seconds(x, "healthcheck timeout", d).unwrap_or(30).max(1);
    }
    if let Some(x) = m.get("retries") {
        h.retries = read::uint(x, "healthcheck retries", 1000, d).unwrap_or(3) as u32;
    }
    Some(h)
}

fn decode_stages(v: &Value, name: &str, d: &mut Diagnostics) -> BTreeMap<Stage, StageSpec> {
    let mut out = BTreeMap::new();
    let Some(m) = read::map(v, &format!("`stages` of node {name}"), &Stage::NAMES, d) else {
        return out;
    };
    for (stage_name, _, sv) in m.entries {
        let stage = Stage::parse(stage_name).expect("checked by read::map");
        let what = format!("stage {stage_name} of node {name}");
        let Some(sm) = read::map(sv, &what, &["wait-for", "exec"], d) else {
            continue;
        };
        let mut spec = StageSpec::default();
        if let Some(w) = sm.get("wait-for") {
            for item in read::seq(w, "wait-for", d) {
                let Some(wm) = read::map(
                    item,
                    &format!("a wait-for of {what}"),
                    &["node", "stage"],
                    d,
                ) else {
                    continue;
                };
                let node = wm
                    .get("node")
                    .and_then(|n| read::string(n, "wait-for node", d));
                let Some(node) = node else {
                    d.error(
                        Some(item.span),
                        format!("a wait-for of {what} has no `node`"),
                    );
                    continue;
                };
                let stage = match wm.get("stage") {
                    Some(sv) => match read::string(sv, "wait-for stage", d) {
                        Some(s) => match Stage::parse(&s) {
                            Some(st) => st,
                            None => {
                                d.error(Some(sv.span), format!("unknown stage `{s}`"))
                                    .help(format!("accepted: {}", Stage::NAMES.join(", ")));
                                continue;
                            }
                        },
                        None => continue,
                    },
                    None => Stage::Healthy,
                };
                spec.wait_for.push(WaitFor { node, stage });
            }
        }
        if let Some(e) = sm.get("exec") {
            for item in read::seq(e, "exec", d) {
                let Some(em) = read::map(
                    item,
                    &format!("an exec of {what}"),
                    &["command", "target", "phase"],
                    d,
                ) else {
                    continue;
                };
                let Some(command) = em
                    .get("command")
                    .and_then(|c| read::string(c, "exec command", d))
                else {
                    d.error(
                        Some(item.span),
                        format!("an exec of {what} has no `command`"),
                    );
                    continue;
                };
                let target = match em
                    .get("target")
                    .and_then(|t| read::string(t, "exec target", d))
                    .as_deref()
                {
                    None | Some("container") => ExecTarget::Container,
                    Some("host") => ExecTarget::Host,
                    Some(t) => {
                        d.error(
                            em.get("target").map(|v| v.span),
                            format!("unknown exec target `{t}`"),
                        )
                        .help("accepted: container, host");
                        continue;
                    }
                };
                let phase = match em
                    .get("phase")
                    .and_then(|t| read::string(t, "exec phase", d))
                    .as_deref()
                {
                    None | Some("on-enter") => ExecPhase::OnEnter,
                    Some("on-exit") => ExecPhase::OnExit,
                    Some(t) => {
                        d.error(
                            em.get("phase").map(|v| v.span),
                            format!("unknown exec phase `{t}`"),
                        )
                        .help("accepted: on-enter, on-exit");
                        continue;
                    }
                };
                spec.exec.push(StageExec {
                    command,
                    target,
                    phase,
                });
            }
        }
        out.insert(stage, spec);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("2GB"), Some(2 << 30));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("5q"), None);
    }

    #[test]
    fn ports() {
        let p = parse_port("8080:80/udp").unwrap();
        assert_eq!(p.host_port, Some((8080, 8080)));
        assert_eq!(p.container_port, (80, 80));
        assert_eq!(p.protocol, "udp");
        assert!(parse_port("127.0.0.1:2222:22").unwrap().host_ip.is_some());
        assert!(parse_port("[::1]:2222:22").unwrap().host_ip.is_some());
        assert!(parse_port("80").is_some());
        assert!(parse_port("99999:80").is_none());
        assert!(parse_port("80/icmp").is_none());
        assert!(parse_port("1000-1001:80").is_none());
    }

    #[test]
    fn names() {
        assert!(check_node_name("leaf01").is_ok());
        assert!(check_node_name("a.b_c-d").is_ok());
        assert!(check_node_name("../x").is_err());
        assert!(check_node_name("a..b").is_err());
        assert!(check_node_name("-a").is_err());
        assert!(check_iface_name("swp1").is_ok());
        assert!(check_iface_name("a-very-long-name-x").is_err());
        assert!(check_iface_name("e1/1").is_err());
        assert!(check_iface_name("e 1").is_err());
    }
}

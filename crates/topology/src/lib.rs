//! labwire's topology model: containerlab topology text in, a normalised [`Lab`] out.
//!
//! `load` runs the whole pipeline: YAML with positions → environment expansion → schema reading
//! (unknown keys are errors) → resolution node → group → kind → defaults → validation (all errors at
//! once, each with file:line:col) → normalisation (long names, directories, MACs, management
//! addresses). The crate is pure apart from reading the topology and its `env-files`: it never
//! touches the host's network, processes or lab directories.

pub mod diag;
pub mod env;
pub mod ifname;
pub mod impair;
pub mod kinds;
pub mod link;
pub mod mac;
pub mod mgmt;
pub mod model;
pub mod node;
pub mod partition;
pub mod read;
pub mod srcmap;
pub mod template;
pub mod yaml;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use diag::{Diagnostic, Diagnostics, LoadError, Severity};
pub use model::*;

use node::{Def, Levels};
use yaml::Span;

/// Topology text and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file, made absolute; `None` for standard input.
    pub path: Option<PathBuf>,
    /// How messages name it (the path as given, or `<stdin>`).
    pub display: String,
    /// Shared with the diagnostics that quote it, so a large file is held once.
    pub text: Arc<str>,
    /// Directory that relative paths and the lab directory are relative to.
    pub base_dir: PathBuf,
    /// Template variables files (`--vars`); when empty, `<topology>_vars.{yml,yaml,json}` beside
    /// the topology file are used.
    pub vars_files: Vec<PathBuf>,
}

impl Source {
    pub fn from_file(path: &Path) -> std::io::Result<Source> {
        let file = std::fs::File::open(path)?;
        // Reserve the file's size at once rather than doubling a buffer up to it.
        let size = file.metadata().map_or(0, |m| m.len());
        let text = read_bounded_sized(file, size)?;
        let abs = std::path::absolute(path)?;
        let base_dir = abs
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        Ok(Source {
            path: Some(abs),
            display: path.display().to_string(),
            text: text.into(),
            base_dir,
            vars_files: Vec::new(),
        })
    }

    /// Text not from a file (standard input, tests); `base_dir` stands in for the file's directory.
    pub fn from_text(display: &str, text: impl Into<String>, base_dir: &Path) -> Source {
        Source {
            path: None,
            display: display.to_string(),
            text: Arc::from(text.into()),
            base_dir: base_dir.to_path_buf(),
            vars_files: Vec::new(),
        }
    }

    /// Template variables from these files (merged in order, later ones winning).
    pub fn with_vars(mut self, files: Vec<PathBuf>) -> Source {
        self.vars_files = files;
        self
    }

    /// The variables files a template topology uses: those given, or the ones found beside the
    /// file as `<name without its last extension>_vars.{yml,yaml,json}` (and
    /// `…_vars.<more>.yml`), in name order.
    pub fn template_vars_files(&self) -> Vec<PathBuf> {
        if !self.vars_files.is_empty() {
            return self.vars_files.clone();
        }
        let Some(path) = &self.path else {
            return Vec::new();
        };
        let (Some(dir), Some(stem)) = (path.parent(), path.file_stem().and_then(|s| s.to_str()))
        else {
            return Vec::new();
        };
        let want = format!("{stem}_vars.");
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with(&want)
                        && [".yml", ".yaml", ".json"].iter().any(|x| n.ends_with(x))
                })
            })
            .collect();
        found.sort();
        found
    }
}

/// Read at most [`yaml::MAX_SOURCE_BYTES`] (a device, a pipe or a huge file is refused without
/// being read whole).
pub fn read_bounded(r: impl std::io::Read) -> std::io::Result<String> {
    read_bounded_sized(r, 0)
}

/// [`read_bounded`] of an input expected to hold about `size` bytes.
fn read_bounded_sized(r: impl std::io::Read, size: u64) -> std::io::Result<String> {
    use std::io::Read as _;
    let limit = yaml::MAX_SOURCE_BYTES as u64;
    let mut buf = Vec::with_capacity(usize::try_from(size.min(limit) + 1).unwrap_or(0));
    r.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a topology is at most {limit} bytes; this input is larger"),
        ));
    }
    String::from_utf8(buf).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the topology is not UTF-8 text",
        )
    })
}

/// Find the topology file when none is named: the one `*.clab.yml`/`*.clab.yaml` in `dir`.
pub fn find_topology(dir: &Path) -> Result<PathBuf, String> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".clab.yml") || n.ends_with(".clab.yaml"))
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!(
            "no topology file given and no *.clab.yml in {}; pass one with -t FILE",
            dir.display()
        )),
        _ => Err(format!(
            "no topology file given and {} *.clab.yml files in {} ({}); pass one with -t FILE",
            found.len(),
            dir.display(),
            found
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Knobs of a load.
pub struct Options<'a> {
    /// Environment lookup for `${VAR}` (the process environment in the binary).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// `-r RUNTIME`: the runtime of nodes that do not name one.
    pub runtime: Option<Runtime>,
    /// Reads `env-files` (the real file system in the binary).
    pub read_file: &'a dyn Fn(&Path) -> std::io::Result<String>,
}

fn process_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// The most an `env-files` entry may hold.
pub const MAX_ENV_FILE_BYTES: u64 = 1 << 20;

/// Read an env file: a regular file of at most [`MAX_ENV_FILE_BYTES`]. It is opened non-blocking
/// (a FIFO with no writer would hang the open) and refused unless regular (a device such as
/// /dev/zero never ends), then read through a bound.
pub fn read_env_file(p: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let f = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(p)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(invalid(
            "not a regular file (an env file is read whole; devices, FIFOs and sockets are refused)".into(),
        ));
    }
    let mut buf = Vec::new();
    f.take(MAX_ENV_FILE_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_ENV_FILE_BYTES {
        return Err(invalid(format!(
            "larger than {MAX_ENV_FILE_BYTES} bytes, the most an env file may hold"
        )));
    }
    String::from_utf8(buf).map_err(|_| invalid("not UTF-8 text".into()))
}

fn fs_read(p: &Path) -> std::io::Result<String> {
    read_env_file(p)
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            env: &process_env,
            runtime: None,
            read_file: &fs_read,
        }
    }
}

/// A loaded lab and the warnings met on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub lab: Lab,
    pub warnings: Diagnostics,
}

/// Fields every runtime acts on.
const ACTS_ON: &[&str] = &[
    "kind",
    "group",
    "type",
    "image",
    "image-pull-policy",
    "startup-delay",
    "user",
    "exec",
    "binds",
    "mgmt-ipv4",
    "mgmt-ipv6",
    "env",
    "env-files",
    "labels",
    "network-mode",
    "runtime",
    "sysctls",
    "cmd",
    "entrypoint",
    "healthcheck",
    "stages",
    "wait-for",
    "hostname",
    "partition",
    "kernel-modules",
];

/// Fields only the container runtimes (docker, podman) act on (they hand them to the engine).
const DOCKER_ALSO_ACTS_ON: &[&str] = &[
    "privileged",
    "tmpfs",
    "pid-mode",
    "volumes",
    "security-opts",
    "cgroup-parent",
    "cgroupns-mode",
    "memory",
    "cpu",
    "cpu-set",
    "devices",
    "dns",
    "restart-policy",
    "auto-remove",
    "cap-add",
];

/// Fields only the vm runtime acts on (besides the common ones).
const VM_ALSO_ACTS_ON: &[&str] = &["memory", "cpu", "kernel", "vmm", "startup-config"];

/// Whether `runtime` acts on a node field.
fn acts_on(runtime: Runtime, field: &str) -> Option<bool> {
    match runtime {
        Runtime::Native => Some(ACTS_ON.contains(&field)),
        // Docker nodes sit on the engine's network, where ports publish.
        Runtime::Docker => Some(
            ACTS_ON.contains(&field) || DOCKER_ALSO_ACTS_ON.contains(&field) || field == "ports",
        ),
        Runtime::Podman => Some(ACTS_ON.contains(&field) || DOCKER_ALSO_ACTS_ON.contains(&field)),
        Runtime::Vm => Some(ACTS_ON.contains(&field) || VM_ALSO_ACTS_ON.contains(&field)),
    }
}

const TOP_KEYS: [&str; 7] = [
    "name",
    "prefix",
    "mgmt",
    "settings",
    "topology",
    "debug",
    "partitions",
];
const TOPOLOGY_KEYS: [&str; 5] = ["defaults", "kinds", "groups", "nodes", "links"];

/// Load, validate and normalise a topology.
pub fn load(src: &Source, opts: &Options<'_>) -> Result<Loaded, LoadError> {
    let mut d = Diagnostics::new(src.display.clone(), src.text.clone());
    let lab = load_into(src, opts, &mut d);
    d.sort();
    match lab {
        Some(lab) if !d.has_errors() => Ok(Loaded { lab, warnings: d }),
        _ => {
            if !d.has_errors() {
                d.error(None, "the topology could not be read");
            }
            Err(LoadError(d))
        }
    }
}

fn load_into(src: &Source, opts: &Options<'_>, d: &mut Diagnostics) -> Option<Lab> {
    // A Go template is rendered first, then variables are substituted in the whole text before
    // YAML reads it, as containerlab does; every position is mapped back into the file as written.
    let written = srcmap::Lines::new(&src.text);
    let at = |off: usize| {
        let p = written.pos(off);
        Some(Span { start: p, end: p })
    };
    // Without a template or a variable the text is read as written: no copy of it is made (a
    // large file would otherwise be held three times).
    let (rendered, template_map): (Cow<'_, str>, _) = if src.text.contains("{{") {
        let data = template_vars(src, opts, d)?;
        let subs = subtemplates(src, opts, d)?;
        match template::render_with(&src.text, &subs, data) {
            Ok((text, map)) => (Cow::Owned(text), map),
            Err(e) => {
                match e.source.unwrap_or(0) {
                    0 => d.error(at(e.at), format!("template: {}", e.message)),
                    i => {
                        let (name, text) = &subs[i - 1];
                        let pos = srcmap::Lines::new(text).pos(e.at);
                        d.error(
                            None,
                            format!("template clab_templates/{name}:{pos}: {}", e.message),
                        )
                    }
                };
                return None;
            }
        }
    } else {
        let mut identity = srcmap::OffsetMap::default();
        identity.copied(0, 0, src.text.len());
        (Cow::Borrowed(&*src.text), identity)
    };
    let mut env = env::Env::new(opts.env);
    let has_vars = rendered.contains('$');
    let expanded = if has_vars {
        env.expand_text(&rendered)
    } else {
        env::Expanded::identity(rendered.len())
    };
    let expanded_text: &str = if has_vars { &expanded.text } else { &rendered };
    let chain = srcmap::Chain::new(
        &src.text,
        &[(&rendered, &template_map), (expanded_text, &expanded.map)],
    );
    for (off, e) in &expanded.errors {
        let pos = written.pos(template_map.to_input(*off));
        d.error(
            Some(Span {
                start: pos,
                end: pos,
            }),
            format!("variable {} is required: {}", e.name, e.message),
        );
    }
    let mut root = match yaml::parse(expanded_text) {
        Ok(v) => v,
        Err(e) => {
            let pos = chain.pos(e.pos);
            d.error(
                Some(Span {
                    start: pos,
                    end: pos,
                }),
                format!("YAML syntax: {}", e.message),
            );
            return None;
        }
    };
    if !chain.is_identity() {
        root.map_spans(&mut |s| chain.span(s));
    }

    let top = read::map(&root, "the topology file", &TOP_KEYS, d)?;
    if root.is_null() {
        d.error(None, "the topology file is empty")
            .help("a topology needs at least `name:` and `topology: {nodes: …}`");
        return None;
    }
    let name = match top.get("name") {
        Some(v) => read::string(v, "name", d).map(|n| (n, v.span)),
        None => {
            d.error(Some(root.span), "the topology has no `name`")
                .help("add a top-level `name: mylab`");
            None
        }
    };
    let name = match name {
        Some((n, span)) => match node::check_node_name(&n) {
            Ok(()) => n,
            Err(e) => {
                d.error(Some(span), format!("lab name `{n}`: {e}"));
                return None;
            }
        },
        None => return None,
    };
    let prefix = match top.some("prefix") {
        Some(v) => read::string(v, "prefix", d).unwrap_or_else(|| "clab".into()),
        None if top.get("prefix").is_some() => String::new(),
        None => "clab".into(),
    };
    if !prefix.is_empty() && prefix != "__lab-name" && node::check_node_name(&prefix).is_err() {
        d.error(
            top.get("prefix").map(|v| v.span),
            format!("prefix `{prefix}` may only contain letters, digits, `.`, `_` and `-`"),
        );
    }
    let mgmt = mgmt::decode(top.get("mgmt"), d);
    let partitions = partition::decode(top.get("partitions"), d);
    if let Some(s) = top.some("settings") {
        read::map(s, "settings", &["certificate-authority"], d);
        d.warning(
            Some(s.span),
            "`settings` is accepted but labwire does not act on it yet",
        );
    }

    if let Some(v) = top.some("debug") {
        read::boolean(v, "debug", d);
    }

    let Some(topo_v) = top.get("topology") else {
        d.error(Some(root.span), "the topology has no `topology` section")
            .help("add `topology: {nodes: {…}, links: […]}`");
        return None;
    };
    let topo = read::map(topo_v, "topology", &TOPOLOGY_KEYS, d)?;
    let defaults = topo
        .get("defaults")
        .map(|v| Def::read(v, "topology.defaults", d))
        .unwrap_or_default();
    let named_defs = |key: &str, d: &mut Diagnostics| -> BTreeMap<String, (Span, Def)> {
        let mut out = BTreeMap::new();
        if let Some(v) = topo.get(key) {
            for (k, span, val) in
                read::entries(v, &format!("topology.{key}"), d).unwrap_or_default()
            {
                out.insert(
                    k.to_string(),
                    (span, Def::read(val, &format!("{key}.{k}"), d)),
                );
            }
        }
        out
    };
    let kinds_defs = named_defs("kinds", d);
    for (k, (span, _)) in &kinds_defs {
        if kinds::lookup(k).is_none() {
            let e = d.error(Some(*span), format!("unknown kind `{k}` in topology.kinds"));
            if let Some(s) = diag::did_you_mean(k, kinds::all_names()) {
                e.help(format!("did you mean `{s}`?"));
            }
        }
    }
    let groups = named_defs("groups", d);
    let node_defs: Vec<(String, Span, Def)> = match topo.get("nodes") {
        Some(v) => read::entries(v, "topology.nodes", d)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, span, val)| (k.to_string(), span, Def::read(val, &format!("node {k}"), d)))
            .collect(),
        None => Vec::new(),
    };
    if node_defs.is_empty() {
        d.warning(
            topo.get("nodes").map(|v| v.span),
            "the topology has no nodes",
        );
    }

    let lab_dir = src.base_dir.join(format!("clab-{name}"));
    let shared_maps = node::SharedMaps::default();
    let cx = node::NodeCtx {
        shared: &shared_maps,
        lab: &name,
        prefix: &prefix,
        lab_dir: &lab_dir,
        base_dir: &src.base_dir,
        runtime_override: opts.runtime,
        read_file: opts.read_file,
    };
    let mut nodes = Vec::with_capacity(node_defs.len());
    let mut node_spans: HashMap<String, (Span, &Def)> = HashMap::new();
    let mut unacted: BTreeMap<(Runtime, &str), (Span, Vec<String>)> = BTreeMap::new();
    let mut generic: BTreeMap<String, (Option<Span>, Vec<String>)> = BTreeMap::new();
    for (n, span, def) in &node_defs {
        // `bridge|node` names a bridge inside that node's namespace (checked once decoded).
        let name_ok = match n.split_once('|') {
            Some((b, owner)) => node::check_node_name(b).and(node::check_node_name(owner)),
            None => node::check_node_name(n),
        };
        if let Err(e) = name_ok {
            d.error(Some(*span), format!("node name `{n}`: {e}"));
            continue;
        }
        let group_name = def
            .get("group")
            .or(defaults.get("group"))
            .and_then(|g| g.as_str().map(str::to_string));
        let group_defs = match &group_name {
            Some(g) => {
                let gv = def.get("group").or(defaults.get("group"));
                node_groups(n, g, gv.map(|v| v.span), &groups, d)
            }
            None => Vec::new(),
        };
        let kind_name = def
            .get("kind")
            .or(group_defs.iter().find_map(|g| g.get("kind")))
            .or(defaults.get("kind"))
            .and_then(|k| k.as_str().map(str::to_string));
        let kind = kind_name
            .as_ref()
            .and_then(|k| kinds_defs.get(k))
            .map(|(_, d)| d);
        let mut levels = vec![def];
        levels.extend(group_defs.iter().copied());
        levels.extend(kind);
        levels.push(&defaults);
        let levels = Levels { levels };
        if n == "host" {
            d.warning(
                Some(*span),
                "a node named `host`: in links, `host:IFACE` names an interface of the host itself, so links cannot reach this node by name",
            )
            .help("rename the node (e.g. `host1`)");
        }
        if let Some(node) = node::decode(n, *span, &levels, &cx, d) {
            let part_span = levels.resolve("partition").map(|v| v.span);
            partition::check_node(&node, &partitions, part_span, *span, d);
            if node.is_workload() {
                for (field, _) in node::FIELDS {
                    if acts_on(node.runtime, field) != Some(false) {
                        continue;
                    }
                    // Only where it is set matters here, not the merged value.
                    if let Some(v) = levels.levels.iter().find_map(|l| l.get(field)) {
                        let entry = unacted
                            .entry((node.runtime, field))
                            .or_insert((v.span, Vec::new()));
                        entry.1.push(n.clone());
                    }
                }
            }
            // Container nodes always run privileged (what network OS images need).
            if node.privileged == Some(false)
                && matches!(node.runtime, Runtime::Docker | Runtime::Podman)
            {
                let span = levels.levels.iter().find_map(|l| l.get("privileged"));
                d.warning(
                    span.map(|v| v.span),
                    format!(
                        "`privileged: false` (node {n}): labwire's {} nodes always run privileged",
                        node.runtime
                    ),
                );
            }
            if let Some(kinds::Known::Foreign) = kinds::lookup(&node.kind) {
                let span = levels.resolve("kind").map(|v| v.span);
                generic
                    .entry(node.kind.clone())
                    .or_insert((span, Vec::new()))
                    .1
                    .push(n.clone());
            }
            if let Some((_, owner)) = n.split_once('|') {
                if node.netns_bridge().map(|(_, o)| o) != Some(owner) {
                    d.error(
                        Some(*span),
                        format!("node name `{n}`: `|` names a bridge inside node {owner}'s network namespace"),
                    )
                    .help(format!("give it `kind: bridge` and `network-mode: container:{owner}`"));
                    continue;
                }
            }
            node_spans.insert(n.clone(), (*span, def));
            nodes.push(node);
        }
    }
    for ((runtime, field), (span, names)) in unacted {
        d.warning(
            Some(span),
            format!(
                "`{field}` ({}) is accepted but the {runtime} runtime does not act on it yet",
                some_nodes(&names)
            ),
        );
    }
    // One line per kind, however many nodes have it.
    for (kind, (span, names)) in generic {
        d.warning(
            span,
            format!(
                "kind `{kind}` ({}) runs as a generic Linux node in labwire",
                some_nodes(&names)
            ),
        );
    }
    // Deduplicate messages caused by a shared group/kind/defaults level.
    let mut seen = HashSet::new();
    d.items
        .retain(|i| seen.insert((i.span.map(|s| s.start), i.message.clone())));

    let mut lab = Lab::new(
        name.clone(),
        prefix,
        src.path.clone(),
        lab_dir,
        mgmt,
        nodes,
        Vec::new(),
    );
    lab.partitions = partitions;

    // Every node written in the file, decoded or not: a node whose own definition has errors is
    // still "defined", so references to it do not draw a second, misleading error.
    let defined: HashSet<String> = node_defs.iter().map(|(n, _, _)| n.clone()).collect();
    check_network_modes(&lab, d, &node_spans, &defined);
    let mut decoded = Vec::new();
    if let Some(v) = topo.get("links") {
        for (i, item) in read::seq(v, "topology.links", d).iter().enumerate() {
            if let Some(l) = link::decode(item, i, &|n| defined.contains(n), d) {
                decoded.push(l);
            }
        }
    }
    resolve_iface_names(&lab, &mut decoded, d);
    check_links(&lab, &decoded, &defined, d);
    partition::check_links(&lab, &decoded, &|n| node_spans.get(n).map(|(s, _)| *s), d);
    check_stages(&lab, d, &node_spans, &defined);
    let spans_of = |node: &str, key: &str| {
        node_spans
            .get(node)
            .and_then(|(_, def)| def.get(key).map(|v| v.span))
    };
    mgmt::check_static(&lab, &spans_of, d);

    lab.links = decoded.into_iter().map(|x| x.link).collect();
    assign_macs(&mut lab);
    if !d.has_errors() {
        if let Err(e) = mgmt::assign(&mut lab, &BTreeSet::new()) {
            d.error(top.get("mgmt").map(|v| v.span), e);
        }
    }
    Some(lab)
}

/// The group definitions a node's `group` names, most specific first. A name topology.groups does
/// not define contributes nothing (containerlab ignores it too), with a warning in case of a typo;
/// `a,b` names two groups unless a group is literally called `a,b`.
fn node_groups<'g>(
    node: &str,
    group: &str,
    span: Option<Span>,
    groups: &'g BTreeMap<String, (Span, Def<'g>)>,
    d: &mut Diagnostics,
) -> Vec<&'g Def<'g>> {
    if let Some((_, def)) = groups.get(group) {
        return vec![def];
    }
    let mut out = Vec::new();
    for g in group.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        match groups.get(g) {
            Some((_, def)) => out.push(def),
            None => {
                let w = d.warning(
                    span,
                    format!("node {node} is in group `{g}`, which topology.groups does not define; it adds nothing"),
                );
                if let Some(s) = diag::did_you_mean(g, groups.keys().map(String::as_str)) {
                    w.help(format!("did you mean `{s}`?"));
                }
            }
        }
    }
    out
}

/// The variables a template topology renders with: the merged variables files, or no data.
fn template_vars(src: &Source, opts: &Options<'_>, d: &mut Diagnostics) -> Option<template::Val> {
    let mut merged = serde_json::Value::Null;
    for path in src.template_vars_files() {
        let shown = path.display().to_string();
        let text = match (opts.read_file)(&path) {
            Ok(t) => t,
            Err(e) => {
                d.error(None, format!("cannot read template variables {shown}: {e}"));
                return None;
            }
        };
        let v = match yaml::parse(&text) {
            Ok(v) => v,
            Err(e) => {
                d.error(
                    None,
                    format!("template variables {shown}:{}: {}", e.pos, e.message),
                );
                return None;
            }
        };
        let v = read::to_json(&v);
        if !(v.is_object() || v.is_null()) {
            d.error(
                None,
                format!("template variables {shown} must be a mapping of names to values"),
            );
            return None;
        }
        merge_json(&mut merged, v);
    }
    Some(match merged {
        serde_json::Value::Null => template::Val::Missing,
        v => template::Val::from_json(&v),
    })
}

/// containerlab's sub-templates: `clab_templates/*.gotmpl` beside the topology, each named by its
/// file name, in name order.
fn subtemplates(
    src: &Source,
    opts: &Options<'_>,
    d: &mut Diagnostics,
) -> Option<Vec<(String, String)>> {
    let Some(dir) = src.path.as_ref().and_then(|p| p.parent()) else {
        return Some(Vec::new());
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("clab_templates"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "gotmpl"))
        .collect();
    files.sort();
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let name = f.file_name()?.to_string_lossy().into_owned();
        match (opts.read_file)(&f) {
            Ok(text) => out.push((name, text)),
            Err(e) => {
                d.error(
                    None,
                    format!("cannot read sub-template {}: {e}", f.display()),
                );
                return None;
            }
        }
    }
    Some(out)
}

/// Merge `src` into `dst`: mappings key by key (recursively), anything else replaced.
fn merge_json(dst: &mut serde_json::Value, src: serde_json::Value) {
    match (dst, src) {
        (serde_json::Value::Object(d), serde_json::Value::Object(s)) => {
            for (k, v) in s {
                merge_json(d.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (d, s) => *d = s,
    }
}

/// "node a" or "nodes a, b, c and 7 more", for warnings that gather many nodes.
fn some_nodes(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    let more = if names.len() > 5 {
        format!(" and {} more", names.len() - 5)
    } else {
        String::new()
    };
    let s = if names.len() == 1 { "" } else { "s" };
    format!("node{s} {}{more}", shown.join(", "))
}

fn check_network_modes(
    lab: &Lab,
    d: &mut Diagnostics,
    spans: &HashMap<String, (Span, &Def)>,
    defined: &HashSet<String>,
) {
    for n in &lab.nodes {
        // A bridge inside a namespace must name a node of the lab; any other node may share the
        // network of a container started outside the lab (deploy waits for it).
        if let NetworkMode::Container(other) = &n.network_mode {
            if !defined.contains(other) && n.class == KindClass::Bridge {
                let span = spans
                    .get(&n.name)
                    .and_then(|(s, def)| def.get("network-mode").map(|v| v.span).or(Some(*s)));
                d.error(
                    span,
                    format!(
                        "node {} shares the network of `{other}`, which is not a node of this lab",
                        n.name
                    ),
                );
            } else if !defined.contains(other) {
                let span = spans
                    .get(&n.name)
                    .and_then(|(s, def)| def.get("network-mode").map(|v| v.span).or(Some(*s)));
                let w = d.warning(
                    span,
                    format!(
                        "node {} shares the network of `{other}`, which is not a node of this lab: deploy waits for a container of that name",
                        n.name
                    ),
                );
                if let Some(s) = diag::did_you_mean(other, defined.iter().map(String::as_str)) {
                    w.help(format!("did you mean node `{s}`?"));
                }
            }
        }
    }
}

/// Vendor port names and names Linux cannot take → Linux names, the written name kept as the
/// endpoint's alias (see `ifname`).
fn resolve_iface_names(lab: &Lab, links: &mut [link::Decoded], d: &mut Diagnostics) {
    let kinds: HashMap<&str, &str> = lab
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.kind.as_str()))
        .collect();
    for l in links.iter_mut() {
        let spans = l.spans.clone();
        let link = &mut l.link;
        let mut ends: Vec<&mut Endpoint> = vec![&mut link.a];
        if let Peer::Veth { b } = &mut link.peer {
            ends.push(b);
        }
        for (ep, span) in ends.into_iter().zip(spans.iter()) {
            let Some(kind) = kinds.get(ep.node.as_str()) else {
                continue;
            };
            match ifname::resolve(kind, &ep.node, &ep.iface) {
                Ok(r) => {
                    ep.iface = r.linux;
                    ep.alias = r.alias;
                }
                Err(e) => {
                    d.error(
                        Some(*span),
                        format!("interface `{}` of node {}: {e}", ep.iface, ep.node),
                    );
                }
            }
        }
        if let Peer::Host { host_iface, .. } | Peer::MgmtNet { host_iface, .. } = &mut link.peer {
            if !ifname::linux_can_take(host_iface) {
                link.host_alias = Some(std::mem::replace(
                    host_iface,
                    ifname::generated("host", host_iface),
                ));
            }
        }
    }
}

/// Two endpoints given one MAC in the file: the kernel takes it, but the segment (or the host's
/// neighbour tables) then cannot tell them apart.
fn warn_duplicate_macs(links: &[link::Decoded], d: &mut Diagnostics) {
    let mut first: HashMap<Mac, (String, Span)> = HashMap::new();
    for l in links {
        for ((ep, explicit), span) in l.link.endpoints().zip(&l.explicit_mac).zip(&l.spans) {
            if !explicit {
                continue;
            }
            let here = format!("{}:{}", ep.node, ep.iface);
            match first.get(&ep.mac) {
                Some((other, at)) => {
                    d.warning(
                        Some(*span),
                        format!(
                            "MAC {} of {here} is also the MAC of {other} (line {}); interfaces sharing a MAC confuse the switches and neighbours that see both",
                            ep.mac, at.start.line
                        ),
                    );
                }
                None => {
                    first.insert(ep.mac, (here, *span));
                }
            }
        }
    }
}

fn check_links(lab: &Lab, links: &[link::Decoded], defined: &HashSet<String>, d: &mut Diagnostics) {
    warn_duplicate_macs(links, d);
    // `Lab::node` is a linear search; with 10 000 nodes and 20 000 links it must not run per endpoint.
    let by_name: HashMap<&str, &Node> = lab.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    // (node, iface) → span of first use; host-side names share one namespace.
    let mut used: HashMap<(String, String), Span> = HashMap::new();
    let mut host_used: HashMap<String, Span> = HashMap::new();
    let mut claim = |key: (String, String), span: Span, host: bool, d: &mut Diagnostics| {
        if host {
            if let Some(first) = host_used.get(&key.1) {
                d.error(
                    Some(span),
                    format!(
                        "host interface `{}` is used by two links (first at line {})",
                        key.1, first.start.line
                    ),
                );
                return;
            }
            host_used.insert(key.1.clone(), span);
        }
        if let Some(first) = used.get(&key) {
            d.error(
                Some(span),
                format!(
                    "endpoint `{}:{}` is used twice (first at line {})",
                    key.0, key.1, first.start.line
                ),
            )
            .help("each interface joins one link");
            return;
        }
        used.insert(key, span);
    };
    for l in links {
        for (ep, span) in l.link.endpoints().zip(&l.spans) {
            if let Err(e) = node::check_iface_name(&ep.iface) {
                d.error(
                    Some(*span),
                    format!("interface `{}` of node {}: {e}", ep.iface, ep.node),
                );
                continue;
            }
            if !defined.contains(&ep.node) {
                let e = d.error(
                    Some(*span),
                    format!(
                        "link endpoint `{}:{}` names node `{}`, which is not defined",
                        ep.node, ep.iface, ep.node
                    ),
                );
                match diag::did_you_mean(&ep.node, defined.iter().map(String::as_str)) {
                    Some(s) => e.help(format!("did you mean `{s}`?")),
                    None => e.help("define it under topology.nodes"),
                };
                continue;
            }
            let Some(node) = by_name.get(ep.node.as_str()) else {
                continue;
            };
            let host_side = node.in_host();
            if ep.iface == "eth0" && node.is_workload() && node.network_mode == NetworkMode::Bridged
            {
                d.error(
                    Some(*span),
                    format!(
                        "`{}:eth0` is node {}'s management interface",
                        ep.node, ep.node
                    ),
                )
                .help("use eth1 and up for data links, or set `network-mode: none` on the node");
                continue;
            }
            if node.network_mode == NetworkMode::Host && node.is_workload() {
                d.error(Some(*span), format!("node {} uses the host's network (`network-mode: host`) and cannot have links", ep.node));
                continue;
            }
            claim((ep.node.clone(), ep.iface.clone()), *span, host_side, d);
        }
        match &l.link.peer {
            Peer::Host { host_iface, .. } | Peer::MgmtNet { host_iface, .. } => {
                if let Err(e) = node::check_iface_name(host_iface) {
                    d.error(
                        l.spans.get(1).copied().or(Some(l.span)),
                        format!("host interface `{host_iface}`: {e}"),
                    );
                } else {
                    claim(
                        ("host".into(), host_iface.clone()),
                        l.spans.get(1).copied().unwrap_or(l.span),
                        true,
                        d,
                    );
                }
            }
            Peer::Macvlan { parent, .. } => {
                if let Err(e) = node::check_iface_name(parent) {
                    d.error(
                        Some(l.span),
                        format!("macvlan parent interface `{parent}`: {e}"),
                    );
                }
            }
            Peer::Veth { b } if b.node == l.link.a.node && b.iface == l.link.a.iface => {}
            _ => {}
        }
        if let Peer::Veth { b } = &l.link.peer {
            let both_host = [&l.link.a, b]
                .iter()
                .all(|e| by_name.get(e.node.as_str()).is_some_and(|n| n.in_host()));
            if both_host {
                d.error(
                    Some(l.span),
                    "both ends of this link are in the host (bridge or host nodes)",
                )
                .help("link a bridge or host node to a node of the lab");
            }
        }
    }
}

/// Wait-for must name nodes of the lab and must not form a cycle across nodes and stages.
fn check_stages(
    lab: &Lab,
    d: &mut Diagnostics,
    spans: &HashMap<String, (Span, &Def)>,
    defined: &HashSet<String>,
) {
    let span_of = |n: &str| {
        spans.get(n).map(|(s, def)| {
            def.get("stages")
                .or(def.get("wait-for"))
                .map_or(*s, |v| v.span)
        })
    };
    // The exact `node: X` of a wait-for when the node's own definition has it; else the node's stages.
    let wait_span = |n: &str, stage: Stage, target: &str| {
        spans
            .get(n)
            .and_then(|(_, def)| wait_for_span(def, stage, target))
            .or_else(|| span_of(n))
    };
    let mut edges: HashMap<(usize, Stage), Vec<(usize, Stage)>> = HashMap::new();
    let index: HashMap<&str, usize> = lab
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    for (i, n) in lab.nodes.iter().enumerate() {
        for (prev, next) in Stage::ALL.iter().zip(Stage::ALL.iter().skip(1)) {
            edges.entry((i, *next)).or_default().push((i, *prev));
        }
        for (stage, spec) in &n.stages {
            for w in &spec.wait_for {
                match index.get(w.node.as_str()) {
                    Some(&j) if j == i => {
                        d.error(
                            wait_span(&n.name, *stage, &w.node),
                            format!(
                                "node {} waits for itself in stage {}",
                                n.name,
                                stage.as_str()
                            ),
                        );
                    }
                    Some(&j) => edges.entry((i, *stage)).or_default().push((j, w.stage)),
                    None if defined.contains(&w.node) => {}
                    None => {
                        let e = d.error(
                            wait_span(&n.name, *stage, &w.node),
                            format!(
                                "node {} waits for `{}`, which is not a node of this lab",
                                n.name, w.node
                            ),
                        );
                        if let Some(s) = diag::did_you_mean(&w.node, index.keys().copied()) {
                            e.help(format!("did you mean `{s}`?"));
                        }
                    }
                }
            }
        }
    }
    // Iterative DFS for a cycle, from the starts in node order so the report is the same every run.
    let mut state: HashMap<(usize, Stage), u8> = HashMap::new();
    let mut starts: Vec<(usize, Stage)> = edges.keys().copied().collect();
    starts.sort();
    for start in starts {
        if state.get(&start).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state.insert(start, 1);
        while let Some((v, i)) = stack.pop() {
            let next = edges.get(&v).and_then(|e| e.get(i)).copied();
            match next {
                Some(w) => {
                    stack.push((v, i + 1));
                    match state.get(&w).copied().unwrap_or(0) {
                        0 => {
                            state.insert(w, 1);
                            stack.push((w, 0));
                        }
                        1 => {
                            // The cycle is the part of the stack from `w` on, closed by the edge v → w.
                            let from = stack.iter().position(|(x, _)| *x == w).unwrap_or(0);
                            let path: Vec<String> = stack[from..]
                                .iter()
                                .map(|(x, _)| *x)
                                .chain(std::iter::once(w))
                                .map(|(n, s)| format!("{}:{}", lab.nodes[n].name, s.as_str()))
                                .collect();
                            let name = &lab.nodes[v.0].name;
                            let span = if v.0 == w.0 {
                                span_of(name)
                            } else {
                                wait_span(name, v.1, &lab.nodes[w.0].name)
                            };
                            d.error(
                                span,
                                format!("stage wait-for forms a cycle: {}", path.join(" → ")),
                            )
                            .help("remove one of the wait-for entries in the cycle");
                            return;
                        }
                        _ => {}
                    }
                }
                None => {
                    state.insert(v, 2);
                }
            }
        }
    }
}

/// Where a definition names `target` in a wait-for of `stage`: `stages.<stage>.wait-for[].node`, or an
/// item of the deprecated `wait-for` list (which waits in the create stage).
fn wait_for_span(def: &Def, stage: Stage, target: &str) -> Option<Span> {
    fn get<'v>(v: &'v yaml::Value<'v>, key: &str) -> Option<&'v yaml::Value<'v>> {
        match &v.kind {
            yaml::Kind::Map(m) => m
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
    fn items<'a>(v: &'a yaml::Value<'a>) -> &'a [yaml::Value<'a>] {
        match &v.kind {
            yaml::Kind::Seq(s) => s,
            _ => &[],
        }
    }
    let staged = def
        .get("stages")
        .and_then(|s| get(s, stage.as_str()))
        .and_then(|s| get(s, "wait-for"))
        .and_then(|w| {
            items(w)
                .iter()
                .filter_map(|i| get(i, "node"))
                .find(|n| n.as_str() == Some(target))
        });
    let listed = || {
        def.get("wait-for")
            .filter(|_| stage == Stage::Create)
            .and_then(|w| items(w).iter().find(|i| i.as_str() == Some(target)))
    };
    staged.or_else(listed).map(|v| v.span)
}

/// Fill every derived MAC, keeping explicit ones; unique within the lab.
fn assign_macs(lab: &mut Lab) {
    let mut used: HashSet<Mac> = HashSet::new();
    for l in &lab.links {
        for ep in l.endpoints() {
            if ep.mac != Mac([0; 6]) {
                used.insert(ep.mac);
            }
        }
    }
    let name = lab.name.clone();
    let mut fresh = |node: &str, iface: &str| -> Mac {
        let mut salt = 0;
        loop {
            let m = mac::derive(&name, node, iface, salt);
            if used.insert(m) {
                return m;
            }
            salt += 1;
        }
    };
    for n in &mut lab.nodes {
        n.mgmt_mac = fresh(&n.name, "eth0");
    }
    for l in &mut lab.links {
        if l.a.mac == Mac([0; 6]) {
            l.a.mac = fresh(&l.a.node, &l.a.iface);
        }
        match &mut l.peer {
            Peer::Veth { b } if b.mac == Mac([0; 6]) => b.mac = fresh(&b.node, &b.iface),
            Peer::Host {
                host_iface,
                host_mac,
            }
            | Peer::MgmtNet {
                host_iface,
                host_mac,
            } => {
                *host_mac = fresh("host", host_iface);
            }
            Peer::VxlanStitch {
                host_iface,
                host_mac,
                ..
            } => {
                let h = mac::hash64(&[&name, &l.a.node, &l.a.iface, "stitch"]);
                *host_iface = format!("vxs-{:08x}", h as u32);
                *host_mac = fresh("host", host_iface);
            }
            _ => {}
        }
    }
}

/// Re-run management address assignment with addresses taken by other labs on the same network.
pub fn reassign_mgmt(lab: &mut Lab, taken: &BTreeSet<std::net::IpAddr>) -> Result<(), String> {
    for n in &mut lab.nodes {
        if !n.mgmt_static {
            n.mgmt_ipv4 = None;
            n.mgmt_ipv6 = None;
        }
    }
    mgmt::assign(lab, taken)
}

/// Summary counts for `validate`.
pub fn summary(lab: &Lab) -> String {
    let mut by_kind: BTreeMap<(String, Runtime), usize> = BTreeMap::new();
    for n in &lab.nodes {
        *by_kind.entry((n.kind.clone(), n.runtime)).or_default() += 1;
    }
    let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &lab.links {
        *by_type.entry(l.peer.type_name()).or_default() += 1;
    }
    let mut out = format!(
        "lab {}: {} node{}, {} link{}\n",
        lab.name,
        lab.nodes.len(),
        if lab.nodes.len() == 1 { "" } else { "s" },
        lab.links.len(),
        if lab.links.len() == 1 { "" } else { "s" }
    );
    out.push_str("  nodes:\n");
    for ((k, r), c) in &by_kind {
        out.push_str(&format!("    {c:>6}  {k} ({r})\n"));
    }
    if !by_type.is_empty() {
        out.push_str("  links:\n");
        for (t, c) in &by_type {
            out.push_str(&format!("    {c:>6}  {t}\n"));
        }
    }
    out.push_str(&format!(
        "  management: network {} bridge {} {} {}\n",
        lab.mgmt.network,
        lab.mgmt.bridge,
        lab.mgmt
            .ipv4_subnet
            .map(|s| s.to_string())
            .unwrap_or_default(),
        lab.mgmt
            .ipv6_subnet
            .map(|s| s.to_string())
            .unwrap_or_default()
    ));
    out.push_str(&format!("  lab directory: {}\n", lab.dir.display()));
    out
}

//! What every runtime shares about a node: its image root, the argv it runs, the environment it
//! sees, its /etc/hosts, the helper binaries labwire ships, and the output of a command run in it.
//!
//! The environment rule lives here and only here: every runtime gives a node containerlab's
//! `CLAB_NODE_*`, `CLAB_LABEL_*` and `CLAB_INTFS` variables under the node's own `env`. It owns no
//! process and touches nothing on the host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use topology::{Lab, Node};

use crate::{io, Error, Result};

/// Make the node's directory in the lab directory and open it. The lab directory (made by deploy)
/// is opened without following a link in its place, and the node's directory is made and opened
/// relative to it the same way: a link planted there after preflight is refused, never followed,
/// so nothing is created outside the lab directory.
pub fn node_dir(node: &Node) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = &node.dir;
    let failed = |what: &str, e: std::io::Error| {
        let e = match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => std::io::Error::other(
                "a symbolic link or a file is in its place; labwire never writes through one",
            ),
            _ => e,
        };
        io(format!("{what} {}", dir.display()))(e)
    };
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(failed("create", std::io::ErrorKind::InvalidInput.into()));
    };
    let lab_dir = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(parent)
        .map_err(|e| failed("open the lab directory of", e))?;
    let name = std::ffi::CString::new(name.as_encoded_bytes())
        .map_err(|_| failed("create", std::io::ErrorKind::InvalidInput.into()))?;
    unix::dir_at(&lab_dir, &name, 0o755).map_err(|e| failed("create", e))
}

/// Output of a command run inside a node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// What a node started from an image in labwire's store needs: its layers and the image's run
/// configuration.
#[derive(Debug, Clone, Default)]
pub struct ImageRoot {
    /// The image's id (config digest).
    pub id: String,
    /// Unpacked layer directories, bottom first (overlayfs lower layers).
    pub layers: Vec<PathBuf>,
    /// The node's own writable layer and overlayfs work directory (same file system).
    pub upper: PathBuf,
    pub work: PathBuf,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=VALUE` entries from the image.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// Where labwire-init lives: next to the running labwire binary (cargo puts both in target/*/),
/// or `LABWIRE_INIT` when set.
pub fn init_path() -> Result<PathBuf> {
    sibling_binary("labwire-init", "LABWIRE_INIT")
}

/// A helper binary of labwire's: `$env` when set, else next to the running labwire binary (or
/// one directory up, for test binaries under target/*/deps).
pub fn sibling_binary(name: &str, env: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(io("locate the labwire binary"))?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    for cand in [dir.join(name), dir.join("..").join(name)] {
        if cand.is_file() {
            return Ok(cand);
        }
    }
    Err(Error::MissingHelper {
        name: name.to_string(),
        beside: exe,
        env: env.to_string(),
    })
}

/// Whether the node's command (from its image) is an init system, which must be PID 1 and gets a
/// cgroup of its own.
pub fn runs_init_system(node: &Node, image: &ImageRoot) -> bool {
    is_init_system(&image_command(node, image))
}

/// Whether an argv starts an init system (`/sbin/init`, `/lib/systemd/systemd`). labwire-init, a
/// separate small binary, applies the same rule when it hands PID 1 over.
pub fn is_init_system(argv: &[String]) -> bool {
    argv.first().is_some_and(|a| {
        let base = a.rsplit('/').next().unwrap_or(a);
        matches!(base, "init" | "systemd")
    })
}

/// The argv a node runs, merged as container engines merge it: the node's `entrypoint` (even
/// empty) replaces the image's; the node's `cmd` replaces the image's, and the image's `CMD` only
/// applies when the node gave no non-empty entrypoint. Node strings are split into words as a shell
/// would, without a shell.
pub fn container_argv(
    n: &Node,
    image_entrypoint: Option<&[String]>,
    image_cmd: Option<&[String]>,
) -> Vec<String> {
    let node_entrypoint = n.entrypoint.as_deref().map(split_or_whole);
    let cmd = match (n.cmd.as_deref().map(split_or_whole), &node_entrypoint) {
        (Some(c), _) => c,
        (None, Some(e)) if !e.is_empty() => Vec::new(),
        (None, _) => image_cmd.map(<[String]>::to_vec).unwrap_or_default(),
    };
    let mut argv = node_entrypoint
        .unwrap_or_else(|| image_entrypoint.map(<[String]>::to_vec).unwrap_or_default());
    argv.extend(cmd);
    argv
}

/// A node string split into words as a shell would; the whole string when a quote is unterminated.
pub fn split_or_whole(s: &str) -> Vec<String> {
    split_words(s).unwrap_or_else(|| vec![s.to_string()])
}

/// Split a command line into words as a POSIX shell would (quotes and backslashes), without
/// expanding anything; `None` for an unterminated quote.
pub fn split_words(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        x => cur.push(x),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            x @ ('"' | '\\' | '$' | '`') => cur.push(x),
                            x => {
                                cur.push('\\');
                                cur.push(x);
                            }
                        },
                        x => cur.push(x),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Some(out)
}

/// `s` as one shell word: as it is when it holds only safe characters, else single-quoted.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The node's /etc/hosts content: localhost lines plus the node's own name.
pub fn hosts_file(node: &Node) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(a) = node.mgmt_ipv4 {
        s.push_str(&format!("{a}\t{} {}\n", node.hostname, node.long_name));
    } else {
        s.push_str(&format!(
            "127.0.1.1\t{} {}\n",
            node.hostname, node.long_name
        ));
    }
    if let Some(a) = node.mgmt_ipv6 {
        s.push_str(&format!("{a}\t{} {}\n", node.hostname, node.long_name));
    }
    s
}

/// The command of a node started from an image, as docker composes it: the entrypoint (the node's,
/// else the image's) followed by the command (the node's; else the image's unless the node replaced
/// the entrypoint). Node strings are split into words like a shell would, without a shell.
pub fn image_command(node: &Node, image: &ImageRoot) -> Vec<String> {
    container_argv(node, Some(&image.entrypoint), Some(&image.cmd))
}

/// The command of a node over the host's file system as argv: `sh -c "<entrypoint> <cmd>"`, or
/// nothing (the init just waits).
pub fn shell_command(node: &Node) -> Vec<String> {
    let line = match (&node.entrypoint, &node.cmd) {
        (Some(e), Some(c)) => format!("{e} {c}"),
        (Some(e), None) => e.clone(),
        (None, Some(c)) => c.clone(),
        (None, None) => return Vec::new(),
    };
    vec!["/bin/sh".into(), "-c".into(), line]
}

/// What a node's containerlab labels and variables are made of besides the node itself.
#[derive(Debug, Clone, Copy)]
pub struct NodeContext<'a> {
    pub lab: &'a str,
    /// The topology file (label `clab-topo-file`).
    pub topo_file: Option<&'a Path>,
    /// Number of data interfaces (`CLAB_INTFS`).
    pub intfs: usize,
}

impl<'a> NodeContext<'a> {
    /// The context of `node` in `lab`.
    pub fn of(lab: &'a Lab, node: &Node) -> NodeContext<'a> {
        NodeContext {
            lab: &lab.name,
            topo_file: lab.topology_file.as_deref(),
            intfs: lab.ends_of(&node.name).len(),
        }
    }
}

/// containerlab's labels of a node (its container's labels on an engine).
pub fn labels(ctx: &NodeContext<'_>, n: &Node) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert("containerlab".to_string(), ctx.lab.to_string());
    l.insert("clab-node-name".into(), n.name.clone());
    l.insert("clab-node-longname".into(), n.long_name.clone());
    l.insert("clab-node-kind".into(), n.kind.clone());
    l.insert(
        "clab-node-type".into(),
        n.node_type.clone().unwrap_or_default(),
    );
    l.insert(
        "clab-node-group".into(),
        n.group.clone().unwrap_or_default(),
    );
    l.insert("clab-node-lab-dir".into(), n.dir.display().to_string());
    l.insert(
        "clab-topo-file".into(),
        ctx.topo_file
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    for (k, v) in n.labels.iter() {
        l.insert(k.clone(), v.clone());
    }
    l
}

/// The variables every runtime gives a node, as containerlab does: each label as `CLAB_LABEL_*`,
/// `CLAB_INTFS`, `CLAB_NODE_NAME`, `CLAB_NODE_LONGNAME`, then the node's own `env` over them.
pub fn environment(ctx: &NodeContext<'_>, node: &Node) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (k, v) in labels(ctx, node) {
        let key: String = k
            .chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() {
                    ch.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        env.insert(format!("CLAB_LABEL_{key}"), v);
    }
    env.insert("CLAB_INTFS".into(), ctx.intfs.to_string());
    env.insert("CLAB_NODE_NAME".into(), node.name.clone());
    env.insert("CLAB_NODE_LONGNAME".into(), node.long_name.clone());
    env.extend(node.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// The whole environment of a node's first process where labwire starts it (native and VM
/// nodes; an engine adds the image's itself): a default `PATH`, the image's variables, `HOME`,
/// `HOSTNAME`, then [`environment`] over them.
pub fn process_environment(
    ctx: &NodeContext<'_>,
    node: &Node,
    image: Option<&ImageRoot>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".into(),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    );
    for kv in image.map(|i| i.env.as_slice()).unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            env.insert(k.to_string(), v.to_string());
        }
    }
    if image.is_some() {
        env.insert("container".into(), "labwire".into());
    }
    env.insert("HOME".into(), "/root".into());
    env.insert("HOSTNAME".into(), node.hostname.clone());
    env.extend(environment(ctx, node));
    env
}

/// The environment of a running process (the node's PID 1 carries the node's environment,
/// image variables included).
pub fn environment_of_process(pid: i32) -> Option<BTreeMap<String, String>> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::{node_dir, split_words};
    use std::path::Path;

    fn node_in(dir: &Path) -> topology::Node {
        let yaml = "name: t\ntopology:\n  nodes:\n    n1: {kind: linux}\n";
        let src = topology::Source::from_text("t.clab.yml", yaml, dir);
        let mut lab = topology::load(&src, &topology::Options::default())
            .unwrap()
            .lab;
        lab.nodes.remove(0)
    }

    #[test]
    fn a_node_directory_is_never_made_through_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let node = node_in(tmp.path());
        let lab_dir = node.dir.parent().unwrap().to_path_buf();
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();

        // The lab directory replaced by a link: refused, nothing made at its target.
        std::os::unix::fs::symlink(&elsewhere, &lab_dir).unwrap();
        let err = crate::chain(&node_dir(&node).unwrap_err());
        assert!(err.contains("symbolic link"), "{err}");
        assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none());

        // The node's directory replaced by a link: refused the same way.
        std::fs::remove_file(&lab_dir).unwrap();
        std::fs::create_dir(&lab_dir).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &node.dir).unwrap();
        let err = crate::chain(&node_dir(&node).unwrap_err());
        assert!(err.contains("symbolic link"), "{err}");

        // A real one is made once and opened again.
        std::fs::remove_file(&node.dir).unwrap();
        node_dir(&node).unwrap();
        node_dir(&node).unwrap();
        assert!(node.dir.is_dir());
        assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none());
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(split_words("a b  c").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            split_words("sh -c 'echo $X; ls'").unwrap(),
            ["sh", "-c", "echo $X; ls"]
        );
        assert_eq!(
            split_words(r#"x "a \"b\" c" d\ e"#).unwrap(),
            ["x", "a \"b\" c", "d e"]
        );
        assert_eq!(split_words("''").unwrap(), [""]);
        assert!(split_words("'open").is_none());
    }
}

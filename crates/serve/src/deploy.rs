//! Deploys through the API: the request's topology is loaded and checked here (it validates, and
//! every host path it names lies in the allowed directory), then deployed by a child `labwire
//! deploy`. A child, because a deploy forks the lab's reaper and that fork is only sound in a
//! process with a single thread (see `lab::supervise`), which a server never is; the child also
//! brings the CLI's rollback, journal and owner record unchanged.

use std::cell::RefCell;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::api::DeployRequest;
use crate::error::{ApiError, ApiResult, ErrorCode};

/// A checked deploy: what the child is given.
pub struct Checked {
    /// The topology text (deployed from standard input, relative paths from the allowed
    /// directory), or the topology file.
    text: Option<String>,
    file: Option<PathBuf>,
    reconfigure: bool,
}

/// Load the request's topology and check it; the lab's name and what to deploy.
pub fn check(root: &Path, req: &DeployRequest) -> ApiResult<(String, Checked)> {
    let source = match (&req.topology, &req.path) {
        (Some(text), None) => topology::Source::from_text("<request>", text.clone(), root),
        (None, Some(p)) => {
            let p = Path::new(p);
            if !crate::contain::inside(root, root, p) {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "topology {} is outside the allowed directory {}",
                        p.display(),
                        root.display()
                    ),
                ));
            }
            let file = root.join(p);
            if !file.is_file() {
                return Err(ApiError::new(
                    ErrorCode::NotFound,
                    format!("topology file {} does not exist", file.display()),
                ));
            }
            topology::Source::from_file(&file).map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidTopology,
                    format!("read {}: {e}", file.display()),
                )
            })?
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "give exactly one of `topology` (its text) and `path` (a file on the server)",
            ))
        }
    };
    // env-files outside the allowed directory are refused while the topology is read.
    let refused = RefCell::new(Vec::new());
    let read_file = |p: &Path| {
        if !crate::contain::inside(root, &source.base_dir, p) {
            let why = format!(
                "env-file {} is outside the allowed directory {}",
                p.display(),
                root.display()
            );
            refused.borrow_mut().push(why.clone());
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                why,
            ));
        }
        topology::read_env_file(p)
    };
    // The variables the child deploy will see, and no others: the check must read the topology
    // as the deploy will (a `${VAR}` expanded only by the deploy would escape the check).
    let vars = child_env();
    let lookup = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let opts = topology::Options {
        env: &lookup,
        runtime: None,
        read_file: &read_file,
    };
    let loaded = topology::load(&source, &opts);
    let refused = refused.into_inner();
    if !refused.is_empty() {
        return Err(ApiError::new(ErrorCode::Forbidden, refused.join("\n")));
    }
    let lab = loaded
        .map_err(|e| ApiError::new(ErrorCode::InvalidTopology, e.0.render(false)))?
        .lab;
    lab::paths::check_lab_name(&lab.name).map_err(ApiError::from)?;
    let refusals = crate::contain::refusals(&lab, root, &source.base_dir);
    if !refusals.is_empty() {
        return Err(ApiError::new(ErrorCode::Forbidden, refusals.join("\n")));
    }
    let checked = Checked {
        text: source.path.is_none().then(|| source.text.to_string()),
        file: source.path.clone(),
        reconfigure: req.reconfigure,
    };
    Ok((lab.name, checked))
}

/// The environment of a child deploy: labwire's own settings and the engines', nothing else of
/// the server's (its variables are not an API client's to read into a topology).
fn child_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("LABWIRE_")
                || ["PATH", "DOCKER_HOST", "DOCKER_CONFIG"].contains(&k.as_str())
        })
        .collect()
}

/// Deploy as `labwire deploy` does, in a child; its error when it fails (it rolled back).
pub fn run(exe: &Path, root: &Path, c: &Checked, name: &str) -> ApiResult<()> {
    let mut cmd = Command::new(exe);
    cmd.arg("deploy")
        .arg("-q")
        .arg("-t")
        .arg(c.file.as_deref().unwrap_or(Path::new("-")))
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // The topology is expanded without the server's variables, as the check read it; only
        // the settings of labwire itself and of the engines pass.
        .env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| {
            let k = k.to_string_lossy();
            k.starts_with("LABWIRE_")
                || ["PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG"].contains(&&*k)
        }));
    if c.reconfigure {
        cmd.arg("--reconfigure");
    }
    let mut child = cmd.spawn().map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("run {} deploy: {e}", exe.display()),
        )
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A child that failed early closes its end: its error says why.
        let _ = stdin.write_all(c.text.as_deref().unwrap_or("").as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("wait for the deploy: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message: Vec<&str> = stderr
        .lines()
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .filter(|l| !l.trim().is_empty())
        .collect();
    let message = message.join("\n");
    let code = if message.contains("is busy") || message.contains("is already deployed") {
        ErrorCode::Conflict
    } else {
        ErrorCode::DeployFailed
    };
    Err(ApiError::new(
        code,
        format!("deploy of lab {name} failed: {message}"),
    ))
}

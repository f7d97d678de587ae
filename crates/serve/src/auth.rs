//! The API token: read from its file, or made there (0600, 32 random bytes as hex) on first start;
//! and the check every API request passes. A request carries it as `Authorization: Bearer TOKEN`,
//! or as `?token=TOKEN` where a browser cannot set headers (EventSource, WebSocket).

use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};
use crate::Shared;

/// The token in `file`, made with a fresh one when the file does not exist.
pub fn load_or_create(file: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(file) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => anyhow::bail!("token file {} is empty", file.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("read token file {}", file.display())),
    }
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("read /dev/urandom")?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("create token file {}", file.display()))?;
    writeln!(f, "{token}").with_context(|| format!("write {}", file.display()))?;
    eprintln!("labwire serve: made a new API token in {}", file.display());
    Ok(token)
}

/// Compare without an early exit, so the time taken does not tell how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The token a request carries, if any.
fn given(req: &Request) -> Option<String> {
    if let Some(h) = req.headers().get(axum::http::header::AUTHORIZATION) {
        return h
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
    }
    req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(str::to_string)
    })
}

/// Refuse an API request without the server's token (when it has one).
pub async fn require_token(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if let Some(token) = &s.token {
        if !given(&req).is_some_and(|t| same(&t, token)) {
            return ApiError::new(
                ErrorCode::Unauthorized,
                "this server needs its token: `Authorization: Bearer TOKEN` (or ?token=TOKEN)",
            )
            .into_response();
        }
    }
    next.run(req).await
}

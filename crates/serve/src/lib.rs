//! `labwire serve`: an HTTP API over the `lab` crate (list, inspect, deploy, destroy, exec, node
//! and link operations, events, a terminal to a node), described by an OpenAPI 3 document generated
//! from the handlers, and a page at `/` that draws the deployed lab live.
//!
//! It owns the HTTP side only: listening (TCP or a Unix socket), the token, which host paths a
//! request may name, serialising requests per lab. Every lab operation is the `lab` crate's, run on
//! a blocking thread; deploys run as a child `labwire deploy` (see `deploy.rs` for why).

mod api;
mod auth;
mod contain;
mod deploy;
pub mod error;
mod events;
mod terminal;
pub mod view;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};

pub use api::openapi;

/// Where the server listens.
#[derive(Debug, Clone)]
pub enum Listen {
    Tcp(SocketAddr),
    /// A Unix socket (made 0600: only root reaches it).
    Unix(PathBuf),
}

/// How `labwire serve` runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    /// The file holding the API token (made, 0600, with a fresh token when missing). Required to
    /// listen beyond loopback.
    pub token_file: Option<PathBuf>,
    /// The directory API deploys may read from (topology paths, binds, startup-config, env-files,
    /// kernels, licenses).
    pub root: PathBuf,
    /// The labwire binary, run for deploys.
    pub exe: PathBuf,
}

/// State every handler shares.
pub(crate) struct Shared {
    pub token: Option<String>,
    pub root: PathBuf,
    pub exe: PathBuf,
    pub locks: events::LabLocks,
}

/// Serve until interrupted.
pub fn run(config: Config) -> anyhow::Result<()> {
    let token = match &config.token_file {
        Some(f) => Some(auth::load_or_create(f)?),
        None => None,
    };
    if let Listen::Tcp(addr) = &config.listen {
        if !addr.ip().is_loopback() && token.is_none() {
            bail!(
                "refusing to listen on {addr} without a token: beyond loopback every request must carry one (give --token-file FILE; a missing FILE is made with a fresh token)"
            );
        }
    }
    let root = std::fs::canonicalize(&config.root)
        .with_context(|| format!("allowed directory {}", config.root.display()))?;
    let shared = Arc::new(Shared {
        token,
        root,
        exe: config.exe.clone(),
        locks: events::LabLocks::default(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(serve(config.listen.clone(), shared, &config))
}

async fn serve(listen: Listen, shared: Arc<Shared>, config: &Config) -> anyhow::Result<()> {
    let app = api::router(shared.clone());
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match listen {
        Listen::Tcp(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listen on {addr}"))?;
            eprintln!(
                "labwire serve: http://{}/ (API under /api/v1, OpenAPI at /openapi.json; deploys read from {}){}",
                l.local_addr()?,
                shared.root.display(),
                config
                    .token_file
                    .as_ref()
                    .map(|f| format!("; token in {}", f.display()))
                    .unwrap_or_default()
            );
            axum::serve(l, app).with_graceful_shutdown(stop).await?;
        }
        Listen::Unix(path) => {
            if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("remove the old socket {}", path.display()))?;
            }
            let l = tokio::net::UnixListener::bind(&path)
                .with_context(|| format!("listen on {}", path.display()))?;
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restrict {}", path.display()))?;
            eprintln!("labwire serve: listening on {}", path.display());
            axum::serve(l, app).with_graceful_shutdown(stop).await?;
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(())
}

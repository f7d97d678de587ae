//! `labwire serve`: the HTTP API and the live page (the `serve` crate); this only turns flags into
//! its configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

#[derive(Args)]
pub struct ServeArgs {
    /// Address and port to listen on; beyond loopback a token is required (--token-file)
    #[arg(long, default_value = "127.0.0.1:50080", conflicts_with = "socket")]
    pub listen: SocketAddr,
    /// Listen on this Unix socket instead (made 0600)
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// File holding the API token every request must carry; made with a fresh token (0600) when
    /// missing
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The only directory deploys through the API may read from: topology paths, binds,
    /// startup-config, env-files, kernels (default: the current directory)
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub root: PathBuf,
    /// Print the OpenAPI document and exit
    #[arg(long)]
    pub openapi: bool,
}

pub fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    if a.openapi {
        println!("{}", serve::openapi().to_pretty_json()?);
        return Ok(ExitCode::SUCCESS);
    }
    let listen = match a.socket {
        Some(p) => serve::Listen::Unix(p),
        None => serve::Listen::Tcp(a.listen),
    };
    serve::run(serve::Config {
        listen,
        token_file: a.token_file,
        root: a.root,
        exe: std::env::current_exe().context("find the labwire binary")?,
    })?;
    Ok(ExitCode::SUCCESS)
}

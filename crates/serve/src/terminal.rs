//! A terminal to a node over a WebSocket: a login shell in a native or container node's
//! namespaces on a pseudo-terminal, or a VM node's serial console socket. Bytes pass through
//! unchanged both ways; a text frame `{"rows": R, "cols": C}` resizes the pseudo-terminal.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::error::{ApiError, ApiResult, ErrorCode};

/// What a terminal attaches to.
pub enum Target {
    /// A shell entered into the namespaces of process `pid` by labwire-init.
    Shell { init: PathBuf, pid: i32 },
    /// A VM's serial console.
    Console(PathBuf),
}

/// What node `node` of lab `lab` offers as a terminal.
pub fn target(lab: &str, node: &str) -> ApiResult<Target> {
    let (l, rows) = lab::inspect::lab(lab)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("lab {lab} is not deployed")))?;
    let n = l.node(node).ok_or_else(|| {
        ApiError::new(ErrorCode::NotFound, format!("lab {lab} has no node {node}"))
    })?;
    let row = rows
        .iter()
        .find(|r| r.node == n.name)
        .filter(|r| r.state == "running" && r.pid > 0)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotRunning,
                format!("node {node} of lab {lab} is not running"),
            )
        })?;
    if n.runtime == topology::Runtime::Vm {
        let run_dir = lab::paths::lab_run_dir(lab).join(&n.name);
        return Ok(Target::Console(runtime::vm::console_socket(&run_dir)));
    }
    let init = runtime::node::init_path()
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("find labwire-init: {e}")))?;
    Ok(Target::Shell { init, pid: row.pid })
}

/// Pass bytes between the socket and the target until either ends.
pub async fn bridge(socket: WebSocket, target: Target) {
    let result = match target {
        Target::Shell { init, pid } => shell(socket, &init, pid).await,
        Target::Console(path) => console(socket, &path).await,
    };
    if let Err(e) = result {
        log::warn!("terminal: {e}");
    }
}

#[derive(serde::Deserialize)]
struct Resize {
    rows: u16,
    cols: u16,
}

async fn shell(socket: WebSocket, init: &std::path::Path, pid: i32) -> std::io::Result<()> {
    let (controller, terminal) = unix::open_pty()?;
    let _ = unix::set_window_size(&controller, 24, 80);
    let mut cmd = Command::new(init);
    cmd.args(["exec", &pid.to_string(), "--", "/bin/sh", "-c"])
        .arg("if command -v bash >/dev/null 2>&1; then exec bash -i; else exec sh -i; fi")
        .env_clear()
        .env("TERM", "xterm-256color")
        .env("HOME", "/root")
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .stdin(Stdio::from(terminal.try_clone()?))
        .stdout(Stdio::from(terminal.try_clone()?))
        .stderr(Stdio::from(terminal));
    unix::with_controlling_terminal(&mut cmd);
    let mut child = cmd.spawn()?;
    // The pseudo-terminal is read and written by threads of their own: its reads block.
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let mut reader = controller.try_clone()?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        // EIO once the shell has exited and its terminal is closed.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || out_tx.blocking_send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let (in_tx, in_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut writer = controller.try_clone()?;
    std::thread::spawn(move || {
        while let Ok(bytes) = in_rx.recv() {
            if writer.write_all(&bytes).is_err() {
                break;
            }
        }
    });
    let (mut to_client, mut from_client) = socket.split();
    loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(bytes) => {
                    if to_client.send(Message::Binary(bytes.into())).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            msg = from_client.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    let _ = in_tx.send(b.to_vec());
                }
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<Resize>(&t) {
                    Ok(r) => {
                        let _ = unix::set_window_size(&controller, r.rows, r.cols);
                    }
                    Err(_) => {
                        let _ = in_tx.send(t.as_bytes().to_vec());
                    }
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = child.kill();
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    let _ = to_client.send(Message::Close(None)).await;
    Ok(())
}

async fn console(socket: WebSocket, path: &std::path::Path) -> std::io::Result<()> {
    let stream = tokio::net::UnixStream::connect(path).await?;
    let (mut vm_out, mut vm_in) = stream.into_split();
    let (mut to_client, mut from_client) = socket.split();
    let mut buf = vec![0u8; 8192];
    loop {
        tokio::select! {
            n = vm_out.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to_client.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                        break;
                    }
                }
            },
            msg = from_client.next() => match msg {
                Some(Ok(Message::Binary(b))) => vm_in.write_all(&b).await?,
                // A serial console has no window size: resizes are dropped.
                Some(Ok(Message::Text(t))) => {
                    if serde_json::from_str::<Resize>(&t).is_err() {
                        vm_in.write_all(t.as_bytes()).await?;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = to_client.send(Message::Close(None)).await;
    Ok(())
}

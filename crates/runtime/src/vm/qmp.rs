//! QEMU's machine protocol (QMP) on the node's `qmp.sock`: the one thing labwire asks of it is a
//! NIC's link state (`set_link`), which the guest sees as carrier loss, as a pulled cable.
//!
//! A tiny client in the manner of an HTTP-over-Unix-socket API client: one JSON object per
//! line each way; asynchronous events QEMU sends in between are skipped.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{io, Error, Result};

/// The QMP socket of a node whose run directory is `run_dir`.
pub fn qmp_socket(run_dir: &Path) -> PathBuf {
    run_dir.join("qmp.sock")
}

/// Run QMP command `execute` with `arguments`; returns its `return` value.
pub fn command(
    run_dir: &Path,
    execute: &str,
    arguments: serde_json::Value,
) -> Result<serde_json::Value> {
    let path = qmp_socket(run_dir);
    let stream = UnixStream::connect(&path).map_err(io(format!(
        "connect to the VMM's QMP socket {} (a VM deployed before labwire had it: redeploy)",
        path.display()
    )))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io("set the QMP timeout"))?;
    let mut writer = stream.try_clone().map_err(io("clone the QMP socket"))?;
    let mut reader = BufReader::new(stream);
    // The greeting, then capabilities negotiation, then the command.
    read_reply(&mut reader, true)?;
    send(
        &mut writer,
        &serde_json::json!({"execute": "qmp_capabilities"}),
    )?;
    read_reply(&mut reader, false)?;
    send(
        &mut writer,
        &serde_json::json!({"execute": execute, "arguments": arguments}),
    )?;
    read_reply(&mut reader, false)
}

fn send(w: &mut UnixStream, msg: &serde_json::Value) -> Result<()> {
    let mut line = msg.to_string();
    line.push('\n');
    w.write_all(line.as_bytes())
        .map_err(io("send a QMP command"))
}

/// The next reply that is not an event: the greeting (`QMP`) or a command's `return`/`error`.
fn read_reply(r: &mut BufReader<UnixStream>, greeting: bool) -> Result<serde_json::Value> {
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).map_err(io("read QMP's answer"))?;
        if n == 0 {
            return Err(Error::Guest("the VMM closed its QMP socket".into()));
        }
        let v: serde_json::Value = serde_json::from_str(line.trim())
            .map_err(|e| Error::Guest(format!("QMP answered `{}`: {e}", line.trim())))?;
        if v.get("event").is_some() {
            continue;
        }
        if greeting {
            return Ok(v.get("QMP").cloned().unwrap_or_default());
        }
        if let Some(e) = v.get("error") {
            let desc = e.get("desc").and_then(|d| d.as_str()).unwrap_or_default();
            return Err(Error::Guest(format!("QMP refused: {desc}")));
        }
        return Ok(v.get("return").cloned().unwrap_or_default());
    }
}

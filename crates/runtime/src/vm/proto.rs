//! The host ↔ guest-agent protocol over the node's virtio-serial port: frames of one kind byte, a
//! little-endian u32 length and that many bytes. The host sends a ping with a nonce first and
//! skips frames until the matching pong, so output a previous, abandoned session left in the
//! port is never taken for its own.

use std::io::{self, Read, Write};

/// The virtio-serial port's name, as the guest sees it in /sys/class/virtio-ports/*/name.
pub const PORT_NAME: &str = "labwire.agent";

/// Host → guest: ping (payload: nonce).
pub const PING: u8 = b'P';
/// Host → guest: run a command (payload: [`ExecRequest`] as JSON).
pub const EXEC: u8 = b'X';
/// Guest → host: pong (payload: the ping's nonce).
pub const PONG: u8 = b'p';
/// Guest → host: a chunk of the command's standard output.
pub const STDOUT: u8 = b'o';
/// Guest → host: a chunk of the command's standard error.
pub const STDERR: u8 = b'e';
/// Guest → host: the command's exit code (payload: i32 LE); the last frame of an exec.
pub const EXIT: u8 = b'x';

/// Largest frame either side accepts.
pub const MAX_FRAME: usize = 16 << 20;

/// A command for the guest to run with `/bin/sh -c`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExecRequest {
    pub command: String,
    pub env: Vec<(String, String)>,
}

pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(5 + payload.len());
    buf.push(kind);
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)?;
    w.flush()
}

pub fn read_frame(r: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut hdr = [0u8; 5];
    r.read_exact(&mut hdr)?;
    let len = u32::from_le_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("agent frame of {len} bytes is over the {MAX_FRAME}-byte limit"),
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok((hdr[0], payload))
}

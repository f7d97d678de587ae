//! SSH artifacts: the lab's OpenSSH client config and the public keys that go into the lab's
//! `authorized_keys`.
//!
//! Owns reading the invoking user's public keys (`~/.ssh/*.pub` and a running agent's keys); it
//! never reads private keys and never writes outside what the caller asks for.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use topology::Lab;

/// An OpenSSH client config with one `Host` entry per workload node that has a management IPv4.
pub fn ssh_config(lab: &Lab) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# SSH client config for the nodes of lab {}, written by labwire",
        lab.name
    );
    let mut nodes: Vec<_> = lab
        .nodes
        .iter()
        .filter(|n| n.is_workload())
        .filter_map(|n| Some((n, n.mgmt_ipv4?)))
        .collect();
    nodes.sort_by(|a, b| a.0.long_name.cmp(&b.0.long_name));
    for (node, ip) in nodes {
        out.push('\n');
        // The address too, so tools that connect by address (Ansible) get the same settings.
        let _ = writeln!(out, "Host {} {ip}", node.long_name);
        let _ = writeln!(out, "  HostName {ip}");
        out.push_str("  User root\n");
        out.push_str("  StrictHostKeyChecking=no\n");
        out.push_str("  UserKnownHostsFile=/dev/null\n");
        out.push_str("  LogLevel ERROR\n");
    }
    out
}

/// Public keys to authorise in the lab: every valid key line of `<home>/.ssh/*.pub`, then every
/// key of the agent at `SSH_AUTH_SOCK` (if one answers), each as `<type> <base64>` without its
/// comment, sorted and deduplicated. Unreadable files and a silent agent are skipped.
pub fn collect_ssh_pub_keys(home: &Path) -> Vec<String> {
    collect_keys(home, std::env::var_os("SSH_AUTH_SOCK").is_some())
}

fn collect_keys(home: &Path, ask_agent: bool) -> Vec<String> {
    let mut keys = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir(home.join(".ssh")) {
        for entry in dir.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "pub") && path.is_file() {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    keys.extend(text.lines().filter_map(parse_pub_key));
                }
            }
        }
    }
    if ask_agent {
        keys.extend(agent_keys().iter().filter_map(|l| parse_pub_key(l)));
    }
    keys.into_iter().collect()
}

/// Key lines of `ssh-add -L`, or nothing when it is missing or fails (no agent, no identities).
fn agent_keys() -> Vec<String> {
    let out = Command::new("ssh-add")
        .arg("-L")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Key types OpenSSH accepts in `authorized_keys`.
fn known_key_type(t: &str) -> bool {
    matches!(
        t,
        "ssh-rsa"
            | "ssh-dss"
            | "ssh-ed25519"
            | "ssh-ed448"
            | "ecdsa-sha2-nistp256"
            | "ecdsa-sha2-nistp384"
            | "ecdsa-sha2-nistp521"
            | "sk-ecdsa-sha2-nistp256@openssh.com"
            | "sk-ssh-ed25519@openssh.com"
    )
}

/// `<type> <base64>` of a public key line, or `None` when the line is not a valid key: the type
/// must be known and the base64 blob must decode to a key that names the same type.
pub(crate) fn parse_pub_key(line: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_ascii_whitespace();
    let kind = fields.next()?;
    let blob = fields.next()?;
    if !known_key_type(kind) {
        return None;
    }
    let bytes = base64_decode(blob)?;
    // The blob starts with the key type as an SSH string: a big-endian u32 length, then the bytes.
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    if bytes.get(4..4 + len)? != kind.as_bytes() {
        return None;
    }
    Some(format!("{kind} {blob}"))
}

/// Standard base64 with padding, as OpenSSH writes it.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let b = s.as_bytes();
    let groups = b.chunks_exact(4);
    if b.is_empty() || !groups.remainder().is_empty() {
        return None;
    }
    let last = groups.len() - 1;
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (i, chunk) in groups.enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i != last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::test_lab;

    /// Real public keys made with `ssh-keygen` for these tests, comments stripped.
    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICF7ODXROGmM7YEsVVYT30mrbRroVeLmC7sPrNABA67b";

    const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCtglQz6rgfn37/dDzXo2Sg3CSxpkBTTPgexnuCdKOibCvCn9Wye2lchut5Y6g9QG45GtSZJhS/zkbsd6IH1Js8IxvZn6i8EA86MfgUzmElfo4MsxApDAHGFsmSYAFcaodTd1RBBDVyvRPHCh5Y5GLONBeFY68yicsXmgCq1vwtMQ==";

    #[test]
    fn ssh_config_lists_reachable_workloads() {
        let lab = test_lab::lab();
        let want = "\
# SSH client config for the nodes of lab t, written by labwire

Host clab-t-n1 172.20.20.2
  HostName 172.20.20.2
  User root
  StrictHostKeyChecking=no
  UserKnownHostsFile=/dev/null
  LogLevel ERROR

Host clab-t-n2 172.20.20.9
  HostName 172.20.20.9
  User root
  StrictHostKeyChecking=no
  UserKnownHostsFile=/dev/null
  LogLevel ERROR
";
        assert_eq!(ssh_config(&lab), want);
    }

    #[test]
    fn base64_round_trips_known_vectors() {
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9vYg==").unwrap(), b"foob");
        assert_eq!(base64_decode("Zm9vYmE=").unwrap(), b"fooba");
        assert!(base64_decode("Zm9").is_none());
        assert!(base64_decode("Zm=v").is_none());
        assert!(base64_decode("Zm9v!A==").is_none());
    }

    #[test]
    fn pub_key_lines_are_validated() {
        assert_eq!(
            parse_pub_key(&format!("{ED25519} me@box")).unwrap(),
            ED25519
        );
        assert_eq!(parse_pub_key(&format!("  {ED25519}  ")).unwrap(), ED25519);
        // Type and blob disagree.
        let lie = ED25519.replace("ssh-ed25519", "ssh-rsa");
        assert_eq!(parse_pub_key(RSA).unwrap(), RSA);
        assert!(parse_pub_key(&lie).is_none());
        assert!(parse_pub_key("# comment").is_none());
        assert!(parse_pub_key("").is_none());
        assert!(parse_pub_key("ssh-ed25519").is_none());
        assert!(parse_pub_key("ssh-ed25519 not-base64!").is_none());
        assert!(parse_pub_key("-----BEGIN OPENSSH PRIVATE KEY-----").is_none());
    }

    #[test]
    fn collects_sorted_unique_keys_from_pub_files() {
        let home = crate::artifacts::test_dir("sshkeys");
        let ssh = home.join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        std::fs::write(ssh.join("id_ed25519.pub"), format!("{ED25519} a@b\n")).unwrap();
        std::fs::write(
            ssh.join("more.pub"),
            format!("garbage line\n{ED25519} dup@c\n{RSA}\n"),
        )
        .unwrap();
        std::fs::write(ssh.join("id_ed25519"), "PRIVATE, never read\n").unwrap();
        // The agent is left out here: the test must not depend on the caller's agent.
        let keys = collect_keys(&home, false);
        assert_eq!(keys, vec![ED25519.to_string(), RSA.to_string()]);
        assert!(collect_keys(&home.join("nowhere"), false).is_empty());
        std::fs::remove_dir_all(&home).unwrap();
    }
}

//! The spawner's request: `argc` and `envc` (u32, little-endian), then the NUL-terminated argument
//! strings (the first names the program) and environment strings. Written by labwire
//! (`runtime::spawner`) and read by `labwire-init spawner`, which includes this file itself rather
//! than linking the runtime library.

use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt as _;

/// The largest request sent through the spawner; a larger one (thousands of binds) starts its
/// init directly.
pub const MAX_REQUEST: usize = 200 * 1024;

/// The request for `argv` (the program first) with environment `env`, or `None` when a string
/// holds a NUL byte or the request is larger than [`MAX_REQUEST`].
pub fn encode(argv: &[OsString], env: &BTreeMap<String, String>) -> Option<Vec<u8>> {
    let mut msg = Vec::with_capacity(4096);
    msg.extend_from_slice(&u32::try_from(argv.len()).ok()?.to_le_bytes());
    msg.extend_from_slice(&u32::try_from(env.len()).ok()?.to_le_bytes());
    for a in argv {
        let b = a.as_bytes();
        if b.contains(&0) {
            return None;
        }
        msg.extend_from_slice(b);
        msg.push(0);
    }
    for (k, v) in env {
        if k.contains('\0') || v.contains('\0') || k.contains('=') {
            return None;
        }
        msg.extend_from_slice(k.as_bytes());
        msg.push(b'=');
        msg.extend_from_slice(v.as_bytes());
        msg.push(0);
    }
    (msg.len() <= MAX_REQUEST).then_some(msg)
}

/// The argument and environment strings of a request from [`encode`]; an error (as the init's
/// report says it) for a message that is not one.
pub fn decode(msg: &[u8]) -> Result<(Vec<CString>, Vec<CString>), String> {
    let count = |at: usize| {
        msg.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let (Some(argc), Some(envc)) = (count(0), count(4)) else {
        return Err("spawner: a request too short".into());
    };
    let mut strings = msg[8..]
        .split_inclusive(|b| *b == 0)
        .map(|s| CString::from_vec_with_nul(s.to_vec()).map_err(|_| "spawner: bad string"));
    let mut take = |n: usize| -> Result<Vec<CString>, String> {
        (0..n)
            .map(|_| {
                strings
                    .next()
                    .unwrap_or(Err("spawner: a request cut short"))
            })
            .collect::<Result<_, _>>()
            .map_err(str::to_string)
    };
    let argv = take(argc)?;
    let envp = take(envc)?;
    if argv.is_empty() {
        return Err("spawner: a request without a program".into());
    }
    Ok((argv, envp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_holds_the_arguments_then_the_environment() {
        let argv: Vec<OsString> = ["/bin/x", "--a", ""].iter().map(OsString::from).collect();
        let env = BTreeMap::from([("K".to_string(), "v=1".to_string())]);
        let msg = encode(&argv, &env).unwrap();
        assert_eq!(&msg[..8], &[3, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&msg[8..], b"/bin/x\0--a\0\0K=v=1\0");
    }

    #[test]
    fn a_request_decodes_to_what_was_encoded() {
        let argv: Vec<OsString> = ["/bin/x", "--a", ""].iter().map(OsString::from).collect();
        let env = BTreeMap::from([("K".to_string(), "v=1".to_string())]);
        let (a, e) = decode(&encode(&argv, &env).unwrap()).unwrap();
        let text = |v: &[CString]| -> Vec<String> {
            v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
        };
        assert_eq!(text(&a), ["/bin/x", "--a", ""]);
        assert_eq!(text(&e), ["K=v=1"]);
        let msg = encode(&argv, &env).unwrap();
        assert!(
            decode(&msg[..msg.len() - 3]).is_err(),
            "a request cut short"
        );
        assert!(decode(&msg[..5]).is_err(), "a request too short");
    }

    #[test]
    fn a_request_that_cannot_be_sent_whole_is_refused() {
        let nul: Vec<OsString> = vec!["a\0b".into()];
        assert!(encode(&nul, &BTreeMap::new()).is_none());
        let big: Vec<OsString> = vec!["x".repeat(MAX_REQUEST).into()];
        assert!(encode(&big, &BTreeMap::new()).is_none());
    }
}

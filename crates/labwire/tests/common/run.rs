//! Running programs from a test: the `labwire` binary under test (with labwire-init beside it),
//! any command with a timeout whose output is kept for the failure message, and polling until a
//! condition holds.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub fn labwire_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_labwire"))
}

/// labwire-init next to the labwire binary under test; panics with what to do when missing.
pub fn init_bin() -> PathBuf {
    let init = labwire_bin()
        .parent()
        .expect("the labwire binary has a directory")
        .join("labwire-init");
    assert!(
        init.is_file(),
        "{} is missing: labwire-init is a binary of the `runtime` crate, which `cargo test -p labwire` \
         does not build. Run `cargo build` (same profile and CARGO_TARGET_DIR) first.",
        init.display()
    );
    init
}

/// Fails (does not skip) when the machine cannot run these tests.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the native end-to-end tests deploy real labs (namespaces, veths, bridges) and must run as root; \
         run them with sudo (e.g. `sudo -E cargo test -p labwire --test native`)"
    );
    init_bin();
}

pub fn labwire() -> Command {
    let mut c = Command::new(labwire_bin());
    c.env("LABWIRE_INIT", init_bin());
    c.stdin(Stdio::null());
    c
}

/// Run to completion, at most `timeout`; the child is killed (and the test fails) past it.
pub fn run_timeout(mut cmd: Command, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let read_all = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = read_all(Box::new(out));
    let err = read_all(Box::new(err));
    let status = wait_timeout(&mut child, timeout).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not finish within {timeout:?}");
    });
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().expect("wait for a child") {
            return Some(s);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

pub fn run_ok(cmd: Command) -> Output {
    let what = format!("{cmd:?}");
    let out = run_timeout(cmd, Duration::from_secs(120));
    assert!(out.status.success(), "{what} failed: {}", describe(&out));
    out
}

/// Retry `check` until it returns Ok or `timeout` passes; the last error otherwise.
pub fn poll<T>(
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let end = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= end => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

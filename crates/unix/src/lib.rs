//! The few raw Unix system calls labwire makes outside `wire` and the node init, each behind a
//! safe function: file locks, signals, fork and exec of the deploy's supervisor, the file system
//! type of a directory, resource limits and usage.
//!
//! Every `unsafe` block of the orchestration lives here, next to the reason it is sound; callers
//! hold none. It owns no policy: what to lock, when to fork and which signals matter are the
//! callers' decisions.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd as _, OwnedFd};
use std::path::Path;

/// How [`flock`] locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flock {
    /// Exclusive, waiting for other holders.
    Exclusive,
    /// Exclusive, failing at once (`WouldBlock`) when another process holds it.
    ExclusiveNow,
    /// Shared, waiting.
    Shared,
}

/// Take an advisory lock on `file`, held until the file is closed. A wait interrupted by a
/// signal is retried unless `give_up` says otherwise (then the error is `Interrupted`).
pub fn flock(file: &impl AsRawFd, how: Flock, give_up: &dyn Fn() -> bool) -> io::Result<()> {
    let op = match how {
        Flock::Exclusive => libc::LOCK_EX,
        Flock::ExclusiveNow => libc::LOCK_EX | libc::LOCK_NB,
        Flock::Shared => libc::LOCK_SH,
    };
    loop {
        // SAFETY: flock only reads the descriptor, which the caller keeps open for the call.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted || give_up() {
            return Err(e);
        }
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Send `sig` to process `pid`. Returns whether it was delivered. Callers make sure the pid is
/// still the process they mean (see `runtime::process::ProcId`).
pub fn kill(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) takes plain integers and touches no memory of this process.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Run `handler` on each of `signals`. The handler must be async-signal-safe (an atomic store, a
/// `kill`): it runs between any two instructions of any thread.
pub fn on_signals(signals: &[i32], handler: extern "C" fn(libc::c_int), restart: bool) {
    for &sig in signals {
        // SAFETY: a zeroed sigaction is a valid empty one; the handler is a plain `extern "C"`
        // function whose async-signal safety the caller promises (see above).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            if restart {
                sa.sa_flags = libc::SA_RESTART;
            }
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Restore the default disposition of SIGPIPE (a closed pipe ends the program quietly).
pub fn default_sigpipe() {
    // SAFETY: sets a standard disposition; no handler code is involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Raise the soft open-files limit to the hard one.
pub fn raise_nofile_limit() {
    // SAFETY: getrlimit/setrlimit on a struct owned here.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// This process's peak resident memory, in KiB.
pub fn peak_rss_kib() -> i64 {
    // SAFETY: getrusage fills the zeroed struct owned here.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    ru.ru_maxrss
}

/// The file system type (`statfs`'s `f_type`) of `path`.
// f_type's integer type differs between C libraries and architectures.
#[allow(clippy::unnecessary_cast)]
pub fn fs_type(path: &Path) -> io::Result<i64> {
    let c = cstring(path)?;
    // SAFETY: statfs fills a zeroed struct for a NUL-terminated path.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        if libc::statfs(c.as_ptr(), &mut st) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st.f_type as i64)
    }
}

/// Whether `path` is on a tmpfs.
#[allow(clippy::unnecessary_cast)]
pub fn is_tmpfs(path: &Path) -> io::Result<bool> {
    Ok(fs_type(path)? == libc::TMPFS_MAGIC as i64)
}

/// Mount a tmpfs named `source` on `path`, nosuid and nodev, with `options` (`mode=755`).
pub fn mount_tmpfs(source: &CStr, path: &Path, options: &CStr) -> io::Result<()> {
    let c = cstring(path)?;
    // SAFETY: every pointer is a NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            c.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            options.as_ptr().cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the path"))
}

/// A pipe (close-on-exec): its read end and its write end, as files.
pub fn pipe() -> io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills a two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and nothing else owns them.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((File::from(r), File::from(w)))
}

/// Which side of a [`fork`] this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// The parent, with the child's pid.
    Parent(i32),
    Child,
}

/// The number of threads of this process.
fn threads() -> Option<usize> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// Fork this process. Refused unless the process has a single thread: only then may the child
/// run ordinary code (no lock of another thread is held forever in it).
pub fn fork() -> io::Result<Forked> {
    if threads() != Some(1) {
        return Err(io::Error::other(
            "fork refused: the process has more than one thread",
        ));
    }
    // SAFETY: the process has a single thread (checked above), so the child inherits no lock
    // held by a thread that does not exist in it.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Start a new session and become the subreaper of this process's descendants (orphans are
/// reparented here instead of to PID 1).
pub fn new_session_as_subreaper() {
    // SAFETY: both calls change only attributes of this process.
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Point standard input, output and error at /dev/null (a process that outlives its caller must
/// not hold the caller's terminal or pipes open).
pub fn stdio_to_dev_null() {
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns; `null` stays open
        // for the call.
        unsafe { libc::dup2(null.as_raw_fd(), fd) };
    }
}

/// Replace this process with `path` run as `argv`. Returns only on failure.
pub fn execv(path: &CStr, argv: &[CString]) -> io::Error {
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: `ptrs` is a NULL-terminated array of NUL-terminated strings that outlive the call.
    unsafe { libc::execv(path.as_ptr(), ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// Wait for child `pid` to exit.
pub fn wait_child(pid: i32) {
    let mut status = 0;
    // SAFETY: waitpid writes the status into a local.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// Wait for any child to exit; `false` once there are no children left.
pub fn wait_any_child() -> bool {
    let mut status = 0;
    // SAFETY: waitpid writes the status into a local.
    unsafe { libc::waitpid(-1, &mut status, 0) >= 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    #[test]
    fn a_pipe_carries_bytes_and_ends_when_the_writer_closes() {
        let (mut r, mut w) = pipe().unwrap();
        w.write_all(b"42\n").unwrap();
        drop(w);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "42\n");
    }

    #[test]
    fn a_second_exclusive_lock_on_the_same_file_is_refused_at_once() {
        let path = std::env::temp_dir().join(format!("unix-flock-{}", std::process::id()));
        let a = File::create(&path).unwrap();
        let b = File::open(&path).unwrap();
        flock(&a, Flock::ExclusiveNow, &|| false).unwrap();
        let e = flock(&b, Flock::ExclusiveNow, &|| false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(a);
        flock(&b, Flock::ExclusiveNow, &|| false).unwrap();
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn fork_is_refused_with_several_threads() {
        // The test harness runs tests on threads of their own.
        let t = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(200)));
        assert!(fork().is_err());
        t.join().unwrap();
    }

    #[test]
    fn proc_is_tmpfs_or_not_and_dev_shm_is() {
        assert!(!is_tmpfs(Path::new("/proc")).unwrap());
        if Path::new("/dev/shm").is_dir() {
            assert!(is_tmpfs(Path::new("/dev/shm")).unwrap());
        }
    }
}

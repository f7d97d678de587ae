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

/// A connected pair of sequenced-packet Unix sockets (close-on-exec): each send is one message,
/// received whole.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair fills a two-element array.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Room for the control message of one descriptor (`CMSG_SPACE` of an int is 24 on 64-bit),
/// aligned for the `cmsghdr` read and written through it.
#[repr(C, align(8))]
struct FdControl([u8; 32]);

/// Send `data` as one message on `sock` with a copy of `fd` attached (`SCM_RIGHTS`).
pub fn send_with_fd(sock: &impl AsRawFd, data: &[u8], fd: &impl AsRawFd) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut control = FdControl([0; 32]);
    // SAFETY: msghdr is plain data; every pointer set below outlives the sendmsg call, and the
    // control buffer is aligned and large enough for one descriptor.
    let rc = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd.as_raw_fd());
        libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
    };
    match rc {
        n if n < 0 => Err(io::Error::last_os_error()),
        n if n as usize != data.len() => Err(io::Error::other("message sent in part")),
        _ => Ok(()),
    }
}

/// Receive one message on `sock` into `buf`, and the descriptor attached to it if any (taken
/// close-on-exec). A length of 0 with no descriptor means the peer closed its end.
pub fn recv_with_fd(sock: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = FdControl([0; 32]);
    // SAFETY: as in send_with_fd; recvmsg writes at most the lengths given. A descriptor found
    // in the control message was just received and is owned by nothing else.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = control.0.len() as _;
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut fd = None;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if !cmsg.is_null()
            && (*cmsg).cmsg_level == libc::SOL_SOCKET
            && (*cmsg).cmsg_type == libc::SCM_RIGHTS
            && (*cmsg).cmsg_len as usize
                == libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as usize
        {
            let raw = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
            fd = Some(OwnedFd::from_raw_fd(raw));
        }
        if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
            return Err(io::Error::other(
                "message or its descriptors longer than the buffer",
            ));
        }
        Ok((n as usize, fd))
    }
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

/// Create `name` in the directory `dir` for writing: it must not exist yet, and a symbolic link
/// in its place is an error, not followed (`O_CREAT | O_EXCL | O_NOFOLLOW`). Created 0600.
pub fn create_new_at(dir: &File, name: &CStr) -> io::Result<File> {
    // SAFETY: openat on a directory descriptor the caller holds, with a NUL-terminated name; the
    // returned descriptor is owned by nothing else and becomes the File's.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600 as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The directory `name` in the directory `dir`, made (with `mode`) if missing, and opened without
/// following a symbolic link in its place: a link or a non-directory there is an error (`ELOOP`,
/// `ENOTDIR`), so nothing is ever created through it.
pub fn dir_at(dir: &File, name: &CStr, mode: u32) -> io::Result<File> {
    // SAFETY: mkdirat in a directory descriptor the caller holds, with a NUL-terminated name.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) } != 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(e);
        }
    }
    // SAFETY: as in `create_new_at`: the returned descriptor becomes the File's alone.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Make `name` in the directory `dir` a symbolic link to `target`, replacing a file or link of
/// that name (never following one).
pub fn symlink_at(target: &CStr, dir: &File, name: &CStr) -> io::Result<()> {
    match unlink_at(dir, name) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // SAFETY: symlinkat in a directory descriptor the caller holds, NUL-terminated strings.
    if unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Rename `from` to `to`, both names in the directory `dir` (atomic within one file system).
pub fn rename_at(dir: &File, from: &CStr, to: &CStr) -> io::Result<()> {
    // SAFETY: renameat within one directory descriptor the caller holds, NUL-terminated names.
    let rc =
        unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Remove the file `name` from the directory `dir`.
pub fn unlink_at(dir: &File, name: &CStr) -> io::Result<()> {
    // SAFETY: unlinkat within a directory descriptor the caller holds, a NUL-terminated name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The primary and supplementary groups of the user `uid`, from the passwd and group databases;
/// empty when `uid` has no passwd entry.
pub fn groups_of(uid: u32) -> Vec<u32> {
    // SAFETY: getpwuid_r fills `pw` with pointers into `buf`, which outlives their use here;
    // getgrouplist writes at most `n` gids into `groups`.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        if libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) != 0
            || found.is_null()
        {
            return Vec::new();
        }
        let mut n: libc::c_int = 256;
        let mut groups = vec![0 as libc::gid_t; n as usize];
        if libc::getgrouplist(pw.pw_name, pw.pw_gid, groups.as_mut_ptr(), &mut n) < 0 {
            return vec![pw.pw_gid];
        }
        groups.truncate(n.max(0) as usize);
        groups
    }
}

/// Whether the user `uid`, in `groups` (its primary group first), may read `path` — and search it,
/// if it is a directory — as the kernel judges it: mode bits, ACLs and every directory on the way.
///
/// The question is asked from a thread of its own that takes that identity for filesystem checks
/// only: Linux keeps credentials per thread, so `setgroups`, `setfsgid` and `setfsuid` made as
/// raw system calls (the C library's wrappers would change every thread) change that thread alone,
/// and a non-zero fsuid drops the capabilities that bypass permission checks. The thread ends with
/// the answer; the rest of the process keeps root throughout.
pub fn can_read_as(uid: u32, groups: &[u32], path: &Path, dir: bool) -> bool {
    let Ok(cpath) = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())) else {
        return false;
    };
    let gid = groups.first().copied().unwrap_or(65534);
    let mode = if dir {
        libc::R_OK | libc::X_OK
    } else {
        libc::R_OK
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: plain system calls on this thread's own credentials, with a valid gid list
            // and a NUL-terminated path that outlive them; the thread ends right after.
            unsafe {
                if libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) != 0 {
                    return false;
                }
                libc::syscall(libc::SYS_setfsgid, gid);
                libc::syscall(libc::SYS_setfsuid, uid);
                // setfsuid reports the previous fsuid, never an error: read it back.
                if libc::syscall(libc::SYS_setfsuid, u32::MAX) != i64::from(uid) {
                    return false;
                }
                libc::faccessat(libc::AT_FDCWD, cpath.as_ptr(), mode, libc::AT_EACCESS) == 0
            }
        })
        .join()
        .unwrap_or(false)
    })
}

/// Turn transmit checksum offload off on the interface `ifname` of the calling thread's network
/// namespace (what `ethtool -K IF tx off` does, through the ETHTOOL_STXCSUM ioctl).
pub fn disable_tx_checksum_offload(ifname: &str) -> io::Result<()> {
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    const ETHTOOL_STXCSUM: u32 = 0x17;
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ || ifname.contains('\0') {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let mut value = EthtoolValue {
        cmd: ETHTOOL_STXCSUM,
        data: 0,
    };
    // SAFETY: a plain datagram socket, owned by the OwnedFd that closes it.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero ifreq is valid; the name (checked shorter than IFNAMSIZ, so it stays
    // NUL-terminated) is copied in, and the data pointer refers to `value`, which outlives the
    // ioctl.
    let rc = unsafe {
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (d, s) in ifr.ifr_name.iter_mut().zip(ifname.as_bytes()) {
            *d = *s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
        libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut ifr)
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The name of the user running this process, from the passwd database (`None` without an
/// entry).
pub fn user_name() -> Option<String> {
    let mut pw: libc::passwd = zeroed_passwd();
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: getuid cannot fail; getpwuid_r fills `pw` with pointers into `buf`, which outlives
    // the read of the name below.
    unsafe {
        if libc::getpwuid_r(
            libc::getuid(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        ) != 0
            || found.is_null()
            || pw.pw_name.is_null()
        {
            return None;
        }
        Some(CStr::from_ptr(pw.pw_name).to_string_lossy().into_owned())
    }
}

fn zeroed_passwd() -> libc::passwd {
    // SAFETY: passwd is a plain C struct of pointers and integers, for which all zeroes is valid.
    unsafe { std::mem::zeroed() }
}

/// The kernel's clock ticks per second (`_SC_CLK_TCK`), which `/proc/<pid>/stat` times count in.
pub fn clock_ticks_per_second() -> i64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1)
}

/// A new pseudo-terminal: its controller end and the terminal end a child takes as its stdio
/// (both close-on-exec; a child gets the terminal through `Stdio`, which duplicates it).
pub fn open_pty() -> io::Result<(File, File)> {
    let (mut controller, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two descriptors into the given integers; a null name, termios and
    // window size are allowed (defaults).
    let r = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and nothing else owns them.
    let (c, t) = unsafe {
        (
            OwnedFd::from_raw_fd(controller),
            OwnedFd::from_raw_fd(terminal),
        )
    };
    for fd in [&c, &t] {
        // SAFETY: F_SETFD on a descriptor this function owns.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok((File::from(c), File::from(t)))
}

/// Tell the terminal behind `pty` (either end) its size in characters.
pub fn set_window_size(pty: &impl AsRawFd, rows: u16, cols: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize that lives for the call.
    if unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Make `cmd`'s child lead a new session whose controlling terminal is its standard input (a
/// terminal from [`open_pty`]), so a shell there gets job control and Ctrl-C.
pub fn with_controlling_terminal(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: between fork and exec the closure calls only setsid and ioctl, both
    // async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
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
    fn a_descriptor_sent_with_a_message_arrives_with_it() {
        use std::io::{Read as _, Write as _};
        let (a, b) = seqpacket_pair().unwrap();
        let (r, mut w) = pipe().unwrap();
        send_with_fd(&a, b"hello", &r).unwrap();
        drop(r);
        let mut buf = [0u8; 16];
        let (n, fd) = recv_with_fd(&b, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        w.write_all(b"through").unwrap();
        drop(w);
        let mut got = String::new();
        File::from(fd.expect("a descriptor"))
            .read_to_string(&mut got)
            .unwrap();
        assert_eq!(got, "through");
        drop(a);
        let (n, fd) = recv_with_fd(&b, &mut buf).unwrap();
        assert_eq!((n, fd.is_none()), (0, true));
    }

    #[test]
    fn proc_is_tmpfs_or_not_and_dev_shm_is() {
        assert!(!is_tmpfs(Path::new("/proc")).unwrap());
        if Path::new("/dev/shm").is_dir() {
            assert!(is_tmpfs(Path::new("/dev/shm")).unwrap());
        }
    }
}

//! The crate's one error type. Each message is short and names the operation and the object it
//! was applied to (`create veth eth1<->eth2: File exists (os error 17)`).

use std::io;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `wire`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused a netlink request.
    #[error("{op}: {errno}{}", extack.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Netlink {
        /// What was asked, naming the object (`create veth a<->b`).
        op: String,
        /// The errno the kernel answered with.
        errno: io::Error,
        /// The kernel's extended-ack message, when it sent one.
        extack: Option<String>,
    },
    /// The kernel has no driver for a link kind (`dummy`, `bond`, …) and could not load one.
    #[error("the running kernel lacks the \"{kind}\" link type (module not available)")]
    KernelLacks {
        /// The `IFLA_INFO_KIND` that was asked for.
        kind: String,
    },
    /// The kernel (or `/dev`) lacks something other than a link type: the tun driver, a tc qdisc,
    /// classifier or action. `what` names the missing piece and where it would come from.
    #[error("{op}: {what}")]
    Unsupported {
        /// What was being done, naming the object (`create tap tap0`).
        op: String,
        /// What is missing (`the running kernel lacks the tc "u32" classifier (cls_u32)`).
        what: String,
        /// The errno that said so (`ENOENT`, `EOPNOTSUPP`, …).
        errno: io::Error,
    },
    /// One request of a batch failed; `index` counts from 0 in the order requests were queued (the
    /// message counts from 1).
    #[error("batch request {} of {total}: {error}", index + 1)]
    Batch {
        /// Position of the failed request in the batch.
        index: usize,
        /// Number of requests in the batch.
        total: usize,
        /// Why it failed.
        error: Box<Error>,
    },
    /// A system call other than a netlink request failed (open, setns, mount, …).
    #[error("{op}: {errno}")]
    Sys {
        /// What was being done, naming the object (`open netns /run/netns/x`).
        op: String,
        /// The errno.
        errno: io::Error,
    },
    /// The kernel answered with something this crate could not make sense of.
    #[error("{op}: malformed netlink reply: {what}")]
    Protocol {
        /// The request being answered.
        op: String,
        /// What was wrong.
        what: String,
    },
    /// A caller-supplied value cannot be used (`register netns "a/b": name contains '/'`).
    #[error("{op}: {what}")]
    Invalid {
        /// What was being done.
        op: String,
        /// What is wrong with the value and what would be accepted.
        what: String,
    },
}

impl Error {
    /// The errno behind this error, looking through [`Error::Batch`].
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Netlink { errno, .. }
            | Error::Sys { errno, .. }
            | Error::Unsupported { errno, .. } => errno.raw_os_error(),
            Error::Batch { error, .. } => error.raw_os_error(),
            Error::KernelLacks { .. } => Some(libc::EOPNOTSUPP),
            _ => None,
        }
    }

    /// The error itself, or the failed request's error for [`Error::Batch`].
    pub fn innermost(&self) -> &Error {
        match self {
            Error::Batch { error, .. } => error.innermost(),
            e => e,
        }
    }

    pub(crate) fn sys(op: impl Into<String>) -> Error {
        Error::Sys {
            op: op.into(),
            errno: io::Error::last_os_error(),
        }
    }

    pub(crate) fn sys_from(op: impl Into<String>, errno: io::Error) -> Error {
        Error::Sys {
            op: op.into(),
            errno,
        }
    }
}

//! Linux networking for labwire over hand-rolled, synchronous rtnetlink.
//!
//! `wire` owns everything that touches the kernel's network configuration: network namespaces
//! ([`netns`]), links, addresses and routes ([`netlink`]), tc redirects that stitch two links
//! together ([`Handle::stitch`]), TAP devices ([`tap`]) and per-namespace sysctls ([`sysctl`]).
//! It speaks `NETLINK_ROUTE` directly through `libc`; nothing above this crate speaks netlink, and
//! this crate never reads topology files or decides what a lab looks like.
//!
//! Links are always created in place: a veth pair is born with each end already inside its target
//! namespace (`IFLA_NET_NS_FD` on the link and on the peer), never created in one namespace and
//! moved, which costs an RCU grace period per move.

mod error;
pub mod netlink;
pub mod netns;
pub mod sysctl;
pub mod tap;

pub use error::{Error, Result};
pub use netlink::{Batch, Handle, Link, Macvlan, MacvlanMode, VethEnd, Vxlan};
pub use netns::NetNs;
pub use tap::{create_tap, open_tap};

//! Orchestration: deploy a normalised lab (plan, stages, worker pool, journal, rollback), destroy it
//! from its recorded state, inspect it, run commands in it, and write its artifacts.
//!
//! It owns the lab's lifecycle and its host-side bookkeeping; it speaks netlink only through `wire`
//! and starts nodes only through `runtime`.

pub mod artifacts;
pub mod contain;
pub mod converge;
pub mod deploy;
pub mod destroy;
pub mod error;
pub mod events;
pub mod exec;
pub mod generate;
pub mod images;
pub mod inspect;
pub mod lifecycle;
pub mod linkops;
pub mod links;
pub mod lock;
pub mod mgmt_fabric;
pub mod partition;
pub mod paths;
pub mod pool;
pub mod progress;
pub mod signals;
pub mod state;
pub mod supervise;
pub mod wiring;

pub use error::{Error, Result};

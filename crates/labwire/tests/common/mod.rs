//! Helpers shared by the end-to-end tests (`native.rs`, `features.rs`, `docker.rs`, `podman.rs`,
//! …), one submodule per concern: running programs (`run`), a lab under test and its leftover
//! checks (`testlab`), labs built with a name and subnet of their own (`builder`), network state
//! as `ip` shows it (`net`), /etc/hosts (`hosts`), container engines (`engine`), image stores
//! (`store`, `open_nos`) and VM kernels (`vm`). Every helper is re-exported here, so
//! `use common::*` (or `common::name`) reaches it whichever file holds it. Each test binary uses
//! a different subset.
#![allow(dead_code, unused_imports)]

mod builder;
mod engine;
mod hosts;
mod net;
pub mod open_nos;
mod run;
pub mod store;
mod testlab;
mod vm;

pub use builder::*;
pub use engine::*;
pub use hosts::*;
pub use net::*;
pub use run::*;
pub use testlab::*;
pub use vm::*;

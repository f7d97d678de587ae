//! The labwire command line: parse flags, call the `lab` and `topology` crates, print results.
//!
//! Thin on purpose: every command lives in `commands/<verb>.rs`; nothing here speaks netlink or YAML.

mod clab;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A closed pipe (`labwire inspect | head`) is not an error.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    raise_nofile_limit();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.first().is_some_and(clab::invoked_as_containerlab) {
        return clab::main(args);
    }
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(1)
        }
    }
}

/// A large lab holds a descriptor per node namespace (and a netlink socket per peer namespace while
/// wiring): raise the soft open-files limit to the hard one so 1000-node labs never hit EMFILE.
fn raise_nofile_limit() {
    // SAFETY: getrlimit/setrlimit on a zeroed struct owned here.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

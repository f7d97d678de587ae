//! The labwire command line: parse flags, call the `lab` and `topology` crates, print results.
//!
//! Thin on purpose: every command lives in `commands/<verb>.rs`; nothing here speaks netlink or YAML.

mod clab;
mod commands;
mod logging;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A closed pipe (`labwire inspect | head`) is not an error.
    unix::default_sigpipe();
    // A large lab holds a descriptor per node namespace (and a netlink socket per peer namespace
    // while wiring): 1000-node labs must never hit EMFILE.
    unix::raise_nofile_limit();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.first().is_some_and(clab::invoked_as_containerlab) {
        return clab::main(args);
    }
    let cli = commands::Cli::parse();
    logging::init(cli.debug, cli.log_level.as_deref());
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(1)
        }
    }
}

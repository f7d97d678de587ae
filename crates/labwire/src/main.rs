//! The labwire command line: parse flags, call the `lab` and `topology` crates, print results.
//!
//! Thin on purpose: every command lives in `commands/<verb>.rs`; nothing here speaks netlink or YAML.

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
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(1)
        }
    }
}

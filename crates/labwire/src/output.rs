//! How the binary talks to people: errors once, with their whole chain; topology diagnostics with
//! source snippets on a terminal and plain lines when piped.

use std::io::IsTerminal;

/// Print an error and its causes as `error: a: b: c`, or topology diagnostics when that is what failed.
pub fn print_error(e: &anyhow::Error) {
    if let Some(le) = e.downcast_ref::<topology::LoadError>() {
        eprint!("{}", le.0.render(std::io::stderr().is_terminal()));
        eprintln!("error: {le}");
        return;
    }
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    eprintln!("error: {msg}");
}

/// Print warnings from a load (positions and snippets as for errors).
pub fn print_warnings(w: &topology::Diagnostics) {
    if w.items.is_empty() {
        return;
    }
    eprint!("{}", w.render(std::io::stderr().is_terminal()));
}

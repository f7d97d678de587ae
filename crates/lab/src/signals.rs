//! Ctrl-C and SIGTERM during deploy: remembered in a flag that the deploy checks between steps, so
//! it stops and rolls back instead of dying half-way.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Route SIGINT, SIGTERM and SIGHUP to the flag.
pub fn install() {
    // The handler is async-signal-safe: a single atomic store.
    unix::on_signals(
        &[libc::SIGINT, libc::SIGTERM, libc::SIGHUP],
        on_signal,
        false,
    );
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Mark the process interrupted (the user's process went away).
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

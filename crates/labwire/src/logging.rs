//! The program's log: records of the `log` facade go to standard error, one line each, with a UTC
//! timestamp and the level, so a piped deploy shows its stages as they happen.
//!
//! The level is `--log-level`, or debug with `-d/--debug`; by default info when standard error is
//! not a terminal (progress lines) and warn on a terminal, where a redrawn status line shows
//! progress instead.

use std::io::{IsTerminal as _, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLog {
    level: LevelFilter,
    /// A terminal's status line is cleared before a record is printed over it.
    terminal: bool,
}

impl Log for StderrLog {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let clear = if self.terminal { "\r\x1b[2K" } else { "" };
        let line = format!(
            "{clear}{} {:<5} {}\n",
            timestamp(SystemTime::now()),
            r.level(),
            r.args()
        );
        // One write per record, so lines from several threads never interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// The level the flags ask for.
pub fn level(debug: bool, log_level: Option<&str>, terminal: bool) -> LevelFilter {
    match log_level.and_then(|l| l.parse().ok()) {
        Some(l) => l,
        None if debug => LevelFilter::Debug,
        None if terminal => LevelFilter::Warn,
        None => LevelFilter::Info,
    }
}

/// Send the program's log to standard error.
pub fn init(debug: bool, log_level: Option<&str>) {
    let terminal = std::io::stderr().is_terminal();
    let level = level(debug, log_level, terminal);
    if log::set_boxed_logger(Box::new(StderrLog { level, terminal })).is_ok() {
        log::set_max_level(level);
    }
}

/// `2026-12-01T15:40:00.123Z`.
fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = image::rfc3339(d.as_secs() as i64);
    let whole = secs.trim_end_matches('Z');
    format!("{whole}.{:03}Z", d.subsec_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_rfc3339_with_milliseconds() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_999);
        assert_eq!(timestamp(t), "2024-02-29T23:59:59.999Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(timestamp(t), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn flags_choose_the_level() {
        assert_eq!(level(false, None, true), LevelFilter::Warn);
        assert_eq!(level(false, None, false), LevelFilter::Info);
        assert_eq!(level(true, None, true), LevelFilter::Debug);
        assert_eq!(level(true, Some("error"), false), LevelFilter::Error);
        assert_eq!(level(false, Some("trace"), true), LevelFilter::Trace);
    }
}

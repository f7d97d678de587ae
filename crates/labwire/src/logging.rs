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
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// The calendar date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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

//! The lab's event stream: node and link state changes (started, stopped, restarted, link up/down,
//! impairment changed), appended as one JSON object per line to `events.jsonl` in the lab's state
//! directory, and followed live by `labwire events`.
//!
//! It owns that file's format and its writer and reader; it decides nothing about when a change
//! happens (the code that makes the change calls [`emit`], one line per call site). Each line is
//! written with one `write(2)` on an O_APPEND descriptor, so writers in separate processes never
//! interleave and need no lock; the file is 0600 inside the lab's 0700 state directory. The file
//! lives as long as one deployment: destroy removes the state directory with it, and a follower
//! reopens the new file of the next deploy.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{io, Result};
use crate::paths;

/// The file's name in the lab's state directory.
pub const EVENTS_FILE: &str = "events.jsonl";

/// One change in a running lab. Endpoints are written `node:interface`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The lab was deployed (`nodes` workload nodes).
    LabDeployed {
        nodes: usize,
    },
    /// The lab is being destroyed (the last event of its file).
    LabDestroyed,
    NodeStarted {
        node: String,
    },
    NodeStopped {
        node: String,
    },
    NodeRestarted {
        node: String,
    },
    /// A link was taken down: both ends lost carrier.
    LinkDown {
        endpoint: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
    },
    /// A link was brought back up.
    LinkUp {
        endpoint: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
    },
    /// The impairment on an endpoint's egress changed (empty: none any more).
    ImpairmentChanged {
        endpoint: String,
        impairment: topology::Impairment,
    },
}

impl Event {
    /// The `event` tag as written (`node-started`, `link-down`, …).
    pub fn name(&self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m
                .get("event")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        }
    }
}

/// One line of the file: when, which lab, what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    pub lab: String,
    #[serde(flatten)]
    pub event: Event,
}

/// The events file of a lab.
pub fn events_path(lab: &str) -> PathBuf {
    paths::lab_state_dir(lab).join(EVENTS_FILE)
}

/// `2026-12-01T15:40:00.123Z`.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = image::rfc3339(d.as_secs() as i64);
    format!("{}.{:03}Z", secs.trim_end_matches('Z'), d.subsec_millis())
}

/// Record `event` for `lab`. An event is a report, not part of the change it reports: a failure
/// to write it is logged and never fails the operation. A lab with no state directory (not
/// deployed) gets no file.
pub fn emit(lab: &str, event: Event) {
    if let Err(e) = try_emit(lab, event) {
        log::warn!("{}", crate::error::chain(&e));
    }
}

/// [`emit`], reporting failure.
pub fn try_emit(lab: &str, event: Event) -> Result<()> {
    let dir = paths::lab_state_dir(lab);
    if !dir.is_dir() {
        log::debug!("lab {lab} has no state directory; event not recorded");
        return Ok(());
    }
    let record = Record {
        time: timestamp(SystemTime::now()),
        lab: lab.to_string(),
        event,
    };
    let mut line = serde_json::to_vec(&record).expect("an event serialises");
    line.push(b'\n');
    let path = dir.join(EVENTS_FILE);
    let mut f = File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .map_err(io(format!("open {}", path.display())))?;
    // One write(2) per line: appends from separate processes do not interleave.
    f.write_all(&line)
        .map_err(io(format!("record an event in {}", path.display())))
}

/// Every complete record of a lab's current file (torn or foreign lines skipped).
pub fn read_all(lab: &str) -> Vec<Record> {
    std::fs::read_to_string(events_path(lab))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Follows one lab's events file as `tail -F` does: waits for it to exist, reads each complete
/// line once, and when the file is replaced (destroy then deploy) finishes the old one and goes
/// on with the new one from its start.
pub struct Follower {
    path: PathBuf,
    file: Option<(File, u64)>,
    pending: Vec<u8>,
}

impl Follower {
    /// From the start of the current file (`history`) or from its end (only what comes next).
    pub fn new(lab: &str, history: bool) -> Follower {
        Follower::at(events_path(lab), history)
    }

    /// Follow the file at `path`.
    pub fn at(path: PathBuf, history: bool) -> Follower {
        let mut f = Follower {
            path,
            file: None,
            pending: Vec::new(),
        };
        if let Some((mut file, ino)) = open(&f.path) {
            if !history {
                let _ = file.seek(SeekFrom::End(0));
            }
            f.file = Some((file, ino));
        }
        f
    }

    /// The complete lines that arrived since the last call (none: nothing new yet).
    pub fn poll(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        self.drain(&mut lines);
        let current = std::fs::metadata(&self.path).ok().map(|m| m.ino());
        let replaced = match (&self.file, current) {
            (Some((_, ino)), Some(now)) => *ino != now,
            (Some(_), None) => true,
            (None, Some(_)) => true,
            (None, None) => false,
        };
        if replaced {
            // What the old file got between the read above and its removal.
            self.drain(&mut lines);
            self.pending.clear();
            self.file = open(&self.path);
            self.drain(&mut lines);
        }
        lines
    }

    /// Block until the next lines arrive (checks every `interval`), or `stop` says so.
    pub fn wait(&mut self, interval: Duration, stop: &dyn Fn() -> bool) -> Option<Vec<String>> {
        loop {
            let lines = self.poll();
            if !lines.is_empty() {
                return Some(lines);
            }
            if stop() {
                return None;
            }
            std::thread::sleep(interval);
        }
    }

    fn drain(&mut self, out: &mut Vec<String>) {
        let Some((file, _)) = &mut self.file else {
            return;
        };
        let mut buf = Vec::new();
        if file.read_to_end(&mut buf).is_err() {
            return;
        }
        self.pending.extend_from_slice(&buf);
        while let Some(nl) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            if !text.trim().is_empty() {
                out.push(text);
            }
        }
    }
}

fn open(path: &Path) -> Option<(File, u64)> {
    let f = File::open(path).ok()?;
    let ino = f.metadata().ok()?.ino();
    Some((f, ino))
}

/// A record as one line for people: time, lab, event, then its fields as `key=value`.
pub fn human(line: &str) -> String {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(line) else {
        return line.to_string();
    };
    let field = |k: &str| m.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_string();
    let mut out = format!("{} {} {}", field("time"), field("lab"), field("event"));
    for (k, v) in &m {
        if matches!(k.as_str(), "time" | "lab" | "event") {
            continue;
        }
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&format!(" {k}={v}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_one_flat_object() {
        let r = Record {
            time: "2026-12-01T00:00:00.000Z".into(),
            lab: "l".into(),
            event: Event::LinkDown {
                endpoint: "a:eth1".into(),
                peer: Some("b:eth1".into()),
            },
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"time":"2026-12-01T00:00:00.000Z","lab":"l","event":"link-down","endpoint":"a:eth1","peer":"b:eth1"}"#
        );
        assert_eq!(serde_json::from_str::<Record>(&s).unwrap(), r);
        assert_eq!(
            human(&s),
            "2026-12-01T00:00:00.000Z l link-down endpoint=a:eth1 peer=b:eth1"
        );
        assert_eq!(
            Event::NodeStarted { node: "x".into() }.name(),
            "node-started"
        );
    }

    #[test]
    fn follower_waits_for_the_file_and_survives_its_replacement() {
        let dir = std::env::temp_dir().join(format!("labwire-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(EVENTS_FILE);
        let _ = std::fs::remove_file(&path);
        let mut f = Follower::at(path.clone(), true);
        assert!(f.poll().is_empty());
        std::fs::write(&path, "one\ntw").unwrap();
        assert_eq!(f.poll(), ["one"]);
        let mut a = File::options().append(true).open(&path).unwrap();
        a.write_all(b"o\n").unwrap();
        assert_eq!(f.poll(), ["two"]);
        // Destroy and deploy again: the last line of the old file, then the new file's.
        a.write_all(b"three\n").unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "four\n").unwrap();
        assert_eq!(f.poll(), ["three", "four"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn timestamps_have_milliseconds() {
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_millis(1500)),
            "1970-01-01T00:00:01.500Z"
        );
    }
}

//! A lab's changes as Server-Sent Events, and the in-process locks that serialise the API's
//! requests on one lab. Two sources: the lab's inspect rows, compared once a second (deployed or
//! destroyed, nodes added or removed, a node's state — also what no labwire command reports, such
//! as a node that crashed), sent as `lab` events; and the lab's own event file (`lab::events`:
//! restarts, links down/up, impairments, as the commands that make them record them), read every
//! 100 ms, each record sent unchanged as a `record` event.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use utoipa::ToSchema;

/// One lock per lab name: requests that change a lab wait for each other, other labs go on.
#[derive(Default)]
pub struct LabLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl LabLocks {
    pub fn of(&self, lab: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(lab.to_string()).or_default().clone()
    }
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    LabDeployed,
    LabDestroyed,
    NodeAdded,
    NodeRemoved,
    /// A node's state changed (`running`, `exited`, …).
    NodeState,
}

/// One change of a lab.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LabEvent {
    /// Seconds since the Unix epoch.
    pub time: f64,
    pub lab: String,
    pub kind: EventKind,
    /// The node, for node events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The node's state now, for node events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// Node → state of the deployed lab, or `None` when it is not deployed.
type Snapshot = Option<BTreeMap<String, String>>;

fn snapshot(lab: &str) -> Snapshot {
    lab::inspect::lab(lab).map(|(_, rows)| rows.into_iter().map(|r| (r.node, r.state)).collect())
}

/// The events that lead from `old` to `new`.
fn differences(lab: &str, old: &Snapshot, new: &Snapshot) -> Vec<LabEvent> {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let ev = |kind, node: Option<&String>, state: Option<&String>| LabEvent {
        time,
        lab: lab.to_string(),
        kind,
        node: node.cloned(),
        state: state.cloned(),
    };
    let empty = BTreeMap::new();
    let mut out = Vec::new();
    match (old, new) {
        (None, Some(_)) => out.push(ev(EventKind::LabDeployed, None, None)),
        (Some(_), None) => out.push(ev(EventKind::LabDestroyed, None, None)),
        _ => {}
    }
    let (o, n) = (
        old.as_ref().unwrap_or(&empty),
        new.as_ref().unwrap_or(&empty),
    );
    for (node, state) in n {
        match o.get(node) {
            None => out.push(ev(EventKind::NodeAdded, Some(node), Some(state))),
            Some(s) if s != state => out.push(ev(EventKind::NodeState, Some(node), Some(state))),
            Some(_) => {}
        }
    }
    for node in o.keys().filter(|k| !n.contains_key(*k)) {
        out.push(ev(EventKind::NodeRemoved, Some(node), None));
    }
    out
}

/// How often the lab's event records are read.
const RECORDS_EVERY: Duration = Duration::from_millis(100);
/// How often the lab's rows are compared.
const ROWS_EVERY: Duration = Duration::from_secs(1);

/// The event stream of `lab`; it ends when the client goes away.
pub fn stream(lab: String) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(64);
    // Two loops, so a large lab's inspect never holds back the records the commands write.
    let records_tx = tx.clone();
    let name = lab.clone();
    tokio::spawn(async move {
        let start = tokio::task::spawn_blocking(move || lab::events::Follower::new(&name, false));
        let Ok(mut follower) = start.await else {
            return;
        };
        loop {
            tokio::time::sleep(RECORDS_EVERY).await;
            if records_tx.is_closed() {
                return;
            }
            let Ok((records, f)) = tokio::task::spawn_blocking(move || {
                let records = follower.poll();
                (records, follower)
            })
            .await
            else {
                return;
            };
            follower = f;
            for line in records {
                if records_tx
                    .send(Event::default().event("record").data(line))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    tokio::spawn(async move {
        let name = lab.clone();
        let Ok(mut last) = tokio::task::spawn_blocking(move || snapshot(&name)).await else {
            return;
        };
        loop {
            tokio::time::sleep(ROWS_EVERY).await;
            if tx.is_closed() {
                return;
            }
            let name = lab.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || snapshot(&name)).await else {
                return;
            };
            for e in differences(&lab, &last, &now) {
                let data = serde_json::to_string(&e).unwrap_or_default();
                if tx
                    .send(Event::default().event("lab").data(data))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            last = now;
        }
    });
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        let e = rx.recv().await?;
        Some((Ok(e), rx))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(pairs: &[(&str, &str)]) -> Snapshot {
        Some(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    #[test]
    fn differences_name_every_change() {
        let kinds = |o, n| -> Vec<(EventKind, Option<String>)> {
            differences("l", &o, &n)
                .into_iter()
                .map(|e| (e.kind, e.node))
                .collect()
        };
        assert_eq!(kinds(None, snap(&[])), vec![(EventKind::LabDeployed, None)]);
        assert_eq!(
            kinds(snap(&[("a", "running")]), None),
            vec![
                (EventKind::LabDestroyed, None),
                (EventKind::NodeRemoved, Some("a".into()))
            ]
        );
        assert_eq!(
            kinds(
                snap(&[("a", "running"), ("b", "running")]),
                snap(&[("a", "exited"), ("c", "running")])
            ),
            vec![
                (EventKind::NodeState, Some("a".into())),
                (EventKind::NodeAdded, Some("c".into())),
                (EventKind::NodeRemoved, Some("b".into())),
            ]
        );
        assert!(
            differences("l", &snap(&[("a", "running")]), &snap(&[("a", "running")])).is_empty()
        );
    }
}

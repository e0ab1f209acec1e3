//! Logging of a peer that cannot be reached, without a storm: the first failure is a
//! warning, then one reminder a minute with the number of failed attempts while it lasts,
//! and one line when the peer answers again. A failure whose reason changes (a refused
//! connection becoming a refused certificate once the peer listens) is logged again
//! sooner, at most once per [`CHANGED_EVERY`], so the line an operator reads names the
//! current cause. Raft replication, heartbeats and follower
//! fetches retry many times a second while a node is down; each retry is counted in the
//! metrics, not logged.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How often a lasting failure is logged again.
const REMIND_EVERY: Duration = Duration::from_secs(60);
/// How soon a failure with a new reason is logged again.
const CHANGED_EVERY: Duration = Duration::from_secs(5);

struct Down {
    since: Instant,
    logged: Instant,
    attempts: u64,
    /// The reason given by the last line logged.
    reason: String,
}

fn table() -> &'static Mutex<HashMap<(&'static str, i64), Down>> {
    static TABLE: OnceLock<Mutex<HashMap<(&'static str, i64), Down>>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

/// An attempt to reach `peer` for `what` (e.g. "raft", "follower fetch") failed.
pub fn failed(what: &'static str, peer: i64, error: &dyn Display) {
    let now = Instant::now();
    let reason = error.to_string();
    let mut t = table().lock();
    match t.get_mut(&(what, peer)) {
        None => {
            t.insert(
                (what, peer),
                Down {
                    since: now,
                    logged: now,
                    attempts: 1,
                    reason,
                },
            );
            drop(t);
            tracing::warn!(peer, %error, "{what}: cannot reach node {peer}; retrying (logged again once a minute while it lasts)");
        }
        Some(d) => {
            d.attempts += 1;
            let since_logged = now.duration_since(d.logged);
            if since_logged >= REMIND_EVERY || (since_logged >= CHANGED_EVERY && reason != d.reason)
            {
                d.logged = now;
                d.reason = reason;
                let (attempts, secs) = (d.attempts, now.duration_since(d.since).as_secs());
                drop(t);
                tracing::warn!(peer, %error, attempts, down_s = secs, "{what}: node {peer} still unreachable");
            }
        }
    }
}

/// An attempt to reach `peer` for `what` succeeded.
pub fn reached(what: &'static str, peer: i64) {
    let mut t = table().lock();
    if t.is_empty() {
        return;
    }
    if let Some(d) = t.remove(&(what, peer)) {
        drop(t);
        tracing::info!(
            peer,
            attempts = d.attempts,
            down_s = d.since.elapsed().as_secs(),
            "{what}: node {peer} reachable again"
        );
    }
}

/// Whether `peer` is currently failing for `what`.
pub fn is_down(what: &'static str, peer: i64) -> bool {
    table().lock().contains_key(&(what, peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_remembered_until_the_peer_answers() {
        assert!(!is_down("test", 7));
        failed("test", 7, &"refused");
        failed("test", 7, &"refused");
        assert!(is_down("test", 7));
        assert_eq!(table().lock()[&("test", 7)].attempts, 2);
        reached("test", 7);
        assert!(!is_down("test", 7));
    }

    #[test]
    fn a_new_reason_is_remembered_once_logged() {
        failed("test", 8, &"connection refused");
        failed("test", 8, &"invalid peer certificate");
        // Too soon after the first line: the new reason waits for the next one.
        assert_eq!(table().lock()[&("test", 8)].reason, "connection refused");
        table().lock().get_mut(&("test", 8)).unwrap().logged -= CHANGED_EVERY;
        failed("test", 8, &"invalid peer certificate");
        assert_eq!(
            table().lock()[&("test", 8)].reason,
            "invalid peer certificate"
        );
        reached("test", 8);
    }
}

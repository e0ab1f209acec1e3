//! The audit log: authentications (successes and failures), authorization denials and,
//! with `audit.log.admin.allowed`, the admin operations that were allowed, one JSON
//! object per line in `audit.log.file`. Events go through a bounded queue to a writer
//! task, so a request never waits for the disk; beyond `audit.log.events.per.second`
//! they are counted, not written, and a line says how many were left out, so a client
//! that misbehaves cannot fill the disk. The file rolls over to `<file>.1` past
//! `audit.log.max.bytes`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tracing::warn;

use crate::metrics as m;

/// Events queued for the writer before new ones are dropped (and counted).
const QUEUE: usize = 4096;

/// The audit settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    pub file: PathBuf,
    pub admin_allowed: bool,
    pub events_per_second: u64,
    pub max_bytes: u64,
}

/// The sending side, shared by every connection.
pub struct AuditLog {
    settings: AuditSettings,
    tx: mpsc::Sender<Value>,
    /// The second the budget counts for, and the events written or refused in it.
    second: AtomicU64,
    in_second: AtomicU64,
    suppressed: AtomicU64,
}

/// Who did what, from where.
pub struct Event<'a> {
    pub kind: &'static str,
    pub outcome: &'static str,
    pub principal: &'a str,
    pub client: std::net::SocketAddr,
    pub listener: &'a str,
    pub details: Value,
}

impl AuditLog {
    /// Opens the log and starts its writer; `None` when `audit.log.file` is not set.
    pub fn start(
        settings: Option<AuditSettings>,
    ) -> std::io::Result<Option<std::sync::Arc<AuditLog>>> {
        let Some(settings) = settings else {
            return Ok(None);
        };
        let writer = Writer::open(settings.file.clone(), settings.max_bytes)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::task::spawn_blocking(move || writer.run(rx));
        Ok(Some(std::sync::Arc::new(AuditLog {
            settings,
            tx,
            second: AtomicU64::new(0),
            in_second: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        })))
    }

    pub fn admin_allowed(&self) -> bool {
        self.settings.admin_allowed
    }

    /// Queue an event, within the per-second budget.
    pub fn record(&self, e: Event<'_>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let second = now.as_secs();
        if self.second.swap(second, Ordering::Relaxed) != second {
            self.in_second.store(0, Ordering::Relaxed);
            let left_out = self.suppressed.swap(0, Ordering::Relaxed);
            if left_out > 0 {
                let _ = self.tx.try_send(json!({
                    "time": time_of(now.as_millis() as i64), "kind": "audit",
                    "suppressed": left_out,
                    "reason": "over audit.log.events.per.second",
                }));
            }
        }
        if self.in_second.fetch_add(1, Ordering::Relaxed) >= self.settings.events_per_second {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(m::AUDIT_EVENTS_DROPPED_TOTAL).increment(1);
            return;
        }
        let mut line = json!({
            "time": time_of(now.as_millis() as i64),
            "kind": e.kind,
            "outcome": e.outcome,
            "principal": e.principal,
            "client": e.client.to_string(),
            "listener": e.listener,
        });
        if let (Value::Object(line), Value::Object(details)) = (&mut line, e.details) {
            line.extend(details);
        }
        match self.tx.try_send(line) {
            Ok(()) => {
                metrics::counter!(m::AUDIT_EVENTS_TOTAL, "kind" => e.kind, "outcome" => e.outcome)
                    .increment(1)
            }
            Err(_) => metrics::counter!(m::AUDIT_EVENTS_DROPPED_TOTAL).increment(1),
        }
    }
}

/// RFC 3339 UTC with milliseconds.
fn time_of(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The file side.
struct Writer {
    path: PathBuf,
    max_bytes: u64,
    file: std::io::BufWriter<std::fs::File>,
    size: u64,
}

impl Writer {
    fn open(path: PathBuf, max_bytes: u64) -> std::io::Result<Writer> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let size = file.metadata()?.len();
        Ok(Writer {
            path,
            max_bytes,
            file: std::io::BufWriter::new(file),
            size,
        })
    }

    /// Write lines until every sender is gone (shutdown), flushing when the queue drains.
    fn run(mut self, mut rx: mpsc::Receiver<Value>) {
        while let Some(line) = rx.blocking_recv() {
            if let Err(e) = self.write(&line) {
                warn!(error = %e, file = %self.path.display(), "cannot write the audit log");
            }
            if rx.is_empty() {
                let _ = self.file.flush();
            }
        }
        let _ = self.file.flush();
    }

    fn write(&mut self, line: &Value) -> std::io::Result<()> {
        let mut text = line.to_string();
        text.push('\n');
        if self.size + text.len() as u64 > self.max_bytes && self.size > 0 {
            self.file.flush()?;
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            std::fs::rename(&self.path, &old)?;
            *self = Writer::open(self.path.clone(), self.max_bytes)?;
        }
        self.file.write_all(text.as_bytes())?;
        self.size += text.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn events_are_json_lines_within_the_budget_and_the_file_rolls_over() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit.log");
        let log = AuditLog::start(Some(AuditSettings {
            file: file.clone(),
            admin_allowed: false,
            events_per_second: 5,
            max_bytes: 1500,
        }))
        .unwrap()
        .unwrap();
        let client: std::net::SocketAddr = "10.0.0.1:5000".parse().unwrap();
        for i in 0..20 {
            log.record(Event {
                kind: "authorization",
                outcome: "denied",
                principal: "User:mallory",
                client,
                listener: "SASL_SSL",
                details: json!({"api": "Produce", "resource": format!("t{i}")}),
            });
        }
        drop(log);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let text = std::fs::read_to_string(&file).unwrap();
        let rolled = std::fs::read_to_string(dir.path().join("audit.log.1")).unwrap_or_default();
        let lines: Vec<Value> = rolled
            .lines()
            .chain(text.lines())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            lines.len() <= 6,
            "at most the budget in one second: {lines:?}"
        );
        assert!(lines.len() >= 5);
        assert_eq!(lines[0]["principal"], "User:mallory");
        assert_eq!(lines[0]["client"], "10.0.0.1:5000");
        assert_eq!(lines[0]["api"], "Produce");
        assert!(text.len() <= 1500 && rolled.len() <= 1500);
    }
}

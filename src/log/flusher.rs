//! Group commit: one flusher task per log directory turns many `flush_to` calls into one
//! fsync per dirty partition.
//!
//! Callers register (partition, offset, reply) and wait. The flusher takes everything
//! pending at once, fsyncs each partition named once (on the blocking pool), advances its
//! recovery point and answers every waiter. While one fsync runs, new requests queue up
//! and share the next one, so under load the fsync rate stays near 1/latency no matter how
//! many producers wait. The background scheduler (flush.ms / flush.messages) uses the
//! same queue without waiting for the answer.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};

use super::{LogError, PartitionLog};

struct FlushRequest {
    log: Arc<PartitionLog>,
    offset: i64,
    reply: Option<oneshot::Sender<Result<(), LogError>>>,
}

/// Where a partition sends its flush requests.
#[derive(Clone)]
pub struct FlusherHandle {
    tx: mpsc::UnboundedSender<FlushRequest>,
}

/// The task side of one directory's flusher.
pub struct Flusher {
    rx: mpsc::UnboundedReceiver<FlushRequest>,
}

/// A connected handle and task.
pub fn channel() -> (FlusherHandle, Flusher) {
    let (tx, rx) = mpsc::unbounded_channel();
    (FlusherHandle { tx }, Flusher { rx })
}

impl FlusherHandle {
    /// Wait until `log` is durable through `offset`. `Err(Closed)` when the flusher has
    /// stopped (the caller may flush by itself).
    pub async fn flush(&self, log: Arc<PartitionLog>, offset: i64) -> Result<(), LogError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(FlushRequest {
                log,
                offset,
                reply: Some(reply),
            })
            .map_err(|_| LogError::Closed)?;
        rx.await.unwrap_or(Err(LogError::Closed))
    }

    /// Ask for a flush of everything appended so far without waiting.
    pub fn kick(&self, log: Arc<PartitionLog>) {
        let offset = log.log_end_offset();
        let _ = self.tx.send(FlushRequest {
            log,
            offset,
            reply: None,
        });
    }
}

fn io_copy(e: &std::io::Error) -> LogError {
    LogError::Io(std::io::Error::new(e.kind(), e.to_string()))
}

impl Flusher {
    /// Serve flush requests until `shutdown` turns true; requests pending then are still
    /// answered.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut stopping = false;
        loop {
            let first = if stopping || *shutdown.borrow() {
                self.rx.try_recv().ok()
            } else {
                tokio::select! {
                    r = self.rx.recv() => r,
                    changed = shutdown.changed() => {
                        // A dropped sender means nobody can stop us any more: stop now.
                        stopping = changed.is_err() || *shutdown.borrow();
                        continue;
                    }
                }
            };
            let Some(first) = first else { break };
            let mut pending = vec![first];
            while let Ok(r) = self.rx.try_recv() {
                pending.push(r);
            }
            let mut logs: Vec<Arc<PartitionLog>> = Vec::new();
            for r in &pending {
                if !logs.iter().any(|l| Arc::ptr_eq(l, &r.log)) {
                    logs.push(r.log.clone());
                }
            }
            let started = Instant::now();
            let flushed = logs.clone();
            let results = tokio::task::spawn_blocking(move || {
                flushed
                    .iter()
                    .map(|l| l.flush_blocking())
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_else(|e| {
                let err = std::io::Error::other(format!("flush task failed: {e}"));
                logs.iter()
                    .map(|_| Err(std::io::Error::new(err.kind(), err.to_string())))
                    .collect()
            });
            metrics::histogram!(crate::metrics::LOG_FLUSH_DURATION_SECONDS)
                .record(started.elapsed().as_secs_f64());
            for r in pending {
                let i = logs.iter().position(|l| Arc::ptr_eq(l, &r.log));
                let outcome = match i.map(|i| &results[i]) {
                    Some(Ok(_)) => Ok(()),
                    Some(Err(e)) => Err(io_copy(e)),
                    None => Err(LogError::Closed),
                };
                if let Err(e) = &outcome {
                    tracing::error!(topic = r.log.topic(), partition = r.log.partition(),
                        offset = r.offset, error = %e, "flush failed");
                }
                if let Some(reply) = r.reply {
                    let _ = reply.send(outcome);
                }
            }
        }
    }
}

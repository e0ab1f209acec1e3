//! The log manager: partition logs as Kafka lays them out on disk.
//!
//! Per partition a directory `<topic>-<partition>/` holds segments
//! (`<base offset, 20 digits>.log`) with a sparse offset index (`.index`) and a time index
//! (`.timeindex`), a leader-epoch checkpoint and producer-state snapshots. Record batches
//! are validated ([`batch`]) and stored as received with only their base offset, leader
//! epoch and (for LogAppendTime) timestamp patched. A per-directory flusher ([`flusher`])
//! turns many appends into one fsync (group commit). On start, everything after the last
//! recovery point is re-validated and a torn or corrupt tail is truncated, never served.
//! Topics with `cleanup.policy=compact` are compacted by [`cleaner`]: closed segments are
//! rewritten keeping the last record per key, with offsets unchanged, and swapped in
//! through `.cleaned` / `.swap` files that a restart finishes or undoes.
//!
//! A full disk never makes data unreadable. Appends answer KAFKA_STORAGE_ERROR (a failed
//! write is cut back) and work again as soon as space is freed; opening a log needs no
//! write (rebuilt indexes stay in memory until their files can be written; checkpoint,
//! snapshot and metadata writes are retried later); retention still frees space; and a
//! partition that cannot be opened at all goes offline alone, not its whole directory
//! (Kafka takes the directory offline until a restart).
//!
//! Descriptors are budgeted, so the number of partitions and segments is not capped by
//! the open-file limit: index files are opened only to be written or synced, and segment
//! files are held by one bounded cache of open handles ([`handles`]).

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod codec;
pub mod epoch;
pub mod flusher;
pub mod handles;
pub mod index;
pub mod manager;
pub mod mover;
pub mod partition;
pub mod producer_state;
pub mod records;
pub mod retention;
pub mod segment;
pub mod txn_index;

pub use manager::LogManager;
pub use partition::{AppendResult, CleanStats, PartitionLog, ReadResult};
pub use records::Records;

use thiserror::Error;

/// Everything that can go wrong appending to or reading from a log. Mapped to Kafka error
/// codes in one place (`crate::errors`).
#[derive(Debug, Error)]
pub enum LogError {
    /// Bad CRC, bad lengths, record count mismatch: CORRUPT_MESSAGE.
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    /// Larger than max.message.bytes: MESSAGE_TOO_LARGE.
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
    /// Not exactly one magic-2 batch, keyless record on a compacted topic, ...: INVALID_RECORD.
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// CreateTime outside message.timestamp.{before,after}.max.ms: INVALID_TIMESTAMP.
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    /// Records of a produced batch that break a rule (no key on a compacted topic, a
    /// timestamp out of range), each named by its index in the batch: the batch is
    /// refused whole with INVALID_RECORD, or INVALID_TIMESTAMP when a timestamp is at
    /// fault, and Produce v8+ lists the records (Kafka's record_errors).
    #[error("{}", records_message(*.timestamp, .errors))]
    InvalidRecords {
        timestamp: bool,
        errors: Vec<(i32, String)>,
    },
    /// OUT_OF_ORDER_SEQUENCE_NUMBER.
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    /// Producer epoch older than the one we know: INVALID_PRODUCER_EPOCH.
    #[error("producer fenced: {0}")]
    InvalidProducerEpoch(String),
    /// A transaction marker from an older transaction coordinator than the last one
    /// seen for the producer: TRANSACTION_COORDINATOR_FENCED.
    #[error("transaction coordinator fenced: {0}")]
    CoordinatorFenced(String),
    /// OFFSET_OUT_OF_RANGE.
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    /// I/O failure, full disk: KAFKA_STORAGE_ERROR. The log stays readable.
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
    /// The partition was deleted or the log manager is shutting down.
    #[error("log is closed")]
    Closed,
    /// AlterReplicaLogDirs to a directory that is not in `log.dirs`: LOG_DIR_NOT_FOUND.
    #[error("log directory {0} is not one of this broker's log.dirs")]
    LogDirNotFound(String),
}

/// Kafka's top-level message for a batch refused for some of its records.
fn records_message(timestamp: bool, errors: &[(i32, String)]) -> String {
    if timestamp {
        return "One or more records have been rejected due to invalid timestamp".into();
    }
    let shown: Vec<String> = errors
        .iter()
        .take(3)
        .map(|(i, m)| format!("record {i}: {m}"))
        .collect();
    format!(
        "One or more records have been rejected due to {} record errors in total, and only \
         showing the first three errors at most: [{}]",
        errors.len(),
        shown.join(", ")
    )
}

//! The byte-level metadata store that the Raft adapters persist into, as a small trait.
//!
//! sled stays behind this trait (see docs/architecture.md, "Metadata"): sled 0.34 is beta,
//! and if crash tests show it losing or corrupting metadata the implementation is swapped
//! (for redb) without touching the Raft adapters ([`super::log_store`], [`super::state_machine`]). The trait
//! deals in bytes only; encoding (serde_json) belongs to the adapters, so a new backend
//! needs to know nothing about openraft.
//!
//! Writes become durable only after [`MetadataStore::flush`]; callers flush wherever
//! Raft's safety depends on it (appended entries, votes, snapshots).

use std::future::Future;

use thiserror::Error;

/// Single values kept next to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    /// The last vote this node cast or granted.
    Vote,
    /// The last log id known to be committed (lets a restart re-apply without a quorum).
    Committed,
    /// The last log id removed by `purge`.
    LastPurged,
    /// The state machine: last applied log id, membership and the metadata state.
    Applied,
    /// Metadata (`SnapshotMeta`) of the current snapshot.
    SnapshotMeta,
    /// The bytes of the current snapshot.
    SnapshotData,
}

impl MetaKey {
    /// Stable on-disk names; never renumber or rename, old stores must stay readable.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            MetaKey::Vote => b"vote",
            MetaKey::Committed => b"committed",
            MetaKey::LastPurged => b"last_purged",
            MetaKey::Applied => b"applied",
            MetaKey::SnapshotMeta => b"snapshot_meta",
            MetaKey::SnapshotData => b"snapshot_data",
        }
    }
}

/// A failure of the underlying database, or bytes on disk that do not decode.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt metadata store: {0}")]
    Corrupt(String),
}

/// Raft log entries (keyed by index) plus a handful of single values.
pub trait MetadataStore: Send + Sync + 'static {
    /// Insert or overwrite log entries (index, encoded entry) in one atomic batch.
    fn log_insert(&self, entries: Vec<(u64, Vec<u8>)>) -> Result<(), StoreError>;

    /// Entries with `start <= index < end` (`end = None`: to the end), in index order.
    fn log_range(&self, start: u64, end: Option<u64>) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;

    /// The entry with the highest index, if any.
    fn log_last(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError>;

    /// Remove every entry with `index >= from` (conflict truncation).
    fn log_remove_from(&self, from: u64) -> Result<(), StoreError>;

    /// Remove every entry with `index <= upto` (purge after a snapshot).
    fn log_remove_upto(&self, upto: u64) -> Result<(), StoreError>;

    fn get(&self, key: MetaKey) -> Result<Option<Vec<u8>>, StoreError>;

    /// Set several values atomically: after a crash either all or none are visible.
    fn put(&self, items: &[(MetaKey, &[u8])]) -> Result<(), StoreError>;

    /// Make every write so far durable.
    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

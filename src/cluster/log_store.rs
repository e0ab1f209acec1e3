//! openraft's log storage (`RaftLogStorage`, `RaftLogReader`) on a [`MetadataStore`].
//!
//! Durability rules that Raft's safety rests on: appended entries are acknowledged to
//! openraft (the `LogFlushed` callback) only after a flush, and a vote is flushed before
//! `save_vote` returns, so a node that crashes can neither forget a log it acknowledged
//! nor vote twice in a term. `committed` is written without a flush: losing it only
//! means a restarted node re-learns the commit point from the quorum.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, ErrorSubject, ErrorVerb, LogState, RaftLogReader, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::store::{MetaKey, MetadataStore, StoreError};
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// Raft log storage over a shared store; cloning shares the store (that is the reader).
pub struct LogStore<S> {
    store: Arc<S>,
}

impl<S> Clone for LogStore<S> {
    fn clone(&self) -> Self {
        LogStore {
            store: self.store.clone(),
        }
    }
}

impl<S: MetadataStore> LogStore<S> {
    pub fn new(store: Arc<S>) -> Self {
        LogStore { store }
    }

    fn read_value<T: DeserializeOwned>(&self, key: MetaKey) -> Result<Option<T>, StoreError> {
        match self.store.get(key)? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    fn write_value<T: Serialize>(&self, key: MetaKey, value: &T) -> Result<(), StoreError> {
        self.store.put(&[(key, &encode(value)?)])
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(format!("encode: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("decode: {e}")))
}

/// Wrap a store failure in openraft's error, naming what was being done.
pub(crate) fn io_err(subject: ErrorSubject<u64>, verb: ErrorVerb, e: StoreError) -> StorageError {
    StorageIOError::new(subject, verb, AnyError::new(&e)).into()
}

fn logs_err(verb: ErrorVerb) -> impl FnOnce(StoreError) -> StorageError {
    move |e| io_err(ErrorSubject::Logs, verb, e)
}

/// Map any range of indexes to `[start, end)` with `end = None` for "to the end".
fn to_half_open(range: &impl RangeBounds<u64>) -> Option<(u64, Option<u64>)> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => None,
    };
    Some((start, end))
}

impl<S: MetadataStore> RaftLogReader<TypeConfig> for LogStore<S> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let Some((start, end)) = to_half_open(&range) else {
            return Ok(Vec::new());
        };
        let raw = self
            .store
            .log_range(start, end)
            .map_err(logs_err(ErrorVerb::Read))?;
        raw.iter()
            .map(|(_, bytes)| decode::<Entry>(bytes))
            .collect::<Result<Vec<_>, _>>()
            .map_err(logs_err(ErrorVerb::Read))
    }
}

impl<S: MetadataStore> RaftLogStorage<TypeConfig> for LogStore<S> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self
            .read_value(MetaKey::LastPurged)
            .map_err(logs_err(ErrorVerb::Read))?;
        let last = match self.store.log_last().map_err(logs_err(ErrorVerb::Read))? {
            Some((_, bytes)) => Some(
                decode::<Entry>(&bytes)
                    .map_err(logs_err(ErrorVerb::Read))?
                    .log_id,
            ),
            None => None,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let vote_err = |e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e);
        self.write_value(MetaKey::Vote, vote).map_err(vote_err)?;
        self.store.flush().await.map_err(vote_err)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_value(MetaKey::Vote)
            .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Read, e))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.write_value(MetaKey::Committed, &committed)
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        // Stored as `Option<LogId>`, so an absent key and a stored `null` both mean None.
        let stored: Option<Option<LogId>> = self
            .read_value(MetaKey::Committed)
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Read, e))?;
        Ok(stored.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut batch = Vec::new();
        for entry in entries {
            let bytes = encode(&entry).map_err(logs_err(ErrorVerb::Write))?;
            batch.push((entry.log_id.index, bytes));
        }
        let written = match self.store.log_insert(batch) {
            Ok(()) => self.store.flush().await,
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(io_err(ErrorSubject::Logs, ErrorVerb::Write, e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.store
            .log_remove_from(log_id.index)
            .map_err(logs_err(ErrorVerb::Delete))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Record the purge point first: a crash between the two steps then leaves only
        // entries that are already covered by the snapshot and are never read again.
        self.write_value(MetaKey::LastPurged, &log_id)
            .map_err(logs_err(ErrorVerb::Delete))?;
        self.store
            .log_remove_upto(log_id.index)
            .map_err(logs_err(ErrorVerb::Delete))
    }
}

#[cfg(test)]
mod tests {
    use openraft::testing::{StoreBuilder, Suite};
    use tempfile::TempDir;
    use tokio::sync::watch;

    use super::*;
    use crate::cluster::state_machine::StateMachineStore;
    use crate::cluster::store_sled::SledStore;

    /// A fresh sled store in its own temp dir per test; the dir is the suite's guard.
    struct SledBuilder;

    impl StoreBuilder<TypeConfig, LogStore<SledStore>, StateMachineStore<SledStore>, TempDir>
        for SledBuilder
    {
        async fn build(
            &self,
        ) -> Result<(TempDir, LogStore<SledStore>, StateMachineStore<SledStore>), StorageError>
        {
            let err = |e| io_err(ErrorSubject::Store, ErrorVerb::Write, e);
            let dir = tempfile::tempdir()
                .map_err(|e| err(StoreError::Corrupt(format!("tempdir: {e}"))))?;
            let store = Arc::new(SledStore::open(dir.path()).map_err(err)?);
            let (tx, _rx) = watch::channel(Arc::default());
            let sm = StateMachineStore::open(store.clone(), Arc::new(tx)).map_err(err)?;
            Ok((dir, LogStore::new(store), sm))
        }
    }

    #[test]
    fn openraft_storage_suite() {
        Suite::test_all(SledBuilder).expect("openraft storage suite");
    }

    #[tokio::test]
    async fn log_vote_and_commit_survive_reopen() {
        use openraft::storage::RaftLogStorageExt;
        use openraft::{CommittedLeaderId, EntryPayload};

        let dir = tempfile::tempdir().expect("tempdir");
        let log_id = |index| LogId::new(CommittedLeaderId::new(2, 1), index);
        let vote = Vote::new(2, 1);
        {
            let mut log = LogStore::new(Arc::new(SledStore::open(dir.path()).expect("open")));
            let entries = (1..=20).map(|i| Entry {
                log_id: log_id(i),
                payload: EntryPayload::Blank,
            });
            log.blocking_append(entries).await.expect("append");
            log.save_vote(&vote).await.expect("vote");
            log.save_committed(Some(log_id(15)))
                .await
                .expect("committed");
            log.purge(log_id(5)).await.expect("purge");
            log.truncate(log_id(18)).await.expect("truncate");
            log.store.flush().await.expect("flush");
        }
        let mut log = LogStore::new(Arc::new(SledStore::open(dir.path()).expect("reopen")));
        assert_eq!(log.read_vote().await.expect("vote"), Some(vote));
        assert_eq!(
            log.read_committed().await.expect("committed"),
            Some(log_id(15))
        );
        let state = log.get_log_state().await.expect("log state");
        assert_eq!(state.last_purged_log_id, Some(log_id(5)));
        assert_eq!(state.last_log_id, Some(log_id(17)));
        let entries = log.try_get_log_entries(6..=17).await.expect("entries");
        assert_eq!(entries.len(), 12);
        assert_eq!(entries[0].log_id, log_id(6));
    }

    #[tokio::test]
    async fn log_state_after_purging_everything_points_at_the_purge() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = LogStore::new(Arc::new(SledStore::open(dir.path()).expect("open")));
        let id = LogId::new(openraft::CommittedLeaderId::new(1, 1), 9);
        log.purge(id).await.expect("purge");
        let state = log.get_log_state().await.expect("log state");
        assert_eq!(
            (state.last_purged_log_id, state.last_log_id),
            (Some(id), Some(id))
        );
    }

    #[test]
    fn half_open_ranges() {
        assert_eq!(to_half_open(&(3..7)), Some((3, Some(7))));
        assert_eq!(to_half_open(&(3..=7)), Some((3, Some(8))));
        assert_eq!(to_half_open(&(..)), Some((0, None)));
        assert_eq!(to_half_open(&(5..=u64::MAX)), Some((5, None)));
        assert_eq!(
            to_half_open(&(Bound::Excluded(u64::MAX), Bound::Unbounded)),
            None
        );
    }
}

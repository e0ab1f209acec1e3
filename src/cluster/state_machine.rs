//! openraft's state machine (`RaftStateMachine`, `RaftSnapshotBuilder`) around
//! [`MetadataState`], persisted in a [`MetadataStore`] and published as images.
//!
//! After every applied batch the whole state (with the last applied log id and
//! membership) is written under one key, and a new immutable [`MetadataImage`] is sent on
//! the `watch` channel that brokers read. The write is not flushed: the log entries it
//! reflects are already durable and are re-applied after a crash. Snapshots are flushed,
//! because once one exists openraft may purge the log entries it covers.
//!
//! On open, the newer of the applied state and the snapshot wins, so a lost unflushed
//! applied-state write can never leave the state machine behind a purged log.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, SnapshotId};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use super::image::MetadataImage;
use super::log_store::{decode, encode, io_err};
use super::state::{CommandResult, MetadataState};
use super::store::{MetaKey, MetadataStore, StoreError};
use super::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// Everything the state machine persists; also the content of a snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AppliedState {
    pub last_applied: Option<LogId>,
    pub last_membership: StoredMembership,
    pub state: MetadataState,
}

/// Where new images go. The controller owns `controller_id` in the published image, so
/// publishing keeps whatever value is there (under the channel's lock, so a concurrent
/// leader update cannot be lost between read and write).
pub type ImageSender = Arc<watch::Sender<Arc<MetadataImage>>>;

pub(crate) fn publish(images: &ImageSender, image: &MetadataImage) {
    let mut next = image.clone();
    images.send_modify(|current| {
        next.controller_id = current.controller_id;
        *current = Arc::new(next);
    });
}

/// The metadata state machine as openraft sees it.
pub struct StateMachineStore<S> {
    store: Arc<S>,
    applied: AppliedState,
    images: ImageSender,
}

impl<S: MetadataStore> StateMachineStore<S> {
    /// Load the persisted state (the newer of applied state and snapshot) and publish it.
    pub fn open(store: Arc<S>, images: ImageSender) -> Result<Self, StoreError> {
        let from_applied: Option<AppliedState> = match store.get(MetaKey::Applied)? {
            Some(bytes) => Some(decode(&bytes)?),
            None => None,
        };
        let from_snapshot: Option<AppliedState> = match store.get(MetaKey::SnapshotData)? {
            Some(bytes) => Some(decode(&bytes)?),
            None => None,
        };
        let applied = match (from_applied, from_snapshot) {
            (Some(a), Some(s)) if s.last_applied > a.last_applied => s,
            (Some(a), _) => a,
            (None, Some(s)) => s,
            (None, None) => AppliedState::default(),
        };
        publish(&images, &applied.state.image);
        Ok(StateMachineStore {
            store,
            applied,
            images,
        })
    }

    /// The state as of the last applied entry.
    pub fn applied(&self) -> &AppliedState {
        &self.applied
    }
}

fn sm_err(verb: ErrorVerb) -> impl FnOnce(StoreError) -> StorageError {
    move |e| io_err(ErrorSubject::StateMachine, verb, e)
}

fn snapshot_err(verb: ErrorVerb) -> impl FnOnce(StoreError) -> StorageError {
    move |e| io_err(ErrorSubject::Snapshot(None), verb, e)
}

impl<S: MetadataStore> RaftStateMachine<TypeConfig> for StateMachineStore<S> {
    type SnapshotBuilder = SnapshotBuilder<S>;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((
            self.applied.last_applied,
            self.applied.last_membership.clone(),
        ))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut results = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            let result = match entry.payload {
                EntryPayload::Normal(ref cmd) => self.applied.state.apply(index, cmd),
                EntryPayload::Blank => CommandResult::Ok,
                EntryPayload::Membership(ref m) => {
                    self.applied.last_membership =
                        StoredMembership::new(Some(entry.log_id), m.clone());
                    CommandResult::Ok
                }
            };
            self.applied.state.image.applied_index = index;
            self.applied.last_applied = Some(entry.log_id);
            results.push(result);
        }
        let bytes = encode(&self.applied).map_err(sm_err(ErrorVerb::Write))?;
        self.store
            .put(&[(MetaKey::Applied, &bytes)])
            .map_err(sm_err(ErrorVerb::Write))?;
        publish(&self.images, &self.applied.state.image);
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            store: self.store.clone(),
            applied: self.applied.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let mut applied: AppliedState = decode(&data).map_err(snapshot_err(ErrorVerb::Read))?;
        // The meta is what openraft reasons with; make the state agree with it.
        applied.last_applied = meta.last_log_id;
        applied.last_membership = meta.last_membership.clone();
        let applied_bytes = encode(&applied).map_err(sm_err(ErrorVerb::Write))?;
        let meta_bytes = encode(meta).map_err(snapshot_err(ErrorVerb::Write))?;
        self.store
            .put(&[
                (MetaKey::Applied, &applied_bytes),
                (MetaKey::SnapshotMeta, &meta_bytes),
                (MetaKey::SnapshotData, &data),
            ])
            .map_err(snapshot_err(ErrorVerb::Write))?;
        self.store
            .flush()
            .await
            .map_err(snapshot_err(ErrorVerb::Write))?;
        self.applied = applied;
        publish(&self.images, &self.applied.state.image);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let read = |key| self.store.get(key);
        let meta = read(MetaKey::SnapshotMeta).map_err(snapshot_err(ErrorVerb::Read))?;
        let data = read(MetaKey::SnapshotData).map_err(snapshot_err(ErrorVerb::Read))?;
        let (Some(meta), Some(data)) = (meta, data) else {
            return Ok(None);
        };
        let meta: SnapshotMeta = decode(&meta).map_err(snapshot_err(ErrorVerb::Read))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// Builds a snapshot from a copy of the state taken when openraft asked for a builder,
/// so applying can continue while the snapshot is written.
pub struct SnapshotBuilder<S> {
    store: Arc<S>,
    applied: AppliedState,
}

impl<S: MetadataStore> RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder<S> {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let data = encode(&self.applied).map_err(snapshot_err(ErrorVerb::Write))?;
        let index = self.applied.last_applied.map(|l| l.index).unwrap_or(0);
        // Unique per build: two builds at the same index must not be confused by a
        // receiver that resumes a chunked transfer.
        let snapshot_id: SnapshotId = format!("{index}-{}", Uuid::new_v4().simple());
        let meta = SnapshotMeta {
            last_log_id: self.applied.last_applied,
            last_membership: self.applied.last_membership.clone(),
            snapshot_id,
        };
        let meta_bytes = encode(&meta).map_err(snapshot_err(ErrorVerb::Write))?;
        self.store
            .put(&[
                (MetaKey::SnapshotMeta, &meta_bytes),
                (MetaKey::SnapshotData, &data),
            ])
            .map_err(snapshot_err(ErrorVerb::Write))?;
        self.store
            .flush()
            .await
            .map_err(snapshot_err(ErrorVerb::Write))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, Membership};

    use super::*;
    use crate::cluster::state::MetadataCommand;
    use crate::cluster::store_sled::SledStore;

    fn log_id(index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(1, 1), index)
    }

    fn normal(index: u64, cmd: MetadataCommand) -> Entry {
        Entry {
            log_id: log_id(index),
            payload: EntryPayload::Normal(cmd),
        }
    }

    fn open(
        dir: &std::path::Path,
    ) -> (
        StateMachineStore<SledStore>,
        watch::Receiver<Arc<MetadataImage>>,
    ) {
        let store = Arc::new(SledStore::open(dir).expect("open store"));
        let initial = MetadataImage {
            controller_id: 9,
            ..MetadataImage::default()
        };
        let (tx, rx) = watch::channel(Arc::new(initial));
        let sm = StateMachineStore::open(store, Arc::new(tx)).expect("open state machine");
        (sm, rx)
    }

    #[tokio::test]
    async fn apply_publishes_and_keeps_controller_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut sm, mut rx) = open(dir.path());
        rx.mark_unchanged();
        let members = Membership::new(vec![[1u64].into()], None);
        let results = sm
            .apply([
                Entry {
                    log_id: log_id(1),
                    payload: EntryPayload::Membership(members),
                },
                normal(2, MetadataCommand::AllocateProducerIds { count: 5 }),
                normal(3, MetadataCommand::AllocateProducerIds { count: 0 }),
            ])
            .await
            .expect("apply");
        assert_eq!(results[1], CommandResult::ProducerIds { first: 0 });
        assert!(matches!(results[2], CommandResult::Err(_)));
        assert!(rx.has_changed().expect("sender alive"));
        let img = rx.borrow_and_update().clone();
        assert_eq!(
            (img.applied_index, img.next_producer_id, img.controller_id),
            (3, 5, 9)
        );
        let (last, membership) = sm.applied_state().await.expect("applied state");
        assert_eq!(last, Some(log_id(3)));
        assert_eq!(membership.log_id(), &Some(log_id(1)));
    }

    #[tokio::test]
    async fn open_prefers_the_newer_of_applied_state_and_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (mut sm, _rx) = open(dir.path());
            sm.apply([normal(
                1,
                MetadataCommand::AllocateProducerIds { count: 10 },
            )])
            .await
            .expect("apply");
            sm.get_snapshot_builder()
                .await
                .build_snapshot()
                .await
                .expect("snapshot");
            sm.apply([normal(
                2,
                MetadataCommand::AllocateProducerIds { count: 10 },
            )])
            .await
            .expect("apply");
            // Simulate a crash that lost the latest applied-state write but kept an
            // older one, while a newer snapshot is on disk.
            let old = AppliedState::default();
            let bytes = encode(&old).expect("encode");
            sm.store.put(&[(MetaKey::Applied, &bytes)]).expect("put");
            sm.store.flush().await.expect("flush");
        }
        let (mut sm, rx) = open(dir.path());
        assert_eq!(rx.borrow().next_producer_id, 10, "state from the snapshot");
        let (last, _) = sm.applied_state().await.expect("applied state");
        assert_eq!(last, Some(log_id(1)));
    }

    #[tokio::test]
    async fn corrupt_state_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = SledStore::open(dir.path()).expect("open store");
            store.put(&[(MetaKey::Applied, b"{not json")]).expect("put");
            store.flush().await.expect("flush");
        }
        let store = Arc::new(SledStore::open(dir.path()).expect("open store"));
        let (tx, _rx) = watch::channel(Arc::default());
        assert!(matches!(
            StateMachineStore::open(store, Arc::new(tx)),
            Err(StoreError::Corrupt(_))
        ));
    }
}

//! Transactional offset commits (TxnOffsetCommit; KIP-98, KIP-447): the offsets a
//! transactional producer commits for a group are written to the group's
//! `__consumer_offsets` partition inside the producer's transaction and stay pending,
//! keyed by producer id, until the transaction's marker reaches that partition: COMMIT
//! makes them the group's committed offsets, ABORT drops them. OffsetFetch with
//! `require_stable` answers UNSTABLE_OFFSET_COMMIT for a partition with pending offsets.
//! Replay sees the records and the markers in log order and ends in the same state.

use kafka_protocol::error::ResponseError;

use super::coordinator::GroupCoordinator;
use super::offsets::{CommitPartition, OffsetCommitRequest, OffsetValue};
use super::types::{Output, Record};

/// An offset committed in a transaction not yet decided.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingOffset {
    pub group_id: String,
    pub topic: String,
    pub partition: i32,
    pub value: OffsetValue,
}

/// TxnOffsetCommit, decoded. Generation, member and instance id are those of v3+
/// (generation -1 and an empty member id before).
#[derive(Debug, Clone, PartialEq)]
pub struct TxnOffsetCommitRequest {
    pub group_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub partitions: Vec<CommitPartition>,
    pub now_ms: u64,
}

impl GroupCoordinator {
    /// TxnOffsetCommit: validated as an OffsetCommit of the same generation and member;
    /// the offsets become pending and their records are the producer's transactional
    /// batch ([`Output::txn`]).
    pub fn txn_commit_offsets(
        &mut self,
        req: &TxnOffsetCommitRequest,
    ) -> (Vec<(String, i32, Option<ResponseError>)>, Output) {
        let mut out = Output {
            txn: Some((req.producer_id, req.producer_epoch)),
            ..Output::default()
        };
        let as_commit = OffsetCommitRequest {
            group_id: req.group_id.clone(),
            generation_id: req.generation_id,
            member_id: req.member_id.clone(),
            group_instance_id: req.group_instance_id.clone(),
            retention_ms: None,
            partitions: Vec::new(),
            now_ms: req.now_ms,
        };
        // Versions before 3 carry no member or generation: such a commit is taken from
        // whoever holds the transactional id, whatever the group's state (Kafka's rule).
        let anonymous =
            req.generation_id < 0 && req.member_id.is_empty() && req.group_instance_id.is_none();
        let verdict = if anonymous {
            self.validate_anonymous_txn_commit(&as_commit)
        } else {
            self.validate_commit(&as_commit)
        };
        let max_metadata = self.config.offset_metadata_max_bytes;
        let mut results = Vec::with_capacity(req.partitions.len());
        for p in &req.partitions {
            let metadata = p.metadata.clone().unwrap_or_default();
            let error = match verdict {
                Err(e) => Some(e),
                Ok(()) if metadata.len() > max_metadata => {
                    Some(ResponseError::OffsetMetadataTooLarge)
                }
                Ok(()) => {
                    let value = OffsetValue {
                        offset: p.offset,
                        leader_epoch: p.leader_epoch,
                        metadata,
                        commit_timestamp_ms: req.now_ms,
                        expire_timestamp_ms: None,
                    };
                    let record = Record::Offset {
                        group_id: req.group_id.clone(),
                        topic: p.topic.clone(),
                        partition: p.partition,
                        value: Some(value),
                    };
                    self.add_pending(req.producer_id, &record);
                    out.records.push(record);
                    None
                }
            };
            results.push((p.topic.clone(), p.partition, error));
        }
        if out.records.is_empty() {
            out.txn = None;
        }
        (results, out)
    }

    /// The checks left for a commit without member and generation: a group id, and a
    /// group that is not being deleted; a group that does not exist yet is made.
    fn validate_anonymous_txn_commit(
        &mut self,
        req: &OffsetCommitRequest,
    ) -> Result<(), ResponseError> {
        if req.group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        if self.offsets(&req.group_id).is_none() {
            let group = super::classic::ClassicGroup::new(&req.group_id, req.now_ms);
            self.groups.insert(req.group_id.clone(), group);
        }
        match self.groups.get(&req.group_id) {
            Some(g) if g.is(super::classic::GroupState::Dead) => {
                Err(ResponseError::CoordinatorNotAvailable)
            }
            _ => Ok(()),
        }
    }

    /// A transactional offset record (written now, or replayed): pending until its
    /// producer's marker.
    pub fn add_pending(&mut self, producer_id: i64, record: &Record) {
        let Record::Offset {
            group_id,
            topic,
            partition,
            value: Some(value),
        } = record
        else {
            return;
        };
        let pending = self.pending_txn.entry(producer_id).or_default();
        // A later commit of the same partition in the transaction replaces the earlier.
        pending.retain(|o| {
            !(o.group_id == *group_id && o.topic == *topic && o.partition == *partition)
        });
        pending.push(PendingOffset {
            group_id: group_id.clone(),
            topic: topic.clone(),
            partition: *partition,
            value: value.clone(),
        });
    }

    /// The producer's transaction ended with a marker in this partition: its pending
    /// offsets become committed (`commit`) or vanish.
    pub fn complete_txn(&mut self, producer_id: i64, commit: bool, now_ms: u64) {
        let Some(pending) = self.pending_txn.remove(&producer_id) else {
            return;
        };
        if !commit {
            return;
        }
        for o in pending {
            self.apply_offset(&o.group_id, (o.topic, o.partition), Some(&o.value), now_ms);
        }
    }

    /// Whether a transaction not yet decided holds an offset of this partition for the
    /// group (OffsetFetch `require_stable`).
    pub fn has_pending_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.pending_txn
            .values()
            .flatten()
            .any(|o| o.group_id == group_id && o.topic == topic && o.partition == partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::offsets::OffsetFetchRequest;
    use crate::group::types::GroupConfig;

    fn coordinator() -> GroupCoordinator {
        GroupCoordinator::new(GroupConfig::default(), 1)
    }

    fn commit(pid: i64, offset: i64) -> TxnOffsetCommitRequest {
        TxnOffsetCommitRequest {
            group_id: "g".into(),
            producer_id: pid,
            producer_epoch: 0,
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            partitions: vec![CommitPartition {
                topic: "t".into(),
                partition: 0,
                offset,
                leader_epoch: -1,
                metadata: None,
            }],
            now_ms: 10,
        }
    }

    fn fetch(c: &GroupCoordinator, stable: bool) -> (i64, Option<ResponseError>) {
        let r = c.fetch_offsets(&OffsetFetchRequest {
            group_id: "g".into(),
            topics: Some(vec![("t".into(), vec![0])]),
            require_stable: stable,
        });
        (r[0].offset, r[0].error)
    }

    #[test]
    fn offsets_wait_for_the_transaction_and_follow_its_outcome() {
        let mut c = coordinator();
        let (results, out) = c.txn_commit_offsets(&commit(7, 42));
        assert_eq!(results[0].2, None);
        assert_eq!(out.txn, Some((7, 0)));
        assert_eq!(out.records.len(), 1);
        // Pending: not visible, and unstable for require_stable readers.
        assert_eq!(fetch(&c, false), (-1, None));
        assert_eq!(
            fetch(&c, true),
            (-1, Some(ResponseError::UnstableOffsetCommit))
        );
        c.complete_txn(7, true, 11);
        assert_eq!(fetch(&c, true), (42, None));
        // An aborted transaction's offsets vanish.
        c.txn_commit_offsets(&commit(8, 50));
        c.complete_txn(8, false, 12);
        assert_eq!(fetch(&c, true), (42, None));
        // A marker of another producer decides nothing here.
        c.txn_commit_offsets(&commit(9, 60));
        c.complete_txn(7, true, 13);
        assert_eq!(
            fetch(&c, true),
            (-1, Some(ResponseError::UnstableOffsetCommit))
        );
    }

    #[test]
    fn a_commit_from_a_stale_generation_is_refused() {
        let mut c = coordinator();
        let mut req = commit(7, 42);
        req.generation_id = 3;
        req.member_id = "ghost".into();
        let (results, out) = c.txn_commit_offsets(&req);
        assert!(results[0].2.is_some());
        assert!(out.records.is_empty() && out.txn.is_none());
        assert!(c.pending_txn.is_empty());
    }
}

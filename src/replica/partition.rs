//! A partition this broker leads, as one request sees it (Kafka's `Partition`): the
//! local log, the partition's metadata in the image the request was resolved against,
//! and, for a replicated partition, the leader's replication state (its followers and
//! the ISR it proposed). Every operation a handler or a coordinator performs on a
//! partition goes through it: appends, reads, offset lookups, end offsets for an epoch,
//! record deletion, producer listings; the epoch checks of KIP-320 happen here, not in
//! the callers. Obtaining one never creates a log: a partition whose log this broker
//! does not have yet answers NOT_LEADER_OR_FOLLOWER, and the client retries once the
//! replica manager has caught up with the metadata.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::fetch::Isolation;
use super::manager::SharedLeaderState;
use crate::cluster::PartitionMeta;
use crate::config::TopicConfig;
use crate::errors::KafkaError;
use crate::log::producer_state::ProducerInfo;
use crate::log::{LogError, PartitionLog, ReadResult, Records};

/// Which offset a ListOffsets lookup asks for (the wire's special timestamps, decoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetQuery {
    /// The offset a consumer would start at from the end: the high watermark, or the
    /// last stable offset for read_committed.
    Latest,
    /// The log start offset (also the local log start: there is no tiered storage).
    Earliest,
    /// The offset of the record with the largest timestamp.
    MaxTimestamp,
    /// Tiered-storage positions: none here.
    Tiered,
    /// The first record with a timestamp at or after this one.
    Timestamp(i64),
}

/// An offset found by a ListOffsets lookup: (offset, timestamp, leader epoch), -1 where
/// unknown.
pub type FoundOffset = (i64, i64, i32);

#[derive(Clone)]
pub struct Partition {
    topic: String,
    log: Arc<PartitionLog>,
    meta: PartitionMeta,
    /// The leader's replication state, for a replicated partition whose leadership the
    /// replica manager has taken up (in any epoch: callers compare it with `meta`).
    leader: Option<SharedLeaderState>,
}

impl Partition {
    pub(super) fn new(
        topic: &str,
        log: Arc<PartitionLog>,
        meta: PartitionMeta,
        leader: Option<SharedLeaderState>,
    ) -> Partition {
        Partition {
            topic: topic.to_string(),
            log,
            meta,
            leader,
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn index(&self) -> i32 {
        self.meta.partition
    }

    pub fn meta(&self) -> &PartitionMeta {
        &self.meta
    }

    pub fn config(&self) -> TopicConfig {
        self.log.config()
    }

    pub(super) fn log(&self) -> &Arc<PartitionLog> {
        &self.log
    }

    pub(super) fn leader_state(&self) -> Option<&SharedLeaderState> {
        self.leader.as_ref()
    }

    /// More than one replica: the ISR, not the appends, moves the high watermark.
    pub fn is_replicated(&self) -> bool {
        self.meta.replicas.len() > 1
    }

    /// Whether the replica manager has taken up this leadership in the metadata's epoch
    /// (a replicated log's high watermark moves by the ISR only from then on).
    pub(super) fn leads_in_epoch(&self) -> bool {
        self.leader
            .as_ref()
            .is_some_and(|s| s.lock().leader_epoch == self.meta.leader_epoch)
    }

    /// The client's view of the leader epoch (KIP-320): -1 skips the check; an older one
    /// is fenced, a newer one is not known here yet.
    pub fn check_epoch(&self, current_leader_epoch: i32) -> Result<(), KafkaError> {
        let epoch = self.meta.leader_epoch;
        if current_leader_epoch < 0 || current_leader_epoch == epoch {
            Ok(())
        } else if current_leader_epoch < epoch {
            Err(KafkaError::new(ResponseError::FencedLeaderEpoch))
        } else {
            Err(KafkaError::new(ResponseError::UnknownLeaderEpoch))
        }
    }

    pub fn high_watermark(&self) -> i64 {
        self.log.high_watermark()
    }

    /// The offset below which every transaction is decided and replicated; with no
    /// transactions in the log, the high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        self.log.last_stable_offset()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    /// OffsetForLeaderEpoch: the largest epoch <= `epoch` this log holds and where it
    /// ends, after checking the caller's current epoch.
    pub fn end_offset_for_epoch(
        &self,
        current_leader_epoch: i32,
        epoch: i32,
    ) -> Result<(i32, i64), KafkaError> {
        self.check_epoch(current_leader_epoch)?;
        Ok(self.log.end_offset_for_epoch(epoch))
    }

    /// ListOffsets for one partition, after checking the caller's current epoch.
    pub fn list_offset(
        &self,
        current_leader_epoch: i32,
        query: OffsetQuery,
        isolation: Isolation,
    ) -> Result<FoundOffset, KafkaError> {
        self.check_epoch(current_leader_epoch)?;
        let log = &self.log;
        let io = |e: LogError| KafkaError::from(&e);
        match query {
            OffsetQuery::Latest => {
                let end = match isolation {
                    Isolation::ReadUncommitted => self.high_watermark(),
                    Isolation::ReadCommitted => self.last_stable_offset(),
                };
                Ok((end, -1, log.latest_epoch().unwrap_or(-1)))
            }
            OffsetQuery::Earliest => {
                let start = log.log_start_offset();
                Ok((start, -1, log.epoch_at(start).unwrap_or(-1)))
            }
            OffsetQuery::MaxTimestamp => {
                Ok(log.max_timestamp().map_err(io)?.unwrap_or((-1, -1, -1)))
            }
            OffsetQuery::Tiered => Ok((-1, -1, -1)),
            OffsetQuery::Timestamp(ts) => Ok(log
                .offset_for_timestamp(ts)
                .map_err(io)?
                .unwrap_or((-1, -1, -1))),
        }
    }

    /// DeleteRecords: move the log start to `offset` (`None`: to the high watermark);
    /// the new log start is returned.
    pub fn delete_records(&self, offset: Option<i64>) -> Result<i64, KafkaError> {
        if !self.log.config().delete {
            return Err(KafkaError::with_message(
                ResponseError::PolicyViolation,
                format!(
                    "Records of partition {}-{} can not be deleted due to the configured policy",
                    self.topic, self.meta.partition
                ),
            ));
        }
        let hw = self.log.high_watermark();
        let target = offset.unwrap_or(hw);
        if target < 0 || target > hw {
            return Err(KafkaError::new(ResponseError::OffsetOutOfRange));
        }
        self.log
            .delete_records_before(target)
            .map_err(|e| KafkaError::from(&e))
    }

    /// The producers with state in this partition (DescribeProducers).
    pub fn producers(&self) -> Vec<ProducerInfo> {
        self.log.producers()
    }

    /// Whole batches from `offset` below `max_offset` (at least one), into memory: what
    /// a coordinator replays its state from, up to the log end. It blocks on the disk.
    pub fn read_into_memory(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<ReadResult, KafkaError> {
        self.log
            .read(offset, max_bytes, max_offset, true)
            .map_err(|e| KafkaError::from(&e))
    }

    /// Whole batches from `offset` below `max_offset`, large ones left in their file.
    pub(super) fn read_records(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one: bool,
    ) -> Result<Records, LogError> {
        self.log
            .read_records(offset, max_bytes, max_offset, min_one)
    }

    /// KIP-320: a follower whose last fetched epoch ends here before its fetch offset
    /// has a divergent tail: (the epoch it must truncate to, where that epoch ends).
    pub(super) fn diverging(
        &self,
        last_fetched_epoch: i32,
        fetch_offset: i64,
    ) -> Option<(i32, i64)> {
        if last_fetched_epoch < 0 || fetch_offset <= 0 {
            return None;
        }
        let (epoch, end) = self.log.end_offset_for_epoch(last_fetched_epoch);
        // No epochs here at all: an empty log answers OFFSET_OUT_OF_RANGE instead.
        (epoch >= 0 && (epoch != last_fetched_epoch || end < fetch_offset)).then_some((epoch, end))
    }
}

//! One partition's log: segments, indexes, epoch cache, producer state, append and read.

// IMPLEMENTATION OWNED BY THE STORAGE HELPER; the signatures below are the contract.

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;
use uuid::Uuid;

use super::LogError;
use crate::config::TopicConfig;

/// Outcome of a successful append (or of a duplicate, answered with the original offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The timestamp the broker stamped (LogAppendTime topics), else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// The batch was a retry of one already in the log.
    pub duplicate: bool,
}

/// Whole batches read from the log.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Whole stored batches; empty (never absent) when nothing is available.
    pub records: Bytes,
}

/// A partition log. Thread-safe; appends are serialised internally.
pub struct PartitionLog {
    _hw: watch::Sender<i64>,
}

impl PartitionLog {
    pub fn topic(&self) -> &str {
        todo!()
    }
    pub fn partition(&self) -> i32 {
        todo!()
    }
    pub fn topic_id(&self) -> Uuid {
        todo!()
    }
    /// Validate, check producer sequences, assign offsets, write. Does not fsync.
    pub fn append_as_leader(
        &self,
        _records: BytesMut,
        _leader_epoch: i32,
    ) -> Result<AppendResult, LogError> {
        todo!()
    }
    /// Wait until everything up to and including `offset` is fsynced (group commit).
    pub async fn flush_to(&self, _offset: i64) -> Result<(), LogError> {
        todo!()
    }
    /// Whole batches starting at the one containing `offset`, below `max_offset`, up to
    /// `max_bytes` (but at least one batch when `min_one`).
    pub fn read(
        &self,
        _offset: i64,
        _max_bytes: usize,
        _max_offset: i64,
        _min_one: bool,
    ) -> Result<ReadResult, LogError> {
        todo!()
    }
    pub fn log_start_offset(&self) -> i64 {
        todo!()
    }
    pub fn log_end_offset(&self) -> i64 {
        todo!()
    }
    pub fn high_watermark(&self) -> i64 {
        todo!()
    }
    /// A receiver of high-watermark changes, for long-polling fetches.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        todo!()
    }
    pub fn config(&self) -> TopicConfig {
        todo!()
    }
    pub fn update_config(&self, _cfg: TopicConfig) {
        todo!()
    }
    pub fn epoch_at(&self, _offset: i64) -> Option<i32> {
        todo!()
    }
    pub fn latest_epoch(&self) -> Option<i32> {
        todo!()
    }
    pub fn end_offset_for_epoch(&self, _epoch: i32) -> (i32, i64) {
        todo!()
    }
    pub fn offset_for_timestamp(&self, _ts: i64) -> Result<Option<(i64, i64, i32)>, LogError> {
        todo!()
    }
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64, i32)>, LogError> {
        todo!()
    }
    pub fn delete_records_before(&self, _offset: i64) -> Result<i64, LogError> {
        todo!()
    }
    pub fn size_bytes(&self) -> u64 {
        todo!()
    }
}

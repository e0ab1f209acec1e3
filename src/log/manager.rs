//! The log manager: every partition log on this broker, across all log directories.

// IMPLEMENTATION OWNED BY THE STORAGE HELPER; the signatures below are the contract.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{LogError, PartitionLog};
use crate::config::{Config, TopicConfig};

/// Usage of one log directory, for DescribeLogDirs.
#[derive(Debug, Clone)]
pub struct LogDirInfo {
    pub path: PathBuf,
    pub total_bytes: u64,
    pub usable_bytes: u64,
    /// Set when the directory failed (I/O error); its partitions are offline.
    pub error: Option<String>,
}

/// All partition logs.
pub struct LogManager {}

impl LogManager {
    /// Open every log directory: create missing ones, load and recover every partition
    /// found (`<topic>-<partition>/` with a `partition.metadata` holding the topic id).
    pub fn open(_cfg: Arc<Config>) -> Result<Arc<LogManager>, LogError> {
        todo!()
    }
    /// Start the flushers (one per directory), the background flush scheduler and the
    /// retention task. They stop when `shutdown` flips to true.
    pub fn start_background(
        self: &Arc<Self>,
        _shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        todo!()
    }
    pub fn get(&self, _topic: &str, _partition: i32) -> Option<Arc<PartitionLog>> {
        todo!()
    }
    /// The log of a partition, created (in the directory with fewest partitions) if absent.
    pub fn get_or_create(
        &self,
        _topic: &str,
        _partition: i32,
        _topic_id: Uuid,
        _cfg: TopicConfig,
    ) -> Result<Arc<PartitionLog>, LogError> {
        todo!()
    }
    /// Close and remove every partition of a topic.
    pub fn delete_topic(&self, _topic: &str) -> Result<(), LogError> {
        todo!()
    }
    /// Every partition log, in (topic, partition) order.
    pub fn all(&self) -> Vec<Arc<PartitionLog>> {
        todo!()
    }
    pub fn dirs(&self) -> Vec<LogDirInfo> {
        todo!()
    }
    /// Flush everything, write recovery checkpoints and producer snapshots, mark clean.
    pub fn shutdown(&self) -> Result<(), LogError> {
        todo!()
    }
}

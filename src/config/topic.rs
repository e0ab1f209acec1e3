//! The settings one topic's log acts on, resolved from the topic's overrides over the
//! broker's values (dynamic, static or default).

use std::collections::BTreeMap;

use super::{split_list, Config, FlushPolicy, TimestampType};
use crate::log::codec::TopicCompression;

impl Config {
    /// Topic settings resolved from broker defaults overlaid with a topic's own overrides.
    pub fn topic_config(&self, overrides: &BTreeMap<String, String>) -> TopicConfig {
        let get = |name: &str| -> String {
            overrides
                .get(name)
                .cloned()
                .or_else(|| self.topic_default(name).map(|(v, _, _)| v))
                .unwrap_or_default()
        };
        let long = |name: &str, dflt: i64| get(name).parse::<i64>().unwrap_or(dflt);
        let policy = get("cleanup.policy");
        TopicConfig {
            compact: split_list(&policy).iter().any(|p| p == "compact"),
            delete: split_list(&policy).iter().any(|p| p == "delete"),
            retention_ms: long("retention.ms", -1),
            retention_bytes: long("retention.bytes", -1),
            segment_bytes: long("segment.bytes", 1 << 30).clamp(14, i32::MAX as i64) as u64,
            segment_ms: long("segment.ms", 604_800_000).max(1),
            segment_jitter_ms: long("segment.jitter.ms", 0).max(0),
            segment_index_bytes: long("segment.index.bytes", 10 << 20).max(8) as u64,
            index_interval_bytes: long("index.interval.bytes", 4096).max(0) as u64,
            max_message_bytes: long("max.message.bytes", 1_048_588).max(0) as usize,
            timestamp_type: if get("message.timestamp.type") == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            timestamp_before_max_ms: long("message.timestamp.before.max.ms", i64::MAX),
            timestamp_after_max_ms: long("message.timestamp.after.max.ms", i64::MAX),
            flush_messages: long("flush.messages", i64::MAX),
            flush_ms: long("flush.ms", i64::MAX),
            flush_policy: if get("flush.policy") == "background" {
                FlushPolicy::Background
            } else {
                FlushPolicy::Durable
            },
            delete_retention_ms: long("delete.retention.ms", 86_400_000),
            min_compaction_lag_ms: long("min.compaction.lag.ms", 0),
            max_compaction_lag_ms: long("max.compaction.lag.ms", i64::MAX),
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio").parse().unwrap_or(0.5),
            min_insync_replicas: long("min.insync.replicas", 1) as i32,
            file_delete_delay_ms: long("file.delete.delay.ms", 60_000),
            preallocate: get("preallocate") == "true",
            compression: TopicCompression::from_config(
                &get("compression.type"),
                long("compression.gzip.level", -1) as i32,
                long("compression.lz4.level", 9) as i32,
                long("compression.zstd.level", 3) as i32,
            ),
        }
    }
}

/// The topic settings the log, produce path and cleaner act on.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    pub compact: bool,
    pub delete: bool,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub segment_jitter_ms: i64,
    pub segment_index_bytes: u64,
    pub index_interval_bytes: u64,
    pub max_message_bytes: usize,
    pub timestamp_type: TimestampType,
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub flush_policy: FlushPolicy,
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
    pub min_insync_replicas: i32,
    pub file_delete_delay_ms: i64,
    pub preallocate: bool,
    /// compression.type with its level: the codec the leader stores batches in.
    pub compression: TopicCompression,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Config::defaults().topic_config(&BTreeMap::new())
    }
}

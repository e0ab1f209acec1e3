//! DescribeLogDirs (key 35), v1–v4: this broker's log directories and the size of every
//! partition in each (all partitions, or the requested topic-partitions only).
//!
//! Paths are absolute, as Kafka reports them. A failed directory carries
//! KAFKA_STORAGE_ERROR and no partitions. A partition being moved to a directory
//! (AlterReplicaLogDirs) shows there as a future replica (`is_future_key`) with the bytes
//! copied so far and the offsets still to copy (estimated from the bytes) as its lag. v3+ has a top-level error code
//! (always NONE: there is no authorization yet); v4 adds total and usable bytes.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 4 };

pub async fn handle(ctx: &Ctx, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    if !ctx.authorize_cluster(crate::authorizer::Operation::Describe) {
        let code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        ctx.note_error(code);
        return DescribeLogDirsResponse::default().with_error_code(code);
    }
    let wanted: Option<HashSet<(String, i32)>> = req.topics.map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.to_string(), *p)))
            .collect()
    });
    let logs = ctx.state.logs.clone();
    // Directory statistics and the partition directory lookups touch the disk.
    let dirs = tokio::task::spawn_blocking(move || {
        let dirs = logs.dirs();
        let all = logs.all();
        let moves = logs.moves();
        let single = dirs.len() == 1;
        dirs.into_iter()
            .enumerate()
            .map(|(i, d)| {
                // (partition, size, offset lag, future)
                let mut topics: BTreeMap<String, Vec<(i32, u64, i64, bool)>> = BTreeMap::new();
                if d.error.is_none() {
                    for log in &all {
                        let (t, p) = (log.topic(), log.partition());
                        if wanted
                            .as_ref()
                            .is_some_and(|w| !w.contains(&(t.to_string(), p)))
                        {
                            continue;
                        }
                        // A partition lives in `<dir>/<topic>-<partition>/`.
                        if single || d.path.join(format!("{t}-{p}")).is_dir() {
                            topics.entry(t.to_string()).or_default().push((
                                p,
                                log.size_bytes(),
                                0,
                                false,
                            ));
                        }
                    }
                    // A partition being copied here: its future replica, with the
                    // offsets still to copy (estimated from the bytes).
                    for ((t, p), dest, copied, total) in &moves {
                        if *dest != i
                            || wanted
                                .as_ref()
                                .is_some_and(|w| !w.contains(&(t.clone(), *p)))
                        {
                            continue;
                        }
                        let end = all
                            .iter()
                            .find(|l| l.topic() == t && l.partition() == *p)
                            .map_or(0, |l| l.log_end_offset() - l.log_start_offset());
                        let left = total.saturating_sub(*copied) as f64 / (*total).max(1) as f64;
                        let lag = (end as f64 * left).round() as i64;
                        topics
                            .entry(t.clone())
                            .or_default()
                            .push((*p, *copied, lag, true));
                    }
                }
                (d, topics)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();

    let mut results = Vec::new();
    for (d, topics) in dirs {
        let mut r = DescribeLogDirsResult::default().with_log_dir(s(&absolute(&d.path)));
        if d.error.is_some() {
            let code = ResponseError::KafkaStorageError.code();
            ctx.note_error(code);
            r.error_code = code;
        } else {
            r.total_bytes = d.total_bytes.min(i64::MAX as u64) as i64;
            r.usable_bytes = d.usable_bytes.min(i64::MAX as u64) as i64;
            r.topics = topics
                .into_iter()
                .map(|(name, parts)| {
                    DescribeLogDirsTopic::default()
                        .with_name(TopicName(s(&name)))
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, size, lag, future)| {
                                    DescribeLogDirsPartition::default()
                                        .with_partition_index(p)
                                        .with_partition_size(size.min(i64::MAX as u64) as i64)
                                        .with_offset_lag(lag)
                                        .with_is_future_key(future)
                                })
                                .collect(),
                        )
                })
                .collect();
        }
        results.push(r);
    }
    DescribeLogDirsResponse::default().with_results(results)
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

//! AlterReplicaLogDirs (key 34), v1–v2: move partitions of this broker to another of
//! its log directories (`kafka-reassign-partitions.sh` with `log_dirs`, `weir topic
//! move-dir`). Each move runs in the background (`crate::log::mover`) and shows in
//! DescribeLogDirs as a future replica until it completes. Per partition: a directory
//! outside `log.dirs` is LOG_DIR_NOT_FOUND, an offline one KAFKA_STORAGE_ERROR, an
//! unknown topic or partition UNKNOWN_TOPIC_OR_PARTITION; a partition this broker does
//! not host yet is placed in that directory when it comes, as Kafka does.

use std::collections::BTreeMap;
use std::path::Path;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 2 };

pub async fn handle(ctx: &Ctx, req: AlterReplicaLogDirsRequest) -> AlterReplicaLogDirsResponse {
    let image = ctx.state.controller.image();
    let logs = ctx.state.logs.clone();
    // ALTER on the cluster; every partition is refused otherwise.
    let allowed = ctx.authorize_cluster(crate::authorizer::Operation::Alter);
    let mut by_topic: BTreeMap<String, (kafka_protocol::messages::TopicName, Vec<_>)> =
        BTreeMap::new();
    for dir in &req.dirs {
        for t in &dir.topics {
            for &p in &t.partitions {
                let meta = image.partition(&t.name, p);
                let code = if !allowed {
                    ResponseError::ClusterAuthorizationFailed.code()
                } else if meta.is_none() {
                    ResponseError::UnknownTopicOrPartition.code()
                } else {
                    let leader = meta.is_some_and(|m| m.leader == ctx.state.node_id);
                    match logs.alter_log_dir(&t.name, p, Path::new(dir.path.as_str()), leader) {
                        Ok(()) => 0,
                        Err(e) => KafkaError::from(&e).code,
                    }
                };
                ctx.note_error(code);
                by_topic
                    .entry(t.name.to_string())
                    .or_insert_with(|| (t.name.clone(), Vec::new()))
                    .1
                    .push(
                        AlterReplicaLogDirPartitionResult::default()
                            .with_partition_index(p)
                            .with_error_code(code),
                    );
            }
        }
    }
    AlterReplicaLogDirsResponse::default().with_results(
        by_topic
            .into_values()
            .map(|(name, partitions)| {
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(name)
                    .with_partitions(partitions)
            })
            .collect(),
    )
}

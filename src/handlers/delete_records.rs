//! DeleteRecords (key 21), v0–v2: move a partition's log start offset forward, making
//! the records before it unreadable (whole segments below it are removed by the log).
//!
//! The offset -1 means the high watermark. An offset above the high watermark (or
//! negative) is OFFSET_OUT_OF_RANGE; a topic whose cleanup.policy lacks `delete` is
//! POLICY_VIOLATION; this broker must lead the partition (NOT_LEADER_OR_FOLLOWER,
//! UNKNOWN_TOPIC_OR_PARTITION), all as in Kafka. The answer's low watermark is the new
//! log start offset (-1 on error). Single-replica partitions answer at once; followers
//! catch up with the log start offset through their fetches.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// The request's "up to the high watermark" offset.
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(ctx: &Ctx, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let image = ctx.state.controller.image();
    let mut topics = Vec::new();
    for t in req.topics {
        let name = t.name.to_string();
        // DELETE on the topic (TOPIC_AUTHORIZATION_FAILED otherwise).
        let allowed = ctx.authorize(
            crate::authorizer::Operation::Delete,
            crate::authorizer::ResourceType::Topic,
            &name,
        );
        let mut partitions = Vec::new();
        for p in t.partitions {
            let deleted = if allowed {
                delete(ctx, &image, &name, p.partition_index, p.offset)
            } else {
                Err(crate::errors::KafkaError::new(
                    kafka_protocol::error::ResponseError::TopicAuthorizationFailed,
                ))
            };
            let r = match deleted {
                Ok(low) => DeleteRecordsPartitionResult::default().with_low_watermark(low),
                Err(e) => {
                    ctx.note_error(e.code);
                    DeleteRecordsPartitionResult::default()
                        .with_low_watermark(-1)
                        .with_error_code(e.code)
                }
            };
            partitions.push(r.with_partition_index(p.partition_index));
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

fn delete(
    ctx: &Ctx,
    image: &crate::cluster::MetadataImage,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<i64, KafkaError> {
    let target = (offset != HIGH_WATERMARK).then_some(offset);
    ctx.state
        .replicas
        .leader(image, topic, partition)?
        .delete_records(target)
}

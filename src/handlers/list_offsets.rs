//! ListOffsets (key 2), v1–v10: earliest (-2), latest (-1), max timestamp (-3),
//! earliest local (-4), latest tiered (-5) and earliest pending upload (-6), or the first
//! offset whose timestamp is at or after a given time.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;
use crate::errors::KafkaError;
use crate::replica::fetch::Isolation;
use crate::replica::partition::{FoundOffset, OffsetQuery};

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 10 };

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const EARLIEST_PENDING_UPLOAD: i64 = -6;

pub async fn handle(ctx: &Ctx, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let image = ctx.state.controller.image();
    // v2+ carries the isolation level: read_committed ends at the last stable offset.
    let isolation = if req.isolation_level == 1 {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    let mut topics = Vec::new();
    for t in req.topics {
        let name = t.name.to_string();
        // DESCRIBE on the topic (TOPIC_AUTHORIZATION_FAILED otherwise).
        let allowed = ctx.authorize(
            crate::authorizer::Operation::Describe,
            crate::authorizer::ResourceType::Topic,
            &name,
        );
        let mut partitions = Vec::new();
        for p in t.partitions {
            let base =
                ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            let found = if allowed {
                lookup(
                    ctx,
                    &image,
                    &name,
                    p.partition_index,
                    p.current_leader_epoch,
                    p.timestamp,
                    isolation,
                )
            } else {
                Err(crate::errors::KafkaError::new(
                    kafka_protocol::error::ResponseError::TopicAuthorizationFailed,
                ))
            };
            let r = match found {
                Ok((offset, timestamp, epoch)) => {
                    // The leader epoch field exists from v4 on.
                    let epoch = if ctx.version >= 4 { epoch } else { -1 };
                    base.with_offset(offset)
                        .with_timestamp(timestamp)
                        .with_leader_epoch(epoch)
                }
                Err(e) => {
                    ctx.note_error(e.code);
                    base.with_error_code(e.code)
                        .with_offset(-1)
                        .with_timestamp(-1)
                }
            };
            partitions.push(r);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

fn lookup(
    ctx: &Ctx,
    image: &crate::cluster::MetadataImage,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    timestamp: i64,
    isolation: Isolation,
) -> Result<FoundOffset, KafkaError> {
    let query = match timestamp {
        LATEST => OffsetQuery::Latest,
        EARLIEST | EARLIEST_LOCAL => OffsetQuery::Earliest,
        MAX_TIMESTAMP => OffsetQuery::MaxTimestamp,
        // No tiered storage: nothing is tiered or pending upload.
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => OffsetQuery::Tiered,
        ts if ts >= 0 => OffsetQuery::Timestamp(ts),
        _ => {
            return Err(KafkaError::with_message(
                ResponseError::InvalidRequest,
                format!("invalid timestamp {timestamp}"),
            ))
        }
    };
    ctx.state
        .replicas
        .leader(image, topic, partition)?
        .list_offset(current_leader_epoch, query, isolation)
}

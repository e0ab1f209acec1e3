//! OffsetForLeaderEpoch (key 23), v2–v4: the end offset of a leader epoch, from the
//! partition's leader-epoch cache. Clients use it to detect log truncation (KIP-320);
//! followers use it to truncate to the leader.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;

pub const VERSIONS: VersionRange = VersionRange { min: 2, max: 4 };

pub async fn handle(ctx: &Ctx, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    use crate::authorizer::{Operation, ResourceType};
    let image = ctx.state.controller.image();
    // A follower (replica id >= 0, v3+) needs CLUSTER_ACTION, a client DESCRIBE on the topic.
    let follower = ctx.version >= 3 && req.replica_id.0 >= 0;
    let cluster_ok = !follower || ctx.authorize_cluster(Operation::ClusterAction);
    let mut topics = Vec::new();
    for t in req.topics {
        let name = t.topic.to_string();
        let allowed = cluster_ok
            && (follower || ctx.authorize(Operation::Describe, ResourceType::Topic, &name));
        let mut partitions = Vec::new();
        for p in t.partitions {
            let base = EpochEndOffset::default().with_partition(p.partition);
            let r = if allowed {
                ctx.state
                    .replicas
                    .leader(&image, &name, p.partition)
                    .and_then(|part| {
                        part.end_offset_for_epoch(p.current_leader_epoch, p.leader_epoch)
                    })
            } else {
                Err(crate::errors::KafkaError::new(
                    kafka_protocol::error::ResponseError::TopicAuthorizationFailed,
                ))
            };
            partitions.push(match r {
                Ok((epoch, offset)) => base.with_leader_epoch(epoch).with_end_offset(offset),
                Err(e) => {
                    ctx.note_error(e.code);
                    base.with_error_code(e.code)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1)
                }
            });
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

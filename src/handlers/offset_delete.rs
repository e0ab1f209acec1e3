//! OffsetDelete (key 47), v0: removes committed offsets of a group; not for topics an
//! active consumer group is subscribed to (GROUP_SUBSCRIBED_TO_TOPIC).

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};
use kafka_protocol::protocol::VersionRange;

use super::util::{code, s};
use super::Ctx;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(ctx: &Ctx, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    use crate::authorizer::{Operation, ResourceType};
    use kafka_protocol::error::ResponseError;
    let group_id = req.group_id.to_string();
    // DELETE on the group; READ on each topic (refused partitions keep their offsets).
    if let Some(error) = ctx.refuse_group(Operation::Delete, &group_id) {
        return OffsetDeleteResponse::default().with_error_code(error);
    }
    let readable: std::collections::HashSet<String> = req
        .topics
        .iter()
        .filter(|t| ctx.authorize(Operation::Read, ResourceType::Topic, &t.name))
        .map(|t| t.name.to_string())
        .collect();
    let partitions: Vec<(String, i32)> = req
        .topics
        .iter()
        .filter(|t| readable.contains(t.name.as_str()))
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.to_string(), p.partition_index))
        })
        .collect();
    let result = ctx
        .state
        .groups
        .run(&group_id, |c, _| c.delete_offsets(&group_id, &partitions))
        .await;
    let (error, mut results) = match result {
        Ok((e, r)) => (code(e), r),
        Err(e) => (e.code(), Vec::new()),
    };
    for t in req
        .topics
        .iter()
        .filter(|t| !readable.contains(t.name.as_str()))
    {
        for p in &t.partitions {
            results.push((
                t.name.to_string(),
                p.partition_index,
                Some(ResponseError::TopicAuthorizationFailed),
            ));
        }
    }
    ctx.note_error(error);
    let mut by_topic: BTreeMap<String, Vec<OffsetDeleteResponsePartition>> = BTreeMap::new();
    for (topic, partition, e) in results {
        ctx.note_error(code(e));
        by_topic.entry(topic).or_default().push(
            OffsetDeleteResponsePartition::default()
                .with_partition_index(partition)
                .with_error_code(code(e)),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, ps)| {
            OffsetDeleteResponseTopic::default()
                .with_name(TopicName(s(&name)))
                .with_partitions(ps)
        })
        .collect();
    OffsetDeleteResponse::default()
        .with_error_code(error)
        .with_topics(topics)
}

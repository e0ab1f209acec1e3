//! OffsetCommit (key 8), v2–v9: stores a group's consumed positions. Members commit with
//! their generation (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID as
//! Kafka answers them); generation -1 with an empty member id is a standalone commit
//! for a group without members. The commit is durable before it is acknowledged.
//! Partitions of topics that do not exist (or indexes beyond a topic's partition count)
//! are answered UNKNOWN_TOPIC_OR_PARTITION and not stored, as Kafka does.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, TopicName};
use kafka_protocol::protocol::VersionRange;

use super::util::{code, s};
use super::Ctx;
use crate::group::{self, CommitPartition};

pub const VERSIONS: VersionRange = VersionRange { min: 2, max: 9 };

pub async fn handle(ctx: &Ctx, req: OffsetCommitRequest) -> OffsetCommitResponse {
    use crate::authorizer::{Operation, ResourceType};
    let group_id = req.group_id.to_string();
    let image = ctx.state.controller.image();
    let exists = |topic: &str, partition: i32| image.partition(topic, partition).is_some();
    // READ on the group, then READ on each topic; refused partitions are not committed.
    let group_ok = ctx.authorize(Operation::Read, ResourceType::Group, &group_id);
    let refused: std::collections::HashMap<String, Option<i16>> = req
        .topics
        .iter()
        .map(|t| {
            let code = if !group_ok {
                Some(ResponseError::GroupAuthorizationFailed.code())
            } else if !ctx.authorize(Operation::Read, ResourceType::Topic, &t.name) {
                Some(ResponseError::TopicAuthorizationFailed.code())
            } else {
                None
            };
            (t.name.to_string(), code)
        })
        .collect();
    let refusal = |topic: &str| refused.get(topic).copied().flatten();
    let unknown: Vec<(String, i32, i16)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter_map(|p| {
                    let code = refusal(&t.name).or_else(|| {
                        (!exists(&t.name, p.partition_index))
                            .then(|| ResponseError::UnknownTopicOrPartition.code())
                    })?;
                    Some((t.name.to_string(), p.partition_index, code))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let partitions: Vec<CommitPartition> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| CommitPartition {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if ctx.version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .filter(|p| refusal(&p.topic).is_none() && exists(&p.topic, p.partition))
        .collect();
    let commit = group::OffsetCommitRequest {
        group_id: group_id.clone(),
        generation_id: req.generation_id_or_member_epoch,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        retention_ms: (ctx.version <= 4 && req.retention_time_ms >= 0)
            .then_some(req.retention_time_ms),
        partitions: partitions.clone(),
        now_ms: 0,
    };
    // A request naming only unknown partitions does not reach the coordinator.
    let outcome = if partitions.is_empty() {
        Ok(Vec::new())
    } else {
        ctx.state
            .groups
            .run(&group_id, |c, now| {
                c.commit_offsets(&group::OffsetCommitRequest {
                    now_ms: now,
                    ..commit
                })
            })
            .await
    };
    let mut results: Vec<(String, i32, i16)> = match outcome {
        Ok(r) => r.into_iter().map(|(t, p, e)| (t, p, code(e))).collect(),
        Err(e) => partitions
            .iter()
            .map(|p| (p.topic.clone(), p.partition, e.code()))
            .collect(),
    };
    results.extend(unknown);
    let mut by_topic: BTreeMap<String, Vec<OffsetCommitResponsePartition>> = BTreeMap::new();
    for (topic, partition, error) in results {
        ctx.note_error(error);
        by_topic.entry(topic).or_default().push(
            OffsetCommitResponsePartition::default()
                .with_partition_index(partition)
                .with_error_code(error),
        );
    }
    // Answer topics in request order, as Kafka does.
    let topics = req
        .topics
        .iter()
        .filter_map(|t| {
            let name = t.name.to_string();
            by_topic.remove(&name).map(|ps| {
                OffsetCommitResponseTopic::default()
                    .with_name(TopicName(s(&name)))
                    .with_partitions(ps)
            })
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

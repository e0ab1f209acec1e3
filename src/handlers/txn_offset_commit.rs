//! TxnOffsetCommit (key 28), v0–v4: a transactional producer commits a consumer group's
//! offsets inside its transaction (`send_offsets_to_transaction`). The group coordinator
//! checks the generation and member as for OffsetCommit (v3+ carries them), writes the
//! offsets as the producer's transactional batch, and keeps them pending until the
//! transaction's marker commits or drops them. Needs WRITE on the transactional id, READ
//! on the group and READ on each topic; unknown partitions are
//! UNKNOWN_TOPIC_OR_PARTITION.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TopicName, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::code;
use super::Ctx;
use crate::authorizer::{Operation, ResourceType};
use crate::group::{self, CommitPartition};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

pub async fn handle(ctx: &Ctx, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let group_id = req.group_id.to_string();
    let image = ctx.state.controller.image();
    let whole = if !ctx.authorize(
        Operation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id,
    ) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !ctx.authorize(Operation::Read, ResourceType::Group, &group_id) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    // The error of each partition refused before the coordinator, by (topic, partition).
    let refusal = |topic: &str, partition: i32| -> Option<ResponseError> {
        whole.or_else(|| {
            if !ctx.authorize(Operation::Read, ResourceType::Topic, topic) {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if image.partition(topic, partition).is_none() {
                Some(ResponseError::UnknownTopicOrPartition)
            } else {
                None
            }
        })
    };
    let mut results: Vec<(String, i32, i16)> = Vec::new();
    let mut partitions = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            match refusal(&t.name, p.partition_index) {
                Some(e) => results.push((t.name.to_string(), p.partition_index, e.code())),
                None => partitions.push(CommitPartition {
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if ctx.version >= 2 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                }),
            }
        }
    }
    if !partitions.is_empty() {
        let commit = group::TxnOffsetCommitRequest {
            group_id: group_id.clone(),
            producer_id: req.producer_id.0,
            producer_epoch: req.producer_epoch,
            generation_id: if ctx.version >= 3 {
                req.generation_id
            } else {
                -1
            },
            member_id: req.member_id.to_string(),
            group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
            partitions: partitions.clone(),
            now_ms: 0,
        };
        let outcome = ctx
            .state
            .groups
            .run(&group_id, |c, now| {
                c.txn_commit_offsets(&group::TxnOffsetCommitRequest {
                    now_ms: now,
                    ..commit
                })
            })
            .await;
        match outcome {
            Ok(r) => results.extend(r.into_iter().map(|(t, p, e)| (t, p, code(e)))),
            Err(e) => results.extend(
                partitions
                    .iter()
                    .map(|p| (p.topic.clone(), p.partition, e.code())),
            ),
        }
    }
    // Topics and partitions in request order.
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let ps = t
                .partitions
                .iter()
                .map(|p| {
                    let error = results
                        .iter()
                        .find(|(n, i, _)| n.as_str() == t.name.as_str() && *i == p.partition_index)
                        .map_or(0, |r| r.2);
                    ctx.note_error(error);
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(TopicName(t.name.0.clone()))
                .with_partitions(ps)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

//! DescribeTopicPartitions (key 75), v0: topics and their partitions a page at a time
//! (KIP-966), what Kafka 3.8+ admin clients call to describe topics.
//!
//! Topics are answered in name order, every topic when the request names none. At most
//! `response_partition_limit` partitions are returned (capped at 2000, Kafka's
//! `max.request.partition.size.limit`); when a topic's partitions do not all fit, the
//! answer carries `next_cursor` (topic and first partition not returned) and the client
//! asks again from there. A cursor on a topic the request does not name is
//! INVALID_REQUEST for every topic named. Unknown topics are answered UNKNOWN_TOPIC_OR_PARTITION and never
//! created. Partitions are described as Metadata describes them; Weir has no
//! eligible-leader replicas (KIP-966's ELR), so those lists are empty. With an
//! authorizer, every-topic answers hold only topics the principal may DESCRIBE, and a
//! named one it may not is TOPIC_AUTHORIZATION_FAILED.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::VersionRange;
use uuid::Uuid;

use super::util::s;
use super::Ctx;
use crate::admin::topics;
use crate::authorizer::{Operation, ResourceType};
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// Kafka's `max.request.partition.size.limit` default: the most partitions one answer
/// carries, whatever the request asks.
pub const MAX_PARTITIONS: i32 = 2000;

pub async fn handle(
    ctx: &Ctx,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let requested: Vec<TopicName> = req.topics.iter().map(|t| t.name.clone()).collect();
    match describe(ctx, req) {
        Ok(resp) => resp,
        // A request refused as a whole: every topic it names carries the error, as
        // Kafka answers.
        Err(e) => {
            ctx.note_error(e.code);
            let topics = requested
                .into_iter()
                .map(|name| {
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_error_code(e.code)
                        .with_name(Some(name))
                        .with_topic_authorized_operations(i32::MIN)
                })
                .collect();
            DescribeTopicPartitionsResponse::default().with_topics(topics)
        }
    }
}

fn describe(
    ctx: &Ctx,
    req: DescribeTopicPartitionsRequest,
) -> Result<DescribeTopicPartitionsResponse, KafkaError> {
    let state = &ctx.state;
    let image = state.controller.image();
    let names: BTreeSet<String> = if req.topics.is_empty() {
        image.topics.keys().cloned().collect()
    } else {
        req.topics.iter().map(|t| t.name.to_string()).collect()
    };
    let (start_topic, start_partition) = match &req.cursor {
        Some(c) => {
            let topic = c.topic_name.to_string();
            if !req.topics.is_empty() && !names.contains(&topic) {
                return Err(KafkaError::with_message(
                    ResponseError::InvalidRequest,
                    format!(
                        "DescribeTopicPartitionsRequest topic list should contain the cursor topic: {topic}"
                    ),
                ));
            }
            (Some(topic), c.partition_index.max(0))
        }
        None => (None, 0),
    };
    let mut budget = if req.response_partition_limit > 0 {
        req.response_partition_limit.min(MAX_PARTITIONS)
    } else {
        MAX_PARTITIONS
    };
    let unavailable = state.logs.unavailable();
    let ops = |name: &str| ctx.authorized_operations(ResourceType::Topic, name, true);
    let every = req.topics.is_empty();
    let mut topics = Vec::new();
    let mut next_cursor = None;
    let skip = |name: &String| start_topic.as_ref().is_some_and(|start| name < start);
    for name in names.iter().filter(|n| !skip(n)) {
        if every && !ctx.allowed(Operation::Describe, ResourceType::Topic, name) {
            continue;
        }
        if !every && !ctx.authorize(Operation::Describe, ResourceType::Topic, name) {
            let code = ResponseError::TopicAuthorizationFailed.code();
            ctx.note_error(code);
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(code)
                    .with_name(Some(TopicName(s(name))))
                    .with_topic_id(Uuid::nil())
                    .with_topic_authorized_operations(i32::MIN),
            );
            continue;
        }
        let Some(t) = image.topic(name) else {
            let code = topics::validate_name(name)
                .err()
                .map_or(ResponseError::UnknownTopicOrPartition.code(), |e| e.code);
            ctx.note_error(code);
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(code)
                    .with_name(Some(TopicName(s(name))))
                    .with_topic_id(Uuid::nil())
                    .with_topic_authorized_operations(ops(name)),
            );
            continue;
        };
        if budget == 0 {
            next_cursor = Some(Cursor::default().with_topic_name(TopicName(s(name))));
            break;
        }
        // The cursor's partition applies to the cursor's topic only.
        let first = if start_topic.as_ref() == Some(name) {
            start_partition as usize
        } else {
            0
        };
        let mut partitions = Vec::new();
        for p in t.partitions.iter().skip(first) {
            if budget == 0 {
                next_cursor = Some(
                    Cursor::default()
                        .with_topic_name(TopicName(s(name)))
                        .with_partition_index(p.partition),
                );
                break;
            }
            budget -= 1;
            let view = topics::partition_view(&image, p, name, state.node_id, &unavailable);
            let ids = |v: &[i32]| v.iter().map(|r| BrokerId(*r)).collect::<Vec<_>>();
            partitions.push(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_error_code(view.error_code)
                    .with_partition_index(p.partition)
                    .with_leader_id(BrokerId(view.leader))
                    .with_leader_epoch(p.leader_epoch)
                    .with_replica_nodes(ids(&p.replicas))
                    .with_isr_nodes(ids(&p.isr))
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new()))
                    .with_offline_replicas(ids(&view.offline)),
            );
        }
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(s(name))))
                .with_topic_id(t.id)
                .with_is_internal(t.internal)
                .with_partitions(partitions)
                .with_topic_authorized_operations(ops(name)),
        );
        if next_cursor.is_some() {
            break;
        }
    }
    Ok(DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor))
}

//! CreatePartitions (key 37), v0–v3: grow a topic to a new total partition count.
//!
//! The count must exceed the current one (INVALID_PARTITIONS, with Kafka's messages). New
//! partitions get the replication factor of partition 0, spread over the brokers, or the
//! given assignment, which must have exactly one replica list per new partition with that
//! many replicas (INVALID_REPLICA_ASSIGNMENT). A topic named twice gets one
//! INVALID_REQUEST; an unknown one UNKNOWN_TOPIC_OR_PARTITION. A request adding more than
//! 10 000 partitions in all fails with POLICY_VIOLATION, as in Kafka. `validate_only` commits
//! nothing. The new partitions' logs exist on this broker before the answer.

use std::collections::{HashMap, HashSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::admin::commit;
use crate::admin::topics;
use crate::admin::topics::MAX_PARTITIONS_PER_REQUEST;
use crate::cluster::{MetadataCommand, MetadataImage, PartitionMeta};
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 3 };

pub async fn handle(ctx: &Ctx, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for t in &req.topics {
        *counts.entry(t.name.to_string()).or_insert(0) += 1;
    }
    // As in Kafka, one request may not add more than 10 000 partitions in all.
    let image = ctx.state.controller.image();
    let added: i64 = req
        .topics
        .iter()
        .filter(|t| counts[&t.name.to_string()] == 1)
        .filter_map(|t| {
            let current = image.topic(&t.name)?.partitions.len() as i64;
            Some((i64::from(t.count) - current).max(0))
        })
        .sum();
    let too_many = added > MAX_PARTITIONS_PER_REQUEST;
    let mut reported = HashSet::new();
    let mut results = Vec::new();
    for topic in req.topics {
        let name = topic.name.clone();
        let outcome = if counts[&name.to_string()] > 1 {
            if !reported.insert(name.to_string()) {
                continue;
            }
            Err(KafkaError::with_message(
                ResponseError::InvalidRequest,
                "Duplicate topic name.",
            ))
        } else if !ctx.authorize(
            crate::authorizer::Operation::Alter,
            crate::authorizer::ResourceType::Topic,
            &name,
        ) {
            Err(KafkaError::new(ResponseError::TopicAuthorizationFailed))
        } else if too_many {
            Err(KafkaError::with_message(
                ResponseError::PolicyViolation,
                "Unable to perform excessively large batch operation.",
            ))
        } else {
            let image = ctx.state.controller.image();
            match plan(&image, &topic) {
                Ok(_) if req.validate_only => Ok(()),
                Ok(partitions) => {
                    // `commit` reconciles, so the new logs exist when we answer.
                    commit(
                        ctx.state.admin(),
                        MetadataCommand::CreatePartitions {
                            topic: name.to_string(),
                            partitions,
                        },
                    )
                    .await
                }
                Err(e) => Err(e),
            }
        };
        let mut r = CreatePartitionsTopicResult::default().with_name(name);
        if let Err(e) = outcome {
            ctx.note_error(e.code);
            r.error_code = e.code;
            r.error_message = e.message.as_deref().map(s);
        }
        results.push(r);
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// The partitions to add, checked as Kafka checks them.
fn plan(
    image: &MetadataImage,
    req: &CreatePartitionsTopic,
) -> Result<Vec<PartitionMeta>, KafkaError> {
    let name = req.name.to_string();
    let topic = image.topic(&name).ok_or_else(|| {
        KafkaError::with_message(
            ResponseError::UnknownTopicOrPartition,
            format!("The topic '{name}' does not exist."),
        )
    })?;
    let current = topic.partitions.len() as i32;
    if req.count == current {
        return Err(KafkaError::with_message(
            ResponseError::InvalidPartitions,
            format!("Topic already has {current} partition(s)."),
        ));
    }
    if req.count < current {
        return Err(KafkaError::with_message(
            ResponseError::InvalidPartitions,
            format!(
                "The topic {name} currently has {current} partition(s); {} would not be an increase.",
                req.count
            ),
        ));
    }
    let additional = req.count - current;
    let rf = topic.partitions.first().map_or(1, |p| p.replicas.len());
    match &req.assignments {
        None => topics::assign(image, current, additional, rf as i16),
        Some(assignments) => {
            if assignments.len() as i32 != additional {
                return Err(KafkaError::with_message(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                        assignments.len()
                    ),
                ));
            }
            let lists: Vec<Vec<i32>> = assignments
                .iter()
                .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                .collect();
            if let Some(l) = lists.iter().find(|l| l.len() != rf) {
                return Err(KafkaError::with_message(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "The manual partition assignment includes a partition with {} replica(s), \
                         but this is not consistent with previous partitions, which have {rf} replica(s).",
                        l.len()
                    ),
                ));
            }
            topics::from_assignment(image, current, &lists)
        }
    }
}

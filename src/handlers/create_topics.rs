//! CreateTopics (key 19), v2–v7 (the crate's range; Kafka 4 removed v0–v1).
//!
//! Per topic: Kafka's name rules (INVALID_TOPIC_EXCEPTION, including a name that differs
//! from an existing one only by '.' versus '_'), TOPIC_ALREADY_EXISTS, partition count
//! and replication factor (-1 = the broker's `num.partitions` /
//! `default.replication.factor`), or a manual assignment (partitions numbered 0..n with
//! the same number of replicas each), and configs validated with the reason in the
//! error message (INVALID_CONFIG). A name given more than once gets one INVALID_REQUEST
//! ("Duplicate topic name.") and is not created. A request that would create more than
//! 10 000 partitions in all fails with POLICY_VIOLATION for every topic, as Kafka's
//! controller does. `validate_only` runs every check and
//! commits nothing. v5+ answers with the partition count, replication factor and every
//! resulting topic setting with its source; v7 with the new topic id.

use std::collections::{BTreeMap, HashMap, HashSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
use kafka_protocol::protocol::VersionRange;
use uuid::Uuid;

use super::util::s;
use super::Ctx;
use crate::admin::describe::describe_topic;
use crate::admin::topics::{self, MAX_PARTITIONS_PER_REQUEST};
use crate::cluster::MetadataImage;
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 2, max: 7 };

pub async fn handle(ctx: &Ctx, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for t in &req.topics {
        *counts.entry(t.name.to_string()).or_insert(0) += 1;
    }
    // Kafka's controller refuses a request that would create more than 10 000
    // partitions in one go: every topic in it fails with POLICY_VIOLATION.
    let num_partitions = crate::admin::broker_configs::effective(
        &ctx.state.config,
        &ctx.state.controller.image(),
        ctx.state.node_id,
    )
    .num_partitions;
    let total: i64 = req
        .topics
        .iter()
        .filter(|t| counts[&t.name.to_string()] == 1)
        .map(|t| match (t.assignments.len(), t.num_partitions) {
            (0, -1) => i64::from(num_partitions),
            (0, n) => i64::from(n.max(0)),
            (n, _) => n as i64,
        })
        .sum();
    let too_many = total > MAX_PARTITIONS_PER_REQUEST;
    let mut reported = HashSet::new();
    let mut results = Vec::new();
    // CREATE on the cluster, or on each topic (TOPIC_AUTHORIZATION_FAILED otherwise).
    use crate::authorizer::{Operation, ResourceType};
    let cluster_create = ctx.allowed(
        Operation::Create,
        ResourceType::Cluster,
        crate::authorizer::CLUSTER_NAME,
    );
    for topic in req.topics {
        let name = topic.name.to_string();
        let result = if counts[&name] > 1 {
            if !reported.insert(name.clone()) {
                continue;
            }
            Err(KafkaError::with_message(
                ResponseError::InvalidRequest,
                "Duplicate topic name.",
            ))
        } else if !cluster_create && !ctx.authorize(Operation::Create, ResourceType::Topic, &name) {
            Err(KafkaError::new(ResponseError::TopicAuthorizationFailed))
        } else if too_many {
            Err(KafkaError::with_message(
                ResponseError::PolicyViolation,
                "Excessively large number of partitions per request.",
            ))
        } else {
            create_one(ctx, topic, req.validate_only).await
        };
        results.push(match result {
            Ok(r) => r,
            Err(e) => {
                ctx.note_error(e.code);
                // The schema defaults: -1 counts, empty configs, nil id.
                CreatableTopicResult::default()
                    .with_name(TopicName(s(&name)))
                    .with_error_code(e.code)
                    .with_error_message(e.message.as_deref().map(s))
            }
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn create_one(
    ctx: &Ctx,
    topic: CreatableTopic,
    validate_only: bool,
) -> Result<CreatableTopicResult, KafkaError> {
    let state = &ctx.state;
    let image = state.controller.image();
    let name = topic.name.to_string();
    topics::validate_name(&name)?;
    check_collision(&image, &name)?;
    let mut configs = BTreeMap::new();
    for c in &topic.configs {
        let value = c.value.as_ref().ok_or_else(|| {
            KafkaError::with_message(
                ResponseError::InvalidConfig,
                format!("Null value not supported for topic configs: {}", c.name),
            )
        })?;
        configs.insert(c.name.to_string(), value.to_string());
    }
    let assignment = if topic.assignments.is_empty() {
        if topic.num_partitions == 0 || topic.num_partitions < -1 {
            return Err(KafkaError::with_message(
                ResponseError::InvalidPartitions,
                "Number of partitions was set to an invalid non-positive value.",
            ));
        }
        if topic.replication_factor == 0 || topic.replication_factor < -1 {
            return Err(KafkaError::with_message(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0, or -1 to use the default value.",
            ));
        }
        Vec::new()
    } else {
        manual_assignment(&topic)?
    };
    let plan = topics::plan(
        state.admin(),
        &image,
        &name,
        topic.num_partitions,
        topic.replication_factor,
        &assignment,
        configs,
    )?;
    let num_partitions = plan.partitions.len() as i32;
    let replication_factor = plan
        .partitions
        .first()
        .map_or(-1, |p| p.replicas.len() as i16);
    let effective = crate::admin::broker_configs::effective(
        &state.config,
        &state.controller.image(),
        state.node_id,
    );
    let described: Vec<CreatableTopicConfigs> = describe_topic(&effective, &plan.configs, None)
        .into_iter()
        .map(|d| {
            CreatableTopicConfigs::default()
                .with_name(s(d.name))
                .with_value(d.value.as_deref().map(s))
                .with_read_only(d.read_only)
                .with_config_source(d.source.code())
                .with_is_sensitive(d.sensitive)
        })
        .collect();
    let topic_id = if validate_only {
        Uuid::nil()
    } else {
        topics::create(state.admin(), plan).await?.id
    };
    let result = CreatableTopicResult::default()
        .with_name(TopicName(s(&name)))
        .with_topic_id(topic_id)
        .with_num_partitions(num_partitions)
        .with_replication_factor(replication_factor);
    // The settings are told only to a principal that may DESCRIBE_CONFIGS the topic.
    if ctx.allowed(
        crate::authorizer::Operation::DescribeConfigs,
        crate::authorizer::ResourceType::Topic,
        &name,
    ) {
        Ok(result.with_configs(Some(described)))
    } else {
        Ok(result
            .with_configs(None)
            .with_topic_config_error_code(ResponseError::TopicAuthorizationFailed.code()))
    }
}

/// Kafka refuses a topic whose name equals an existing one once '.' and '_' are treated
/// alike: their metric names would collide.
fn check_collision(image: &MetadataImage, name: &str) -> Result<(), KafkaError> {
    if !name.contains(['.', '_']) {
        return Ok(());
    }
    let unified = name.replace('.', "_");
    match image
        .topics
        .keys()
        .find(|t| t.as_str() != name && t.replace('.', "_") == unified)
    {
        Some(other) => Err(KafkaError::with_message(
            ResponseError::InvalidTopicException,
            format!("Topic '{name}' collides with existing topic: {other}"),
        )),
        None => Ok(()),
    }
}

/// The replica lists of a manual assignment, ordered by partition, checked as Kafka does.
fn manual_assignment(topic: &CreatableTopic) -> Result<Vec<Vec<i32>>, KafkaError> {
    let bad = |msg: String| KafkaError::with_message(ResponseError::InvalidReplicaAssignment, msg);
    if topic.replication_factor != -1 {
        return Err(KafkaError::with_message(
            ResponseError::InvalidRequest,
            "A manual partition assignment was specified, but replication factor was not set to -1.",
        ));
    }
    if topic.num_partitions != -1 {
        return Err(KafkaError::with_message(
            ResponseError::InvalidRequest,
            "A manual partition assignment was specified, but numPartitions was not set to -1.",
        ));
    }
    let mut by_index: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    let mut rf = None;
    for a in &topic.assignments {
        let replicas: Vec<i32> = a.broker_ids.iter().map(|b| b.0).collect();
        match rf {
            Some(n) if n != replicas.len() => {
                return Err(bad(format!(
                    "The manual partition assignment includes a partition with {} replica(s), \
                     but this is not consistent with previous partitions, which have {n} replica(s).",
                    replicas.len()
                )))
            }
            _ => rf = Some(replicas.len()),
        }
        if by_index.insert(a.partition_index, replicas).is_some() {
            return Err(bad(format!(
                "Found multiple manual partition assignments for partition {}",
                a.partition_index
            )));
        }
    }
    if by_index.keys().copied().ne(0..by_index.len() as i32) {
        return Err(bad(
            "partitions should be a consecutive 0-based integer sequence".into(),
        ));
    }
    Ok(by_index.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment;
    use kafka_protocol::messages::BrokerId;

    fn topic(assign: &[(i32, &[i32])]) -> CreatableTopic {
        CreatableTopic::default()
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(
                assign
                    .iter()
                    .map(|(p, b)| {
                        CreatableReplicaAssignment::default()
                            .with_partition_index(*p)
                            .with_broker_ids(b.iter().map(|b| BrokerId(*b)).collect())
                    })
                    .collect(),
            )
    }

    #[test]
    fn manual_assignments_are_ordered_and_checked() {
        assert_eq!(
            manual_assignment(&topic(&[(1, &[2, 1]), (0, &[1, 2])])).unwrap(),
            vec![vec![1, 2], vec![2, 1]]
        );
        let code = |t| manual_assignment(&t).unwrap_err().code;
        let invalid = ResponseError::InvalidReplicaAssignment.code();
        assert_eq!(code(topic(&[(0, &[1]), (2, &[1])])), invalid);
        assert_eq!(code(topic(&[(0, &[1]), (0, &[1])])), invalid);
        assert_eq!(code(topic(&[(0, &[1]), (1, &[1, 2])])), invalid);
        assert_eq!(
            code(topic(&[(0, &[1])]).with_num_partitions(1)),
            ResponseError::InvalidRequest.code()
        );
    }

    #[test]
    fn dot_and_underscore_collide() {
        let mut image = MetadataImage::default();
        for n in ["a_b", "c.d"] {
            image.topics.insert(
                n.into(),
                crate::cluster::TopicMeta {
                    name: n.into(),
                    id: Uuid::new_v4(),
                    partitions: vec![],
                    configs: BTreeMap::new(),
                    internal: false,
                },
            );
        }
        assert!(check_collision(&image, "a.b").is_err());
        assert!(check_collision(&image, "c_d").is_err());
        // The same name is TOPIC_ALREADY_EXISTS, decided later.
        assert!(check_collision(&image, "a_b").is_ok());
        assert!(check_collision(&image, "ab").is_ok());
    }
}

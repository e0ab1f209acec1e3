//! Topic administration shared by CreateTopics, Metadata auto-creation, CreatePartitions
//! and DeleteTopics: name rules, replica assignment and the metadata commands.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use crate::broker::BrokerState;
use crate::cluster::{CommandResult, MetadataCommand, MetadataImage, PartitionMeta, TopicMeta};
use crate::config::check_topic_value;
use crate::errors::KafkaError;

/// Kafka's limit: a partition directory name must fit in 255 bytes.
pub const MAX_NAME_LEN: usize = 249;

/// Kafka's topic name rules.
pub fn validate_name(name: &str) -> Result<(), KafkaError> {
    let bad = |why: &str| {
        Err(KafkaError::with_message(
            ResponseError::InvalidTopicException,
            format!("topic name {name:?} is illegal: {why}"),
        ))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name == "." || name == ".." {
        return bad("it cannot be '.' or '..'");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is longer than 249 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return bad("it contains characters other than ASCII alphanumerics, '.', '_' and '-'");
    }
    Ok(())
}

/// Replicas for `count` new partitions starting at `first`, spread round-robin over the
/// registered brokers (rack awareness arrives with cluster mode).
pub fn assign(
    image: &MetadataImage,
    first: i32,
    count: i32,
    rf: i16,
) -> Result<Vec<PartitionMeta>, KafkaError> {
    let brokers: Vec<i32> = image.brokers.keys().copied().collect();
    if rf < 1 || rf as usize > brokers.len() {
        return Err(KafkaError::with_message(
            ResponseError::InvalidReplicationFactor,
            format!(
                "replication factor {rf} is larger than the {} available brokers",
                brokers.len()
            ),
        ));
    }
    Ok((first..first + count)
        .map(|p| {
            let replicas: Vec<i32> = (0..rf as usize)
                .map(|r| brokers[(p as usize + r) % brokers.len()])
                .collect();
            PartitionMeta {
                partition: p,
                leader: replicas[0],
                leader_epoch: 0,
                replicas: replicas.clone(),
                isr: replicas,
            }
        })
        .collect())
}

/// Partitions from an explicit assignment (CreateTopics / CreatePartitions).
pub fn from_assignment(
    image: &MetadataImage,
    first: i32,
    assignment: &[Vec<i32>],
) -> Result<Vec<PartitionMeta>, KafkaError> {
    let mut out = Vec::new();
    for (i, replicas) in assignment.iter().enumerate() {
        if replicas.is_empty() {
            return Err(KafkaError::with_message(
                ResponseError::InvalidReplicaAssignment,
                "empty replica list",
            ));
        }
        let mut seen = replicas.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != replicas.len() {
            return Err(KafkaError::with_message(
                ResponseError::InvalidReplicaAssignment,
                "duplicate broker in replica list",
            ));
        }
        if let Some(b) = replicas.iter().find(|b| !image.brokers.contains_key(b)) {
            return Err(KafkaError::with_message(
                ResponseError::InvalidReplicaAssignment,
                format!("unknown broker {b}"),
            ));
        }
        out.push(PartitionMeta {
            partition: first + i as i32,
            leader: replicas[0],
            leader_epoch: 0,
            replicas: replicas.clone(),
            isr: replicas.clone(),
        });
    }
    Ok(out)
}

/// Validate topic config overrides.
pub fn validate_configs(configs: &BTreeMap<String, String>) -> Result<(), KafkaError> {
    for (k, v) in configs {
        check_topic_value(k, v).map_err(|e| KafkaError::from(&e))?;
    }
    Ok(())
}

/// Everything needed to create one topic.
pub struct NewTopic {
    pub name: String,
    pub partitions: Vec<PartitionMeta>,
    pub configs: BTreeMap<String, String>,
}

/// Build (and validate) a topic from a request's numbers; -1 means the broker default.
pub fn plan(
    state: &BrokerState,
    image: &MetadataImage,
    name: &str,
    num_partitions: i32,
    replication_factor: i16,
    assignment: &[Vec<i32>],
    configs: BTreeMap<String, String>,
) -> Result<NewTopic, KafkaError> {
    validate_name(name)?;
    if image.topics.contains_key(name) {
        return Err(KafkaError::with_message(
            ResponseError::TopicAlreadyExists,
            format!("topic '{name}' already exists"),
        ));
    }
    validate_configs(&configs)?;
    let partitions = if !assignment.is_empty() {
        if num_partitions != -1 || replication_factor != -1 {
            return Err(KafkaError::with_message(
                ResponseError::InvalidRequest,
                "both an assignment and numPartitions/replicationFactor were given",
            ));
        }
        from_assignment(image, 0, assignment)?
    } else {
        let n = if num_partitions == -1 {
            state.config.num_partitions
        } else {
            num_partitions
        };
        if n < 1 {
            return Err(KafkaError::with_message(
                ResponseError::InvalidPartitions,
                "number of partitions must be at least 1",
            ));
        }
        let rf = if replication_factor == -1 {
            state.config.default_replication_factor
        } else {
            replication_factor
        };
        assign(image, 0, n, rf)?
    };
    Ok(NewTopic {
        name: name.to_string(),
        partitions,
        configs,
    })
}

/// Commit a planned topic; returns its metadata once applied.
pub async fn create(state: &BrokerState, topic: NewTopic) -> Result<TopicMeta, KafkaError> {
    let id = Uuid::new_v4();
    let cmd = MetadataCommand::CreateTopic {
        name: topic.name.clone(),
        id,
        partitions: topic.partitions,
        configs: topic.configs,
        internal: topic.name.starts_with("__"),
    };
    match state
        .controller
        .propose(cmd)
        .await
        .map_err(|e| KafkaError::from(&e))?
    {
        CommandResult::Err(e) => Err(KafkaError::from(&e)),
        _ => {
            state.replicas.reconcile_latest().await;
            let image = state.controller.image();
            image.topic(&topic.name).cloned().ok_or_else(|| {
                KafkaError::with_message(
                    ResponseError::UnknownServerError,
                    "created topic is missing from metadata",
                )
            })
        }
    }
}

/// Auto-create a topic with the broker defaults (Metadata requests). A concurrent
/// creation of the same topic counts as success.
pub async fn auto_create(state: &BrokerState, name: &str) -> Result<TopicMeta, KafkaError> {
    let image = state.controller.image();
    if let Some(t) = image.topic(name) {
        return Ok(t.clone());
    }
    let plan = plan(state, &image, name, -1, -1, &[], BTreeMap::new())?;
    match create(state, plan).await {
        Err(e) if e.code == ResponseError::TopicAlreadyExists.code() => {
            state.controller.image().topic(name).cloned().ok_or(e)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "ä", "a/b", &"x".repeat(250)] {
            let e = validate_name(bad).unwrap_err();
            assert_eq!(
                e.code,
                ResponseError::InvalidTopicException.code(),
                "{bad:?}"
            );
        }
    }
}

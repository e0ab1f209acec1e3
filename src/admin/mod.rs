//! Administration: the changes operators make to topics, partitions and settings, and
//! their validation, in one place for every caller (the admin handlers, the group
//! coordinator creating `__consumer_offsets`, auto-created topics). Handlers map the wire
//! to these calls and back; what is valid and what gets proposed to the metadata quorum
//! is decided here.
//!
//! - [`topics`]: topic names, replica placement, creation.
//! - [`config_ops`]: topic, broker, client-metrics and log-level config changes.
//! - [`describe`]: how settings are described (values, sources, synonyms).
//! - [`broker_configs`]: the layers of dynamic broker configs.
//! - [`scram`]: SCRAM credentials of users.
//! - [`acls`]: ACL bindings and filters.

pub mod acls;
pub mod broker_configs;
pub mod config_ops;
pub mod describe;
pub mod scram;
pub mod topics;

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use crate::cluster::{CommandResult, Controller, MetadataCommand, MetadataImage};
use crate::config::Config;
use crate::errors::KafkaError;
use crate::replica::ReplicaManager;

/// What administration needs of the broker: its settings, the metadata quorum to propose
/// to, and the replica manager that makes an applied change live on this broker. The
/// group coordinator builds one from its own parts, without the whole broker state.
#[derive(Clone, Copy)]
pub struct Admin<'a> {
    pub config: &'a Config,
    pub node_id: i32,
    pub controller: &'a Controller,
    pub replicas: &'a Arc<ReplicaManager>,
}

/// Kafka's ConfigResource.Type codes.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
pub const RESOURCE_CLIENT_METRICS: i8 = 16;

/// Commit a metadata command and make the result live on this broker's logs.
pub async fn commit(admin: Admin<'_>, cmd: MetadataCommand) -> Result<(), KafkaError> {
    match admin.controller.propose(cmd).await {
        Err(e) => Err(KafkaError::from(&e)),
        Ok(CommandResult::Err(e)) => Err(KafkaError::from(&e)),
        Ok(_) => {
            reconcile(admin).await;
            Ok(())
        }
    }
}

/// Bring the local logs in line with the latest metadata image before answering.
pub async fn reconcile(admin: Admin<'_>) {
    admin.replicas.reconcile_latest().await;
}

/// The refusal for resources this API cannot change.
pub fn unsupported_resource(resource_type: i8) -> KafkaError {
    match resource_type {
        RESOURCE_BROKER_LOGGER => KafkaError::with_message(
            ResponseError::InvalidRequest,
            "Log levels (BROKER_LOGGER) change through IncrementalAlterConfigs only",
        ),
        other => KafkaError::with_message(
            ResponseError::InvalidRequest,
            format!("Unsupported resource type: {other}"),
        ),
    }
}

/// Count (type, name) pairs so resources named more than once can be refused.
pub fn count_resources<'a>(
    it: impl Iterator<Item = (i8, &'a str)>,
) -> HashMap<(i8, String), usize> {
    let mut counts = HashMap::new();
    for (t, n) in it {
        *counts.entry((t, n.to_string())).or_insert(0) += 1;
    }
    counts
}

/// The checks Kafka applies to a topic resource name before using it: not empty (the
/// default topic resource does not exist in KRaft), a legal name, an existing topic.
pub fn check_topic_resource(image: &MetadataImage, name: &str) -> Result<(), KafkaError> {
    if name.is_empty() {
        return Err(KafkaError::with_message(
            ResponseError::InvalidRequest,
            "Default topic resources are not allowed.",
        ));
    }
    topics::validate_name(name)?;
    if image.topic(name).is_none() {
        return Err(KafkaError::with_message(
            ResponseError::UnknownTopicOrPartition,
            format!("The topic '{name}' does not exist."),
        ));
    }
    Ok(())
}

/// Check that a broker resource name is this broker's id (Kafka's messages).
pub fn check_broker_id(node_id: i32, name: &str) -> Result<(), KafkaError> {
    let id: i32 = name.parse().map_err(|_| {
        KafkaError::with_message(
            ResponseError::InvalidRequest,
            format!("Broker id must be an integer, but it is: {name}"),
        )
    })?;
    if id != node_id {
        return Err(KafkaError::with_message(
            ResponseError::InvalidRequest,
            format!(
                "Unexpected broker id, expected {node_id} or empty string, but received {name}"
            ),
        ));
    }
    Ok(())
}

//! Metadata (key 3), v0–v13: brokers, controller, cluster id and topic/partition
//! leadership, auto-creating requested topics when the broker allows it.
//!
//! With an authorizer, as Kafka: the list of every topic holds only those the principal
//! may DESCRIBE; a requested topic it may not describe is TOPIC_AUTHORIZATION_FAILED
//! (whether it exists or not), and auto-creation needs CREATE on the cluster or topic.
//!
//! A partition this broker leads but has no log for (its creation failed, or it was
//! found on disk and cannot be opened) is answered LEADER_NOT_AVAILABLE with no leader
//! and this broker among the offline replicas (`topics::partition_view`): clients then
//! wait and retry instead of sending produce requests that can only fail.

use std::collections::HashSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::VersionRange;
use uuid::Uuid;

use super::util::s;
use super::Ctx;
use crate::admin::topics;
use crate::authorizer::{Operation, ResourceType, CLUSTER_NAME, NOT_REQUESTED};
use crate::cluster::{MetadataImage, TopicMeta};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 13 };

pub async fn handle(ctx: &Ctx, req: MetadataRequest) -> MetadataResponse {
    let state = &ctx.state;
    // v0 has no null topic list: an empty list means all topics. v4+ lets the client
    // turn auto-creation off.
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && ctx.version == 0,
    };
    let allow_auto =
        state.config.auto_create_topics && (ctx.version < 4 || req.allow_auto_topic_creation);
    let mut topics = Vec::new();
    let local = Local {
        node_id: state.node_id,
        unavailable: state.logs.unavailable(),
        topic_ops: ctx.version >= 8 && req.include_topic_authorized_operations,
    };
    let ops = |name: &str| ctx.authorized_operations(ResourceType::Topic, name, local.topic_ops);
    let denied = |name: &str| {
        error_topic(
            Some(name),
            Uuid::nil(),
            ResponseError::TopicAuthorizationFailed.code(),
        )
    };
    if all {
        let image = state.controller.image();
        for t in image.topics.values() {
            if ctx.allowed(Operation::Describe, ResourceType::Topic, &t.name) {
                topics.push(topic_response(&image, t, &local, ops(&t.name)));
            }
        }
    } else {
        for rt in req.topics.unwrap_or_default() {
            let image = state.controller.image();
            // v10+ may ask by id (name null).
            let name = match (&rt.name, rt.topic_id) {
                (Some(n), _) => n.to_string(),
                (None, id) if id != Uuid::nil() => match image.topic_by_id(&id) {
                    Some(t) => t.name.clone(),
                    None => {
                        topics.push(error_topic(None, id, ResponseError::UnknownTopicId.code()));
                        continue;
                    }
                },
                _ => {
                    topics.push(error_topic(
                        None,
                        Uuid::nil(),
                        ResponseError::InvalidRequest.code(),
                    ));
                    continue;
                }
            };
            if !ctx.authorize(Operation::Describe, ResourceType::Topic, &name) {
                topics.push(denied(&name));
                continue;
            }
            if let Some(t) = image.topic(&name) {
                topics.push(topic_response(&image, t, &local, ops(&name)));
                continue;
            }
            if let Err(e) = topics::validate_name(&name) {
                topics.push(error_topic(Some(&name), Uuid::nil(), e.code));
                continue;
            }
            if !allow_auto {
                topics.push(error_topic(
                    Some(&name),
                    Uuid::nil(),
                    ResponseError::UnknownTopicOrPartition.code(),
                ));
                continue;
            }
            let may_create = ctx.allowed(Operation::Create, ResourceType::Cluster, CLUSTER_NAME)
                || ctx.authorize(Operation::Create, ResourceType::Topic, &name);
            if !may_create {
                topics.push(denied(&name));
                continue;
            }
            match topics::auto_create(state.admin(), &name).await {
                Ok(t) => {
                    let image = state.controller.image();
                    // Kafka answers LEADER_NOT_AVAILABLE for a topic it just created; the
                    // client retries. Our leader is elected with the topic, so answer fully.
                    topics.push(topic_response(&image, &t, &local, ops(&name)));
                }
                Err(e) => topics.push(error_topic(Some(&name), Uuid::nil(), e.code)),
            }
        }
    }
    for t in &topics {
        ctx.note_error(t.error_code);
    }
    let image = state.controller.image();
    // The addresses of the listener this client came in on; a broker without that
    // listener is left out, as Kafka does.
    let brokers = image
        .brokers
        .values()
        .filter_map(|b| {
            let (host, port) = b.endpoint(&ctx.listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id))
                    .with_host(s(host))
                    .with_port(port as i32)
                    .with_rack(b.rack.as_deref().map(s)),
            )
        })
        .collect();
    let mut resp = MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(s(&image.cluster_id)))
        .with_controller_id(BrokerId(image.controller_id))
        .with_topics(topics);
    if (8..=10).contains(&ctx.version) {
        resp.cluster_authorized_operations = ctx.authorized_operations(
            ResourceType::Cluster,
            CLUSTER_NAME,
            req.include_cluster_authorized_operations,
        );
    }
    resp
}

fn error_topic(name: Option<&str>, id: Uuid, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code)
        .with_name(name.map(|n| TopicName(s(n))))
        .with_topic_id(id)
        .with_topic_authorized_operations(NOT_REQUESTED)
}

/// This broker, and the partitions it should host but has no log for.
struct Local {
    node_id: i32,
    unavailable: HashSet<(String, i32)>,
    /// Whether the request asked for the topics' authorized operations.
    topic_ops: bool,
}

fn topic_response(
    image: &MetadataImage,
    t: &TopicMeta,
    local: &Local,
    topic_ops: i32,
) -> MetadataResponseTopic {
    let partitions = t
        .partitions
        .iter()
        .map(|p| {
            let view = topics::partition_view(image, p, &t.name, local.node_id, &local.unavailable);
            MetadataResponsePartition::default()
                .with_error_code(view.error_code)
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(view.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().map(|r| BrokerId(*r)).collect())
                .with_isr_nodes(p.isr.iter().map(|r| BrokerId(*r)).collect())
                .with_offline_replicas(view.offline.into_iter().map(BrokerId).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(s(&t.name))))
        .with_topic_id(t.id)
        .with_is_internal(t.internal)
        .with_partitions(partitions)
        .with_topic_authorized_operations(topic_ops)
}

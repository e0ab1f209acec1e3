//! ConsumerGroupHeartbeat (key 68), v0–v1: the `consumer` group protocol (KIP-848).
//! Members send their subscription and owned partitions; the coordinator computes the
//! assignment with a server-side assignor (`uniform`, `range`) and moves each member
//! towards its target, never giving a partition another member still owns. v1
//! (KIP-1082) has the client choose its member id.

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::{client_host, code, s};
use super::Ctx;
use crate::group::ConsumerHeartbeatRequest;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub async fn handle(
    ctx: &Ctx,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let group_id = req.group_id.to_string();
    // READ on the group, DESCRIBE on every topic subscribed to by name.
    use crate::authorizer::{Operation, ResourceType};
    let refused = if !ctx.authorize(Operation::Read, ResourceType::Group, &group_id) {
        Some((
            kafka_protocol::error::ResponseError::GroupAuthorizationFailed,
            String::new(),
        ))
    } else {
        let hidden: Vec<String> = req
            .subscribed_topic_names
            .iter()
            .flatten()
            .filter(|t| !ctx.authorize(Operation::Describe, ResourceType::Topic, t))
            .map(|t| t.to_string())
            .collect();
        (!hidden.is_empty()).then(|| {
            (
                kafka_protocol::error::ResponseError::TopicAuthorizationFailed,
                format!(
                    "The following topics are unauthorized: {}",
                    hidden.join(", ")
                ),
            )
        })
    };
    if let Some((error, message)) = refused {
        ctx.note_error(error.code());
        return ConsumerGroupHeartbeatResponse::default()
            .with_error_code(error.code())
            .with_error_message((!message.is_empty()).then(|| s(&message)))
            .with_member_epoch(-1);
    }
    let topics = ctx.state.groups.topics();
    let hb = ConsumerHeartbeatRequest {
        api_version: ctx.version,
        group_id: group_id.clone(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: req.rack_id.as_ref().map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .as_ref()
            .map(|ts| ts.iter().map(|t| t.to_string()).collect()),
        subscribed_topic_regex: req.subscribed_topic_regex.as_ref().map(|s| s.to_string()),
        server_assignor: req.server_assignor.as_ref().map(|s| s.to_string()),
        topic_partitions: req.topic_partitions.as_ref().map(|tps| {
            tps.iter()
                .map(|tp| (tp.topic_id, tp.partitions.clone()))
                .collect()
        }),
        client_id: ctx.client_id.clone(),
        client_host: client_host(&ctx.peer),
        now_ms: 0,
    };
    let result = ctx
        .state
        .groups
        .run(&group_id, |c, now| {
            c.consumer_heartbeat(&ConsumerHeartbeatRequest { now_ms: now, ..hb }, &topics)
        })
        .await;
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            ctx.note_error(e.code());
            return ConsumerGroupHeartbeatResponse::default()
                .with_error_code(e.code())
                .with_member_id(None);
        }
    };
    let error = code(r.error);
    ctx.note_error(error);
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(error)
        .with_error_message(r.error_message.as_deref().map(s))
        .with_member_id(r.member_id.as_deref().map(s))
        .with_member_epoch(r.member_epoch)
        .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
        .with_assignment(r.assignment.map(|a| {
            Assignment::default().with_topic_partitions(
                a.into_iter()
                    .map(|(id, ps)| {
                        TopicPartitions::default()
                            .with_topic_id(id)
                            .with_partitions(ps)
                    })
                    .collect(),
            )
        }))
}

//! AlterPartitionReassignments (key 45), v0–v1: move partitions to other brokers
//! (KIP-455), as `kafka-reassign-partitions.sh` and `alterPartitionReassignments()` ask.
//!
//! A partition with target replicas starts (or replaces) a reassignment; null replicas
//! cancel the ongoing one (NO_REASSIGNMENT_IN_PROGRESS if none). The move itself is the
//! metadata state machine's (`ReassignPartition`, see `cluster::state`): the target
//! replicas are added, catch up as followers and join the ISR, and the controller then
//! drops the replicas that are not in the target (their logs are deleted when their
//! brokers reconcile). The answer comes once the reassignment has *started*, as in Kafka;
//! ListPartitionReassignments shows it until it completes. Unknown topics or partitions
//! get UNKNOWN_TOPIC_OR_PARTITION; empty, duplicate or unknown brokers
//! INVALID_REPLICA_ASSIGNMENT; at v1 with `allow_replication_factor_change` false
//! (KIP-860), a target of another size INVALID_REPLICATION_FACTOR.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::admin::commit;
use crate::cluster::MetadataCommand;
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub async fn handle(
    ctx: &Ctx,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    if !ctx.authorize_cluster(crate::authorizer::Operation::Alter) {
        let code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        ctx.note_error(code);
        return AlterPartitionReassignmentsResponse::default().with_error_code(code);
    }
    // v0 has no such field: the replication factor may always change there.
    let allow_rf_change = ctx.version == 0 || req.allow_replication_factor_change;
    let mut responses = Vec::new();
    for topic in req.topics {
        let name = topic.name.to_string();
        let mut partitions = Vec::new();
        for p in topic.partitions {
            let target: Option<Vec<i32>> = p.replicas.map(|r| r.into_iter().map(|b| b.0).collect());
            let image = ctx.state.controller.image();
            let outcome = match image.partition(&name, p.partition_index) {
                None => Err(KafkaError::with_message(
                    ResponseError::UnknownTopicOrPartition,
                    format!(
                        "Unable to find partition {name}-{} to reassign.",
                        p.partition_index
                    ),
                )),
                Some(current) => {
                    let original = current.replicas.len() - current.adding_replicas.len();
                    match &target {
                        Some(t) if !allow_rf_change && t.len() != original => {
                            Err(KafkaError::with_message(
                                ResponseError::InvalidReplicationFactor,
                                format!(
                                    "The replication factor is changed from {original} to {} \
                                     but allowReplicationFactorChange is false.",
                                    t.len()
                                ),
                            ))
                        }
                        _ => {
                            commit(
                                ctx.state.admin(),
                                MetadataCommand::ReassignPartition {
                                    topic: name.clone(),
                                    partition: p.partition_index,
                                    target,
                                },
                            )
                            .await
                        }
                    }
                }
            };
            // Kafka sends null messages on success (the crate's default is "").
            let mut r = ReassignablePartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_error_message(None);
            if let Err(e) = outcome {
                ctx.note_error(e.code);
                r.error_code = e.code;
                r.error_message = e.message.as_deref().map(s);
            }
            partitions.push(r);
        }
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    AlterPartitionReassignmentsResponse::default()
        .with_error_message(None)
        .with_allow_replication_factor_change(allow_rf_change)
        .with_responses(responses)
}

//! ElectLeaders (key 43), v0–v2: move partition leadership by election, as Kafka's
//! `kafka-leader-election.sh` and the admin client's `electLeaders()` ask.
//!
//! PREFERRED (0, the only type at v0) gives leadership back to the first replica when it
//! is live and in the ISR: ELECTION_NOT_NEEDED if it already leads,
//! PREFERRED_LEADER_NOT_AVAILABLE otherwise. UNCLEAN (1) elects a leader for a partition
//! that has none: a live ISR member if there is one, else the first live replica (data
//! the old ISR had may be lost, which is why it is asked for explicitly);
//! ELECTION_NOT_NEEDED when the partition has a leader, ELIGIBLE_LEADERS_NOT_AVAILABLE
//! when no replica is live. A null topic list means every partition, and then, as in
//! Kafka, partitions that needed no election are left out of the answer. Each election is
//! one `ElectLeader` metadata command (the state machine decides, with an epoch bump).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::admin::reconcile;
use crate::cluster::{CommandResult, MetadataCommand, MetadataError};
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub async fn handle(ctx: &Ctx, req: ElectLeadersRequest) -> ElectLeadersResponse {
    if !ctx.authorize_cluster(crate::authorizer::Operation::Alter) {
        let code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        ctx.note_error(code);
        return ElectLeadersResponse::default().with_error_code(code);
    }
    let election_type = if ctx.version == 0 {
        PREFERRED
    } else {
        req.election_type
    };
    if election_type != PREFERRED && election_type != UNCLEAN {
        let code = ResponseError::InvalidRequest.code();
        ctx.note_error(code);
        return ElectLeadersResponse::default().with_error_code(code);
    }
    let unclean = election_type == UNCLEAN;
    let image = ctx.state.controller.image();
    let all = req.topic_partitions.is_none();
    let wanted: Vec<(String, Vec<i32>)> = match req.topic_partitions {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.topic.to_string(), t.partitions))
            .collect(),
        None => image
            .topics
            .values()
            .map(|t| {
                let parts = t
                    .partitions
                    .iter()
                    // Skip the obvious no-ops before asking the controller.
                    .filter(|p| {
                        if unclean {
                            p.leader < 0
                        } else {
                            p.replicas.first() != Some(&p.leader)
                        }
                    })
                    .map(|p| p.partition)
                    .collect();
                (t.name.clone(), parts)
            })
            .collect(),
    };
    let mut changed = false;
    let mut results = Vec::new();
    for (topic, partitions) in wanted {
        let mut out = Vec::new();
        for partition in partitions {
            let outcome = if image.partition(&topic, partition).is_none() {
                Err(KafkaError::with_message(
                    ResponseError::UnknownTopicOrPartition,
                    format!("The partition {topic}-{partition} does not exist."),
                ))
            } else {
                let cmd = MetadataCommand::ElectLeader {
                    topic: topic.clone(),
                    partition,
                    unclean,
                };
                match ctx.state.controller.propose(cmd).await {
                    Ok(CommandResult::Err(e)) => Err(KafkaError::from(&e)),
                    Ok(_) => {
                        changed = true;
                        Ok(())
                    }
                    Err(e) => Err(KafkaError::from(&e)),
                }
            };
            // Kafka sends a null message on success (the crate's default is "").
            let mut r = PartitionResult::default()
                .with_partition_id(partition)
                .with_error_message(None);
            if let Err(e) = outcome {
                if all && e.code == KafkaError::from(&MetadataError::ElectionNotNeeded).code {
                    continue;
                }
                ctx.note_error(e.code);
                r.error_code = e.code;
                r.error_message = e.message.as_deref().map(s);
            }
            out.push(r);
        }
        if !(all && out.is_empty()) {
            results.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(s(&topic)))
                    .with_partition_result(out),
            );
        }
    }
    if changed {
        // Local roles follow the new leaders before the client looks at Metadata.
        reconcile(ctx.state.admin()).await;
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}

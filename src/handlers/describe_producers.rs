//! DescribeProducers (key 61), v0: the active idempotent producers of partitions this
//! broker leads, as its partition logs track them (producer id, epoch, last sequence
//! and timestamp, coordinator epoch, open-transaction start offset or -1).
//!
//! A partition that is unknown gets UNKNOWN_TOPIC_OR_PARTITION, one led elsewhere
//! NOT_LEADER_OR_FOLLOWER. Transactions are not supported yet, so no producer has an
//! open transaction and the coordinator epoch is the log's (-1 until then).

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(ctx: &Ctx, req: DescribeProducersRequest) -> DescribeProducersResponse {
    let image = ctx.state.controller.image();
    let mut topics = Vec::new();
    for t in req.topics {
        let name = t.name.to_string();
        // READ on the topic, as Kafka asks.
        let allowed = ctx.authorize(
            crate::authorizer::Operation::Read,
            crate::authorizer::ResourceType::Topic,
            &name,
        );
        let partitions = t
            .partition_indexes
            .iter()
            .map(|&p| {
                let r = PartitionResponse::default().with_partition_index(p);
                let leader = if allowed {
                    ctx.state.replicas.leader(&image, &name, p)
                } else {
                    Err(crate::errors::KafkaError::new(
                        kafka_protocol::error::ResponseError::TopicAuthorizationFailed,
                    ))
                };
                match leader {
                    Ok(part) => r.with_active_producers(
                        part.producers()
                            .into_iter()
                            .map(|info| {
                                ProducerState::default()
                                    .with_producer_id(ProducerId(info.producer_id))
                                    .with_producer_epoch(info.epoch as i32)
                                    .with_last_sequence(info.last_sequence)
                                    .with_last_timestamp(info.last_timestamp)
                                    .with_coordinator_epoch(info.coordinator_epoch)
                                    .with_current_txn_start_offset(
                                        info.current_txn_start_offset.unwrap_or(-1),
                                    )
                            })
                            .collect(),
                    ),
                    Err(e) => {
                        ctx.note_error(e.code);
                        r.with_error_code(e.code)
                            .with_error_message(e.message.as_deref().map(s))
                    }
                }
            })
            .collect();
        topics.push(
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    DescribeProducersResponse::default().with_topics(topics)
}

//! Produce (key 0), v3–v13 (v13 names topics by id). Appends happen when the request is
//! started, in arrival order; the response waits for durability (acks=all) afterwards.
//! With an authorizer, each topic needs WRITE (TOPIC_AUTHORIZATION_FAILED otherwise);
//! the decision is made once per topic of the request. A transactional producer's request
//! also needs WRITE on its transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::VersionRange;
use uuid::Uuid;

use super::util::s;
use super::{respond, Ctx, Outcome, Pending};
use crate::authorizer::{Operation, ResourceType};
use crate::errors::KafkaError;
use crate::metrics_cache;
use crate::replica::manager::{complete_all, PendingAppend};

pub const VERSIONS: VersionRange = VersionRange { min: 3, max: 13 };

/// One topic of the request: its name (None when a v13 topic id is unknown), id and
/// partition indexes in request order.
type TopicParts = (Option<String>, Uuid, Vec<i32>);

pub fn start(ctx: Ctx, req: ProduceRequest) -> Pending {
    let state = ctx.state.clone();
    let image = state.controller.image();
    let acks = req.acks;
    // A transactional producer needs WRITE on its transactional id too.
    let txn_allowed = req
        .transactional_id
        .as_deref()
        .is_none_or(|id| ctx.authorize(Operation::Write, ResourceType::TransactionalId, id));
    let mut topics: Vec<TopicParts> = Vec::new();
    // Every partition of the request in order, written (to be acknowledged) or refused.
    let mut appends: Vec<Result<PendingAppend, KafkaError>> = Vec::new();
    for td in req.topic_data {
        let name = if ctx.version >= 13 {
            image.topic_by_id(&td.topic_id).map(|t| t.name.clone())
        } else {
            Some(td.name.to_string())
        };
        let writable = name
            .as_deref()
            .is_none_or(|n| ctx.authorize(Operation::Write, ResourceType::Topic, n));
        let mut parts = Vec::new();
        for pd in td.partition_data {
            let slot = if !matches!(acks, -1..=1) {
                Err(KafkaError::new(ResponseError::InvalidRequiredAcks))
            } else if !writable {
                Err(KafkaError::new(ResponseError::TopicAuthorizationFailed))
            } else if !txn_allowed {
                Err(KafkaError::new(
                    ResponseError::TransactionalIdAuthorizationFailed,
                ))
            } else {
                match &name {
                    None => Err(KafkaError::new(ResponseError::UnknownTopicId)),
                    // Only the broker writes internal topics (Kafka answers the same).
                    Some(name) if image.topic(name).is_some_and(|t| t.internal) => {
                        Err(KafkaError::with_message(
                            ResponseError::InvalidTopicException,
                            format!("cannot append to internal topic {name}"),
                        ))
                    }
                    Some(name) => {
                        let records = pd.records.unwrap_or_default();
                        let size = records.len() as u64;
                        let written = state.replicas.append(&image, name, pd.index, records, acks);
                        if let Ok(p) = &written {
                            let n = (p.result.last_offset - p.result.base_offset + 1).max(0) as u64;
                            let counters = metrics_cache::topic(name);
                            counters.bytes_in.increment(size);
                            counters.records_in.increment(n);
                        }
                        written
                    }
                }
            };
            parts.push(pd.index);
            appends.push(slot);
        }
        topics.push((name, td.topic_id, parts));
    }
    let timeout = Duration::from_millis(req.timeout_ms.max(0) as u64);
    Box::pin(async move {
        // Every partition's wait at once (the produce purgatory), then the answers in
        // request order.
        let mut outcomes = complete_all(appends, timeout).await.into_iter();
        let mut responses = Vec::new();
        let mut any_error = None;
        for (name, topic_id, parts) in topics {
            let mut partition_responses = Vec::new();
            for (index, outcome) in parts.into_iter().zip(outcomes.by_ref()) {
                let r = match outcome {
                    Ok(res) => PartitionProduceResponse::default()
                        .with_index(index)
                        .with_base_offset(res.base_offset)
                        .with_log_append_time_ms(res.log_append_time)
                        .with_log_start_offset(res.log_start_offset),
                    Err(e) => {
                        ctx.note_error(e.code);
                        any_error = Some(e.clone());
                        PartitionProduceResponse::default()
                            .with_index(index)
                            .with_error_code(e.code)
                            .with_base_offset(-1)
                            .with_log_start_offset(-1)
                            .with_error_message(e.message.map(|m| s(&m)))
                            .with_record_errors(
                                e.record_errors
                                    .iter()
                                    .filter(|_| ctx.version >= 8)
                                    .map(|(i, m)| {
                                        BatchIndexAndErrorMessage::default()
                                            .with_batch_index(*i)
                                            .with_batch_index_error_message(Some(s(m)))
                                    })
                                    .collect(),
                            )
                    }
                };
                partition_responses.push(r);
            }
            let mut t = TopicProduceResponse::default()
                .with_partition_responses(partition_responses)
                .with_topic_id(topic_id);
            if ctx.version < 13 {
                t.name = TopicName(s(name.as_deref().unwrap_or_default()));
            }
            responses.push(t);
        }
        if acks == 0 {
            // A producer that wants no answer learns of a failure by the connection
            // closing, as with Kafka.
            return match any_error {
                Some(e) => Outcome::Close(format!(
                    "acks=0 produce failed with error {}: {:?}",
                    e.code, e.message
                )),
                None => Outcome::NoResponse,
            };
        }
        respond(&ctx, &ProduceResponse::default().with_responses(responses))
    })
}

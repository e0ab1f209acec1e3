//! Fetch (key 1), v4–v18, for consumers and for follower brokers: maps the request to
//! the replica manager's fetch operation ([`crate::replica::fetch`], which reads, records
//! follower positions and long-polls) and its answer back to the wire.
//!
//! Topic ids (v13+) are resolved to names here; the replica id of a follower comes from
//! `replica_id`, or `replica_state.replica_id` from v15 (only broker ids, >= 0, are
//! followers: -1 is a consumer, -2 a debugging consumer). Fetch sessions (KIP-227) are
//! not kept: every response has session id 0, which tells clients to send full requests.
//!
//! Records left in their segment file (batches of 32 KiB or more) are not read: the
//! answer names their range of the file and the connection sends it with `sendfile`
//! ([`crate::log::Records`], [`crate::protocol::file_chunk`]).
//!
//! With an authorizer, a follower needs CLUSTER_ACTION on the cluster and a consumer READ
//! on each topic; refused partitions are TOPIC_AUTHORIZATION_FAILED and are not read.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::VersionRange;
use uuid::Uuid;

use super::util::s;
use super::Ctx;
use crate::authorizer::{Operation, ResourceType};
use crate::errors::KafkaError;
use crate::log::{LogError, Records};
use crate::protocol::file_chunk::{FileChunk, FileChunks, MAX_CHUNK};
use crate::replica::fetch::{FetchParams, FetchPartition, FetchedPartition, Isolation};

// A range the log leaves in its file must fit one file chunk of a response.
const _: () = assert!(crate::log::records::MAX_FILE_RANGE <= MAX_CHUNK);

pub const VERSIONS: VersionRange = VersionRange { min: 4, max: 18 };

/// The response, and the segment-file ranges it sends by reference (their placeholders
/// are in the response's record fields).
pub struct FetchReply {
    pub response: FetchResponse,
    pub files: FileChunks,
}

impl From<FetchResponse> for FetchReply {
    fn from(response: FetchResponse) -> FetchReply {
        FetchReply {
            response,
            files: FileChunks::default(),
        }
    }
}

pub async fn handle(ctx: &Ctx, req: FetchRequest) -> FetchReply {
    if req.session_id != 0 {
        // We never hand out sessions, so the client's is unknown here (e.g. after a restart).
        ctx.note_error(ResponseError::FetchSessionIdNotFound.code());
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .into();
    }
    let replica_id = if ctx.version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    // A follower needs CLUSTER_ACTION; a consumer READ on each topic. Refused
    // partitions are answered TOPIC_AUTHORIZATION_FAILED and not read.
    let follower_allowed = replica_id < 0 || ctx.authorize_cluster(Operation::ClusterAction);
    let image = ctx.state.controller.image();
    let mut partitions = Vec::new();
    let mut denied: Vec<Option<i32>> = Vec::new();
    // Each requested partition's topic (name, id), in request order.
    let mut topic_of: Vec<(String, Uuid)> = Vec::new();
    let mut order: Vec<(String, Uuid)> = Vec::new();
    for t in &req.topics {
        let name = if ctx.version >= 13 {
            image.topic_by_id(&t.topic_id).map(|m| m.name.clone())
        } else {
            Some(t.topic.to_string())
        };
        order.push((name.clone().unwrap_or_default(), t.topic_id));
        let readable = follower_allowed
            && (replica_id >= 0
                || name
                    .as_deref()
                    .is_none_or(|n| ctx.authorize(Operation::Read, ResourceType::Topic, n)));
        for p in &t.partitions {
            topic_of.push((name.clone().unwrap_or_default(), t.topic_id));
            if !readable {
                denied.push(Some(p.partition));
                continue;
            }
            denied.push(None);
            partitions.push(FetchPartition {
                topic: name.clone(),
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as usize,
                current_leader_epoch: if ctx.version >= 9 {
                    p.current_leader_epoch
                } else {
                    -1
                },
                last_fetched_epoch: if ctx.version >= 12 {
                    p.last_fetched_epoch
                } else {
                    -1
                },
            });
        }
    }
    drop(image);
    let params = FetchParams {
        replica_id: (replica_id >= 0).then_some(replica_id),
        max_wait: Duration::from_millis(req.max_wait_ms.max(0) as u64),
        min_bytes: req.min_bytes.max(0) as usize,
        max_bytes: req.max_bytes.max(0) as usize,
        isolation: if req.isolation_level == 1 {
            Isolation::ReadCommitted
        } else {
            Isolation::ReadUncommitted
        },
    };
    let fetched = if partitions.is_empty() && !denied.is_empty() {
        Vec::new()
    } else {
        ctx.state
            .replicas
            .fetch(&params, &partitions, || ctx.state.is_shutting_down())
            .await
    };
    // The refused partitions back in their places.
    let mut read = fetched.into_iter();
    let fetched = denied
        .into_iter()
        .filter_map(|d| match d {
            Some(p) => Some(FetchedPartition::failed(
                p,
                KafkaError::new(ResponseError::TopicAuthorizationFailed),
            )),
            None => read.next(),
        })
        .collect();
    build(ctx, &order, topic_of, fetched, params.replica_id.is_some())
}

/// One partition's wire answer, with the record count of records sent from a file (the
/// bytes are not in memory to count them from).
fn to_wire(part: FetchedPartition, files: &mut FileChunks) -> (PartitionData, Option<u64>) {
    let mut pd = PartitionData::default()
        .with_partition_index(part.partition)
        .with_error_code(part.error.map_or(0, |e| e.code))
        .with_high_watermark(part.high_watermark)
        .with_last_stable_offset(part.last_stable_offset)
        .with_log_start_offset(part.log_start_offset)
        .with_aborted_transactions(part.aborted_transactions.map(|txns| {
            txns.into_iter()
                .map(|t| {
                    AbortedTransaction::default()
                        .with_producer_id(ProducerId(t.producer_id))
                        .with_first_offset(t.first_offset)
                })
                .collect()
        }));
    if let Some((epoch, end_offset)) = part.diverging_epoch {
        pd.diverging_epoch.epoch = epoch;
        pd.diverging_epoch.end_offset = end_offset;
    }
    attach(pd, part.records, files)
}

/// Put a partition's records in its answer: bytes in memory as they are, a file range as
/// a placeholder registered in `files` (with the record count for the metrics).
fn attach(
    pd: PartitionData,
    records: Records,
    files: &mut FileChunks,
) -> (PartitionData, Option<u64>) {
    match records {
        Records::Mem(bytes) => (pd.with_records(Some(bytes)), None),
        Records::File { range, records } => match files.add(FileChunk {
            file: range.file.clone(),
            pos: range.pos,
            len: range.len,
        }) {
            Some(placeholder) => (pd.with_records(Some(placeholder)), Some(records)),
            // No room for another file chunk in this response: read it.
            None => match range.read() {
                Ok(bytes) => (pd.with_records(Some(Bytes::from(bytes))), None),
                Err(e) => {
                    let code = KafkaError::from(&LogError::from(e)).code;
                    (
                        pd.with_error_code(code).with_records(Some(Bytes::new())),
                        None,
                    )
                }
            },
        },
    }
}

/// Count what a consumer is sent, by topic: bytes, and records from the batch headers
/// (no decoding). Replication traffic is not client traffic (Kafka counts it apart too).
fn count_out(topic: &str, records: &[u8], file_records: Option<u64>) {
    if records.is_empty() {
        return;
    }
    let counters = crate::metrics_cache::topic(topic);
    counters.bytes_out.increment(records.len() as u64);
    // File chunks' bytes are placeholders; their count came from the headers read.
    counters
        .records_out
        .increment(file_records.unwrap_or_else(|| crate::log::batch::count_data_records(records)));
}

fn build(
    ctx: &Ctx,
    order: &[(String, Uuid)],
    topic_of: Vec<(String, Uuid)>,
    fetched: Vec<FetchedPartition>,
    follower: bool,
) -> FetchReply {
    let mut topics: Vec<FetchableTopicResponse> = order
        .iter()
        .map(|(name, id)| {
            let mut t = FetchableTopicResponse::default().with_topic_id(*id);
            if ctx.version < 13 {
                t.topic = TopicName(s(name));
            }
            t
        })
        .collect();
    let mut files = FileChunks::default();
    let mut idx = 0;
    for ((name, id), part) in topic_of.into_iter().zip(fetched) {
        let (pd, file_records) = to_wire(part, &mut files);
        // Partitions arrive grouped by topic in request order.
        while idx < order.len() && !(order[idx].0 == name && order[idx].1 == id) {
            idx += 1;
        }
        if let Some(t) = topics.get_mut(idx) {
            ctx.note_error(pd.error_code);
            if !follower {
                count_out(
                    &name,
                    pd.records.as_deref().unwrap_or_default(),
                    file_records,
                );
            }
            t.partitions.push(pd);
        }
    }
    FetchReply {
        response: FetchResponse::default().with_responses(topics),
        files,
    }
}

//! Fetch (key 1), v4–v18, for consumers and for follower brokers.
//!
//! A request with a replica id >= 0 (`replica_id`, or `replica_state.replica_id` from
//! v15) comes from a follower: it reads up to the log end instead of the high
//! watermark, parks on log-end changes, and its fetch offset is recorded as its log
//! end offset (which moves the high watermark and the ISR, see
//! [`ReplicaManager::record_follower_fetch`]). Consumers never read past the high
//! watermark.
//!
//! Whole stored batches from the one containing the fetch offset, within the partition,
//! response and request byte limits (but at least one batch for the first partition with
//! data, as Kafka does). Long-poll: when fewer than `min_bytes` are available the request
//! parks on the partitions' high-watermark channels and is woken the moment data
//! arrives, or answers at `max_wait_ms`. Fetch sessions (KIP-227) are not kept: every
//! response has session id 0, which tells clients to send full requests.
//!
//! Batches of 32 KiB or more are not read: the answer names their range of the segment
//! file and the connection sends it with `sendfile` ([`crate::log::Records`]).

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::VersionRange;
use tokio::sync::watch;
use uuid::Uuid;

use super::util::s;
use super::Ctx;
use crate::errors::KafkaError;
use crate::log::{LogError, Records};
use crate::metrics as m;
use crate::protocol::file_chunk::{FileChunk, FileChunks, MAX_CHUNK};

// A range the log leaves in its file must fit one file chunk of a response.
const _: () = assert!(crate::log::records::MAX_FILE_RANGE <= MAX_CHUNK);
use crate::replica::ReplicaManager;

pub const VERSIONS: VersionRange = VersionRange { min: 4, max: 18 };

/// One requested partition, resolved once.
struct Target {
    name: Option<String>,
    topic_id: Uuid,
    partition: i32,
    fetch_offset: i64,
    max_bytes: usize,
    current_leader_epoch: i32,
    /// The epoch of the follower's last fetched batch (v12+; -1 unknown).
    last_fetched_epoch: i32,
}

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
    let image = ctx.state.controller.image();
    let mut targets = Vec::new();
    let mut order: Vec<(String, Uuid)> = Vec::new();
    for t in &req.topics {
        let name = if ctx.version >= 13 {
            image.topic_by_id(&t.topic_id).map(|m| m.name.clone())
        } else {
            Some(t.topic.to_string())
        };
        order.push((name.clone().unwrap_or_default(), t.topic_id));
        for p in &t.partitions {
            targets.push(Target {
                name: name.clone(),
                topic_id: t.topic_id,
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
    let max_bytes = req.max_bytes.max(0) as usize;
    let min_bytes = req.min_bytes.max(0) as usize;
    let read_committed = req.isolation_level == 1;
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let replica_id = if ctx.version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    // Only broker ids are followers; -1 is a consumer, -2 a debugging consumer.
    let follower = (replica_id >= 0).then_some(replica_id);
    if let Some(id) = follower {
        record_follower(ctx, &targets, id);
    }
    loop {
        let (parts, total, mut waiters, errors) =
            read_all(ctx, &targets, max_bytes, read_committed, follower);
        let Parts { parts, files } = parts;
        let now = Instant::now();
        if total >= min_bytes
            || errors
            || now >= deadline
            || waiters.is_empty()
            || ctx.state.is_shutting_down()
        {
            return build(ctx, &order, parts, files, follower.is_some());
        }
        let changed = select_all(waiters.iter_mut().map(|w| Box::pin(w.changed())));
        let parked = m::InFlight::new(m::FETCH_LONG_POLL_SIZE);
        let timed_out = tokio::time::timeout(deadline - now, changed).await.is_err();
        drop(parked);
        if timed_out {
            let (Parts { parts, files }, _, _, _) =
                read_all(ctx, &targets, max_bytes, read_committed, follower);
            return build(ctx, &order, parts, files, follower.is_some());
        }
    }
}

/// One partition's answer: topic, partition data, and for records sent from a file
/// their record count (the bytes are not in memory to count them from).
type Part = (String, Uuid, PartitionData, Option<u64>);

/// The answers of one read of all partitions, with the file ranges their records name.
struct Parts {
    parts: Vec<Part>,
    files: FileChunks,
}

/// Record each partition's fetch offset as the follower's log end offset, once per
/// request (its arrival is what Kafka's caught-up rule measures). Partitions with
/// errors are skipped here and answered by the read.
fn record_follower(ctx: &Ctx, targets: &[Target], replica_id: i32) {
    let image = ctx.state.controller.image();
    for t in targets {
        let Some(name) = t.name.as_deref() else {
            continue;
        };
        let Ok((log, meta)) = ctx.state.replicas.leader_log(&image, name, t.partition) else {
            continue;
        };
        if ReplicaManager::check_epoch(&meta, t.current_leader_epoch).is_err()
            || diverging(&log, t).is_some()
        {
            continue;
        }
        // An unknown follower is answered NOT_LEADER_OR_FOLLOWER by the read.
        let _ =
            ctx.state
                .replicas
                .record_follower_fetch(&meta, name, &log, replica_id, t.fetch_offset);
    }
}

/// KIP-320: a follower whose last fetched epoch ends earlier here than its fetch offset
/// has a divergent tail; it gets the epoch's end instead of records and must truncate.
fn diverging(log: &crate::log::PartitionLog, t: &Target) -> Option<(i32, i64)> {
    if t.last_fetched_epoch < 0 || t.fetch_offset <= 0 {
        return None;
    }
    let (epoch, end) = log.end_offset_for_epoch(t.last_fetched_epoch);
    // No epochs here at all: an empty log answers OFFSET_OUT_OF_RANGE instead.
    (epoch >= 0 && (epoch != t.last_fetched_epoch || end < t.fetch_offset)).then_some((epoch, end))
}

fn read_all(
    ctx: &Ctx,
    targets: &[Target],
    max_bytes: usize,
    read_committed: bool,
    follower: Option<i32>,
) -> (Parts, usize, Vec<watch::Receiver<i64>>, bool) {
    let image = ctx.state.controller.image();
    let mut total = 0usize;
    let mut waiters = Vec::new();
    let mut errors = false;
    let mut parts = Vec::new();
    let mut files = FileChunks::default();
    for t in targets {
        let (pd, file_records) = match read_one(
            ctx,
            &image,
            t,
            max_bytes.saturating_sub(total),
            total == 0,
            &mut waiters,
            follower,
        ) {
            Ok((pd, records)) => attach(pd, records, &mut files),
            Err(e) => {
                errors = true;
                let pd = PartitionData::default()
                    .with_partition_index(t.partition)
                    .with_error_code(e.code)
                    .with_high_watermark(-1);
                (pd, None)
            }
        };
        let pd = if read_committed {
            pd
        } else {
            pd.with_aborted_transactions(None)
        };
        total += pd.records.as_ref().map_or(0, |r| r.len());
        parts.push((
            t.name.clone().unwrap_or_default(),
            t.topic_id,
            pd,
            file_records,
        ));
    }
    (Parts { parts, files }, total, waiters, errors)
}

fn read_one(
    ctx: &Ctx,
    image: &crate::cluster::MetadataImage,
    t: &Target,
    budget: usize,
    first: bool,
    waiters: &mut Vec<watch::Receiver<i64>>,
    follower: Option<i32>,
) -> Result<(PartitionData, Records), KafkaError> {
    let name = t
        .name
        .as_deref()
        .ok_or_else(|| KafkaError::new(ResponseError::UnknownTopicId))?;
    let (log, meta) = ctx.state.replicas.leader_log(image, name, t.partition)?;
    ReplicaManager::check_epoch(&meta, t.current_leader_epoch)?;
    if let Some(id) = follower {
        if id == ctx.state.node_id || !meta.replicas.contains(&id) {
            return Err(KafkaError::new(ResponseError::NotLeaderOrFollower));
        }
    }
    // Subscribe before reading so an append between the read and the wait still wakes us.
    // Followers wait for new data at the log end and for the high watermark they carry on.
    waiters.push(log.subscribe());
    if follower.is_some() {
        waiters.push(log.subscribe_end());
    }
    let hw = log.high_watermark();
    let base = PartitionData::default()
        .with_partition_index(t.partition)
        .with_high_watermark(hw)
        .with_last_stable_offset(hw)
        .with_log_start_offset(log.log_start_offset());
    if follower.is_some() {
        if let Some((epoch, end_offset)) = diverging(&log, t) {
            let mut pd = base.with_records(Some(Default::default()));
            pd.diverging_epoch.epoch = epoch;
            pd.diverging_epoch.end_offset = end_offset;
            return Ok((pd, Records::empty()));
        }
    }
    let max_offset = if follower.is_some() {
        log.log_end_offset()
    } else {
        hw
    };
    let limit = t.max_bytes.min(budget);
    match log.read_records(t.fetch_offset, limit, max_offset, first) {
        Ok(records) => Ok((base, records)),
        Err(e) => Ok((
            base.with_error_code(KafkaError::from(&e).code),
            Records::empty(),
        )),
    }
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
    parts: Vec<Part>,
    files: FileChunks,
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
    let mut idx = 0;
    for (name, id, pd, file_records) in parts {
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

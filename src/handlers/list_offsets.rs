//! ListOffsets (key 2), v1–v10: earliest (-2), latest (-1), max timestamp (-3),
//! earliest local (-4), latest tiered (-5) and earliest pending upload (-6), or the first
//! offset whose timestamp is at or after a given time.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;
use crate::errors::KafkaError;
use crate::replica::ReplicaManager;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 10 };

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const EARLIEST_PENDING_UPLOAD: i64 = -6;

pub async fn handle(ctx: &Ctx, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let image = ctx.state.controller.image();
    let mut topics = Vec::new();
    for t in req.topics {
        let name = t.name.to_string();
        let mut partitions = Vec::new();
        for p in t.partitions {
            let base =
                ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            let r = match lookup(
                ctx,
                &image,
                &name,
                p.partition_index,
                p.current_leader_epoch,
                p.timestamp,
            ) {
                Ok((offset, timestamp, epoch)) => {
                    // The leader epoch field exists from v4 on.
                    let epoch = if ctx.version >= 4 { epoch } else { -1 };
                    base.with_offset(offset)
                        .with_timestamp(timestamp)
                        .with_leader_epoch(epoch)
                }
                Err(e) => {
                    ctx.note_error(e.code);
                    base.with_error_code(e.code)
                        .with_offset(-1)
                        .with_timestamp(-1)
                }
            };
            partitions.push(r);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

fn lookup(
    ctx: &Ctx,
    image: &crate::cluster::MetadataImage,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    timestamp: i64,
) -> Result<(i64, i64, i32), KafkaError> {
    let (log, meta) = ctx.state.replicas.leader_log(image, topic, partition)?;
    ReplicaManager::check_epoch(&meta, current_leader_epoch)?;
    let epoch_of = |offset: i64| log.epoch_at(offset).unwrap_or(-1);
    let io = |e: crate::log::LogError| KafkaError::from(&e);
    match timestamp {
        // Without transactions the last stable offset is the high watermark.
        LATEST => {
            let hw = log.high_watermark();
            Ok((hw, -1, log.latest_epoch().unwrap_or(-1)))
        }
        EARLIEST | EARLIEST_LOCAL => {
            let start = log.log_start_offset();
            Ok((start, -1, epoch_of(start)))
        }
        MAX_TIMESTAMP => match log.max_timestamp().map_err(io)? {
            Some((offset, ts, epoch)) => Ok((offset, ts, epoch)),
            None => Ok((-1, -1, -1)),
        },
        // No tiered storage: nothing is tiered or pending upload.
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Ok((-1, -1, -1)),
        ts if ts >= 0 => match log.offset_for_timestamp(ts).map_err(io)? {
            Some((offset, found, epoch)) => Ok((offset, found, epoch)),
            None => Ok((-1, -1, -1)),
        },
        _ => Err(KafkaError::with_message(
            ResponseError::InvalidRequest,
            format!("invalid timestamp {timestamp}"),
        )),
    }
}

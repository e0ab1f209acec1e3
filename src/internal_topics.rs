//! The I/O the coordinators share over their internal, compacted topics
//! (`__consumer_offsets` for groups, `__transaction_state` for transactions): creating the
//! topic on first use, reading one partition's key/value records back when this broker
//! becomes its coordinator, and appending a state machine's records as one batch with
//! acks=all.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use tokio::sync::Mutex;
use tracing::info;

use crate::cluster::{Controller, MetadataImage};
use crate::config::Config;
use crate::errors::KafkaError;
use crate::log::batch::BatchBuilder;
use crate::replica::{PendingAppend, ReplicaManager};

/// Bytes read per step while replaying a partition.
const REPLAY_READ_BYTES: usize = 4 << 20;

/// How an internal topic is made.
pub struct TopicSpec<'a> {
    pub name: &'a str,
    pub partitions: i32,
    /// Capped at the number of registered brokers.
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

/// Creates the topic unless it exists (FindCoordinator does this, as Kafka does, so a
/// broker that never sees a group or a transaction never has the topic). `lock`
/// serialises the callers of one topic.
pub async fn ensure(
    config: &Config,
    controller: &Arc<Controller>,
    replicas: &Arc<ReplicaManager>,
    lock: &Mutex<()>,
    spec: TopicSpec<'_>,
) -> Result<(), KafkaError> {
    if controller.image().topic(spec.name).is_some() {
        return Ok(());
    }
    let _guard = lock.lock().await;
    let image = controller.image();
    if image.topic(spec.name).is_some() {
        return Ok(());
    }
    let brokers = image.brokers.len().max(1) as i16;
    let rf = spec.replication_factor.min(brokers);
    let mut configs = spec.configs;
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    if let Some(min_isr) = configs.get_mut("min.insync.replicas") {
        // A single broker cannot hold two in-sync replicas.
        let capped = min_isr.parse::<i16>().unwrap_or(1).min(rf).max(1);
        *min_isr = capped.to_string();
    }
    let admin = crate::admin::Admin {
        config,
        node_id: config.node_id,
        controller,
        replicas,
    };
    let plan =
        crate::admin::topics::plan(admin, &image, spec.name, spec.partitions, rf, &[], configs)?;
    match crate::admin::topics::create(admin, plan).await {
        Ok(_) => {
            info!(
                partitions = spec.partitions,
                replication_factor = rf,
                "created {}",
                spec.name
            );
            Ok(())
        }
        Err(e) if e.code == ResponseError::TopicAlreadyExists.code() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Every keyed record of `topic`-`partition`, from the log start to the log end. Not just
/// to the high watermark: a replica that just became leader may not have heard the high
/// watermark of the last commits it holds, and everything in the leader's log becomes
/// committed anyway (Kafka's coordinators also load to the log end). Transaction markers
/// come back in log order among the records, with their producer id and outcome (the
/// group coordinator's transactional offset commits become visible at their marker).
pub async fn read_partition(
    replicas: &ReplicaManager,
    image: &MetadataImage,
    topic: &str,
    partition: i32,
) -> Result<Vec<Stored>, KafkaError> {
    // The coordinator writes this partition next: its log is created if the replica
    // manager has not got to it yet.
    let log = replicas.leader_for_write(image, topic, partition)?;
    tokio::task::spawn_blocking(move || -> Result<Vec<Stored>, KafkaError> {
        let mut out = Vec::new();
        let end = log.log_end_offset();
        let mut offset = log.log_start_offset();
        let io = |e: crate::log::LogError| KafkaError::from(&e);
        while offset < end {
            let chunk = log.read_into_memory(offset, REPLAY_READ_BYTES, end)?;
            if chunk.records.is_empty() {
                break;
            }
            for item in crate::log::batch::batches(&chunk.records, false) {
                let (header, range) = item.map_err(io)?;
                offset = header.last_offset() + 1;
                let bytes = &chunk.records[range];
                if header.is_control() {
                    if let Ok((h, marker)) = crate::log::batch::control::parse_marker(bytes) {
                        out.push(Stored::Marker {
                            offset: h.base_offset,
                            producer_id: h.producer_id,
                            commit: marker.commit,
                        });
                    }
                    continue;
                }
                let kvs = crate::log::cleaner::stored_key_values(bytes).map_err(io)?;
                for (at, key, value) in kvs {
                    if let Some(key) = key {
                        out.push(Stored::Record {
                            offset: at,
                            producer_id: header.is_transactional().then_some(header.producer_id),
                            key,
                            value,
                        });
                    }
                }
            }
        }
        Ok(out)
    })
    .await
    .map_err(|e| KafkaError::with_message(ResponseError::UnknownServerError, e.to_string()))?
}

/// One item of a partition read back by [`read_partition`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Record {
        offset: i64,
        /// The producer of a transactional batch (the group coordinator's transactional
        /// offset commits).
        producer_id: Option<i64>,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    },
    Marker {
        offset: i64,
        producer_id: i64,
        commit: bool,
    },
}

/// Append `records` (key, value) to `topic`-`partition` as its leader, as one batch with
/// acks=all; the caller awaits the pending append before answering. Nothing to write is
/// `Ok(None)`. With `txn` (producer id, epoch) the batch belongs to that producer's
/// transaction (a transactional offset commit), written at sequence 0 as Kafka writes it
/// (the coordinator origin skips the sequence check).
pub fn append(
    replicas: &ReplicaManager,
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    records: &[(Vec<u8>, Option<Vec<u8>>)],
    txn: Option<(i64, i16)>,
    now_ms: i64,
) -> Result<Option<PendingAppend>, KafkaError> {
    if records.is_empty() {
        return Ok(None);
    }
    let mut batch = BatchBuilder::new(0);
    if let Some((pid, epoch)) = txn {
        batch = batch.producer(pid, epoch, 0).transactional(true);
    }
    for (key, value) in records {
        batch = batch.record(Some(key), value.as_deref(), now_ms);
    }
    let bytes = bytes::Bytes::from(batch.try_build().map_err(|e| KafkaError::from(&e))?);
    let pending = match txn {
        Some(_) => replicas.append_as_coordinator(image, topic, partition, bytes)?,
        None => replicas.append(image, topic, partition, bytes, -1)?,
    };
    Ok(Some(pending))
}

/// Whether this broker (`node_id`) still leads `topic`-`partition` in `leader_epoch`, the
/// epoch a coordinator shard was loaded in. A new epoch means another coordinator may
/// have written the partition since: the shard must be loaded again.
pub fn still_leads(
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    node_id: i32,
    leader_epoch: i32,
) -> bool {
    image
        .partition(topic, partition)
        .is_some_and(|m| m.leader == node_id && m.leader_epoch == leader_epoch)
}

/// Remove `shard` from `shards` unless another shard of `partition` replaced it meanwhile.
pub fn forget_shard<T>(
    shards: &parking_lot::Mutex<std::collections::HashMap<i32, Arc<T>>>,
    partition: i32,
    shard: &Arc<T>,
) {
    let mut shards = shards.lock();
    if shards
        .get(&partition)
        .is_some_and(|s| Arc::ptr_eq(s, shard))
    {
        shards.remove(&partition);
    }
}

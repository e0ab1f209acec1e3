//! The fetch operation (Kafka's `ReplicaManager.fetchMessages` with its `DelayedFetch`),
//! for consumers and for follower brokers alike; the Fetch handler only maps it to and
//! from the wire.
//!
//! A fetch names a follower when it comes from a broker: a follower reads up to the log
//! end instead of the high watermark, parks on log-end changes too, and its fetch offset
//! is recorded as its log end offset (which moves the high watermark and the ISR, see
//! [`ReplicaManager::record_follower_fetch`]); a follower whose log diverged gets the
//! epoch to truncate to instead of records (KIP-320). Consumers never read past the high
//! watermark; with read_committed they would stop at the last stable offset and get the
//! aborted transactions of what they read, which is where transactions plug in.
//!
//! Whole stored batches from the one containing the fetch offset, within the partition,
//! response and request byte limits (but at least one batch for the first partition with
//! data, as Kafka does). The delayed fetch: when fewer than `min_bytes` are available
//! the operation parks on the partitions' high-watermark (and, for followers, log-end)
//! channels and reads again the moment data arrives, or answers at `max_wait`.

use std::time::{Duration, Instant};

use futures::future::select_all;
use kafka_protocol::error::ResponseError;
use tokio::sync::watch;

use super::partition::Partition;
use super::ReplicaManager;
use crate::cluster::MetadataImage;
use crate::errors::KafkaError;
use crate::log::Records;
use crate::metrics as m;

/// Which records a consumer may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// Everything up to the high watermark.
    ReadUncommitted,
    /// Up to the last stable offset, with the aborted transactions to skip.
    ReadCommitted,
}

/// What applies to the whole fetch.
pub struct FetchParams {
    /// The fetching broker, for a follower fetch; `None` for a consumer.
    pub replica_id: Option<i32>,
    pub max_wait: Duration,
    pub min_bytes: usize,
    pub max_bytes: usize,
    pub isolation: Isolation,
}

/// One requested partition.
pub struct FetchPartition {
    /// `None` when the request named a topic id this broker does not know.
    pub topic: Option<String>,
    pub partition: i32,
    pub fetch_offset: i64,
    pub max_bytes: usize,
    /// The leader epoch the client believes current (-1: unchecked).
    pub current_leader_epoch: i32,
    /// The epoch of the follower's last fetched batch (-1: unknown).
    pub last_fetched_epoch: i32,
}

/// An aborted transaction among the records read: its producer and first offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
}

/// One partition's answer, in request order.
pub struct FetchedPartition {
    pub partition: i32,
    /// The partition's error: it could not be read at all (unknown, not led here, a
    /// fenced epoch; the fetch answers at once then), or the read failed (say, an
    /// offset out of range).
    pub error: Option<KafkaError>,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// KIP-320: (epoch, end offset) a divergent follower truncates to.
    pub diverging_epoch: Option<(i32, i64)>,
    /// For read_committed, the aborted transactions among `records`; `None` otherwise.
    pub aborted_transactions: Option<Vec<AbortedTxn>>,
    pub records: Records,
}

impl FetchedPartition {
    /// The partition cannot be read here at all (unknown, not led, fenced epoch).
    pub fn failed(partition: i32, error: KafkaError) -> FetchedPartition {
        FetchedPartition {
            partition,
            error: Some(error),
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            diverging_epoch: None,
            aborted_transactions: None,
            records: Records::empty(),
        }
    }
}

/// One read of every partition.
struct Pass {
    parts: Vec<FetchedPartition>,
    bytes: usize,
    /// A partition could not be read at all: answer now.
    fatal: bool,
    waiters: Vec<watch::Receiver<i64>>,
}

impl ReplicaManager {
    /// Fetch `partitions`, waiting up to `params.max_wait` for `params.min_bytes`; `stop`
    /// says the broker is shutting down (answer with what there is).
    pub async fn fetch(
        &self,
        params: &FetchParams,
        partitions: &[FetchPartition],
        stop: impl Fn() -> bool,
    ) -> Vec<FetchedPartition> {
        let deadline = Instant::now() + params.max_wait;
        if let Some(id) = params.replica_id {
            self.record_follower_fetches(partitions, id);
        }
        loop {
            let mut pass = self.read_pass(params, partitions);
            let now = Instant::now();
            if pass.bytes >= params.min_bytes
                || pass.fatal
                || now >= deadline
                || pass.waiters.is_empty()
                || stop()
            {
                return pass.parts;
            }
            // The delayed fetch: woken by any partition's new data, or answered at the deadline.
            let changed = select_all(pass.waiters.iter_mut().map(|w| Box::pin(w.changed())));
            let parked = m::InFlight::new(m::FETCH_LONG_POLL_SIZE);
            let timed_out = tokio::time::timeout(deadline - now, changed).await.is_err();
            drop(parked);
            if timed_out {
                return self.read_pass(params, partitions).parts;
            }
        }
    }

    /// Record each partition's fetch offset as the follower's log end offset, once per
    /// request (its arrival is what Kafka's caught-up rule measures). Partitions with
    /// errors are skipped here and answered by the read.
    fn record_follower_fetches(&self, partitions: &[FetchPartition], replica_id: i32) {
        let image = self.controller().image();
        for t in partitions {
            let Some(p) = self.lookup(&image, t) else {
                continue;
            };
            if p.check_epoch(t.current_leader_epoch).is_err()
                || p.diverging(t.last_fetched_epoch, t.fetch_offset).is_some()
            {
                continue;
            }
            // An unknown follower is answered NOT_LEADER_OR_FOLLOWER by the read.
            let _ = self.record_follower_fetch(&p, replica_id, t.fetch_offset);
        }
    }

    fn lookup(&self, image: &MetadataImage, t: &FetchPartition) -> Option<Partition> {
        self.leader(image, t.topic.as_deref()?, t.partition).ok()
    }

    fn read_pass(&self, params: &FetchParams, partitions: &[FetchPartition]) -> Pass {
        let image = self.controller().image();
        let mut pass = Pass {
            parts: Vec::with_capacity(partitions.len()),
            bytes: 0,
            fatal: false,
            waiters: Vec::new(),
        };
        for t in partitions {
            let budget = params.max_bytes.saturating_sub(pass.bytes);
            let first = pass.bytes == 0;
            let mut part = match self.read_one(&image, params, t, budget, first, &mut pass.waiters)
            {
                Ok(part) => part,
                Err(e) => {
                    pass.fatal = true;
                    FetchedPartition::failed(t.partition, e)
                }
            };
            if params.isolation == Isolation::ReadCommitted && part.aborted_transactions.is_none() {
                part.aborted_transactions = Some(Vec::new());
            }
            pass.bytes += part.records.len();
            pass.parts.push(part);
        }
        pass
    }

    fn read_one(
        &self,
        image: &MetadataImage,
        params: &FetchParams,
        t: &FetchPartition,
        budget: usize,
        first: bool,
        waiters: &mut Vec<watch::Receiver<i64>>,
    ) -> Result<FetchedPartition, KafkaError> {
        let topic = t
            .topic
            .as_deref()
            .ok_or_else(|| KafkaError::new(ResponseError::UnknownTopicId))?;
        let p = self.leader(image, topic, t.partition)?;
        p.check_epoch(t.current_leader_epoch)?;
        let follower = params.replica_id;
        if let Some(id) = follower {
            if id == self.node_id() || !p.meta().replicas.contains(&id) {
                return Err(KafkaError::new(ResponseError::NotLeaderOrFollower));
            }
        }
        // Subscribe before reading so an append between the read and the wait still wakes
        // us. Followers wait for new data at the log end and for the high watermark they
        // carry on.
        waiters.push(p.log().subscribe());
        if follower.is_some() {
            waiters.push(p.log().subscribe_end());
        }
        let hw = p.high_watermark();
        let mut part = FetchedPartition {
            partition: t.partition,
            error: None,
            high_watermark: hw,
            last_stable_offset: p.last_stable_offset(),
            log_start_offset: p.log_start_offset(),
            diverging_epoch: None,
            aborted_transactions: None,
            records: Records::empty(),
        };
        if follower.is_some() {
            if let Some(diverging) = p.diverging(t.last_fetched_epoch, t.fetch_offset) {
                part.diverging_epoch = Some(diverging);
                return Ok(part);
            }
        }
        let max_offset = match (follower, params.isolation) {
            (Some(_), _) => p.log_end_offset(),
            (None, Isolation::ReadUncommitted) => hw,
            (None, Isolation::ReadCommitted) => part.last_stable_offset,
        };
        match p.read_records(t.fetch_offset, t.max_bytes.min(budget), max_offset, first) {
            Ok(records) => part.records = records,
            Err(e) => part.error = Some(KafkaError::from(&e)),
        }
        if follower.is_none()
            && params.isolation == Isolation::ReadCommitted
            && !part.records.is_empty()
        {
            // Every transaction aborted in what may have been read: the consumer drops
            // those producers' records from each first offset to the ABORT marker.
            let aborted = p.log().aborted_transactions(t.fetch_offset, max_offset);
            part.aborted_transactions = Some(
                aborted
                    .into_iter()
                    .map(|a| AbortedTxn {
                        producer_id: a.producer_id,
                        first_offset: a.first_offset,
                    })
                    .collect(),
            );
        }
        Ok(part)
    }
}

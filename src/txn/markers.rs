//! Writing the markers that end a transaction (Kafka's TransactionMarkerChannelManager):
//! every partition of the transaction gets its COMMIT or ABORT marker from its current
//! leader, this broker's own partitions directly and the others' with WriteTxnMarkers over
//! the inter-broker listener. A partition is retried, following leadership changes, until
//! its marker is replicated; a deleted topic's partitions leave the transaction; a leader
//! that reports this coordinator or the producer fenced ends the attempt (a newer
//! coordinator or epoch owns the transaction now).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    ApiKey, ProducerId, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use tracing::{debug, warn};

use super::coordinator::MarkerJob;
use super::metadata::TopicPartition;
use crate::cluster::Controller;
use crate::group::{GroupManager, OFFSETS_TOPIC};
use crate::log::batch::control::TxnMarker;
use crate::replica::client::BrokerClient;
use crate::replica::ReplicaManager;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one WriteTxnMarkers may take (the leader waits for its ISR).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

type Conn = Arc<tokio::sync::Mutex<Option<BrokerClient>>>;

/// How writing a job's markers ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Every partition has its marker; these left the transaction (topic deleted).
    Done { dropped: Vec<TopicPartition> },
    /// A leader refused the marker as stale, or the caller lost the coordinator role:
    /// the transaction is no longer this attempt's to finish.
    Stopped,
}

/// Writes markers; shared by every coordinator shard of this broker.
pub struct MarkerWriter {
    node_id: i32,
    controller: Arc<Controller>,
    replicas: Arc<ReplicaManager>,
    groups: Arc<GroupManager>,
    /// One connection per remote leader, reused across jobs; a slow leader holds up only
    /// the markers it leads.
    conns: parking_lot::Mutex<HashMap<i32, Conn>>,
}

impl MarkerWriter {
    pub fn new(
        controller: Arc<Controller>,
        replicas: Arc<ReplicaManager>,
        groups: Arc<GroupManager>,
    ) -> MarkerWriter {
        MarkerWriter {
            node_id: replicas.node_id(),
            controller,
            replicas,
            groups,
            conns: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// Write every marker of `job`, retrying until each is in or `keep_going` says the
    /// coordinator lost the transaction.
    pub async fn write(&self, job: &MarkerJob, keep_going: impl Fn() -> bool) -> Written {
        let marker = TxnMarker {
            commit: job.commit,
            coordinator_epoch: job.coordinator_epoch,
        };
        let mut pending: Vec<TopicPartition> = job.partitions.clone();
        let mut dropped = Vec::new();
        let mut backoff = Duration::from_millis(50);
        loop {
            if !keep_going() {
                return Written::Stopped;
            }
            let image = self.controller.image();
            let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
            for tp in std::mem::take(&mut pending) {
                match image.partition(&tp.0, tp.1) {
                    None if image.topic(&tp.0).is_none() => {
                        debug!(topic = %tp.0, partition = tp.1, "topic deleted; no marker needed");
                        dropped.push(tp);
                    }
                    Some(p) if p.leader >= 0 => by_leader.entry(p.leader).or_default().push(tp),
                    // No leader at the moment: next round.
                    _ => pending.push(tp),
                }
            }
            for (leader, parts) in by_leader {
                let results = if leader == self.node_id {
                    self.write_local(job, marker, &parts).await
                } else {
                    self.write_remote(leader, job, &parts).await
                };
                for (tp, code) in parts.into_iter().zip(results) {
                    match ResponseError::try_from_code(code) {
                        None => {}
                        Some(ResponseError::InvalidProducerEpoch)
                        | Some(ResponseError::TransactionCoordinatorFenced) => {
                            warn!(transactional_id = %job.transactional_id, topic = %tp.0,
                                partition = tp.1, code, "marker refused as stale; stopping");
                            return Written::Stopped;
                        }
                        Some(e) => {
                            debug!(transactional_id = %job.transactional_id, topic = %tp.0,
                                partition = tp.1, error = ?e, "marker not written yet; retrying");
                            pending.push(tp);
                        }
                    }
                }
            }
            if pending.is_empty() {
                return Written::Done { dropped };
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Markers of this broker's own partitions.
    async fn write_local(
        &self,
        job: &MarkerJob,
        marker: TxnMarker,
        parts: &[TopicPartition],
    ) -> Vec<i16> {
        write_led(
            &self.replicas,
            &self.groups,
            job.producer_id,
            job.producer_epoch,
            marker,
            parts,
        )
        .await
    }

    /// WriteTxnMarkers to `leader`; a failed call fails every partition (retried).
    async fn write_remote(
        &self,
        leader: i32,
        job: &MarkerJob,
        parts: &[TopicPartition],
    ) -> Vec<i16> {
        let failed = vec![ResponseError::NetworkException.code(); parts.len()];
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in parts {
            topics.entry(t).or_default().push(*p);
        }
        let req =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(job.producer_id))
                .with_producer_epoch(job.producer_epoch)
                .with_transaction_result(job.commit)
                .with_coordinator_epoch(job.coordinator_epoch)
                .with_topics(
                    topics
                        .iter()
                        .map(|(t, ps)| {
                            WritableTxnMarkerTopic::default()
                                .with_name(TopicName(t.to_string().into()))
                                .with_partition_indexes(ps.clone())
                        })
                        .collect(),
                )]);
        let conn = self.conns.lock().entry(leader).or_default().clone();
        let mut conn = conn.lock().await;
        if conn.is_none() {
            *conn = self.connect(leader).await;
        }
        let Some(client) = conn.as_mut() else {
            return failed;
        };
        let resp: WriteTxnMarkersResponse = match client
            .call(ApiKey::WriteTxnMarkers, 1, &req, REQUEST_TIMEOUT)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                debug!(leader, error = %e, "WriteTxnMarkers failed; reconnecting");
                *conn = None;
                return failed;
            }
        };
        drop(conn);
        // The answer per (topic, partition), in the order asked.
        let mut codes: HashMap<(String, i32), i16> = HashMap::new();
        for m in resp.markers {
            for t in m.topics {
                for p in t.partitions {
                    codes.insert((t.name.to_string(), p.partition_index), p.error_code);
                }
            }
        }
        parts
            .iter()
            .map(|tp| {
                codes
                    .get(tp)
                    .copied()
                    .unwrap_or(ResponseError::UnknownServerError.code())
            })
            .collect()
    }

    async fn connect(&self, leader: i32) -> Option<BrokerClient> {
        let image = self.controller.image();
        let b = image.brokers.get(&leader)?;
        let addr = format!("{}:{}", b.host, b.port);
        let client_id = format!("weir-txn-markers-{}", self.node_id);
        let tls = self.replicas.inter_broker_connector();
        let mut c =
            match BrokerClient::connect_with(&addr, client_id, CONNECT_TIMEOUT, tls.as_ref()).await
            {
                Ok(c) => c,
                Err(e) => {
                    crate::peer_log::failed("transaction markers", leader as i64, &e);
                    return None;
                }
            };
        if let Some(sasl) = self.replicas.inter_broker_sasl() {
            if let Err(e) = c.authenticate(&sasl, CONNECT_TIMEOUT).await {
                crate::peer_log::failed("transaction markers", leader as i64, &e);
                return None;
            }
        }
        crate::peer_log::reached("transaction markers", leader as i64);
        Some(c)
    }
}

/// Writes `marker` for `producer_id` to each of `parts`, which this broker leads, and
/// waits for each to be replicated: the error code of each, in order. A
/// `__consumer_offsets` partition's group coordinator then commits or drops the
/// producer's pending offsets there. WriteTxnMarkers and the local coordinator share it.
pub async fn write_led(
    replicas: &ReplicaManager,
    groups: &GroupManager,
    producer_id: i64,
    producer_epoch: i16,
    marker: TxnMarker,
    parts: &[TopicPartition],
) -> Vec<i16> {
    let image = replicas.controller().image();
    let mut pending = Vec::with_capacity(parts.len());
    for (topic, partition) in parts {
        pending.push(replicas.append_marker(
            &image,
            topic,
            *partition,
            producer_id,
            producer_epoch,
            marker,
        ));
    }
    let mut codes = Vec::with_capacity(parts.len());
    for ((topic, partition), p) in parts.iter().zip(pending) {
        let code = match p {
            Ok(p) => p
                .complete(REQUEST_TIMEOUT)
                .await
                .map_or_else(|e| e.code, |()| 0),
            Err(e) => e.code,
        };
        if code == 0 && topic == OFFSETS_TOPIC {
            groups
                .complete_txn(*partition, producer_id, marker.commit)
                .await;
        }
        codes.push(code);
    }
    codes
}

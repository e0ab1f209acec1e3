//! Follower replication (Kafka's ReplicaFetcherManager and ReplicaFetcherThread).
//!
//! For every replicated partition where this broker is a replica but not the leader,
//! a fetcher pulls the leader's log with ordinary Kafka Fetch requests carrying this
//! broker's id as replica id, so the leader counts the fetch offset as this replica's
//! log end offset. There is one fetcher task per leader broker; it batches all of that
//! leader's partitions into one Fetch. The manager task follows the metadata image and
//! hands each fetcher its partitions through a watch channel: a partition whose leader
//! changes moves to another fetcher, one this broker now leads simply stops being
//! fetched, and a fetcher with nothing left ends.
//!
//! Before a partition is fetched in a new leader epoch, its log is truncated to where
//! it agrees with the leader (KIP-101/279): the follower asks the leader with
//! OffsetForLeaderEpoch for the end offset of its latest epoch and cuts its log there.
//! A fetch answered with a diverging epoch (KIP-320) or an out-of-range offset runs
//! that step again. Partition errors that mean "the leader moved" (fenced or unknown
//! epoch, not leader) pause the partition until the next image or a short backoff.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::client::{BrokerClient, ClientError};
use super::ReplicaManager;
use crate::cluster::MetadataImage;
use crate::config::FlushPolicy;
use crate::log::PartitionLog;
use crate::metrics as m;

/// Fetch v12: topics by name, `last_fetched_epoch` and diverging epochs (KIP-320),
/// `replica_id` in the body.
const FETCH_VERSION: i16 = 12;
/// OffsetForLeaderEpoch v3+ carries the replica id.
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;
/// Kafka's `replica.fetch.wait.max.ms`, `replica.fetch.min.bytes`,
/// `replica.fetch.max.bytes` and `replica.fetch.response.max.bytes` defaults.
const FETCH_MAX_WAIT_MS: i32 = 500;
const FETCH_MIN_BYTES: i32 = 1;
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const RESPONSE_MAX_BYTES: i32 = 10 << 20;
/// Kafka's `replica.fetch.backoff.ms`.
const BACKOFF: Duration = Duration::from_millis(1000);
/// Kafka's `replica.socket.timeout.ms`, on top of the fetch's own wait.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A partition a fetcher replicates, at the leader epoch the image gives.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Assigned {
    topic: String,
    partition: i32,
    leader_epoch: i32,
}

/// What one leader's fetcher should do: its partitions and where the leader listens.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Assignment {
    /// The leader's advertised client listener, `None` while the leader is unregistered.
    addr: Option<String>,
    partitions: Vec<Assigned>,
}

/// Start the manager: one fetcher per leader broker, following the image until
/// shutdown. Single-replica partitions and partitions this broker leads are never
/// fetched.
pub fn start(replicas: Arc<ReplicaManager>, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(run_manager(replicas, shutdown))
}

async fn run_manager(replicas: Arc<ReplicaManager>, mut shutdown: watch::Receiver<bool>) {
    let mut images = replicas.controller().subscribe();
    let mut fetchers: HashMap<i32, (watch::Sender<Assignment>, JoinHandle<()>)> = HashMap::new();
    // Fetchers told to stop finish their round on their own; awaited at shutdown.
    let mut retired: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let image = images.borrow_and_update().clone();
        let wanted = assignments(replicas.node_id(), &image);
        // Leaders we no longer fetch from: dropping the sender ends their task.
        let gone: Vec<i32> = fetchers
            .keys()
            .filter(|l| !wanted.contains_key(l))
            .copied()
            .collect();
        for leader in gone {
            if let Some((tx, handle)) = fetchers.remove(&leader) {
                drop(tx);
                retired.push(handle);
                info!(leader, "stopped fetching from leader");
            }
        }
        retired.retain(|h| !h.is_finished());
        for (leader, assignment) in wanted {
            if let Some((tx, _)) = fetchers.get(&leader) {
                tx.send_if_modified(|cur| {
                    let changed = *cur != assignment;
                    *cur = assignment;
                    changed
                });
            } else {
                info!(
                    leader,
                    partitions = assignment.partitions.len(),
                    "fetching from leader"
                );
                let (tx, rx) = watch::channel(assignment);
                let handle = tokio::spawn(
                    Fetcher::new(replicas.clone(), leader, rx, shutdown.clone()).run(),
                );
                fetchers.insert(leader, (tx, handle));
            }
        }
        tokio::select! {
            r = images.changed() => if r.is_err() { break },
            _ = shutdown.changed() => break,
        }
    }
    let handles = fetchers
        .drain()
        .map(|(_, (_tx, handle))| handle)
        .chain(retired);
    // The fetchers watch the same shutdown signal; this only bounds the wait.
    for handle in handles.collect::<Vec<_>>() {
        let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
    }
}

/// Group the partitions this broker follows by their leader.
fn assignments(node_id: i32, image: &MetadataImage) -> BTreeMap<i32, Assignment> {
    let mut out: BTreeMap<i32, Assignment> = BTreeMap::new();
    for topic in image.topics.values() {
        for p in &topic.partitions {
            if p.replicas.len() <= 1
                || !p.replicas.contains(&node_id)
                || p.leader == node_id
                || p.leader < 0
            {
                continue;
            }
            let a = out.entry(p.leader).or_insert_with(|| Assignment {
                addr: image
                    .brokers
                    .get(&p.leader)
                    .map(|b| format!("{}:{}", b.host, b.port)),
                partitions: Vec::new(),
            });
            a.partitions.push(Assigned {
                topic: topic.name.clone(),
                partition: p.partition,
                leader_epoch: p.leader_epoch,
            });
        }
    }
    out
}

/// Per-partition progress of a fetcher.
struct PartState {
    leader_epoch: i32,
    /// The log agrees with the leader's as of this epoch (truncation done).
    truncated: bool,
    /// Paused after an error until then.
    retry_at: Option<Instant>,
}

/// Replicates one leader's partitions.
struct Fetcher {
    replicas: Arc<ReplicaManager>,
    leader: i32,
    assignment: watch::Receiver<Assignment>,
    shutdown: watch::Receiver<bool>,
    parts: BTreeMap<(String, i32), PartState>,
    conn: Option<(String, BrokerClient)>,
}

/// How a round ended.
enum Next {
    /// Go on at once.
    Continue,
    /// Nothing to do right now: wait for a new assignment or the backoff.
    Pause,
    Stop,
}

impl Fetcher {
    fn new(
        replicas: Arc<ReplicaManager>,
        leader: i32,
        assignment: watch::Receiver<Assignment>,
        shutdown: watch::Receiver<bool>,
    ) -> Fetcher {
        Fetcher {
            replicas,
            leader,
            assignment,
            shutdown,
            parts: BTreeMap::new(),
            conn: None,
        }
    }

    async fn run(mut self) {
        loop {
            if *self.shutdown.borrow() {
                break;
            }
            let next = match self.round().await {
                Ok(next) => {
                    crate::peer_log::reached("follower fetch", self.leader as i64);
                    next
                }
                Err(e) => {
                    // The connection is in an unknown state: start over with a new one.
                    crate::peer_log::failed("follower fetch", self.leader as i64, &e);
                    metrics::counter!(m::REPLICA_FETCH_ERRORS_TOTAL, "leader" => self.leader.to_string())
                        .increment(1);
                    self.conn = None;
                    Next::Pause
                }
            };
            match next {
                Next::Continue => {}
                Next::Stop => break,
                Next::Pause => {
                    tokio::select! {
                        r = self.assignment.changed() => if r.is_err() { break },
                        _ = self.shutdown.changed() => break,
                        _ = tokio::time::sleep(BACKOFF) => {}
                    }
                }
            }
        }
        debug!(leader = self.leader, "fetcher stopped");
    }

    /// Take in the latest assignment: a partition that is new or has a new leader epoch
    /// starts over with truncation.
    /// `None` once the manager dropped this fetcher.
    fn refresh(&mut self) -> Option<Assignment> {
        if self.assignment.has_changed().is_err() {
            return None;
        }
        let a = self.assignment.borrow_and_update().clone();
        let mut next = BTreeMap::new();
        for p in &a.partitions {
            let key = (p.topic.clone(), p.partition);
            let state = match self.parts.remove(&key) {
                Some(s) if s.leader_epoch == p.leader_epoch => s,
                _ => PartState {
                    leader_epoch: p.leader_epoch,
                    truncated: false,
                    retry_at: None,
                },
            };
            next.insert(key, state);
        }
        self.parts = next;
        Some(a)
    }

    async fn log(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        if let Some(log) = self.replicas.logs().get(topic, partition) {
            return Some(log);
        }
        // The image reached us before the replica manager created the log.
        self.replicas.reconcile_latest().await;
        self.replicas.logs().get(topic, partition)
    }

    async fn round(&mut self) -> Result<Next, ClientError> {
        let Some(assignment) = self.refresh() else {
            return Ok(Next::Stop);
        };
        let Some(addr) = assignment.addr else {
            return Ok(Next::Pause);
        };
        if self.conn.as_ref().is_some_and(|(a, _)| *a != addr) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let client_id = format!("weir-replica-{}", self.replicas.node_id());
            let tls = self.replicas.inter_broker_connector();
            let mut c =
                BrokerClient::connect_with(&addr, client_id, CONNECT_TIMEOUT, tls.as_ref()).await?;
            if let Some(sasl) = self.replicas.inter_broker_sasl() {
                c.authenticate(&sasl, CONNECT_TIMEOUT).await?;
            }
            debug!(leader = self.leader, %addr, "connected to leader");
            self.conn = Some((addr, c));
        }
        let now = Instant::now();
        let ready = |s: &PartState| s.retry_at.is_none_or(|t| t <= now);
        let to_truncate: Vec<(String, i32, i32)> = self
            .parts
            .iter()
            .filter(|(_, s)| !s.truncated && ready(s))
            .map(|((t, p), s)| (t.clone(), *p, s.leader_epoch))
            .collect();
        if !to_truncate.is_empty() {
            self.truncate(to_truncate).await?;
        }
        let to_fetch: Vec<(String, i32, i32)> = self
            .parts
            .iter()
            .filter(|(_, s)| s.truncated && ready(s))
            .map(|((t, p), s)| (t.clone(), *p, s.leader_epoch))
            .collect();
        if to_fetch.is_empty() {
            return Ok(Next::Pause);
        }
        self.fetch(to_fetch).await
    }

    /// The request on the open connection; `None` when abandoned (shutdown or a new
    /// assignment).
    async fn call<Req, Resp>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &Req,
        timeout: Duration,
    ) -> Result<Option<Resp>, ClientError>
    where
        Req: kafka_protocol::protocol::Encodable,
        Resp: kafka_protocol::protocol::Decodable,
    {
        let Some((_, conn)) = self.conn.as_mut() else {
            return Err(ClientError::Closed);
        };
        let mut shutdown = self.shutdown.clone();
        // A new assignment (leader epoch, address, partitions, or none at all) makes the
        // answer stale; a dead leader must not hold the switch to the new one for the
        // whole socket timeout.
        let outcome = tokio::select! {
            r = conn.call(api, version, req, timeout) => return r.map(Some),
            _ = shutdown.changed() => None,
            _ = self.assignment.changed() => None,
        };
        // The abandoned response would still arrive on this connection.
        self.conn = None;
        Ok(outcome)
    }

    /// KIP-101/279: cut each log back to where it agrees with the leader.
    async fn truncate(&mut self, parts: Vec<(String, i32, i32)>) -> Result<(), ClientError> {
        let mut topics: BTreeMap<String, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
        let mut logs = HashMap::new();
        for (topic, partition, epoch) in parts {
            let Some(log) = self.log(&topic, partition).await else {
                self.pause(&topic, partition);
                continue;
            };
            let Some(latest) = last_epoch(&log) else {
                // Nothing with an epoch here (an empty log): nothing can diverge.
                if let Some(s) = self.parts.get_mut(&(topic.clone(), partition)) {
                    s.truncated = true;
                }
                continue;
            };
            topics.entry(topic.clone()).or_default().push(
                OffsetForLeaderPartition::default()
                    .with_partition(partition)
                    .with_current_leader_epoch(epoch)
                    .with_leader_epoch(latest),
            );
            logs.insert((topic, partition), (log, latest));
        }
        if topics.is_empty() {
            return Ok(());
        }
        let req = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(self.replicas.node_id()))
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetForLeaderTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(t)))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let Some(resp): Option<OffsetForLeaderEpochResponse> = self
            .call(
                ApiKey::OffsetForLeaderEpoch,
                OFFSET_FOR_LEADER_EPOCH_VERSION,
                &req,
                SOCKET_TIMEOUT,
            )
            .await?
        else {
            return Ok(());
        };
        for t in resp.topics {
            let topic = t.topic.to_string();
            for p in t.partitions {
                let key = (topic.clone(), p.partition);
                let Some((log, requested)) = logs.get(&key) else {
                    continue;
                };
                if p.error_code != 0 {
                    debug!(%topic, partition = p.partition, error = p.error_code,
                        "OffsetForLeaderEpoch refused; retrying later");
                    self.pause(&topic, p.partition);
                    continue;
                }
                let target = truncation_offset(log, *requested, p.leader_epoch, p.end_offset);
                if target < log.log_end_offset() {
                    info!(%topic, partition = p.partition, from = log.log_end_offset(),
                        to = target, leader_epoch = p.leader_epoch,
                        "truncating follower log to the leader's");
                    if let Err(e) = log.truncate_to(target) {
                        warn!(%topic, partition = p.partition, error = %e, "cannot truncate follower log");
                        self.pause(&topic, p.partition);
                        continue;
                    }
                }
                if let Some(s) = self.parts.get_mut(&key) {
                    s.truncated = true;
                    s.retry_at = None;
                }
            }
        }
        Ok(())
    }

    fn pause(&mut self, topic: &str, partition: i32) {
        if let Some(s) = self.parts.get_mut(&(topic.to_string(), partition)) {
            s.retry_at = Some(Instant::now() + BACKOFF);
        }
    }

    fn restart_truncation(&mut self, topic: &str, partition: i32) {
        if let Some(s) = self.parts.get_mut(&(topic.to_string(), partition)) {
            s.truncated = false;
        }
    }

    async fn fetch(&mut self, parts: Vec<(String, i32, i32)>) -> Result<Next, ClientError> {
        let mut topics: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
        let mut logs = HashMap::new();
        for (topic, partition, epoch) in parts {
            let Some(log) = self.log(&topic, partition).await else {
                self.pause(&topic, partition);
                continue;
            };
            topics.entry(topic.clone()).or_default().push(
                FetchPartition::default()
                    .with_partition(partition)
                    .with_current_leader_epoch(epoch)
                    .with_fetch_offset(log.log_end_offset())
                    .with_last_fetched_epoch(last_epoch(&log).unwrap_or(-1))
                    .with_log_start_offset(log.log_start_offset())
                    .with_partition_max_bytes(PARTITION_MAX_BYTES),
            );
            logs.insert((topic, partition), log);
        }
        if topics.is_empty() {
            return Ok(Next::Pause);
        }
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(self.replicas.node_id()))
            .with_max_wait_ms(FETCH_MAX_WAIT_MS)
            .with_min_bytes(FETCH_MIN_BYTES)
            .with_max_bytes(RESPONSE_MAX_BYTES)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        FetchTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(t)))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let timeout = Duration::from_millis(FETCH_MAX_WAIT_MS as u64) + SOCKET_TIMEOUT;
        let Some(resp): Option<FetchResponse> = self
            .call(ApiKey::Fetch, FETCH_VERSION, &req, timeout)
            .await?
        else {
            // The next round sees the shutdown or the new assignment.
            return Ok(Next::Continue);
        };
        if resp.error_code != 0 {
            warn!(
                leader = self.leader,
                error = resp.error_code,
                "leader refused the fetch"
            );
            return Ok(Next::Pause);
        }
        let mut flushes = Vec::new();
        for t in resp.responses {
            let topic = t.topic.to_string();
            for p in t.partitions {
                let Some(log) = logs.get(&(topic.clone(), p.partition_index)) else {
                    continue;
                };
                if let Some(last) = self.apply(&topic, log, &p) {
                    if log.config().flush_policy == FlushPolicy::Durable {
                        flushes.push((log.clone(), last));
                    }
                }
            }
        }
        // Under the durable policy a follower reports a log end offset (its next fetch)
        // only for what it has fsynced, so acks=all means fsynced on the whole ISR.
        for (log, last) in flushes {
            if let Err(e) = log.flush_to(last).await {
                warn!(topic = log.topic(), partition = log.partition(), error = %e,
                    "follower flush failed");
            }
        }
        Ok(Next::Continue)
    }

    /// Apply one partition of a fetch response; `Some(last)` when records were appended
    /// up to `last`.
    fn apply(
        &mut self,
        topic: &str,
        log: &Arc<PartitionLog>,
        p: &kafka_protocol::messages::fetch_response::PartitionData,
    ) -> Option<i64> {
        let partition = p.partition_index;
        match ResponseError::try_from_code(p.error_code) {
            None => {}
            Some(ResponseError::OffsetOutOfRange) => {
                if log.log_end_offset() < p.log_start_offset {
                    warn!(%topic, partition, leo = log.log_end_offset(),
                        leader_log_start = p.log_start_offset,
                        "follower is behind the leader's log start and cannot catch up");
                    self.pause(topic, partition);
                } else {
                    // Past the leader's log end: find where the logs agree.
                    self.restart_truncation(topic, partition);
                }
                return None;
            }
            Some(e) => {
                // Fenced/unknown epoch or not leader: the image moves on; wait for it.
                debug!(%topic, partition, error = ?e, "follower fetch refused; waiting");
                self.pause(topic, partition);
                return None;
            }
        }
        if p.diverging_epoch.epoch >= 0 {
            info!(%topic, partition, epoch = p.diverging_epoch.epoch,
                end_offset = p.diverging_epoch.end_offset, "leader reports a diverging epoch");
            self.restart_truncation(topic, partition);
            return None;
        }
        let mut appended = None;
        if let Some(records) = p.records.as_ref().filter(|r| !r.is_empty()) {
            match log.append_as_follower(records) {
                Ok(r) => appended = r.map(|(_, last)| last),
                Err(e) => {
                    warn!(%topic, partition, error = %e, "follower append failed");
                    self.restart_truncation(topic, partition);
                    self.pause(topic, partition);
                    return None;
                }
            }
        }
        // The follower's high watermark: the leader's, bounded by what it holds.
        log.set_high_watermark(p.high_watermark);
        let lag = (p.high_watermark - log.log_end_offset()).max(0);
        if m::partition_series() {
            metrics::gauge!(m::REPLICA_FETCH_LAG_RECORDS, "topic" => topic.to_string(),
                "partition" => partition.to_string())
            .set(lag as f64);
        }
        appended
    }
}

/// The epoch of the last record in the log (what Kafka's follower sends as
/// `last_fetched_epoch` and asks OffsetForLeaderEpoch about). An epoch a leader
/// started without writing in it does not count.
fn last_epoch(log: &PartitionLog) -> Option<i32> {
    let leo = log.log_end_offset();
    if leo <= log.log_start_offset() {
        return None;
    }
    log.epoch_at(leo - 1)
}

/// KIP-279: where the follower's log stops agreeing with the leader, given the leader's
/// answer (`epoch`, `end_offset`) for the follower's `requested` latest epoch.
fn truncation_offset(log: &PartitionLog, requested: i32, epoch: i32, end_offset: i64) -> i64 {
    let leo = log.log_end_offset();
    if epoch < 0 || end_offset < 0 {
        // The leader knows no epoch at or below ours: only the committed part is safe.
        return log.high_watermark().min(leo);
    }
    if epoch == requested {
        return end_offset.min(leo);
    }
    // The leader's largest epoch below ours: our log agrees with it at most up to where
    // that epoch ends in both logs.
    let (own_epoch, own_end) = log.end_offset_for_epoch(epoch);
    if own_epoch == epoch {
        end_offset.min(own_end).min(leo)
    } else {
        end_offset.min(leo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{BrokerMeta, PartitionMeta, TopicMeta};

    fn image() -> MetadataImage {
        let mut img = MetadataImage::default();
        let p = |partition, leader, replicas: Vec<i32>| PartitionMeta {
            partition,
            leader,
            leader_epoch: 3,
            isr: replicas.clone(),
            replicas,
            ..Default::default()
        };
        img.topics.insert(
            "t".into(),
            TopicMeta {
                name: "t".into(),
                id: uuid::Uuid::new_v4(),
                partitions: vec![
                    p(0, 1, vec![1, 2]),
                    p(1, 2, vec![2, 1]),
                    p(2, 3, vec![3, 2]),
                    p(3, 1, vec![1]),
                    p(4, -1, vec![1, 2]),
                ],
                configs: Default::default(),
                internal: false,
            },
        );
        img.brokers.insert(
            1,
            BrokerMeta {
                id: 1,
                host: "h1".into(),
                port: 9092,
                rack: None,
                listeners: Vec::new(),
            },
        );
        img
    }

    #[test]
    fn assignments_group_followed_partitions_by_leader() {
        let a = assignments(2, &image());
        assert_eq!(a.len(), 2, "{a:?}");
        assert_eq!(a[&1].addr.as_deref(), Some("h1:9092"));
        assert_eq!(
            a[&1].partitions,
            vec![Assigned {
                topic: "t".into(),
                partition: 0,
                leader_epoch: 3
            }]
        );
        // A leader that has not registered yet has no address.
        assert_eq!(a[&3].addr, None);
        assert_eq!(a[&3].partitions.len(), 1);
        // Broker 1 leads or solely hosts everything it has except partition 1.
        let a = assignments(1, &image());
        assert_eq!(a.keys().copied().collect::<Vec<_>>(), vec![2]);
    }
}

//! The group coordinator's I/O shell: it owns one [`GroupCoordinator`] per
//! `__consumer_offsets` partition this broker leads, persists the records each state
//! machine call returns before any reply leaves, routes parked JoinGroup/SyncGroup replies
//! back to their requests, drives the timers, expires offsets and publishes group metrics.
//!
//! Ordering: a call runs under its shard's lock and appends its records to the partition
//! before the lock is released, so the log holds records in the order the state changed;
//! the wait for durability (fsync under the durable flush policy) happens after the lock
//! is released, and replies go out only once it completes. If the append fails, memory is
//! ahead of the log: the shard is dropped (its parked requests answered with an error) and
//! the next request replays the partition.
//!
//! The coordinator of a group is the leader of partition `hash(group) mod N` of
//! `__consumer_offsets`, with Kafka's hash (Java's `String.hashCode`), so a Kafka tool that
//! computes the partition of a group finds the same one.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_protocol::error::ResponseError;
use tokio::sync::{oneshot, watch, Mutex, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::records;
use super::types::{GroupConfig, Output, Record, Reply, ReplyTo};
use super::GroupCoordinator;
use crate::cluster::{Controller, MetadataImage};
use crate::config::Config;
use crate::errors::KafkaError;
use crate::metrics as m;
use crate::replica::ReplicaManager;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// How often consumer lag and group gauges are recomputed.
const METRICS_INTERVAL: Duration = Duration::from_secs(5);

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Kafka's `Utils.abs(groupId.hashCode()) % partitions`: Java's String hash over UTF-16
/// code units, with the sign bit masked off.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group_id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    (h & 0x7fff_ffff) % partitions.max(1)
}

/// One `__consumer_offsets` partition's coordinator.
struct Shard {
    partition: i32,
    /// The partition's leader epoch when this shard was loaded: a new epoch means the
    /// log may hold records another coordinator wrote, so the shard is replayed again.
    leader_epoch: i32,
    coordinator: GroupCoordinator,
    /// False once the shard was dropped; a request that waited for the lock must not use it.
    live: bool,
}

type ShardRef = Arc<Mutex<Shard>>;

pub struct GroupManager {
    config: Arc<Config>,
    node_id: i32,
    controller: Arc<Controller>,
    replicas: Arc<ReplicaManager>,
    shards: parking_lot::Mutex<HashMap<i32, ShardRef>>,
    /// Earliest timer of each shard, so the driver knows when to wake.
    deadlines: parking_lot::Mutex<HashMap<i32, u64>>,
    waiters: parking_lot::Mutex<HashMap<ReplyTo, (i32, oneshot::Sender<Reply>)>>,
    next_reply: AtomicU64,
    wake: Notify,
    /// Serialises creation of `__consumer_offsets`.
    create_lock: Mutex<()>,
    /// Generation and state last published per group, to count rebalances and to
    /// clear the previous state's gauge.
    published: parking_lot::Mutex<HashMap<String, (i32, &'static str)>>,
}

impl GroupManager {
    pub fn new(
        config: Arc<Config>,
        controller: Arc<Controller>,
        replicas: Arc<ReplicaManager>,
    ) -> Arc<GroupManager> {
        Arc::new(GroupManager {
            node_id: config.node_id,
            config,
            controller,
            replicas,
            shards: parking_lot::Mutex::new(HashMap::new()),
            deadlines: parking_lot::Mutex::new(HashMap::new()),
            waiters: parking_lot::Mutex::new(HashMap::new()),
            next_reply: AtomicU64::new(1),
            wake: Notify::new(),
            create_lock: Mutex::new(()),
            published: parking_lot::Mutex::new(HashMap::new()),
        })
    }

    fn group_config(&self) -> GroupConfig {
        let g = &self.config.groups;
        GroupConfig {
            min_session_timeout_ms: g.min_session_timeout_ms,
            max_session_timeout_ms: g.max_session_timeout_ms,
            initial_rebalance_delay_ms: g.initial_rebalance_delay_ms,
            max_size: g.max_size,
            offsets_retention_ms: g.offsets_retention_ms,
            offset_metadata_max_bytes: g.offset_metadata_max_bytes,
            consumer_session_timeout_ms: g.consumer_session_timeout_ms,
            consumer_heartbeat_interval_ms: g.consumer_heartbeat_interval_ms,
            consumer_assignors: g.consumer_assignors.clone(),
            consumer_max_size: g.consumer_max_size,
        }
    }

    /// The topics a `consumer` group may subscribe to (internal ones excluded), as the
    /// assignors see them.
    pub fn topics(&self) -> super::Topics {
        self.controller
            .image()
            .topics
            .values()
            .filter(|t| !t.internal)
            .map(|t| {
                (
                    t.name.clone(),
                    super::TopicInfo {
                        id: t.id,
                        partitions: t.partitions.len() as i32,
                    },
                )
            })
            .collect()
    }

    /// Partitions of `__consumer_offsets`: the topic's if it exists, else the setting.
    pub fn num_partitions(&self, image: &MetadataImage) -> i32 {
        image
            .topic(OFFSETS_TOPIC)
            .map_or(self.config.groups.offsets_topic_partitions, |t| {
                t.partitions.len() as i32
            })
    }

    /// Creates `__consumer_offsets` if it does not exist yet (FindCoordinator does this,
    /// as Kafka does, so a broker without groups never has the topic).
    pub async fn ensure_offsets_topic(&self) -> Result<(), KafkaError> {
        let g = &self.config.groups;
        let configs = BTreeMap::from([
            (
                "segment.bytes".to_string(),
                g.offsets_topic_segment_bytes.to_string(),
            ),
            // A rebalance of a big group writes one large metadata record.
            ("max.message.bytes".to_string(), (16 << 20).to_string()),
        ]);
        crate::internal_topics::ensure(
            &self.config,
            &self.controller,
            &self.replicas,
            &self.create_lock,
            crate::internal_topics::TopicSpec {
                name: OFFSETS_TOPIC,
                partitions: g.offsets_topic_partitions,
                replication_factor: g.offsets_topic_replication_factor,
                configs,
            },
        )
        .await
    }

    /// The coordinator shard of a group, loading (replaying) it on first use.
    ///
    /// Before `__consumer_offsets` exists (FindCoordinator creates it) no broker
    /// coordinates the group: NOT_COORDINATOR, as Kafka's coordinator runtime answers for
    /// a shard it does not host, so that clients look the coordinator up (and create the
    /// topic) instead of retrying the same broker.
    async fn shard_for(&self, group_id: &str) -> Result<ShardRef, ResponseError> {
        let image = self.controller.image();
        if image.topic(OFFSETS_TOPIC).is_none() {
            return Err(ResponseError::NotCoordinator);
        }
        let partition = partition_for(group_id, self.num_partitions(&image));
        self.shard(&image, partition).await
    }

    async fn shard(
        &self,
        image: &MetadataImage,
        partition: i32,
    ) -> Result<ShardRef, ResponseError> {
        let meta = image
            .partition(OFFSETS_TOPIC, partition)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        if meta.leader != self.node_id {
            return Err(ResponseError::NotCoordinator);
        }
        let (shard, fresh) = {
            let mut shards = self.shards.lock();
            // A shard whose leadership moved is dropped by `follow_leadership`.
            match shards.get(&partition) {
                Some(s) => (s.clone(), false),
                None => {
                    let coordinator = GroupCoordinator::new(
                        self.group_config(),
                        uuid::Uuid::new_v4().as_u64_pair().0,
                    );
                    let s = Arc::new(Mutex::new(Shard {
                        partition,
                        leader_epoch: meta.leader_epoch,
                        coordinator,
                        live: true,
                    }));
                    shards.insert(partition, s.clone());
                    (s, true)
                }
            }
        };
        if fresh {
            // Others asking meanwhile queue on this lock until the replay is done.
            let mut guard = shard.lock().await;
            if let Err(e) = self.replay(&mut guard).await {
                warn!(partition, error = %e, "cannot load {OFFSETS_TOPIC} partition");
                guard.live = false;
                self.shards.lock().remove(&partition);
                return Err(ResponseError::CoordinatorLoadInProgress);
            }
            self.note_deadline(&guard);
        }
        Ok(shard)
    }

    /// Rebuilds a shard's groups from its partition, from the log start to the log end.
    /// Not just to the high watermark: a replica that just became leader may not have
    /// heard the high watermark of the last commits it holds, and everything in the
    /// leader's log becomes committed anyway (Kafka also loads to the log end).
    async fn replay(&self, shard: &mut Shard) -> Result<(), KafkaError> {
        let started = std::time::Instant::now();
        let image = self.controller.image();
        let stored = crate::internal_topics::read_partition(
            &self.replicas,
            &image,
            OFFSETS_TOPIC,
            shard.partition,
        )
        .await?;
        let now = now_ms();
        let mut count = 0;
        for item in &stored {
            let (offset, producer_id, key, value) = match item {
                crate::internal_topics::Stored::Marker {
                    producer_id,
                    commit,
                    ..
                } => {
                    shard.coordinator.complete_txn(*producer_id, *commit, now);
                    continue;
                }
                crate::internal_topics::Stored::Record {
                    offset,
                    producer_id,
                    key,
                    value,
                } => (offset, producer_id, key, value),
            };
            match records::decode(key, value.as_deref()) {
                // A transactional offset commit waits for its transaction's marker.
                Ok(Some(r)) if producer_id.is_some() => {
                    shard.coordinator.add_pending(producer_id.unwrap_or(-1), &r);
                    count += 1;
                }
                Ok(Some(r)) => {
                    shard.coordinator.replay(&r, now);
                    count += 1;
                }
                Ok(None) => {}
                // One unreadable record must not cost every group of the partition;
                // Kafka also skips what it cannot parse.
                Err(e) => warn!(offset, error = %e, "skipping record"),
            }
        }
        debug!(
            partition = shard.partition,
            records = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded group coordinator partition"
        );
        Ok(())
    }

    /// A transaction's marker is in `partition` of `__consumer_offsets`: the producer's
    /// pending offsets there become committed or vanish. A partition not loaded here
    /// learns it from the marker when it loads.
    pub async fn complete_txn(&self, partition: i32, producer_id: i64, commit: bool) {
        let shard = self.shards.lock().get(&partition).cloned();
        if let Some(shard) = shard {
            let mut guard = shard.lock().await;
            if guard.live {
                guard
                    .coordinator
                    .complete_txn(producer_id, commit, now_ms());
            }
        }
    }

    /// A fresh token for a request that may be parked, and the receiver of its reply.
    pub fn park(&self, group_id: &str) -> (ReplyTo, oneshot::Receiver<Reply>) {
        let to = ReplyTo(self.next_reply.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        let partition = partition_for(group_id, self.num_partitions(&self.controller.image()));
        self.waiters.lock().insert(to, (partition, tx));
        (to, rx)
    }

    /// Forget a parked request whose call failed before the state machine saw it.
    pub fn unpark(&self, to: ReplyTo) {
        self.waiters.lock().remove(&to);
    }

    /// Runs one state-machine call on the group's coordinator: the records it returns are
    /// written (and made durable per the flush policy) before its replies go out. On a
    /// failed write the result is replaced by the error Kafka's coordinator answers.
    pub async fn run<R>(
        &self,
        group_id: &str,
        f: impl FnOnce(&mut GroupCoordinator, u64) -> (R, Output),
    ) -> Result<R, ResponseError> {
        let shard = self.shard_for(group_id).await?;
        let mut guard = shard.lock().await;
        if !guard.live {
            return Err(ResponseError::NotCoordinator);
        }
        let (result, out) = f(&mut guard.coordinator, now_ms());
        self.finish(&shard, guard, out).await?;
        Ok(result)
    }

    /// Read-only access to a group's coordinator (DescribeGroups, OffsetFetch).
    pub async fn read<R>(
        &self,
        group_id: &str,
        f: impl FnOnce(&GroupCoordinator) -> R,
    ) -> Result<R, ResponseError> {
        let shard = self.shard_for(group_id).await?;
        let guard = shard.lock().await;
        if !guard.live {
            return Err(ResponseError::NotCoordinator);
        }
        Ok(f(&guard.coordinator))
    }

    /// Read-only access to every shard this broker leads (ListGroups).
    pub async fn read_all<R>(&self, mut f: impl FnMut(&GroupCoordinator) -> R) -> Vec<R> {
        let image = self.controller.image();
        let mut out = Vec::new();
        if image.topic(OFFSETS_TOPIC).is_none() {
            return out;
        }
        for p in 0..self.num_partitions(&image) {
            if let Ok(shard) = self.shard(&image, p).await {
                let guard = shard.lock().await;
                if guard.live {
                    out.push(f(&guard.coordinator));
                }
            }
        }
        out
    }

    /// Write `out.records`, release the shard, wait for durability, then deliver the
    /// replies (or fail them and drop the shard).
    async fn finish(
        &self,
        shard: &ShardRef,
        guard: tokio::sync::MutexGuard<'_, Shard>,
        out: Output,
    ) -> Result<(), ResponseError> {
        let partition = guard.partition;
        let pending = self.append(partition, &out.records, out.txn);
        self.note_deadline(&guard);
        drop(guard);
        self.wake.notify_one();
        let timeout = Duration::from_millis(self.config.groups.offsets_commit_timeout_ms);
        let written = match pending {
            Ok(Some(p)) => p.complete(timeout).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                self.deliver(out.replies);
                Ok(())
            }
            Err(e) => {
                let code = coordinator_error(&e);
                warn!(partition, error = %e, "cannot write to {OFFSETS_TOPIC}; reloading the partition");
                self.deliver(
                    out.replies
                        .into_iter()
                        .map(|(to, r)| (to, error_reply(r, code)))
                        .collect(),
                );
                self.drop_shard(shard, partition).await;
                Err(code)
            }
        }
    }

    fn append(
        &self,
        partition: i32,
        records: &[Record],
        txn: Option<(i64, i16)>,
    ) -> Result<Option<crate::replica::PendingAppend>, KafkaError> {
        let encoded: Vec<_> = records.iter().map(records::encode).collect();
        let image = self.controller.image();
        let pending = crate::internal_topics::append(
            &self.replicas,
            &image,
            OFFSETS_TOPIC,
            partition,
            &encoded,
            txn,
            now_ms() as i64,
        )?;
        metrics::counter!(m::GROUP_RECORDS_WRITTEN_TOTAL).increment(records.len() as u64);
        Ok(pending)
    }

    fn deliver(&self, replies: Vec<(ReplyTo, Reply)>) {
        let mut waiters = self.waiters.lock();
        for (to, reply) in replies {
            if let Some((_, tx)) = waiters.remove(&to) {
                // The client may have gone; its reply has nowhere to go.
                let _ = tx.send(reply);
            }
        }
    }

    /// Forget a shard whose memory may be ahead of its log. Parked requests of its
    /// partition see their reply channel close and answer NOT_COORDINATOR.
    async fn drop_shard(&self, shard: &ShardRef, partition: i32) {
        shard.lock().await.live = false;
        crate::internal_topics::forget_shard(&self.shards, partition, shard);
        self.deadlines.lock().remove(&partition);
        self.waiters.lock().retain(|_, (p, _)| *p != partition);
    }

    fn note_deadline(&self, shard: &Shard) {
        let mut d = self.deadlines.lock();
        match shard.coordinator.next_deadline() {
            Some(t) => d.insert(shard.partition, t),
            None => d.remove(&shard.partition),
        };
    }

    /// Background tasks: the timer driver, offset expiry, group metrics, and loading the
    /// partitions this broker leads at start.
    pub fn start(self: &Arc<Self>, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        let me = self.clone();
        let loader = tokio::spawn(async move {
            let image = me.controller.image();
            if image.topic(OFFSETS_TOPIC).is_none() {
                return;
            }
            for p in 0..me.num_partitions(&image) {
                let _ = me.shard(&image, p).await;
            }
        });
        vec![
            loader,
            tokio::spawn(self.clone().follow_leadership(shutdown.clone())),
            tokio::spawn(self.clone().drive_timers(shutdown.clone())),
            tokio::spawn(self.clone().expire_offsets(shutdown.clone())),
            tokio::spawn(self.clone().publish_metrics(shutdown)),
        ]
    }

    /// Drops the shards of partitions this broker no longer leads (their groups now
    /// belong to another coordinator; parked requests answer NOT_COORDINATOR), and of
    /// partitions whose leader epoch moved, so they are replayed on next use.
    async fn follow_leadership(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut images = self.controller.subscribe();
        loop {
            tokio::select! {
                changed = images.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
            let image = images.borrow_and_update().clone();
            let shards: Vec<(i32, ShardRef)> = self
                .shards
                .lock()
                .iter()
                .map(|(p, s)| (*p, s.clone()))
                .collect();
            for (partition, shard) in shards {
                let epoch = shard.lock().await.leader_epoch;
                let led = crate::internal_topics::still_leads(
                    &image,
                    OFFSETS_TOPIC,
                    partition,
                    self.node_id,
                    epoch,
                );
                if !led {
                    debug!(
                        partition,
                        "no longer coordinating this {OFFSETS_TOPIC} partition"
                    );
                    self.drop_shard(&shard, partition).await;
                }
            }
        }
    }

    async fn drive_timers(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let next = self.deadlines.lock().values().min().copied();
            let sleep = match next {
                Some(t) => Duration::from_millis(t.saturating_sub(now_ms())),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => continue,
                _ = shutdown.changed() => return,
            }
            let now = now_ms();
            let due: Vec<i32> = self
                .deadlines
                .lock()
                .iter()
                .filter(|(_, t)| **t <= now)
                .map(|(p, _)| *p)
                .collect();
            for p in due {
                let shard = self.shards.lock().get(&p).cloned();
                let Some(shard) = shard else {
                    self.deadlines.lock().remove(&p);
                    continue;
                };
                let mut guard = shard.lock().await;
                if !guard.live {
                    continue;
                }
                let out = guard.coordinator.tick(now_ms());
                if !out.records.is_empty() || !out.replies.is_empty() {
                    debug!(
                        partition = p,
                        records = out.records.len(),
                        replies = out.replies.len(),
                        "group timers fired"
                    );
                }
                let _ = self.finish(&shard, guard, out).await;
            }
        }
    }

    async fn expire_offsets(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let interval =
            Duration::from_millis(self.config.groups.offsets_retention_check_interval_ms);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
            let shards: Vec<ShardRef> = self.shards.lock().values().cloned().collect();
            for shard in shards {
                let mut guard = shard.lock().await;
                if !guard.live {
                    continue;
                }
                let out = guard.coordinator.expire_offsets(now_ms());
                let n = out.records.len();
                if self.finish(&shard, guard, out).await.is_ok() && n > 0 {
                    metrics::counter!(m::GROUP_OFFSETS_EXPIRED_TOTAL).increment(n as u64);
                }
            }
        }
    }

    async fn publish_metrics(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(METRICS_INTERVAL) => {}
                _ = shutdown.changed() => return,
            }
            self.update_metrics().await;
        }
    }

    /// Group gauges and consumer lag (high watermark minus committed offset), computed
    /// here so no external lag exporter is needed.
    pub async fn update_metrics(&self) {
        let shards: Vec<ShardRef> = self.shards.lock().values().cloned().collect();
        let mut snapshot = Vec::new();
        for shard in shards {
            let guard = shard.lock().await;
            if guard.live {
                snapshot.extend(guard.coordinator.metrics_view());
            }
        }
        let mut published = self.published.lock();
        for g in snapshot {
            let group = g.group_id.clone();
            metrics::gauge!(m::GROUP_MEMBERS, "group" => group.clone()).set(g.members as f64);
            metrics::gauge!(m::GROUP_GENERATION, "group" => group.clone()).set(g.generation as f64);
            metrics::gauge!(m::GROUP_STATE, "group" => group.clone(), "state" => g.state).set(1.0);
            match published.insert(group.clone(), (g.generation, g.state)) {
                Some((generation, state)) => {
                    if g.generation > generation {
                        metrics::counter!(m::GROUP_REBALANCES_TOTAL, "group" => group.clone())
                            .increment((g.generation - generation) as u64);
                    }
                    if state != g.state {
                        metrics::gauge!(m::GROUP_STATE, "group" => group.clone(), "state" => state)
                            .set(0.0);
                    }
                }
                None => {
                    // Make the counter visible from the first scrape on.
                    metrics::counter!(m::GROUP_REBALANCES_TOTAL, "group" => group.clone())
                        .increment(0);
                }
            }
            // Without per-partition series, one series per group and topic (the sum).
            let per_partition = m::partition_series();
            let mut by_topic: std::collections::BTreeMap<String, i64> = Default::default();
            for ((topic, partition), committed) in g.offsets {
                if per_partition {
                    metrics::gauge!(m::GROUP_COMMITTED_OFFSET, "group" => group.clone(), "topic" => topic.clone(), "partition" => partition.to_string())
                        .set(committed as f64);
                }
                // The high watermark of this node's replica, led here or followed (a
                // follower's trails the leader's by one fetch round). A partition with no
                // replica here has no lag series: its committed offset is exported, and
                // `weir_partition_high_watermark` of its leader gives the lag in PromQL.
                let Some(log) = self.replicas.logs().get(&topic, partition) else {
                    continue;
                };
                let lag = (log.high_watermark() - committed).max(0);
                if per_partition {
                    metrics::gauge!(m::GROUP_LAG_RECORDS, "group" => group.clone(), "topic" => topic, "partition" => partition.to_string())
                        .set(lag as f64);
                } else {
                    *by_topic.entry(topic).or_default() += lag;
                }
            }
            for (topic, lag) in by_topic {
                metrics::gauge!(m::GROUP_LAG_RECORDS, "group" => group.clone(), "topic" => topic)
                    .set(lag as f64);
            }
        }
    }
}

/// The error Kafka's coordinators answer when writing to their internal topic failed.
pub(crate) fn coordinator_error(e: &KafkaError) -> ResponseError {
    use ResponseError as E;
    match e.code {
        c if c == E::UnknownTopicOrPartition.code()
            || c == E::NotEnoughReplicas.code()
            || c == E::NotEnoughReplicasAfterAppend.code()
            || c == E::RequestTimedOut.code() =>
        {
            E::CoordinatorNotAvailable
        }
        c if c == E::NotLeaderOrFollower.code() || c == E::KafkaStorageError.code() => {
            E::NotCoordinator
        }
        // A transactional offset commit from a fenced producer epoch.
        c if c == E::InvalidProducerEpoch.code() => E::InvalidProducerEpoch,
        c if c == E::MessageTooLarge.code()
            || c == E::RecordListTooLarge.code()
            || c == E::InvalidFetchSize.code() =>
        {
            E::InvalidCommitOffsetSize
        }
        _ => E::UnknownServerError,
    }
}

fn error_reply(reply: Reply, code: ResponseError) -> Reply {
    match reply {
        Reply::Join(j) => Reply::Join(super::types::JoinResponse::error(&j.member_id, code)),
        Reply::Sync(_) => Reply::Sync(super::types::SyncResponse::error(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_kafkas_hash() {
        // Java: Math.abs("my-group".hashCode()) % 50 etc., computed with Kafka's Utils.abs.
        assert_eq!(partition_for("", 50), 0);
        // "a".hashCode() == 97
        assert_eq!(partition_for("a", 50), 97 % 50);
        // "console-consumer-12345".hashCode() is negative in Java: -1412345905... masked.
        let h = "group"
            .encode_utf16()
            .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
        assert_eq!(h, 98629247); // "group".hashCode() in Java
        assert_eq!(partition_for("group", 50), 98629247 % 50);
        // Non-ASCII: hashed over UTF-16 units like Java.
        assert_eq!(partition_for("ä", 50), 0xe4 % 50);
        for g in ["x", "orders-consumers", "😀"] {
            let p = partition_for(g, 50);
            assert!((0..50).contains(&p));
        }
    }
}

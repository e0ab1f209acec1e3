//! The replica manager: keeps local logs in line with the metadata image and serves the
//! leader side of produce and fetch.
//!
//! Replicated partitions (replication factor > 1) follow Kafka's ISR model. For each
//! partition this broker leads, a [`LeaderState`] keeps what the followers reported in
//! their fetches (their log end offsets and when they last caught up). The high
//! watermark is the minimum log end offset of the ISR, moved here (the log's own
//! automatic high watermark is off for these partitions). ISR changes are proposed to
//! the controller as `AlterPartition`; until one commits, the high watermark counts the
//! union of the committed and the proposed ISR (Kafka's "maximal ISR"), so neither a
//! shrink nor an expansion can move it past data a counted replica lacks.
//! Partitions with one replica keep the single-node behaviour: the high watermark is
//! the log end.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::cluster::{CommandResult, Controller, MetadataCommand, MetadataImage, PartitionMeta};
use crate::config::{Config, FlushPolicy};
use crate::errors::KafkaError;
use crate::log::manager::CreateOutcome;
use crate::log::{AppendResult, LogError, LogManager, PartitionLog};

/// Kafka's `replica.lag.time.max.ms` default: a follower that has not caught up with
/// the leader's log end for this long leaves the ISR.
pub const DEFAULT_REPLICA_LAG_TIME_MAX_MS: u64 = 30_000;

pub struct ReplicaManager {
    config: Arc<Config>,
    logs: Arc<LogManager>,
    controller: Arc<Controller>,
    node_id: i32,
    me: Weak<ReplicaManager>,
    /// Serialises reconciliation (the watcher and handlers both call it).
    reconcile_lock: parking_lot::Mutex<()>,
    /// Replication state of the replicated partitions this broker leads.
    leaders: parking_lot::Mutex<HashMap<(String, i32), LeaderState>>,
    replica_lag_time_max_ms: std::sync::atomic::AtomicU64,
}

/// What a leader knows about one replicated partition it leads.
struct LeaderState {
    leader_epoch: i32,
    /// The log end offset when this broker became leader: a follower joins the ISR
    /// only once it holds everything before this leader's own writes.
    epoch_start: i64,
    replicas: Vec<i32>,
    /// The ISR as committed in metadata.
    isr: Vec<i32>,
    /// An `AlterPartition` in flight; at most one at a time.
    pending_isr: Option<Vec<i32>>,
    followers: HashMap<i32, FollowerState>,
}

/// One follower as seen from its fetches.
#[derive(Clone, Copy)]
struct FollowerState {
    /// Its log end offset (the offset it fetches from); -1 until its first fetch in
    /// this leader epoch, so that nothing it reported to an earlier leader counts.
    leo: i64,
    /// When it last had everything the leader had (Kafka's `lastCaughtUpTimeMs`).
    last_caught_up: Instant,
    last_fetch: Instant,
    /// The leader's log end offset at its previous fetch.
    last_fetch_leader_leo: i64,
}

impl LeaderState {
    /// The committed ISR plus the proposed one: every replica the high watermark must wait for.
    fn maximal_isr(&self) -> Vec<i32> {
        let mut all = self.isr.clone();
        for r in self.pending_isr.iter().flatten() {
            if !all.contains(r) {
                all.push(*r);
            }
        }
        all
    }
}

/// A validated, written append whose acknowledgement may still need to wait.
pub struct PendingAppend {
    pub log: Arc<PartitionLog>,
    pub result: AppendResult,
    pub wait_for_flush: bool,
    /// acks=all on a replicated partition: wait until the high watermark passes the
    /// append, then check the ISR still has `min.insync.replicas` members.
    wait_for_replicas: Option<ReplicaWait>,
}

struct ReplicaWait {
    replicas: Arc<ReplicaManager>,
    topic: String,
    partition: i32,
    leader_epoch: i32,
    min_isr: i32,
}

impl ReplicaManager {
    pub fn new(
        config: Arc<Config>,
        logs: Arc<LogManager>,
        controller: Arc<Controller>,
    ) -> Arc<ReplicaManager> {
        let node_id = config.node_id;
        // Not a broker setting of its own yet; honoured when given (see `set_replica_lag_time_max`).
        let lag = config
            .explicit
            .get("replica.lag.time.max.ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_REPLICA_LAG_TIME_MAX_MS);
        Arc::new_cyclic(|me| ReplicaManager {
            config,
            logs,
            controller,
            node_id,
            me: me.clone(),
            reconcile_lock: parking_lot::Mutex::new(()),
            leaders: parking_lot::Mutex::new(HashMap::new()),
            replica_lag_time_max_ms: std::sync::atomic::AtomicU64::new(lag.max(1)),
        })
    }

    /// Kafka's `replica.lag.time.max.ms`.
    pub fn set_replica_lag_time_max(&self, lag: Duration) {
        self.replica_lag_time_max_ms.store(
            (lag.as_millis() as u64).max(1),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn replica_lag_time_max(&self) -> Duration {
        Duration::from_millis(
            self.replica_lag_time_max_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn logs(&self) -> &Arc<LogManager> {
        &self.logs
    }

    pub fn controller(&self) -> &Arc<Controller> {
        &self.controller
    }

    /// Follow metadata changes until shutdown.
    pub fn start(self: &Arc<Self>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let me = self.clone();
        let mut images = self.controller.subscribe();
        tokio::spawn(async move {
            // Kafka checks for lagging followers every half `replica.lag.time.max.ms`
            // (read each time round, so a changed setting applies at once).
            let mut last_isr_check = Instant::now();
            // Logs that could not be created are retried on their backoff schedule even
            // when no metadata changes.
            let mut retry = tokio::time::interval(Duration::from_millis(500));
            retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let next_isr_check = last_isr_check + me.replica_lag_time_max() / 2;
                tokio::select! {
                    changed = images.changed() => {
                        if changed.is_err() { break; }
                        let image = images.borrow_and_update().clone();
                        let me2 = me.clone();
                        // Creating and deleting logs touches the disk.
                        let _ = tokio::task::spawn_blocking(move || me2.reconcile(&image)).await;
                    }
                    _ = retry.tick() => {
                        if me.logs.create_retry_due() {
                            let image = me.controller.image();
                            let me2 = me.clone();
                            let _ = tokio::task::spawn_blocking(move || me2.reconcile(&image)).await;
                        }
                    }
                    _ = tokio::time::sleep_until(next_isr_check.into()) => {
                        me.shrink_isrs();
                        last_isr_check = Instant::now();
                    }
                    _ = shutdown.changed() => break,
                }
            }
        })
    }

    /// Create logs for partitions this broker hosts, delete logs of topics that are gone
    /// (or were re-created with a new id), and push config changes to live logs.
    pub fn reconcile(&self, image: &MetadataImage) {
        let _guard = self.reconcile_lock.lock();
        let mut wanted = HashSet::new();
        let mut report = CreateReport::default();
        // Dynamic broker configs supply topic defaults too: a change to them reaches
        // every log here, as a topic config change does.
        let config = crate::admin::broker_configs::effective(&self.config, image, self.node_id);
        for topic in image.topics.values() {
            let cfg = config.topic_config(&topic.configs);
            for p in &topic.partitions {
                if !p.replicas.contains(&self.node_id) {
                    continue;
                }
                wanted.insert((topic.name.clone(), p.partition));
                match self.logs.get(&topic.name, p.partition) {
                    // A log whose partition.metadata was lost keeps its data and takes
                    // its id from metadata.
                    Some(log) if log.topic_id() == topic.id || log.topic_id().is_nil() => {
                        if log.topic_id().is_nil() {
                            if let Err(e) = log.adopt_topic_id(topic.id) {
                                warn!(topic = %topic.name, partition = p.partition, error = %e, "cannot record the topic id");
                            }
                        }
                        if log.config() != cfg {
                            log.update_config(cfg.clone());
                        }
                    }
                    Some(_) => {
                        info!(topic = %topic.name, "topic was re-created; dropping the old log");
                        if let Err(e) = self.logs.delete_topic(&topic.name) {
                            warn!(topic = %topic.name, error = %e, "cannot delete old topic log");
                        }
                        report.add(self.create(&topic.name, p.partition, topic.id, cfg.clone()));
                    }
                    None => {
                        report.add(self.create(&topic.name, p.partition, topic.id, cfg.clone()))
                    }
                }
            }
        }
        self.logs.retain_create_failures(&wanted);
        report.log(self.logs.unavailable_count());
        let mut gone = HashSet::new();
        for log in self.logs.all() {
            if !wanted.contains(&(log.topic().to_string(), log.partition())) {
                gone.insert(log.topic().to_string());
            }
        }
        // A partition of a live topic that no longer lists this broker was reassigned
        // away: the controller dropped it from the replicas, so its log goes.
        for log in self.logs.all() {
            let (topic, partition) = (log.topic().to_string(), log.partition());
            let moved_away = image.topic(&topic).is_some_and(|t| {
                t.id == log.topic_id()
                    && t.partitions
                        .get(partition as usize)
                        .is_some_and(|p| !p.replicas.contains(&self.node_id))
            });
            if moved_away {
                info!(%topic, partition, "replica reassigned away; removing its log");
                if let Err(e) = self.logs.delete_partition(&topic, partition) {
                    warn!(%topic, partition, error = %e, "cannot remove the reassigned log");
                }
            }
        }
        for topic in gone {
            if !image.topics.contains_key(&topic) {
                info!(%topic, "topic deleted; removing its logs");
                if let Err(e) = self.logs.delete_topic(&topic) {
                    warn!(%topic, error = %e, "cannot delete topic logs");
                }
            }
        }
        metrics::gauge!(crate::metrics::PARTITIONS).set(self.logs.all().len() as f64);
        self.sync_roles(image);
    }

    /// Bring the replication state in line with the image: who leads what at which
    /// epoch, the committed ISRs, and whether a log moves its own high watermark.
    fn sync_roles(&self, image: &MetadataImage) {
        let mut leaders = self.leaders.lock();
        let mut led = HashSet::new();
        for topic in image.topics.values() {
            for p in &topic.partitions {
                if !p.replicas.contains(&self.node_id) {
                    continue;
                }
                let Some(log) = self.logs.get(&topic.name, p.partition) else {
                    continue;
                };
                if p.replicas.len() <= 1 {
                    // Single replica: the log end is committed as soon as it is written.
                    log.set_auto_high_watermark(true);
                    continue;
                }
                log.set_auto_high_watermark(false);
                if p.leader != self.node_id {
                    continue;
                }
                let key = (topic.name.clone(), p.partition);
                led.insert(key.clone());
                let state = leaders.entry(key).or_insert_with(|| LeaderState {
                    leader_epoch: -1,
                    epoch_start: 0,
                    replicas: Vec::new(),
                    isr: Vec::new(),
                    pending_isr: None,
                    followers: HashMap::new(),
                });
                if state.leader_epoch != p.leader_epoch {
                    // A new leadership: forget what followers told an earlier leader.
                    let leo = log.log_end_offset();
                    log.assign_epoch_start(p.leader_epoch, leo);
                    let now = Instant::now();
                    *state = LeaderState {
                        leader_epoch: p.leader_epoch,
                        epoch_start: leo,
                        replicas: p.replicas.clone(),
                        isr: p.isr.clone(),
                        pending_isr: None,
                        followers: HashMap::new(),
                    };
                    for &r in p.replicas.iter().filter(|&&r| r != self.node_id) {
                        state.followers.insert(
                            r,
                            FollowerState {
                                leo: -1,
                                // ISR members get a full lag period to show up.
                                last_caught_up: now,
                                last_fetch: now,
                                last_fetch_leader_leo: -1,
                            },
                        );
                    }
                    info!(topic = %topic.name, partition = p.partition, epoch = p.leader_epoch,
                        isr = ?p.isr, "leading replicated partition");
                } else {
                    // Same leadership; the replica set may have been reassigned.
                    let now = Instant::now();
                    state.followers.retain(|r, _| p.replicas.contains(r));
                    for &r in p.replicas.iter().filter(|&&r| r != self.node_id) {
                        state.followers.entry(r).or_insert(FollowerState {
                            leo: -1,
                            last_caught_up: now,
                            last_fetch: now,
                            last_fetch_leader_leo: -1,
                        });
                    }
                    // The controller shrank the ISR itself (it fenced a member): count it
                    // with the shrinks this leader proposes (those are counted when they
                    // commit, while `pending_isr` is set). Replicas dropped by a completed
                    // reassignment are not a shrink.
                    let fenced_out = state
                        .isr
                        .iter()
                        .any(|r| !p.isr.contains(r) && p.replicas.contains(r));
                    if state.pending_isr.is_none() && fenced_out {
                        metrics::counter!(crate::metrics::ISR_SHRINKS_TOTAL).increment(1);
                        info!(topic = %topic.name, partition = p.partition, isr = ?p.isr,
                            "ISR shrunk by the controller");
                    }
                    state.replicas = p.replicas.clone();
                    state.isr = p.isr.clone();
                }
                advance_hw(self.node_id, state, &log);
            }
        }
        leaders.retain(|k, _| led.contains(k));
        drop(leaders);
        self.update_under_replicated();
    }

    fn update_under_replicated(&self) {
        let n = self
            .leaders
            .lock()
            .values()
            .filter(|s| s.isr.len() < s.replicas.len())
            .count();
        metrics::gauge!(crate::metrics::UNDER_REPLICATED_PARTITIONS).set(n as f64);
    }

    /// A follower fetched `fetch_offset` of a partition this broker leads (checked by the
    /// caller): that is its log end offset. Updates its caught-up time, proposes adding it
    /// back to the ISR once it has caught up, and moves the high watermark.
    pub fn record_follower_fetch(
        &self,
        meta: &PartitionMeta,
        topic: &str,
        log: &PartitionLog,
        replica_id: i32,
        fetch_offset: i64,
    ) -> Result<(), KafkaError> {
        if replica_id == self.node_id || !meta.replicas.contains(&replica_id) {
            return Err(KafkaError::with_message(
                ResponseError::NotLeaderOrFollower,
                format!(
                    "broker {replica_id} is not a follower of {topic}-{}",
                    meta.partition
                ),
            ));
        }
        let mut leaders = self.leaders.lock();
        let Some(state) = leaders.get_mut(&(topic.to_string(), meta.partition)) else {
            // Roles not synced with this image yet; the follower fetches again shortly.
            return Ok(());
        };
        if state.leader_epoch != meta.leader_epoch {
            return Ok(());
        }
        let now = Instant::now();
        let leader_leo = log.log_end_offset();
        let Some(f) = state.followers.get_mut(&replica_id) else {
            return Ok(());
        };
        // Kafka's rule: caught up now if it asks for the log end; or caught up as of its
        // previous fetch if it now asks for at least what the log end was then.
        if fetch_offset >= leader_leo {
            f.last_caught_up = now;
        } else if f.last_fetch_leader_leo >= 0 && fetch_offset >= f.last_fetch_leader_leo {
            f.last_caught_up = f.last_caught_up.max(f.last_fetch);
        }
        // A follower cannot hold more than the leader wrote; a larger offset is refused
        // by the read and must not move the high watermark.
        f.leo = fetch_offset.min(leader_leo);
        f.last_fetch = now;
        f.last_fetch_leader_leo = leader_leo;
        let leo = f.leo;
        let hw = log.high_watermark();
        // A fenced broker cannot join an ISR (KIP-841): a restarted follower catches up
        // before its first heartbeat unfences it, and proposing it then is refused.
        if state.pending_isr.is_none()
            && !state.isr.contains(&replica_id)
            && leo >= hw
            && leo >= state.epoch_start
            && !self
                .controller
                .image()
                .fenced_brokers
                .contains_key(&replica_id)
        {
            let mut isr = state.isr.clone();
            isr.push(replica_id);
            self.propose_isr(state, topic, meta.partition, isr);
        }
        advance_hw(self.node_id, state, log);
        Ok(())
    }

    /// Propose ISR shrinks for followers that have not caught up within
    /// `replica.lag.time.max.ms`.
    fn shrink_isrs(&self) {
        let lag = self.replica_lag_time_max();
        let now = Instant::now();
        let mut leaders = self.leaders.lock();
        for ((topic, partition), state) in leaders.iter_mut() {
            if state.pending_isr.is_some() {
                continue;
            }
            let out: Vec<i32> = state
                .isr
                .iter()
                .copied()
                .filter(|r| {
                    *r != self.node_id
                        && state
                            .followers
                            .get(r)
                            .is_some_and(|f| now.duration_since(f.last_caught_up) > lag)
                })
                .collect();
            if out.is_empty() {
                continue;
            }
            info!(%topic, partition, lagging = ?out, "followers fell behind; shrinking the ISR");
            let isr: Vec<i32> = state
                .isr
                .iter()
                .copied()
                .filter(|r| !out.contains(r))
                .collect();
            self.propose_isr(state, topic, *partition, isr);
        }
    }

    /// Send an `AlterPartition` for `isr` to the controller; the state stays pending
    /// until it is answered.
    fn propose_isr(&self, state: &mut LeaderState, topic: &str, partition: i32, isr: Vec<i32>) {
        let (Some(me), Ok(rt)) = (self.me.upgrade(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let expand = isr.len() > state.isr.len();
        state.pending_isr = Some(isr.clone());
        let cmd = MetadataCommand::AlterPartition {
            topic: topic.to_string(),
            partition,
            leader_epoch: state.leader_epoch,
            isr: isr.clone(),
        };
        let (topic, epoch) = (topic.to_string(), state.leader_epoch);
        rt.spawn(async move {
            let outcome = me.controller.propose(cmd).await;
            let committed = match &outcome {
                Ok(CommandResult::Ok) => {
                    let name = if expand {
                        crate::metrics::ISR_EXPANDS_TOTAL
                    } else {
                        crate::metrics::ISR_SHRINKS_TOTAL
                    };
                    metrics::counter!(name).increment(1);
                    info!(%topic, partition, ?isr, "ISR changed");
                    true
                }
                Ok(other) => {
                    warn!(%topic, partition, ?isr, result = ?other, "ISR change refused");
                    false
                }
                Err(e) => {
                    warn!(%topic, partition, ?isr, error = %e, "ISR change not committed");
                    false
                }
            };
            let log = me.logs.get(&topic, partition);
            let mut leaders = me.leaders.lock();
            if let Some(state) = leaders.get_mut(&(topic.clone(), partition)) {
                if state.leader_epoch == epoch {
                    state.pending_isr = None;
                    if committed {
                        // The applied ISR, not the proposed one: the same apply may have
                        // completed a reassignment and dropped replicas from it.
                        let applied = me
                            .controller
                            .image()
                            .partition(&topic, partition)
                            .filter(|p| p.leader_epoch == epoch)
                            .map(|p| p.isr.clone());
                        state.isr = applied.unwrap_or(isr);
                    }
                    if let Some(log) = log {
                        advance_hw(me.node_id, state, &log);
                    }
                }
            }
            drop(leaders);
            me.update_under_replicated();
        });
    }

    /// After a leader append: with the leader alone in the ISR the high watermark moves
    /// to the new log end at once.
    fn after_leader_append(&self, topic: &str, partition: i32, log: &PartitionLog) {
        let mut leaders = self.leaders.lock();
        if let Some(state) = leaders.get_mut(&(topic.to_string(), partition)) {
            advance_hw(self.node_id, state, log);
        }
    }

    /// Reconcile with the controller's latest image before answering an admin request.
    /// It touches the disk, so it runs off the async workers.
    pub async fn reconcile_latest(self: &Arc<Self>) {
        let me = self.clone();
        let image = self.controller.image();
        if let Err(e) = tokio::task::spawn_blocking(move || me.reconcile(&image)).await {
            warn!(error = %e, "reconciling logs with metadata failed");
        }
    }

    /// Create a partition's log (subject to the log manager's retry backoff); what
    /// changed goes into the caller's [`CreateReport`].
    fn create(
        &self,
        topic: &str,
        partition: i32,
        id: uuid::Uuid,
        cfg: crate::config::TopicConfig,
    ) -> (String, i32, CreateOutcome) {
        let (_, outcome) = self.logs.create_with_backoff(topic, partition, id, cfg);
        (topic.to_string(), partition, outcome)
    }

    /// The local log of a partition this broker leads.
    pub fn leader_log(
        &self,
        image: &MetadataImage,
        topic: &str,
        partition: i32,
    ) -> Result<(Arc<PartitionLog>, PartitionMeta), KafkaError> {
        let meta = image
            .partition(topic, partition)
            .ok_or_else(|| KafkaError::new(ResponseError::UnknownTopicOrPartition))?;
        if meta.leader != self.node_id {
            return Err(KafkaError::new(ResponseError::NotLeaderOrFollower));
        }
        if let Some(log) = self.logs.get(topic, partition) {
            return Ok((log, meta.clone()));
        }
        // Metadata got here before the watcher created the log: create this one now
        // (not a whole reconcile per request; the watcher does the rest, roles included).
        let topic_meta = image
            .topic(topic)
            .ok_or_else(|| KafkaError::new(ResponseError::UnknownTopicOrPartition))?;
        let cfg = crate::admin::broker_configs::effective(&self.config, image, self.node_id)
            .topic_config(&topic_meta.configs);
        let mut report = CreateReport::default();
        report.add(self.create(topic, partition, topic_meta.id, cfg));
        report.log(self.logs.unavailable_count());
        let log = self.logs.get(topic, partition).ok_or_else(|| {
            KafkaError::with_message(
                ResponseError::KafkaStorageError,
                format!("{topic}-{partition}: the partition log cannot be created here"),
            )
        })?;
        Ok((log, meta.clone()))
    }

    /// Check the client's view of the leader epoch (KIP-320): -1 skips the check.
    pub fn check_epoch(meta: &PartitionMeta, current_leader_epoch: i32) -> Result<(), KafkaError> {
        if current_leader_epoch < 0 || current_leader_epoch == meta.leader_epoch {
            Ok(())
        } else if current_leader_epoch < meta.leader_epoch {
            Err(KafkaError::new(ResponseError::FencedLeaderEpoch))
        } else {
            Err(KafkaError::new(ResponseError::UnknownLeaderEpoch))
        }
    }

    /// Append a produced batch as leader. The write happens now; the caller awaits
    /// [`PendingAppend::complete`] before acknowledging acks=all.
    pub fn append(
        &self,
        image: &MetadataImage,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: i16,
    ) -> Result<PendingAppend, KafkaError> {
        let (log, meta) = self.leader_log(image, topic, partition)?;
        let replicated = meta.replicas.len() > 1;
        if replicated && !self.leads_in_epoch(topic, partition, meta.leader_epoch) {
            // The log exists but the roles are not synced with this image yet. A log
            // just created (say the 50 of __consumer_offsets, written by the group
            // coordinator at once) still moves its own high watermark then, so an append
            // would count as committed, and acks=all answer, before any follower has it.
            return Err(KafkaError::with_message(
                ResponseError::NotLeaderOrFollower,
                format!("{topic}-{partition}: leadership not yet taken up"),
            ));
        }
        let min_isr = log.config().min_insync_replicas;
        if acks == -1 && (meta.isr.len() as i32) < min_isr {
            return Err(KafkaError::new(ResponseError::NotEnoughReplicas));
        }
        let result = log
            .append_as_leader(records, meta.leader_epoch)
            .map_err(|e| KafkaError::from(&e))?;
        let wait_for_flush =
            acks == -1 && log.config().flush_policy == FlushPolicy::Durable && !result.duplicate;
        if replicated {
            self.after_leader_append(topic, partition, &log);
        }
        let wait_for_replicas = match (acks == -1 && replicated, self.me.upgrade()) {
            (true, Some(replicas)) => Some(ReplicaWait {
                replicas,
                topic: topic.to_string(),
                partition,
                leader_epoch: meta.leader_epoch,
                min_isr,
            }),
            _ => None,
        };
        Ok(PendingAppend {
            log,
            result,
            wait_for_flush,
            wait_for_replicas,
        })
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Whether `sync_roles` took up the leadership of a replicated partition in this
    /// epoch (its log's high watermark is then moved by the ISR, not by appends).
    fn leads_in_epoch(&self, topic: &str, partition: i32, leader_epoch: i32) -> bool {
        self.leaders
            .lock()
            .get(&(topic.to_string(), partition))
            .is_some_and(|s| s.leader_epoch == leader_epoch)
    }
}

/// Changes in log creation during one reconcile pass, logged as one line each way: a
/// broker out of descriptors or space fails thousands of partitions at once, and one
/// line per partition (let alone per attempt) would drown everything else.
#[derive(Default)]
struct CreateReport {
    failed: usize,
    first_failure: Option<(String, i32, String)>,
    recovered: usize,
}

impl CreateReport {
    fn add(&mut self, (topic, partition, outcome): (String, i32, CreateOutcome)) {
        match outcome {
            CreateOutcome::Unchanged => {}
            CreateOutcome::Failed(error) => {
                tracing::debug!(%topic, partition, %error, "cannot create partition log");
                self.failed += 1;
                self.first_failure.get_or_insert((topic, partition, error));
            }
            CreateOutcome::Recovered { attempts } => {
                tracing::debug!(%topic, partition, attempts, "partition log created after failures");
                self.recovered += 1;
            }
        }
    }

    fn log(self, unavailable: usize) {
        if let Some((topic, partition, error)) = &self.first_failure {
            warn!(
                newly_failed = self.failed,
                unavailable,
                example = %format!("{topic}-{partition}"),
                %error,
                "cannot create partition logs; retrying with backoff, and not offering this broker as their leader meanwhile"
            );
        }
        if self.recovered > 0 {
            info!(
                recovered = self.recovered,
                unavailable, "partition logs created after failures"
            );
        }
    }
}

/// The high watermark of a led replicated partition: the minimum log end offset over
/// the maximal ISR. It only moves forward (a follower that has not fetched in this
/// epoch yet holds it where it is).
fn advance_hw(node_id: i32, state: &LeaderState, log: &PartitionLog) {
    let mut hw = log.log_end_offset();
    for r in state.maximal_isr() {
        if r == node_id {
            continue;
        }
        // A member without a known position (none yet in this epoch) pins the HW.
        let leo = state.followers.get(&r).map_or(-1, |f| f.leo);
        hw = hw.min(leo);
    }
    if hw > log.high_watermark() {
        log.set_high_watermark(hw);
    }
}

impl PendingAppend {
    /// Wait until the append may be acknowledged, bounded by the request's timeout:
    /// for acks=all on a replicated partition until the high watermark passes it (every
    /// ISR member has it), and fsynced when the policy asks for it.
    pub async fn complete(&self, timeout: Duration) -> Result<(), KafkaError> {
        if !self.wait_for_flush && self.wait_for_replicas.is_none() {
            return Ok(());
        }
        let waits = async {
            if let Some(w) = &self.wait_for_replicas {
                self.wait_for_hw(w).await?;
            }
            if self.wait_for_flush {
                self.log
                    .flush_to(self.result.last_offset)
                    .await
                    .map_err(|e| KafkaError::from(&e))?;
            }
            Ok::<(), KafkaError>(())
        };
        match tokio::time::timeout(timeout, waits).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(KafkaError::new(ResponseError::RequestTimedOut)),
        }
        if let Some(w) = &self.wait_for_replicas {
            // Kafka's DelayedProduce: the write is on the whole ISR, but the ISR may have
            // shrunk below the minimum while it waited.
            let image = w.replicas.controller.image();
            let isr = image
                .partition(&w.topic, w.partition)
                .map_or(0, |p| p.isr.len() as i32);
            if isr < w.min_isr {
                return Err(KafkaError::new(ResponseError::NotEnoughReplicasAfterAppend));
            }
        }
        Ok(())
    }

    /// Wait for the high watermark to pass the append; a leadership change on the way
    /// ends the wait with NOT_LEADER_OR_FOLLOWER (the write may be truncated away).
    ///
    /// The leadership is checked after reading the high watermark, never before: once
    /// this broker follows, its fetcher truncates the append away and then moves the
    /// high watermark to the new leader's, which can pass the append's offset with other
    /// records there. Only a high watermark read while still leading in the append's
    /// epoch (the fetcher starts after the image changes) proves the append committed.
    async fn wait_for_hw(&self, w: &ReplicaWait) -> Result<(), KafkaError> {
        let mut hw = self.log.subscribe();
        let mut images = w.replicas.controller.subscribe();
        loop {
            let passed = *hw.borrow_and_update() > self.result.last_offset;
            let still_leader = images
                .borrow_and_update()
                .partition(&w.topic, w.partition)
                .is_some_and(|p| {
                    p.leader == w.replicas.node_id && p.leader_epoch == w.leader_epoch
                });
            if !still_leader {
                return Err(KafkaError::new(ResponseError::NotLeaderOrFollower));
            }
            if passed {
                return Ok(());
            }
            tokio::select! {
                r = hw.changed() => if r.is_err() {
                    return Err(KafkaError::new(ResponseError::NotLeaderOrFollower));
                },
                r = images.changed() => if r.is_err() {
                    return Err(KafkaError::new(ResponseError::NotLeaderOrFollower));
                },
            }
        }
    }
}

/// Map a log error for callers outside the produce path.
pub fn log_error(e: &LogError) -> KafkaError {
    KafkaError::from(e)
}

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
use crate::log::{AppendResult, LogManager, PartitionLog};
use crate::replica::partition::Partition;

/// Kafka's `replica.lag.time.max.ms` default: a follower that has not caught up with
/// the leader's log end for this long leaves the ISR.
pub const DEFAULT_REPLICA_LAG_TIME_MAX_MS: u64 = 30_000;

mod isr;
mod produce;

pub use produce::complete_all;

use isr::advance_hw;

pub struct ReplicaManager {
    config: Arc<Config>,
    logs: Arc<LogManager>,
    controller: Arc<Controller>,
    node_id: i32,
    me: Weak<ReplicaManager>,
    /// Serialises reconciliation (the watcher and handlers both call it).
    reconcile_lock: parking_lot::Mutex<()>,
    /// Replication state of the replicated partitions this broker leads, each behind its
    /// own lock (a [`Partition`] carries its partition's).
    leaders: parking_lot::RwLock<HashMap<(String, i32), SharedLeaderState>>,
    replica_lag_time_max_ms: std::sync::atomic::AtomicU64,
    /// The TLS side of the inter-broker listener when it speaks TLS: followers connect to
    /// their leaders through it.
    inter_broker_tls: std::sync::OnceLock<Arc<crate::tls::TlsListener>>,
}

/// One partition's leader state, shared by the replica manager and the [`Partition`]s
/// handed to requests.
pub(in crate::replica) type SharedLeaderState = Arc<parking_lot::Mutex<LeaderState>>;

/// What a leader knows about one replicated partition it leads.
pub(in crate::replica) struct LeaderState {
    pub(in crate::replica) leader_epoch: i32,
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
        // replica.lag.time.max.ms, read from the explicit settings so tests can also set it
        // later (`set_replica_lag_time_max`).
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
            leaders: parking_lot::RwLock::new(HashMap::new()),
            replica_lag_time_max_ms: std::sync::atomic::AtomicU64::new(lag.max(1)),
            inter_broker_tls: std::sync::OnceLock::new(),
        })
    }

    /// Followers reach their leaders over TLS through this listener's settings.
    pub fn set_inter_broker_tls(&self, tls: Arc<crate::tls::TlsListener>) {
        let _ = self.inter_broker_tls.set(tls);
    }

    /// The connector followers use, when the inter-broker listener speaks TLS.
    pub fn inter_broker_connector(&self) -> Option<tokio_rustls::TlsConnector> {
        self.inter_broker_tls.get().and_then(|t| t.connector())
    }

    /// What followers authenticate with, when the inter-broker listener speaks SASL
    /// (`sasl.mechanism.inter.broker.protocol` and the broker's own JAAS credentials).
    pub fn inter_broker_sasl(&self) -> Option<crate::sasl::ClientSasl> {
        let security = &self.config.security;
        let mechanism = security.sasl.inter_broker_mechanism?;
        let listener = security.sasl.listeners.get(&security.inter_broker)?;
        let (user, password) = listener.own_credentials.get(&mechanism)?.clone();
        Some(crate::sasl::ClientSasl {
            mechanism,
            user,
            password,
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
        let mut leaders = self.leaders.write();
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
                let state = leaders.entry(key).or_insert_with(|| {
                    Arc::new(parking_lot::Mutex::new(LeaderState {
                        leader_epoch: -1,
                        epoch_start: 0,
                        replicas: Vec::new(),
                        isr: Vec::new(),
                        pending_isr: None,
                        followers: HashMap::new(),
                    }))
                });
                let mut state = state.lock();
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
                advance_hw(self.node_id, &state, &log);
            }
        }
        leaders.retain(|k, _| led.contains(k));
        drop(leaders);
        self.update_under_replicated();
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

    pub fn config(&self) -> &Arc<Config> {
        &self.config
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

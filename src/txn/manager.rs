//! The transaction coordinator's I/O shell: one [`TxnCoordinator`] per
//! `__transaction_state` partition this broker leads, loaded from the partition when
//! first used. A call runs under its shard's lock and appends the records it returns
//! before the lock is released; its answer goes out, and its markers start, only once the
//! records are durable (acks=all on the partition). When every marker of a transaction is
//! written, its Complete state is written the same way. A failed write drops the shard,
//! so the next request reloads the partition from the log; a shard whose partition's
//! leadership moves is dropped too, and its new leader's coordinator finishes what it
//! finds in Prepare states.
//!
//! The coordinator of a transactional id is the leader of partition `hash(id) mod N`,
//! with Kafka's hash, as for groups.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::coordinator::{MarkerJob, Output, TxnConfig, TxnCoordinator};
use super::markers::{MarkerWriter, Written};
use super::records;
use super::TXN_TOPIC;
use crate::cluster::{Controller, MetadataImage};
use crate::config::Config;
use crate::errors::KafkaError;
use crate::group::manager::partition_for;
use crate::internal_topics::{self, Stored, TopicSpec};
use crate::metrics as m;
use crate::replica::ReplicaManager;

fn now_ms() -> i64 {
    crate::group::manager::now_ms() as i64
}

/// One `__transaction_state` partition's coordinator.
struct Shard {
    partition: i32,
    /// The partition's leader epoch when loaded; markers carry it as the coordinator
    /// epoch.
    leader_epoch: i32,
    coordinator: TxnCoordinator,
    /// Cleared when the shard is dropped: calls that waited for its lock, and marker
    /// tasks, stop using it.
    live: Arc<AtomicBool>,
}

type ShardRef = Arc<Mutex<Shard>>;

pub struct TxnManager {
    config: Arc<Config>,
    node_id: i32,
    controller: Arc<Controller>,
    replicas: Arc<ReplicaManager>,
    markers: Arc<MarkerWriter>,
    shards: parking_lot::Mutex<HashMap<i32, ShardRef>>,
    /// Serialises creation of `__transaction_state`.
    create_lock: Mutex<()>,
}

impl TxnManager {
    pub fn new(
        config: Arc<Config>,
        controller: Arc<Controller>,
        replicas: Arc<ReplicaManager>,
        groups: Arc<crate::group::GroupManager>,
    ) -> Arc<TxnManager> {
        Arc::new(TxnManager {
            node_id: config.node_id,
            markers: Arc::new(MarkerWriter::new(
                controller.clone(),
                replicas.clone(),
                groups,
            )),
            config,
            controller,
            replicas,
            shards: parking_lot::Mutex::new(HashMap::new()),
            create_lock: Mutex::new(()),
        })
    }

    fn txn_config(&self) -> TxnConfig {
        let t = &self.config.transactions;
        TxnConfig {
            max_timeout_ms: t.max_timeout_ms,
            id_expiration_ms: t.id_expiration_ms,
        }
    }

    /// Partitions of `__transaction_state`: the topic's if it exists, else the setting.
    pub fn num_partitions(&self, image: &MetadataImage) -> i32 {
        image
            .topic(TXN_TOPIC)
            .map_or(self.config.transactions.log_partitions, |t| {
                t.partitions.len() as i32
            })
    }

    /// The `__transaction_state` partition of a transactional id.
    pub fn partition_of(&self, transactional_id: &str) -> i32 {
        partition_for(
            transactional_id,
            self.num_partitions(&self.controller.image()),
        )
    }

    /// Creates `__transaction_state` unless it exists (FindCoordinator does this).
    pub async fn ensure_topic(&self) -> Result<(), KafkaError> {
        let t = &self.config.transactions;
        let configs = BTreeMap::from([
            ("segment.bytes".to_string(), t.log_segment_bytes.to_string()),
            ("min.insync.replicas".to_string(), t.log_min_isr.to_string()),
            (
                "unclean.leader.election.enable".to_string(),
                "false".to_string(),
            ),
        ]);
        internal_topics::ensure(
            &self.config,
            &self.controller,
            &self.replicas,
            &self.create_lock,
            TopicSpec {
                name: TXN_TOPIC,
                partitions: t.log_partitions,
                replication_factor: t.log_replication_factor,
                configs,
            },
        )
        .await
    }

    /// The shard of a transactional id: NOT_COORDINATOR before the topic exists or when
    /// another broker leads its partition; COORDINATOR_LOAD_IN_PROGRESS if it cannot be
    /// loaded now (clients retry both).
    async fn shard_for(
        self: &Arc<Self>,
        transactional_id: &str,
    ) -> Result<ShardRef, ResponseError> {
        let image = self.controller.image();
        if image.topic(TXN_TOPIC).is_none() {
            return Err(ResponseError::NotCoordinator);
        }
        let partition = partition_for(transactional_id, self.num_partitions(&image));
        self.shard(&image, partition).await
    }

    /// A partition's shard, loaded on first use; a fresh load sends the markers of the
    /// transactions it finds in Prepare states.
    async fn shard(
        self: &Arc<Self>,
        image: &MetadataImage,
        partition: i32,
    ) -> Result<ShardRef, ResponseError> {
        let meta = image
            .partition(TXN_TOPIC, partition)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        if meta.leader != self.node_id {
            return Err(ResponseError::NotCoordinator);
        }
        let (shard, fresh) = {
            let mut shards = self.shards.lock();
            match shards.get(&partition) {
                Some(s) => (s.clone(), false),
                None => {
                    let s = Arc::new(Mutex::new(Shard {
                        partition,
                        leader_epoch: meta.leader_epoch,
                        coordinator: TxnCoordinator::new(self.txn_config(), meta.leader_epoch),
                        live: Arc::new(AtomicBool::new(true)),
                    }));
                    shards.insert(partition, s.clone());
                    (s, true)
                }
            }
        };
        if fresh {
            let mut guard = shard.lock().await;
            if let Err(e) = self.load(&mut guard).await {
                warn!(partition, error = %e, "cannot load {TXN_TOPIC} partition");
                guard.live.store(false, Ordering::Release);
                self.shards.lock().remove(&partition);
                return Err(ResponseError::CoordinatorLoadInProgress);
            }
            for job in guard.coordinator.pending_markers() {
                self.spawn_markers(shard.clone(), guard.live.clone(), job);
            }
        }
        Ok(shard)
    }

    async fn load(&self, shard: &mut Shard) -> Result<(), KafkaError> {
        let image = self.controller.image();
        let stored =
            internal_topics::read_partition(&self.replicas, &image, TXN_TOPIC, shard.partition)
                .await?;
        let mut count = 0;
        for item in &stored {
            let Stored::Record {
                offset, key, value, ..
            } = item
            else {
                continue;
            };
            match records::decode(key, value.as_deref()) {
                Ok(Some(r)) => {
                    shard.coordinator.replay(&r);
                    count += 1;
                }
                Ok(None) => {}
                Err(e) => warn!(offset, error = %e, "skipping record"),
            }
        }
        let pending = shard.coordinator.pending_markers();
        info!(
            partition = shard.partition,
            records = count,
            transactions_to_complete = pending.len(),
            "loaded transaction coordinator partition"
        );
        Ok(())
    }

    /// Runs one state-machine call for `transactional_id`: its records are written and
    /// made durable before its result is returned; its markers then start.
    pub async fn run<R>(
        self: &Arc<Self>,
        transactional_id: &str,
        f: impl FnOnce(&mut TxnCoordinator, i64) -> (R, Output),
    ) -> Result<R, ResponseError> {
        let shard = self.shard_for(transactional_id).await?;
        let mut guard = shard.lock().await;
        if !guard.live.load(Ordering::Acquire) {
            return Err(ResponseError::NotCoordinator);
        }
        let (result, out) = f(&mut guard.coordinator, now_ms());
        self.finish(&shard, guard, out).await?;
        Ok(result)
    }

    /// Read-only access to a transactional id's coordinator.
    pub async fn read<R>(
        self: &Arc<Self>,
        transactional_id: &str,
        f: impl FnOnce(&TxnCoordinator) -> R,
    ) -> Result<R, ResponseError> {
        let shard = self.shard_for(transactional_id).await?;
        let guard = shard.lock().await;
        if !guard.live.load(Ordering::Acquire) {
            return Err(ResponseError::NotCoordinator);
        }
        Ok(f(&guard.coordinator))
    }

    /// Read-only access to every shard this broker leads (ListTransactions).
    pub async fn read_all<R>(self: &Arc<Self>, mut f: impl FnMut(&TxnCoordinator) -> R) -> Vec<R> {
        let image = self.controller.image();
        let mut out = Vec::new();
        if image.topic(TXN_TOPIC).is_none() {
            return out;
        }
        for p in 0..self.num_partitions(&image) {
            if let Ok(shard) = self.shard(&image, p).await {
                let guard = shard.lock().await;
                if guard.live.load(Ordering::Acquire) {
                    out.push(f(&guard.coordinator));
                }
            }
        }
        out
    }

    /// Write `out.records`, release the shard, wait for durability, then start the
    /// markers (or drop the shard if the write failed).
    async fn finish(
        self: &Arc<Self>,
        shard: &ShardRef,
        guard: tokio::sync::MutexGuard<'_, Shard>,
        out: Output,
    ) -> Result<(), ResponseError> {
        let partition = guard.partition;
        let live = guard.live.clone();
        let encoded: Vec<_> = out.records.iter().map(records::encode).collect();
        let image = self.controller.image();
        let pending = internal_topics::append(
            &self.replicas,
            &image,
            TXN_TOPIC,
            partition,
            &encoded,
            None,
            now_ms(),
        );
        drop(guard);
        let timeout = Duration::from_millis(self.config.groups.offsets_commit_timeout_ms);
        let written = match pending {
            Ok(Some(p)) => p.complete(timeout).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                metrics::counter!(m::TXN_RECORDS_WRITTEN_TOTAL).increment(out.records.len() as u64);
                for job in out.markers {
                    self.spawn_markers(shard.clone(), live.clone(), job);
                }
                Ok(())
            }
            Err(e) => {
                let code = crate::group::manager::coordinator_error(&e);
                warn!(partition, error = %e, "cannot write to {TXN_TOPIC}; reloading the partition");
                self.drop_shard(shard, partition).await;
                Err(code)
            }
        }
    }

    /// Writes a job's markers in the background, then its Complete state.
    fn spawn_markers(self: &Arc<Self>, shard: ShardRef, live: Arc<AtomicBool>, job: MarkerJob) {
        let me = self.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let keep_going = || live.load(Ordering::Acquire);
            let written = me.markers.write(&job, keep_going).await;
            let Written::Done { dropped } = written else {
                return;
            };
            metrics::histogram!(m::TXN_MARKER_SECONDS).record(started.elapsed().as_secs_f64());
            let result = if job.commit { "commit" } else { "abort" };
            metrics::counter!(m::TXN_ENDED_TOTAL, "result" => result).increment(1);
            let guard = shard.lock().await;
            if !guard.live.load(Ordering::Acquire) {
                return;
            }
            let mut guard = guard;
            for tp in &dropped {
                guard.coordinator.drop_partition(&job.transactional_id, tp);
            }
            let out = guard.coordinator.markers_written(&job, now_ms());
            debug!(transactional_id = %job.transactional_id, result, "transaction complete");
            let _ = me.finish(&shard, guard, out).await;
        });
    }

    /// Forget a shard whose memory may be ahead of its log, or whose partition moved.
    async fn drop_shard(&self, shard: &ShardRef, partition: i32) {
        shard.lock().await.live.store(false, Ordering::Release);
        internal_topics::forget_shard(&self.shards, partition, shard);
    }

    /// Background tasks: loading the partitions this broker leads (finishing the
    /// transactions they left in Prepare states), following leadership, and the timer
    /// that aborts timed-out transactions and expires idle ids.
    pub fn start(self: &Arc<Self>, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        vec![
            tokio::spawn(self.clone().follow_leadership(shutdown.clone())),
            tokio::spawn(self.clone().drive_timers(shutdown)),
        ]
    }

    /// Loads the shards of partitions this broker newly leads (their pending markers are
    /// sent again) and drops those it no longer leads.
    async fn follow_leadership(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut images = self.controller.subscribe();
        loop {
            let image = images.borrow_and_update().clone();
            self.reconcile(&image).await;
            tokio::select! {
                changed = images.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn reconcile(self: &Arc<Self>, image: &MetadataImage) {
        let shards: Vec<(i32, ShardRef)> = self
            .shards
            .lock()
            .iter()
            .map(|(p, s)| (*p, s.clone()))
            .collect();
        for (partition, shard) in shards {
            let epoch = shard.lock().await.leader_epoch;
            if !internal_topics::still_leads(image, TXN_TOPIC, partition, self.node_id, epoch) {
                debug!(
                    partition,
                    "no longer coordinating this {TXN_TOPIC} partition"
                );
                self.drop_shard(&shard, partition).await;
            }
        }
        let Some(topic) = image.topic(TXN_TOPIC) else {
            return;
        };
        for p in &topic.partitions {
            if p.leader == self.node_id && !self.shards.lock().contains_key(&p.partition) {
                // Loading finishes the transactions the previous coordinator left.
                let _ = self.shard(image, p.partition).await;
            }
        }
    }

    async fn drive_timers(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let interval = Duration::from_millis(self.config.transactions.abort_check_interval_ms);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
            let shards: Vec<ShardRef> = self.shards.lock().values().cloned().collect();
            let mut ongoing = 0usize;
            for shard in shards {
                let mut guard = shard.lock().await;
                if !guard.live.load(Ordering::Acquire) {
                    continue;
                }
                let out = guard.coordinator.tick(now_ms());
                let timed_out = out.markers.len();
                ongoing += guard
                    .coordinator
                    .all()
                    .filter(|t| t.state == super::TxnState::Ongoing)
                    .count();
                if self.finish(&shard, guard, out).await.is_ok() && timed_out > 0 {
                    metrics::counter!(m::TXN_TIMED_OUT_TOTAL).increment(timed_out as u64);
                }
            }
            metrics::gauge!(m::TXN_ONGOING).set(ongoing as f64);
        }
    }
}

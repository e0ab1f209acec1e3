//! The replica manager: keeps local logs in line with the metadata image and serves the
//! leader side of produce and fetch.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::cluster::{Controller, MetadataImage, PartitionMeta};
use crate::config::{Config, FlushPolicy};
use crate::errors::KafkaError;
use crate::log::{AppendResult, LogError, LogManager, PartitionLog};

pub struct ReplicaManager {
    config: Arc<Config>,
    logs: Arc<LogManager>,
    controller: Arc<Controller>,
    node_id: i32,
    /// Serialises reconciliation (the watcher and handlers both call it).
    reconcile_lock: parking_lot::Mutex<()>,
}

/// A validated, written append whose acknowledgement may still need to wait.
pub struct PendingAppend {
    pub log: Arc<PartitionLog>,
    pub result: AppendResult,
    pub wait_for_flush: bool,
}

impl ReplicaManager {
    pub fn new(
        config: Arc<Config>,
        logs: Arc<LogManager>,
        controller: Arc<Controller>,
    ) -> Arc<ReplicaManager> {
        let node_id = config.node_id;
        Arc::new(ReplicaManager {
            config,
            logs,
            controller,
            node_id,
            reconcile_lock: parking_lot::Mutex::new(()),
        })
    }

    /// Follow metadata changes until shutdown.
    pub fn start(self: &Arc<Self>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let me = self.clone();
        let mut images = self.controller.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = images.changed() => {
                        if changed.is_err() { break; }
                        let image = images.borrow_and_update().clone();
                        let me2 = me.clone();
                        // Creating and deleting logs touches the disk.
                        let _ = tokio::task::spawn_blocking(move || me2.reconcile(&image)).await;
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
        for topic in image.topics.values() {
            let cfg = self.config.topic_config(&topic.configs);
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
                        self.create(&topic.name, p.partition, topic.id, cfg.clone());
                    }
                    None => self.create(&topic.name, p.partition, topic.id, cfg.clone()),
                }
            }
        }
        let mut gone = HashSet::new();
        for log in self.logs.all() {
            if !wanted.contains(&(log.topic().to_string(), log.partition())) {
                gone.insert(log.topic().to_string());
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

    fn create(&self, topic: &str, partition: i32, id: uuid::Uuid, cfg: crate::config::TopicConfig) {
        if let Err(e) = self.logs.get_or_create(topic, partition, id, cfg) {
            warn!(%topic, partition, error = %e, "cannot create partition log");
        }
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
        // Metadata got here before the watcher created the log.
        self.reconcile(image);
        let log = self
            .logs
            .get(topic, partition)
            .ok_or_else(|| KafkaError::new(ResponseError::KafkaStorageError))?;
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
        records: BytesMut,
        acks: i16,
    ) -> Result<PendingAppend, KafkaError> {
        let (log, meta) = self.leader_log(image, topic, partition)?;
        let min_isr = log.config().min_insync_replicas;
        if acks == -1 && (meta.isr.len() as i32) < min_isr {
            return Err(KafkaError::new(ResponseError::NotEnoughReplicas));
        }
        let result = log
            .append_as_leader(records, meta.leader_epoch)
            .map_err(|e| KafkaError::from(&e))?;
        let wait_for_flush =
            acks == -1 && log.config().flush_policy == FlushPolicy::Durable && !result.duplicate;
        Ok(PendingAppend {
            log,
            result,
            wait_for_flush,
        })
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }
}

impl PendingAppend {
    /// Wait until the append may be acknowledged (fsynced when the policy asks for it),
    /// bounded by the request's timeout.
    pub async fn complete(&self, timeout: Duration) -> Result<(), KafkaError> {
        if !self.wait_for_flush {
            return Ok(());
        }
        match tokio::time::timeout(timeout, self.log.flush_to(self.result.last_offset)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(KafkaError::from(&e)),
            Err(_) => Err(KafkaError::new(ResponseError::RequestTimedOut)),
        }
    }
}

/// Map a log error for callers outside the produce path.
pub fn log_error(e: &LogError) -> KafkaError {
    KafkaError::from(e)
}

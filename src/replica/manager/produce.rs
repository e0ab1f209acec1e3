//! The produce side: the leader's log of a partition after the epoch checks, appends with
//! the acks they ask for, and the wait an acks=all append makes for the in-sync replicas
//! (and the fsync, with the durable policy).

use super::*;
use crate::log::batch::control::TxnMarker;

impl ReplicaManager {
    /// A partition this broker leads, for reading: never creates its log (a log the
    /// replica manager has not created yet answers NOT_LEADER_OR_FOLLOWER, a log that
    /// cannot be created here KAFKA_STORAGE_ERROR; clients retry both).
    pub fn leader(
        &self,
        image: &MetadataImage,
        topic: &str,
        partition: i32,
    ) -> Result<Partition, KafkaError> {
        let meta = self.leader_meta(image, topic, partition)?;
        match self.logs.get(topic, partition) {
            Some(log) => Ok(self.partition(topic, log, meta)),
            None if self
                .logs
                .unavailable()
                .contains(&(topic.to_string(), partition)) =>
            {
                Err(unavailable(topic, partition))
            }
            None => Err(KafkaError::with_message(
                ResponseError::NotLeaderOrFollower,
                format!("{topic}-{partition}: leadership not yet taken up"),
            )),
        }
    }

    /// A partition this broker leads, for writing (produce, a coordinator's appends):
    /// when metadata got here before the watcher created the log, this one is created
    /// now (not a whole reconcile per request; the watcher does the rest, roles included).
    pub fn leader_for_write(
        &self,
        image: &MetadataImage,
        topic: &str,
        partition: i32,
    ) -> Result<Partition, KafkaError> {
        let meta = self.leader_meta(image, topic, partition)?;
        if let Some(log) = self.logs.get(topic, partition) {
            return Ok(self.partition(topic, log, meta));
        }
        let topic_meta = image
            .topic(topic)
            .ok_or_else(|| KafkaError::new(ResponseError::UnknownTopicOrPartition))?;
        let cfg = crate::admin::broker_configs::effective(&self.config, image, self.node_id)
            .topic_config(&topic_meta.configs);
        let mut report = CreateReport::default();
        report.add(self.create(topic, partition, topic_meta.id, cfg));
        report.log(self.logs.unavailable_count());
        let log = self
            .logs
            .get(topic, partition)
            .ok_or_else(|| unavailable(topic, partition))?;
        Ok(self.partition(topic, log, meta))
    }

    fn leader_meta(
        &self,
        image: &MetadataImage,
        topic: &str,
        partition: i32,
    ) -> Result<PartitionMeta, KafkaError> {
        let meta = image
            .partition(topic, partition)
            .ok_or_else(|| KafkaError::new(ResponseError::UnknownTopicOrPartition))?;
        if meta.leader != self.node_id {
            return Err(KafkaError::new(ResponseError::NotLeaderOrFollower));
        }
        Ok(meta.clone())
    }

    fn partition(&self, topic: &str, log: Arc<PartitionLog>, meta: PartitionMeta) -> Partition {
        let leader = self
            .leaders
            .read()
            .get(&(topic.to_string(), meta.partition))
            .cloned();
        Partition::new(topic, log, meta, leader)
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
        self.append_with(image, topic, partition, acks, |log, leader_epoch| {
            log.append_as_leader(records, leader_epoch)
        })
    }

    /// A coordinator's transactional batch (no sequence; only its epoch is checked),
    /// with acks=all.
    pub fn append_as_coordinator(
        &self,
        image: &MetadataImage,
        topic: &str,
        partition: i32,
        records: Bytes,
    ) -> Result<PendingAppend, KafkaError> {
        self.append_with(image, topic, partition, -1, |log, leader_epoch| {
            log.append_as_coordinator(records, leader_epoch)
        })
    }

    /// Write a transaction marker for `producer_id` as leader (WriteTxnMarkers), with
    /// acks=all as Kafka's coordinator asks: the caller awaits
    /// [`PendingAppend::complete`] before reporting it written.
    pub fn append_marker(
        &self,
        image: &MetadataImage,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        marker: TxnMarker,
    ) -> Result<PendingAppend, KafkaError> {
        self.append_with(image, topic, partition, -1, |log, leader_epoch| {
            log.append_marker(producer_id, producer_epoch, marker, leader_epoch)
        })
    }

    /// The leader's write, `write(log, leader epoch)`, after the leadership and ISR
    /// checks, and what the caller then waits for.
    fn append_with(
        &self,
        image: &MetadataImage,
        topic: &str,
        partition: i32,
        acks: i16,
        write: impl FnOnce(&PartitionLog, i32) -> Result<AppendResult, crate::log::LogError>,
    ) -> Result<PendingAppend, KafkaError> {
        let p = self.leader_for_write(image, topic, partition)?;
        let (log, meta) = (p.log().clone(), p.meta());
        let replicated = p.is_replicated();
        if replicated && !p.leads_in_epoch() {
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
        let result = write(&log, meta.leader_epoch).map_err(|e| KafkaError::from(&e))?;
        let wait_for_flush =
            acks == -1 && log.config().flush_policy == FlushPolicy::Durable && !result.duplicate;
        if replicated {
            self.after_leader_append(&p);
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
}

/// A log this broker should have but cannot create (its directory is offline or full).
fn unavailable(topic: &str, partition: i32) -> KafkaError {
    KafkaError::with_message(
        ResponseError::KafkaStorageError,
        format!("{topic}-{partition}: the partition log cannot be created here"),
    )
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
    pub(super) async fn wait_for_hw(&self, w: &ReplicaWait) -> Result<(), KafkaError> {
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

/// Kafka's produce purgatory (`DelayedProduce`) for one request: waits for every
/// partition's append at once, each bounded by the request's timeout, and gives the
/// outcomes in the order of `appends` (refusals pass through as they are).
pub async fn complete_all(
    appends: Vec<Result<PendingAppend, KafkaError>>,
    timeout: Duration,
) -> Vec<Result<AppendResult, KafkaError>> {
    let _purgatory = crate::metrics::InFlight::new(crate::metrics::PRODUCE_PURGATORY_SIZE);
    futures::future::join_all(appends.into_iter().map(|append| async move {
        let append = append?;
        append.complete(timeout).await?;
        Ok(append.result)
    }))
    .await
}

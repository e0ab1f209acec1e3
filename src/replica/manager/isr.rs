//! The in-sync replica set of partitions this broker leads: follower fetches move
//! follower offsets and the high watermark and propose ISR expansions, followers that
//! fall behind are shrunk out, under-replicated partitions are counted.

use super::*;

impl ReplicaManager {
    pub(super) fn update_under_replicated(&self) {
        let n = self
            .leaders
            .read()
            .values()
            .filter(|s| {
                let s = s.lock();
                s.isr.len() < s.replicas.len()
            })
            .count();
        metrics::gauge!(crate::metrics::UNDER_REPLICATED_PARTITIONS).set(n as f64);
    }

    /// A follower fetched `fetch_offset` of a partition this broker leads (checked by the
    /// caller): that is its log end offset. Updates its caught-up time, proposes adding it
    /// back to the ISR once it has caught up, and moves the high watermark.
    pub fn record_follower_fetch(
        &self,
        partition: &Partition,
        replica_id: i32,
        fetch_offset: i64,
    ) -> Result<(), KafkaError> {
        let (meta, topic, log) = (partition.meta(), partition.topic(), partition.log());
        if replica_id == self.node_id || !meta.replicas.contains(&replica_id) {
            return Err(KafkaError::with_message(
                ResponseError::NotLeaderOrFollower,
                format!(
                    "broker {replica_id} is not a follower of {topic}-{}",
                    meta.partition
                ),
            ));
        }
        let Some(state) = partition.leader_state() else {
            // Roles not synced with this image yet; the follower fetches again shortly.
            return Ok(());
        };
        let mut state = state.lock();
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
            self.propose_isr(&mut state, topic, meta.partition, isr);
        }
        advance_hw(self.node_id, &state, log);
        Ok(())
    }

    /// Propose ISR shrinks for followers that have not caught up within
    /// `replica.lag.time.max.ms`.
    pub(super) fn shrink_isrs(&self) {
        let lag = self.replica_lag_time_max();
        let now = Instant::now();
        let leaders = self.leaders.read();
        for ((topic, partition), state) in leaders.iter() {
            let mut state = state.lock();
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
            self.propose_isr(&mut state, topic, *partition, isr);
        }
    }

    /// Send an `AlterPartition` for `isr` to the controller; the state stays pending
    /// until it is answered.
    pub(super) fn propose_isr(
        &self,
        state: &mut LeaderState,
        topic: &str,
        partition: i32,
        isr: Vec<i32>,
    ) {
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
            let state = me.leaders.read().get(&(topic.clone(), partition)).cloned();
            if let Some(state) = state {
                let mut state = state.lock();
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
                        advance_hw(me.node_id, &state, &log);
                    }
                }
            }
            me.update_under_replicated();
        });
    }

    /// After a leader append: with the leader alone in the ISR the high watermark moves
    /// to the new log end at once.
    pub(super) fn after_leader_append(&self, partition: &Partition) {
        if let Some(state) = partition.leader_state() {
            advance_hw(self.node_id, &state.lock(), partition.log());
        }
    }
}

/// The high watermark of a led replicated partition: the minimum log end offset over
/// the maximal ISR. It only moves forward (a follower that has not fetched in this
/// epoch yet holds it where it is).
pub(super) fn advance_hw(node_id: i32, state: &LeaderState, log: &PartitionLog) {
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

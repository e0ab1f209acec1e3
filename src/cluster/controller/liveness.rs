//! Broker liveness as the controller sees it: heartbeats (sent by every broker, answered
//! by the leader, which unfences a broker once it has caught up), fencing of brokers
//! whose heartbeats stop, and the controlled shutdown a stopping broker asks for.

use super::*;

impl Controller {
    /// The leader's side of a broker heartbeat. A fenced broker is unfenced once it has
    /// applied the metadata the leader had applied when it first heard from it again
    /// (Kafka's rule), so that it never serves as leader from a stale image.
    pub(super) async fn on_heartbeat(&self, broker_id: i32, applied: u64) -> Response {
        let (is_leader, leader, term, leader_applied) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            (
                m.state == ServerState::Leader,
                m.current_leader,
                m.current_term,
                m.last_applied.index().unwrap_or(0),
            )
        };
        if !is_leader {
            return Response::NotLeader { leader };
        }
        let img = self.image();
        let target = {
            let mut lv = self.liveness.lock();
            lv.last_seen.insert(broker_id, Instant::now());
            if img.fenced_brokers.contains_key(&broker_id) {
                Some(*lv.catch_up.entry(broker_id).or_insert(leader_applied))
            } else {
                lv.catch_up.remove(&broker_id);
                None
            }
        };
        if img.brokers.contains_key(&broker_id) {
            return Response::Heartbeat { registered: true };
        }
        let Some(target) = target else {
            return Response::Heartbeat { registered: false };
        };
        if applied < target {
            tracing::debug!(
                broker_id,
                applied,
                target,
                "fenced broker still catching up"
            );
            return Response::Heartbeat { registered: true };
        }
        tracing::info!(broker_id, "broker heartbeats again; unfencing");
        match self
            .propose_as_leader(term, MetadataCommand::UnfenceBroker { id: broker_id })
            .await
        {
            Ok(_) => Response::Heartbeat { registered: true },
            Err(e) => Response::Error(e.to_string()),
        }
    }

    /// Heartbeat the controller every `broker.heartbeat.interval.ms` on behalf of the
    /// broker `me` (registered already), registering it again if the controller does not
    /// know it. A no-op without a quorum: a single node has no one to fence it.
    pub fn start_heartbeats(self: &Arc<Self>, me: BrokerMeta) {
        let Some(q) = &self.quorum else {
            return;
        };
        let interval = q.heartbeat_interval;
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(ctl) = weak.upgrade() else {
                    return;
                };
                ctl.heartbeat_once(&me).await;
            }
        });
        if let Some(old) = self.heartbeats.lock().replace(task) {
            old.abort();
        }
    }

    pub(super) async fn heartbeat_once(&self, me: &BrokerMeta) {
        let (leader, applied) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            (m.current_leader, m.last_applied.index().unwrap_or(0))
        };
        let req = Request::BrokerHeartbeat {
            broker_id: me.id,
            applied,
        };
        let resp = match leader {
            None => return,
            Some(l) if l == self.node_id => self.on_heartbeat(me.id, applied).await,
            Some(l) => match self.call_leader(l, req).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(leader = l, error = %e, "heartbeat not delivered");
                    return;
                }
            },
        };
        match resp {
            Response::Heartbeat { registered: true } => {}
            Response::Heartbeat { registered: false } => {
                tracing::info!(
                    broker_id = me.id,
                    "controller does not know this broker; registering"
                );
                if let Err(e) = self
                    .propose(MetadataCommand::RegisterBroker(me.clone()))
                    .await
                {
                    tracing::warn!(error = %e, "broker registration failed");
                }
            }
            other => tracing::debug!(answer = ?other, "heartbeat not accepted"),
        }
    }

    /// Stop heartbeating and ask the controller to move this broker's leaderships away
    /// (`ControlledShutdown`), bounded in time. A no-op without a quorum.
    pub async fn controlled_shutdown(&self, broker_id: i32) {
        if self.quorum.is_none() {
            return;
        }
        if let Some(task) = self.heartbeats.lock().take() {
            task.abort();
        }
        let cmd = MetadataCommand::ControlledShutdown { id: broker_id };
        match tokio::time::timeout(CONTROLLED_SHUTDOWN_TIMEOUT, self.propose(cmd)).await {
            Ok(Ok(CommandResult::Err(e))) => {
                tracing::warn!(error = %e, "controlled shutdown refused")
            }
            Ok(Ok(_)) => tracing::info!("controlled shutdown: leaderships moved away"),
            Ok(Err(e)) => tracing::warn!(error = %e, "controlled shutdown failed"),
            Err(_) => tracing::warn!("controlled shutdown timed out; stopping anyway"),
        }
    }
}

/// On the leader, fence every live broker that has not heartbeaten for the session
/// timeout. Runs on every quorum node and acts only while it leads.
pub(super) async fn fence_loop(weak: Weak<Controller>) {
    let Some(session) = weak
        .upgrade()
        .and_then(|c| c.quorum.as_ref().map(|q| q.session_timeout))
    else {
        return;
    };
    let period = (session / 4).clamp(Duration::from_millis(50), Duration::from_millis(500));
    loop {
        tokio::time::sleep(period).await;
        let Some(ctl) = weak.upgrade() else {
            return;
        };
        let (state, term) = {
            let m = ctl.raft.metrics();
            let m = m.borrow();
            (m.state, m.current_term)
        };
        if state != ServerState::Leader {
            ctl.liveness.lock().term = None;
            continue;
        }
        let now = Instant::now();
        let img = ctl.image();
        let expired: Vec<i32> = {
            let mut lv = ctl.liveness.lock();
            if lv.term != Some(term) {
                // New leadership: no history, so everyone starts a fresh session now.
                lv.term = Some(term);
                lv.last_seen.clear();
                lv.catch_up.clear();
            }
            img.brokers
                .keys()
                .copied()
                .filter(|id| {
                    // A broker first seen now (just registered) gets a full session.
                    let seen = *lv.last_seen.entry(*id).or_insert(now);
                    now.duration_since(seen) > session
                })
                .collect()
        };
        for id in expired {
            tracing::warn!(
                broker_id = id,
                ?session,
                "broker session expired; fencing it"
            );
            let fence = MetadataCommand::FenceBroker { id };
            if let Err(e) = ctl.propose_as_leader(term, fence).await {
                tracing::warn!(broker_id = id, error = %e, "fencing failed");
            }
        }
    }
}

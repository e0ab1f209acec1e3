//! Who takes part in the metadata quorum: joining as a learner, becoming or ceasing to
//! be a voter, leaving for good, and the quorum's state for DescribeQuorum.
//!
//! Kafka's KIP-853 mapped onto openraft. A node started with `controller.quorum.voters`
//! that does not list it joins as an openraft *learner* (Kafka's observer): it receives
//! and applies the metadata log, so it can be a broker, but it never votes.
//! AddRaftVoter promotes a learner to voter; RemoveRaftVoter demotes a voter back to
//! learner (it keeps its metadata and stays a broker); UnregisterBroker, once the node
//! is gone, forgets its broker registration and drops it from the learners.
//!
//! Every change runs on the Raft leader (other nodes forward it) and is one openraft
//! membership change, which openraft commits through joint consensus. The checks here
//! give Kafka's errors before openraft would give its own: DUPLICATE_VOTER,
//! VOTER_NOT_FOUND, and no removal of the last voter.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, LogIdOptionExt, ServerState};
use serde::{Deserialize, Serialize};

use super::controller::QuorumConfig;
use super::rpc::{Request, Response, RpcClient, RpcError};
use super::types::{NodeId, Raft};
use super::{ClusterError, Controller, MetadataImage};

/// One attempt to reach a voter while joining.
const JOIN_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a membership change keeps looking for a leader, or waits out another change.
const QUORUM_CHANGE_TIMEOUT: Duration = Duration::from_secs(15);

/// A change of the quorum's membership, executed by the Raft leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum QuorumChange {
    /// A node not in the membership asks to follow the metadata log; `addr` is its
    /// CONTROLLER listener as the others should dial it. A node already in the
    /// membership keeps its role (a restarted learner or voter asks again harmlessly).
    AddLearner { id: NodeId, addr: String },
    /// AddRaftVoter: the learner `id` becomes a voter.
    AddVoter { id: NodeId },
    /// RemoveRaftVoter: the voter `id` becomes a learner.
    RemoveVoter { id: NodeId },
    /// UnregisterBroker: the learner `id` leaves the membership (no-op if absent).
    RemoveLearner { id: NodeId },
}

/// Why a change was refused; each maps to one Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum QuorumRefusal {
    #[error("node {0} is already a voter")]
    DuplicateVoter(NodeId),
    #[error("{0}")]
    VoterNotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// This node stopped leading while the change was on its way.
    #[error("this node is not the metadata leader")]
    NotLeader,
    /// Another membership change is still being committed.
    #[error("another change of the quorum is in progress; retry")]
    InProgress,
    #[error("{0}")]
    Failed(String),
}

/// The quorum as the leader sees it (DescribeQuorum).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuorumStatus {
    pub leader: NodeId,
    pub term: u64,
    /// The last index the leader applied (committed; Kafka's high watermark of the
    /// metadata log).
    pub committed: Option<u64>,
    /// Voters and learners: id → (CONTROLLER address, last log index replicated to it).
    pub voters: BTreeMap<NodeId, (String, Option<u64>)>,
    pub learners: BTreeMap<NodeId, (String, Option<u64>)>,
}

/// Execute `change` on this node, which must be the leader; `image` is its metadata.
pub async fn apply(
    raft: &Raft,
    image: &MetadataImage,
    change: &QuorumChange,
) -> Result<(), QuorumRefusal> {
    let membership = {
        let m = raft.metrics();
        let m = m.borrow();
        if m.state != ServerState::Leader {
            return Err(QuorumRefusal::NotLeader);
        }
        m.membership_config.membership().clone()
    };
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let known = |id: &NodeId| membership.get_node(id).is_some();
    let result = match change {
        QuorumChange::AddLearner { id, addr } => {
            if known(id) {
                return Ok(());
            }
            tracing::info!(node_id = id, %addr, "adding a metadata learner");
            raft.add_learner(*id, BasicNode::new(addr), false).await
        }
        QuorumChange::AddVoter { id } => {
            if voters.contains(id) {
                return Err(QuorumRefusal::DuplicateVoter(*id));
            }
            if !known(id) {
                return Err(QuorumRefusal::Invalid(format!(
                    "node {id} does not follow the metadata log: start it with \
                     controller.quorum.voters naming the current voters, then add it"
                )));
            }
            let addr = membership
                .get_node(id)
                .map(|n| n.addr.as_str())
                .unwrap_or("");
            let broker = i32::try_from(*id)
                .ok()
                .and_then(|b| image.registered_broker(b));
            let Some(broker) = broker else {
                return Err(QuorumRefusal::Invalid(format!(
                    "node {id} has not registered as a broker yet; retry once it has started"
                )));
            };
            // Controllers register their CONTROLLER endpoint; broker-only nodes do not.
            if !broker
                .listeners
                .iter()
                .any(|l| format!("{}:{}", l.host, l.port) == addr)
            {
                return Err(QuorumRefusal::Invalid(format!(
                    "node {id} is broker-only (process.roles=broker) and cannot vote; \
                     restart it with process.roles=broker,controller first"
                )));
            }
            tracing::info!(node_id = id, "promoting a learner to metadata voter");
            let add = ChangeMembers::AddVoterIds(BTreeSet::from([*id]));
            raft.change_membership(add, true).await
        }
        QuorumChange::RemoveVoter { id } => {
            if !voters.contains(id) {
                return Err(QuorumRefusal::VoterNotFound(format!(
                    "node {id} is not a voter (voters: {voters:?})"
                )));
            }
            if voters.len() == 1 {
                return Err(QuorumRefusal::Invalid(format!(
                    "node {id} is the only voter; add another before removing it"
                )));
            }
            tracing::info!(node_id = id, "demoting a metadata voter to learner");
            let remove = ChangeMembers::RemoveVoters(BTreeSet::from([*id]));
            let r = raft.change_membership(remove, true).await;
            if r.is_ok() && raft.metrics().borrow().id == *id {
                hand_over_leadership(raft);
            }
            r
        }
        QuorumChange::RemoveLearner { id } => {
            if voters.contains(id) {
                return Err(QuorumRefusal::Invalid(format!(
                    "node {id} is a voter of the metadata quorum; remove it as a voter first"
                )));
            }
            if !known(id) {
                return Ok(());
            }
            tracing::info!(node_id = id, "removing a metadata learner");
            let remove = ChangeMembers::RemoveNodes(BTreeSet::from([*id]));
            raft.change_membership(remove, false).await
        }
    };
    match result {
        Ok(_) => Ok(()),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
            Err(QuorumRefusal::NotLeader)
        }
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(_),
        ))) => Err(QuorumRefusal::InProgress),
        Err(e) => Err(QuorumRefusal::Failed(e.to_string())),
    }
}

/// This leader is no longer a voter, but openraft 0.9 keeps a leader that is still in
/// the membership (as a learner) leading. Stop its heartbeats so that the voters' leader
/// lease runs out and they elect one of themselves; the higher term then turns this
/// node into a follower, and heartbeats are switched back on for the day it leads
/// again. (Dropping it from the membership instead, so that openraft steps it down,
/// goes through openraft's non-member-leader state, where its core has panicked.)
fn hand_over_leadership(raft: &Raft) {
    tracing::info!("no longer a metadata voter: handing the leadership over");
    raft.runtime_config().heartbeat(false);
    let raft = raft.clone();
    tokio::spawn(async move {
        let _ = raft
            .wait(Some(Duration::from_secs(30)))
            .metrics(|m| m.state != ServerState::Leader, "stepped down")
            .await;
        raft.runtime_config().heartbeat(true);
    });
}

/// The quorum's state; `None` unless this node leads (only the leader knows how far
/// each member has replicated).
pub fn status(raft: &Raft) -> Option<QuorumStatus> {
    let m = raft.metrics();
    let m = m.borrow();
    if m.state != ServerState::Leader {
        return None;
    }
    let membership = m.membership_config.membership();
    let matched = |id: NodeId| -> Option<u64> {
        if id == m.id {
            return m.last_log_index;
        }
        m.replication
            .as_ref()
            .and_then(|r| r.get(&id))
            .and_then(|l| l.index())
    };
    let entry = |id: NodeId| {
        let addr = membership
            .get_node(&id)
            .map(|n| n.addr.clone())
            .unwrap_or_default();
        (id, (addr, matched(id)))
    };
    Some(QuorumStatus {
        leader: m.id,
        term: m.current_term,
        committed: m.last_applied.index(),
        voters: membership.voter_ids().map(entry).collect(),
        learners: membership.learner_ids().map(entry).collect(),
    })
}

impl Controller {
    /// Ask the quorum (through any configured voter) to take this node as a learner, and
    /// return once the leader has committed that. Called at start by a node that the
    /// membership does not know yet; a restarted member skips it.
    pub(super) async fn join_as_learner(&self, q: &QuorumConfig) -> Result<(), ClusterError> {
        let me = self.node_id;
        // A node that has state (a log or a vote) was a member before: it restarts in
        // its role. (The metrics may not show the stored membership yet at this point.)
        if self
            .raft
            .is_initialized()
            .await
            .map_err(|e| ClusterError::Raft(e.to_string()))?
        {
            return Ok(());
        }
        let change = Request::ChangeQuorum(QuorumChange::AddLearner {
            id: me,
            addr: q.advertised.clone(),
        });
        let deadline = Instant::now() + q.start_timeout;
        let mut hint: Option<String> = None;
        let mut last = String::from("no voter answered");
        loop {
            let candidates: Vec<String> = hint
                .take()
                .into_iter()
                .chain(q.voters.values().cloned())
                .collect();
            for addr in candidates {
                let mut client = RpcClient::new(addr.clone(), q.tls.clone());
                match client.call(&change, JOIN_CALL_TIMEOUT).await {
                    Ok(Response::QuorumChanged(Ok(()))) => {
                        tracing::info!(voter = %addr, "joined the metadata quorum as a learner");
                        return Ok(());
                    }
                    Ok(Response::NotLeader { leader }) => {
                        if let Some(a) = leader.and_then(|l| q.voters.get(&l)) {
                            hint = Some(a.clone());
                            break;
                        }
                        last = format!("{addr} does not lead and knows no leader");
                    }
                    Ok(Response::QuorumChanged(Err(e))) => last = format!("{addr}: {e}"),
                    Ok(other) => last = format!("{addr} answered {other:?}"),
                    Err(e) => last = format!("{addr}: {e}"),
                }
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::Raft(format!(
                    "could not join the metadata quorum as a learner within {:?} ({last}); \
                     are the controller.quorum.voters running and reachable?",
                    q.start_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Change the quorum's membership, on the leader wherever this is called. A voter
    /// removed by RemoveRaftVoter ends up a learner, the leader included.
    pub async fn change_quorum(&self, change: QuorumChange) -> Result<(), QuorumRefusal> {
        let deadline = Instant::now() + QUORUM_CHANGE_TIMEOUT;
        loop {
            let refusal = match apply(&self.raft, &self.image(), &change).await {
                Err(QuorumRefusal::NotLeader) => {
                    let leader = self.raft.metrics().borrow().current_leader;
                    match leader.filter(|l| *l != self.node_id) {
                        Some(l) => {
                            match self
                                .call_leader(l, Request::ChangeQuorum(change.clone()))
                                .await
                            {
                                Ok(Response::QuorumChanged(r)) => return r,
                                Ok(Response::NotLeader { .. }) | Err(RpcError::Connect(_)) => {
                                    QuorumRefusal::NotLeader
                                }
                                Ok(other) => {
                                    return Err(QuorumRefusal::Failed(format!(
                                        "unexpected answer from the controller: {other:?}"
                                    )))
                                }
                                Err(e) => {
                                    return Err(QuorumRefusal::Failed(format!(
                                    "lost the controller during the change (outcome unknown): {e}"
                                )))
                                }
                            }
                        }
                        None => QuorumRefusal::NotLeader,
                    }
                }
                Err(QuorumRefusal::InProgress) => QuorumRefusal::InProgress,
                other => return other,
            };
            if Instant::now() >= deadline {
                return Err(refusal);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The quorum's state, from the leader wherever this is called.
    pub async fn describe_quorum(&self) -> Result<QuorumStatus, ClusterError> {
        if let Some(s) = status(&self.raft) {
            return Ok(s);
        }
        let leader = self.raft.metrics().borrow().current_leader;
        let Some(l) = leader.filter(|l| *l != self.node_id) else {
            return Err(ClusterError::NotLeader);
        };
        match self.call_leader(l, Request::DescribeQuorum).await {
            Ok(Response::Quorum(s)) => Ok(s),
            Ok(_) => Err(ClusterError::NotLeader),
            Err(RpcError::Timeout) => Err(ClusterError::Timeout),
            Err(e) => Err(ClusterError::Raft(e.to_string())),
        }
    }
}

/// This node's view of the Raft log, for metrics.
#[derive(Debug, Clone, Default)]
pub struct RaftView {
    pub term: u64,
    /// -1 while no leader is known.
    pub leader: i64,
    pub is_leader: bool,
    pub last_log_index: u64,
    pub applied: u64,
    /// On the leader, the highest index a majority of voters holds; elsewhere the
    /// applied index (followers learn the commit index only with the next append).
    pub committed: u64,
    pub voters: usize,
    pub learners: usize,
}

impl Controller {
    pub fn raft_view(&self) -> RaftView {
        let m = self.raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        let voters: Vec<NodeId> = membership.voter_ids().collect();
        let applied = m.last_applied.index().unwrap_or(0);
        let is_leader = m.state == ServerState::Leader;
        let committed = match (&m.replication, is_leader) {
            (Some(r), true) => {
                let mut matched: Vec<u64> = voters
                    .iter()
                    .map(|v| {
                        if *v == m.id {
                            m.last_log_index.unwrap_or(0)
                        } else {
                            r.get(v).and_then(|l| l.index()).unwrap_or(0)
                        }
                    })
                    .collect();
                matched.sort_unstable_by(|a, b| b.cmp(a));
                matched.get(voters.len() / 2).copied().unwrap_or(applied)
            }
            _ => applied,
        };
        RaftView {
            term: m.current_term,
            leader: m.current_leader.map_or(-1, |l| l as i64),
            is_leader,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied,
            committed,
            voters: voters.len(),
            learners: membership.learner_ids().count(),
        }
    }
}

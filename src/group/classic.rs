//! One classic-protocol group: its state, members, generation and the rules that only
//! look at the group itself (protocol selection, leader election, views).

use std::collections::{BTreeMap, HashMap};

use super::offsets::OffsetValue;
use super::types::{
    GroupDescription, GroupMetadataValue, JoinMember, JoinResponse, MemberDescription,
    MemberMetadataValue, ReplyTo,
};

/// Kafka's classic group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The state name as Kafka spells it in DescribeGroups / ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Vec<u8>)>,
    pub assignment: Vec<u8>,
    /// A JoinGroup of this member parked until the rebalance completes.
    pub awaiting_join: Option<ReplyTo>,
    /// A SyncGroup of this member parked until the leader sends assignments.
    pub awaiting_sync: Option<ReplyTo>,
}

impl Member {
    pub(crate) fn metadata_for(&self, protocol: &str) -> Vec<u8> {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub(crate) fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }
}

#[derive(Debug, Clone)]
pub struct ClassicGroup {
    pub group_id: String,
    pub state: GroupState,
    /// When the group entered its current state (drives offset expiry of empty groups).
    pub state_since_ms: u64,
    pub generation_id: i32,
    /// None for a group only used to store offsets (standalone commits).
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// Members by id; a BTreeMap so every output is deterministic.
    pub members: BTreeMap<String, Member>,
    /// Members given an id by MEMBER_ID_REQUIRED that have not joined with it yet.
    pub pending_members: BTreeMap<String, i32>,
    /// group.instance.id → member id of the static members.
    pub static_members: HashMap<String, String>,
    /// Committed offsets by (topic, partition).
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
    /// Completed rebalances since this coordinator loaded the group (for metrics).
    pub rebalances: u64,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub pending_sync: std::collections::BTreeSet<String>,
    /// Set while the initial rebalance delay runs and a member arrived during it.
    pub(crate) new_member_during_delay: bool,
    /// Start of the current rebalance, and whether it is still in its initial delay.
    pub(crate) in_initial_delay: bool,
    /// Length of the running initial-delay step, and how much of the rebalance timeout
    /// is left for further steps (Kafka's InitialDelayedJoin).
    pub(crate) initial_delay_ms: u64,
    pub(crate) initial_delay_remaining_ms: u64,
}

impl ClassicGroup {
    pub fn new(group_id: &str, now_ms: u64) -> Self {
        ClassicGroup {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            state_since_ms: now_ms,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            static_members: HashMap::new(),
            offsets: BTreeMap::new(),
            rebalances: 0,
            pending_sync: std::collections::BTreeSet::new(),
            new_member_during_delay: false,
            in_initial_delay: false,
            initial_delay_ms: 0,
            initial_delay_remaining_ms: 0,
        }
    }

    pub(crate) fn transition(&mut self, state: GroupState, now_ms: u64) {
        self.state = state;
        self.state_since_ms = now_ms;
    }

    pub fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    pub(crate) fn add_member(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.member_id.clone());
        }
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        self.members.insert(member.member_id.clone(), member);
    }

    /// Removes a member; the leadership passes to any remaining member.
    pub(crate) fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.remove(member_id)?;
        self.pending_sync.remove(member_id);
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
        Some(member)
    }

    /// Whether a joining member with these protocols may be part of the group.
    pub(crate) fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Vec<u8>)],
    ) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.values().all(|m| m.supports(name)))
    }

    /// Kafka's selectProtocol: among the protocols every member supports, each member
    /// votes for the one it prefers most; the most voted wins (ties: first candidate in
    /// the leader's order, so the choice is deterministic).
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let first = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .or_else(|| self.members.values().next())?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| self.members.values().all(|m| m.supports(n)))
            .collect();
        let mut votes = vec![0usize; candidates.len()];
        for member in self.members.values() {
            let vote = member
                .protocols
                .iter()
                .find_map(|(n, _)| candidates.iter().position(|c| *c == n));
            if let Some(slot) = vote.and_then(|i| votes.get_mut(i)) {
                *slot += 1;
            }
        }
        let mut best: Option<(usize, usize)> = None;
        for (i, v) in votes.iter().enumerate() {
            if best.is_none_or(|(_, bv)| *v > bv) {
                best = Some((i, *v));
            }
        }
        best.and_then(|(i, _)| candidates.get(i).map(|s| s.to_string()))
    }

    pub(crate) fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// Keeps the leader if it rejoined, else elects a member that did; false when no
    /// member rejoined at all.
    pub(crate) fn elect_joined_leader(&mut self) -> bool {
        let leader_joined = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .is_some_and(|m| m.awaiting_join.is_some());
        if leader_joined {
            return true;
        }
        match self.members.values().find(|m| m.awaiting_join.is_some()) {
            Some(m) => {
                self.leader = Some(m.member_id.clone());
                true
            }
            None => false,
        }
    }

    /// Longest rebalance timeout among members: how long a rebalance may wait.
    pub(crate) fn rebalance_timeout_ms(&self) -> u64 {
        self.members
            .values()
            .map(|m| ms(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    /// The JoinGroup answer for `member_id` in the current generation.
    pub(crate) fn join_response(&self, member_id: &str, leader_id: Option<&str>) -> JoinResponse {
        let leader = leader_id
            .map(str::to_string)
            .or_else(|| self.leader.clone())
            .unwrap_or_default();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| JoinMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    /// The group metadata record of the current generation.
    pub(crate) fn metadata_value(&self) -> GroupMetadataValue {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation_id: self.generation_id,
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp_ms: self.state_since_ms,
            members: self
                .members
                .values()
                .map(|m| MemberMetadataValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    pub fn describe(&self) -> GroupDescription {
        let stable = self.is(GroupState::Stable);
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupDescription {
            group_id: self.group_id.clone(),
            error: None,
            state: self.state.name(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_name: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: self
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata_for(&protocol)
                    } else {
                        Vec::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        }
    }
}

/// Client-supplied timeouts are i32 on the wire; a negative one counts as zero.
pub(crate) fn ms(value: i32) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

//! One KIP-848 `consumer` group: its members (subscriptions, epochs, current
//! assignments), the group epoch, the target assignment and its epoch, the subscribed
//! topics last seen, and the views derived from them (state, describe, records).
//!
//! Every field is what the group's records say (Kafka's record types 3–8 plus offsets):
//! the coordinator changes a group only by applying records (see `consumer_replay.rs`),
//! so a coordinator replaying the log rebuilds an equal group.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::consumer_types::{
    to_list, Assignment, ConsumerGroupCurrentMemberAssignmentValue,
    ConsumerGroupMemberMetadataValue, ConsumerGroupPartitionMetadataValue,
    ConsumerMemberDescription, DescribedTopicPartitions, TopicInfo, TopicMetadataValue, Topics,
};
use super::offsets::OffsetValue;

/// The member epoch of a member leaving for good, and of a static member leaving
/// temporarily (it keeps its partitions until its session ends).
pub const LEAVE_EPOCH: i32 = -1;
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// Where a member is in reconciling towards its target assignment (Kafka's MemberState).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Owns exactly what it was given at its epoch.
    Stable,
    /// Was asked to give up partitions and has not confirmed it yet.
    UnrevokedPartitions,
    /// Waits for partitions of its target that another member still owns.
    UnreleasedPartitions,
    /// A state code this version does not know (read from a newer log).
    Unknown,
}

impl MemberState {
    pub fn code(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }

    pub fn from_code(code: i8) -> Self {
        match code {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }
}

/// Kafka's ConsumerGroupState, derived from the group (never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    /// The group epoch moved past the target assignment's.
    Assigning,
    /// Some member has not reached the target assignment yet.
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Sorted and without duplicates, so reordering a subscription changes nothing.
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    /// What the member may consume at its epoch.
    pub assigned: Assignment,
    /// What it was asked to give up and still owns until it says otherwise.
    pub pending_revocation: Assignment,
}

impl ConsumerMember {
    pub fn new(member_id: &str) -> Self {
        ConsumerMember {
            member_id: member_id.to_string(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            rebalance_timeout_ms: -1,
            server_assignor: None,
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
        }
    }

    /// Whether the member owns its target assignment of `epoch`.
    pub fn is_reconciled_to(&self, epoch: i32) -> bool {
        self.state == MemberState::Stable && self.member_epoch == epoch
    }

    pub(crate) fn metadata_value(&self) -> ConsumerGroupMemberMetadataValue {
        ConsumerGroupMemberMetadataValue {
            instance_id: self.instance_id.clone(),
            rack_id: self.rack_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            subscribed_topic_names: self.subscribed_topic_names.clone(),
            subscribed_topic_regex: self.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            server_assignor: self.server_assignor.clone(),
            classic_member_metadata: None,
        }
    }

    pub(crate) fn assignment_value(&self) -> ConsumerGroupCurrentMemberAssignmentValue {
        ConsumerGroupCurrentMemberAssignmentValue {
            member_epoch: self.member_epoch,
            previous_member_epoch: self.previous_member_epoch,
            state: self.state.code(),
            assigned_partitions: to_list(&self.assigned),
            partitions_pending_revocation: to_list(&self.pending_revocation),
        }
    }

    /// The subscription fields only (what a ConsumerGroupMemberMetadata record carries).
    pub(crate) fn same_metadata(&self, other: &ConsumerMember) -> bool {
        self.metadata_value() == other.metadata_value()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerGroup {
    pub group_id: String,
    pub group_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    /// Instance id → member id of the static members.
    pub static_members: BTreeMap<String, String>,
    /// The subscribed topics that exist, as of the last epoch bump: a difference with
    /// the current metadata (a topic created, deleted or grown) bumps the epoch.
    pub subscription_metadata: BTreeMap<String, TopicInfo>,
    pub assignment_epoch: i32,
    /// Target assignment by member id.
    pub target: BTreeMap<String, Assignment>,
    /// Committed offsets by (topic, partition), as in classic groups.
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
}

impl ConsumerGroup {
    pub fn new(group_id: &str, offsets: BTreeMap<(String, i32), OffsetValue>) -> Self {
        ConsumerGroup {
            group_id: group_id.to_string(),
            group_epoch: 0,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            subscription_metadata: BTreeMap::new(),
            assignment_epoch: 0,
            target: BTreeMap::new(),
            offsets,
        }
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.assignment_epoch))
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    pub fn static_member(&self, instance_id: &str) -> Option<&ConsumerMember> {
        let member_id = self.static_members.get(instance_id)?;
        self.members.get(member_id)
    }

    /// The epoch of the member owning each partition (assigned or pending revocation):
    /// a partition in here is not free to be given to anyone else.
    pub(crate) fn partition_epochs(&self) -> BTreeMap<(Uuid, i32), i32> {
        let mut epochs = BTreeMap::new();
        for member in self.members.values() {
            for set in [&member.assigned, &member.pending_revocation] {
                for (topic, partitions) in set {
                    for p in partitions {
                        epochs.insert((*topic, *p), member.member_epoch);
                    }
                }
            }
        }
        epochs
    }

    /// Topic names some member subscribes to: explicit names, plus the existing
    /// topics their regexes matched at the last epoch bump.
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        let mut topics: BTreeSet<String> = self
            .members
            .values()
            .flat_map(|m| m.subscribed_topic_names.iter().cloned())
            .collect();
        topics.extend(self.subscription_metadata.keys().cloned());
        topics
    }

    /// The assignor a new target assignment uses: the one most members ask for
    /// (ties by name, for determinism), else the configured default.
    pub(crate) fn preferred_assignor(&self, default: &str) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(name) = &member.server_assignor {
                *counts.entry(name.as_str()).or_default() += 1;
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in counts {
            if best.is_none_or(|(_, c)| count > c) {
                best = Some((name, count));
            }
        }
        best.map_or_else(|| default.to_string(), |(name, _)| name.to_string())
    }

    pub(crate) fn describe_member(
        &self,
        member: &ConsumerMember,
        topics: &Topics,
    ) -> ConsumerMemberDescription {
        let names: BTreeMap<Uuid, &str> = topics
            .iter()
            .map(|(name, info)| (info.id, name.as_str()))
            .collect();
        let describe = |assignment: &Assignment| -> Vec<DescribedTopicPartitions> {
            assignment
                .iter()
                .filter_map(|(id, ps)| {
                    Some(DescribedTopicPartitions {
                        topic_id: *id,
                        topic_name: names.get(id)?.to_string(),
                        partitions: ps.iter().copied().collect(),
                    })
                })
                .collect()
        };
        ConsumerMemberDescription {
            member_id: member.member_id.clone(),
            instance_id: member.instance_id.clone(),
            rack_id: member.rack_id.clone(),
            member_epoch: member.member_epoch,
            client_id: member.client_id.clone(),
            client_host: member.client_host.clone(),
            subscribed_topic_names: member.subscribed_topic_names.clone(),
            subscribed_topic_regex: member.subscribed_topic_regex.clone(),
            assignment: describe(&member.assigned),
            target_assignment: describe(
                self.target
                    .get(&member.member_id)
                    .unwrap_or(&Assignment::new()),
            ),
            member_type: 1,
        }
    }
}

pub(crate) fn partition_metadata_value(
    metadata: &BTreeMap<String, TopicInfo>,
) -> ConsumerGroupPartitionMetadataValue {
    ConsumerGroupPartitionMetadataValue {
        topics: metadata
            .iter()
            .map(|(name, info)| TopicMetadataValue {
                topic_id: info.id,
                topic_name: name.clone(),
                num_partitions: info.partitions,
                partition_metadata: Vec::new(),
            })
            .collect(),
    }
}

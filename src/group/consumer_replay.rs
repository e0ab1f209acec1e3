//! Applying `consumer` group records (types 3–8) to memory. This is the only code that
//! changes a `consumer` group: a heartbeat emits records and applies each as it goes
//! (`emit`), and a new coordinator replays the same records from the log (`replay`),
//! so both end in the same state. Replay also restarts the timers of loaded members.

use super::classic::ClassicGroup;
use super::consumer::{ConsumerGroup, ConsumerMember, MemberState, LEAVE_EPOCH};
use super::consumer_types::{from_list, TopicInfo};
use super::coordinator::GroupCoordinator;
use super::types::{Output, Record, TimerKey};

impl GroupCoordinator {
    /// Appends a record to the output and applies it to memory.
    pub(crate) fn emit(&mut self, out: &mut Output, record: Record, now_ms: u64) {
        if !self.apply_consumer_record(&record, now_ms) {
            match &record {
                // The tombstone of an empty classic group converted to `consumer`.
                Record::Group {
                    group_id,
                    value: None,
                } => self.drop_classic_group_keep_offsets(group_id, now_ms),
                Record::Offset {
                    group_id,
                    topic,
                    partition,
                    value,
                } => {
                    let key = (topic.clone(), *partition);
                    self.apply_offset(group_id, key, value.as_ref(), now_ms);
                }
                // Classic group metadata is never emitted for a `consumer` group.
                _ => {}
            }
        }
        out.records.push(record);
    }

    /// A group's metadata is gone but its offsets are not (Kafka keeps offsets apart
    /// from groups): what is left is an offsets-only classic group, or nothing.
    pub(crate) fn drop_classic_group_keep_offsets(&mut self, group_id: &str, now_ms: u64) {
        if let Some(old) = self.groups.remove(group_id) {
            if !old.offsets.is_empty() {
                let mut group = ClassicGroup::new(group_id, now_ms);
                group.offsets = old.offsets;
                self.groups.insert(group_id.to_string(), group);
            }
        }
    }

    /// The consumer group, created if needed; a classic group of the same id can only
    /// be an empty one being converted, whose offsets the new group takes over.
    fn consumer_group_entry(&mut self, group_id: &str) -> &mut ConsumerGroup {
        let offsets = if self.consumer_groups.contains_key(group_id) {
            Default::default()
        } else {
            self.groups
                .remove(group_id)
                .map(|g| g.offsets)
                .unwrap_or_default()
        };
        self.consumer_groups
            .entry(group_id.to_string())
            .or_insert_with(|| ConsumerGroup::new(group_id, offsets))
    }

    /// Applies a consumer-group record; false if `record` is not one.
    pub(crate) fn apply_consumer_record(&mut self, record: &Record, now_ms: u64) -> bool {
        match record {
            Record::ConsumerGroupMetadata {
                group_id,
                value: Some(v),
            } => self.consumer_group_entry(group_id).group_epoch = v.epoch,
            Record::ConsumerGroupMetadata {
                group_id,
                value: None,
            } => {
                if let Some(group) = self.consumer_groups.remove(group_id) {
                    if !group.offsets.is_empty() {
                        let mut classic = ClassicGroup::new(group_id, now_ms);
                        classic.offsets = group.offsets;
                        self.groups.insert(group_id.clone(), classic);
                    }
                }
            }
            Record::ConsumerGroupPartitionMetadata { group_id, value } => match value {
                Some(v) => {
                    self.consumer_group_entry(group_id).subscription_metadata = v
                        .topics
                        .iter()
                        .map(|t| {
                            let info = TopicInfo {
                                id: t.topic_id,
                                partitions: t.num_partitions,
                            };
                            (t.topic_name.clone(), info)
                        })
                        .collect();
                }
                None => {
                    if let Some(group) = self.consumer_groups.get_mut(group_id) {
                        group.subscription_metadata.clear();
                    }
                }
            },
            Record::ConsumerGroupMemberMetadata {
                group_id,
                member_id,
                value: Some(v),
            } => {
                let group = self.consumer_group_entry(group_id);
                let member = group
                    .members
                    .entry(member_id.clone())
                    .or_insert_with(|| ConsumerMember::new(member_id));
                let old_instance = member.instance_id.clone();
                member.instance_id = v.instance_id.clone();
                member.rack_id = v.rack_id.clone();
                member.client_id = v.client_id.clone();
                member.client_host = v.client_host.clone();
                member.subscribed_topic_names = v.subscribed_topic_names.clone();
                member.subscribed_topic_regex = v.subscribed_topic_regex.clone();
                member.rebalance_timeout_ms = v.rebalance_timeout_ms;
                member.server_assignor = v.server_assignor.clone();
                if let Some(old) = old_instance {
                    if group.static_members.get(&old) == Some(member_id) {
                        group.static_members.remove(&old);
                    }
                }
                if let Some(instance) = &v.instance_id {
                    group
                        .static_members
                        .insert(instance.clone(), member_id.clone());
                }
            }
            Record::ConsumerGroupMemberMetadata {
                group_id,
                member_id,
                value: None,
            } => {
                if let Some(group) = self.consumer_groups.get_mut(group_id) {
                    if let Some(member) = group.members.remove(member_id) {
                        if let Some(instance) = member.instance_id {
                            if group.static_members.get(&instance) == Some(member_id) {
                                group.static_members.remove(&instance);
                            }
                        }
                    }
                }
            }
            Record::ConsumerGroupTargetAssignmentMetadata { group_id, value } => match value {
                Some(v) => {
                    self.consumer_group_entry(group_id).assignment_epoch = v.assignment_epoch
                }
                None => {
                    if let Some(group) = self.consumer_groups.get_mut(group_id) {
                        group.assignment_epoch = -1;
                    }
                }
            },
            Record::ConsumerGroupTargetAssignmentMember {
                group_id,
                member_id,
                value,
            } => match value {
                Some(v) => {
                    let assignment = from_list(&v.topic_partitions);
                    let group = self.consumer_group_entry(group_id);
                    group.target.insert(member_id.clone(), assignment);
                }
                None => {
                    if let Some(group) = self.consumer_groups.get_mut(group_id) {
                        group.target.remove(member_id);
                    }
                }
            },
            Record::ConsumerGroupCurrentMemberAssignment {
                group_id,
                member_id,
                value,
            } => match value {
                Some(v) => {
                    let group = self.consumer_group_entry(group_id);
                    let member = group
                        .members
                        .entry(member_id.clone())
                        .or_insert_with(|| ConsumerMember::new(member_id));
                    member.member_epoch = v.member_epoch;
                    member.previous_member_epoch = v.previous_member_epoch;
                    member.state = MemberState::from_code(v.state);
                    member.assigned = from_list(&v.assigned_partitions);
                    member.pending_revocation = from_list(&v.partitions_pending_revocation);
                }
                None => {
                    let member = self
                        .consumer_groups
                        .get_mut(group_id)
                        .and_then(|g| g.members.get_mut(member_id));
                    if let Some(member) = member {
                        member.member_epoch = LEAVE_EPOCH;
                        member.previous_member_epoch = LEAVE_EPOCH;
                        member.state = MemberState::Stable;
                        member.assigned.clear();
                        member.pending_revocation.clear();
                    }
                }
            },
            Record::Group { .. } | Record::Offset { .. } => return false,
        }
        true
    }

    /// Timers of members loaded from the log: a fresh session each (Kafka's onLoaded),
    /// and the rebalance timeout of those still asked to revoke.
    pub(crate) fn replay_consumer_timers(
        &mut self,
        out: &mut Output,
        record: &Record,
        now_ms: u64,
    ) {
        let session = self.config.consumer_session_timeout_ms;
        match record {
            Record::ConsumerGroupMemberMetadata {
                group_id,
                member_id,
                value,
            } => {
                if value.is_some() {
                    self.schedule_consumer_session(out, group_id, member_id, session, now_ms);
                } else {
                    self.cancel_consumer_timers(out, group_id, member_id);
                }
            }
            Record::ConsumerGroupCurrentMemberAssignment {
                group_id,
                member_id,
                value: Some(_),
            } => {
                let member = self
                    .consumer_groups
                    .get(group_id)
                    .and_then(|g| g.members.get(member_id))
                    .filter(|m| m.state == MemberState::UnrevokedPartitions)
                    .map(|m| m.rebalance_timeout_ms);
                let key = TimerKey::ConsumerRebalance {
                    group_id: group_id.clone(),
                    member_id: member_id.clone(),
                };
                match member {
                    Some(timeout) => {
                        let deadline = now_ms.saturating_add(super::classic::ms(timeout));
                        self.set_timer(out, key, deadline);
                    }
                    None => self.cancel_timer(out, key),
                }
            }
            _ => {}
        }
    }
}

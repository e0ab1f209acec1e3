//! `consumer` groups seen by the admin and offset APIs: ConsumerGroupDescribe,
//! deleting an empty group, which OffsetCommit / OffsetFetch a member may send (the
//! generation id field carries the member epoch) and the expiry of their offsets.

use kafka_protocol::error::ResponseError;

use super::consumer::{ConsumerGroup, ConsumerGroupState};
use super::consumer_types::{ConsumerGroupDescription, Topics};
use super::coordinator::GroupCoordinator;
use super::types::{Output, Record};

impl GroupCoordinator {
    /// ConsumerGroupDescribe for one group: GROUP_ID_NOT_FOUND unless it is a
    /// `consumer` group (Kafka's answer for classic groups too).
    pub fn describe_consumer_group(
        &self,
        group_id: &str,
        topics: &Topics,
    ) -> ConsumerGroupDescription {
        let Some(group) = self.consumer_groups.get(group_id) else {
            let message = if self.groups.contains_key(group_id) {
                format!("Group {group_id} is not a consumer group.")
            } else {
                format!("Group {group_id} not found.")
            };
            return ConsumerGroupDescription {
                group_id: group_id.to_string(),
                error: Some(ResponseError::GroupIdNotFound),
                error_message: Some(message),
                state: "",
                group_epoch: 0,
                assignment_epoch: 0,
                assignor_name: String::new(),
                members: Vec::new(),
            };
        };
        let default = self
            .config
            .consumer_assignors
            .first()
            .map_or("uniform", String::as_str);
        ConsumerGroupDescription {
            group_id: group_id.to_string(),
            error: None,
            error_message: None,
            state: group.state().name(),
            group_epoch: group.group_epoch,
            assignment_epoch: group.assignment_epoch,
            assignor_name: group.preferred_assignor(default),
            members: group
                .members
                .values()
                .map(|m| group.describe_member(m, topics))
                .collect(),
        }
    }

    /// Deletes a group (the caller checked it is Empty): tombstones for its offsets,
    /// then for its records in Kafka's order.
    pub(crate) fn remove_consumer_group(&mut self, out: &mut Output, group_id: &str) {
        let Some(group) = self.consumer_groups.get(group_id) else {
            return;
        };
        let g = || group_id.to_string();
        let mut records: Vec<Record> = group
            .offsets
            .keys()
            .map(|(topic, partition)| Record::Offset {
                group_id: g(),
                topic: topic.clone(),
                partition: *partition,
                value: None,
            })
            .collect();
        let members: Vec<String> = group.members.keys().cloned().collect();
        for m in &members {
            records.push(Record::ConsumerGroupCurrentMemberAssignment {
                group_id: g(),
                member_id: m.clone(),
                value: None,
            });
        }
        for m in &members {
            records.push(Record::ConsumerGroupTargetAssignmentMember {
                group_id: g(),
                member_id: m.clone(),
                value: None,
            });
        }
        records.push(Record::ConsumerGroupTargetAssignmentMetadata {
            group_id: g(),
            value: None,
        });
        for m in &members {
            records.push(Record::ConsumerGroupMemberMetadata {
                group_id: g(),
                member_id: m.clone(),
                value: None,
            });
            self.cancel_consumer_timers(out, group_id, m);
        }
        records.push(Record::ConsumerGroupPartitionMetadata {
            group_id: g(),
            value: None,
        });
        records.push(Record::ConsumerGroupMetadata {
            group_id: g(),
            value: None,
        });
        for record in records {
            self.emit(out, record, 0);
        }
    }

    /// Which OffsetFetch a `consumer` group answers (v9+ requests carry the member id
    /// and epoch; older ones, and admin clients, send none and are always answered).
    /// Call before [`GroupCoordinator::fetch_offsets`]; other groups always pass.
    pub fn validate_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Option<ResponseError> {
        let group = self.consumer_groups.get(group_id)?;
        let member_id = match member_id {
            None if member_epoch < 0 => return None,
            None => "",
            Some(id) => id,
        };
        match group.members.get(member_id) {
            None => Some(ResponseError::UnknownMemberId),
            Some(m) if m.member_epoch != member_epoch => Some(ResponseError::StaleMemberEpoch),
            Some(_) => None,
        }
    }

    /// Expires the offsets of `consumer` groups: those of topics no member subscribes
    /// to, `retention` after their commit (Kafka's rule for these groups); an Empty
    /// group left without offsets is deleted.
    pub(crate) fn expire_consumer_offsets(&mut self, out: &mut Output, now_ms: u64) {
        let retention = self.config.offsets_retention_ms;
        let mut expired = Vec::new();
        let mut dead = Vec::new();
        for group in self.consumer_groups.values() {
            let subscribed = group.subscribed_topics();
            let mut left = group.offsets.len();
            for ((topic, partition), v) in &group.offsets {
                let deadline = v
                    .expire_timestamp_ms
                    .unwrap_or_else(|| v.commit_timestamp_ms.saturating_add(retention));
                if !subscribed.contains(topic) && now_ms >= deadline {
                    expired.push(Record::Offset {
                        group_id: group.group_id.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                        value: None,
                    });
                    left -= 1;
                }
            }
            if left == 0 && group.state() == ConsumerGroupState::Empty {
                dead.push(group.group_id.clone());
            }
        }
        for record in expired {
            self.emit(out, record, now_ms);
        }
        for group_id in dead {
            self.remove_consumer_group(out, &group_id);
        }
    }
}

/// Kafka's ConsumerGroup.validateOffsetCommit: with no members anyone may commit with
/// a negative epoch (admin tools, manual assignment); otherwise the committer must be
/// a member at its current epoch.
pub(crate) fn validate_consumer_commit(
    group: &ConsumerGroup,
    member_id: &str,
    member_epoch: i32,
) -> Result<(), ResponseError> {
    if member_epoch < 0 && group.members.is_empty() {
        return Ok(());
    }
    let member = group
        .members
        .get(member_id)
        .ok_or(ResponseError::UnknownMemberId)?;
    if member.member_epoch != member_epoch {
        return Err(ResponseError::StaleMemberEpoch);
    }
    Ok(())
}

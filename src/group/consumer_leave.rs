//! Members leaving a `consumer` group: the -1 and -2 epochs of ConsumerGroupHeartbeat,
//! and the removals the timers decide (session expired, revocation not done within the
//! rebalance timeout). A removal bumps the group epoch; the next heartbeat of any
//! member then computes the new target assignment.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;

use super::classic::ms;
use super::consumer::{partition_metadata_value, ConsumerMember, MemberState, STATIC_LEAVE_EPOCH};
use super::consumer_heartbeat::{fenced_instance, unknown_member, Refusal};
use super::consumer_types::{
    Assignment, ConsumerGroupMetadataValue, ConsumerHeartbeatRequest, ConsumerHeartbeatResponse,
    TopicInfo,
};
use super::coordinator::GroupCoordinator;
use super::subscriptions::Matchers;
use super::types::{Output, Record, TimerKey};

impl GroupCoordinator {
    /// Kafka's order: current assignment, target assignment, then the member.
    pub(crate) fn emit_member_tombstones(
        &mut self,
        out: &mut Output,
        group_id: &str,
        member_id: &str,
        now: u64,
    ) {
        let (g, m) = (group_id.to_string(), member_id.to_string());
        let records = [
            Record::ConsumerGroupCurrentMemberAssignment {
                group_id: g.clone(),
                member_id: m.clone(),
                value: None,
            },
            Record::ConsumerGroupTargetAssignmentMember {
                group_id: g.clone(),
                member_id: m.clone(),
                value: None,
            },
            Record::ConsumerGroupMemberMetadata {
                group_id: g,
                member_id: m,
                value: None,
            },
        ];
        for record in records {
            self.emit(out, record, now);
        }
    }

    /// Leaving: -1 removes the member; -2 (static members) keeps it and its
    /// partitions until its session ends, so a quick restart gets them back.
    pub(crate) fn consumer_leave(
        &mut self,
        out: &mut Output,
        req: &ConsumerHeartbeatRequest,
    ) -> Result<ConsumerHeartbeatResponse, Refusal> {
        let group_id = req.group_id.as_str();
        let Some(group) = self.consumer_group(group_id) else {
            let message = format!("Consumer group {group_id} not found.");
            return Err((ResponseError::GroupIdNotFound, message));
        };
        let response = ConsumerHeartbeatResponse {
            error: None,
            error_message: None,
            member_id: Some(req.member_id.clone()),
            member_epoch: req.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        };
        let Some(instance) = &req.instance_id else {
            if !group.members.contains_key(&req.member_id) {
                return Err(unknown_member(&req.member_id, group_id));
            }
            self.fence_consumer_member(out, group_id, &req.member_id, req.now_ms);
            return Ok(response);
        };
        let Some(member) = group.static_member(instance) else {
            let message = format!("Instance id {instance} is unknown.");
            return Err((ResponseError::UnknownMemberId, message));
        };
        if member.member_id != req.member_id {
            return Err(fenced_instance(&req.member_id, instance, &member.member_id));
        }
        if req.member_epoch == STATIC_LEAVE_EPOCH {
            let leaving = ConsumerMember {
                member_epoch: STATIC_LEAVE_EPOCH,
                pending_revocation: Assignment::new(),
                ..member.clone()
            };
            self.emit_current_assignment(out, group_id, &leaving, req.now_ms);
            let key = TimerKey::ConsumerRebalance {
                group_id: group_id.to_string(),
                member_id: req.member_id.clone(),
            };
            self.cancel_timer(out, key);
        } else {
            self.fence_consumer_member(out, group_id, &req.member_id, req.now_ms);
        }
        Ok(response)
    }

    /// Removes a member (left, session expired, or stuck revoking): its records get
    /// tombstones, the subscribed topics are recomputed without it and the group epoch
    /// bumps, so the next heartbeat of any member computes a new target.
    pub(crate) fn fence_consumer_member(
        &mut self,
        out: &mut Output,
        group_id: &str,
        member_id: &str,
        now: u64,
    ) {
        let known = self
            .consumer_group(group_id)
            .is_some_and(|g| g.members.contains_key(member_id));
        if !known {
            return;
        }
        self.emit_member_tombstones(out, group_id, member_id, now);
        self.cancel_consumer_timers(out, group_id, member_id);
        let Some(group) = self.consumer_group(group_id) else {
            return;
        };
        // Without a fresh metadata snapshot here (timers have none), keep the topics
        // last seen that remaining members still subscribe to; topics created since
        // are noticed at the next heartbeat.
        let matchers = Matchers::of(group);
        let remaining: BTreeMap<String, TopicInfo> = group
            .subscription_metadata
            .iter()
            .filter(|(name, _)| group.members.values().any(|m| matchers.subscribes(m, name)))
            .map(|(name, info)| (name.clone(), *info))
            .collect();
        let changed = remaining != group.subscription_metadata;
        let epoch = group.group_epoch + 1;
        if changed {
            let record = Record::ConsumerGroupPartitionMetadata {
                group_id: group_id.to_string(),
                value: Some(partition_metadata_value(&remaining)),
            };
            self.emit(out, record, now);
        }
        let record = Record::ConsumerGroupMetadata {
            group_id: group_id.to_string(),
            value: Some(ConsumerGroupMetadataValue { epoch }),
        };
        self.emit(out, record, now);
    }

    pub(crate) fn on_consumer_session_expired(
        &mut self,
        out: &mut Output,
        group_id: &str,
        member_id: &str,
        now: u64,
    ) {
        self.fence_consumer_member(out, group_id, member_id, now);
    }

    /// The member was asked to revoke partitions and did not within its rebalance
    /// timeout: it is removed, which frees the partitions for the others.
    pub(crate) fn on_consumer_rebalance_timeout(
        &mut self,
        out: &mut Output,
        group_id: &str,
        member_id: &str,
        now: u64,
    ) {
        let stuck = self
            .consumer_group(group_id)
            .and_then(|g| g.members.get(member_id))
            .is_some_and(|m| m.state == MemberState::UnrevokedPartitions);
        if stuck {
            self.fence_consumer_member(out, group_id, member_id, now);
        }
    }

    pub(crate) fn schedule_consumer_session(
        &mut self,
        out: &mut Output,
        group_id: &str,
        member_id: &str,
        session_timeout_ms: i32,
        now: u64,
    ) {
        let key = TimerKey::ConsumerSession {
            group_id: group_id.to_string(),
            member_id: member_id.to_string(),
        };
        self.set_timer(out, key, now.saturating_add(ms(session_timeout_ms)));
    }

    pub(crate) fn cancel_consumer_timers(
        &mut self,
        out: &mut Output,
        group_id: &str,
        member_id: &str,
    ) {
        let (g, m) = (group_id.to_string(), member_id.to_string());
        self.cancel_timer(
            out,
            TimerKey::ConsumerSession {
                group_id: g.clone(),
                member_id: m.clone(),
            },
        );
        self.cancel_timer(
            out,
            TimerKey::ConsumerRebalance {
                group_id: g,
                member_id: m,
            },
        );
    }
}

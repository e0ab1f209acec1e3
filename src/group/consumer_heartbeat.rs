//! ConsumerGroupHeartbeat (KIP-848), Kafka's GroupMetadataManager rules: validating
//! the request, joining (new, rejoining and replacing static members), the group epoch
//! bump when subscriptions or subscribed topics change, the target assignment computed
//! by the server-side assignor, and the reconciliation of the member. Leaving and the
//! timeouts that remove members are in `consumer_leave.rs`.
//!
//! Errors are all found before anything changes; after that every change is a record
//! applied as it is emitted (see `consumer_replay.rs`).

use std::collections::{BTreeMap, BTreeSet};

use super::assignors::{self, MemberSpec, ASSIGNORS};
use super::classic::{ms, ClassicGroup, GroupState};
use super::consumer::{
    partition_metadata_value, ConsumerGroup, ConsumerMember, MemberState, LEAVE_EPOCH,
    STATIC_LEAVE_EPOCH,
};
use super::consumer_types::{
    from_list, to_list, Assignment, ConsumerGroupMetadataValue,
    ConsumerGroupTargetAssignmentMemberValue, ConsumerGroupTargetAssignmentMetadataValue,
    ConsumerHeartbeatRequest, ConsumerHeartbeatResponse, Topics,
};
use super::coordinator::GroupCoordinator;
use super::reconcile::reconcile;
use super::subscriptions::{compile, subscription_metadata, Matchers};
use super::types::{Output, Record, TimerKey};
use kafka_protocol::error::ResponseError;

/// An error answer: the code and Kafka's message.
pub(crate) type Refusal = (ResponseError, String);

/// Who the heartbeat is from, once validated.
enum Sender {
    /// A known member heartbeating at an acceptable epoch.
    Known(ConsumerMember),
    /// A member joining for the first time.
    New(ConsumerMember),
    /// A known member (re)joining with epoch 0: it has given up all its partitions
    /// (KIP-848: a fenced member abandons its partitions and rejoins with epoch 0).
    Rejoin(ConsumerMember),
    /// A static member restarted under a new member id after leaving with epoch -2:
    /// the new id takes over the old member, its partitions and target.
    ReplaceStatic {
        old_id: String,
        member: ConsumerMember,
    },
}

impl GroupCoordinator {
    /// ConsumerGroupHeartbeat. `topics` is the cluster's topic metadata now; the group
    /// notices created, deleted or grown topics by comparing it with what it last saw.
    pub fn consumer_heartbeat(
        &mut self,
        req: &ConsumerHeartbeatRequest,
        topics: &Topics,
    ) -> (ConsumerHeartbeatResponse, Output) {
        let mut out = Output::default();
        let result = self.validate_heartbeat(req).and_then(|()| {
            if req.member_epoch == LEAVE_EPOCH || req.member_epoch == STATIC_LEAVE_EPOCH {
                self.consumer_leave(&mut out, req)
            } else {
                self.consumer_join_or_heartbeat(&mut out, req, topics)
            }
        });
        match result {
            Ok(response) => (response, out),
            Err((error, message)) => (ConsumerHeartbeatResponse::error(error, message), out),
        }
    }

    /// Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid.
    fn validate_heartbeat(&self, req: &ConsumerHeartbeatRequest) -> Result<(), Refusal> {
        let invalid = |message: &str| Err((ResponseError::InvalidRequest, message.to_string()));
        if req.group_id.is_empty() {
            return invalid("GroupId can't be empty.");
        }
        if req.instance_id.as_deref() == Some("") {
            return invalid("InstanceId can't be empty.");
        }
        if req.rack_id.as_deref() == Some("") {
            return invalid("RackId can't be empty.");
        }
        if req.api_version >= 1 && req.member_id.is_empty() {
            // KIP-1082: from v1 the client generates its member id.
            return invalid("MemberId can't be empty.");
        }
        match req.member_epoch {
            e if e > 0 || e == LEAVE_EPOCH => {
                if req.member_id.is_empty() {
                    return invalid("MemberId can't be empty.");
                }
            }
            0 => {
                if req.rebalance_timeout_ms == -1 {
                    return invalid("RebalanceTimeoutMs must be provided in first request.");
                }
                if !req.topic_partitions.as_ref().is_some_and(Vec::is_empty) {
                    return invalid("TopicPartitions must be empty when (re-)joining.");
                }
                if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                    return invalid(
                        "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                    );
                }
            }
            STATIC_LEAVE_EPOCH => {
                if req.member_id.is_empty() {
                    return invalid("MemberId can't be empty.");
                }
                if req.instance_id.is_none() {
                    return invalid("InstanceId can't be null.");
                }
            }
            _ => return invalid("MemberEpoch is invalid."),
        }
        if let Some(name) = &req.server_assignor {
            let known = ASSIGNORS.contains(&name.as_str())
                && self.config.consumer_assignors.iter().any(|a| a == name);
            if !known {
                let message = format!(
                    "ServerAssignor {name} is not supported. Supported assignors: {}.",
                    self.config.consumer_assignors.join(", ")
                );
                return Err((ResponseError::UnsupportedAssignor, message));
            }
        }
        if let Some(pattern) = req.subscribed_topic_regex.as_deref() {
            if !pattern.is_empty() && compile(pattern).is_none() {
                let message =
                    format!("SubscribedTopicRegex `{pattern}` is not a valid regular expression.");
                return Err((ResponseError::InvalidRegularExpression, message));
            }
        }
        Ok(())
    }

    fn consumer_join_or_heartbeat(
        &mut self,
        out: &mut Output,
        req: &ConsumerHeartbeatRequest,
        topics: &Topics,
    ) -> Result<ConsumerHeartbeatResponse, Refusal> {
        let group_id = req.group_id.as_str();
        let now = req.now_ms;
        let joining = req.member_epoch == 0;
        let is_consumer = self.consumer_groups.contains_key(group_id);
        if !is_consumer {
            match self.groups.get(group_id) {
                Some(classic) if !(joining && convertible(classic)) => {
                    let message = format!("Group {group_id} is not a consumer group.");
                    return Err((ResponseError::GroupIdNotFound, message));
                }
                None if !joining => {
                    let message = format!("Consumer group {group_id} not found.");
                    return Err((ResponseError::GroupIdNotFound, message));
                }
                _ => {}
            }
        }
        let member_id = if req.member_id.is_empty() {
            self.new_consumer_member_id()
        } else {
            req.member_id.clone()
        };
        let sender = {
            let new_group = ConsumerGroup::new(group_id, BTreeMap::new());
            let group = self.consumer_groups.get(group_id).unwrap_or(&new_group);
            if group.members.len() >= self.config.consumer_max_size
                && !group.members.contains_key(&member_id)
            {
                let message = format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    self.config.consumer_max_size
                );
                return Err((ResponseError::GroupMaxSizeReached, message));
            }
            identify(group, &member_id, req)?
        };

        // Nothing can fail from here on.
        if !is_consumer && self.groups.contains_key(group_id) {
            // An empty classic group becomes a consumer group; its offsets stay.
            let tombstone = Record::Group {
                group_id: group_id.to_string(),
                value: None,
            };
            self.emit(out, tombstone, now);
        }
        let (before, member) = match sender {
            Sender::Known(member) => (Some(member.clone()), member),
            Sender::New(member) => (None, member),
            Sender::Rejoin(member) => {
                let reset = ConsumerMember {
                    member_epoch: 0,
                    previous_member_epoch: 0,
                    state: MemberState::Stable,
                    assigned: Assignment::new(),
                    pending_revocation: Assignment::new(),
                    ..member.clone()
                };
                self.emit_current_assignment(out, group_id, &reset, now);
                (Some(reset.clone()), reset)
            }
            Sender::ReplaceStatic { old_id, member } => {
                self.replace_consumer_static_member(out, group_id, &old_id, &member, now);
                (Some(member.clone()), member)
            }
        };
        let updated = updated_member(&member, req);
        let baseline = before
            .clone()
            .unwrap_or_else(|| ConsumerMember::new(&member_id));
        if before.is_none() || !updated.same_metadata(&baseline) {
            let record = Record::ConsumerGroupMemberMetadata {
                group_id: group_id.to_string(),
                member_id: member_id.clone(),
                value: Some(updated.metadata_value()),
            };
            self.emit(out, record, now);
        }
        let mut bump = updated.subscribed_topic_names != baseline.subscribed_topic_names
            || updated.subscribed_topic_regex != baseline.subscribed_topic_regex;

        // The subscribed topics, as the metadata says now: any difference with what
        // the group last saw (a topic created, deleted, or with more partitions) needs
        // a new target assignment, so it bumps the epoch too.
        let (seen, epoch) = {
            let group = self.consumer_group(group_id).ok_or_else(gone)?;
            (subscription_metadata(group, topics), group.group_epoch)
        };
        if self
            .consumer_group(group_id)
            .is_some_and(|g| g.subscription_metadata != seen)
        {
            let record = Record::ConsumerGroupPartitionMetadata {
                group_id: group_id.to_string(),
                value: Some(partition_metadata_value(&seen)),
            };
            self.emit(out, record, now);
            bump = true;
        }
        if bump {
            let record = Record::ConsumerGroupMetadata {
                group_id: group_id.to_string(),
                value: Some(ConsumerGroupMetadataValue { epoch: epoch + 1 }),
            };
            self.emit(out, record, now);
        }
        if self
            .consumer_group(group_id)
            .is_some_and(|g| g.group_epoch > g.assignment_epoch)
        {
            self.update_target_assignment(out, group_id, now);
        }

        let owned = req.topic_partitions.as_deref().map(from_list);
        let member = self.reconcile_member(out, group_id, &member_id, owned.as_ref(), now)?;
        let session = self.config.consumer_session_timeout_ms;
        self.schedule_consumer_session(out, group_id, &member_id, session, now);

        // Kafka sends the assignment on a full request (what a member sends when it
        // joins or after an error) and whenever it changed.
        let full = joining
            || (req.rebalance_timeout_ms != -1
                && (req.subscribed_topic_names.is_some() || req.subscribed_topic_regex.is_some())
                && req.topic_partitions.is_some());
        let changed = before.is_none_or(|b| b.assigned != member.assigned);
        Ok(ConsumerHeartbeatResponse {
            error: None,
            error_message: None,
            member_id: Some(member_id),
            member_epoch: member.member_epoch,
            heartbeat_interval_ms: self.config.consumer_heartbeat_interval_ms,
            assignment: (full || changed).then(|| to_list(&member.assigned)),
        })
    }

    /// Moves the member towards its target; persists and times the change.
    fn reconcile_member(
        &mut self,
        out: &mut Output,
        group_id: &str,
        member_id: &str,
        owned: Option<&Assignment>,
        now: u64,
    ) -> Result<ConsumerMember, Refusal> {
        let group = self.consumer_group(group_id).ok_or_else(gone)?;
        let member = group.members.get(member_id).ok_or_else(gone)?;
        if member.is_reconciled_to(group.assignment_epoch) {
            return Ok(member.clone());
        }
        let target = group.target.get(member_id).cloned().unwrap_or_default();
        let next = reconcile(
            member,
            group.assignment_epoch,
            &target,
            &group.partition_epochs(),
            owned,
        );
        if next == *member {
            return Ok(next);
        }
        self.emit_current_assignment(out, group_id, &next, now);
        let key = TimerKey::ConsumerRebalance {
            group_id: group_id.to_string(),
            member_id: member_id.to_string(),
        };
        if next.state == MemberState::UnrevokedPartitions {
            let deadline = now.saturating_add(ms(next.rebalance_timeout_ms));
            self.set_timer(out, key, deadline);
        } else {
            self.cancel_timer(out, key);
        }
        Ok(next)
    }

    /// Runs the group's assignor and persists the members whose target changed, then
    /// the new assignment epoch (the group epoch).
    fn update_target_assignment(&mut self, out: &mut Output, group_id: &str, now: u64) {
        let Some(group) = self.consumer_group(group_id) else {
            return;
        };
        let default = self
            .config
            .consumer_assignors
            .first()
            .map_or("uniform", String::as_str);
        let assignor = group.preferred_assignor(default);
        let matchers = Matchers::of(group);
        let specs: Vec<MemberSpec> = group
            .members
            .values()
            .map(|m| MemberSpec {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                topics: group
                    .subscription_metadata
                    .iter()
                    .filter(|(name, _)| matchers.subscribes(m, name))
                    .map(|(_, info)| info.id)
                    .collect(),
            })
            .collect();
        let partitions = group
            .subscription_metadata
            .values()
            .map(|t| (t.id, t.partitions))
            .collect();
        let target = assignors::assign(&assignor, &specs, &partitions, &group.target);
        let changed: Vec<(String, Assignment)> = target
            .into_iter()
            .filter(|(id, a)| group.target.get(id).unwrap_or(&Assignment::new()) != a)
            .collect();
        let epoch = group.group_epoch;
        for (member_id, assignment) in changed {
            let record = Record::ConsumerGroupTargetAssignmentMember {
                group_id: group_id.to_string(),
                member_id,
                value: Some(ConsumerGroupTargetAssignmentMemberValue {
                    topic_partitions: to_list(&assignment),
                }),
            };
            self.emit(out, record, now);
        }
        let record = Record::ConsumerGroupTargetAssignmentMetadata {
            group_id: group_id.to_string(),
            value: Some(ConsumerGroupTargetAssignmentMetadataValue {
                assignment_epoch: epoch,
            }),
        };
        self.emit(out, record, now);
    }

    /// The old member goes (tombstones) and the new id takes over its subscription,
    /// target and current assignment (Kafka's replaceMember).
    fn replace_consumer_static_member(
        &mut self,
        out: &mut Output,
        group_id: &str,
        old_id: &str,
        member: &ConsumerMember,
        now: u64,
    ) {
        let target = self
            .consumer_group(group_id)
            .and_then(|g| g.target.get(old_id).cloned())
            .unwrap_or_default();
        self.emit_member_tombstones(out, group_id, old_id, now);
        self.cancel_consumer_timers(out, group_id, old_id);
        let records = [
            Record::ConsumerGroupMemberMetadata {
                group_id: group_id.to_string(),
                member_id: member.member_id.clone(),
                value: Some(member.metadata_value()),
            },
            Record::ConsumerGroupTargetAssignmentMember {
                group_id: group_id.to_string(),
                member_id: member.member_id.clone(),
                value: Some(ConsumerGroupTargetAssignmentMemberValue {
                    topic_partitions: to_list(&target),
                }),
            },
        ];
        for record in records {
            self.emit(out, record, now);
        }
        self.emit_current_assignment(out, group_id, member, now);
    }

    pub(crate) fn emit_current_assignment(
        &mut self,
        out: &mut Output,
        group_id: &str,
        member: &ConsumerMember,
        now: u64,
    ) {
        let record = Record::ConsumerGroupCurrentMemberAssignment {
            group_id: group_id.to_string(),
            member_id: member.member_id.clone(),
            value: Some(member.assignment_value()),
        };
        self.emit(out, record, now);
    }
}

/// Kafka's getOrMaybeSubscribe{Dynamic,Static}ConsumerGroupMember: who is sending,
/// and whether it may.
fn identify(
    group: &ConsumerGroup,
    member_id: &str,
    req: &ConsumerHeartbeatRequest,
) -> Result<Sender, Refusal> {
    let joining = req.member_epoch == 0;
    let Some(instance) = &req.instance_id else {
        // Dynamic members, and static ones that did not resend their instance id.
        return match group.members.get(member_id) {
            None if joining => Ok(Sender::New(ConsumerMember::new(member_id))),
            None => Err(unknown_member(member_id, &group.group_id)),
            Some(member) if joining => Ok(Sender::Rejoin(member.clone())),
            Some(member) => {
                check_epoch(member, req)?;
                Ok(Sender::Known(member.clone()))
            }
        };
    };
    let existing = group.static_member(instance);
    if !joining {
        let Some(member) = existing else {
            let message = format!("Instance id {instance} is unknown.");
            return Err((ResponseError::UnknownMemberId, message));
        };
        if member.member_id != member_id {
            return Err(fenced_instance(member_id, instance, &member.member_id));
        }
        check_epoch(member, req)?;
        return Ok(Sender::Known(member.clone()));
    }
    match existing {
        None => match group.members.get(member_id) {
            Some(member) => Ok(Sender::Rejoin(member.clone())),
            None => Ok(Sender::New(ConsumerMember::new(member_id))),
        },
        Some(member) if member.member_id == member_id => Ok(Sender::Rejoin(member.clone())),
        // Only an instance that said it is leaving (-2) may be taken over.
        Some(member) if member.member_epoch != STATIC_LEAVE_EPOCH => {
            let message = format!(
                "Static member {member_id} with instance id {instance} cannot join the group \
                 because the instance id is owned by {} member.",
                member.member_id
            );
            Err((ResponseError::UnreleasedInstanceId, message))
        }
        Some(member) => Ok(Sender::ReplaceStatic {
            old_id: member.member_id.clone(),
            member: ConsumerMember {
                member_id: member_id.to_string(),
                member_epoch: 0,
                previous_member_epoch: 0,
                ..member.clone()
            },
        }),
    }
}

/// Kafka's throwIfConsumerGroupMemberEpochIsInvalid: an epoch ahead is fenced; one
/// behind is only accepted if it is the previous epoch and the member owns a subset of
/// its current assignment (our answer with the new epoch was lost).
fn check_epoch(member: &ConsumerMember, req: &ConsumerHeartbeatRequest) -> Result<(), Refusal> {
    let received = req.member_epoch;
    let owned = req.topic_partitions.as_deref().map(from_list);
    let fenced = |how: &str| {
        let message = format!(
            "The consumer group member has a {how} member epoch ({received}) than the one known \
             by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
            member.member_epoch
        );
        Err((ResponseError::FencedMemberEpoch, message))
    };
    if received > member.member_epoch {
        return fenced("greater");
    }
    if received < member.member_epoch {
        let subset = owned.as_ref().is_some_and(|o| {
            o.iter().all(|(t, ps)| {
                member
                    .assigned
                    .get(t)
                    .is_some_and(|assigned| ps.is_subset(assigned))
            })
        });
        if received != member.previous_member_epoch || !subset {
            return fenced("smaller");
        }
    }
    if member.state == MemberState::Unknown && owned.is_none_or(|o| !o.is_empty()) {
        let message = "The consumer group member is in a unknown state. The member must abandon \
                       all its partitions and rejoin.";
        return Err((ResponseError::FencedMemberEpoch, message.to_string()));
    }
    Ok(())
}

/// The member with what the request changed (absent fields mean "unchanged").
fn updated_member(member: &ConsumerMember, req: &ConsumerHeartbeatRequest) -> ConsumerMember {
    let mut updated = member.clone();
    if req.instance_id.is_some() {
        updated.instance_id = req.instance_id.clone();
    }
    if req.rack_id.is_some() {
        updated.rack_id = req.rack_id.clone();
    }
    if req.rebalance_timeout_ms != -1 {
        updated.rebalance_timeout_ms = req.rebalance_timeout_ms;
    }
    if req.server_assignor.is_some() {
        updated.server_assignor = req.server_assignor.clone();
    }
    if let Some(names) = &req.subscribed_topic_names {
        let sorted: BTreeSet<String> = names.iter().cloned().collect();
        updated.subscribed_topic_names = sorted.into_iter().collect();
    }
    if let Some(pattern) = &req.subscribed_topic_regex {
        // An empty regex is how a member stops subscribing by pattern.
        updated.subscribed_topic_regex = Some(pattern.clone()).filter(|p| !p.is_empty());
    }
    updated.client_id = req.client_id.clone();
    updated.client_host = req.client_host.clone();
    updated
}

/// Only an empty classic group, without members joining, may become a consumer group.
fn convertible(group: &ClassicGroup) -> bool {
    group.is(GroupState::Empty) && group.members.is_empty() && group.pending_members.is_empty()
}

/// A group or member that validation found but that is gone: cannot happen, since
/// nothing else runs in between; answered as Kafka answers unexpected states.
fn gone() -> Refusal {
    (
        ResponseError::UnknownServerError,
        "The group changed while handling the request.".to_string(),
    )
}

pub(crate) fn unknown_member(member_id: &str, group_id: &str) -> Refusal {
    let message = format!("Member {member_id} is not a member of group {group_id}.");
    (ResponseError::UnknownMemberId, message)
}

pub(crate) fn fenced_instance(member_id: &str, instance: &str, owner: &str) -> Refusal {
    let message = format!(
        "Static member {member_id} with instance id {instance} was fenced by member {owner}."
    );
    (ResponseError::FencedInstanceId, message)
}

//! SyncGroup, Heartbeat, LeaveGroup and session expiry: everything a member does once
//! it has a member id.

use kafka_protocol::error::ResponseError;

use super::classic::{ClassicGroup, GroupState};
use super::coordinator::GroupCoordinator;
use super::types::{
    HeartbeatRequest, JoinResponse, LeaveRequest, LeaveResponse, Output, Record, Reply,
    SyncRequest, SyncResponse, TimerKey,
};

impl GroupCoordinator {
    /// SyncGroup. Followers are parked until the leader's SyncGroup brings assignments;
    /// the leader's call answers all of them.
    pub fn sync(&mut self, req: SyncRequest) -> Output {
        let mut out = Output::default();
        if let Err(error) = self.sync_inner(&mut out, &req) {
            out.reply(req.reply_to, Reply::Sync(SyncResponse::error(error)));
        }
        out
    }

    fn sync_inner(&mut self, out: &mut Output, req: &SyncRequest) -> Result<(), ResponseError> {
        let group = self.group_mut(&req.group_id)?;
        tracing::debug!(group = %req.group_id, member = %req.member_id, generation = req.generation_id,
            state = ?group.state, group_generation = group.generation_id, leader = ?group.leader,
            assignments = req.assignments.len(), "SyncGroup");
        if group.is(GroupState::Dead) {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        validate_member(group, &req.member_id, req.group_instance_id.as_deref())?;
        if req.generation_id != group.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        let type_mismatch = req
            .protocol_type
            .as_ref()
            .is_some_and(|t| group.protocol_type.as_ref() != Some(t));
        let name_mismatch = req
            .protocol_name
            .as_ref()
            .is_some_and(|n| group.protocol_name.as_ref() != Some(n));
        if type_mismatch || name_mismatch {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        let session = group
            .members
            .get(&req.member_id)
            .map(|m| m.session_timeout_ms)
            .unwrap_or_default();
        let generation_id = group.generation_id;
        match group.state {
            GroupState::Empty | GroupState::Dead => return Err(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => return Err(ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                let response = synced(group, &req.member_id);
                out.reply(req.reply_to, Reply::Sync(response));
            }
            GroupState::CompletingRebalance => {
                if let Some(member) = group.members.get_mut(&req.member_id) {
                    if let Some(old) = member.awaiting_sync.replace(req.reply_to) {
                        if old != req.reply_to {
                            let response = SyncResponse::error(ResponseError::RebalanceInProgress);
                            out.reply(old, Reply::Sync(response));
                        }
                    }
                }
                if group.leader.as_deref() == Some(req.member_id.as_str()) {
                    complete_sync(out, group, &req.assignments, req.now_ms);
                }
            }
        }
        self.schedule_heartbeat(out, &req.group_id, &req.member_id, session, req.now_ms);
        self.sync_received(out, &req.group_id, &req.member_id, generation_id);
        Ok(())
    }

    /// Once every member of the generation has synced, the pending-sync timer is moot.
    fn sync_received(
        &mut self,
        out: &mut Output,
        group_id: &str,
        member_id: &str,
        generation_id: i32,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if group.pending_sync.remove(member_id) && group.pending_sync.is_empty() {
            let key = TimerKey::Sync {
                group_id: group_id.to_string(),
                generation_id,
            };
            self.cancel_timer(out, key);
        }
    }

    /// The pending-sync timeout: members of this generation that never sent SyncGroup
    /// are removed, which starts a new rebalance.
    pub(crate) fn on_sync_timer(
        &mut self,
        out: &mut Output,
        group_id: &str,
        generation_id: i32,
        now_ms: u64,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let settling = matches!(
            group.state,
            GroupState::CompletingRebalance | GroupState::Stable
        );
        if !settling || group.generation_id != generation_id {
            return;
        }
        let laggards: Vec<String> = std::mem::take(&mut group.pending_sync)
            .into_iter()
            .collect();
        for member_id in laggards {
            self.remove_member_and_update(out, group_id, &member_id, now_ms);
        }
    }

    /// Heartbeat: keeps the session alive; tells members to rejoin while rebalancing.
    pub fn heartbeat(&mut self, req: HeartbeatRequest) -> (Option<ResponseError>, Output) {
        let mut out = Output::default();
        let result = self.heartbeat_inner(&mut out, &req);
        (result.err(), out)
    }

    fn heartbeat_inner(
        &mut self,
        out: &mut Output,
        req: &HeartbeatRequest,
    ) -> Result<(), ResponseError> {
        let group = self.group_mut(&req.group_id)?;
        if group.is(GroupState::Dead) {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if group.is(GroupState::Empty) {
            return Err(ResponseError::UnknownMemberId);
        }
        validate_member(group, &req.member_id, req.group_instance_id.as_deref())?;
        if req.generation_id != group.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        let rebalancing = group.is(GroupState::PreparingRebalance);
        let session = group
            .members
            .get(&req.member_id)
            .map(|m| m.session_timeout_ms)
            .unwrap_or_default();
        self.schedule_heartbeat(out, &req.group_id, &req.member_id, session, req.now_ms);
        if rebalancing {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// LeaveGroup for one or (v3+) several members, by member id or by instance id.
    pub fn leave(&mut self, req: LeaveRequest) -> (LeaveResponse, Output) {
        let mut out = Output::default();
        let Some(group) = self.groups.get(&req.group_id) else {
            let members = req
                .members
                .iter()
                .map(|m| {
                    let error = Some(ResponseError::UnknownMemberId);
                    (m.member_id.clone(), m.group_instance_id.clone(), error)
                })
                .collect();
            return (
                LeaveResponse {
                    error: None,
                    members,
                },
                out,
            );
        };
        if group.is(GroupState::Dead) {
            let error = Some(ResponseError::CoordinatorNotAvailable);
            return (
                LeaveResponse {
                    error,
                    members: Vec::new(),
                },
                out,
            );
        }
        let mut results = Vec::with_capacity(req.members.len());
        for leaving in &req.members {
            let error = self.leave_one(
                &mut out,
                &req.group_id,
                &leaving.member_id,
                leaving.group_instance_id.as_deref(),
                req.now_ms,
            );
            results.push((
                leaving.member_id.clone(),
                leaving.group_instance_id.clone(),
                error,
            ));
        }
        (
            LeaveResponse {
                error: None,
                members: results,
            },
            out,
        )
    }

    fn leave_one(
        &mut self,
        out: &mut Output,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: u64,
    ) -> Option<ResponseError> {
        let group = self.groups.get_mut(group_id)?;
        let target = match instance_id {
            Some(instance) => match group.static_members.get(instance) {
                None => return Some(ResponseError::UnknownMemberId),
                Some(current) if !member_id.is_empty() && current != member_id => {
                    return Some(ResponseError::FencedInstanceId)
                }
                Some(current) => current.clone(),
            },
            None if group.pending_members.remove(member_id).is_some() => {
                let key = TimerKey::Heartbeat {
                    group_id: group_id.to_string(),
                    member_id: member_id.to_string(),
                };
                self.cancel_timer(out, key);
                self.try_complete_join(out, group_id, now_ms);
                return None;
            }
            None if !group.members.contains_key(member_id) => {
                return Some(ResponseError::UnknownMemberId)
            }
            None => member_id.to_string(),
        };
        self.remove_member_and_update(out, group_id, &target, now_ms);
        None
    }

    /// Removes a member and moves the group on: a rebalance if it was settled, or the
    /// completion of the running join phase if that member was the last one awaited.
    pub(crate) fn remove_member_and_update(
        &mut self,
        out: &mut Output,
        group_id: &str,
        member_id: &str,
        now_ms: u64,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let Some(member) = group.remove_member(member_id) else {
            return;
        };
        if let Some(to) = member.awaiting_join {
            let response = JoinResponse::error(member_id, ResponseError::UnknownMemberId);
            out.reply(to, Reply::Join(response));
        }
        if let Some(to) = member.awaiting_sync {
            out.reply(
                to,
                Reply::Sync(SyncResponse::error(ResponseError::UnknownMemberId)),
            );
        }
        let key = TimerKey::Heartbeat {
            group_id: group_id.to_string(),
            member_id: member_id.to_string(),
        };
        self.cancel_timer(out, key);
        self.maybe_prepare_rebalance(out, group_id, now_ms);
        self.try_complete_join(out, group_id, now_ms);
    }

    /// A member's session timer fired. Members parked in JoinGroup or SyncGroup cannot
    /// heartbeat, so they are kept alive (Kafka's shouldKeepAlive).
    pub(crate) fn on_session_expired(
        &mut self,
        out: &mut Output,
        group_id: &str,
        member_id: &str,
        now_ms: u64,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if group.pending_members.remove(member_id).is_some() {
            self.try_complete_join(out, group_id, now_ms);
            return;
        }
        let Some(member) = group.members.get(member_id) else {
            return;
        };
        if member.awaiting_join.is_some() || member.awaiting_sync.is_some() {
            let session = member.session_timeout_ms;
            self.schedule_heartbeat(out, group_id, member_id, session, now_ms);
            return;
        }
        self.remove_member_and_update(out, group_id, member_id, now_ms);
    }
}

/// Kafka's validateMember: a stale member id of a static instance is fenced; any other
/// id must be a member.
pub(crate) fn validate_member(
    group: &ClassicGroup,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<(), ResponseError> {
    if let Some(instance) = instance_id {
        if let Some(current) = group.static_members.get(instance) {
            if current != member_id {
                return Err(ResponseError::FencedInstanceId);
            }
        }
    }
    if !group.members.contains_key(member_id) {
        return Err(ResponseError::UnknownMemberId);
    }
    Ok(())
}

fn synced(group: &ClassicGroup, member_id: &str) -> SyncResponse {
    SyncResponse {
        error: None,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol_name.clone(),
        assignment: group
            .members
            .get(member_id)
            .map(|m| m.assignment.clone())
            .unwrap_or_default(),
    }
}

/// A `consumer` protocol assignment with no partitions (ConsumerProtocolAssignment v0:
/// version 0, no topics, null user data). Clients decode the assignment bytes of a
/// consumer group, and some (kafka-python, older librdkafka) fail on zero bytes.
const EMPTY_CONSUMER_ASSIGNMENT: [u8; 10] = [0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];

/// The leader's assignments become the generation's: persisted, sent to every parked
/// follower, and the group is Stable. A member the leader left out gets an empty
/// assignment: a valid empty one for `consumer` groups, empty bytes otherwise.
fn complete_sync(
    out: &mut Output,
    group: &mut ClassicGroup,
    assignments: &[(String, Vec<u8>)],
    now_ms: u64,
) {
    let consumer = group.protocol_type.as_deref() == Some("consumer");
    for member in group.members.values_mut() {
        member.assignment = assignments
            .iter()
            .rev()
            .find(|(id, _)| *id == member.member_id)
            .map(|(_, a)| a.clone())
            .filter(|a| !a.is_empty() || !consumer)
            .unwrap_or_else(|| {
                if consumer {
                    EMPTY_CONSUMER_ASSIGNMENT.to_vec()
                } else {
                    Vec::new()
                }
            });
    }
    group.transition(GroupState::Stable, now_ms);
    tracing::debug!(group = %group.group_id, generation = group.generation_id,
        assignments = ?group.members.values().map(|m| (m.member_id.as_str(), m.assignment.len())).collect::<Vec<_>>(),
        "sync complete");
    out.records.push(Record::Group {
        group_id: group.group_id.clone(),
        value: Some(group.metadata_value()),
    });
    let parked: Vec<(String, super::types::ReplyTo)> = group
        .members
        .values_mut()
        .filter_map(|m| m.awaiting_sync.take().map(|to| (m.member_id.clone(), to)))
        .collect();
    for (member_id, to) in parked {
        out.reply(to, Reply::Sync(synced(group, &member_id)));
    }
}

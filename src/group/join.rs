//! JoinGroup and the rebalance it drives: new, pending, known and static members,
//! the initial rebalance delay, completion of the join phase and leader election.

use kafka_protocol::error::ResponseError;

use super::classic::{ClassicGroup, GroupState, Member};
use super::coordinator::GroupCoordinator;
use super::types::{JoinRequest, JoinResponse, Output, Record, Reply, TimerKey};

impl GroupCoordinator {
    /// JoinGroup. The caller's own answer is in `replies` under `req.reply_to`, unless the
    /// request is parked until the rebalance completes.
    pub fn join(&mut self, req: JoinRequest) -> Output {
        let mut out = Output::default();
        tracing::debug!(group = %req.group_id, member = %req.member_id,
            state = ?self.groups.get(&req.group_id).map(|g| (g.state, g.generation_id, g.leader.clone())),
            "JoinGroup");
        if let Err(error) = self.join_inner(&mut out, &req) {
            out.reply(
                req.reply_to,
                Reply::Join(JoinResponse::error(&req.member_id, error)),
            );
            // A group created only for this failed join would otherwise linger.
            let unused = self.groups.get(&req.group_id).is_some_and(|g| {
                g.is(GroupState::Empty)
                    && g.generation_id == 0
                    && g.members.is_empty()
                    && g.pending_members.is_empty()
                    && g.offsets.is_empty()
            });
            if unused {
                self.groups.remove(&req.group_id);
            }
        }
        out
    }

    fn join_inner(&mut self, out: &mut Output, req: &JoinRequest) -> Result<(), ResponseError> {
        if req.group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        if self.consumer_groups.contains_key(&req.group_id) {
            // The id belongs to a `consumer` group; classic members cannot join it.
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Err(ResponseError::InvalidSessionTimeout);
        }
        let is_new = req.member_id.is_empty();
        if !self.groups.contains_key(&req.group_id) {
            if !is_new {
                return Err(ResponseError::UnknownMemberId);
            }
            let group = ClassicGroup::new(&req.group_id, req.now_ms);
            self.groups.insert(req.group_id.clone(), group);
        }
        let max_size = self.config.max_size;
        let group = self.group_mut(&req.group_id)?;
        if group.is(GroupState::Dead) {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let known_static = req
            .group_instance_id
            .as_ref()
            .and_then(|i| group.static_members.get(i))
            .cloned();
        if known_static.is_none() && !accepts(group, &req.member_id, max_size) {
            return Err(ResponseError::GroupMaxSizeReached);
        }
        if !group.supports_protocols(&req.protocol_type, &req.protocols) {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        if !is_new {
            return self.join_known_member(out, req);
        }
        let member_id = self.new_member_id(&req.group_id, &req.client_id);
        if let Some(old_id) = known_static {
            return self.replace_static_member(out, req, &old_id, member_id);
        }
        if req.group_instance_id.is_none() && req.require_known_member_id {
            // The member must come back with this id; until then it is pending and holds
            // up the rebalance, and its session bounds how long it may take.
            let group = self.group_mut(&req.group_id)?;
            group
                .pending_members
                .insert(member_id.clone(), req.session_timeout_ms);
            self.schedule_heartbeat(
                out,
                &req.group_id,
                &member_id,
                req.session_timeout_ms,
                req.now_ms,
            );
            out.reply(
                req.reply_to,
                Reply::Join(JoinResponse::error(
                    &member_id,
                    ResponseError::MemberIdRequired,
                )),
            );
            return Ok(());
        }
        self.add_member_and_rebalance(out, req, member_id)
    }

    pub(crate) fn group_mut(&mut self, group_id: &str) -> Result<&mut ClassicGroup, ResponseError> {
        self.groups
            .get_mut(group_id)
            .ok_or(ResponseError::UnknownMemberId)
    }

    fn join_known_member(
        &mut self,
        out: &mut Output,
        req: &JoinRequest,
    ) -> Result<(), ResponseError> {
        let group = self.group_mut(&req.group_id)?;
        if group.pending_members.contains_key(&req.member_id) {
            return self.add_member_and_rebalance(out, req, req.member_id.clone());
        }
        if let Some(instance) = &req.group_instance_id {
            if let Some(current) = group.static_members.get(instance) {
                if *current != req.member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
            }
        }
        let Some(member) = group.members.get(&req.member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        let same_protocols = member.protocols == req.protocols;
        let is_leader = group.leader.as_deref() == Some(req.member_id.as_str());
        match group.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(out, req),
            // Same metadata: the member probably lost our JoinGroup answer; resend it.
            GroupState::CompletingRebalance if same_protocols => {
                let response = group.join_response(&req.member_id, None);
                out.reply(req.reply_to, Reply::Join(response));
                let session = req.session_timeout_ms;
                self.schedule_heartbeat(out, &req.group_id, &req.member_id, session, req.now_ms);
                Ok(())
            }
            GroupState::CompletingRebalance => self.update_member_and_rebalance(out, req),
            // A follower with unchanged metadata rejoining a stable group changes nothing;
            // the leader rejoining means it wants a new assignment computed.
            GroupState::Stable if same_protocols && !is_leader => {
                let response = group.join_response(&req.member_id, None);
                out.reply(req.reply_to, Reply::Join(response));
                let session = req.session_timeout_ms;
                self.schedule_heartbeat(out, &req.group_id, &req.member_id, session, req.now_ms);
                Ok(())
            }
            GroupState::Stable => self.update_member_and_rebalance(out, req),
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId),
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        out: &mut Output,
        req: &JoinRequest,
        member_id: String,
    ) -> Result<(), ResponseError> {
        let group = self.group_mut(&req.group_id)?;
        group.pending_members.remove(&member_id);
        if group.in_initial_delay {
            group.new_member_during_delay = true;
        }
        group.add_member(Member {
            member_id: member_id.clone(),
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols.clone(),
            assignment: Vec::new(),
            awaiting_join: Some(req.reply_to),
            awaiting_sync: None,
        });
        self.schedule_heartbeat(
            out,
            &req.group_id,
            &member_id,
            req.session_timeout_ms,
            req.now_ms,
        );
        self.maybe_prepare_rebalance(out, &req.group_id, req.now_ms);
        self.try_complete_join(out, &req.group_id, req.now_ms);
        Ok(())
    }

    fn update_member_and_rebalance(
        &mut self,
        out: &mut Output,
        req: &JoinRequest,
    ) -> Result<(), ResponseError> {
        let group = self.group_mut(&req.group_id)?;
        let Some(member) = group.members.get_mut(&req.member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        member.protocols = req.protocols.clone();
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        // A retried JoinGroup supersedes the parked one; the old one still gets an answer
        // so the caller can release it.
        if let Some(old) = member.awaiting_join.replace(req.reply_to) {
            if old != req.reply_to {
                let response =
                    JoinResponse::error(&req.member_id, ResponseError::RebalanceInProgress);
                out.reply(old, Reply::Join(response));
            }
        }
        self.schedule_heartbeat(
            out,
            &req.group_id,
            &req.member_id,
            req.session_timeout_ms,
            req.now_ms,
        );
        self.maybe_prepare_rebalance(out, &req.group_id, req.now_ms);
        self.try_complete_join(out, &req.group_id, req.now_ms);
        Ok(())
    }

    /// KIP-345: a static member restarted (empty member id, known instance id). It gets
    /// a new member id; the old one is fenced. A Stable group whose protocol does not
    /// change keeps its assignment: no rebalance.
    fn replace_static_member(
        &mut self,
        out: &mut Output,
        req: &JoinRequest,
        old_id: &str,
        new_id: String,
    ) -> Result<(), ResponseError> {
        let group = self.group_mut(&req.group_id)?;
        let old_leader = group.leader.clone();
        let was_leader = old_leader.as_deref() == Some(old_id);
        let Some(mut member) = group.remove_member(old_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        if let Some(to) = member.awaiting_join.take() {
            let response = JoinResponse::error(old_id, ResponseError::FencedInstanceId);
            out.reply(to, Reply::Join(response));
        }
        if let Some(to) = member.awaiting_sync.take() {
            out.reply(
                to,
                Reply::Sync(super::types::SyncResponse::error(
                    ResponseError::FencedInstanceId,
                )),
            );
        }
        let protocols_unchanged = member.protocols == req.protocols;
        member.member_id = new_id.clone();
        member.protocols = req.protocols.clone();
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        group.add_member(member);
        if was_leader {
            group.leader = Some(new_id.clone());
        }
        let state = group.state;
        let selected_unchanged = group.select_protocol() == group.protocol_name;
        self.cancel_timer(
            out,
            TimerKey::Heartbeat {
                group_id: req.group_id.clone(),
                member_id: old_id.to_string(),
            },
        );
        self.schedule_heartbeat(
            out,
            &req.group_id,
            &new_id,
            req.session_timeout_ms,
            req.now_ms,
        );
        let group = self.group_mut(&req.group_id)?;
        if state == GroupState::Stable && selected_unchanged && protocols_unchanged {
            out.records.push(Record::Group {
                group_id: req.group_id.clone(),
                value: Some(group.metadata_value()),
            });
            // The old leader id is returned so that a restarted leader does not compute
            // an assignment a Stable group would never distribute.
            let response = group.join_response(&new_id, old_leader.as_deref());
            out.reply(
                req.reply_to,
                Reply::Join(JoinResponse {
                    members: Vec::new(),
                    ..response
                }),
            );
            return Ok(());
        }
        if let Some(m) = group.members.get_mut(&new_id) {
            m.awaiting_join = Some(req.reply_to);
        }
        self.maybe_prepare_rebalance(out, &req.group_id, req.now_ms);
        self.try_complete_join(out, &req.group_id, req.now_ms);
        Ok(())
    }

    pub(crate) fn maybe_prepare_rebalance(
        &mut self,
        out: &mut Output,
        group_id: &str,
        now_ms: u64,
    ) {
        let can = self.groups.get(group_id).is_some_and(|g| {
            matches!(
                g.state,
                GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
            )
        });
        if can {
            self.prepare_rebalance(out, group_id, now_ms);
        }
    }

    fn prepare_rebalance(&mut self, out: &mut Output, group_id: &str, now_ms: u64) {
        let initial_delay = self.config.initial_rebalance_delay_ms;
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if group.is(GroupState::CompletingRebalance) {
            // Assignments of the aborted generation must not leak into the next one.
            for member in group.members.values_mut() {
                member.assignment.clear();
                if let Some(to) = member.awaiting_sync.take() {
                    let response =
                        super::types::SyncResponse::error(ResponseError::RebalanceInProgress);
                    out.reply(to, Reply::Sync(response));
                }
            }
        }
        group.pending_sync.clear();
        let sync_key = TimerKey::Sync {
            group_id: group_id.to_string(),
            generation_id: group.generation_id,
        };
        let from_empty = group.is(GroupState::Empty);
        group.transition(GroupState::PreparingRebalance, now_ms);
        let delay = if from_empty {
            group.in_initial_delay = true;
            group.new_member_during_delay = false;
            group.initial_delay_ms = initial_delay;
            group.initial_delay_remaining_ms =
                group.rebalance_timeout_ms().saturating_sub(initial_delay);
            initial_delay
        } else {
            group.in_initial_delay = false;
            group.rebalance_timeout_ms()
        };
        self.cancel_timer(out, sync_key);
        let key = TimerKey::Join {
            group_id: group_id.to_string(),
        };
        self.set_timer(out, key, now_ms.saturating_add(delay));
    }

    /// Completes the join phase early once every member has rejoined (never during the
    /// initial delay, whose point is to wait for members not known yet).
    pub(crate) fn try_complete_join(&mut self, out: &mut Output, group_id: &str, now_ms: u64) {
        let ready = self.groups.get(group_id).is_some_and(|g| {
            g.is(GroupState::PreparingRebalance) && !g.in_initial_delay && g.all_members_joined()
        });
        if ready {
            self.complete_join(out, group_id, now_ms);
        }
    }

    pub(crate) fn on_join_timer(&mut self, out: &mut Output, group_id: &str, now_ms: u64) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if !group.is(GroupState::PreparingRebalance) {
            return;
        }
        if group.in_initial_delay
            && group.new_member_during_delay
            && group.initial_delay_remaining_ms > 0
        {
            // Members are still arriving: wait another delay, bounded by the rebalance timeout.
            group.new_member_during_delay = false;
            let delay = self
                .config
                .initial_rebalance_delay_ms
                .min(group.initial_delay_remaining_ms);
            group.initial_delay_remaining_ms = group
                .initial_delay_remaining_ms
                .saturating_sub(group.initial_delay_ms);
            group.initial_delay_ms = delay;
            let key = TimerKey::Join {
                group_id: group_id.to_string(),
            };
            self.set_timer(out, key, now_ms.saturating_add(delay));
            return;
        }
        self.complete_join(out, group_id, now_ms);
    }

    fn complete_join(&mut self, out: &mut Output, group_id: &str, now_ms: u64) {
        let join_key = TimerKey::Join {
            group_id: group_id.to_string(),
        };
        self.cancel_timer(out, join_key.clone());
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        group.in_initial_delay = false;
        // Dynamic members that did not rejoin in time are gone; static ones stay until
        // their session expires (they may be restarting).
        let gone: Vec<String> = group
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in &gone {
            group.remove_member(member_id);
        }
        if !gone.is_empty() {
            tracing::debug!(group = %group_id, removed = ?gone, "members that did not rejoin removed");
        }
        let has_leader = group.elect_joined_leader();
        let no_members = group.members.is_empty();
        let timeout = group.rebalance_timeout_ms();
        for member_id in gone {
            let key = TimerKey::Heartbeat {
                group_id: group_id.to_string(),
                member_id,
            };
            self.cancel_timer(out, key);
        }
        if !has_leader && !no_members {
            // Only static members that did not rejoin remain: wait for them (or for their
            // sessions to expire) another rebalance timeout.
            self.set_timer(out, join_key, now_ms.saturating_add(timeout));
            return;
        }
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        group.generation_id = group.generation_id.wrapping_add(1);
        group.rebalances = group.rebalances.saturating_add(1);
        if no_members {
            group.protocol_name = None;
            group.leader = None;
            group.transition(GroupState::Empty, now_ms);
            out.records.push(Record::Group {
                group_id: group_id.to_string(),
                value: Some(group.metadata_value()),
            });
            return;
        }
        group.protocol_name = group.select_protocol();
        group.transition(GroupState::CompletingRebalance, now_ms);
        tracing::debug!(group = %group_id, generation = group.generation_id,
            leader = ?group.leader, members = ?group.members.keys().collect::<Vec<_>>(),
            "join phase complete");
        group.pending_sync = group.members.keys().cloned().collect();
        let sync_key = TimerKey::Sync {
            group_id: group_id.to_string(),
            generation_id: group.generation_id,
        };
        let mut joined = Vec::new();
        let members: Vec<String> = group.members.keys().cloned().collect();
        for member_id in members {
            let response = group.join_response(&member_id, None);
            if let Some(member) = group.members.get_mut(&member_id) {
                if let Some(to) = member.awaiting_join.take() {
                    out.reply(to, Reply::Join(response));
                    joined.push((member_id, member.session_timeout_ms));
                }
            }
        }
        for (member_id, session) in joined {
            self.schedule_heartbeat(out, group_id, &member_id, session, now_ms);
        }
        self.set_timer(out, sync_key, now_ms.saturating_add(timeout));
    }
}

/// Kafka's acceptJoiningMember: `group.max.size` counts the members that would be in the
/// next generation.
fn accepts(group: &ClassicGroup, member_id: &str, max_size: usize) -> bool {
    match group.state {
        GroupState::Empty | GroupState::Dead => true,
        GroupState::PreparingRebalance => {
            let awaiting = group
                .members
                .values()
                .filter(|m| m.awaiting_join.is_some())
                .count();
            group
                .members
                .get(member_id)
                .is_some_and(|m| m.awaiting_join.is_some())
                || awaiting < max_size
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            group.members.contains_key(member_id) || group.members.len() < max_size
        }
    }
}

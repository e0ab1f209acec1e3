//! Committed offsets: OffsetCommit validation against the group's generation (or a
//! `consumer` group member's epoch), OffsetFetch, expiry after
//! `offsets.retention.minutes`, and replay of `__consumer_offsets` records on becoming
//! coordinator. Both group types keep their offsets in the same shape ([`Offsets`]);
//! whichever group holds a group id holds its offsets.

use kafka_protocol::error::ResponseError;

use std::collections::BTreeMap;

use super::classic::{ClassicGroup, GroupState, Member};
use super::consumer_admin::validate_consumer_commit;
use super::coordinator::GroupCoordinator;
use super::membership::validate_member;
use super::types::{Output, Record};

/// Kafka's OffsetCommitValue.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: u64,
    /// Set by v1–v4 requests with an explicit retention time.
    pub expire_timestamp_ms: Option<u64>,
}

/// Committed offsets of one group by (topic, partition).
pub type Offsets = BTreeMap<(String, i32), OffsetValue>;

#[derive(Debug, Clone, PartialEq)]
pub struct CommitPartition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// OffsetCommit, decoded. `generation_id` is -1 for a standalone (simple) commit.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v2–v4 `retention_time_ms`; None or negative means the broker's retention.
    pub retention_ms: Option<i64>,
    pub partitions: Vec<CommitPartition>,
    pub now_ms: u64,
}

/// OffsetFetch for one group; `topics: None` asks for every committed offset.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetFetchRequest {
    pub group_id: String,
    pub topics: Option<Vec<(String, Vec<i32>)>>,
    pub require_stable: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OffsetFetchPartition {
    pub topic: String,
    pub partition: i32,
    /// -1 when nothing is committed.
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub error: Option<ResponseError>,
}

impl GroupCoordinator {
    /// OffsetCommit: one result per requested partition, plus the records to persist.
    pub fn commit_offsets(
        &mut self,
        req: &OffsetCommitRequest,
    ) -> (Vec<(String, i32, Option<ResponseError>)>, Output) {
        let mut out = Output::default();
        let verdict = self.validate_commit(req);
        let max_metadata = self.config.offset_metadata_max_bytes;
        let mut results = Vec::with_capacity(req.partitions.len());
        for p in &req.partitions {
            let error = match verdict {
                Err(e) => Some(e),
                Ok(()) => {
                    let metadata = p.metadata.clone().unwrap_or_default();
                    if metadata.len() > max_metadata {
                        Some(ResponseError::OffsetMetadataTooLarge)
                    } else {
                        let value = OffsetValue {
                            offset: p.offset,
                            leader_epoch: p.leader_epoch,
                            metadata,
                            commit_timestamp_ms: req.now_ms,
                            expire_timestamp_ms: req
                                .retention_ms
                                .and_then(|r| u64::try_from(r).ok())
                                .map(|r| req.now_ms.saturating_add(r)),
                        };
                        if let Some(offsets) = self.offsets_mut(&req.group_id) {
                            offsets.insert((p.topic.clone(), p.partition), value.clone());
                        }
                        out.records.push(Record::Offset {
                            group_id: req.group_id.clone(),
                            topic: p.topic.clone(),
                            partition: p.partition,
                            value: Some(value),
                        });
                        None
                    }
                }
            };
            results.push((p.topic.clone(), p.partition, error));
        }
        (results, out)
    }

    pub(crate) fn validate_commit(
        &mut self,
        req: &OffsetCommitRequest,
    ) -> Result<(), ResponseError> {
        if req.group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        if let Some(group) = self.consumer_groups.get(&req.group_id) {
            // The generation id field carries the member epoch.
            return validate_consumer_commit(group, &req.member_id, req.generation_id);
        }
        if !self.groups.contains_key(&req.group_id) {
            // A group that only stores offsets springs into being on its first commit.
            if req.generation_id >= 0 {
                return Err(ResponseError::IllegalGeneration);
            }
            let group = ClassicGroup::new(&req.group_id, req.now_ms);
            self.groups.insert(req.group_id.clone(), group);
        }
        let group = self.group_mut(&req.group_id)?;
        if group.is(GroupState::Dead) {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if req.generation_id < 0 && group.is(GroupState::Empty) {
            return Ok(());
        }
        if req.generation_id >= 0 || !req.member_id.is_empty() || req.group_instance_id.is_some() {
            validate_member(group, &req.member_id, req.group_instance_id.as_deref())?;
            if req.generation_id != group.generation_id {
                return Err(ResponseError::IllegalGeneration);
            }
        } else {
            // No member and no generation (v0): only an empty group takes such commits.
            return Err(ResponseError::UnknownMemberId);
        }
        if group.is(GroupState::CompletingRebalance) {
            // The member has the new generation but not its assignment yet.
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// OffsetFetch. With `require_stable`, a partition that a transaction not yet decided
    /// commits an offset for answers UNSTABLE_OFFSET_COMMIT (the client retries).
    pub fn fetch_offsets(&self, req: &OffsetFetchRequest) -> Vec<OffsetFetchPartition> {
        let offsets = self.offsets(&req.group_id);
        let found = |topic: &str, partition: i32| {
            if req.require_stable && self.has_pending_offset(&req.group_id, topic, partition) {
                return OffsetFetchPartition {
                    topic: topic.to_string(),
                    partition,
                    offset: -1,
                    leader_epoch: -1,
                    metadata: String::new(),
                    error: Some(ResponseError::UnstableOffsetCommit),
                };
            }
            let value = offsets.and_then(|o| o.get(&(topic.to_string(), partition)));
            OffsetFetchPartition {
                topic: topic.to_string(),
                partition,
                offset: value.map_or(-1, |v| v.offset),
                leader_epoch: value.map_or(-1, |v| v.leader_epoch),
                metadata: value.map(|v| v.metadata.clone()).unwrap_or_default(),
                error: None,
            }
        };
        match &req.topics {
            Some(topics) => topics
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (t, *p)))
                .map(|(t, p)| found(t, p))
                .collect(),
            None => offsets
                .map(|o| o.keys().map(|(t, p)| found(t, *p)).collect())
                .unwrap_or_default(),
        }
    }

    /// The offsets of a group of either type.
    pub fn offsets(&self, group_id: &str) -> Option<&Offsets> {
        match self.consumer_groups.get(group_id) {
            Some(g) => Some(&g.offsets),
            None => self.groups.get(group_id).map(|g| &g.offsets),
        }
    }

    pub(crate) fn offsets_mut(&mut self, group_id: &str) -> Option<&mut Offsets> {
        match self.consumer_groups.get_mut(group_id) {
            Some(g) => Some(&mut g.offsets),
            None => self.groups.get_mut(group_id).map(|g| &mut g.offsets),
        }
    }

    /// Applies an offset record to whichever group holds the id; an unknown id gets an
    /// offsets-only classic group (what a standalone commit creates).
    pub(crate) fn apply_offset(
        &mut self,
        group_id: &str,
        key: (String, i32),
        value: Option<&OffsetValue>,
        now_ms: u64,
    ) {
        if self.offsets(group_id).is_none() {
            let group = ClassicGroup::new(group_id, now_ms);
            self.groups.insert(group_id.to_string(), group);
        }
        if let Some(offsets) = self.offsets_mut(group_id) {
            match value {
                Some(v) => {
                    offsets.insert(key, v.clone());
                }
                None => {
                    offsets.remove(&key);
                }
            }
        }
    }

    /// Kafka's offset cleanup: offsets of an Empty group expire `offsets.retention.minutes`
    /// after it became Empty; those of a standalone group that long after their commit; an
    /// explicit expire timestamp wins. An Empty group left with no offsets is deleted.
    pub fn expire_offsets(&mut self, now_ms: u64) -> Output {
        let mut out = Output::default();
        let retention = self.config.offsets_retention_ms;
        let mut dead = Vec::new();
        for group in self.groups.values_mut() {
            let base_of_group = match (&group.protocol_type, group.state) {
                (Some(_), GroupState::Empty) => Some(group.state_since_ms),
                (None, _) => None,
                _ => continue,
            };
            let expired: Vec<(String, i32)> = group
                .offsets
                .iter()
                .filter(|(_, v)| {
                    let deadline = v.expire_timestamp_ms.unwrap_or_else(|| {
                        base_of_group
                            .unwrap_or(v.commit_timestamp_ms)
                            .saturating_add(retention)
                    });
                    now_ms >= deadline
                })
                .map(|(k, _)| k.clone())
                .collect();
            for key in expired {
                group.offsets.remove(&key);
                out.records.push(Record::Offset {
                    group_id: group.group_id.clone(),
                    topic: key.0,
                    partition: key.1,
                    value: None,
                });
            }
            if group.is(GroupState::Empty) && group.offsets.is_empty() {
                dead.push(group.group_id.clone());
            }
        }
        for group_id in dead {
            self.remove_group(&mut out, &group_id);
        }
        self.expire_consumer_offsets(&mut out, now_ms);
        out
    }

    /// Applies a record read back from `__consumer_offsets` (the new coordinator replays
    /// its partition in order). Loaded members get a fresh session from `now_ms`.
    pub fn replay(&mut self, record: &Record, now_ms: u64) -> Output {
        let mut out = Output::default();
        if self.apply_consumer_record(record, now_ms) {
            self.replay_consumer_timers(&mut out, record, now_ms);
            return out;
        }
        match record {
            Record::Offset {
                group_id,
                topic,
                partition,
                value,
            } => {
                let key = (topic.clone(), *partition);
                self.apply_offset(group_id, key, value.as_ref(), now_ms);
            }
            Record::Group {
                group_id,
                value: None,
            } => {
                // Offsets outlive the group metadata (an empty group converted to a
                // `consumer` group keeps them); deleting a group tombstones them first.
                self.drop_classic_group_keep_offsets(group_id, now_ms);
            }
            Record::Group {
                group_id,
                value: Some(v),
            } => {
                let offsets = match self.groups.remove(group_id) {
                    Some(g) => g.offsets,
                    None => self
                        .consumer_groups
                        .remove(group_id)
                        .map(|g| g.offsets)
                        .unwrap_or_default(),
                };
                let mut group = ClassicGroup::new(group_id, v.current_state_timestamp_ms);
                group.offsets = offsets;
                group.generation_id = v.generation_id;
                group.protocol_name = v.protocol_name.clone();
                for m in &v.members {
                    let protocol = v.protocol_name.clone().unwrap_or_default();
                    group.add_member(Member {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        session_timeout_ms: m.session_timeout_ms,
                        rebalance_timeout_ms: m.rebalance_timeout_ms,
                        protocol_type: v.protocol_type.clone(),
                        protocols: vec![(protocol, m.subscription.clone())],
                        assignment: m.assignment.clone(),
                        awaiting_join: None,
                        awaiting_sync: None,
                    });
                }
                group.protocol_type = Some(v.protocol_type.clone()).filter(|t| !t.is_empty());
                group.leader = v.leader.clone().filter(|l| group.members.contains_key(l));
                if !group.members.is_empty() {
                    group.state = GroupState::Stable;
                }
                let sessions: Vec<(String, i32)> = group
                    .members
                    .values()
                    .map(|m| (m.member_id.clone(), m.session_timeout_ms))
                    .collect();
                self.groups.insert(group_id.clone(), group);
                for (member_id, session) in sessions {
                    self.schedule_heartbeat(&mut out, group_id, &member_id, session, now_ms);
                }
            }
            // Applied above by apply_consumer_record.
            _ => {}
        }
        out
    }
}

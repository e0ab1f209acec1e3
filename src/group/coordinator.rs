//! The coordinator of many groups: the maps of classic and `consumer` groups (a group
//! id is in at most one), the timers that drive them, and the admin views
//! (DescribeGroups, ListGroups, DeleteGroups) and replay of records.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;

use super::classic::{ClassicGroup, GroupState};
use super::consumer::{ConsumerGroup, ConsumerGroupState};
use super::types::{
    GroupConfig, GroupDescription, GroupListing, Output, Record, TimerKey, TimerOp,
};

/// All groups of one `__consumer_offsets` partition (or of a single-node broker).
#[derive(Debug)]
pub struct GroupCoordinator {
    pub(crate) config: GroupConfig,
    pub(crate) groups: BTreeMap<String, ClassicGroup>,
    /// KIP-848 groups; never the id of a classic group.
    pub(crate) consumer_groups: BTreeMap<String, ConsumerGroup>,
    timers: BTreeMap<TimerKey, u64>,
    /// Offsets committed in transactions not yet decided, by producer id (see
    /// `txn_offsets`).
    pub(crate) pending_txn: BTreeMap<i64, Vec<super::txn_offsets::PendingOffset>>,
    /// Member ids must be unique across restarts of the coordinator, so the caller seeds
    /// them (e.g. with random bits) and a counter makes them unique within this run.
    id_seed: u64,
    id_counter: u64,
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig, id_seed: u64) -> Self {
        GroupCoordinator {
            config,
            groups: BTreeMap::new(),
            consumer_groups: BTreeMap::new(),
            timers: BTreeMap::new(),
            pending_txn: BTreeMap::new(),
            id_seed,
            id_counter: 0,
        }
    }

    pub fn group(&self, group_id: &str) -> Option<&ClassicGroup> {
        self.groups.get(group_id)
    }

    pub fn consumer_group(&self, group_id: &str) -> Option<&ConsumerGroup> {
        self.consumer_groups.get(group_id)
    }

    /// The earliest timer deadline, for the caller to sleep until.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.values().min().copied()
    }

    /// A fresh member id, `<client id>-<seed>-<counter>` (Kafka uses client id + UUID).
    pub(crate) fn new_member_id(&mut self, group_id: &str, client_id: &str) -> String {
        loop {
            self.id_counter = self.id_counter.wrapping_add(1);
            let id = format!("{client_id}-{:016x}-{}", self.id_seed, self.id_counter);
            let taken = self.groups.get(group_id).is_some_and(|g| {
                g.members.contains_key(&id) || g.pending_members.contains_key(&id)
            });
            if !taken {
                return id;
            }
        }
    }

    /// A fresh `consumer` group member id (v0 requests; from v1 clients choose their
    /// own): a UUID made of the seed and the counter, as Kafka uses random UUIDs.
    pub(crate) fn new_consumer_member_id(&mut self) -> String {
        self.id_counter = self.id_counter.wrapping_add(1);
        uuid::Uuid::from_u64_pair(self.id_seed, self.id_counter).to_string()
    }

    pub(crate) fn set_timer(&mut self, out: &mut Output, key: TimerKey, deadline_ms: u64) {
        self.timers.insert(key.clone(), deadline_ms);
        out.timers.push(TimerOp::Set { key, deadline_ms });
    }

    pub(crate) fn cancel_timer(&mut self, out: &mut Output, key: TimerKey) {
        if self.timers.remove(&key).is_some() {
            out.timers.push(TimerOp::Cancel { key });
        }
    }

    /// (Re)starts a member's session: it expires `session_timeout_ms` from now.
    pub(crate) fn schedule_heartbeat(
        &mut self,
        out: &mut Output,
        group_id: &str,
        member_id: &str,
        session_timeout_ms: i32,
        now_ms: u64,
    ) {
        let key = TimerKey::Heartbeat {
            group_id: group_id.to_string(),
            member_id: member_id.to_string(),
        };
        let deadline = now_ms.saturating_add(super::classic::ms(session_timeout_ms));
        self.set_timer(out, key, deadline);
    }

    /// Fires every timer due at `now_ms`, earliest first. Timers that firing sets for
    /// `now_ms` itself (a zero delay) fire in further rounds, but only a bounded number:
    /// a zero timeout from a client must not spin the coordinator; whatever is still due
    /// afterwards shows in [`Self::next_deadline`] for the next tick.
    pub fn tick(&mut self, now_ms: u64) -> Output {
        const MAX_ROUNDS: usize = 8;
        let mut out = Output::default();
        for _ in 0..MAX_ROUNDS {
            let mut due: Vec<(u64, TimerKey)> = self
                .timers
                .iter()
                .filter(|(_, d)| **d <= now_ms)
                .map(|(k, d)| (*d, k.clone()))
                .collect();
            if due.is_empty() {
                break;
            }
            due.sort();
            for (_, key) in due {
                self.fire(&mut out, key, now_ms);
            }
        }
        out
    }

    fn fire(&mut self, out: &mut Output, key: TimerKey, now_ms: u64) {
        // An earlier timer of this round may have cancelled or moved this one.
        match self.timers.get(&key) {
            Some(deadline) if *deadline <= now_ms => {}
            _ => return,
        }
        self.timers.remove(&key);
        match key {
            TimerKey::Heartbeat {
                group_id,
                member_id,
            } => self.on_session_expired(out, &group_id, &member_id, now_ms),
            TimerKey::Join { group_id } => self.on_join_timer(out, &group_id, now_ms),
            TimerKey::Sync {
                group_id,
                generation_id,
            } => self.on_sync_timer(out, &group_id, generation_id, now_ms),
            TimerKey::ConsumerSession {
                group_id,
                member_id,
            } => self.on_consumer_session_expired(out, &group_id, &member_id, now_ms),
            TimerKey::ConsumerRebalance {
                group_id,
                member_id,
            } => self.on_consumer_rebalance_timeout(out, &group_id, &member_id, now_ms),
        }
    }

    /// DescribeGroups for one group; an unknown group is described as Dead (Kafka). A
    /// `consumer` group is Dead with GROUP_ID_NOT_FOUND, as Kafka 4 answers (it is
    /// described by ConsumerGroupDescribe); Kafka only sends that error code from
    /// DescribeGroups v6 on, older versions just say Dead.
    pub fn describe_group(&self, group_id: &str) -> GroupDescription {
        let is_consumer = self.consumer_groups.contains_key(group_id);
        match self.groups.get(group_id) {
            Some(g) => g.describe(),
            None => GroupDescription {
                group_id: group_id.to_string(),
                error: is_consumer.then_some(ResponseError::GroupIdNotFound),
                state: GroupState::Dead.name(),
                protocol_type: String::new(),
                protocol_name: String::new(),
                members: Vec::new(),
            },
        }
    }

    /// ListGroups; an empty filter matches everything, states and types compare
    /// case-insensitively. Classic groups come first, then `consumer` groups.
    pub fn list_groups(&self, states: &[String], types: &[String]) -> Vec<GroupListing> {
        let wanted = |state: &str, group_type: &str| {
            (states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(state)))
                && (types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(group_type)))
        };
        let consumer = self
            .consumer_groups
            .values()
            .filter(|g| wanted(g.state().name(), "consumer"))
            .map(|g| GroupListing {
                group_id: g.group_id.clone(),
                protocol_type: "consumer".to_string(),
                state: g.state().name(),
                group_type: "consumer",
            });
        self.groups
            .values()
            .filter(|g| !g.is(GroupState::Dead))
            .filter(|g| {
                states.is_empty()
                    || states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state.name()))
            })
            .filter(|_| types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case("classic")))
            .map(|g| GroupListing {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name(),
                group_type: "classic",
            })
            .chain(consumer)
            .collect()
    }

    /// DeleteGroups: only an Empty group can go; its offsets and metadata get tombstones.
    pub fn delete_groups(
        &mut self,
        group_ids: &[String],
    ) -> (Vec<(String, Option<ResponseError>)>, Output) {
        let mut out = Output::default();
        let mut results = Vec::with_capacity(group_ids.len());
        for group_id in group_ids {
            if let Some(group) = self.consumer_groups.get(group_id) {
                let error = if group.state() == ConsumerGroupState::Empty {
                    self.remove_consumer_group(&mut out, group_id);
                    None
                } else {
                    Some(ResponseError::NonEmptyGroup)
                };
                results.push((group_id.clone(), error));
                continue;
            }
            let error = match self.groups.get(group_id).map(|g| g.state) {
                _ if group_id.is_empty() => Some(ResponseError::InvalidGroupId),
                None | Some(GroupState::Dead) => Some(ResponseError::GroupIdNotFound),
                Some(GroupState::Empty) => {
                    self.remove_group(&mut out, group_id);
                    None
                }
                Some(_) => Some(ResponseError::NonEmptyGroup),
            };
            results.push((group_id.clone(), error));
        }
        (results, out)
    }

    /// Drops a group: tombstones for each offset and for the group metadata.
    pub(crate) fn remove_group(&mut self, out: &mut Output, group_id: &str) {
        let Some(group) = self.groups.remove(group_id) else {
            return;
        };
        for (topic, partition) in group.offsets.keys() {
            out.records.push(Record::Offset {
                group_id: group_id.to_string(),
                topic: topic.clone(),
                partition: *partition,
                value: None,
            });
        }
        out.records.push(Record::Group {
            group_id: group_id.to_string(),
            value: None,
        });
        self.cancel_timer(
            out,
            TimerKey::Join {
                group_id: group_id.to_string(),
            },
        );
    }
}

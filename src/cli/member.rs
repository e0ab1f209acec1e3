//! A member of a consumer group under the consumer group protocol (KIP-848), for
//! `weir consume --group`: it joins with ConsumerGroupHeartbeat, reads its partitions
//! from the coordinator's assignment, gives back revoked partitions after committing
//! their positions, commits with its member epoch (OffsetCommit v9) and leaves with
//! epoch -1. The assignor is the broker's, so several `weir consume --group` processes
//! split a topic's partitions as any KIP-848 consumers would.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

use super::{error_text, Admin, CliError};

/// How long the member may take between heartbeats while it revokes partitions.
const REBALANCE_TIMEOUT_MS: i32 = 30_000;

/// How long a request keeps being retried while the coordinator moves or loads.
const COORDINATOR_RETRY: Duration = Duration::from_secs(30);

/// Coordinator errors a Kafka client retries: the group's coordinator is loading its
/// state (ask it again), or is elsewhere or not elected yet (look it up again first).
const LOAD_IN_PROGRESS: i16 = 14;
const NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;

pub struct GroupMember {
    group: String,
    topic: String,
    topic_id: Uuid,
    coordinator: i32,
    version: i16,
    member_id: String,
    epoch: i32,
    interval: Duration,
    next_heartbeat: Instant,
    /// The partitions of `topic` the member owns, once the coordinator said.
    owned: Option<BTreeSet<i32>>,
}

/// What changed in the member's assignment at a heartbeat.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub added: Vec<i32>,
    pub revoked: Vec<i32>,
}

impl GroupMember {
    /// Joins `group` subscribed to `topic` (whose id is `topic_id`).
    pub async fn join(
        admin: &mut Admin,
        group: &str,
        topic: &str,
        topic_id: Uuid,
    ) -> Result<(GroupMember, Change), CliError> {
        let version = admin.version(ApiKey::ConsumerGroupHeartbeat, 0, 1)?;
        let coordinator = admin.coordinator(group).await?;
        let mut m = GroupMember {
            group: group.to_string(),
            topic: topic.to_string(),
            topic_id,
            coordinator,
            version,
            // v1+: the member picks its id (KIP-1082); v0: the coordinator does.
            member_id: if version >= 1 {
                Uuid::new_v4().to_string()
            } else {
                String::new()
            },
            epoch: 0,
            interval: Duration::from_secs(1),
            next_heartbeat: Instant::now(),
            owned: None,
        };
        let change = m.heartbeat(admin, true).await?;
        Ok((m, change))
    }

    pub fn coordinator(&self) -> i32 {
        self.coordinator
    }

    /// The partitions owned, if the coordinator has assigned any yet.
    pub fn owned(&self) -> Option<&BTreeSet<i32>> {
        self.owned.as_ref()
    }

    /// Heartbeats when due (or now with `force`): the changes to the assignment.
    pub async fn heartbeat(&mut self, admin: &mut Admin, force: bool) -> Result<Change, CliError> {
        if !force && Instant::now() < self.next_heartbeat {
            return Ok(Change::default());
        }
        let joining = self.epoch == 0;
        let mut req = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_member_epoch(self.epoch)
            .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS);
        if joining {
            req.subscribed_topic_names =
                Some(vec![TopicName(StrBytes::from_string(self.topic.clone()))]);
        }
        req.topic_partitions = Some(match &self.owned {
            Some(owned) if !owned.is_empty() => vec![TopicPartitions::default()
                .with_topic_id(self.topic_id)
                .with_partitions(owned.iter().copied().collect())],
            _ => Vec::new(),
        });
        let version = self.version;
        let r: ConsumerGroupHeartbeatResponse = self
            .call_coordinator(
                admin,
                ApiKey::ConsumerGroupHeartbeat,
                version,
                &req,
                |r: &ConsumerGroupHeartbeatResponse| r.error_code,
            )
            .await?;
        if r.error_code != 0 {
            return Err(CliError::Kafka(format!(
                "group {}: {}",
                self.group,
                error_text(r.error_code, r.error_message.as_deref())
            )));
        }
        if let Some(id) = r.member_id {
            self.member_id = id.to_string();
        }
        self.epoch = r.member_epoch;
        self.interval = Duration::from_millis(r.heartbeat_interval_ms.clamp(100, 10_000) as u64);
        self.next_heartbeat = Instant::now() + self.interval;
        let Some(assignment) = r.assignment else {
            return Ok(Change::default());
        };
        let now: BTreeSet<i32> = assignment
            .topic_partitions
            .iter()
            .filter(|t| t.topic_id == self.topic_id)
            .flat_map(|t| t.partitions.iter().copied())
            .collect();
        let before = self.owned.take().unwrap_or_default();
        let change = Change {
            added: now.difference(&before).copied().collect(),
            revoked: before.difference(&now).copied().collect(),
        };
        self.owned = Some(now);
        if !change.revoked.is_empty() {
            // The coordinator hands revoked partitions on once told they are released.
            self.next_heartbeat = Instant::now();
        }
        Ok(change)
    }

    /// Commits `positions` (next offsets to read) with the member's epoch.
    pub async fn commit(
        &mut self,
        admin: &mut Admin,
        positions: &BTreeMap<i32, i64>,
    ) -> Result<(), CliError> {
        if positions.is_empty() {
            return Ok(());
        }
        let v = admin.version(ApiKey::OffsetCommit, 9, 9)?;
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_generation_id_or_member_epoch(self.epoch)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(self.topic.clone())))
                .with_partitions(
                    positions
                        .iter()
                        .map(|(p, o)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(*o)
                        })
                        .collect(),
                )]);
        let r: OffsetCommitResponse = self
            .call_coordinator(
                admin,
                ApiKey::OffsetCommit,
                v,
                &req,
                |r: &OffsetCommitResponse| {
                    r.topics
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .map(|p| p.error_code)
                        .find(|&c| c != 0)
                        .unwrap_or(0)
                },
            )
            .await?;
        for p in r.topics.iter().flat_map(|t| &t.partitions) {
            if p.error_code != 0 {
                return Err(CliError::Kafka(format!(
                    "commit of partition {}: {}",
                    p.partition_index,
                    error_text(p.error_code, None)
                )));
            }
        }
        Ok(())
    }

    /// Leaves the group (epoch -1): its partitions go to the other members at once.
    pub async fn leave(mut self, admin: &mut Admin) -> Result<(), CliError> {
        let req = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_member_epoch(-1);
        let version = self.version;
        let r: ConsumerGroupHeartbeatResponse = self
            .call_coordinator(
                admin,
                ApiKey::ConsumerGroupHeartbeat,
                version,
                &req,
                |r: &ConsumerGroupHeartbeatResponse| r.error_code,
            )
            .await?;
        if r.error_code != 0 {
            return Err(CliError::Kafka(format!(
                "leaving group {}: {}",
                self.group,
                error_text(r.error_code, r.error_message.as_deref())
            )));
        }
        Ok(())
    }

    /// One request to the group's coordinator, retried as Kafka clients do while the
    /// coordinator loads or moves (a new `__consumer_offsets` partition's leader takes up
    /// its role a moment after the topic is created): the same coordinator again for
    /// COORDINATOR_LOAD_IN_PROGRESS, a fresh FindCoordinator first for NOT_COORDINATOR and
    /// COORDINATOR_NOT_AVAILABLE; 100 ms doubling to 1 s apart, for up to 30 s.
    async fn call_coordinator<Req: Encodable, Resp: Decodable>(
        &mut self,
        admin: &mut Admin,
        api: ApiKey,
        version: i16,
        req: &Req,
        error_of: impl Fn(&Resp) -> i16,
    ) -> Result<Resp, CliError> {
        let deadline = Instant::now() + COORDINATOR_RETRY;
        let mut pause = Duration::from_millis(100);
        loop {
            let r: Resp = admin.call_node(self.coordinator, api, version, req).await?;
            let code = error_of(&r);
            let retriable = matches!(code, LOAD_IN_PROGRESS | NOT_AVAILABLE | NOT_COORDINATOR);
            if !retriable || Instant::now() + pause > deadline {
                return Ok(r);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
            if code != LOAD_IN_PROGRESS {
                self.coordinator = admin.coordinator(&self.group).await?;
            }
        }
    }
}

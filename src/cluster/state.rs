//! The metadata state machine: a pure function from (state, command) to (state, result).
//!
//! No I/O here: the openraft adapter in [`super::store`] feeds committed commands in
//! order and persists the result. Validation that must be identical on every node (name
//! taken, topic unknown) happens in `apply`, so every replica reaches the same answer.
//! A refused command still consumes its log index (`applied_index` advances) but leaves
//! the rest of the image untouched.
//!
//! Two rules worth knowing:
//! - Producer ids start at 0, as in Kafka (`ProducerIdControlManager`), and only grow;
//!   a block is never handed out twice because the counter is part of the replicated
//!   state and survives restarts with it.
//! - Leader epochs never go backwards. `UpdatePartition` that changes the leader must
//!   carry a higher epoch; if it does not, the state machine assigns
//!   `old epoch + 1` itself, so a caller that forgot to bump cannot make two leaders
//!   share an epoch. A lower epoch with the same leader is raised to the current one.
//! - Fencing a broker (`FenceBroker`, `ControlledShutdown`) moves it out of the live
//!   broker map and, in the same apply, moves every leadership it held to the first live
//!   ISR member in replica order (epoch + 1) and drops it from every ISR. As in Kafka
//!   (unclean election off), the last ISR member is never removed: the partition goes
//!   offline (leader -1) with that member kept, so that it alone can lead again. When a
//!   fenced broker is unfenced, offline partitions whose ISR holds it elect it.
//! - Reassignment (`ReassignPartition`, Kafka's KIP-455): with original replicas O and
//!   target T, `replicas` becomes T followed by the rest of O, `adding_replicas` T − O and
//!   `removing_replicas` O − T. The adding replicas fetch like any follower and join the
//!   ISR through `AlterPartition`; the apply that makes the ISR contain all of T also
//!   completes the move: replicas = T, the ISR keeps only members of T, and a leader
//!   outside T hands over to the first live ISR member of T (epoch + 1). A new
//!   reassignment of a partition that is being moved starts again from O; a cancel
//!   reverts to O the same way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use super::image::{BrokerMeta, MetadataImage, PartitionMeta, TopicMeta};
use super::state_partitions::{
    cancel_reassignment, complete_reassignment, elect_leader, elect_offline_partitions,
    move_leaderships_away, start_reassignment,
};
use crate::authorizer::AclBinding;
use crate::sasl::{ScramCredential, ScramMechanism};

/// A change to cluster metadata, replicated through the Raft log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// Set once, by the node that bootstraps the cluster.
    InitCluster {
        cluster_id: String,
    },
    RegisterBroker(BrokerMeta),
    CreateTopic {
        name: String,
        id: Uuid,
        partitions: Vec<PartitionMeta>,
        configs: BTreeMap<String, String>,
        internal: bool,
    },
    DeleteTopic {
        id: Uuid,
    },
    /// Append partitions (their `partition` fields continue the existing numbering).
    CreatePartitions {
        topic: String,
        partitions: Vec<PartitionMeta>,
    },
    /// `Some(v)` sets, `None` removes (back to the broker default). Replaces nothing else.
    AlterTopicConfigs {
        topic: String,
        changes: BTreeMap<String, Option<String>>,
    },
    /// Replace all overrides of a topic (legacy AlterConfigs semantics).
    ReplaceTopicConfigs {
        topic: String,
        configs: BTreeMap<String, String>,
    },
    /// Dynamic broker configs of `broker` ("" for the cluster-wide default, else a node
    /// id): `Some(v)` sets, `None` removes (back to the static value).
    AlterBrokerConfigs {
        broker: String,
        changes: BTreeMap<String, Option<String>>,
    },
    /// Replace all dynamic configs of `broker` (legacy AlterConfigs semantics).
    ReplaceBrokerConfigs {
        broker: String,
        configs: BTreeMap<String, String>,
    },
    /// Settings of the client-metrics subscription `name` (`Some` sets, `None`
    /// removes); a subscription left without settings is deleted.
    AlterClientMetrics {
        name: String,
        changes: BTreeMap<String, Option<String>>,
    },
    /// Hand out `count` producer ids; the result is the first of the block.
    AllocateProducerIds {
        count: i64,
    },
    /// Leadership/ISR change of one partition (bumps the leader epoch when the leader changes).
    UpdatePartition {
        topic: String,
        partition: PartitionMeta,
    },
    /// Kafka's AlterPartition: the partition leader proposes a new ISR. Refused when
    /// `leader_epoch` is not the partition's current one (the proposer was deposed), or
    /// when the ISR is not a duplicate-free subset of the replicas containing the leader.
    /// The leader epoch is left unchanged: only a leader change bumps it.
    AlterPartition {
        topic: String,
        partition: i32,
        leader_epoch: i32,
        isr: Vec<i32>,
    },
    /// The controller lost the broker's heartbeats for the session timeout: take it out
    /// of the live brokers and move its leaderships away (see the module doc).
    FenceBroker {
        id: i32,
    },
    /// A fenced broker heartbeats again: back among the live brokers. It rejoins ISRs
    /// through replication, not here.
    UnfenceBroker {
        id: i32,
    },
    /// The broker is stopping cleanly: the same as `FenceBroker`, asked by the broker
    /// itself before it stops so that its partitions never wait for a session timeout.
    ControlledShutdown {
        id: i32,
    },
    /// ElectLeaders for one partition. Preferred (`unclean` false): the first replica
    /// takes over when it is live and in the ISR. Unclean: a partition without a leader
    /// elects a live ISR member, or failing that the first live replica, whose log then
    /// becomes the truth (ISR = [it]). A leader change bumps the epoch.
    ElectLeader {
        topic: String,
        partition: i32,
        unclean: bool,
    },
    /// AlterPartitionReassignments for one partition: `Some(target)` starts (or replaces)
    /// a reassignment, `None` cancels the ongoing one (see the module doc).
    ReassignPartition {
        topic: String,
        partition: i32,
        target: Option<Vec<i32>>,
    },
    /// Kafka's UnregisterBroker: forget a broker that is gone for good. Refused while it
    /// is live (it would register again at its next heartbeat) and while it still holds
    /// replicas (reassign them first: unregistering cannot make a replica disappear).
    UnregisterBroker {
        id: i32,
    },
    /// AlterUserScramCredentials for one user and mechanism: `Some` sets (replacing the
    /// previous salt and iterations), `None` deletes; deleting what does not exist is
    /// refused.
    AlterScramCredential {
        user: String,
        mechanism: ScramMechanism,
        credential: Option<ScramCredential>,
    },
    /// CreateAcls: add each binding under its id; a binding already present is left as
    /// it is (one proposal for a whole request).
    CreateAcls {
        acls: Vec<(Uuid, AclBinding)>,
    },
    /// DeleteAcls: remove the ACLs with these ids (ids already gone are skipped).
    DeleteAcls {
        ids: Vec<Uuid>,
    },
}

/// Why a command was refused; deterministic on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum MetadataError {
    #[error("topic `{0}` already exists")]
    TopicExists(String),
    #[error("unknown topic `{0}`")]
    UnknownTopic(String),
    #[error("unknown topic id {0}")]
    UnknownTopicId(Uuid),
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    #[error("cluster already initialised with id {0}")]
    AlreadyInitialised(String),
    /// A command that is malformed regardless of state (non-positive producer-id count,
    /// a topic id that another topic already uses).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// An AlterPartition from a leader whose epoch is no longer the partition's.
    #[error(
        "stale leader epoch {given} for `{topic}`-{partition}: the current epoch is {current}"
    )]
    FencedLeaderEpoch {
        topic: String,
        partition: i32,
        given: i32,
        current: i32,
    },
    /// ElectLeaders: the wanted leader already leads (messages are Kafka's).
    #[error("Leader election not needed for topic partition.")]
    ElectionNotNeeded,
    #[error("The preferred leader was not available.")]
    PreferredLeaderNotAvailable,
    #[error("Eligible topic partition leaders are not available.")]
    EligibleLeadersNotAvailable,
    /// AlterPartitionReassignments: a cancel with nothing to cancel.
    #[error("No partition reassignment is in progress.")]
    NoReassignmentInProgress,
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("broker {0} is not registered")]
    BrokerNotRegistered(i32),
    #[error("{0}")]
    ResourceNotFound(String),
}

/// The answer to a committed command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandResult {
    Ok,
    /// First id of an allocated producer-id block.
    ProducerIds {
        first: i64,
    },
    Err(MetadataError),
}

/// The applied metadata state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetadataState {
    pub image: MetadataImage,
}

impl MetadataState {
    /// Apply one committed command at `index`.
    pub fn apply(&mut self, index: u64, cmd: &MetadataCommand) -> CommandResult {
        let result = match self.apply_inner(cmd) {
            Ok(r) => r,
            Err(e) => CommandResult::Err(e),
        };
        self.image.applied_index = index;
        result
    }

    /// Validates first and mutates only on success, so a refused command leaves no trace.
    fn apply_inner(&mut self, cmd: &MetadataCommand) -> Result<CommandResult, MetadataError> {
        let img = &mut self.image;
        match cmd {
            MetadataCommand::InitCluster { cluster_id } => {
                if !img.cluster_id.is_empty() && img.cluster_id != *cluster_id {
                    return Err(MetadataError::AlreadyInitialised(img.cluster_id.clone()));
                }
                img.cluster_id = cluster_id.clone();
            }
            MetadataCommand::RegisterBroker(b) => {
                // A fenced broker stays fenced until it heartbeats (`UnfenceBroker`).
                match img.fenced_brokers.get_mut(&b.id) {
                    Some(slot) => *slot = b.clone(),
                    None => {
                        img.brokers.insert(b.id, b.clone());
                    }
                }
            }
            MetadataCommand::FenceBroker { id } | MetadataCommand::ControlledShutdown { id } => {
                if img.fenced_brokers.contains_key(id) {
                    return Ok(CommandResult::Ok);
                }
                let b = img.brokers.remove(id).ok_or_else(|| unknown_broker(*id))?;
                img.fenced_brokers.insert(*id, b);
                move_leaderships_away(img, *id);
            }
            MetadataCommand::UnregisterBroker { id } => {
                if img.brokers.contains_key(id) {
                    return Err(MetadataError::InvalidRequest(format!(
                        "broker {id} is alive; stop it before unregistering it"
                    )));
                }
                if !img.fenced_brokers.contains_key(id) {
                    return Err(MetadataError::BrokerNotRegistered(*id));
                }
                let held: Vec<String> = img
                    .topics
                    .values()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .filter(|p| p.replicas.contains(id))
                            .map(move |p| format!("{}-{}", t.name, p.partition))
                    })
                    .collect();
                if !held.is_empty() {
                    return Err(MetadataError::InvalidRequest(format!(
                        "broker {id} still holds {} replica(s) ({}{}); reassign them first",
                        held.len(),
                        held[..held.len().min(5)].join(", "),
                        if held.len() > 5 { ", …" } else { "" }
                    )));
                }
                img.fenced_brokers.remove(id);
            }
            MetadataCommand::UnfenceBroker { id } => {
                if img.brokers.contains_key(id) {
                    return Ok(CommandResult::Ok);
                }
                let b = img
                    .fenced_brokers
                    .remove(id)
                    .ok_or_else(|| unknown_broker(*id))?;
                img.brokers.insert(*id, b);
                elect_offline_partitions(img, *id);
            }
            MetadataCommand::CreateTopic {
                name,
                id,
                partitions,
                configs,
                internal,
            } => {
                if img.topics.contains_key(name) {
                    return Err(MetadataError::TopicExists(name.clone()));
                }
                if let Some(owner) = img.topic_names_by_id.get(id) {
                    return Err(MetadataError::InvalidRequest(format!(
                        "topic id {id} is already used by topic `{owner}`"
                    )));
                }
                if partitions.is_empty() {
                    return Err(MetadataError::InvalidPartitions(
                        "a topic needs at least one partition".into(),
                    ));
                }
                check_numbering(partitions, 0)?;
                img.topic_names_by_id.insert(*id, name.clone());
                img.topics.insert(
                    name.clone(),
                    TopicMeta {
                        name: name.clone(),
                        id: *id,
                        partitions: partitions.clone(),
                        configs: configs.clone(),
                        internal: *internal,
                    },
                );
            }
            MetadataCommand::DeleteTopic { id } => {
                let name = img
                    .topic_names_by_id
                    .remove(id)
                    .ok_or(MetadataError::UnknownTopicId(*id))?;
                img.topics.remove(&name);
            }
            MetadataCommand::CreatePartitions { topic, partitions } => {
                let t = topic_mut(img, topic)?;
                if partitions.is_empty() {
                    return Err(MetadataError::InvalidPartitions(format!(
                        "topic `{topic}` already has {} partitions",
                        t.partitions.len()
                    )));
                }
                check_numbering(partitions, t.partitions.len())?;
                t.partitions.extend(partitions.iter().cloned());
            }
            MetadataCommand::AlterTopicConfigs { topic, changes } => {
                let t = topic_mut(img, topic)?;
                for (k, v) in changes {
                    match v {
                        Some(v) => t.configs.insert(k.clone(), v.clone()),
                        None => t.configs.remove(k),
                    };
                }
            }
            MetadataCommand::ReplaceTopicConfigs { topic, configs } => {
                topic_mut(img, topic)?.configs = configs.clone();
            }
            MetadataCommand::AlterBrokerConfigs { broker, changes } => {
                check_broker_resource(broker)?;
                let configs = img.broker_configs.entry(broker.clone()).or_default();
                for (k, v) in changes {
                    match v {
                        Some(v) => configs.insert(k.clone(), v.clone()),
                        None => configs.remove(k),
                    };
                }
                if configs.is_empty() {
                    img.broker_configs.remove(broker);
                }
            }
            MetadataCommand::ReplaceBrokerConfigs { broker, configs } => {
                check_broker_resource(broker)?;
                if configs.is_empty() {
                    img.broker_configs.remove(broker);
                } else {
                    img.broker_configs.insert(broker.clone(), configs.clone());
                }
            }
            MetadataCommand::AlterClientMetrics { name, changes } => {
                if name.is_empty() {
                    return Err(MetadataError::InvalidRequest(
                        "a client-metrics subscription needs a name".into(),
                    ));
                }
                let configs = img.client_metrics.entry(name.clone()).or_default();
                for (k, v) in changes {
                    match v {
                        Some(v) => configs.insert(k.clone(), v.clone()),
                        None => configs.remove(k),
                    };
                }
                if configs.is_empty() {
                    img.client_metrics.remove(name);
                }
            }
            MetadataCommand::AlterScramCredential {
                user,
                mechanism,
                credential,
            } => {
                if user.is_empty() {
                    return Err(MetadataError::InvalidRequest("user name is empty".into()));
                }
                let creds = img.scram_credentials.entry(user.clone()).or_default();
                match credential {
                    Some(c) => {
                        creds.insert(*mechanism, c.clone());
                    }
                    None => {
                        if creds.remove(mechanism).is_none() {
                            if creds.is_empty() {
                                img.scram_credentials.remove(user);
                            }
                            return Err(MetadataError::ResourceNotFound(
                                "Attempt to delete a user credential that does not exist".into(),
                            ));
                        }
                    }
                }
                if creds.is_empty() {
                    img.scram_credentials.remove(user);
                }
            }
            MetadataCommand::CreateAcls { acls } => {
                if let Some((id, _)) = acls.iter().find(|(id, _)| img.acls.contains_key(id)) {
                    return Err(MetadataError::InvalidRequest(format!(
                        "ACL id {id} is taken"
                    )));
                }
                let present: std::collections::HashSet<&AclBinding> = img.acls.values().collect();
                let mut new: Vec<(Uuid, AclBinding)> = Vec::new();
                for (id, b) in acls {
                    if !present.contains(b) && !new.iter().any(|(_, n)| n == b) {
                        new.push((*id, b.clone()));
                    }
                }
                if !new.is_empty() {
                    img.acls.extend(new);
                    img.acl_version += 1;
                }
            }
            MetadataCommand::DeleteAcls { ids } => {
                let before = img.acls.len();
                for id in ids {
                    img.acls.remove(id);
                }
                if img.acls.len() != before {
                    img.acl_version += 1;
                }
            }
            MetadataCommand::AllocateProducerIds { count } => {
                if *count <= 0 {
                    return Err(MetadataError::InvalidRequest(format!(
                        "producer id block size must be positive, got {count}"
                    )));
                }
                let first = img.next_producer_id;
                img.next_producer_id = first.checked_add(*count).ok_or_else(|| {
                    MetadataError::InvalidRequest("producer ids exhausted".into())
                })?;
                return Ok(CommandResult::ProducerIds { first });
            }
            MetadataCommand::UpdatePartition { topic, partition } => {
                let t = topic_mut(img, topic)?;
                let slot = usize::try_from(partition.partition)
                    .ok()
                    .and_then(|p| t.partitions.get_mut(p))
                    .ok_or_else(|| {
                        MetadataError::InvalidPartitions(format!(
                            "topic `{topic}` has no partition {}",
                            partition.partition
                        ))
                    })?;
                let mut next = partition.clone();
                let floor = if next.leader != slot.leader {
                    slot.leader_epoch.saturating_add(1)
                } else {
                    slot.leader_epoch
                };
                next.leader_epoch = next.leader_epoch.max(floor);
                *slot = next;
            }
            MetadataCommand::AlterPartition {
                topic,
                partition,
                leader_epoch,
                isr,
            } => {
                let fenced: Vec<i32> = img.fenced_brokers.keys().copied().collect();
                let t = topic_mut(img, topic)?;
                let slot = usize::try_from(*partition)
                    .ok()
                    .and_then(|p| t.partitions.get_mut(p))
                    .ok_or_else(|| {
                        MetadataError::InvalidPartitions(format!(
                            "topic `{topic}` has no partition {partition}"
                        ))
                    })?;
                if *leader_epoch != slot.leader_epoch {
                    return Err(MetadataError::FencedLeaderEpoch {
                        topic: topic.clone(),
                        partition: *partition,
                        given: *leader_epoch,
                        current: slot.leader_epoch,
                    });
                }
                if !isr.contains(&slot.leader) {
                    return Err(MetadataError::InvalidRequest(format!(
                        "the ISR {isr:?} of `{topic}`-{partition} must contain its leader {}",
                        slot.leader
                    )));
                }
                // A fenced broker cannot (re)join an ISR: it may not be caught up on
                // metadata, and the controller already took it out (Kafka's ISR
                // eligibility check). Shrinking an ISR that still lists one is fine.
                if let Some(r) = isr
                    .iter()
                    .find(|r| fenced.contains(r) && !slot.isr.contains(r))
                {
                    return Err(MetadataError::InvalidRequest(format!(
                        "broker {r} is fenced and cannot join the ISR of `{topic}`-{partition}"
                    )));
                }
                let mut seen = std::collections::BTreeSet::new();
                for r in isr {
                    if !slot.replicas.contains(r) || !seen.insert(*r) {
                        return Err(MetadataError::InvalidRequest(format!(
                            "the ISR {isr:?} of `{topic}`-{partition} must be a subset of its replicas {:?} without duplicates",
                            slot.replicas
                        )));
                    }
                }
                slot.isr = isr.clone();
                let live = img.brokers.clone();
                if let Ok(p) = partition_mut(img, topic, *partition) {
                    complete_reassignment(p, &live);
                }
            }
            MetadataCommand::ElectLeader {
                topic,
                partition,
                unclean,
            } => {
                let live = img.brokers.clone();
                let p = partition_mut(img, topic, *partition)?;
                elect_leader(p, &live, *unclean)?;
            }
            MetadataCommand::ReassignPartition {
                topic,
                partition,
                target,
            } => {
                let live = img.brokers.clone();
                let registered: Vec<i32> = img
                    .brokers
                    .keys()
                    .chain(img.fenced_brokers.keys())
                    .copied()
                    .collect();
                let p = partition_mut(img, topic, *partition)?;
                match target {
                    Some(target) => start_reassignment(p, target, &registered, &live)?,
                    None => cancel_reassignment(p, &live)?,
                }
            }
        }
        Ok(CommandResult::Ok)
    }
}

fn partition_mut<'a>(
    img: &'a mut MetadataImage,
    topic: &str,
    partition: i32,
) -> Result<&'a mut PartitionMeta, MetadataError> {
    let t = topic_mut(img, topic)?;
    usize::try_from(partition)
        .ok()
        .and_then(|p| t.partitions.get_mut(p))
        .ok_or_else(|| {
            MetadataError::InvalidPartitions(format!(
                "topic `{topic}` has no partition {partition}"
            ))
        })
}

/// A BROKER config resource: "" (the cluster-wide default) or a node id.
fn check_broker_resource(name: &str) -> Result<(), MetadataError> {
    if name.is_empty() || name.parse::<u32>().is_ok() {
        Ok(())
    } else {
        Err(MetadataError::InvalidRequest(format!(
            "broker config resource `{name}` is neither empty (the cluster default) nor a node id"
        )))
    }
}

fn unknown_broker(id: i32) -> MetadataError {
    MetadataError::InvalidRequest(format!("broker {id} is not registered"))
}

fn topic_mut<'a>(
    img: &'a mut MetadataImage,
    name: &str,
) -> Result<&'a mut TopicMeta, MetadataError> {
    img.topics
        .get_mut(name)
        .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))
}

/// Partitions must be listed in order and continue the topic's numbering without gaps,
/// because `TopicMeta::partitions` is indexed by partition number.
fn check_numbering(partitions: &[PartitionMeta], start: usize) -> Result<(), MetadataError> {
    for (offset, p) in partitions.iter().enumerate() {
        let expected = start + offset;
        if usize::try_from(p.partition).ok() != Some(expected) {
            return Err(MetadataError::InvalidPartitions(format!(
                "expected partition {expected}, got {}",
                p.partition
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(p: i32, leader: i32, epoch: i32) -> PartitionMeta {
        PartitionMeta {
            partition: p,
            leader,
            leader_epoch: epoch,
            replicas: vec![leader],
            isr: vec![leader],
            ..Default::default()
        }
    }

    fn create(name: &str, id: Uuid, n: i32) -> MetadataCommand {
        MetadataCommand::CreateTopic {
            name: name.into(),
            id,
            partitions: (0..n).map(|p| part(p, 1, 0)).collect(),
            configs: BTreeMap::new(),
            internal: false,
        }
    }

    fn state_with_topic(name: &str, n: i32) -> (MetadataState, Uuid) {
        let mut s = MetadataState::default();
        let id = Uuid::new_v4();
        assert_eq!(s.apply(1, &create(name, id, n)), CommandResult::Ok);
        (s, id)
    }

    fn err(r: CommandResult) -> MetadataError {
        match r {
            CommandResult::Err(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn init_cluster_sets_id_once() {
        let mut s = MetadataState::default();
        let init = |id: &str| MetadataCommand::InitCluster {
            cluster_id: id.into(),
        };
        assert_eq!(s.apply(1, &init("a")), CommandResult::Ok);
        assert_eq!(s.apply(2, &init("a")), CommandResult::Ok);
        assert_eq!(
            err(s.apply(3, &init("b"))),
            MetadataError::AlreadyInitialised("a".into())
        );
        assert_eq!(s.image.cluster_id, "a");
        assert_eq!(
            s.image.applied_index, 3,
            "a refused command still uses its index"
        );
    }

    #[test]
    fn register_broker_inserts_and_replaces() {
        let mut s = MetadataState::default();
        let b = |port| BrokerMeta {
            id: 7,
            host: "h".into(),
            port,
            rack: None,
            listeners: Vec::new(),
        };
        s.apply(1, &MetadataCommand::RegisterBroker(b(1)));
        s.apply(2, &MetadataCommand::RegisterBroker(b(2)));
        assert_eq!(s.image.brokers.len(), 1);
        assert_eq!(s.image.brokers[&7].port, 2);
    }

    #[test]
    fn create_topic_indexes_by_name_and_id() {
        let (s, id) = state_with_topic("t", 3);
        let t = s.image.topic_by_id(&id).expect("topic by id");
        assert_eq!(t.name, "t");
        assert_eq!(t.partitions.len(), 3);
        assert_eq!(s.image.partition("t", 2).map(|p| p.partition), Some(2));
        assert_eq!(s.image.applied_index, 1);
    }

    #[test]
    fn create_topic_rejects_taken_name_and_id() {
        let (mut s, id) = state_with_topic("t", 1);
        assert_eq!(
            err(s.apply(2, &create("t", Uuid::new_v4(), 1))),
            MetadataError::TopicExists("t".into())
        );
        assert!(matches!(
            err(s.apply(3, &create("u", id, 1))),
            MetadataError::InvalidRequest(_)
        ));
        assert_eq!(s.image.topics.len(), 1);
        assert_eq!(s.image.topic_names_by_id.len(), 1);
    }

    #[test]
    fn create_topic_rejects_bad_numbering() {
        let mut s = MetadataState::default();
        for parts in [
            vec![],
            vec![part(1, 1, 0)],
            vec![part(0, 1, 0), part(2, 1, 0)],
        ] {
            let cmd = MetadataCommand::CreateTopic {
                name: "t".into(),
                id: Uuid::new_v4(),
                partitions: parts,
                configs: BTreeMap::new(),
                internal: false,
            };
            assert!(matches!(
                err(s.apply(1, &cmd)),
                MetadataError::InvalidPartitions(_)
            ));
        }
        assert!(s.image.topics.is_empty());
        assert!(s.image.topic_names_by_id.is_empty());
    }

    #[test]
    fn delete_topic_by_id() {
        let (mut s, id) = state_with_topic("t", 1);
        assert_eq!(
            err(s.apply(2, &MetadataCommand::DeleteTopic { id: Uuid::nil() })),
            MetadataError::UnknownTopicId(Uuid::nil())
        );
        assert_eq!(
            s.apply(3, &MetadataCommand::DeleteTopic { id }),
            CommandResult::Ok
        );
        assert!(s.image.topics.is_empty());
        assert!(s.image.topic_names_by_id.is_empty());
        // The name is free again, under a new id.
        assert_eq!(
            s.apply(4, &create("t", Uuid::new_v4(), 1)),
            CommandResult::Ok
        );
    }

    #[test]
    fn create_partitions_continues_numbering() {
        let (mut s, _) = state_with_topic("t", 2);
        let add = |topic: &str, parts: Vec<PartitionMeta>| MetadataCommand::CreatePartitions {
            topic: topic.into(),
            partitions: parts,
        };
        assert_eq!(
            err(s.apply(2, &add("nope", vec![part(0, 1, 0)]))),
            MetadataError::UnknownTopic("nope".into())
        );
        for bad in [vec![], vec![part(3, 1, 0)], vec![part(1, 1, 0)]] {
            assert!(matches!(
                err(s.apply(3, &add("t", bad))),
                MetadataError::InvalidPartitions(_)
            ));
        }
        assert_eq!(
            s.apply(4, &add("t", vec![part(2, 1, 0), part(3, 1, 0)])),
            CommandResult::Ok
        );
        assert_eq!(s.image.topics["t"].partitions.len(), 4);
    }

    #[test]
    fn alter_topic_configs_sets_and_removes() {
        let (mut s, _) = state_with_topic("t", 1);
        let alter =
            |topic: &str, changes: &[(&str, Option<&str>)]| MetadataCommand::AlterTopicConfigs {
                topic: topic.into(),
                changes: changes
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                    .collect(),
            };
        s.apply(2, &alter("t", &[("a", Some("1")), ("b", Some("2"))]));
        s.apply(3, &alter("t", &[("a", None), ("c", Some("3"))]));
        let cfg: Vec<_> = s.image.topics["t"].configs.iter().collect();
        assert_eq!(
            cfg,
            vec![
                (&"b".to_string(), &"2".to_string()),
                (&"c".to_string(), &"3".to_string())
            ]
        );
        assert_eq!(
            err(s.apply(4, &alter("x", &[]))),
            MetadataError::UnknownTopic("x".into())
        );
    }

    #[test]
    fn replace_topic_configs_replaces_all() {
        let (mut s, _) = state_with_topic("t", 1);
        let replace = |topic: &str, kv: &[(&str, &str)]| MetadataCommand::ReplaceTopicConfigs {
            topic: topic.into(),
            configs: kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        s.apply(2, &replace("t", &[("a", "1"), ("b", "2")]));
        s.apply(3, &replace("t", &[("c", "3")]));
        assert_eq!(s.image.topics["t"].configs.len(), 1);
        assert_eq!(s.image.topics["t"].configs["c"], "3");
        assert_eq!(
            err(s.apply(4, &replace("x", &[]))),
            MetadataError::UnknownTopic("x".into())
        );
    }

    #[test]
    fn allocate_producer_ids_hands_out_disjoint_blocks() {
        let mut s = MetadataState::default();
        let alloc = |count| MetadataCommand::AllocateProducerIds { count };
        assert_eq!(
            s.apply(1, &alloc(1000)),
            CommandResult::ProducerIds { first: 0 }
        );
        assert_eq!(
            s.apply(2, &alloc(10)),
            CommandResult::ProducerIds { first: 1000 }
        );
        assert_eq!(s.image.next_producer_id, 1010);
        for bad in [0, -5] {
            assert!(matches!(
                err(s.apply(3, &alloc(bad))),
                MetadataError::InvalidRequest(_)
            ));
        }
        s.image.next_producer_id = i64::MAX - 1;
        assert!(matches!(
            err(s.apply(4, &alloc(2))),
            MetadataError::InvalidRequest(_)
        ));
        assert_eq!(s.image.next_producer_id, i64::MAX - 1);
    }

    #[test]
    fn update_partition_keeps_epochs_monotonic() {
        let (mut s, _) = state_with_topic("t", 2);
        let update = |topic: &str, p: PartitionMeta| MetadataCommand::UpdatePartition {
            topic: topic.into(),
            partition: p,
        };
        // Leader change with an explicit higher epoch: taken as given.
        s.apply(2, &update("t", part(0, 2, 5)));
        assert_eq!(s.image.partition("t", 0), Some(&part(0, 2, 5)));
        // Leader change without a higher epoch: bumped to old + 1.
        s.apply(3, &update("t", part(0, 3, 5)));
        assert_eq!(
            s.image
                .partition("t", 0)
                .map(|p| (p.leader, p.leader_epoch)),
            Some((3, 6))
        );
        // Same leader, ISR change, stale epoch: epoch stays where it was.
        let mut shrink = part(0, 3, 0);
        shrink.isr = vec![];
        s.apply(4, &update("t", shrink));
        let p = s.image.partition("t", 0).expect("partition 0");
        assert_eq!((p.leader_epoch, p.isr.len()), (6, 0));
        // Errors.
        assert_eq!(
            err(s.apply(5, &update("x", part(0, 1, 0)))),
            MetadataError::UnknownTopic("x".into())
        );
        for bad in [2, -1] {
            assert!(matches!(
                err(s.apply(6, &update("t", part(bad, 1, 0)))),
                MetadataError::InvalidPartitions(_)
            ));
        }
        assert_eq!(s.image.partition("t", 1), Some(&part(1, 1, 0)));
    }

    fn broker(id: i32) -> MetadataCommand {
        MetadataCommand::RegisterBroker(BrokerMeta {
            id,
            host: "h".into(),
            port: 9000 + id as u16,
            rack: None,
            listeners: Vec::new(),
        })
    }

    fn replicated(p: i32, replicas: &[i32]) -> PartitionMeta {
        PartitionMeta {
            partition: p,
            leader: replicas[0],
            leader_epoch: 0,
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn unregistering_needs_a_stopped_broker_without_replicas() {
        let mut s = MetadataState::default();
        for id in 1..=3 {
            s.apply(id as u64, &broker(id));
        }
        let cmd = MetadataCommand::CreateTopic {
            name: "t".into(),
            id: Uuid::new_v4(),
            partitions: vec![replicated(0, &[1, 3])],
            configs: BTreeMap::new(),
            internal: false,
        };
        assert_eq!(s.apply(4, &cmd), CommandResult::Ok);
        let unregister = |id| MetadataCommand::UnregisterBroker { id };
        let refused = |r: CommandResult, what: &str| match r {
            CommandResult::Err(MetadataError::InvalidRequest(m)) => {
                assert!(m.contains(what), "{m}")
            }
            other => panic!("expected a refusal mentioning {what}: {other:?}"),
        };
        refused(s.apply(5, &unregister(2)), "alive");
        assert_eq!(
            s.apply(6, &unregister(9)),
            CommandResult::Err(MetadataError::BrokerNotRegistered(9))
        );
        s.apply(7, &MetadataCommand::FenceBroker { id: 3 });
        refused(s.apply(8, &unregister(3)), "t-0");
        s.apply(9, &MetadataCommand::FenceBroker { id: 2 });
        assert_eq!(s.apply(10, &unregister(2)), CommandResult::Ok);
        assert!(s.image.registered_broker(2).is_none());
        // Gone for good: heartbeats cannot unfence it, only a new registration.
        assert!(matches!(
            s.apply(11, &MetadataCommand::UnfenceBroker { id: 2 }),
            CommandResult::Err(_)
        ));
    }

    #[test]
    fn fencing_moves_leadership_to_a_live_isr_member() {
        let mut s = MetadataState::default();
        for id in 1..=3 {
            s.apply(id as u64, &broker(id));
        }
        let cmd = MetadataCommand::CreateTopic {
            name: "t".into(),
            id: Uuid::new_v4(),
            partitions: vec![
                replicated(0, &[1, 2, 3]),
                replicated(1, &[2, 3, 1]),
                replicated(2, &[1]),
                replicated(3, &[1, 3]),
            ],
            configs: BTreeMap::new(),
            internal: false,
        };
        assert_eq!(s.apply(4, &cmd), CommandResult::Ok);
        // Broker 2 is not in partition 3's ISR any more: it must not be elected there.
        let mut p3 = replicated(3, &[1, 3]);
        p3.replicas = vec![1, 2, 3];
        p3.isr = vec![1, 3];
        s.apply(
            5,
            &MetadataCommand::UpdatePartition {
                topic: "t".into(),
                partition: p3,
            },
        );
        assert_eq!(
            s.apply(6, &MetadataCommand::FenceBroker { id: 1 }),
            CommandResult::Ok
        );
        let img = &s.image;
        assert!(!img.brokers.contains_key(&1) && img.fenced_brokers.contains_key(&1));
        assert!(img.registered_broker(1).is_some());
        let p = |n| img.partition("t", n).expect("partition").clone();
        assert_eq!(
            (p(0).leader, p(0).leader_epoch, p(0).isr),
            (2, 1, vec![2, 3])
        );
        assert_eq!(
            (p(1).leader, p(1).leader_epoch, p(1).isr),
            (2, 0, vec![2, 3])
        );
        // Sole ISR member: offline, and kept in the ISR so it alone may lead again.
        assert_eq!((p(2).leader, p(2).leader_epoch, p(2).isr), (-1, 1, vec![1]));
        assert_eq!((p(3).leader, p(3).leader_epoch, p(3).isr), (3, 1, vec![3]));

        // Fencing twice is a no-op; unknown brokers are refused.
        s.apply(7, &MetadataCommand::FenceBroker { id: 1 });
        assert_eq!(s.image.partition("t", 0).map(|p| p.leader_epoch), Some(1));
        assert!(matches!(
            err(s.apply(8, &MetadataCommand::FenceBroker { id: 9 })),
            MetadataError::InvalidRequest(_)
        ));
        // Re-registering keeps it fenced.
        s.apply(9, &broker(1));
        assert!(s.image.fenced_brokers.contains_key(&1));
        // While fenced it cannot rejoin an ISR (partition 0 is led by 2 at epoch 1).
        assert!(matches!(
            err(s.apply(
                9,
                &MetadataCommand::AlterPartition {
                    topic: "t".into(),
                    partition: 0,
                    leader_epoch: 1,
                    isr: vec![2, 3, 1],
                }
            )),
            MetadataError::InvalidRequest(_)
        ));

        // Unfencing: the offline partition elects it again; the others stay as they are.
        assert_eq!(
            s.apply(10, &MetadataCommand::UnfenceBroker { id: 1 }),
            CommandResult::Ok
        );
        let img = &s.image;
        assert!(img.brokers.contains_key(&1) && img.fenced_brokers.is_empty());
        let p = |n| img.partition("t", n).expect("partition").clone();
        assert_eq!((p(2).leader, p(2).leader_epoch), (1, 2));
        assert_eq!((p(0).leader, p(0).isr), (2, vec![2, 3]));
    }

    #[test]
    fn controlled_shutdown_fences_like_a_lost_session() {
        let mut s = MetadataState::default();
        s.apply(1, &broker(1));
        s.apply(2, &broker(2));
        let cmd = MetadataCommand::CreateTopic {
            name: "t".into(),
            id: Uuid::new_v4(),
            partitions: vec![replicated(0, &[2, 1])],
            configs: BTreeMap::new(),
            internal: false,
        };
        s.apply(3, &cmd);
        s.apply(4, &MetadataCommand::ControlledShutdown { id: 2 });
        let p = s.image.partition("t", 0).expect("partition");
        assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (1, 1, vec![1]));
        assert_eq!(s.image.brokers.keys().copied().collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn state_round_trips_through_json() {
        let (mut s, _) = state_with_topic("t", 2);
        s.apply(
            2,
            &MetadataCommand::RegisterBroker(BrokerMeta {
                id: 3,
                host: "h".into(),
                port: 9092,
                rack: Some("r".into()),
                listeners: Vec::new(),
            }),
        );
        let bytes = serde_json::to_vec(&s).expect("serialize");
        let back: MetadataState = serde_json::from_slice(&bytes).expect("deserialize");
        assert_eq!(back.image, s.image);
    }

    #[test]
    fn scram_credentials_are_set_replaced_deleted_and_survive_json() {
        let mut s = MetadataState::default();
        let cred = |iterations| {
            crate::sasl::ScramCredential::new(ScramMechanism::Sha256, "pw", iterations)
        };
        let alter = |mechanism, credential| MetadataCommand::AlterScramCredential {
            user: "alice".into(),
            mechanism,
            credential,
        };
        assert_eq!(
            s.apply(1, &alter(ScramMechanism::Sha256, Some(cred(4096)))),
            CommandResult::Ok
        );
        assert_eq!(
            s.apply(2, &alter(ScramMechanism::Sha256, Some(cred(8192)))),
            CommandResult::Ok
        );
        assert_eq!(
            s.image.scram_credentials["alice"][&ScramMechanism::Sha256].iterations,
            8192
        );
        let bytes = serde_json::to_vec(&s).expect("serialize");
        let back: MetadataState = serde_json::from_slice(&bytes).expect("deserialize");
        assert_eq!(back.image, s.image);
        assert!(matches!(
            err(s.apply(3, &alter(ScramMechanism::Sha512, None))),
            MetadataError::ResourceNotFound(_)
        ));
        assert_eq!(
            s.apply(4, &alter(ScramMechanism::Sha256, None)),
            CommandResult::Ok
        );
        assert!(s.image.scram_credentials.is_empty());
        assert!(matches!(
            err(s.apply(5, &alter(ScramMechanism::Sha256, None))),
            MetadataError::ResourceNotFound(_)
        ));
        assert!(s.image.scram_credentials.is_empty());
    }

    #[test]
    fn acls_are_added_once_deleted_and_versioned() {
        use crate::authorizer::acl::{Operation, PatternType, Permission, ResourceType};
        let binding = AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "t".into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        };
        let mut s = MetadataState::default();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let create = |acls: Vec<(Uuid, AclBinding)>| MetadataCommand::CreateAcls { acls };
        s.apply(1, &create(vec![(a, binding.clone())]));
        s.apply(
            2,
            &create(vec![
                (b, binding.clone()),
                (Uuid::from_u128(3), binding.clone()),
            ]),
        );
        assert_eq!(
            (s.image.acls.len(), s.image.acl_version),
            (1, 1),
            "a duplicate is not added"
        );
        assert!(matches!(
            err(s.apply(3, &create(vec![(a, binding)]))),
            MetadataError::InvalidRequest(_)
        ));
        let bytes = serde_json::to_vec(&s).expect("serialize");
        let back: MetadataState = serde_json::from_slice(&bytes).expect("deserialize");
        assert_eq!(back.image, s.image);
        s.apply(4, &MetadataCommand::DeleteAcls { ids: vec![a, b] });
        assert_eq!((s.image.acls.len(), s.image.acl_version), (0, 2));
        s.apply(5, &MetadataCommand::DeleteAcls { ids: vec![a] });
        assert_eq!(s.image.acl_version, 2, "nothing deleted, no new version");
    }

    #[test]
    fn alter_partition_checks_epoch_and_isr() {
        let (mut s, _) = state_with_topic("t", 1);
        let mut p = part(0, 1, 3);
        p.replicas = vec![1, 2, 3];
        p.isr = vec![1, 2, 3];
        let update = MetadataCommand::UpdatePartition {
            topic: "t".into(),
            partition: p,
        };
        assert_eq!(s.apply(2, &update), CommandResult::Ok);
        let alter = |epoch, isr: Vec<i32>| MetadataCommand::AlterPartition {
            topic: "t".into(),
            partition: 0,
            leader_epoch: epoch,
            isr,
        };
        assert_eq!(s.apply(3, &alter(3, vec![1, 3])), CommandResult::Ok);
        assert_eq!(
            s.image.partition("t", 0).map(|p| p.isr.clone()),
            Some(vec![1, 3])
        );
        assert_eq!(s.image.partition("t", 0).map(|p| p.leader_epoch), Some(3));
        assert!(matches!(
            err(s.apply(4, &alter(2, vec![1]))),
            MetadataError::FencedLeaderEpoch {
                given: 2,
                current: 3,
                ..
            }
        ));
        for bad in [vec![2, 3], vec![1, 4], vec![1, 1]] {
            assert!(matches!(
                err(s.apply(5, &alter(3, bad))),
                MetadataError::InvalidRequest(_)
            ));
        }
        assert!(matches!(
            err(s.apply(
                6,
                &MetadataCommand::AlterPartition {
                    topic: "t".into(),
                    partition: 5,
                    leader_epoch: 3,
                    isr: vec![1],
                }
            )),
            MetadataError::InvalidPartitions(_)
        ));
        assert!(matches!(
            err(s.apply(
                7,
                &MetadataCommand::AlterPartition {
                    topic: "x".into(),
                    partition: 0,
                    leader_epoch: 3,
                    isr: vec![1],
                }
            )),
            MetadataError::UnknownTopic(_)
        ));
        assert_eq!(
            s.image.partition("t", 0).map(|p| p.isr.clone()),
            Some(vec![1, 3])
        );
    }

    fn three_brokers_and(partitions: Vec<PartitionMeta>) -> MetadataState {
        let mut s = MetadataState::default();
        for id in 1..=4 {
            s.apply(id as u64, &broker(id));
        }
        let cmd = MetadataCommand::CreateTopic {
            name: "t".into(),
            id: Uuid::new_v4(),
            partitions,
            configs: BTreeMap::new(),
            internal: false,
        };
        assert_eq!(s.apply(5, &cmd), CommandResult::Ok);
        s
    }

    fn elect(partition: i32, unclean: bool) -> MetadataCommand {
        MetadataCommand::ElectLeader {
            topic: "t".into(),
            partition,
            unclean,
        }
    }

    #[test]
    fn preferred_election_moves_leadership_to_the_first_replica() {
        let mut s = three_brokers_and(vec![replicated(0, &[1, 2, 3])]);
        assert_eq!(
            err(s.apply(6, &elect(0, false))),
            MetadataError::ElectionNotNeeded
        );
        s.apply(7, &MetadataCommand::FenceBroker { id: 1 });
        // Fenced: not available.
        assert_eq!(
            err(s.apply(8, &elect(0, false))),
            MetadataError::PreferredLeaderNotAvailable
        );
        s.apply(9, &MetadataCommand::UnfenceBroker { id: 1 });
        // Live but not back in the ISR yet: still not available.
        assert_eq!(
            err(s.apply(10, &elect(0, false))),
            MetadataError::PreferredLeaderNotAvailable
        );
        let alter = MetadataCommand::AlterPartition {
            topic: "t".into(),
            partition: 0,
            leader_epoch: 1,
            isr: vec![2, 3, 1],
        };
        assert_eq!(s.apply(11, &alter), CommandResult::Ok);
        assert_eq!(s.apply(12, &elect(0, false)), CommandResult::Ok);
        let p = s.image.partition("t", 0).expect("partition");
        assert_eq!((p.leader, p.leader_epoch), (1, 2));
        assert!(matches!(
            err(s.apply(13, &elect(1, false))),
            MetadataError::InvalidPartitions(_)
        ));
    }

    #[test]
    fn unclean_election_only_when_no_isr_member_is_live() {
        let mut s = three_brokers_and(vec![replicated(0, &[1, 2])]);
        assert_eq!(
            err(s.apply(6, &elect(0, true))),
            MetadataError::ElectionNotNeeded
        );
        // 2 drops out of the ISR, then 1 dies: offline with ISR [1].
        s.apply(
            7,
            &MetadataCommand::AlterPartition {
                topic: "t".into(),
                partition: 0,
                leader_epoch: 0,
                isr: vec![1],
            },
        );
        s.apply(8, &MetadataCommand::FenceBroker { id: 1 });
        let p = s.image.partition("t", 0).expect("partition");
        assert_eq!((p.leader, p.isr.clone()), (-1, vec![1]));
        assert_eq!(s.apply(9, &elect(0, true)), CommandResult::Ok);
        let p = s.image.partition("t", 0).expect("partition");
        assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (2, 2, vec![2]));
        // Nobody live at all.
        s.apply(10, &MetadataCommand::FenceBroker { id: 2 });
        assert_eq!(s.image.partition("t", 0).map(|p| p.leader), Some(-1));
        assert_eq!(
            err(s.apply(11, &elect(0, true))),
            MetadataError::EligibleLeadersNotAvailable
        );
    }

    fn reassign(target: Option<&[i32]>) -> MetadataCommand {
        MetadataCommand::ReassignPartition {
            topic: "t".into(),
            partition: 0,
            target: target.map(<[i32]>::to_vec),
        }
    }

    fn isr(epoch: i32, isr: &[i32]) -> MetadataCommand {
        MetadataCommand::AlterPartition {
            topic: "t".into(),
            partition: 0,
            leader_epoch: epoch,
            isr: isr.to_vec(),
        }
    }

    #[test]
    fn reassignment_adds_then_completes_when_the_targets_are_in_sync() {
        let mut s = three_brokers_and(vec![replicated(0, &[1, 2])]);
        assert_eq!(s.apply(6, &reassign(Some(&[2, 3]))), CommandResult::Ok);
        let p = s.image.partition("t", 0).expect("partition").clone();
        assert_eq!(p.replicas, vec![2, 3, 1]);
        assert_eq!((p.adding_replicas, p.removing_replicas), (vec![3], vec![1]));
        assert_eq!((p.leader, p.isr), (1, vec![1, 2]));
        // 3 catches up: the same apply completes the move and moves leadership off 1.
        assert_eq!(s.apply(7, &isr(0, &[1, 2, 3])), CommandResult::Ok);
        let p = s.image.partition("t", 0).expect("partition").clone();
        assert_eq!(p.replicas, vec![2, 3]);
        assert_eq!((p.leader, p.leader_epoch, &p.isr), (2, 1, &vec![2, 3]));
        assert!(!p.is_reassigning());
        assert_eq!(
            err(s.apply(8, &reassign(None))),
            MetadataError::NoReassignmentInProgress
        );
    }

    #[test]
    fn reassignment_validation_replacement_and_cancel() {
        let mut s = three_brokers_and(vec![replicated(0, &[1, 2])]);
        for bad in [&[][..], &[2, 2], &[2, 9]] {
            assert!(matches!(
                err(s.apply(6, &reassign(Some(bad)))),
                MetadataError::InvalidReplicaAssignment(_)
            ));
        }
        // A target already in sync completes at once (a reorder, or a shrink).
        assert_eq!(s.apply(7, &reassign(Some(&[2, 1]))), CommandResult::Ok);
        let p = s.image.partition("t", 0).expect("partition").clone();
        assert_eq!((&p.replicas, p.leader), (&vec![2, 1], 1));
        assert!(!p.is_reassigning());
        // Replaced while running: the new one starts from the original replicas.
        s.apply(8, &reassign(Some(&[1, 3])));
        s.apply(9, &reassign(Some(&[4, 2])));
        let p = s.image.partition("t", 0).expect("partition").clone();
        assert_eq!(p.replicas, vec![4, 2, 1]);
        assert_eq!((p.adding_replicas, p.removing_replicas), (vec![4], vec![1]));
        // Cancel: back to the original replicas, the added one dropped from the ISR.
        s.apply(10, &isr(0, &[2, 1, 4]));
        let p = s.image.partition("t", 0).expect("partition").clone();
        assert_eq!(p.replicas, vec![4, 2], "completed once 4 was in sync");
        s.apply(11, &reassign(Some(&[3, 1])));
        assert_eq!(s.apply(12, &reassign(None)), CommandResult::Ok);
        let p = s.image.partition("t", 0).expect("partition").clone();
        assert_eq!(
            (&p.replicas, &p.isr, p.leader),
            (&vec![4, 2], &vec![2, 4], 4)
        );
        assert!(!p.is_reassigning());
    }

    #[test]
    fn partition_meta_without_reassignment_fields_still_loads() {
        let old = r#"{"partition":0,"leader":1,"leader_epoch":2,"replicas":[1,2],"isr":[1]}"#;
        let p: PartitionMeta = serde_json::from_str(old).expect("old partition meta");
        assert_eq!((p.leader_epoch, p.adding_replicas.len()), (2, 0));
    }
}

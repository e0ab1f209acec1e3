//! The metadata state machine: a pure function from (state, command) to (state, result).
//!
//! No I/O here: the openraft adapter in [`super::store`] feeds committed commands in
//! order and persists the result. Validation that must be identical on every node (name
//! taken, topic unknown) happens in `apply`, so every replica reaches the same answer.

// IMPLEMENTATION OWNED BY THE CLUSTER HELPER; the types below are the contract.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use super::image::{BrokerMeta, MetadataImage, PartitionMeta};

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
    /// Hand out `count` producer ids; the result is the first of the block.
    AllocateProducerIds {
        count: i64,
    },
    /// Leadership/ISR change of one partition (bumps the leader epoch when the leader changes).
    UpdatePartition {
        topic: String,
        partition: PartitionMeta,
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
    pub fn apply(&mut self, _index: u64, _cmd: &MetadataCommand) -> CommandResult {
        todo!("cluster helper")
    }
}

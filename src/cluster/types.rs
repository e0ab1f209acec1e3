//! The openraft type configuration of the metadata quorum and short aliases for it.
//!
//! Node ids are Kafka broker ids (non-negative `i32`) widened to `u64`; a node's
//! `BasicNode` address is its CONTROLLER listener (`host:port`), which [`super::network`]
//! connects to. The single self-bootstrapped node has none: it never sends an RPC.

use std::io::Cursor;

use super::state::{CommandResult, MetadataCommand};

openraft::declare_raft_types!(
    /// Type configuration of the metadata Raft group.
    pub TypeConfig:
        D = MetadataCommand,
        R = CommandResult,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type Node = openraft::BasicNode;
pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;

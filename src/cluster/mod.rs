//! Cluster metadata: one openraft log, replicated and applied to a pure state machine.
//!
//! Topics (with UUIDs), partitions (replicas, leader, leader epoch, ISR), registered
//! brokers, topic configs and producer-id blocks change only through [`MetadataCommand`]s
//! committed to the Raft log. The log and the applied state live in sled (behind the
//! [`store`] module's small store trait). Every applied command publishes a new immutable
//! [`MetadataImage`] on a `watch` channel; handlers read that image and never lock the
//! state machine. A node with no voters configured bootstraps a one-voter cluster by
//! itself, so the single-node and cluster code paths are the same; with
//! `controller.quorum.voters` the nodes talk over their internal (CONTROLLER) listeners.
//!
//! Where things live:
//! - [`state`]: the pure state machine (`MetadataState::apply`), no I/O; its partition
//!   leadership and reassignment rules in `state_partitions`.
//! - [`image`]: the immutable image brokers read.
//! - [`types`]: openraft's type configuration.
//! - [`store`] / [`store_sled`]: the byte-level store trait and its sled backend.
//! - [`log_store`] / [`state_machine`]: openraft's storage traits on top of the store.
//! - [`rpc`]: the internal control-plane protocol (frames, messages, client).
//! - [`network`]: the Raft transport over it; `server`: the internal listener.
//! - [`controller`]: start/bootstrap, propose (forwarded to the leader from any node),
//!   image subscription, broker heartbeats and fencing, shutdown.
//! - [`membership`]: learners joining, AddRaftVoter/RemoveRaftVoter, DescribeQuorum.

mod cluster_id;
pub mod controller;
pub mod image;
pub mod log_store;
pub mod membership;
pub mod network;
pub mod rebalance;
pub mod rpc;
mod server;
pub mod state;
pub mod state_machine;
mod state_partitions;
pub mod store;
pub mod store_sled;
#[cfg(test)]
mod tests_quorum;
pub mod types;

pub use controller::{Controller, ControllerConfig, QuorumConfig};
pub use image::{BrokerEndpoint, BrokerMeta, MetadataImage, PartitionMeta, TopicMeta};
pub use membership::{QuorumChange, QuorumRefusal, QuorumStatus};
pub use state::{CommandResult, MetadataCommand, MetadataError};

use thiserror::Error;

/// Failures of the metadata layer itself (not of a command, see [`MetadataError`]).
#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("metadata store: {0}")]
    Store(String),
    #[error("raft: {0}")]
    Raft(String),
    #[error("this node is not the metadata leader")]
    NotLeader,
    #[error("metadata layer is shutting down")]
    ShuttingDown,
    #[error("timed out waiting for the metadata quorum")]
    Timeout,
}

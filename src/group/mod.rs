//! Consumer-group coordination: the pure state machine of Kafka's classic group protocol
//! and of the KIP-848 `consumer` group protocol.
//!
//! This module owns the in-memory state of every group a coordinator is responsible for
//! (members, generations, assignments, committed offsets) and every rule of the classic
//! protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, static membership (KIP-345),
//! OffsetCommit / OffsetFetch, DescribeGroups, ListGroups, DeleteGroups, and the timers
//! that drive session expiry, rebalance timeouts and `group.initial.rebalance.delay.ms`.
//! `consumer` groups (ConsumerGroupHeartbeat, ConsumerGroupDescribe) live beside them:
//! the server computes assignments with its own assignors from a snapshot of topic
//! metadata ([`Topics`]) passed in with each heartbeat, and members reconcile towards
//! them epoch by epoch. A group id is either classic or `consumer`, never both.
//!
//! It does no I/O and reads no clock: every input carries `now_ms`, and every effect is
//! returned as data in an [`Output`]:
//! - replies for parked requests, addressed by the caller's opaque [`ReplyTo`] token (a
//!   completing JoinGroup answers every member parked in it; the leader's SyncGroup answers
//!   the followers waiting for their assignment);
//! - timer changes ([`TimerOp`]), which the caller may use to know when to call
//!   [`GroupCoordinator::tick`] (or it can simply poll [`GroupCoordinator::next_deadline`]);
//! - [`Record`]s to persist in `__consumer_offsets` (group metadata and committed offsets).
//!
//! How the coordinator will use it: the broker keeps one [`GroupCoordinator`] per
//! `__consumer_offsets` partition it leads. A handler decodes a request into one of the
//! plain request structs here, calls the matching method, appends `Output::records` to the
//! partition, and only once that append succeeded sends `Output::replies` (Kafka's
//! "written, then applied" order: a client never sees state that could be lost). On
//! leadership change the new coordinator replays the partition through
//! [`GroupCoordinator::replay`]. State is applied in memory when a call returns; if the
//! append then fails, the caller answers the held replies with an error (as Kafka does
//! with NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE) and should give up the partition and
//! replay it, since memory is then ahead of the log. The types here are deliberately not `kafka-protocol`
//! types, so the rules can be tested without the wire format; error codes are
//! `kafka_protocol::error::ResponseError` values.

mod assignors;
mod classic;
mod consumer;
mod consumer_admin;
mod consumer_heartbeat;
mod consumer_leave;
mod consumer_records;
mod consumer_replay;
mod consumer_types;
mod coordinator;
mod join;
pub mod manager;
mod membership;
mod offset_delete;
mod offsets;
mod reconcile;
pub mod records;
mod subscriptions;
mod txn_offsets;
mod types;
mod view;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_consumer;

pub use assignors::ASSIGNORS;
pub use classic::{ClassicGroup, GroupState, Member};
pub use consumer::{ConsumerGroup, ConsumerGroupState, ConsumerMember, MemberState};
pub use consumer_types::*;
pub use coordinator::GroupCoordinator;
pub use manager::{GroupManager, OFFSETS_TOPIC};
pub use offset_delete::OffsetDeleteResult;
pub use offsets::{
    CommitPartition, OffsetCommitRequest, OffsetFetchPartition, OffsetFetchRequest, OffsetValue,
    Offsets,
};
pub use txn_offsets::TxnOffsetCommitRequest;
pub use types::*;
pub use view::GroupMetricsView;

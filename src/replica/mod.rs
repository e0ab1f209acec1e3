//! Partition roles on this broker (Kafka's ReplicaManager): which partition logs exist
//! here according to metadata; the [`Partition`] a request acts on, with its leader and
//! epoch checks; the produce side (acks, the wait for the ISR and the fsync) and the
//! fetch operation with its long poll; the high watermark and the ISR; and the follower
//! side that replicates from leaders.

pub mod client;
pub mod fetch;
pub mod fetcher;
pub mod manager;
pub mod partition;

pub use manager::{PendingAppend, ReplicaManager};
pub use partition::Partition;

//! Partition roles on this broker (Kafka's ReplicaManager): which partition logs exist
//! here according to metadata, leader checks for produce and fetch, acks handling, and
//! the high watermark, the ISR; and the follower side that replicates from leaders.

pub mod client;
pub mod fetcher;
pub mod manager;

pub use manager::{PendingAppend, ReplicaManager};

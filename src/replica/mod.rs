//! Partition roles on this broker (Kafka's ReplicaManager): which partition logs exist
//! here according to metadata, leader checks for produce and fetch, acks handling, and
//! the high watermark. Followers and the ISR arrive with cluster mode.

pub mod manager;

pub use manager::{PendingAppend, ReplicaManager};

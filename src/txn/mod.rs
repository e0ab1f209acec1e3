//! Transactions (KIP-98): the transaction coordinator. A transactional id belongs to the
//! leader of partition `hash(id) mod N` of `__transaction_state`, the compacted topic that
//! holds each id's latest state. The coordinator is a pure state machine
//! ([`coordinator`]) over [`metadata`], persisted as Kafka's records ([`records`]).
//! Partition leaders write the markers that end transactions and track the last stable
//! offset (`crate::log`).

pub mod coordinator;
pub mod manager;
pub mod markers;
pub mod metadata;
pub mod records;
#[cfg(test)]
mod tests;

pub use coordinator::{InitProducerId, MarkerJob, Output, TxnConfig, TxnCoordinator};
pub use manager::TxnManager;
pub use metadata::{TopicPartition, TxnMetadata, TxnState};
pub use records::TxnRecord;

/// The internal topic of transaction states.
pub const TXN_TOPIC: &str = "__transaction_state";

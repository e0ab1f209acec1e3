//! Weir: a Kafka-wire-compatible message broker.
pub mod cluster;
pub mod config;
pub mod log;

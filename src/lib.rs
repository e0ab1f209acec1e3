//! Weir: a Kafka-wire-compatible message broker.
//!
//! Request flow: [`server::listener`] accepts a TCP connection; [`server::connection`]
//! reads size-prefixed frames and decodes headers ([`protocol`]); [`handlers`] (one file
//! per Kafka API) decode bodies with the `kafka-protocol` crate and act through the
//! [`replica`] manager (partition roles; a [`replica::Partition`] per request with its
//! epoch checks; the produce purgatory; the fetch operation with its long poll) on the
//! [`log`] manager (segments and indexes on disk), and through the [`cluster`] controller (openraft
//! metadata log on sled) for topics, configs and producer ids. Administrative changes
//! (topics, partitions, configs) and their validation live in [`admin`], which handlers
//! and the group coordinator call. Internal errors become Kafka error codes in
//! [`errors`]. The subsystems every handler reaches are in [`state`]; [`broker`] builds
//! them, wires them up and shuts them down in order.

pub mod admin;
pub mod alloc;
pub mod audit;
pub mod authorizer;
pub mod broker;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod dir_lock;
pub mod errors;
pub mod group;
pub mod handlers;
pub mod internal_topics;
pub mod log;
pub mod log_levels;
pub mod memory_trim;
pub mod metrics;
pub mod metrics_cache;
pub mod metrics_collect;
pub mod metrics_http;
pub mod peer_log;
pub mod principal;
pub mod producer_ids;
pub mod protocol;
pub mod replica;
pub mod sasl;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod txn;

#[global_allocator]
static GLOBAL: alloc::Allocator = alloc::Allocator;

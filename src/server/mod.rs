//! The client-facing network layer: listeners accept connections; each connection reads
//! frames, hands requests to the handlers in order and writes responses in order.

pub mod connection;
pub mod listener;

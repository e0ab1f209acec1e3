//! The client-facing network layer: listeners accept connections (over TLS on SSL
//! listeners, [`tls`]); each connection reads frames, hands requests to the handlers in
//! order and writes responses in order.

pub mod connection;
pub mod listener;
pub mod session;

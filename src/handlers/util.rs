//! Small helpers shared by handlers.

use kafka_protocol::protocol::StrBytes;

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// The wire code of an optional error (0 for none).
pub fn code(e: Option<kafka_protocol::error::ResponseError>) -> i16 {
    e.map_or(0, |e| e.code())
}

/// Kafka's form of a client address in group descriptions: `/ip`.
pub fn client_host(peer: &std::net::SocketAddr) -> String {
    format!("/{}", peer.ip())
}

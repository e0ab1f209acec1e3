//! Small helpers shared by handlers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::protocol::StrBytes;

use crate::errors::KafkaError;

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

/// The quorum APIs' `cluster_id` check: absent (or empty) matches; another id is
/// INCONSISTENT_CLUSTER_ID, as Kafka answers.
pub fn check_cluster_id(ctx: &super::Ctx, given: Option<&str>) -> Result<(), KafkaError> {
    let ours = ctx.state.controller.image().cluster_id.clone();
    match given {
        Some(id) if !id.is_empty() && id != ours => Err(KafkaError::with_message(
            ResponseError::InconsistentClusterId,
            format!("cluster id {id} is not this cluster's ({ours})"),
        )),
        _ => Ok(()),
    }
}

/// A Raft node id from a Kafka voter or broker id (non-negative).
pub fn node_id(id: i32) -> Result<u64, KafkaError> {
    u64::try_from(id).map_err(|_| {
        KafkaError::with_message(
            ResponseError::InvalidRequest,
            format!("invalid node id {id}"),
        )
    })
}

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

/// AddRaftVoter and RemoveRaftVoter: check the cluster id and the voter id, then run
/// `change` for that node on the Raft leader; the response's error code and message.
pub async fn change_voter(
    ctx: &super::Ctx,
    cluster_id: Option<&str>,
    voter_id: i32,
    change: fn(u64) -> crate::cluster::QuorumChange,
) -> (i16, Option<StrBytes>) {
    let outcome = match check_cluster_id(ctx, cluster_id).and_then(|()| node_id(voter_id)) {
        Err(e) => Err(e),
        Ok(id) => ctx
            .state
            .controller
            .change_quorum(change(id))
            .await
            .map_err(|e| KafkaError::from(&e)),
    };
    match outcome {
        Ok(()) => (0, None),
        Err(e) => {
            ctx.note_error(e.code);
            (e.code, e.message.as_deref().map(s))
        }
    }
}

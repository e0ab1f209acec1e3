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
    // ALTER on the cluster.
    if !ctx.authorize_cluster(crate::authorizer::Operation::Alter) {
        let code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        ctx.note_error(code);
        return (code, None);
    }
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

/// Whether the principal may describe (`alter` false) or alter a config resource: a
/// topic's DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic, a broker's, a broker logger's
/// or a client-metrics subscription's on the cluster, with Kafka's errors.
pub fn config_access(
    ctx: &super::Ctx,
    resource_type: i8,
    name: &str,
    alter: bool,
) -> Result<(), crate::errors::KafkaError> {
    use crate::authorizer::{Operation, ResourceType, CLUSTER_NAME};
    use kafka_protocol::error::ResponseError;
    let op = if alter {
        Operation::AlterConfigs
    } else {
        Operation::DescribeConfigs
    };
    let (rt, resource, error) = if resource_type == crate::admin::RESOURCE_TOPIC {
        (
            ResourceType::Topic,
            name,
            ResponseError::TopicAuthorizationFailed,
        )
    } else {
        (
            ResourceType::Cluster,
            CLUSTER_NAME,
            ResponseError::ClusterAuthorizationFailed,
        )
    };
    if ctx.authorize(op, rt, resource) {
        Ok(())
    } else {
        Err(crate::errors::KafkaError::new(error))
    }
}

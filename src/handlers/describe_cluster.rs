//! DescribeCluster (key 60), v0–v2: the brokers, the controller id and the cluster id,
//! as the admin client's describeCluster() sees them.
//!
//! v1 adds `endpoint_type` (KIP-919): 1 (brokers) is served; 2 (controllers) gets
//! MISMATCHED_ENDPOINT_TYPE and any other value UNSUPPORTED_ENDPOINT_TYPE, both
//! INVALID_REQUEST at v0, with Kafka's messages and an otherwise empty answer, exactly
//! as a Kafka broker listener answers. Brokers are the live (unfenced) ones; at v2 with
//! `include_fenced_brokers` the fenced ones follow with `is_fenced` set, as in Kafka
//! (KIP-1073). A controller id that is not a
//! registered broker is reported as -1. Authorized operations are reported only when
//! asked for; without ACLs every cluster operation is allowed.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::authorizer::{ResourceType, CLUSTER_NAME};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

const ENDPOINT_BROKER: i8 = 1;
const ENDPOINT_CONTROLLER: i8 = 2;

pub async fn handle(ctx: &Ctx, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let refusal = match req.endpoint_type {
        ENDPOINT_BROKER => None,
        ENDPOINT_CONTROLLER => Some((
            ResponseError::MismatchedEndpointType,
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER".to_string(),
        )),
        other => Some((
            ResponseError::UnsupportedEndpointType,
            format!("Unsupported endpoint type {other}"),
        )),
    };
    if let Some((err, message)) = refusal {
        let code = if ctx.version == 0 {
            ResponseError::InvalidRequest.code()
        } else {
            err.code()
        };
        ctx.note_error(code);
        return DescribeClusterResponse::default()
            .with_error_code(code)
            .with_error_message(Some(s(&message)));
    }
    let image = ctx.state.controller.image();
    let fenced = if ctx.version >= 2 && req.include_fenced_brokers {
        image.fenced_brokers.values().collect()
    } else {
        Vec::new()
    };
    let mut brokers: Vec<DescribeClusterBroker> = image
        .brokers
        .values()
        .map(|b| (b, false))
        .chain(fenced.into_iter().map(|b| (b, true)))
        .filter_map(|(b, is_fenced)| {
            let (host, port) = b.endpoint(&ctx.listener)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.id))
                    .with_host(s(host))
                    .with_port(port as i32)
                    .with_rack(b.rack.as_deref().map(s))
                    .with_is_fenced(is_fenced),
            )
        })
        .collect();
    brokers.sort_by_key(|b| b.broker_id.0);
    let controller_id = if image.brokers.contains_key(&image.controller_id) {
        image.controller_id
    } else {
        -1
    };
    DescribeClusterResponse::default()
        .with_endpoint_type(ENDPOINT_BROKER)
        .with_cluster_id(s(&image.cluster_id))
        .with_controller_id(BrokerId(controller_id))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(ctx.authorized_operations(
            ResourceType::Cluster,
            CLUSTER_NAME,
            req.include_cluster_authorized_operations,
        ))
}

//! ListConfigResources (key 74), v0–v1: the resources that have configs (KIP-1142; v0
//! was ListClientMetricsResources).
//!
//! v0 lists client-metrics subscriptions only. v1 lists the resource types asked for
//! (every supported one when none is given): TOPIC (every topic), BROKER (every
//! registered broker, and "" when cluster-wide dynamic defaults are set), BROKER_LOGGER
//! (every registered broker), CLIENT_METRICS (the subscriptions) and GROUP (none: Weir
//! keeps no group configs). Any other type is UNSUPPORTED_VERSION, as in Kafka.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;
const SUPPORTED: [i8; 5] = [TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP];

pub async fn handle(ctx: &Ctx, req: ListConfigResourcesRequest) -> ListConfigResourcesResponse {
    let types: Vec<i8> = if ctx.version == 0 {
        vec![CLIENT_METRICS]
    } else if req.resource_types.is_empty() {
        SUPPORTED.to_vec()
    } else {
        req.resource_types.clone()
    };
    if let Some(t) = types.iter().find(|t| !SUPPORTED.contains(t)) {
        ctx.note_error(ResponseError::UnsupportedVersion.code());
        tracing::debug!(
            resource_type = t,
            "ListConfigResources for an unsupported type"
        );
        return ListConfigResourcesResponse::default()
            .with_error_code(ResponseError::UnsupportedVersion.code());
    }
    // DESCRIBE_CONFIGS on the cluster.
    if !ctx.authorize_cluster(crate::authorizer::Operation::DescribeConfigs) {
        ctx.note_error(ResponseError::ClusterAuthorizationFailed.code());
        return ListConfigResourcesResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let image = ctx.state.controller.image();
    let mut brokers: Vec<i32> = image
        .brokers
        .keys()
        .chain(image.fenced_brokers.keys())
        .copied()
        .collect();
    brokers.sort_unstable();
    let mut out = Vec::new();
    let mut add = |name: &str, resource_type: i8| {
        let mut r = ConfigResource::default().with_resource_name(s(name));
        if ctx.version >= 1 {
            r.resource_type = resource_type;
        }
        out.push(r);
    };
    for t in types {
        match t {
            TOPIC => image.topics.keys().for_each(|n| add(n, TOPIC)),
            BROKER => {
                if image.broker_configs.contains_key("") {
                    add("", BROKER);
                }
                brokers.iter().for_each(|b| add(&b.to_string(), BROKER));
            }
            BROKER_LOGGER => brokers
                .iter()
                .for_each(|b| add(&b.to_string(), BROKER_LOGGER)),
            CLIENT_METRICS => image
                .client_metrics
                .keys()
                .for_each(|n| add(n, CLIENT_METRICS)),
            _ => {}
        }
    }
    ListConfigResourcesResponse::default().with_config_resources(out)
}

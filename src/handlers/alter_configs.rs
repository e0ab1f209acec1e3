//! AlterConfigs (key 33), v0–v2: the legacy, non-incremental config change. For a topic
//! the given set replaces ALL of its overrides (a setting left out returns to the broker
//! default), as in Kafka; a null value also leaves that setting unset.
//!
//! Every value is validated (INVALID_CONFIG with the reason) before anything is
//! committed; `validate_only` stops there. A resource named twice gets one
//! INVALID_REQUEST ("Duplicate resource."), an unknown topic UNKNOWN_TOPIC_OR_PARTITION.
//! A BROKER resource ("" or a node id) has its dynamic configs replaced the same way
//! (see `crate::admin::broker_configs`); broker loggers change through IncrementalAlterConfigs
//! only. A committed change is pushed to the live partition logs before the answer, so
//! retention, segment size, max.message.bytes, cleanup.policy and message.timestamp.type
//! take effect at once.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::admin::config_ops::{
    replace_broker_configs, replace_client_metrics, replace_topic_configs,
};
use crate::admin::{
    count_resources, unsupported_resource, RESOURCE_BROKER, RESOURCE_CLIENT_METRICS, RESOURCE_TOPIC,
};
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

pub async fn handle(ctx: &Ctx, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let counts = count_resources(
        req.resources
            .iter()
            .map(|r| (r.resource_type, &*r.resource_name)),
    );
    let mut reported = std::collections::HashSet::new();
    let mut responses = Vec::new();
    for res in req.resources {
        let key = (res.resource_type, res.resource_name.to_string());
        let outcome = if counts[&key] > 1 {
            if !reported.insert(key) {
                continue;
            }
            Err(KafkaError::with_message(
                kafka_protocol::error::ResponseError::InvalidRequest,
                "Duplicate resource.",
            ))
        } else if let Err(e) = super::util::config_access(ctx, res.resource_type, &key.1, true) {
            Err(e)
        } else if res.resource_type == RESOURCE_TOPIC {
            let configs: Vec<(String, Option<String>)> = res
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect();
            replace_topic_configs(ctx.state.admin(), &key.1, configs, req.validate_only).await
        } else if res.resource_type == RESOURCE_BROKER {
            let configs: BTreeMap<String, String> = res
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect();
            replace_broker_configs(ctx.state.admin(), &key.1, configs, req.validate_only).await
        } else if res.resource_type == RESOURCE_CLIENT_METRICS {
            let configs: BTreeMap<String, String> = res
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect();
            replace_client_metrics(ctx.state.admin(), &key.1, configs, req.validate_only).await
        } else {
            Err(unsupported_resource(res.resource_type))
        };
        let mut r = AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name);
        if let Err(e) = outcome {
            ctx.note_error(e.code);
            r.error_code = e.code;
            r.error_message = e.message.as_deref().map(s);
        }
        responses.push(r);
    }
    AlterConfigsResponse::default().with_responses(responses)
}

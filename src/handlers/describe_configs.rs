//! DescribeConfigs (key 32), v1–v4: the settings of topics, of this broker (static and
//! dynamic layers), of its loggers and of client-metrics subscriptions, with the source
//! of each value and, on request, its synonyms (v1+), type and documentation (v3+). What
//! each setting's value, source and synonyms are is decided in `crate::admin::describe`;
//! this handler maps resources to it and back to the wire. A null or empty key list asks
//! for every setting; an empty broker name asks for the cluster-wide dynamic defaults
//! (only those set, as Kafka answers). Errors are per resource.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::util::s;
use super::Ctx;
use crate::admin::describe::{
    describe_broker_setting, describe_client_metrics, describe_dynamic_defaults, describe_loggers,
    describe_topic, wanted, Described,
};
use crate::admin::{
    broker_configs, check_broker_id, topics, RESOURCE_BROKER, RESOURCE_BROKER_LOGGER,
    RESOURCE_CLIENT_METRICS, RESOURCE_TOPIC,
};
use crate::config::BROKER_DEFS;
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 4 };

pub async fn handle(ctx: &Ctx, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let image = ctx.state.controller.image();
    let effective = broker_configs::effective(&ctx.state.config, &image, ctx.state.node_id);
    let cfg = &effective;
    let mut results = Vec::new();
    for res in req.resources {
        let name = res.resource_name.to_string();
        let keys: Option<Vec<String>> = res
            .configuration_keys
            .map(|k| k.iter().map(|k| k.to_string()).collect());
        let described = match super::util::config_access(ctx, res.resource_type, &name, false) {
            Err(e) => Err(e),
            Ok(()) => match res.resource_type {
                RESOURCE_TOPIC => {
                    // Kafka validates the name (INVALID_TOPIC_EXCEPTION, also for "") before
                    // looking the topic up.
                    topics::validate_name(&name).and_then(|_| {
                        image
                            .topic(&name)
                            .map(|t| describe_topic(cfg, &t.configs, keys.as_deref()))
                            // Kafka sends no message with this one.
                            .ok_or_else(|| KafkaError::new(ResponseError::UnknownTopicOrPartition))
                    })
                }
                RESOURCE_BROKER if name.is_empty() => {
                    Ok(describe_dynamic_defaults(&image, keys.as_deref()))
                }
                RESOURCE_BROKER => check_broker_id(ctx.state.node_id, &name).map(|_| {
                    BROKER_DEFS
                        .iter()
                        .filter(|d| wanted(keys.as_deref(), d.name))
                        .filter_map(|d| describe_broker_setting(cfg, d.name))
                        .collect()
                }),
                RESOURCE_CLIENT_METRICS if name.is_empty() => Err(KafkaError::with_message(
                    ResponseError::InvalidRequest,
                    "Client metrics subscription name must not be empty",
                )),
                RESOURCE_CLIENT_METRICS => {
                    Ok(describe_client_metrics(&image, &name, keys.as_deref()))
                }
                RESOURCE_BROKER_LOGGER if name.is_empty() => Err(KafkaError::with_message(
                    ResponseError::InvalidRequest,
                    "Broker id must not be empty",
                )),
                RESOURCE_BROKER_LOGGER => check_broker_id(ctx.state.node_id, &name)
                    .map(|_| describe_loggers(keys.as_deref())),
                other => Err(KafkaError::with_message(
                    ResponseError::InvalidRequest,
                    format!("Unsupported resource type: {other}"),
                )),
            },
        };
        let mut result = DescribeConfigsResult::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name);
        match described {
            Ok(list) => {
                result.configs = list
                    .into_iter()
                    .map(|d| to_wire(d, req.include_synonyms, req.include_documentation))
                    .collect();
            }
            Err(e) => {
                ctx.note_error(e.code);
                result.error_code = e.code;
                result.error_message = e.message.as_deref().map(s);
            }
        }
        results.push(result);
    }
    DescribeConfigsResponse::default().with_results(results)
}

fn to_wire(d: Described, synonyms: bool, docs: bool) -> DescribeConfigsResourceResult {
    let synonyms = if synonyms {
        d.synonyms
            .iter()
            .map(|(n, v, src)| {
                DescribeConfigsSynonym::default()
                    .with_name(s(n))
                    .with_value(v.as_deref().map(s))
                    .with_source(src.code())
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(s(d.name))
        .with_value(d.value.as_deref().map(s))
        .with_read_only(d.read_only)
        .with_config_source(d.source.code())
        .with_is_sensitive(d.sensitive)
        .with_synonyms(synonyms)
        .with_config_type(d.kind.kafka_type())
        .with_documentation(if docs {
            d.doc.map(StrBytes::from_static_str)
        } else {
            None
        })
}

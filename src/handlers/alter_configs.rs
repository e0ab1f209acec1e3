//! AlterConfigs (key 33), v0–v2: the legacy, non-incremental config change. For a topic
//! the given set replaces ALL of its overrides (a setting left out returns to the broker
//! default), as in Kafka; a null value also leaves that setting unset.
//!
//! Every value is validated (INVALID_CONFIG with the reason) before anything is
//! committed; `validate_only` stops there. A resource named twice gets one
//! INVALID_REQUEST ("Duplicate resource."), an unknown topic UNKNOWN_TOPIC_OR_PARTITION.
//! A BROKER resource ("" or a node id) has its dynamic configs replaced the same way
//! (see `crate::broker_configs`); broker loggers change through IncrementalAlterConfigs
//! only. A committed change is pushed to the live partition logs before the answer, so
//! retention, segment size, max.message.bytes, cleanup.policy and message.timestamp.type
//! take effect at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::VersionRange;

use super::describe_configs::{
    check_topic_resource, RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_CLIENT_METRICS,
    RESOURCE_TOPIC,
};
use super::util::s;
use super::Ctx;
use crate::broker::BrokerState;
use crate::broker_configs;
use crate::cluster::{CommandResult, MetadataCommand};
use crate::errors::KafkaError;
use crate::topics;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// Commit a metadata command and make the result live on this broker's logs.
pub(super) async fn commit(
    state: &Arc<BrokerState>,
    cmd: MetadataCommand,
) -> Result<(), KafkaError> {
    match state.controller.propose(cmd).await {
        Err(e) => Err(KafkaError::from(&e)),
        Ok(CommandResult::Err(e)) => Err(KafkaError::from(&e)),
        Ok(_) => {
            reconcile(state).await;
            Ok(())
        }
    }
}

/// Bring the local logs in line with the latest metadata image before answering.
pub(super) async fn reconcile(state: &Arc<BrokerState>) {
    state.replicas.reconcile_latest().await;
}

/// The refusal for resources this API cannot change.
pub(super) fn unsupported_resource(resource_type: i8) -> KafkaError {
    match resource_type {
        RESOURCE_BROKER_LOGGER => KafkaError::with_message(
            ResponseError::InvalidRequest,
            "Log levels (BROKER_LOGGER) change through IncrementalAlterConfigs only",
        ),
        other => KafkaError::with_message(
            ResponseError::InvalidRequest,
            format!("Unsupported resource type: {other}"),
        ),
    }
}

/// Count (type, name) pairs so resources named more than once can be refused.
pub(super) fn count_resources<'a>(
    it: impl Iterator<Item = (i8, &'a str)>,
) -> HashMap<(i8, String), usize> {
    let mut counts = HashMap::new();
    for (t, n) in it {
        *counts.entry((t, n.to_string())).or_insert(0) += 1;
    }
    counts
}

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
                ResponseError::InvalidRequest,
                "Duplicate resource.",
            ))
        } else if res.resource_type == RESOURCE_TOPIC {
            let configs: Vec<(String, Option<String>)> = res
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect();
            replace_topic_configs(ctx, &key.1, configs, req.validate_only).await
        } else if res.resource_type == RESOURCE_BROKER {
            let configs: BTreeMap<String, String> = res
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect();
            replace_broker_configs(ctx, &key.1, configs, req.validate_only).await
        } else if res.resource_type == RESOURCE_CLIENT_METRICS {
            let configs: BTreeMap<String, String> = res
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect();
            replace_client_metrics(ctx, &key.1, configs, req.validate_only).await
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

/// Legacy AlterConfigs on a BROKER resource: the given set replaces all of its dynamic
/// values.
async fn replace_broker_configs(
    ctx: &Ctx,
    resource: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), KafkaError> {
    let image = ctx.state.controller.image();
    broker_configs::validate(&ctx.state.config, &image, resource, &configs)?;
    if validate_only {
        return Ok(());
    }
    commit(
        &ctx.state,
        MetadataCommand::ReplaceBrokerConfigs {
            broker: resource.to_string(),
            configs,
        },
    )
    .await
}

/// Legacy AlterConfigs on a CLIENT_METRICS resource: the given settings replace the
/// subscription's (none deletes it).
async fn replace_client_metrics(
    ctx: &Ctx,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), KafkaError> {
    if name.is_empty() {
        return Err(KafkaError::with_message(
            ResponseError::InvalidRequest,
            "Client metrics subscription name must not be empty",
        ));
    }
    for (k, v) in &configs {
        crate::telemetry::check_setting(k, v)
            .map_err(|m| KafkaError::with_message(ResponseError::InvalidConfig, m))?;
    }
    if validate_only {
        return Ok(());
    }
    let current = ctx
        .state
        .controller
        .image()
        .client_metrics
        .get(name)
        .cloned();
    let mut changes: BTreeMap<String, Option<String>> = current
        .unwrap_or_default()
        .into_keys()
        .map(|k| (k, None))
        .collect();
    changes.extend(configs.into_iter().map(|(k, v)| (k, Some(v))));
    commit(
        &ctx.state,
        MetadataCommand::AlterClientMetrics {
            name: name.to_string(),
            changes,
        },
    )
    .await
}

async fn replace_topic_configs(
    ctx: &Ctx,
    topic: &str,
    configs: Vec<(String, Option<String>)>,
    validate_only: bool,
) -> Result<(), KafkaError> {
    check_topic_resource(&ctx.state.controller.image(), topic)?;
    // A null value leaves the setting unset, as Kafka's controller does: with the whole
    // set being replaced, that is the same as leaving it out.
    let new: BTreeMap<String, String> = configs
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect();
    topics::validate_configs(&new)?;
    if validate_only {
        return Ok(());
    }
    commit(
        &ctx.state,
        MetadataCommand::ReplaceTopicConfigs {
            topic: topic.to_string(),
            configs: new,
        },
    )
    .await
}

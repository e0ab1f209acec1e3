//! IncrementalAlterConfigs (key 44), v0–v1: change single topic settings, leaving the
//! others as they are.
//!
//! Operations: SET (0) overrides a value, DELETE (1) removes the override (back to the
//! broker default), APPEND (2) / SUBTRACT (3) add or remove items of a list setting
//! (`cleanup.policy`), starting from the override or else the broker's effective value;
//! on any other type they are INVALID_CONFIG, as in Kafka. Each resulting value is
//! validated (INVALID_CONFIG with the reason) before anything is committed;
//! `validate_only` stops there. A key named twice in one resource, or a resource named
//! twice, is INVALID_REQUEST. Committed changes are live on the partition logs before the
//! answer.
//!
//! A BROKER resource ("" for the cluster-wide default, or a node id) changes dynamic
//! broker configs (see `crate::admin::broker_configs`), stored in the metadata; a setting that
//! cannot change at runtime is INVALID_REQUEST. A BROKER_LOGGER resource (this broker's
//! id) sets or deletes log levels of this process, as Kafka's log4j loggers. A
//! CLIENT_METRICS resource is a client-metrics subscription (KIP-714): `metrics`,
//! `interval.ms`, `match`.

use std::collections::HashSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::admin::config_ops::{
    alter_broker, alter_client_metrics, alter_loggers, alter_topic, Op,
};
use crate::admin::{
    count_resources, unsupported_resource, RESOURCE_BROKER, RESOURCE_BROKER_LOGGER,
    RESOURCE_CLIENT_METRICS, RESOURCE_TOPIC,
};
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub async fn handle(
    ctx: &Ctx,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let counts = count_resources(
        req.resources
            .iter()
            .map(|r| (r.resource_type, &*r.resource_name)),
    );
    let mut reported = HashSet::new();
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
        } else if let Err(e) = super::util::config_access(ctx, res.resource_type, &key.1, true) {
            Err(e)
        } else if [
            RESOURCE_TOPIC,
            RESOURCE_BROKER,
            RESOURCE_BROKER_LOGGER,
            RESOURCE_CLIENT_METRICS,
        ]
        .contains(&res.resource_type)
        {
            let ops: Vec<Op> = res
                .configs
                .iter()
                .map(|c| {
                    (
                        c.name.to_string(),
                        c.config_operation,
                        c.value.as_ref().map(|v| v.to_string()),
                    )
                })
                .collect();
            match res.resource_type {
                RESOURCE_TOPIC => {
                    alter_topic(ctx.state.admin(), &key.1, &ops, req.validate_only).await
                }
                RESOURCE_BROKER => {
                    alter_broker(ctx.state.admin(), &key.1, &ops, req.validate_only).await
                }
                RESOURCE_CLIENT_METRICS => {
                    alter_client_metrics(ctx.state.admin(), &key.1, &ops, req.validate_only).await
                }
                _ => alter_loggers(ctx.state.admin(), &key.1, &ops, req.validate_only),
            }
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
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

//! IncrementalAlterConfigs (key 44), v0–v1: change single topic settings, leaving the
//! others as they are.
//!
//! Operations: SET (0) overrides a value, DELETE (1) removes the override (back to the
//! broker default), APPEND (2) / SUBTRACT (3) add or remove items of a list setting
//! (`cleanup.policy`), starting from the override or else the broker's effective value;
//! on any other type they are INVALID_CONFIG, as in Kafka. Each resulting value is
//! validated (INVALID_CONFIG with the reason) before anything is committed;
//! `validate_only` stops there. A key named twice in one resource, or a resource named
//! twice, is INVALID_REQUEST. Broker and broker-logger resources are refused with
//! INVALID_REQUEST: Weir has no dynamic broker configs yet. Committed changes are live
//! on the partition logs before the answer.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::VersionRange;

use super::alter_configs::{commit, count_resources, unsupported_resource};
use super::describe_configs::{check_topic_resource, RESOURCE_TOPIC};
use super::util::s;
use super::Ctx;
use crate::cluster::MetadataCommand;
use crate::config::{check_topic_value, split_list, topic_def, Kind};
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

pub const OP_SET: i8 = 0;
pub const OP_DELETE: i8 = 1;
pub const OP_APPEND: i8 = 2;
pub const OP_SUBTRACT: i8 = 3;

/// One requested change: (key, operation, value).
pub type Op = (String, i8, Option<String>);

/// Turn operations into the changes to commit (`Some` = set, `None` = remove), given a
/// topic's current overrides and the broker's effective value of a setting.
pub fn apply_ops(
    current: &BTreeMap<String, String>,
    broker_value: impl Fn(&str) -> Option<String>,
    ops: &[Op],
) -> Result<BTreeMap<String, Option<String>>, KafkaError> {
    let mut seen = HashSet::new();
    if let Some((k, _, _)) = ops.iter().find(|(k, _, _)| !seen.insert(k.as_str())) {
        return Err(KafkaError::with_message(
            ResponseError::InvalidRequest,
            format!("Error due to duplicate config keys : {k}"),
        ));
    }
    let mut changes = BTreeMap::new();
    for (key, op, value) in ops {
        let needs_value = |what: &str| {
            value.clone().ok_or_else(|| {
                KafkaError::with_message(
                    ResponseError::InvalidRequest,
                    format!("Null value not supported for {what} of : {key}"),
                )
            })
        };
        let new = match *op {
            OP_SET => Some(needs_value("SET")?),
            // Removing an override that is not there (or an unknown key) is a no-op, as
            // in Kafka.
            OP_DELETE => None,
            OP_APPEND | OP_SUBTRACT => {
                let what = if *op == OP_APPEND {
                    "APPEND"
                } else {
                    "SUBTRACT"
                };
                if topic_def(key).is_none_or(|d| d.kind != Kind::List) {
                    return Err(KafkaError::with_message(
                        ResponseError::InvalidConfig,
                        format!("Can't {what} to key {key} because its type is not LIST."),
                    ));
                }
                let items = split_list(&needs_value(what)?);
                let base = current.get(key).cloned().or_else(|| broker_value(key));
                let mut list = split_list(base.as_deref().unwrap_or(""));
                if *op == OP_APPEND {
                    for i in items {
                        if !list.contains(&i) {
                            list.push(i);
                        }
                    }
                } else {
                    list.retain(|i| !items.contains(i));
                }
                Some(list.join(","))
            }
            other => {
                return Err(KafkaError::with_message(
                    ResponseError::InvalidRequest,
                    format!("Unknown config operation {other} for key {key}"),
                ))
            }
        };
        if let Some(v) = &new {
            check_topic_value(key, v).map_err(|e| KafkaError::from(&e))?;
        }
        changes.insert(key.clone(), new);
    }
    Ok(changes)
}

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
        } else if res.resource_type == RESOURCE_TOPIC {
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
            alter_topic(ctx, &key.1, &ops, req.validate_only).await
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

async fn alter_topic(
    ctx: &Ctx,
    topic: &str,
    ops: &[Op],
    validate_only: bool,
) -> Result<(), KafkaError> {
    let image = ctx.state.controller.image();
    check_topic_resource(&image, topic)?;
    let current = image
        .topic(topic)
        .map(|t| t.configs.clone())
        .unwrap_or_default();
    let cfg = &ctx.state.config;
    let changes = apply_ops(&current, |k| cfg.topic_default(k).map(|(v, _, _)| v), ops)?;
    if validate_only || changes.is_empty() {
        return Ok(());
    }
    commit(
        &ctx.state,
        MetadataCommand::AlterTopicConfigs {
            topic: topic.to_string(),
            changes,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(k: &str, o: i8, v: Option<&str>) -> Op {
        (k.to_string(), o, v.map(str::to_string))
    }

    fn run(current: &[(&str, &str)], ops: &[Op]) -> Result<Vec<(String, Option<String>)>, i16> {
        let current: BTreeMap<String, String> = current
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let broker = |k: &str| (k == "cleanup.policy").then(|| "delete".to_string());
        apply_ops(&current, broker, ops)
            .map(|m| m.into_iter().collect())
            .map_err(|e| e.code)
    }

    #[test]
    fn set_and_delete() {
        let r = run(
            &[("retention.ms", "5")],
            &[
                op("retention.ms", OP_DELETE, None),
                op("segment.bytes", OP_SET, Some("1024")),
            ],
        )
        .unwrap();
        assert_eq!(
            r,
            vec![
                ("retention.ms".into(), None),
                ("segment.bytes".into(), Some("1024".into()))
            ]
        );
    }

    #[test]
    fn append_and_subtract_work_on_lists_from_the_effective_value() {
        let r = run(&[], &[op("cleanup.policy", OP_APPEND, Some("compact"))]).unwrap();
        assert_eq!(r[0].1.as_deref(), Some("delete,compact"));
        // Appending what is there already changes nothing.
        let r = run(
            &[("cleanup.policy", "compact")],
            &[op("cleanup.policy", OP_APPEND, Some("compact,delete"))],
        )
        .unwrap();
        assert_eq!(r[0].1.as_deref(), Some("compact,delete"));
        let r = run(
            &[("cleanup.policy", "compact,delete")],
            &[op("cleanup.policy", OP_SUBTRACT, Some("delete"))],
        )
        .unwrap();
        assert_eq!(r[0].1.as_deref(), Some("compact"));
    }

    #[test]
    fn invalid_operations_are_refused() {
        let invalid_config = ResponseError::InvalidConfig.code();
        let invalid_request = ResponseError::InvalidRequest.code();
        // Not a list.
        assert_eq!(
            run(&[], &[op("retention.ms", OP_APPEND, Some("1"))]),
            Err(invalid_config)
        );
        assert_eq!(
            run(&[], &[op("retention.ms", OP_SUBTRACT, Some("1"))]),
            Err(invalid_config)
        );
        // An empty policy is not valid.
        assert_eq!(
            run(&[], &[op("cleanup.policy", OP_SUBTRACT, Some("delete"))]),
            Err(invalid_config)
        );
        assert_eq!(
            run(&[], &[op("retention.ms", OP_SET, Some("soon"))]),
            Err(invalid_config)
        );
        assert_eq!(
            run(&[], &[op("no.such.key", OP_SET, Some("1"))]),
            Err(invalid_config)
        );
        assert_eq!(
            run(&[], &[op("retention.ms", OP_SET, None)]),
            Err(invalid_request)
        );
        assert_eq!(
            run(&[], &[op("retention.ms", 9, Some("1"))]),
            Err(invalid_request)
        );
        assert_eq!(
            run(
                &[],
                &[
                    op("retention.ms", OP_SET, Some("1")),
                    op("retention.ms", OP_DELETE, None)
                ]
            ),
            Err(invalid_request)
        );
    }

    #[test]
    fn delete_of_an_unknown_key_is_a_no_op_change() {
        let r = run(&[], &[op("whatever", OP_DELETE, None)]).unwrap();
        assert_eq!(r, vec![("whatever".into(), None)]);
    }
}

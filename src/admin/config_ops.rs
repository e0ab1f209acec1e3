//! Config changes and their validation (AlterConfigs, IncrementalAlterConfigs): topic
//! overrides, dynamic broker configs, client-metrics subscriptions and log levels. The
//! operations SET, DELETE, APPEND and SUBTRACT are applied here, every resulting value
//! is checked before anything is committed, and a committed change is live on this
//! broker's logs before the call returns.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::error::ResponseError;

use crate::admin::{broker_configs, check_broker_id, check_topic_resource, commit, topics, Admin};
use crate::cluster::MetadataCommand;
use crate::config::{broker_def, check_topic_value, split_list, topic_def, Kind};
use crate::errors::KafkaError;

pub const OP_SET: i8 = 0;
pub const OP_DELETE: i8 = 1;
pub const OP_APPEND: i8 = 2;
pub const OP_SUBTRACT: i8 = 3;

/// One requested change: (key, operation, value).
pub type Op = (String, i8, Option<String>);

/// Turn operations on a topic into the changes to commit (`Some` = set, `None` =
/// remove), given its current overrides and the broker's effective value of a setting.
pub fn apply_ops(
    current: &BTreeMap<String, String>,
    broker_value: impl Fn(&str) -> Option<String>,
    ops: &[Op],
) -> Result<BTreeMap<String, Option<String>>, KafkaError> {
    apply_ops_with(
        current,
        broker_value,
        |k| topic_def(k).is_some_and(|d| d.kind == Kind::List),
        |k, v| check_topic_value(k, v).map_err(|e| KafkaError::from(&e)),
        ops,
    )
}

/// [`apply_ops`] for any resource: `is_list` tells which settings APPEND and SUBTRACT
/// work on, `check` validates each resulting value.
pub fn apply_ops_with(
    current: &BTreeMap<String, String>,
    effective_value: impl Fn(&str) -> Option<String>,
    is_list: impl Fn(&str) -> bool,
    check: impl Fn(&str, &str) -> Result<(), KafkaError>,
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
                if !is_list(key) {
                    return Err(KafkaError::with_message(
                        ResponseError::InvalidConfig,
                        format!("Can't {what} to key {key} because its type is not LIST."),
                    ));
                }
                let items = split_list(&needs_value(what)?);
                let base = current.get(key).cloned().or_else(|| effective_value(key));
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
            check(key, v)?;
        }
        changes.insert(key.clone(), new);
    }
    Ok(changes)
}

pub async fn alter_topic(
    admin: Admin<'_>,
    topic: &str,
    ops: &[Op],
    validate_only: bool,
) -> Result<(), KafkaError> {
    let image = admin.controller.image();
    check_topic_resource(&image, topic)?;
    let current = image
        .topic(topic)
        .map(|t| t.configs.clone())
        .unwrap_or_default();
    let cfg = broker_configs::effective(admin.config, &image, admin.node_id);
    let changes = apply_ops(&current, |k| cfg.topic_default(k).map(|(v, _, _)| v), ops)?;
    if validate_only || changes.is_empty() {
        return Ok(());
    }
    commit(
        admin,
        MetadataCommand::AlterTopicConfigs {
            topic: topic.to_string(),
            changes,
        },
    )
    .await
}

/// A BROKER resource: "" (the cluster-wide default) or a node id. The resulting set of
/// dynamic values is validated as a whole before it is committed to the metadata.
pub async fn alter_broker(
    admin: Admin<'_>,
    resource: &str,
    ops: &[Op],
    validate_only: bool,
) -> Result<(), KafkaError> {
    let image = admin.controller.image();
    let id = broker_configs::node_id_of(resource)?;
    let current = image
        .broker_configs
        .get(resource)
        .cloned()
        .unwrap_or_default();
    let effective = broker_configs::effective(admin.config, &image, id.unwrap_or(admin.node_id));
    let changes = apply_ops_with(
        &current,
        |k| effective.broker_value(k).map(|(v, _)| v),
        |k| broker_def(k).is_some_and(|d| d.kind == Kind::List),
        |_, _| Ok(()),
        ops,
    )?;
    let mut after = current.clone();
    for (k, v) in &changes {
        match v {
            Some(v) => after.insert(k.clone(), v.clone()),
            None => after.remove(k),
        };
    }
    // Deleting an unknown or read-only key is a no-op, as in Kafka: only what the
    // resource ends up with is checked.
    broker_configs::validate(admin.config, &image, resource, &after)?;
    if validate_only || changes.is_empty() {
        return Ok(());
    }
    commit(
        admin,
        MetadataCommand::AlterBrokerConfigs {
            broker: resource.to_string(),
            changes,
        },
    )
    .await
}

/// A CLIENT_METRICS resource: a client-metrics subscription (KIP-714), created by its
/// first setting and deleted with its last.
pub async fn alter_client_metrics(
    admin: Admin<'_>,
    name: &str,
    ops: &[Op],
    validate_only: bool,
) -> Result<(), KafkaError> {
    if name.is_empty() {
        return Err(KafkaError::with_message(
            ResponseError::InvalidRequest,
            "Client metrics subscription name must not be empty",
        ));
    }
    let image = admin.controller.image();
    let current = image.client_metrics.get(name).cloned().unwrap_or_default();
    let changes = apply_ops_with(
        &current,
        |_| None,
        |k| k == "metrics" || k == "match",
        |k, v| {
            crate::telemetry::check_setting(k, v)
                .map_err(|m| KafkaError::with_message(ResponseError::InvalidConfig, m))
        },
        ops,
    )?;
    if let Some(k) = changes
        .keys()
        .find(|k| !crate::telemetry::SETTINGS.contains(&k.as_str()))
    {
        return Err(KafkaError::with_message(
            ResponseError::InvalidConfig,
            format!("Unknown client metrics config: {k}"),
        ));
    }
    if validate_only || changes.is_empty() {
        return Ok(());
    }
    commit(
        admin,
        MetadataCommand::AlterClientMetrics {
            name: name.to_string(),
            changes,
        },
    )
    .await
}

/// A BROKER_LOGGER resource (this broker's id): SET a target's level, DELETE it back
/// to the root level. Applied to this process only, and not kept across restarts, as
/// Kafka's log4j levels.
pub fn alter_loggers(
    admin: Admin<'_>,
    resource: &str,
    ops: &[Op],
    validate_only: bool,
) -> Result<(), KafkaError> {
    if resource.is_empty() {
        return Err(KafkaError::with_message(
            ResponseError::InvalidRequest,
            "Broker id must not be empty",
        ));
    }
    check_broker_id(admin.node_id, resource)?;
    let mut changes = Vec::new();
    for (target, op, value) in ops {
        let level = match *op {
            OP_SET => Some(value.clone().unwrap_or_default()),
            OP_DELETE => None,
            _ => {
                return Err(KafkaError::with_message(
                    ResponseError::InvalidRequest,
                    format!("{op} operation is not allowed for the BROKER_LOGGER resource"),
                ))
            }
        };
        crate::log_levels::check(target, level.as_deref())
            .map_err(|m| KafkaError::with_message(ResponseError::InvalidConfig, m))?;
        changes.push((target.clone(), level));
    }
    if validate_only {
        return Ok(());
    }
    crate::log_levels::apply(&changes)
        .map_err(|m| KafkaError::with_message(ResponseError::InvalidRequest, m))
}

/// Legacy AlterConfigs on a BROKER resource: the given set replaces all of its dynamic
/// values.
pub async fn replace_broker_configs(
    admin: Admin<'_>,
    resource: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), KafkaError> {
    let image = admin.controller.image();
    broker_configs::validate(admin.config, &image, resource, &configs)?;
    if validate_only {
        return Ok(());
    }
    commit(
        admin,
        MetadataCommand::ReplaceBrokerConfigs {
            broker: resource.to_string(),
            configs,
        },
    )
    .await
}

/// Legacy AlterConfigs on a CLIENT_METRICS resource: the given settings replace the
/// subscription's (none deletes it).
pub async fn replace_client_metrics(
    admin: Admin<'_>,
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
    let current = admin.controller.image().client_metrics.get(name).cloned();
    let mut changes: BTreeMap<String, Option<String>> = current
        .unwrap_or_default()
        .into_keys()
        .map(|k| (k, None))
        .collect();
    changes.extend(configs.into_iter().map(|(k, v)| (k, Some(v))));
    commit(
        admin,
        MetadataCommand::AlterClientMetrics {
            name: name.to_string(),
            changes,
        },
    )
    .await
}

pub async fn replace_topic_configs(
    admin: Admin<'_>,
    topic: &str,
    configs: Vec<(String, Option<String>)>,
    validate_only: bool,
) -> Result<(), KafkaError> {
    check_topic_resource(&admin.controller.image(), topic)?;
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
        admin,
        MetadataCommand::ReplaceTopicConfigs {
            topic: topic.to_string(),
            configs: new,
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

//! Dynamic broker configs: the settings AlterConfigs and IncrementalAlterConfigs change
//! on a BROKER resource at runtime, as Kafka's `kafka-configs.sh --entity-type brokers`
//! does.
//!
//! The values live in the replicated metadata (`MetadataImage::broker_configs`), under ""
//! for the cluster-wide default or a node id for one broker, so they survive restarts
//! and reach every node. A broker's effective settings are layered as in Kafka, most
//! specific first: its own dynamic value, the cluster-wide dynamic default, the static
//! value (file, environment, `--set`), the built-in default; DescribeConfigs reports
//! which layer decided. Only the settings Kafka updates at runtime that Weir has can be
//! changed: the broker defaults of topic settings (retention, segments, flush, cleaner,
//! `message.max.bytes`, `min.insync.replicas`, compression, timestamps, ...) and
//! `num.partitions`. A change reaches the partition logs when the new metadata is applied
//! (the same path as a topic config change), so it takes effect without a restart.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;

use crate::cluster::MetadataImage;
use crate::config::{broker_def, Config, ConfigError, TOPIC_DEFS};
use crate::errors::KafkaError;

/// Broker settings without a topic synonym that can still change at runtime.
const OTHER_DYNAMIC: &[&str] = &["num.partitions"];

/// Whether `name` can be set on a BROKER resource at runtime.
pub fn is_dynamic(name: &str) -> bool {
    OTHER_DYNAMIC.contains(&name) || TOPIC_DEFS.iter().any(|d| d.synonyms.contains(&name))
}

/// Broker `node_id`'s effective settings: `base` (the static ones) with the dynamic
/// layers of `image` over it. A layer that no longer validates (it cannot be committed
/// so, but a node may run with different static settings) is left out and logged.
pub fn effective(base: &Config, image: &MetadataImage, node_id: i32) -> Config {
    let (default, own) = image.dynamic_broker_configs(node_id);
    if default.is_empty() && own.is_empty() {
        return base.clone();
    }
    match base.with_dynamic(default, own) {
        Ok(cfg) => cfg,
        Err(e) => {
            tracing::warn!(error = %e, "dynamic broker configs ignored: they do not validate");
            base.clone()
        }
    }
}

/// Checks a resource name and the full set of dynamic values `resource` would have
/// ("" or a node id), against `base` and the other layer of `image`, as Kafka does before
/// it commits: known setting, updatable at runtime, valid value.
pub fn validate(
    base: &Config,
    image: &MetadataImage,
    resource: &str,
    values: &BTreeMap<String, String>,
) -> Result<(), KafkaError> {
    let id = node_id_of(resource)?;
    let unknown: Vec<&str> = values
        .keys()
        .map(String::as_str)
        .filter(|n| broker_def(n).is_none())
        .collect();
    if !unknown.is_empty() {
        return Err(KafkaError::from(&ConfigError::Unknown(unknown.join(", "))));
    }
    let fixed: Vec<&str> = values
        .keys()
        .map(String::as_str)
        .filter(|n| !is_dynamic(n))
        .collect();
    if !fixed.is_empty() {
        return Err(KafkaError::with_message(
            ResponseError::InvalidRequest,
            format!(
                "Cannot update these configs dynamically: {}",
                fixed.join(", ")
            ),
        ));
    }
    let (default, own) = match id {
        None => (values.clone(), BTreeMap::new()),
        Some(id) => (image.dynamic_broker_configs(id).0, values.clone()),
    };
    base.with_dynamic(default, own)
        .map(|_| ())
        .map_err(|e| KafkaError::from(&e))
}

/// `None` for the cluster-wide default (""), else the node id a BROKER resource names.
pub fn node_id_of(resource: &str) -> Result<Option<i32>, KafkaError> {
    if resource.is_empty() {
        return Ok(None);
    }
    resource
        .parse::<i32>()
        .ok()
        .filter(|id| *id >= 0)
        .map(Some)
        .ok_or_else(|| {
            KafkaError::with_message(
                ResponseError::InvalidRequest,
                format!("Broker id must be an integer, but it is: {resource}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(configs: &[(&str, &[(&str, &str)])]) -> MetadataImage {
        let mut img = MetadataImage::default();
        for (resource, values) in configs {
            img.broker_configs.insert(
                resource.to_string(),
                values
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
        img
    }

    fn map(values: &[(&str, &str)]) -> BTreeMap<String, String> {
        values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_most_specific_layer_wins() {
        let base = Config::load(None, Vec::new(), &["log.retention.hours=1".into()]).unwrap();
        let img = image(&[
            ("", &[("log.retention.ms", "5000"), ("num.partitions", "4")]),
            ("2", &[("log.retention.ms", "7000")]),
        ]);
        let one = effective(&base, &img, 1);
        assert_eq!(one.topic_config(&BTreeMap::new()).retention_ms, 5000);
        assert_eq!(one.num_partitions, 4);
        let two = effective(&base, &img, 2);
        assert_eq!(two.topic_config(&BTreeMap::new()).retention_ms, 7000);
        // Without dynamic values the static setting decides.
        let plain = effective(&base, &MetadataImage::default(), 1);
        assert_eq!(plain.topic_config(&BTreeMap::new()).retention_ms, 3_600_000);
    }

    #[test]
    fn only_known_runtime_settings_with_valid_values_pass() {
        let base = Config::defaults();
        let img = MetadataImage::default();
        validate(&base, &img, "", &map(&[("log.retention.ms", "1000")])).unwrap();
        validate(&base, &img, "3", &map(&[("compression.type", "zstd")])).unwrap();
        let code = |r: Result<(), KafkaError>| r.unwrap_err().code;
        assert_eq!(
            code(validate(&base, &img, "", &map(&[("no.such", "1")]))),
            ResponseError::InvalidConfig.code()
        );
        assert_eq!(
            code(validate(&base, &img, "", &map(&[("log.dirs", "/x")]))),
            ResponseError::InvalidRequest.code()
        );
        assert_eq!(
            code(validate(
                &base,
                &img,
                "",
                &map(&[("log.cleanup.policy", "sideways")])
            )),
            ResponseError::InvalidConfig.code()
        );
        assert_eq!(
            code(validate(&base, &img, "x", &map(&[]))),
            ResponseError::InvalidRequest.code()
        );
    }
}

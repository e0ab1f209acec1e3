//! How settings are described (DescribeConfigs, CreateTopics v5+): each topic, broker,
//! broker-logger and client-metrics setting with its value, the source that decided it
//! and its synonyms, as Kafka reports them.
//!
//! Topic settings: the topic's override, else the broker-level synonym that supplies the
//! default. The synonym list follows Kafka: the override (TOPIC_CONFIG), then each broker
//! synonym set dynamically (this broker's own, then the cluster default) or in the
//! config file (STATIC_BROKER_CONFIG), then each synonym with a built-in default
//! (DEFAULT_CONFIG), in the broker's own units (`log.retention.hours` = 168, while the
//! topic value is 604800000 ms). The source of a value is that of its first synonym.
//! (Kafka itself drops the broker synonyms of a topic setting unless the most specific
//! one, such as `log.retention.ms`, has a value, so it reports `retention.ms` with no
//! synonyms and DEFAULT_CONFIG even when `log.retention.hours` is set; we list them all
//! and report the layer that actually decided the value.) Broker settings: their layer
//! and synonyms from the setting itself on; those that cannot change at runtime are
//! read-only.

use std::collections::BTreeMap;

use crate::admin::broker_configs;
use crate::cluster::MetadataImage;
use crate::config::{broker_def, Config, ConfigSource, Kind, TopicDef, TOPIC_DEFS};

/// One setting as DescribeConfigs (and CreateTopics v5+) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub name: &'static str,
    /// `None` for a setting with no value (and for sensitive ones).
    pub value: Option<String>,
    pub source: ConfigSource,
    /// (name, value, source), most authoritative first.
    pub synonyms: Vec<(&'static str, Option<String>, ConfigSource)>,
    pub kind: Kind,
    pub read_only: bool,
    pub sensitive: bool,
    pub doc: Option<&'static str>,
}

/// Broker-level synonyms of a broker setting: the group it belongs to (for example
/// `log.retention.{ms,minutes,hours}`), as Kafka lists them, else the setting alone.
fn broker_group(name: &'static str) -> Vec<&'static str> {
    TOPIC_DEFS
        .iter()
        .find(|d| d.synonyms.len() > 1 && d.synonyms.contains(&name))
        .map(|d| d.synonyms.to_vec())
        .unwrap_or_else(|| vec![name])
}

/// The broker synonyms of a group that have a value: explicitly set ones first, then
/// built-in defaults, each in the group's order (Kafka's `configSynonyms`).
fn broker_synonyms(
    cfg: &Config,
    group: &[&'static str],
    sensitive: bool,
) -> Vec<(&'static str, Option<String>, ConfigSource)> {
    let hide = |v: String| if sensitive { None } else { Some(v) };
    let mut out = Vec::new();
    for syn in group {
        for (v, source) in cfg.set_values(syn) {
            out.push((*syn, hide(v), source));
        }
    }
    for syn in group {
        if let Some(d) = broker_def(syn).filter(|d| !d.default.is_empty()) {
            out.push((*syn, hide(d.default.to_string()), ConfigSource::Default));
        }
    }
    out
}

/// Resolve one topic setting for a topic with the given overrides.
pub fn describe_topic_setting(
    cfg: &Config,
    def: &TopicDef,
    overrides: &BTreeMap<String, String>,
) -> Described {
    let sensitive = def.kind == Kind::Password;
    let mut synonyms = Vec::new();
    let own = overrides.get(def.name);
    if let Some(v) = own {
        let v = (!sensitive).then(|| v.clone());
        synonyms.push((def.name, v, ConfigSource::TopicConfig));
    }
    synonyms.extend(broker_synonyms(cfg, def.synonyms, sensitive));
    let value = match own {
        Some(v) => Some(v.clone()),
        None => cfg.topic_default(def.name).map(|(v, _, _)| v),
    }
    .filter(|_| !sensitive);
    Described {
        name: def.name,
        value,
        source: synonyms
            .first()
            .map(|s| s.2)
            .unwrap_or(ConfigSource::Default),
        synonyms,
        kind: def.kind,
        read_only: false,
        sensitive,
        // Topic settings carry no documentation of their own yet.
        doc: None,
    }
}

/// Resolve one broker setting of this broker.
pub fn describe_broker_setting(cfg: &Config, name: &'static str) -> Option<Described> {
    let def = broker_def(name)?;
    let sensitive = def.kind == Kind::Password;
    // Kafka lists a broker setting's synonyms from the setting itself on: the more
    // specific ones before it (log.retention.ms for log.retention.hours) do not decide
    // its own value.
    let mut synonyms = broker_synonyms(cfg, &broker_group(def.name), sensitive);
    let own = synonyms
        .iter()
        .position(|(n, _, _)| *n == def.name)
        .unwrap_or(synonyms.len());
    synonyms.drain(..own);
    Some(Described {
        name: def.name,
        value: cfg
            .broker_value(def.name)
            .map(|(v, _)| v)
            .filter(|_| !sensitive),
        source: synonyms
            .first()
            .map(|s| s.2)
            .unwrap_or(ConfigSource::Default),
        synonyms,
        kind: def.kind,
        read_only: !broker_configs::is_dynamic(def.name),
        sensitive,
        doc: Some(def.doc),
    })
}

/// Every setting of a topic, resolved against the broker config (sorted by name).
pub fn describe_topic(
    cfg: &Config,
    overrides: &BTreeMap<String, String>,
    keys: Option<&[String]>,
) -> Vec<Described> {
    TOPIC_DEFS
        .iter()
        .filter(|d| wanted(keys, d.name))
        .map(|d| describe_topic_setting(cfg, d, overrides))
        .collect()
}

/// A client-metrics subscription (CLIENT_METRICS): its three settings, set or default.
pub fn describe_client_metrics(
    image: &MetadataImage,
    name: &str,
    keys: Option<&[String]>,
) -> Vec<Described> {
    let set = image.client_metrics.get(name);
    crate::telemetry::SETTINGS
        .iter()
        .filter(|k| wanted(keys, k))
        .map(|k| {
            let (value, source) = match set.and_then(|c| c.get(*k)) {
                Some(v) => (v.clone(), ConfigSource::ClientMetricsConfig),
                None if *k == "interval.ms" => (
                    crate::telemetry::DEFAULT_INTERVAL_MS.to_string(),
                    ConfigSource::Default,
                ),
                None => (String::new(), ConfigSource::Default),
            };
            Described {
                name: k,
                value: Some(value.clone()),
                source,
                synonyms: vec![(k, Some(value), source)],
                kind: if *k == "interval.ms" {
                    Kind::Int
                } else {
                    Kind::List
                },
                read_only: false,
                sensitive: false,
                doc: None,
            }
        })
        .collect()
}

/// The log levels of this broker (BROKER_LOGGER): the root level and every target set.
pub fn describe_loggers(keys: Option<&[String]>) -> Vec<Described> {
    crate::log_levels::levels()
        .into_iter()
        .filter(|(target, _)| wanted(keys, target))
        .map(|(target, level)| {
            let source = ConfigSource::DynamicBrokerLoggerConfig;
            Described {
                // Leaked once per distinct logger name: they are few (targets an
                // operator named), and `Described` holds static names.
                name: crate::log_levels::intern(&target),
                value: Some(level.clone()),
                source,
                synonyms: Vec::new(),
                kind: Kind::String,
                read_only: false,
                sensitive: false,
                doc: None,
            }
        })
        .collect()
}

/// Whether a setting was asked for: a null or empty key list asks for all (as in Kafka).
pub fn wanted(keys: Option<&[String]>, name: &str) -> bool {
    match keys {
        Some(k) if !k.is_empty() => k.iter().any(|k| k == name),
        _ => true,
    }
}

/// The cluster-wide dynamic defaults (the BROKER resource "").
pub fn describe_dynamic_defaults(image: &MetadataImage, keys: Option<&[String]>) -> Vec<Described> {
    let Some(values) = image.broker_configs.get("") else {
        return Vec::new();
    };
    values
        .iter()
        .filter(|(name, _)| wanted(keys, name))
        .filter_map(|(name, value)| {
            let def = broker_def(name)?;
            let source = ConfigSource::DynamicDefaultBrokerConfig;
            Some(Described {
                name: def.name,
                value: Some(value.clone()),
                source,
                synonyms: vec![(def.name, Some(value.clone()), source)],
                kind: def.kind,
                read_only: false,
                sensitive: false,
                doc: Some(def.doc),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::check_broker_id;
    use crate::config::topic_def;
    use kafka_protocol::error::ResponseError;

    fn cfg(sets: &[&str]) -> Config {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Config::load(None, Vec::new(), &sets).unwrap()
    }

    fn names(d: &Described) -> Vec<(&str, Option<&str>, ConfigSource)> {
        d.synonyms
            .iter()
            .map(|(n, v, s)| (*n, v.as_deref(), *s))
            .collect()
    }

    #[test]
    fn default_retention_comes_from_the_hours_default() {
        let c = cfg(&[]);
        let d = describe_topic_setting(&c, topic_def("retention.ms").unwrap(), &BTreeMap::new());
        assert_eq!(d.value.as_deref(), Some("604800000"));
        assert_eq!(d.source, ConfigSource::Default);
        assert_eq!(
            names(&d),
            vec![("log.retention.hours", Some("168"), ConfigSource::Default)]
        );
        assert_eq!(d.kind.kafka_type(), 5);
        assert!(!d.read_only && !d.sensitive);
    }

    #[test]
    fn override_then_static_then_default() {
        let c = cfg(&["log.retention.minutes=5"]);
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "1000".to_string());
        let d = describe_topic_setting(&c, topic_def("retention.ms").unwrap(), &o);
        assert_eq!(d.value.as_deref(), Some("1000"));
        assert_eq!(d.source, ConfigSource::TopicConfig);
        assert_eq!(
            names(&d),
            vec![
                ("retention.ms", Some("1000"), ConfigSource::TopicConfig),
                (
                    "log.retention.minutes",
                    Some("5"),
                    ConfigSource::StaticBrokerConfig
                ),
                ("log.retention.hours", Some("168"), ConfigSource::Default),
            ]
        );
        // Without the override the static synonym decides, converted to ms.
        let d = describe_topic_setting(&c, topic_def("retention.ms").unwrap(), &BTreeMap::new());
        assert_eq!(d.value.as_deref(), Some("300000"));
        assert_eq!(d.source, ConfigSource::StaticBrokerConfig);
    }

    #[test]
    fn setting_without_any_value_is_null() {
        // flush.ms: log.flush.interval.ms has no default, the scheduler interval does.
        let c = cfg(&[]);
        let d = describe_topic_setting(&c, topic_def("flush.ms").unwrap(), &BTreeMap::new());
        assert_eq!(d.value.as_deref(), Some("9223372036854775807"));
        assert_eq!(d.synonyms.len(), 1);
        let b = describe_broker_setting(&c, "log.retention.ms").unwrap();
        assert_eq!(b.value, None);
        assert_eq!(b.source, ConfigSource::Default);
    }

    #[test]
    fn broker_settings_report_their_layer_and_whether_they_change_at_runtime() {
        let c = cfg(&["num.partitions=3"]);
        let d = describe_broker_setting(&c, "num.partitions").unwrap();
        assert_eq!(d.value.as_deref(), Some("3"));
        assert_eq!(d.source, ConfigSource::StaticBrokerConfig);
        assert!(!d.read_only, "num.partitions changes at runtime");
        assert!(describe_broker_setting(&c, "log.dirs").unwrap().read_only);
        // Dynamic layers come first, the broker's own before the cluster default.
        let layered = c
            .with_dynamic(
                [("num.partitions".to_string(), "5".to_string())].into(),
                [("num.partitions".to_string(), "7".to_string())].into(),
            )
            .unwrap();
        let ld = describe_broker_setting(&layered, "num.partitions").unwrap();
        assert_eq!(ld.value.as_deref(), Some("7"));
        assert_eq!(
            names(&ld)[..3],
            [
                (
                    "num.partitions",
                    Some("7"),
                    ConfigSource::DynamicBrokerConfig
                ),
                (
                    "num.partitions",
                    Some("5"),
                    ConfigSource::DynamicDefaultBrokerConfig
                ),
                (
                    "num.partitions",
                    Some("3"),
                    ConfigSource::StaticBrokerConfig
                ),
            ]
        );
        assert_eq!(
            names(&d),
            vec![
                (
                    "num.partitions",
                    Some("3"),
                    ConfigSource::StaticBrokerConfig
                ),
                ("num.partitions", Some("1"), ConfigSource::Default),
            ]
        );
        let d = describe_broker_setting(&c, "message.max.bytes").unwrap();
        assert_eq!(
            (d.value.as_deref(), d.source),
            (Some("1048588"), ConfigSource::Default)
        );
        assert!(d.doc.is_some());
    }

    #[test]
    fn keys_filter_and_order() {
        let c = cfg(&[]);
        let all = describe_topic(&c, &BTreeMap::new(), None);
        assert_eq!(all.len(), TOPIC_DEFS.len());
        let mut sorted: Vec<_> = all.iter().map(|d| d.name).collect();
        sorted.sort();
        assert_eq!(sorted, all.iter().map(|d| d.name).collect::<Vec<_>>());
        let keys = vec!["cleanup.policy".to_string(), "nope".to_string()];
        let some = describe_topic(&c, &BTreeMap::new(), Some(&keys));
        assert_eq!(some.len(), 1);
        assert_eq!(
            describe_topic(&c, &BTreeMap::new(), Some(&[])).len(),
            all.len()
        );
        assert_eq!(some[0].value.as_deref(), Some("delete"));
    }

    #[test]
    fn broker_synonyms_start_at_the_setting_itself() {
        let c = cfg(&["log.retention.ms=1000"]);
        let d = describe_broker_setting(&c, "log.retention.hours").unwrap();
        assert_eq!(
            (d.value.as_deref(), d.source),
            (Some("168"), ConfigSource::Default)
        );
        assert_eq!(
            names(&d),
            vec![("log.retention.hours", Some("168"), ConfigSource::Default)]
        );
        let d = describe_broker_setting(&c, "log.retention.ms").unwrap();
        assert_eq!(d.source, ConfigSource::StaticBrokerConfig);
        assert_eq!(d.synonyms.len(), 2);
    }

    #[test]
    fn broker_ids_are_checked() {
        assert!(check_broker_id(1, "1").is_ok());
        for bad in ["2", "x", " 1"] {
            assert_eq!(
                check_broker_id(1, bad).unwrap_err().code,
                ResponseError::InvalidRequest.code()
            );
        }
    }
}

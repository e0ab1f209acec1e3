//! Broker and topic settings, under Kafka's property names.
//!
//! Settings come from (lowest to highest precedence) the embedded defaults, a TOML or
//! Kafka `server.properties` file, `WEIR_<NAME>` environment variables and `--set
//! name=value` flags. Every name is checked against the tables in this module: an unknown
//! name or an unparsable value stops the start with a message naming the setting.
//! Topic-level settings (`retention.ms`, ...) default to their broker-level synonyms
//! (`log.retention.ms`, ...), which is what DescribeConfigs reports as synonyms.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use thiserror::Error;

mod defs;
pub mod oauth;
pub mod sasl;
pub mod security;
mod sources;
mod topic;
mod validate;

pub use defs::{
    broker_def, topic_def, BrokerDef, TopicDef, BROKER_DEFS, KAFKA_ACCEPTED_IGNORED, TOPIC_DEFS,
};
pub use security::{ListenerSecurity, SecurityProtocol};
pub use sources::parse_properties;
use sources::read_file;
pub use topic::TopicConfig;
use validate::{
    check_roles, check_value, group_settings, invalid, parse_listeners, parse_voters, rename,
    scale_synonym, txn_settings,
};
pub use validate::{check_topic_value, split_list};

/// A configuration problem, always naming the setting at fault.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("unknown setting `{0}`")]
    Unknown(String),
    #[error("invalid value {value:?} for setting `{name}`: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse config file {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
}

/// The value type of a setting; used for validation and for DescribeConfigs' config type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    Long,
    Double,
    String,
    List,
    Password,
}

impl Kind {
    /// Kafka's ConfigType code as reported by DescribeConfigs v3+.
    pub fn kafka_type(self) -> i8 {
        match self {
            Kind::Bool => 1,
            Kind::String => 2,
            Kind::Int => 3,
            Kind::Long => 5,
            Kind::Double => 6,
            Kind::List => 7,
            Kind::Password => 9,
        }
    }
}

/// How a setting's value was determined, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    TopicConfig,
    DynamicBrokerConfig,
    DynamicDefaultBrokerConfig,
    StaticBrokerConfig,
    Default,
    DynamicBrokerLoggerConfig,
    ClientMetricsConfig,
}

impl ConfigSource {
    /// Kafka's ConfigSource code (DescribeConfigs v1+).
    pub fn code(self) -> i8 {
        match self {
            ConfigSource::TopicConfig => 1,
            ConfigSource::DynamicBrokerConfig => 2,
            ConfigSource::DynamicDefaultBrokerConfig => 3,
            ConfigSource::StaticBrokerConfig => 4,
            ConfigSource::Default => 5,
            ConfigSource::DynamicBrokerLoggerConfig => 6,
            ConfigSource::ClientMetricsConfig => 7,
        }
    }
}

/// How acks=all writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// fsync (group commit) before answering acks=all.
    Durable,
    /// Kafka's default: flush only by flush.ms / flush.messages; replication is the durability.
    Background,
}

/// Where the timestamp of stored records comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// A listener such as `PLAINTEXT://127.0.0.1:9092`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Listener {
    pub fn parse(setting: &str, s: &str) -> Result<Listener, ConfigError> {
        let bad = |reason: &str| ConfigError::Invalid {
            name: setting.to_string(),
            value: s.to_string(),
            reason: reason.to_string(),
        };
        let (name, rest) = s
            .split_once("://")
            .ok_or_else(|| bad("expected NAME://host:port"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("expected NAME://host:port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| bad("port is not a number 0-65535"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if name.is_empty() {
            return Err(bad("listener name is empty"));
        }
        Ok(Listener {
            name: name.to_string(),
            host: host.to_string(),
            port,
        })
    }

    /// The address to bind; an empty host or 0.0.0.0 binds every interface.
    pub fn bind_addr(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Resolved, validated broker settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every setting given explicitly (file, env, --set), by name.
    pub explicit: BTreeMap<String, String>,
    /// `WEIR_*` environment variables that name no setting (logged at start).
    pub ignored_env: Vec<String>,
    /// Kafka settings accepted but not acted on (logged at start).
    pub ignored_settings: Vec<String>,
    /// Dynamic broker configs over the static ones (see `crate::admin::broker_configs`): the
    /// cluster-wide default, then this broker's own, which wins. Empty at start.
    pub dynamic_default: BTreeMap<String, String>,
    pub dynamic_broker: BTreeMap<String, String>,
    pub node_id: i32,
    pub cluster_id: Option<String>,
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Vec<Listener>,
    /// The internal (control-plane) listener: the first of `listeners` named in
    /// `controller.listener.names`. Bound only when `quorum_voters` is set.
    pub controller_listener: Option<Listener>,
    /// Each listener's security protocol and TLS settings, and the inter-broker listener.
    pub security: ListenerSecurity,
    /// `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`.
    pub authorizer: crate::authorizer::AuthorizerSettings,
    /// `audit.log.*`: `None` when `audit.log.file` is not set.
    pub audit: Option<crate::audit::AuditSettings>,
    /// `controller.quorum.voters`: node id → CONTROLLER `host:port`. Empty for the
    /// single self-bootstrapped node.
    pub quorum_voters: BTreeMap<i32, String>,
    /// The CONTROLLER entry of `advertised.listeners` (`host:port`), if any: how the
    /// other nodes reach this one when the voter list does not name it.
    pub controller_advertised: Option<String>,
    /// `process.roles=broker`: a metadata learner that is never promoted to voter.
    pub broker_only: bool,
    pub broker_session_timeout_ms: u64,
    pub broker_heartbeat_interval_ms: u64,
    pub log_dirs: Vec<PathBuf>,
    pub metadata_dir: PathBuf,
    pub rack: Option<String>,
    pub metrics_listen: Option<SocketAddr>,
    /// `metrics.partition.series.enable`.
    pub metrics_partition_series: bool,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics: bool,
    pub delete_topic_enable: bool,
    pub socket_request_max_bytes: usize,
    pub retention_check_interval_ms: u64,
    pub flush_scheduler_interval_ms: u64,
    /// `log.segment.files.open.max`; `None` (0): sized from the open-file limit when the
    /// log manager starts.
    pub segment_files_open_max: Option<usize>,
    pub producer_id_expiration_ms: i64,
    pub groups: GroupSettings,
    pub transactions: TxnSettings,
}

/// Settings of the transaction coordinator and `__transaction_state`.
#[derive(Debug, Clone)]
pub struct TxnSettings {
    pub log_partitions: i32,
    pub log_replication_factor: i16,
    pub log_min_isr: i16,
    pub log_segment_bytes: i64,
    pub max_timeout_ms: i32,
    pub id_expiration_ms: i64,
    pub abort_check_interval_ms: u64,
}

/// Settings of the group coordinator and `__consumer_offsets`.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub offsets_topic_partitions: i32,
    pub offsets_topic_replication_factor: i16,
    pub offsets_topic_segment_bytes: i64,
    pub offsets_retention_ms: u64,
    pub offsets_retention_check_interval_ms: u64,
    pub offsets_commit_timeout_ms: u64,
    pub offset_metadata_max_bytes: usize,
    pub initial_rebalance_delay_ms: u64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub max_size: usize,
    pub consumer_session_timeout_ms: i32,
    pub consumer_heartbeat_interval_ms: i32,
    pub consumer_max_size: usize,
    pub consumer_assignors: Vec<String>,
}

impl Config {
    /// Embedded defaults only.
    pub fn defaults() -> Config {
        Config::from_explicit(BTreeMap::new()).expect("embedded defaults are valid")
    }

    /// Load from an optional file, then the environment, then `--set` pairs.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        sets: &[String],
    ) -> Result<Config, ConfigError> {
        let mut explicit = BTreeMap::new();
        if let Some(path) = file {
            explicit.extend(read_file(path)?);
        }
        // The environment is shared with other tools (WEIR_BIN in scripts, say): a
        // WEIR_ variable that names no setting is reported, not fatal. A known name with
        // a bad value still stops the start.
        let mut ignored_env = Vec::new();
        for (k, v) in env {
            if let Some(rest) = k.strip_prefix("WEIR_") {
                let name = rest.to_ascii_lowercase().replace('_', ".");
                if broker_def(&name).is_some() {
                    explicit.insert(name, v);
                } else {
                    ignored_env.push(k);
                }
            }
        }
        for s in sets {
            let (k, v) = s.split_once('=').ok_or_else(|| ConfigError::Invalid {
                name: s.clone(),
                value: String::new(),
                reason: "--set expects name=value".into(),
            })?;
            explicit.insert(k.trim().to_string(), v.trim().to_string());
        }
        let mut cfg = Config::from_explicit(explicit)?;
        cfg.ignored_env = ignored_env;
        Ok(cfg)
    }

    /// Validate explicit settings and resolve every typed field.
    pub fn from_explicit(explicit: BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let mut ignored_settings = Vec::new();
        for (name, value) in &explicit {
            if KAFKA_ACCEPTED_IGNORED.contains(&name.as_str()) {
                ignored_settings.push(name.clone());
                continue;
            }
            // `listener.name.<listener>.ssl.*` overrides a setting for one listener.
            let base = security::per_listener(name).map_or(name.as_str(), |(_, s)| s);
            let def = broker_def(base).ok_or_else(|| ConfigError::Unknown(name.clone()))?;
            check_value(name, def.kind, value)?;
        }
        let get = |name: &str| -> String {
            explicit.get(name).cloned().unwrap_or_else(|| {
                broker_def(name)
                    .map(|d| d.default.to_string())
                    .unwrap_or_default()
            })
        };
        let int = |name: &str| -> i64 { get(name).parse().unwrap_or(0) };

        let broker_id = int("broker.id");
        let node_id = if explicit.contains_key("node.id") || broker_id < 0 {
            int("node.id")
        } else {
            broker_id
        } as i32;
        // Listeners named in controller.listener.names belong to the control plane, not
        // to clients (as in a Kafka KRaft server.properties).
        let controller_names = split_list(
            explicit
                .get("controller.listener.names")
                .map_or("", |v| v.as_str()),
        );
        let client = |l: &Listener| !controller_names.contains(&l.name);
        let all_listeners = parse_listeners("listeners", &get("listeners"))?;
        let controller_listener = all_listeners.iter().find(|l| !client(l)).cloned();
        let listeners: Vec<Listener> = all_listeners.into_iter().filter(client).collect();
        if listeners.is_empty() {
            return Err(invalid(
                "listeners",
                "",
                "at least one listener is required",
            ));
        }
        let (mut advertised, controller_advertised): (Vec<Listener>, Vec<Listener>) =
            parse_listeners("advertised.listeners", &get("advertised.listeners"))?
                .into_iter()
                .partition(client);
        let controller_advertised = controller_advertised
            .first()
            .map(|l| format!("{}:{}", l.host, l.port));
        if advertised.is_empty() {
            advertised = listeners.clone();
        }
        for l in &mut advertised {
            if l.host.is_empty() || l.host == "0.0.0.0" {
                l.host = "127.0.0.1".into();
            }
        }
        let log_dirs: Vec<PathBuf> =
            if explicit.contains_key("log.dirs") || !explicit.contains_key("log.dir") {
                split_list(&get("log.dirs"))
                    .into_iter()
                    .map(PathBuf::from)
                    .collect()
            } else {
                vec![PathBuf::from(get("log.dir"))]
            };
        if log_dirs.is_empty() {
            return Err(invalid(
                "log.dirs",
                "",
                "at least one directory is required",
            ));
        }
        let metadata_dir = match get("metadata.log.dir") {
            d if d.is_empty() => log_dirs[0].join("__cluster_metadata"),
            d => PathBuf::from(d),
        };
        let metrics_listen = match get("metrics.listen") {
            s if s.is_empty() => None,
            s => Some(
                s.parse()
                    .map_err(|_| invalid("metrics.listen", &s, "expected host:port"))?,
            ),
        };
        let policy = get("log.flush.policy");
        if policy != "durable" && policy != "background" {
            return Err(invalid(
                "log.flush.policy",
                &policy,
                "expected durable or background",
            ));
        }
        check_topic_value("message.timestamp.type", &get("log.message.timestamp.type"))
            .map_err(|e| rename(e, "log.message.timestamp.type"))?;
        check_topic_value("cleanup.policy", &get("log.cleanup.policy"))
            .map_err(|e| rename(e, "log.cleanup.policy"))?;
        for name in [
            "compression.type",
            "compression.gzip.level",
            "compression.lz4.level",
            "compression.zstd.level",
        ] {
            check_topic_value(name, &get(name))?;
        }
        let positive = |name: &str| -> Result<i64, ConfigError> {
            let v = int(name);
            if v <= 0 {
                return Err(invalid(name, &v.to_string(), "must be positive"));
            }
            Ok(v)
        };
        let num_partitions = positive("num.partitions")? as i32;
        let rf = positive("default.replication.factor")? as i16;
        let req_max = positive("socket.request.max.bytes")? as usize;
        positive("log.segment.bytes")?;
        positive("message.max.bytes")?;
        let broker_only = check_roles(&get("process.roles"))?;
        let quorum_voters = parse_voters(&get("controller.quorum.voters"))?;
        if broker_only && quorum_voters.is_empty() {
            return Err(invalid(
                "process.roles",
                &get("process.roles"),
                "a broker-only node joins an existing quorum: set controller.quorum.voters",
            ));
        }
        if broker_only && quorum_voters.contains_key(&node_id) {
            return Err(invalid(
                "process.roles",
                &get("process.roles"),
                &format!("node.id {node_id} is listed in controller.quorum.voters, so it must be a controller (broker,controller)"),
            ));
        }
        if !quorum_voters.is_empty() {
            // A node the voter list does not name joins the quorum as a learner; even a
            // broker-only node receives the metadata log over its CONTROLLER listener.
            if controller_listener.is_none() {
                return Err(invalid(
                    "controller.listener.names",
                    &get("controller.listener.names"),
                    "controller.quorum.voters needs a CONTROLLER listener: name one of `listeners` here",
                ));
            }
        }
        // After the quorum checks, so a listener left out of controller.listener.names
        // is reported as that rather than as missing from the protocol map.
        let client_names: Vec<String> = listeners.iter().map(|l| l.name.clone()).collect();
        let security = security::resolve(
            &client_names,
            controller_listener.as_ref().map(|l| l.name.as_str()),
            !quorum_voters.is_empty(),
            |name| explicit.get(name).filter(|v| !v.trim().is_empty()).cloned(),
        )?;
        let open_max = int("log.segment.files.open.max");
        if open_max < 0 {
            return Err(invalid(
                "log.segment.files.open.max",
                &open_max.to_string(),
                "must be 0 (sized from the open-file limit) or positive",
            ));
        }
        positive("leader.imbalance.check.interval.seconds")?;
        let imbalance = int("leader.imbalance.per.broker.percentage");
        if !(0..=100).contains(&imbalance) {
            return Err(invalid(
                "leader.imbalance.per.broker.percentage",
                &imbalance.to_string(),
                "expected 0 to 100",
            ));
        }
        let session_ms = positive("broker.session.timeout.ms")? as u64;
        let heartbeat_ms = positive("broker.heartbeat.interval.ms")? as u64;
        if heartbeat_ms >= session_ms {
            return Err(invalid(
                "broker.heartbeat.interval.ms",
                &heartbeat_ms.to_string(),
                "must be smaller than broker.session.timeout.ms",
            ));
        }
        let cluster_id = Some(get("cluster.id")).filter(|s| !s.is_empty());
        let rack = Some(get("broker.rack")).filter(|s| !s.is_empty());
        let cfg = Config {
            node_id,
            cluster_id,
            listeners,
            advertised_listeners: advertised,
            controller_listener,
            security,
            authorizer: authorizer_settings(&get)?,
            audit: Some(get("audit.log.file"))
                .filter(|f| !f.trim().is_empty())
                .map(|f| crate::audit::AuditSettings {
                    file: PathBuf::from(f.trim()),
                    admin_allowed: get("audit.log.admin.allowed") == "true",
                    events_per_second: int("audit.log.events.per.second").max(1) as u64,
                    max_bytes: int("audit.log.max.bytes").max(4096) as u64,
                }),
            quorum_voters,
            controller_advertised,
            broker_only,
            broker_session_timeout_ms: session_ms,
            broker_heartbeat_interval_ms: heartbeat_ms,
            log_dirs,
            metadata_dir,
            rack,
            metrics_listen,
            metrics_partition_series: get("metrics.partition.series.enable") == "true",
            num_partitions,
            default_replication_factor: rf,
            auto_create_topics: get("auto.create.topics.enable") == "true",
            delete_topic_enable: get("delete.topic.enable") == "true",
            socket_request_max_bytes: req_max,
            retention_check_interval_ms: positive("log.retention.check.interval.ms")? as u64,
            flush_scheduler_interval_ms: positive("log.flush.scheduler.interval.ms")? as u64,
            segment_files_open_max: (open_max > 0).then_some(open_max as usize),
            producer_id_expiration_ms: positive("producer.id.expiration.ms")?,
            groups: group_settings(&get, &positive)?,
            transactions: txn_settings(&positive)?,
            explicit,
            ignored_env: Vec::new(),
            ignored_settings,
            dynamic_default: BTreeMap::new(),
            dynamic_broker: BTreeMap::new(),
        };
        Ok(cfg)
    }

    /// These static settings with dynamic layers over them (a broker's own `broker`
    /// values win over the cluster-wide `default`), every typed field resolved and
    /// validated again.
    pub fn with_dynamic(
        &self,
        default: BTreeMap<String, String>,
        broker: BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let mut merged = self.explicit.clone();
        merged.extend(default.iter().map(|(k, v)| (k.clone(), v.clone())));
        merged.extend(broker.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut cfg = Config::from_explicit(merged)?;
        cfg.explicit = self.explicit.clone();
        cfg.ignored_env = self.ignored_env.clone();
        cfg.dynamic_default = default;
        cfg.dynamic_broker = broker;
        Ok(cfg)
    }

    /// Every layer that sets `name` explicitly, most specific first.
    pub fn set_values(&self, name: &str) -> Vec<(String, ConfigSource)> {
        [
            (&self.dynamic_broker, ConfigSource::DynamicBrokerConfig),
            (
                &self.dynamic_default,
                ConfigSource::DynamicDefaultBrokerConfig,
            ),
            (&self.explicit, ConfigSource::StaticBrokerConfig),
        ]
        .into_iter()
        .filter_map(|(layer, source)| layer.get(name).map(|v| (v.clone(), source)))
        .collect()
    }

    /// The broker's value of a broker-level setting (set in some layer, or its
    /// default), if it has one.
    pub fn broker_value(&self, name: &str) -> Option<(String, ConfigSource)> {
        if let Some(v) = self.set_values(name).into_iter().next() {
            return Some(v);
        }
        broker_def(name)
            .filter(|d| !d.default.is_empty())
            .map(|d| (d.default.to_string(), ConfigSource::Default))
    }

    /// The effective value of a topic-level setting from broker settings alone: the first
    /// synonym that is set, converted to the topic setting's unit.
    pub fn topic_default(&self, name: &str) -> Option<(String, ConfigSource, &'static str)> {
        let def = topic_def(name)?;
        // Explicit synonyms first (most specific wins), then defaults in the same order.
        for explicit_only in [true, false] {
            for syn in def.synonyms {
                let v = if explicit_only {
                    self.set_values(syn).into_iter().next()
                } else {
                    broker_def(syn)
                        .filter(|d| !d.default.is_empty())
                        .map(|d| (d.default.to_string(), ConfigSource::Default))
                };
                if let Some((v, src)) = v {
                    return Some((scale_synonym(syn, &v), src, syn));
                }
            }
        }
        None
    }
}

/// The authorizer settings: Kafka's StandardAuthorizer named in `authorizer.class.name`
/// turns authorization on; any other class is refused (Weir cannot load Java classes).
fn authorizer_settings(
    get: &impl Fn(&str) -> String,
) -> Result<crate::authorizer::AuthorizerSettings, ConfigError> {
    let class = get("authorizer.class.name");
    let enabled = match class.trim() {
        "" => false,
        c if c == crate::authorizer::STANDARD_AUTHORIZER => true,
        other => {
            return Err(invalid(
                "authorizer.class.name",
                other,
                &format!(
                    "only {} (Kafka's ACL authorizer) is supported",
                    crate::authorizer::STANDARD_AUTHORIZER
                ),
            ))
        }
    };
    let mut super_users = std::collections::HashSet::new();
    for u in get("super.users")
        .split(';')
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        if !crate::authorizer::acl::valid_principal(u) {
            return Err(invalid(
                "super.users",
                u,
                "expected principals like User:admin, separated by ;",
            ));
        }
        super_users.insert(u.to_string());
    }
    Ok(crate::authorizer::AuthorizerSettings {
        enabled,
        super_users,
        allow_if_no_acl: get("allow.everyone.if.no.acl.found") == "true",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::codec::TopicCompression;

    fn load(sets: &[&str]) -> Result<Config, ConfigError> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Config::load(None, Vec::new(), &sets)
    }

    #[test]
    fn defaults_start_a_local_broker() {
        let c = Config::defaults();
        assert_eq!(c.listeners[0].bind_addr(), "127.0.0.1:9092");
        assert_eq!(c.log_dirs, vec![PathBuf::from("./weir-data")]);
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9644".parse().unwrap()));
        let t = c.topic_config(&BTreeMap::new());
        assert_eq!(t.retention_ms, 168 * 3_600_000);
        assert_eq!(t.segment_bytes, 1 << 30);
        assert_eq!(t.flush_policy, FlushPolicy::Durable);
        assert!(t.delete && !t.compact);
    }

    #[test]
    fn compression_type_and_levels_take_kafkas_values_only() {
        for ok in ["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"] {
            check_topic_value("compression.type", ok).unwrap();
        }
        for (name, bad) in [
            ("compression.type", "none"),
            ("compression.type", "brotli"),
            ("compression.gzip.level", "0"),
            ("compression.gzip.level", "10"),
            ("compression.lz4.level", "18"),
            ("compression.zstd.level", "23"),
            ("compression.zstd.level", "fast"),
        ] {
            let e = check_topic_value(name, bad).unwrap_err().to_string();
            assert!(e.contains(name), "{name}={bad}: {e}");
        }
        check_topic_value("compression.gzip.level", "-1").unwrap();
        check_topic_value("compression.zstd.level", "-5").unwrap();
        // Broker defaults are checked at start too.
        assert!(load(&["compression.type=brotli"]).is_err());
        let c = load(&["compression.type=zstd", "compression.zstd.level=9"]).unwrap();
        assert_eq!(
            c.topic_config(&BTreeMap::new()).compression,
            TopicCompression::Codec { codec: 4, level: 9 }
        );
        // A topic's own setting wins over the broker's.
        let t = c.topic_config(&[("compression.type".to_string(), "producer".to_string())].into());
        assert_eq!(t.compression, TopicCompression::Producer);
    }

    #[test]
    fn unknown_and_invalid_settings_name_the_setting() {
        let e = load(&["no.such.thing=1"]).unwrap_err().to_string();
        assert!(e.contains("no.such.thing"), "{e}");
        let e = load(&["num.partitions=abc"]).unwrap_err().to_string();
        assert!(e.contains("num.partitions"), "{e}");
        let e = load(&["listeners=127.0.0.1"]).unwrap_err().to_string();
        assert!(e.contains("listeners"), "{e}");
        let e = load(&["log.flush.policy=sometimes"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.flush.policy"), "{e}");
    }

    #[test]
    fn precedence_file_then_env_then_set() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("server.properties");
        std::fs::write(
            &p,
            "# comment\nnum.partitions=3\nlog.dirs=/a\nlog.retention.hours = 1\n",
        )
        .unwrap();
        let env = vec![
            ("WEIR_LOG_DIRS".to_string(), "/b".to_string()),
            ("HOME".into(), "/root".into()),
            ("WEIR_BIN".into(), "/usr/bin/weir".into()),
        ];
        let c = Config::load(Some(&p), env, &["num.partitions=5".into()]).unwrap();
        assert_eq!(c.num_partitions, 5);
        assert_eq!(c.log_dirs, vec![PathBuf::from("/b")]);
        assert_eq!(c.ignored_env, vec!["WEIR_BIN".to_string()]);
        let bad = vec![("WEIR_NUM_PARTITIONS".to_string(), "many".to_string())];
        assert!(Config::load(None, bad, &[])
            .unwrap_err()
            .to_string()
            .contains("num.partitions"));
        assert_eq!(c.topic_config(&BTreeMap::new()).retention_ms, 3_600_000);
        let (_, src, syn) = c.topic_default("retention.ms").unwrap();
        assert_eq!(
            (src, syn),
            (ConfigSource::StaticBrokerConfig, "log.retention.hours")
        );
    }

    /// Kafka's stock KRaft server.properties starts a broker: its control-plane listener
    /// is not a client listener, and settings Weir does not act on are reported.
    #[test]
    fn stock_kafka_server_properties_are_accepted() {
        let text = "process.roles=broker,controller\nnode.id=1\n\
            controller.quorum.bootstrap.servers=localhost:9093\n\
            listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ninter.broker.listener.name=PLAINTEXT\n\
            advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093\n\
            controller.listener.names=CONTROLLER\n\
            listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
            num.network.threads=3\nnum.io.threads=8\nsocket.send.buffer.bytes=102400\n\
            socket.receive.buffer.bytes=102400\nsocket.request.max.bytes=104857600\n\
            log.dirs=/tmp/kraft-combined-logs\nnum.partitions=1\nnum.recovery.threads.per.data.dir=1\n\
            offsets.topic.replication.factor=1\ntransaction.state.log.replication.factor=1\n\
            transaction.state.log.min.isr=1\nlog.retention.hours=168\nlog.segment.bytes=1073741824\n\
            log.retention.check.interval.ms=300000\n";
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("server.properties");
        std::fs::write(&p, text).unwrap();
        let c = Config::load(Some(&p), Vec::new(), &[]).unwrap();
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(
            (c.listeners[0].name.as_str(), c.listeners[0].port),
            ("PLAINTEXT", 9092)
        );
        assert_eq!(c.advertised_listeners[0].host, "localhost");
        assert!(c.ignored_settings.contains(&"num.io.threads".to_string()));
        assert!(!c.ignored_settings.contains(&"process.roles".to_string()));
        assert!(c.quorum_voters.is_empty(), "no voters: a single node");
        assert_eq!(c.controller_listener.as_ref().map(|l| l.port), Some(9093));
        let e = load(&["num.io.thread=8"]).unwrap_err().to_string();
        assert!(e.contains("num.io.thread"), "{e}");
    }

    #[test]
    fn quorum_settings_are_parsed_and_checked() {
        let voters = "controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9193,3@h:9293";
        let base = [
            "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
            "controller.listener.names=CONTROLLER",
        ];
        let c = load(&[base[0], base[1], voters]).expect("quorum config");
        assert_eq!(c.quorum_voters.len(), 3);
        assert_eq!(c.quorum_voters[&3], "h:9293");
        assert_eq!(c.controller_listener.as_ref().map(|l| l.port), Some(9093));
        assert_eq!(c.listeners.len(), 1, "CONTROLLER is not a client listener");
        assert_eq!(
            (c.broker_session_timeout_ms, c.broker_heartbeat_interval_ms),
            (9000, 2000)
        );
        assert!(c.ignored_settings.is_empty());

        let err = |sets: &[&str]| load(sets).unwrap_err().to_string();
        // A node the voter list does not name joins as a learner, reachable at its
        // advertised CONTROLLER address; broker-only nodes must be such learners.
        let c = load(&[
            base[0],
            base[1],
            voters,
            "node.id=4",
            "advertised.listeners=PLAINTEXT://b4:9092,CONTROLLER://b4:9093",
        ])
        .expect("a learner");
        assert_eq!(c.controller_advertised.as_deref(), Some("b4:9093"));
        assert_eq!(c.advertised_listeners.len(), 1);
        assert!(!c.broker_only);
        let c = load(&[
            base[0],
            base[1],
            voters,
            "node.id=4",
            "process.roles=broker",
        ])
        .expect("a broker-only learner");
        assert!(c.broker_only);
        let e = err(&[
            base[0],
            base[1],
            voters,
            "node.id=2",
            "process.roles=broker",
        ]);
        assert!(e.contains("must be a controller"), "{e}");
        let e = err(&[base[0], voters]);
        assert!(e.contains("controller.listener.names"), "{e}");
        for bad in ["1@h", "x@h:1", "1@:9093", "1@h:1,1@h:2", "-1@h:1"] {
            let e = err(&[base[0], base[1], &format!("controller.quorum.voters={bad}")]);
            assert!(e.contains("controller.quorum.voters"), "{bad}: {e}");
        }
        for roles in ["broker", "controller", "broker,other"] {
            // broker alone is refused here only because this node has no quorum to join.
            let e = err(&[&format!("process.roles={roles}")]);
            assert!(e.contains("process.roles"), "{e}");
        }
        assert!(load(&["process.roles=controller,broker"]).is_ok());
        let e = err(&["broker.heartbeat.interval.ms=9000"]);
        assert!(e.contains("broker.heartbeat.interval.ms"), "{e}");
        // No voters: a single node, exactly as before.
        assert!(load(&[]).expect("defaults").quorum_voters.is_empty());
    }

    #[test]
    fn toml_tables_flatten_to_dotted_names() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("weir.toml");
        std::fs::write(&p, "listeners = [\"PLAINTEXT://127.0.0.1:19092\"]\n[log]\ndirs = \"/x\"\nsegment.bytes = 1024\n").unwrap();
        let c = Config::load(Some(&p), Vec::new(), &[]).unwrap();
        assert_eq!(c.listeners[0].port, 19092);
        assert_eq!(c.log_dirs, vec![PathBuf::from("/x")]);
        assert_eq!(c.topic_config(&BTreeMap::new()).segment_bytes, 1024);
    }

    #[test]
    fn topic_values_are_validated() {
        assert!(check_topic_value("cleanup.policy", "compact,delete").is_ok());
        assert!(check_topic_value("cleanup.policy", "keep").is_err());
        assert!(check_topic_value("retention.ms", "-1").is_ok());
        assert!(check_topic_value("retention.ms", "x").is_err());
        assert!(check_topic_value("nope", "1").is_err());
    }
}

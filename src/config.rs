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

use crate::log::codec::{self, TopicCompression};

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

/// One broker setting.
pub struct BrokerDef {
    pub name: &'static str,
    pub kind: Kind,
    pub default: &'static str,
    pub doc: &'static str,
}

const LONG_MAX: &str = "9223372036854775807";

/// Every broker-level setting Weir accepts.
pub const BROKER_DEFS: &[BrokerDef] = &[
    BrokerDef { name: "node.id", kind: Kind::Int, default: "1", doc: "This node's id." },
    BrokerDef { name: "broker.id", kind: Kind::Int, default: "-1", doc: "Alias of node.id (older name); -1 means use node.id." },
    BrokerDef { name: "cluster.id", kind: Kind::String, default: "", doc: "Cluster id; generated on first start when empty." },
    BrokerDef { name: "listeners", kind: Kind::List, default: "PLAINTEXT://127.0.0.1:9092", doc: "Client listeners, NAME://host:port." },
    BrokerDef { name: "controller.listener.names", kind: Kind::List, default: "", doc: "Listeners that belong to the control plane; they are not bound for clients." },
    BrokerDef { name: "process.roles", kind: Kind::List, default: "broker,controller", doc: "broker,controller (voter, or a learner AddRaftVoter can promote) or broker (a metadata learner only)." },
    BrokerDef { name: "controller.quorum.voters", kind: Kind::List, default: "", doc: "Metadata quorum voters, id@host:port (the CONTROLLER listener of each); empty: a single self-bootstrapped node." },
    BrokerDef { name: "broker.session.timeout.ms", kind: Kind::Int, default: "9000", doc: "A broker whose heartbeats stop for this long is fenced by the controller." },
    BrokerDef { name: "broker.heartbeat.interval.ms", kind: Kind::Int, default: "2000", doc: "How often a broker heartbeats the controller." },
    BrokerDef { name: "advertised.listeners", kind: Kind::List, default: "", doc: "Addresses given to clients; defaults to listeners." },
    BrokerDef { name: "log.dirs", kind: Kind::List, default: "./weir-data", doc: "Directories holding partition logs." },
    BrokerDef { name: "log.dir", kind: Kind::String, default: "", doc: "Single log directory (used when log.dirs is not set)." },
    BrokerDef { name: "metadata.log.dir", kind: Kind::String, default: "", doc: "Directory of the metadata (Raft) store; defaults to the first log dir." },
    BrokerDef { name: "broker.rack", kind: Kind::String, default: "", doc: "Rack of this broker." },
    BrokerDef { name: "metrics.listen", kind: Kind::String, default: "127.0.0.1:9644", doc: "Address of the metrics port (/metrics, /health, /ready); empty disables it." },
    BrokerDef { name: "metrics.partition.series.enable", kind: Kind::Bool, default: "true", doc: "Export per-partition series (offsets, sizes, lag by partition); off bounds cardinality on brokers with many partitions." },
    BrokerDef { name: "num.partitions", kind: Kind::Int, default: "1", doc: "Partitions of auto-created topics." },
    BrokerDef { name: "default.replication.factor", kind: Kind::Int, default: "1", doc: "Replication factor of auto-created topics." },
    BrokerDef { name: "auto.create.topics.enable", kind: Kind::Bool, default: "true", doc: "Create unknown topics on Metadata and Produce requests." },
    BrokerDef { name: "delete.topic.enable", kind: Kind::Bool, default: "true", doc: "Allow DeleteTopics." },
    BrokerDef { name: "socket.request.max.bytes", kind: Kind::Int, default: "104857600", doc: "Largest request frame accepted." },
    BrokerDef { name: "message.max.bytes", kind: Kind::Int, default: "1048588", doc: "Largest record batch accepted (topic: max.message.bytes)." },
    BrokerDef { name: "min.insync.replicas", kind: Kind::Int, default: "1", doc: "Replicas that must have a write for acks=all." },
    BrokerDef { name: "auto.leader.rebalance.enable", kind: Kind::Bool, default: "true", doc: "The controller moves leadership back to each partition's preferred (first) replica when a broker leads too few of its own." },
    BrokerDef { name: "leader.imbalance.per.broker.percentage", kind: Kind::Int, default: "10", doc: "A broker is imbalanced when more than this percentage of the partitions that prefer it are led by others." },
    BrokerDef { name: "leader.imbalance.check.interval.seconds", kind: Kind::Long, default: "300", doc: "How often the controller checks for imbalanced leadership." },
    BrokerDef { name: "unclean.leader.election.enable", kind: Kind::Bool, default: "false", doc: "Allow out-of-sync replicas to become leader." },
    BrokerDef { name: "compression.type", kind: Kind::String, default: "producer", doc: "Codec batches are stored in: producer (as the producer sent them), uncompressed, gzip, snappy, lz4 or zstd (the leader rewrites batches in another codec)." },
    BrokerDef { name: "compression.gzip.level", kind: Kind::Int, default: "-1", doc: "gzip level (1-9, -1 for gzip's default) when compression.type is gzip." },
    BrokerDef { name: "compression.lz4.level", kind: Kind::Int, default: "9", doc: "LZ4 level (1-17) when compression.type is lz4." },
    BrokerDef { name: "compression.zstd.level", kind: Kind::Int, default: "3", doc: "zstd level (-131072 to 22) when compression.type is zstd." },
    BrokerDef { name: "log.cleanup.policy", kind: Kind::List, default: "delete", doc: "delete, compact or both." },
    BrokerDef { name: "log.retention.ms", kind: Kind::Long, default: "", doc: "Time retention; overrides minutes and hours." },
    BrokerDef { name: "log.retention.minutes", kind: Kind::Int, default: "", doc: "Time retention in minutes." },
    BrokerDef { name: "log.retention.hours", kind: Kind::Int, default: "168", doc: "Time retention in hours." },
    BrokerDef { name: "log.retention.bytes", kind: Kind::Long, default: "-1", doc: "Size retention per partition; -1 is unlimited." },
    BrokerDef { name: "log.retention.check.interval.ms", kind: Kind::Long, default: "300000", doc: "How often retention runs." },
    BrokerDef { name: "log.segment.bytes", kind: Kind::Int, default: "1073741824", doc: "Segment size before a roll." },
    BrokerDef { name: "log.roll.ms", kind: Kind::Long, default: "", doc: "Segment age before a roll; overrides hours." },
    BrokerDef { name: "log.roll.hours", kind: Kind::Int, default: "168", doc: "Segment age before a roll, in hours." },
    BrokerDef { name: "log.roll.jitter.ms", kind: Kind::Long, default: "0", doc: "Random jitter subtracted from the roll time." },
    BrokerDef { name: "log.index.interval.bytes", kind: Kind::Int, default: "4096", doc: "Bytes between offset index entries." },
    BrokerDef { name: "log.index.size.max.bytes", kind: Kind::Int, default: "10485760", doc: "Largest offset index file." },
    BrokerDef { name: "log.segment.delete.delay.ms", kind: Kind::Long, default: "60000", doc: "Delay before a deleted segment's files are removed." },
    BrokerDef { name: "log.preallocate", kind: Kind::Bool, default: "false", doc: "Preallocate segment files." },
    BrokerDef { name: "log.segment.files.open.max", kind: Kind::Int, default: "0", doc: "Most segment files held open at once, across all partitions; the least recently used are closed and reopened when next read or appended to (index files are never held open). 0 sizes it from the open-file limit: three quarters of RLIMIT_NOFILE, leaving at least 64 descriptors to sockets and everything else." },
    BrokerDef { name: "log.message.timestamp.type", kind: Kind::String, default: "CreateTime", doc: "CreateTime or LogAppendTime." },
    BrokerDef { name: "log.message.timestamp.before.max.ms", kind: Kind::Long, default: LONG_MAX, doc: "How far in the past a CreateTime may be." },
    BrokerDef { name: "log.message.timestamp.after.max.ms", kind: Kind::Long, default: "3600000", doc: "How far in the future a CreateTime may be." },
    BrokerDef { name: "log.flush.interval.messages", kind: Kind::Long, default: LONG_MAX, doc: "Background flush after this many messages." },
    BrokerDef { name: "log.flush.interval.ms", kind: Kind::Long, default: "", doc: "Background flush after this long; defaults to log.flush.scheduler.interval.ms." },
    BrokerDef { name: "log.flush.scheduler.interval.ms", kind: Kind::Long, default: LONG_MAX, doc: "How often the background flusher looks for logs to flush." },
    BrokerDef { name: "log.flush.policy", kind: Kind::String, default: "durable", doc: "durable: fsync (group commit) before answering acks=all; background: Kafka's flush.ms/flush.messages only." },
    BrokerDef { name: "log.cleaner.delete.retention.ms", kind: Kind::Long, default: "86400000", doc: "How long tombstones are kept on compacted topics." },
    BrokerDef { name: "log.cleaner.min.cleanable.ratio", kind: Kind::Double, default: "0.5", doc: "Dirty ratio that triggers compaction." },
    BrokerDef { name: "log.cleaner.min.compaction.lag.ms", kind: Kind::Long, default: "0", doc: "Minimum age before a record may be compacted." },
    BrokerDef { name: "log.cleaner.max.compaction.lag.ms", kind: Kind::Long, default: LONG_MAX, doc: "Maximum age before a record must be compacted." },
    BrokerDef { name: "replica.lag.time.max.ms", kind: Kind::Long, default: "30000", doc: "A follower that has not caught up with the leader for this long leaves the ISR." },
    BrokerDef { name: "offsets.topic.num.partitions", kind: Kind::Int, default: "50", doc: "Partitions of __consumer_offsets (fixed once the topic exists)." },
    BrokerDef { name: "offsets.topic.replication.factor", kind: Kind::Int, default: "3", doc: "Replication factor of __consumer_offsets, capped at the number of brokers." },
    BrokerDef { name: "offsets.topic.segment.bytes", kind: Kind::Int, default: "104857600", doc: "Segment size of __consumer_offsets (small, so compaction keeps up)." },
    BrokerDef { name: "offsets.retention.minutes", kind: Kind::Int, default: "10080", doc: "Committed offsets of an empty group are kept this long." },
    BrokerDef { name: "offsets.retention.check.interval.ms", kind: Kind::Long, default: "600000", doc: "How often expired offsets are removed." },
    BrokerDef { name: "offsets.commit.timeout.ms", kind: Kind::Int, default: "5000", doc: "How long an offset commit waits for its write to become durable." },
    BrokerDef { name: "offset.metadata.max.bytes", kind: Kind::Int, default: "4096", doc: "Largest metadata string of a committed offset." },
    BrokerDef { name: "group.initial.rebalance.delay.ms", kind: Kind::Int, default: "3000", doc: "How long the first rebalance of an empty group waits for more members." },
    BrokerDef { name: "group.min.session.timeout.ms", kind: Kind::Int, default: "6000", doc: "Smallest session timeout a classic-group member may ask for." },
    BrokerDef { name: "group.max.session.timeout.ms", kind: Kind::Int, default: "1800000", doc: "Largest session timeout a classic-group member may ask for." },
    BrokerDef { name: "group.max.size", kind: Kind::Int, default: "2147483647", doc: "Most members of a classic group." },
    BrokerDef { name: "group.consumer.session.timeout.ms", kind: Kind::Int, default: "45000", doc: "Session timeout of consumer-protocol (KIP-848) members." },
    BrokerDef { name: "group.consumer.heartbeat.interval.ms", kind: Kind::Int, default: "5000", doc: "Heartbeat interval given to consumer-protocol (KIP-848) members." },
    BrokerDef { name: "group.consumer.max.size", kind: Kind::Int, default: "2147483647", doc: "Most members of a consumer-protocol group." },
    BrokerDef { name: "group.consumer.assignors", kind: Kind::List, default: "uniform,range", doc: "Server-side assignors of consumer-protocol groups; the first is the default." },
    BrokerDef { name: "producer.id.expiration.ms", kind: Kind::Int, default: "86400000", doc: "Idle time after which producer state is dropped." },
];

/// One topic-level setting, with the broker setting that supplies its default.
pub struct TopicDef {
    pub name: &'static str,
    pub kind: Kind,
    /// Broker-level synonyms, most specific first; the first one that is set wins.
    pub synonyms: &'static [&'static str],
    /// How a broker synonym's value converts to the topic's unit.
    pub scale: i64,
}

/// Every topic-level setting Weir accepts (CreateTopics, AlterConfigs, DescribeConfigs).
pub const TOPIC_DEFS: &[TopicDef] = &[
    TopicDef {
        name: "cleanup.policy",
        kind: Kind::List,
        synonyms: &["log.cleanup.policy"],
        scale: 1,
    },
    TopicDef {
        name: "compression.gzip.level",
        kind: Kind::Int,
        synonyms: &["compression.gzip.level"],
        scale: 1,
    },
    TopicDef {
        name: "compression.lz4.level",
        kind: Kind::Int,
        synonyms: &["compression.lz4.level"],
        scale: 1,
    },
    TopicDef {
        name: "compression.type",
        kind: Kind::String,
        synonyms: &["compression.type"],
        scale: 1,
    },
    TopicDef {
        name: "compression.zstd.level",
        kind: Kind::Int,
        synonyms: &["compression.zstd.level"],
        scale: 1,
    },
    TopicDef {
        name: "delete.retention.ms",
        kind: Kind::Long,
        synonyms: &["log.cleaner.delete.retention.ms"],
        scale: 1,
    },
    TopicDef {
        name: "file.delete.delay.ms",
        kind: Kind::Long,
        synonyms: &["log.segment.delete.delay.ms"],
        scale: 1,
    },
    TopicDef {
        name: "flush.messages",
        kind: Kind::Long,
        synonyms: &["log.flush.interval.messages"],
        scale: 1,
    },
    TopicDef {
        name: "flush.ms",
        kind: Kind::Long,
        synonyms: &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        scale: 1,
    },
    TopicDef {
        name: "flush.policy",
        kind: Kind::String,
        synonyms: &["log.flush.policy"],
        scale: 1,
    },
    TopicDef {
        name: "index.interval.bytes",
        kind: Kind::Int,
        synonyms: &["log.index.interval.bytes"],
        scale: 1,
    },
    TopicDef {
        name: "max.compaction.lag.ms",
        kind: Kind::Long,
        synonyms: &["log.cleaner.max.compaction.lag.ms"],
        scale: 1,
    },
    TopicDef {
        name: "max.message.bytes",
        kind: Kind::Int,
        synonyms: &["message.max.bytes"],
        scale: 1,
    },
    TopicDef {
        name: "message.timestamp.after.max.ms",
        kind: Kind::Long,
        synonyms: &["log.message.timestamp.after.max.ms"],
        scale: 1,
    },
    TopicDef {
        name: "message.timestamp.before.max.ms",
        kind: Kind::Long,
        synonyms: &["log.message.timestamp.before.max.ms"],
        scale: 1,
    },
    TopicDef {
        name: "message.timestamp.type",
        kind: Kind::String,
        synonyms: &["log.message.timestamp.type"],
        scale: 1,
    },
    TopicDef {
        name: "min.cleanable.dirty.ratio",
        kind: Kind::Double,
        synonyms: &["log.cleaner.min.cleanable.ratio"],
        scale: 1,
    },
    TopicDef {
        name: "min.compaction.lag.ms",
        kind: Kind::Long,
        synonyms: &["log.cleaner.min.compaction.lag.ms"],
        scale: 1,
    },
    TopicDef {
        name: "min.insync.replicas",
        kind: Kind::Int,
        synonyms: &["min.insync.replicas"],
        scale: 1,
    },
    TopicDef {
        name: "preallocate",
        kind: Kind::Bool,
        synonyms: &["log.preallocate"],
        scale: 1,
    },
    TopicDef {
        name: "retention.bytes",
        kind: Kind::Long,
        synonyms: &["log.retention.bytes"],
        scale: 1,
    },
    TopicDef {
        name: "retention.ms",
        kind: Kind::Long,
        synonyms: &[
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
        scale: 1,
    },
    TopicDef {
        name: "segment.bytes",
        kind: Kind::Int,
        synonyms: &["log.segment.bytes"],
        scale: 1,
    },
    TopicDef {
        name: "segment.index.bytes",
        kind: Kind::Int,
        synonyms: &["log.index.size.max.bytes"],
        scale: 1,
    },
    TopicDef {
        name: "segment.jitter.ms",
        kind: Kind::Long,
        synonyms: &["log.roll.jitter.ms"],
        scale: 1,
    },
    TopicDef {
        name: "segment.ms",
        kind: Kind::Long,
        synonyms: &["log.roll.ms", "log.roll.hours"],
        scale: 1,
    },
    TopicDef {
        name: "unclean.leader.election.enable",
        kind: Kind::Bool,
        synonyms: &["unclean.leader.election.enable"],
        scale: 1,
    },
];

/// Kafka broker settings that Weir accepts (so a stock Kafka `server.properties` starts)
/// but does not act on yet; each one given is logged at start. Anything else unknown is
/// an error, so a misspelled setting never goes unnoticed.
pub const KAFKA_ACCEPTED_IGNORED: &[&str] = &[
    "controller.quorum.bootstrap.servers",
    "inter.broker.listener.name",
    "listener.security.protocol.map",
    "num.network.threads",
    "num.io.threads",
    "num.replica.fetchers",
    "num.recovery.threads.per.data.dir",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
];

pub fn broker_def(name: &str) -> Option<&'static BrokerDef> {
    BROKER_DEFS.iter().find(|d| d.name == name)
}

pub fn topic_def(name: &str) -> Option<&'static TopicDef> {
    TOPIC_DEFS.iter().find(|d| d.name == name)
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
            let def = broker_def(name).ok_or_else(|| ConfigError::Unknown(name.clone()))?;
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

    /// Topic settings resolved from broker defaults overlaid with a topic's own overrides.
    pub fn topic_config(&self, overrides: &BTreeMap<String, String>) -> TopicConfig {
        let get = |name: &str| -> String {
            overrides
                .get(name)
                .cloned()
                .or_else(|| self.topic_default(name).map(|(v, _, _)| v))
                .unwrap_or_default()
        };
        let long = |name: &str, dflt: i64| get(name).parse::<i64>().unwrap_or(dflt);
        let policy = get("cleanup.policy");
        TopicConfig {
            compact: split_list(&policy).iter().any(|p| p == "compact"),
            delete: split_list(&policy).iter().any(|p| p == "delete"),
            retention_ms: long("retention.ms", -1),
            retention_bytes: long("retention.bytes", -1),
            segment_bytes: long("segment.bytes", 1 << 30).clamp(14, i32::MAX as i64) as u64,
            segment_ms: long("segment.ms", 604_800_000).max(1),
            segment_jitter_ms: long("segment.jitter.ms", 0).max(0),
            segment_index_bytes: long("segment.index.bytes", 10 << 20).max(8) as u64,
            index_interval_bytes: long("index.interval.bytes", 4096).max(0) as u64,
            max_message_bytes: long("max.message.bytes", 1_048_588).max(0) as usize,
            timestamp_type: if get("message.timestamp.type") == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            timestamp_before_max_ms: long("message.timestamp.before.max.ms", i64::MAX),
            timestamp_after_max_ms: long("message.timestamp.after.max.ms", i64::MAX),
            flush_messages: long("flush.messages", i64::MAX),
            flush_ms: long("flush.ms", i64::MAX),
            flush_policy: if get("flush.policy") == "background" {
                FlushPolicy::Background
            } else {
                FlushPolicy::Durable
            },
            delete_retention_ms: long("delete.retention.ms", 86_400_000),
            min_compaction_lag_ms: long("min.compaction.lag.ms", 0),
            max_compaction_lag_ms: long("max.compaction.lag.ms", i64::MAX),
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio").parse().unwrap_or(0.5),
            min_insync_replicas: long("min.insync.replicas", 1) as i32,
            file_delete_delay_ms: long("file.delete.delay.ms", 60_000),
            preallocate: get("preallocate") == "true",
            compression: TopicCompression::from_config(
                &get("compression.type"),
                long("compression.gzip.level", -1) as i32,
                long("compression.lz4.level", 9) as i32,
                long("compression.zstd.level", 3) as i32,
            ),
        }
    }
}

/// The topic settings the log, produce path and cleaner act on.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    pub compact: bool,
    pub delete: bool,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub segment_jitter_ms: i64,
    pub segment_index_bytes: u64,
    pub index_interval_bytes: u64,
    pub max_message_bytes: usize,
    pub timestamp_type: TimestampType,
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub flush_policy: FlushPolicy,
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
    pub min_insync_replicas: i32,
    pub file_delete_delay_ms: i64,
    pub preallocate: bool,
    /// compression.type with its level: the codec the leader stores batches in.
    pub compression: TopicCompression,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Config::defaults().topic_config(&BTreeMap::new())
    }
}

/// Validate one topic-level setting (CreateTopics configs, AlterConfigs).
pub fn check_topic_value(name: &str, value: &str) -> Result<(), ConfigError> {
    let def = topic_def(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
    check_value(name, def.kind, value)?;
    match name {
        "cleanup.policy" => {
            let parts = split_list(value);
            if parts.is_empty() || parts.iter().any(|p| p != "delete" && p != "compact") {
                return Err(invalid(
                    name,
                    value,
                    "expected delete, compact or compact,delete",
                ));
            }
        }
        "message.timestamp.type" if value != "CreateTime" && value != "LogAppendTime" => {
            return Err(invalid(name, value, "expected CreateTime or LogAppendTime"));
        }
        "compression.type" if !codec::TYPES.contains(&value) => {
            return Err(invalid(
                name,
                value,
                "expected producer, uncompressed, gzip, snappy, lz4 or zstd",
            ));
        }
        "compression.gzip.level" => {
            let level = value.parse::<i32>().unwrap_or(0);
            let (low, high) = codec::GZIP_LEVELS;
            if level != -1 && !(low..=high).contains(&level) {
                return Err(invalid(
                    name,
                    value,
                    "expected 1 to 9, or -1 for the default",
                ));
            }
        }
        "compression.lz4.level" | "compression.zstd.level" => {
            let level = value.parse::<i32>().unwrap_or(i32::MIN);
            let (low, high) = if name == "compression.lz4.level" {
                codec::LZ4_LEVELS
            } else {
                codec::ZSTD_LEVELS
            };
            if !(low..=high).contains(&level) {
                return Err(invalid(name, value, &format!("expected {low} to {high}")));
            }
        }
        "flush.policy" if value != "durable" && value != "background" => {
            return Err(invalid(name, value, "expected durable or background"));
        }
        "segment.bytes" if value.parse::<i64>().unwrap_or(0) < 14 => {
            return Err(invalid(name, value, "must be at least 14"));
        }
        "max.message.bytes" | "segment.index.bytes" | "min.insync.replicas"
            if value.parse::<i64>().unwrap_or(0) < 1 =>
        {
            return Err(invalid(name, value, "must be at least 1"));
        }
        "segment.ms" if value.parse::<i64>().unwrap_or(0) < 1 => {
            return Err(invalid(name, value, "must be at least 1"));
        }
        "retention.ms" | "retention.bytes" if value.parse::<i64>().unwrap_or(0) < -1 => {
            return Err(invalid(name, value, "must be -1 (unlimited) or more"));
        }
        "min.cleanable.dirty.ratio" => {
            let r: f64 = value.parse().unwrap_or(-1.0);
            if !(0.0..=1.0).contains(&r) {
                return Err(invalid(name, value, "must be between 0 and 1"));
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_value(name: &str, kind: Kind, value: &str) -> Result<(), ConfigError> {
    let ok = match kind {
        Kind::Bool => value == "true" || value == "false",
        Kind::Int => value.parse::<i32>().is_ok(),
        Kind::Long => value.parse::<i64>().is_ok(),
        Kind::Double => value.parse::<f64>().is_ok(),
        Kind::String | Kind::List | Kind::Password => true,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            name,
            value,
            &format!("expected {kind:?}").to_lowercase(),
        ))
    }
}

fn scale_synonym(syn: &str, v: &str) -> String {
    let factor = match syn {
        "log.retention.minutes" => 60_000,
        "log.retention.hours" | "log.roll.hours" => 3_600_000,
        _ => return v.to_string(),
    };
    match v.parse::<i64>() {
        Ok(n) if n >= 0 => (n.saturating_mul(factor)).to_string(),
        _ => v.to_string(),
    }
}

fn invalid(name: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        name: name.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn rename(e: ConfigError, name: &str) -> ConfigError {
    match e {
        ConfigError::Invalid { value, reason, .. } => ConfigError::Invalid {
            name: name.into(),
            value,
            reason,
        },
        other => other,
    }
}

pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// `process.roles`: `broker,controller` (a voter, or a learner that AddRaftVoter can
/// promote) or `broker` (a learner for good: it follows the metadata log and never
/// votes). Returns whether the node is broker-only. A controller without client
/// listeners is not supported: refused rather than pretended.
fn check_roles(value: &str) -> Result<bool, ConfigError> {
    let mut roles = split_list(value);
    roles.sort();
    roles.dedup();
    match roles
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["broker", "controller"] => Ok(false),
        ["broker"] => Ok(true),
        ["controller"] => Err(invalid(
            "process.roles",
            value,
            "controller-only nodes are not supported yet; use broker,controller",
        )),
        _ => Err(invalid(
            "process.roles",
            value,
            "expected broker,controller",
        )),
    }
}

/// `controller.quorum.voters`: `1@host:port,2@host:port`, ids unique and non-negative.
fn parse_voters(value: &str) -> Result<BTreeMap<i32, String>, ConfigError> {
    let mut voters = BTreeMap::new();
    for v in split_list(value) {
        let bad = |reason: &str| invalid("controller.quorum.voters", &v, reason);
        let (id, addr) = v
            .split_once('@')
            .ok_or_else(|| bad("expected id@host:port"))?;
        let id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| bad("the id is not a non-negative integer"))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| bad("expected id@host:port"))?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad("expected id@host:port with a host and a port 1-65535"));
        }
        if voters.insert(id, addr.to_string()).is_some() {
            return Err(bad("the id is listed twice"));
        }
    }
    Ok(voters)
}

fn parse_listeners(setting: &str, s: &str) -> Result<Vec<Listener>, ConfigError> {
    split_list(s)
        .iter()
        .map(|l| Listener::parse(setting, l))
        .collect()
}

/// Read a TOML file (nested tables flatten to dotted names) or a `server.properties` file.
fn read_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.into(),
        source,
    })?;
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    if is_toml {
        parse_toml(path, &text)
    } else {
        Ok(parse_properties(&text))
    }
}

fn parse_toml(path: &Path, text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            path: path.into(),
            reason: e.to_string(),
        })?;
    let mut out = BTreeMap::new();
    flatten_toml("", &toml::Value::Table(table), &mut out);
    Ok(out)
}

fn flatten_toml(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_toml(&key, v, out);
            }
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        toml::Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.insert(prefix.to_string(), parts.join(","));
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Java properties: `key=value` or `key: value` or `key value`, `#`/`!` comments,
/// backslash line continuations.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        let full = std::mem::take(&mut pending);
        let idx = full
            .find(['=', ':'])
            .or_else(|| full.find(char::is_whitespace));
        let (k, v) = match idx {
            Some(i) => (&full[..i], &full[i + 1..]),
            None => (full.as_str(), ""),
        };
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    out
}

fn group_settings(
    get: &dyn Fn(&str) -> String,
    positive: &dyn Fn(&str) -> Result<i64, ConfigError>,
) -> Result<GroupSettings, ConfigError> {
    let min_session = positive("group.min.session.timeout.ms")?;
    let max_session = positive("group.max.session.timeout.ms")?;
    if min_session > max_session {
        return Err(invalid(
            "group.min.session.timeout.ms",
            &min_session.to_string(),
            "must not exceed group.max.session.timeout.ms",
        ));
    }
    let delay: i64 = get("group.initial.rebalance.delay.ms")
        .parse()
        .unwrap_or(-1);
    if delay < 0 {
        return Err(invalid(
            "group.initial.rebalance.delay.ms",
            &delay.to_string(),
            "must not be negative",
        ));
    }
    let assignors = split_list(&get("group.consumer.assignors"));
    for a in &assignors {
        if a != "uniform" && a != "range" {
            return Err(invalid(
                "group.consumer.assignors",
                a,
                "known assignors are uniform and range",
            ));
        }
    }
    if assignors.is_empty() {
        return Err(invalid(
            "group.consumer.assignors",
            "",
            "at least one assignor is required",
        ));
    }
    Ok(GroupSettings {
        offsets_topic_partitions: positive("offsets.topic.num.partitions")? as i32,
        offsets_topic_replication_factor: positive("offsets.topic.replication.factor")?
            .min(i16::MAX as i64) as i16,
        offsets_topic_segment_bytes: positive("offsets.topic.segment.bytes")?,
        offsets_retention_ms: (positive("offsets.retention.minutes")? as u64)
            .saturating_mul(60_000),
        offsets_retention_check_interval_ms: positive("offsets.retention.check.interval.ms")?
            as u64,
        offsets_commit_timeout_ms: positive("offsets.commit.timeout.ms")? as u64,
        offset_metadata_max_bytes: positive("offset.metadata.max.bytes")? as usize,
        initial_rebalance_delay_ms: delay as u64,
        min_session_timeout_ms: min_session as i32,
        max_session_timeout_ms: max_session as i32,
        max_size: positive("group.max.size")? as usize,
        consumer_session_timeout_ms: positive("group.consumer.session.timeout.ms")? as i32,
        consumer_heartbeat_interval_ms: positive("group.consumer.heartbeat.interval.ms")? as i32,
        consumer_max_size: positive("group.consumer.max.size")? as usize,
        consumer_assignors: assignors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

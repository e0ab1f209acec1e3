//! The tables of every setting Weir accepts: broker settings with their type, default
//! and meaning (what `weir config list` and the README print), topic settings with the
//! broker synonyms that supply their defaults, and the Kafka settings accepted but not
//! acted on.

use super::Kind;

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
    BrokerDef { name: "advertised.listeners", kind: Kind::List, default: "", doc: "Addresses given to clients, NAME://host:port per listener (a client gets the brokers' addresses of the listener it connected to); defaults to listeners." },
    BrokerDef { name: "listener.security.protocol.map", kind: Kind::List, default: "", doc: "LISTENER:PROTOCOL pairs (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; the CONTROLLER listener PLAINTEXT or SSL). Empty: Kafka's default, PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL, with a CONTROLLER listener speaking PLAINTEXT." },
    BrokerDef { name: "inter.broker.listener.name", kind: Kind::String, default: "", doc: "The listener other brokers fetch from (replication); empty: the first of listeners." },
    BrokerDef { name: "security.inter.broker.protocol", kind: Kind::String, default: "", doc: "Older alternative to inter.broker.listener.name: the listener named after this protocol." },
    BrokerDef { name: "ssl.keystore.type", kind: Kind::String, default: "PEM", doc: "PEM only (JKS and PKCS12 stores convert with keytool/openssl). Every ssl.* setting can be given per listener as listener.name.<listener>.ssl.*." },
    BrokerDef { name: "ssl.keystore.location", kind: Kind::String, default: "", doc: "PEM file with this broker's private key and certificate chain; re-read when it changes (new connections get the new certificate)." },
    BrokerDef { name: "ssl.keystore.certificate.chain", kind: Kind::Password, default: "", doc: "The certificate chain as PEM text (instead of ssl.keystore.location)." },
    BrokerDef { name: "ssl.keystore.key", kind: Kind::Password, default: "", doc: "The private key as PEM text (instead of ssl.keystore.location)." },
    BrokerDef { name: "ssl.key.password", kind: Kind::Password, default: "", doc: "Password of an encrypted PKCS#8 private key." },
    BrokerDef { name: "ssl.truststore.type", kind: Kind::String, default: "PEM", doc: "PEM only." },
    BrokerDef { name: "ssl.truststore.location", kind: Kind::String, default: "", doc: "PEM file of the CA certificates that sign client certificates (and other brokers', for mTLS); re-read when it changes." },
    BrokerDef { name: "ssl.truststore.certificates", kind: Kind::Password, default: "", doc: "The trusted CA certificates as PEM text (instead of ssl.truststore.location)." },
    BrokerDef { name: "ssl.client.auth", kind: Kind::String, default: "none", doc: "none, requested (a client certificate is asked for, not needed) or required (mTLS: clients without a certificate from the truststore are refused)." },
    BrokerDef { name: "ssl.enabled.protocols", kind: Kind::List, default: "TLSv1.2,TLSv1.3", doc: "TLS versions accepted: TLSv1.2 and/or TLSv1.3." },
    BrokerDef { name: "ssl.cipher.suites", kind: Kind::List, default: "", doc: "IANA names of the cipher suites accepted (e.g. TLS_AES_256_GCM_SHA384); empty: every suite rustls considers secure." },
    BrokerDef { name: "ssl.principal.mapping.rules", kind: Kind::String, default: "DEFAULT", doc: "How a client certificate's distinguished name becomes the principal (KIP-371): RULE:pattern/replacement/[LU] entries and DEFAULT (the whole name, CN=alice,OU=eng,...), first match wins." },
    BrokerDef { name: "sasl.enabled.mechanisms", kind: Kind::List, default: "", doc: "SASL mechanisms of SASL_PLAINTEXT/SASL_SSL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (per listener: listener.name.<listener>.sasl.enabled.mechanisms). Needed when a listener speaks SASL (Kafka's default, GSSAPI, is not supported)." },
    BrokerDef { name: "sasl.jaas.config", kind: Kind::Password, default: "", doc: "JAAS settings of a mechanism, given per listener and mechanism as listener.name.<listener>.<mechanism>.sasl.jaas.config: PLAIN's users (user_<name>=\"<password>\") and the broker's own username/password for the inter-broker listener." },
    BrokerDef { name: "sasl.server.callback.handler.class", kind: Kind::String, default: "", doc: "Given per listener and mechanism (listener.name.<listener>.oauthbearer.sasl.server.callback.handler.class): Kafka's OAuthBearerValidatorCallbackHandler (signed tokens, the default) or OAuthBearerUnsecuredValidatorCallbackHandler (unsigned tokens; tests only)." },
    BrokerDef { name: "sasl.oauthbearer.jwks.endpoint.url", kind: Kind::String, default: "", doc: "OAUTHBEARER: the identity provider's JSON Web Key Set, https://..., http://... or file:/...; tokens must be signed by one of its keys." },
    BrokerDef { name: "sasl.oauthbearer.expected.audience", kind: Kind::List, default: "", doc: "OAUTHBEARER: a token's aud must name one of these (when given)." },
    BrokerDef { name: "sasl.oauthbearer.expected.issuer", kind: Kind::String, default: "", doc: "OAUTHBEARER: a token's iss must be this (when given)." },
    BrokerDef { name: "sasl.oauthbearer.clock.skew.seconds", kind: Kind::Int, default: "30", doc: "OAUTHBEARER: leeway for exp and nbf." },
    BrokerDef { name: "sasl.oauthbearer.sub.claim.name", kind: Kind::String, default: "sub", doc: "OAUTHBEARER: the claim that names the principal (User:<value>)." },
    BrokerDef { name: "sasl.oauthbearer.scope.claim.name", kind: Kind::String, default: "scope", doc: "OAUTHBEARER: the claim that holds the token's scopes." },
    BrokerDef { name: "sasl.oauthbearer.jwks.endpoint.refresh.ms", kind: Kind::Long, default: "3600000", doc: "OAUTHBEARER: how often the key set is fetched again (also soon after a token names an unknown key id)." },
    BrokerDef { name: "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", kind: Kind::Long, default: "100", doc: "OAUTHBEARER: first pause after a failed key-set fetch (doubling)." },
    BrokerDef { name: "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", kind: Kind::Long, default: "10000", doc: "OAUTHBEARER: longest pause between failed key-set fetches." },
    BrokerDef { name: "sasl.mechanism.inter.broker.protocol", kind: Kind::String, default: "", doc: "The mechanism brokers authenticate with on a SASL inter-broker listener; empty: the first enabled there." },
    BrokerDef { name: "connections.max.reauth.ms", kind: Kind::Long, default: "0", doc: "SASL sessions end this long after authenticating unless the client authenticates again (KIP-368); the connection is closed at its next request. 0: never." },
    BrokerDef { name: "connection.failed.authentication.delay.ms", kind: Kind::Int, default: "100", doc: "A failed SASL authentication is answered, and the connection closed, after this delay (slows password guessing)." },
    BrokerDef { name: "sasl.server.max.receive.size", kind: Kind::Int, default: "524288", doc: "Largest frame accepted from a client that has not authenticated yet." },
    BrokerDef { name: "audit.log.file", kind: Kind::String, default: "", doc: "Audit log (JSON lines): authentications, authorization denials and, with audit.log.admin.allowed, allowed admin operations. Empty: no audit log." },
    BrokerDef { name: "audit.log.admin.allowed", kind: Kind::Bool, default: "false", doc: "Also audit admin operations that were allowed (topics, configs, ACLs, users, reassignments, elections, quorum)." },
    BrokerDef { name: "audit.log.events.per.second", kind: Kind::Long, default: "100", doc: "Audit events written per second at most; the others are counted (weir_audit_events_dropped_total) and summed up in one line." },
    BrokerDef { name: "audit.log.max.bytes", kind: Kind::Long, default: "104857600", doc: "Size at which the audit log rolls over to <file>.1 (one old file is kept)." },
    BrokerDef { name: "authorizer.class.name", kind: Kind::String, default: "", doc: "org.apache.kafka.metadata.authorizer.StandardAuthorizer turns on ACL authorization (Kafka's semantics, ACLs in the replicated metadata); empty: everything is allowed." },
    BrokerDef { name: "super.users", kind: Kind::List, default: "", doc: "Principals allowed everything, separated by ; (User:admin;User:broker)." },
    BrokerDef { name: "allow.everyone.if.no.acl.found", kind: Kind::Bool, default: "false", doc: "With an authorizer, whether a resource without any ACL is open to everyone (Kafka's default: no)." },
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
    BrokerDef { name: "transaction.state.log.num.partitions", kind: Kind::Int, default: "50", doc: "Partitions of __transaction_state (fixed once the topic exists)." },
    BrokerDef { name: "transaction.state.log.replication.factor", kind: Kind::Int, default: "3", doc: "Replication factor of __transaction_state, capped at the number of brokers." },
    BrokerDef { name: "transaction.state.log.min.isr", kind: Kind::Int, default: "2", doc: "min.insync.replicas of __transaction_state (capped at its replication factor)." },
    BrokerDef { name: "transaction.state.log.segment.bytes", kind: Kind::Int, default: "104857600", doc: "Segment size of __transaction_state." },
    BrokerDef { name: "transaction.max.timeout.ms", kind: Kind::Int, default: "900000", doc: "The longest transaction.timeout.ms a producer may ask for (INVALID_TRANSACTION_TIMEOUT beyond)." },
    BrokerDef { name: "transactional.id.expiration.ms", kind: Kind::Int, default: "604800000", doc: "A transactional id with no transaction for this long is forgotten." },
    BrokerDef { name: "transaction.abort.timed.out.transaction.cleanup.interval.ms", kind: Kind::Int, default: "10000", doc: "How often transactions past their timeout are looked for (and aborted)." },
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
    "num.network.threads",
    "num.io.threads",
    "num.replica.fetchers",
    "num.recovery.threads.per.data.dir",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
];

pub fn broker_def(name: &str) -> Option<&'static BrokerDef> {
    BROKER_DEFS.iter().find(|d| d.name == name)
}

pub fn topic_def(name: &str) -> Option<&'static TopicDef> {
    TOPIC_DEFS.iter().find(|d| d.name == name)
}

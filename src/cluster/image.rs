//! The immutable metadata image that brokers read (a snapshot of the applied state).

use std::collections::BTreeMap;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One partition's placement and leadership.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    pub partition: i32,
    /// Broker id of the leader; -1 when the partition has no leader (offline).
    pub leader: i32,
    /// Bumped on every leader change; stamped on batches and used by OffsetForLeaderEpoch.
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// An ongoing reassignment (KIP-455): replicas being added. While it runs, `replicas`
    /// is the union of the target and the original replicas (target first).
    #[serde(default)]
    pub adding_replicas: Vec<i32>,
    /// An ongoing reassignment: original replicas that leave once every target replica
    /// is in the ISR.
    #[serde(default)]
    pub removing_replicas: Vec<i32>,
}

impl PartitionMeta {
    /// A new partition led by its first replica, with every replica in sync.
    pub fn new(partition: i32, replicas: Vec<i32>) -> PartitionMeta {
        PartitionMeta {
            partition,
            leader: replicas.first().copied().unwrap_or(-1),
            leader_epoch: 0,
            isr: replicas.clone(),
            replicas,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }

    /// Whether a reassignment is in progress.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas the partition will have once its reassignment completes (the
    /// current replicas when none runs).
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing_replicas.contains(r))
            .collect()
    }
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    /// Indexed by partition number.
    pub partitions: Vec<PartitionMeta>,
    /// Topic-level config overrides (only what was set explicitly).
    pub configs: BTreeMap<String, String>,
    /// Internal topics (`__consumer_offsets`) are flagged in Metadata responses.
    pub internal: bool,
}

/// One registered broker and its advertised client listener.
///
/// `host`/`port` is the first advertised client listener: what Metadata gives clients and
/// what a follower connects to when it fetches from a partition leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerMeta {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// Every advertised listener (client listeners by name, and the CONTROLLER listener
    /// when the node has one). Empty in images written before brokers reported them.
    #[serde(default)]
    pub listeners: Vec<BrokerEndpoint>,
}

impl BrokerMeta {
    /// The broker's address on `listener` (Kafka answers a client with the addresses of
    /// the listener it connected to); `None` when the broker has no such listener. A
    /// broker registered before listeners were reported has only its one address.
    pub fn endpoint(&self, listener: &str) -> Option<(&str, u16)> {
        if self.listeners.is_empty() {
            return Some((&self.host, self.port));
        }
        self.listeners
            .iter()
            .find(|e| e.name == listener)
            .map(|e| (e.host.as_str(), e.port))
    }
}

/// One named listener of a broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// Everything a broker needs to answer clients, as of `applied_index`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    pub cluster_id: String,
    /// Node id of the Raft leader (the controller); -1 when unknown.
    pub controller_id: i32,
    pub topics: BTreeMap<String, TopicMeta>,
    pub topic_names_by_id: HashMap<Uuid, String>,
    /// Registered brokers that are alive (unfenced): the ones clients see in Metadata and
    /// the only ones new replicas and leaderships are given to.
    pub brokers: BTreeMap<i32, BrokerMeta>,
    /// Registered brokers the controller fenced (heartbeats stopped, or controlled
    /// shutdown); they come back to `brokers` when they heartbeat again. Kept apart so
    /// that every reader of `brokers` sees live brokers only.
    #[serde(default)]
    pub fenced_brokers: BTreeMap<i32, BrokerMeta>,
    /// First producer id not yet handed out.
    pub next_producer_id: i64,
    pub applied_index: u64,
    /// Dynamic broker configs (AlterConfigs on a BROKER resource), by resource name: ""
    /// for the cluster-wide default, a node id for one broker. Only set values are kept.
    #[serde(default)]
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Client-metrics subscriptions (CLIENT_METRICS config resources, KIP-714) by name:
    /// `metrics`, `interval.ms`, `match`.
    #[serde(default)]
    pub client_metrics: BTreeMap<String, BTreeMap<String, String>>,
    /// SCRAM credentials by user and mechanism (salted: never a password).
    #[serde(default)]
    pub scram_credentials:
        BTreeMap<String, BTreeMap<crate::sasl::ScramMechanism, crate::sasl::ScramCredential>>,
    /// ACLs by id (CreateAcls, DeleteAcls).
    #[serde(default)]
    pub acls: BTreeMap<Uuid, crate::authorizer::AclBinding>,
    /// Bumped on every ACL change: authorizers rebuild their index when it moves.
    #[serde(default)]
    pub acl_version: u64,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicMeta> {
        self.topic_names_by_id
            .get(id)
            .and_then(|n| self.topics.get(n))
    }

    /// A registered broker, fenced or not.
    pub fn registered_broker(&self, id: i32) -> Option<&BrokerMeta> {
        self.brokers
            .get(&id)
            .or_else(|| self.fenced_brokers.get(&id))
    }

    /// The dynamic configs of broker `node_id`: (cluster-wide default, its own).
    pub fn dynamic_broker_configs(
        &self,
        node_id: i32,
    ) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let get = |k: &str| self.broker_configs.get(k).cloned().unwrap_or_default();
        (get(""), get(&node_id.to_string()))
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionMeta> {
        let t = self.topics.get(topic)?;
        usize::try_from(partition)
            .ok()
            .and_then(|p| t.partitions.get(p))
    }
}

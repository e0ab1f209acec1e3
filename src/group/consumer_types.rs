//! Plain inputs and outputs of the `consumer` group protocol (KIP-848): the topic
//! metadata snapshot the assignors read, ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe as plain structs, and the values of the `consumer` group
//! records of `__consumer_offsets` (Kafka's record types 3–8, same fields).

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

/// One topic as the broker's metadata knows it when a request is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicInfo {
    pub id: Uuid,
    pub partitions: i32,
}

/// Every topic of the cluster by name: the snapshot assignments are computed from.
pub type Topics = BTreeMap<String, TopicInfo>;

/// Partitions by topic id: an assignment (target, current, or pending revocation).
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// ConsumerGroupHeartbeat (API key 68, v0–v1), decoded. Optional fields are `None`
/// when the member did not send them because they did not change (Kafka's sentinels:
/// null, and -1 for the rebalance timeout).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerHeartbeatRequest {
    /// v0: the coordinator generates member ids; v1 (KIP-1082): the client does.
    pub api_version: i16,
    pub group_id: String,
    /// Empty only for a v0 member joining for the first time.
    pub member_id: String,
    /// 0 to join, -1 to leave, -2 for a static member leaving temporarily.
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// -1 when unchanged.
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    /// v1+: a RE2-style regex; a topic matches if the whole name matches.
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns: (topic id, partitions).
    pub topic_partitions: Option<Vec<(Uuid, Vec<i32>)>>,
    /// From the request header and the connection (Kafka's request context).
    pub client_id: String,
    pub client_host: String,
    pub now_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerHeartbeatResponse {
    pub error: Option<ResponseError>,
    pub error_message: Option<String>,
    /// None on errors (null on the wire).
    pub member_id: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Only present when the member's assignment changed or it sent a full request;
    /// None means "keep what you have" (null on the wire).
    pub assignment: Option<Vec<(Uuid, Vec<i32>)>>,
}

impl ConsumerHeartbeatResponse {
    pub(crate) fn error(error: ResponseError, message: impl Into<String>) -> Self {
        ConsumerHeartbeatResponse {
            error: Some(error),
            error_message: Some(message.into()),
            member_id: None,
            member_epoch: 0,
            heartbeat_interval_ms: 0,
            assignment: None,
        }
    }
}

/// ConsumerGroupDescribe (API key 69) view of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerGroupDescription {
    pub group_id: String,
    /// GROUP_ID_NOT_FOUND for an unknown group or one that is not a `consumer` group.
    pub error: Option<ResponseError>,
    pub error_message: Option<String>,
    /// "Empty", "Assigning", "Reconciling", "Stable"; empty on error.
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor_name: String,
    pub members: Vec<ConsumerMemberDescription>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerMemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub assignment: Vec<DescribedTopicPartitions>,
    pub target_assignment: Vec<DescribedTopicPartitions>,
    /// v1 (KIP-1099): 1 = consumer protocol (0 would be a classic member).
    pub member_type: i8,
}

/// Partitions of one topic in a description; topics the metadata no longer knows are
/// left out (Kafka does the same).
#[derive(Debug, Clone, PartialEq)]
pub struct DescribedTopicPartitions {
    pub topic_id: Uuid,
    pub topic_name: String,
    pub partitions: Vec<i32>,
}

/// Kafka's ConsumerGroupMetadataValue (record type 3).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerGroupMetadataValue {
    pub epoch: i32,
}

/// Kafka's ConsumerGroupPartitionMetadataValue (record type 4).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerGroupPartitionMetadataValue {
    pub topics: Vec<TopicMetadataValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopicMetadataValue {
    pub topic_id: Uuid,
    pub topic_name: String,
    pub num_partitions: i32,
    /// (partition, racks); Weir does no rack-aware assignment, so this stays empty.
    pub partition_metadata: Vec<(i32, Vec<String>)>,
}

/// Kafka's ConsumerGroupMemberMetadataValue (record type 5).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerGroupMemberMetadataValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    /// Set for classic-protocol members of a consumer group; Weir has none, so None.
    pub classic_member_metadata: Option<ClassicMemberMetadata>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClassicMemberMetadata {
    pub session_timeout_ms: i32,
    /// (protocol name, metadata).
    pub supported_protocols: Vec<(String, Vec<u8>)>,
}

/// Kafka's ConsumerGroupTargetAssignmentMetadataValue (record type 6).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerGroupTargetAssignmentMetadataValue {
    pub assignment_epoch: i32,
}

/// Kafka's ConsumerGroupTargetAssignmentMemberValue (record type 7).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerGroupTargetAssignmentMemberValue {
    pub topic_partitions: Vec<(Uuid, Vec<i32>)>,
}

/// Kafka's ConsumerGroupCurrentMemberAssignmentValue (record type 8).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerGroupCurrentMemberAssignmentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// Kafka's MemberState code: 0 stable, 1 unrevoked, 2 unreleased partitions.
    pub state: i8,
    pub assigned_partitions: Vec<(Uuid, Vec<i32>)>,
    pub partitions_pending_revocation: Vec<(Uuid, Vec<i32>)>,
}

/// An assignment as the wire lists it: topics in id order, partitions ascending.
pub(crate) fn to_list(assignment: &Assignment) -> Vec<(Uuid, Vec<i32>)> {
    assignment
        .iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(t, ps)| (*t, ps.iter().copied().collect()))
        .collect()
}

pub(crate) fn from_list(list: &[(Uuid, Vec<i32>)]) -> Assignment {
    let mut assignment = Assignment::new();
    for (topic, partitions) in list {
        assignment
            .entry(*topic)
            .or_default()
            .extend(partitions.iter().copied());
    }
    assignment.retain(|_, ps| !ps.is_empty());
    assignment
}

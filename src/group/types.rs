//! Plain inputs and outputs of the group state machine: requests, replies, timers,
//! records to persist and the settings that shape the rules.

use kafka_protocol::error::ResponseError;

/// Broker settings the group rules depend on (Kafka's names and defaults).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long an empty group's first rebalance
    /// waits for more members, so a starting fleet does not rebalance once per member.
    pub initial_rebalance_delay_ms: u64,
    /// `group.max.size`.
    pub max_size: usize,
    /// `offsets.retention.minutes`, in milliseconds.
    pub offsets_retention_ms: u64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// `group.consumer.session.timeout.ms`: a `consumer` group member that does not
    /// heartbeat for this long is removed (the server decides, unlike classic groups).
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`: told to `consumer` group members.
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.assignors`: server-side assignors members may name; the first
    /// is the default. Only "uniform" and "range" exist.
    pub consumer_assignors: Vec<String>,
    /// `group.consumer.max.size`.
    pub consumer_max_size: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: i32::MAX as usize,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offset_metadata_max_bytes: 4096,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_assignors: vec!["uniform".to_string(), "range".to_string()],
            consumer_max_size: i32::MAX as usize,
        }
    }
}

/// Opaque token naming a parked request; the caller maps it back to a connection and
/// correlation id when the reply comes out of an [`Output`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyTo(pub u64);

/// What a timer is for. One timer per key: setting it again moves its deadline.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKey {
    /// The member's session ends unless it heartbeats (or joins / syncs) before this.
    Heartbeat { group_id: String, member_id: String },
    /// The rebalance of the group completes at this deadline even if members are missing
    /// (also the end of the initial rebalance delay of an empty group).
    Join { group_id: String },
    /// Members of the generation that have not sent SyncGroup by this deadline are
    /// removed (Kafka's pending-sync timeout), so a leader that heartbeats but never
    /// assigns cannot hold its followers forever.
    Sync {
        group_id: String,
        generation_id: i32,
    },
    /// A `consumer` group member is removed unless it heartbeats before this.
    ConsumerSession { group_id: String, member_id: String },
    /// A `consumer` group member asked to revoke partitions is removed unless it has
    /// done so by this deadline (its rebalance timeout).
    ConsumerRebalance { group_id: String, member_id: String },
}

/// A change of timers the caller may mirror in its own timer wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerOp {
    Set { key: TimerKey, deadline_ms: u64 },
    Cancel { key: TimerKey },
}

/// Everything a call asks the caller to do, in addition to its direct return value.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Output {
    /// Replies to parked (or the current) JoinGroup / SyncGroup requests.
    pub replies: Vec<(ReplyTo, Reply)>,
    pub timers: Vec<TimerOp>,
    /// Records to append to the group's `__consumer_offsets` partition before replying.
    pub records: Vec<Record>,
    /// The records belong to this producer's transaction (id, epoch): they are written
    /// as its transactional batch (TxnOffsetCommit).
    pub txn: Option<(i64, i16)>,
}

impl Output {
    pub(crate) fn reply(&mut self, to: ReplyTo, reply: Reply) {
        self.replies.push((to, reply));
    }

    /// The reply addressed to `to`, if this output has one.
    pub fn reply_for(&self, to: ReplyTo) -> Option<&Reply> {
        self.replies.iter().find(|(t, _)| *t == to).map(|(_, r)| r)
    }
}

/// A reply to a JoinGroup or SyncGroup request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Join(JoinResponse),
    Sync(SyncResponse),
}

/// JoinGroup, decoded. `rebalance_timeout_ms` of v0 requests is the session timeout.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinRequest {
    pub group_id: String,
    /// Empty for a member joining for the first time.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Vec<u8>)>,
    /// v4+: a new member must first be given a member id (MEMBER_ID_REQUIRED).
    pub require_known_member_id: bool,
    pub reply_to: ReplyTo,
    pub now_ms: u64,
}

/// One member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinResponse {
    pub error: Option<ResponseError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only the leader gets the members (it computes the assignment).
    pub members: Vec<JoinMember>,
}

impl JoinResponse {
    pub(crate) fn error(member_id: &str, error: ResponseError) -> Self {
        JoinResponse {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// SyncGroup, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v5+: checked against the group's when present.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// Only the leader sends assignments: (member id, assignment bytes).
    pub assignments: Vec<(String, Vec<u8>)>,
    pub reply_to: ReplyTo,
    pub now_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncResponse {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Vec<u8>,
}

impl SyncResponse {
    pub(crate) fn error(error: ResponseError) -> Self {
        SyncResponse {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub now_ms: u64,
}

/// One member leaving; v3+ requests carry several, older ones a single member id.
#[derive(Debug, Clone, PartialEq)]
pub struct LeavingMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LeaveRequest {
    pub group_id: String,
    pub members: Vec<LeavingMember>,
    pub now_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LeaveResponse {
    /// Group-level error; when set the per-member results are empty.
    pub error: Option<ResponseError>,
    /// (member id, instance id, error) in request order.
    pub members: Vec<(String, Option<String>, Option<ResponseError>)>,
}

/// A record of `__consumer_offsets`, as plain data; the wiring layer encodes it with
/// Kafka's key/value schemas. A `None` value is a tombstone.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Group {
        group_id: String,
        value: Option<GroupMetadataValue>,
    },
    Offset {
        group_id: String,
        topic: String,
        partition: i32,
        value: Option<crate::group::OffsetValue>,
    },
    // The `consumer` (KIP-848) group records. They follow Kafka's record types 3–8 of
    // `__consumer_offsets` (key version = record type), one variant per type:
    // 3 ConsumerGroupMetadata, 4 ConsumerGroupPartitionMetadata, 5
    // ConsumerGroupMemberMetadata, 6 ConsumerGroupTargetAssignmentMetadata, 7
    // ConsumerGroupTargetAssignmentMember, 8 ConsumerGroupCurrentMemberAssignment.
    /// Type 3: the group epoch.
    ConsumerGroupMetadata {
        group_id: String,
        value: Option<super::consumer_types::ConsumerGroupMetadataValue>,
    },
    /// Type 4: the subscribed topics that exist, as last seen (a change bumps the epoch).
    ConsumerGroupPartitionMetadata {
        group_id: String,
        value: Option<super::consumer_types::ConsumerGroupPartitionMetadataValue>,
    },
    /// Type 5: one member and its subscription.
    ConsumerGroupMemberMetadata {
        group_id: String,
        member_id: String,
        value: Option<super::consumer_types::ConsumerGroupMemberMetadataValue>,
    },
    /// Type 6: the epoch of the target assignment.
    ConsumerGroupTargetAssignmentMetadata {
        group_id: String,
        value: Option<super::consumer_types::ConsumerGroupTargetAssignmentMetadataValue>,
    },
    /// Type 7: the target assignment of one member.
    ConsumerGroupTargetAssignmentMember {
        group_id: String,
        member_id: String,
        value: Option<super::consumer_types::ConsumerGroupTargetAssignmentMemberValue>,
    },
    /// Type 8: the current assignment (and reconciliation state) of one member.
    ConsumerGroupCurrentMemberAssignment {
        group_id: String,
        member_id: String,
        value: Option<super::consumer_types::ConsumerGroupCurrentMemberAssignmentValue>,
    },
}

/// Kafka's GroupMetadataValue.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: u64,
    pub members: Vec<MemberMetadataValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberMetadataValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// Metadata of the selected protocol.
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// DescribeGroups view of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDescription {
    pub group_id: String,
    pub error: Option<ResponseError>,
    /// Kafka's spelling: "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead".
    pub state: &'static str,
    pub protocol_type: String,
    /// Only set while Stable (as Kafka does).
    pub protocol_name: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Metadata and assignment are only described while Stable.
    pub metadata: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// ListGroups view of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
    /// KIP-848 group type: "classic" or "consumer".
    pub group_type: &'static str,
}

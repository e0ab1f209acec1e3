//! One file per Kafka API, each declaring the version range it fully implements, and the
//! registry that dispatches to them and generates the ApiVersions table.
//!
//! A handler receives the decoded request and returns the response message; errors are
//! already Kafka error codes inside the response (mapped in `crate::errors`). Produce is
//! split in two: its appends run when the request is started (in arrival order), and
//! only the wait for durability is deferred.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, VersionRange};
use tracing::{debug, warn};

use crate::metrics as m;
use crate::protocol::codec::{decode_body, encode_response, encode_response_splicing};
use crate::protocol::Response;
use crate::state::BrokerState;

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod add_raft_voter;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_replica_log_dirs;
pub mod alter_user_scram_credentials;
pub mod api_versions;
mod authz;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod get_telemetry_subscriptions;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod push_telemetry;
pub mod remove_raft_voter;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod unregister_broker;
mod util;
pub mod write_txn_markers;

/// Everything a handler knows about the request it serves.
#[derive(Clone)]
pub struct Ctx {
    pub state: Arc<BrokerState>,
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: String,
    pub peer: SocketAddr,
    /// The listener the connection came in on: Metadata and FindCoordinator answer with
    /// the brokers' addresses on the same listener.
    pub listener: Arc<str>,
    /// The client software name and version of the connection (ApiVersions v3+).
    pub software: ClientSoftware,
    /// Who the connection authenticated as (`User:<name>`; `User:ANONYMOUS` before or
    /// without authentication).
    pub principal: Arc<str>,
    /// The client's address as ACLs name hosts (made once per connection).
    pub host: Arc<str>,
}

/// A connection's client software (name, version), once ApiVersions told it.
pub type ClientSoftware = Arc<parking_lot::Mutex<Option<(String, String)>>>;

impl Ctx {
    /// Count and log an error code put into a response (zero is ignored): one line per
    /// error, with the client's id and address.
    pub fn note_error(&self, code: i16) {
        if code != 0 {
            metrics::counter!(m::REQUEST_ERRORS_TOTAL, "api" => format!("{:?}", self.api_key), "error_code" => code.to_string())
                .increment(1);
            use kafka_protocol::error::ResponseError as R;
            let error =
                R::try_from_code(code).map_or_else(|| code.to_string(), |e| format!("{e:?}"));
            // Steps of the group protocol that every join goes through, not problems.
            let routine =
                code == R::MemberIdRequired.code() || code == R::RebalanceInProgress.code();
            if routine {
                tracing::debug!(api = ?self.api_key, version = self.version, %error, code,
                    client_id = %self.client_id, peer = %self.peer,
                    correlation_id = self.correlation_id, "request error");
            } else {
                tracing::info!(api = ?self.api_key, version = self.version, %error, code,
                    client_id = %self.client_id, peer = %self.peer,
                    correlation_id = self.correlation_id, "request error");
            }
        }
    }
}

/// What the connection does once a request completes.
pub enum Outcome {
    Respond(Response),
    /// acks=0 produce: the client expects nothing back.
    NoResponse,
    /// Kafka closes the connection instead of answering (malformed body, acks=0 failure).
    Close(String),
    /// Answer, then close after `connection.failed.authentication.delay.ms` (a failed
    /// authentication: the client reads why at once, but cannot retry faster than that).
    RespondThenClose(Response, String),
}

pub type Pending = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The APIs we serve and the versions of each we fully implement.
pub const APIS: &[(ApiKey, VersionRange)] = &[
    (ApiKey::Produce, produce::VERSIONS),
    (ApiKey::Fetch, fetch::VERSIONS),
    (ApiKey::ListOffsets, list_offsets::VERSIONS),
    (ApiKey::Metadata, metadata::VERSIONS),
    (ApiKey::ApiVersions, api_versions::VERSIONS),
    (ApiKey::SaslHandshake, sasl_handshake::VERSIONS),
    (ApiKey::SaslAuthenticate, sasl_authenticate::VERSIONS),
    (ApiKey::CreateTopics, create_topics::VERSIONS),
    (ApiKey::DeleteTopics, delete_topics::VERSIONS),
    (ApiKey::DeleteRecords, delete_records::VERSIONS),
    (ApiKey::InitProducerId, init_producer_id::VERSIONS),
    (
        ApiKey::OffsetForLeaderEpoch,
        offset_for_leader_epoch::VERSIONS,
    ),
    (ApiKey::DescribeAcls, describe_acls::VERSIONS),
    (ApiKey::CreateAcls, create_acls::VERSIONS),
    (ApiKey::DeleteAcls, delete_acls::VERSIONS),
    (ApiKey::DescribeConfigs, describe_configs::VERSIONS),
    (ApiKey::AlterConfigs, alter_configs::VERSIONS),
    (
        ApiKey::AlterReplicaLogDirs,
        alter_replica_log_dirs::VERSIONS,
    ),
    (ApiKey::DescribeLogDirs, describe_log_dirs::VERSIONS),
    (ApiKey::CreatePartitions, create_partitions::VERSIONS),
    (ApiKey::ElectLeaders, elect_leaders::VERSIONS),
    (
        ApiKey::IncrementalAlterConfigs,
        incremental_alter_configs::VERSIONS,
    ),
    (
        ApiKey::AlterPartitionReassignments,
        alter_partition_reassignments::VERSIONS,
    ),
    (
        ApiKey::ListPartitionReassignments,
        list_partition_reassignments::VERSIONS,
    ),
    (ApiKey::DescribeCluster, describe_cluster::VERSIONS),
    (ApiKey::DescribeQuorum, describe_quorum::VERSIONS),
    (ApiKey::UnregisterBroker, unregister_broker::VERSIONS),
    (ApiKey::AddRaftVoter, add_raft_voter::VERSIONS),
    (ApiKey::RemoveRaftVoter, remove_raft_voter::VERSIONS),
    (ApiKey::DescribeProducers, describe_producers::VERSIONS),
    (ApiKey::WriteTxnMarkers, write_txn_markers::VERSIONS),
    (ApiKey::AddPartitionsToTxn, add_partitions_to_txn::VERSIONS),
    (ApiKey::AddOffsetsToTxn, add_offsets_to_txn::VERSIONS),
    (ApiKey::EndTxn, end_txn::VERSIONS),
    (ApiKey::TxnOffsetCommit, txn_offset_commit::VERSIONS),
    (ApiKey::FindCoordinator, find_coordinator::VERSIONS),
    (ApiKey::JoinGroup, join_group::VERSIONS),
    (ApiKey::SyncGroup, sync_group::VERSIONS),
    (ApiKey::Heartbeat, heartbeat::VERSIONS),
    (ApiKey::LeaveGroup, leave_group::VERSIONS),
    (ApiKey::OffsetCommit, offset_commit::VERSIONS),
    (ApiKey::OffsetFetch, offset_fetch::VERSIONS),
    (ApiKey::DescribeGroups, describe_groups::VERSIONS),
    (ApiKey::ListGroups, list_groups::VERSIONS),
    (ApiKey::DeleteGroups, delete_groups::VERSIONS),
    (ApiKey::OffsetDelete, offset_delete::VERSIONS),
    (
        ApiKey::ConsumerGroupHeartbeat,
        consumer_group_heartbeat::VERSIONS,
    ),
    (
        ApiKey::ConsumerGroupDescribe,
        consumer_group_describe::VERSIONS,
    ),
    (
        ApiKey::GetTelemetrySubscriptions,
        get_telemetry_subscriptions::VERSIONS,
    ),
    (ApiKey::PushTelemetry, push_telemetry::VERSIONS),
    (ApiKey::ListConfigResources, list_config_resources::VERSIONS),
    (
        ApiKey::DescribeUserScramCredentials,
        describe_user_scram_credentials::VERSIONS,
    ),
    (
        ApiKey::AlterUserScramCredentials,
        alter_user_scram_credentials::VERSIONS,
    ),
    (
        ApiKey::DescribeTopicPartitions,
        describe_topic_partitions::VERSIONS,
    ),
];

/// The version range we serve for an API, if any.
pub fn supported(api: ApiKey) -> Option<VersionRange> {
    APIS.iter().find(|(k, _)| *k == api).map(|(_, r)| *r)
}

fn respond<T: Encodable>(ctx: &Ctx, resp: &T) -> Outcome {
    match encode_response(ctx.api_key, ctx.version, ctx.correlation_id, resp) {
        Ok(b) => Outcome::Respond(b),
        Err(e) => {
            warn!(api = ?ctx.api_key, version = ctx.version, error = %e, "cannot encode response");
            Outcome::Close(format!(
                "cannot encode {:?} v{} response: {e}",
                ctx.api_key, ctx.version
            ))
        }
    }
}

/// A Fetch response goes out with its record sets by reference: fetched bytes are not
/// copied into the response buffer.
fn respond_fetch(ctx: &Ctx, reply: &fetch::FetchReply) -> Outcome {
    let resp = &reply.response;
    let records = resp
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .filter_map(|p| p.records.clone())
        .collect();
    let files = reply.files.clone();
    match encode_response_splicing(
        ctx.api_key,
        ctx.version,
        ctx.correlation_id,
        resp,
        records,
        files,
    ) {
        Ok(r) => Outcome::Respond(r),
        Err(e) => {
            warn!(api = ?ctx.api_key, version = ctx.version, error = %e, "cannot encode response");
            Outcome::Close(format!(
                "cannot encode Fetch v{} response: {e}",
                ctx.version
            ))
        }
    }
}

macro_rules! run {
    ($ctx:expr, $body:expr, $req:ty, $module:ident) => {
        run!($ctx, $body, $req, $module, respond)
    };
    ($ctx:expr, $body:expr, $req:ty, $module:ident, $respond:ident) => {{
        let ctx = $ctx;
        let mut body = $body;
        let req: $req = match decode_body(ctx.api_key, ctx.version, &mut body) {
            Ok(r) => r,
            Err(e) => return Err(e.to_string()),
        };
        Ok(Box::pin(async move {
            let resp = $module::handle(&ctx, req).await;
            $respond(&ctx, &resp)
        }) as Pending)
    }};
}

/// A SaslHandshake or SaslAuthenticate on a SASL listener: decoded and answered at once
/// (the session's state changes in request order); a refusal is answered and then
/// closes the connection (after `connection.failed.authentication.delay.ms`).
pub fn start_sasl(
    ctx: Ctx,
    body: Bytes,
    session: &mut crate::server::session::Session,
) -> Result<Pending, String> {
    crate::metrics_cache::requests(ctx.api_key, ctx.version).increment(1);
    if !supported(ctx.api_key).is_some_and(|r| ctx.version >= r.min && ctx.version <= r.max) {
        return Err(format!(
            "unsupported version {} of {:?} from client {:?}",
            ctx.version, ctx.api_key, ctx.client_id
        ));
    }
    let mut body = body;
    let (outcome, close) = if ctx.api_key == ApiKey::SaslHandshake {
        let req: SaslHandshakeRequest =
            decode_body(ctx.api_key, ctx.version, &mut body).map_err(|e| e.to_string())?;
        let (resp, close) = sasl_handshake::handle_in_session(&ctx, req, session);
        (respond(&ctx, &resp), close)
    } else {
        let req: SaslAuthenticateRequest =
            decode_body(ctx.api_key, ctx.version, &mut body).map_err(|e| e.to_string())?;
        let a = sasl_authenticate::handle_in_session(&ctx, req, session);
        (respond(&ctx, &a.response), a.failed)
    };
    let outcome = match (outcome, close) {
        (Outcome::Respond(r), Some(reason)) => Outcome::RespondThenClose(r, reason),
        (outcome, _) => outcome,
    };
    Ok(Box::pin(std::future::ready(outcome)))
}

/// Decode a request and start it. `Err` means the connection must close (as Kafka does
/// for unknown APIs, unsupported versions and malformed requests).
pub fn start(ctx: Ctx, body: Bytes) -> Result<Pending, String> {
    let version = ctx.version;
    crate::metrics_cache::requests(ctx.api_key, version).increment(1);
    debug!(api = ?ctx.api_key, version, correlation_id = ctx.correlation_id, client_id = %ctx.client_id, peer = %ctx.peer, "request");
    let range = supported(ctx.api_key);
    let in_range = range.is_some_and(|r| version >= r.min && version <= r.max);
    if ctx.api_key == ApiKey::ApiVersions && !in_range {
        // KIP-511: answer at v0 with UNSUPPORTED_VERSION and our ranges.
        let resp = api_versions::unsupported_version_response();
        return Ok(Box::pin(async move {
            match encode_response(ApiKey::ApiVersions, 0, ctx.correlation_id, &resp) {
                Ok(b) => Outcome::Respond(b),
                Err(e) => Outcome::Close(e),
            }
        }));
    }
    if !in_range {
        return Err(format!(
            "unsupported version {version} of {:?} from client {:?}",
            ctx.api_key, ctx.client_id
        ));
    }
    match ctx.api_key {
        ApiKey::Produce => {
            let mut body = body;
            let req: ProduceRequest =
                decode_body(ctx.api_key, version, &mut body).map_err(|e| e.to_string())?;
            Ok(produce::start(ctx, req))
        }
        ApiKey::Fetch => run!(ctx, body, FetchRequest, fetch, respond_fetch),
        ApiKey::ListOffsets => run!(ctx, body, ListOffsetsRequest, list_offsets),
        ApiKey::Metadata => run!(ctx, body, MetadataRequest, metadata),
        ApiKey::ApiVersions => run!(ctx, body, ApiVersionsRequest, api_versions),
        ApiKey::CreateTopics => run!(ctx, body, CreateTopicsRequest, create_topics),
        ApiKey::DeleteTopics => run!(ctx, body, DeleteTopicsRequest, delete_topics),
        ApiKey::DeleteRecords => run!(ctx, body, DeleteRecordsRequest, delete_records),
        ApiKey::InitProducerId => run!(ctx, body, InitProducerIdRequest, init_producer_id),
        ApiKey::OffsetForLeaderEpoch => run!(
            ctx,
            body,
            OffsetForLeaderEpochRequest,
            offset_for_leader_epoch
        ),
        ApiKey::DescribeConfigs => run!(ctx, body, DescribeConfigsRequest, describe_configs),
        ApiKey::AlterConfigs => run!(ctx, body, AlterConfigsRequest, alter_configs),
        ApiKey::AlterReplicaLogDirs => run!(
            ctx,
            body,
            AlterReplicaLogDirsRequest,
            alter_replica_log_dirs
        ),
        ApiKey::DescribeLogDirs => run!(ctx, body, DescribeLogDirsRequest, describe_log_dirs),
        ApiKey::CreatePartitions => run!(ctx, body, CreatePartitionsRequest, create_partitions),
        ApiKey::IncrementalAlterConfigs => run!(
            ctx,
            body,
            IncrementalAlterConfigsRequest,
            incremental_alter_configs
        ),
        ApiKey::DescribeCluster => run!(ctx, body, DescribeClusterRequest, describe_cluster),
        ApiKey::DescribeQuorum => run!(ctx, body, DescribeQuorumRequest, describe_quorum),
        ApiKey::GetTelemetrySubscriptions => run!(
            ctx,
            body,
            GetTelemetrySubscriptionsRequest,
            get_telemetry_subscriptions
        ),
        ApiKey::PushTelemetry => run!(ctx, body, PushTelemetryRequest, push_telemetry),
        ApiKey::ListConfigResources => {
            run!(ctx, body, ListConfigResourcesRequest, list_config_resources)
        }
        ApiKey::DescribeTopicPartitions => run!(
            ctx,
            body,
            DescribeTopicPartitionsRequest,
            describe_topic_partitions
        ),
        ApiKey::UnregisterBroker => run!(ctx, body, UnregisterBrokerRequest, unregister_broker),
        ApiKey::AddRaftVoter => run!(ctx, body, AddRaftVoterRequest, add_raft_voter),
        ApiKey::RemoveRaftVoter => run!(ctx, body, RemoveRaftVoterRequest, remove_raft_voter),
        ApiKey::DescribeProducers => run!(ctx, body, DescribeProducersRequest, describe_producers),
        ApiKey::WriteTxnMarkers => run!(ctx, body, WriteTxnMarkersRequest, write_txn_markers),
        ApiKey::AddPartitionsToTxn => {
            run!(ctx, body, AddPartitionsToTxnRequest, add_partitions_to_txn)
        }
        ApiKey::AddOffsetsToTxn => run!(ctx, body, AddOffsetsToTxnRequest, add_offsets_to_txn),
        ApiKey::EndTxn => run!(ctx, body, EndTxnRequest, end_txn),
        ApiKey::TxnOffsetCommit => run!(ctx, body, TxnOffsetCommitRequest, txn_offset_commit),
        ApiKey::FindCoordinator => run!(ctx, body, FindCoordinatorRequest, find_coordinator),
        ApiKey::JoinGroup => run!(ctx, body, JoinGroupRequest, join_group),
        ApiKey::SyncGroup => run!(ctx, body, SyncGroupRequest, sync_group),
        ApiKey::Heartbeat => run!(ctx, body, HeartbeatRequest, heartbeat),
        ApiKey::LeaveGroup => run!(ctx, body, LeaveGroupRequest, leave_group),
        ApiKey::OffsetCommit => run!(ctx, body, OffsetCommitRequest, offset_commit),
        ApiKey::OffsetFetch => run!(ctx, body, OffsetFetchRequest, offset_fetch),
        ApiKey::DescribeGroups => run!(ctx, body, DescribeGroupsRequest, describe_groups),
        ApiKey::ListGroups => run!(ctx, body, ListGroupsRequest, list_groups),
        ApiKey::DeleteGroups => run!(ctx, body, DeleteGroupsRequest, delete_groups),
        ApiKey::OffsetDelete => run!(ctx, body, OffsetDeleteRequest, offset_delete),
        ApiKey::ConsumerGroupHeartbeat => run!(
            ctx,
            body,
            ConsumerGroupHeartbeatRequest,
            consumer_group_heartbeat
        ),
        ApiKey::ConsumerGroupDescribe => run!(
            ctx,
            body,
            ConsumerGroupDescribeRequest,
            consumer_group_describe
        ),
        ApiKey::ElectLeaders => run!(ctx, body, ElectLeadersRequest, elect_leaders),
        ApiKey::AlterPartitionReassignments => run!(
            ctx,
            body,
            AlterPartitionReassignmentsRequest,
            alter_partition_reassignments
        ),
        ApiKey::ListPartitionReassignments => run!(
            ctx,
            body,
            ListPartitionReassignmentsRequest,
            list_partition_reassignments
        ),
        ApiKey::DescribeUserScramCredentials => run!(
            ctx,
            body,
            DescribeUserScramCredentialsRequest,
            describe_user_scram_credentials
        ),
        ApiKey::AlterUserScramCredentials => run!(
            ctx,
            body,
            AlterUserScramCredentialsRequest,
            alter_user_scram_credentials
        ),
        ApiKey::SaslHandshake => run!(ctx, body, SaslHandshakeRequest, sasl_handshake),
        ApiKey::SaslAuthenticate => run!(ctx, body, SaslAuthenticateRequest, sasl_authenticate),
        ApiKey::DescribeAcls => run!(ctx, body, DescribeAclsRequest, describe_acls),
        ApiKey::CreateAcls => run!(ctx, body, CreateAclsRequest, create_acls),
        ApiKey::DeleteAcls => run!(ctx, body, DeleteAclsRequest, delete_acls),
        other => Err(format!("{other:?} is not served")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_stays_within_what_the_codec_encodes() {
        for (key, range) in APIS {
            let codec = key.valid_versions();
            assert!(
                range.min >= codec.min && range.max <= codec.max,
                "{key:?} {range:?} vs {codec:?}"
            );
            assert!(range.min <= range.max, "{key:?}");
        }
        let mut keys: Vec<i16> = APIS.iter().map(|(k, _)| *k as i16).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), APIS.len(), "an API is registered twice");
    }

    #[test]
    fn api_versions_table_is_the_registry() {
        let resp = api_versions::table();
        assert_eq!(resp.len(), APIS.len());
        for (k, r) in APIS {
            let e = resp
                .iter()
                .find(|e| e.api_key == *k as i16)
                .expect("advertised");
            assert_eq!((e.min_version, e.max_version), (r.min, r.max));
        }
    }
}

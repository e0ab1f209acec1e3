//! WriteTxnMarkers (key 27), v1: a transaction coordinator asks the leaders of a
//! transaction's partitions to write its COMMIT or ABORT marker. Each partition is
//! written as leader with acks=all (the coordinator retries a partition until its marker
//! is replicated), and answered with Kafka's errors: NOT_LEADER_OR_FOLLOWER,
//! UNKNOWN_TOPIC_OR_PARTITION, NOT_ENOUGH_REPLICAS, INVALID_PRODUCER_EPOCH for a marker of
//! an older producer epoch, TRANSACTION_COORDINATOR_FENCED for one from an older
//! coordinator. A marker in a `__consumer_offsets` partition also commits (or drops) the
//! producer's pending transactional offsets there. Only brokers send it: CLUSTER_ACTION
//! on the cluster (CLUSTER_AUTHORIZATION_FAILED for every partition otherwise).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;
use crate::authorizer::Operation;
use crate::log::batch::control::TxnMarker;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 1 };

pub async fn handle(ctx: &Ctx, req: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let allowed = ctx.authorize_cluster(Operation::ClusterAction);
    let mut outcomes = Vec::new();
    for m in &req.markers {
        let marker = TxnMarker {
            commit: m.transaction_result,
            coordinator_epoch: m.coordinator_epoch,
        };
        let parts: Vec<(String, i32)> = m
            .topics
            .iter()
            .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
            .collect();
        let codes = if allowed {
            crate::txn::markers::write_led(
                &ctx.state.replicas,
                &ctx.state.groups,
                m.producer_id.0,
                m.producer_epoch,
                marker,
                &parts,
            )
            .await
        } else {
            vec![ResponseError::ClusterAuthorizationFailed.code(); parts.len()]
        };
        for c in &codes {
            ctx.note_error(*c);
        }
        outcomes.extend(codes);
    }
    let mut codes = outcomes.into_iter();
    let markers = req
        .markers
        .into_iter()
        .map(|m| {
            let topics = m
                .topics
                .into_iter()
                .map(|t| {
                    let partitions = t
                        .partition_indexes
                        .iter()
                        .map(|&p| {
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(p)
                                .with_error_code(codes.next().unwrap_or(0))
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default()
                        .with_name(t.name)
                        .with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics)
        })
        .collect();
    WriteTxnMarkersResponse::default().with_markers(markers)
}

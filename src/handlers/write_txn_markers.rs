//! WriteTxnMarkers (key 27), v1: a transaction coordinator asks the leaders of a
//! transaction's partitions to write its COMMIT or ABORT marker. Each partition is
//! written as leader with acks=all (the coordinator retries a partition until its marker
//! is replicated), and answered with Kafka's errors: NOT_LEADER_OR_FOLLOWER,
//! UNKNOWN_TOPIC_OR_PARTITION, NOT_ENOUGH_REPLICAS, INVALID_PRODUCER_EPOCH for a marker of
//! an older producer epoch, TRANSACTION_COORDINATOR_FENCED for one from an older
//! coordinator. Only brokers send it: CLUSTER_ACTION on the cluster
//! (CLUSTER_AUTHORIZATION_FAILED for every partition otherwise).

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;
use crate::authorizer::Operation;
use crate::errors::KafkaError;
use crate::log::batch::control::TxnMarker;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 1 };

/// How long a marker waits for the in-sync replicas (Kafka's request.timeout.ms default).
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn handle(ctx: &Ctx, req: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let allowed = ctx.authorize_cluster(Operation::ClusterAction);
    let image = ctx.state.controller.image();
    // Every marker is written first, then all are awaited together.
    let mut written = Vec::new();
    for m in &req.markers {
        let marker = TxnMarker {
            commit: m.transaction_result,
            coordinator_epoch: m.coordinator_epoch,
        };
        for t in &m.topics {
            for &p in &t.partition_indexes {
                let pending = if !allowed {
                    Err(KafkaError::new(ResponseError::ClusterAuthorizationFailed))
                } else {
                    ctx.state.replicas.append_marker(
                        &image,
                        &t.name,
                        p,
                        m.producer_id.0,
                        m.producer_epoch,
                        marker,
                    )
                };
                written.push(pending);
            }
        }
    }
    let mut outcomes = Vec::with_capacity(written.len());
    for w in written {
        let code = match w {
            Ok(pending) => match pending.complete(MARKER_TIMEOUT).await {
                Ok(()) => 0,
                Err(e) => e.code,
            },
            Err(e) => e.code,
        };
        ctx.note_error(code);
        outcomes.push(code);
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

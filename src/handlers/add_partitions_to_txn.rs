//! AddPartitionsToTxn (key 24), v0–v5. v0–v3: a transactional producer adds the
//! partitions it is about to write to its ongoing transaction. v4+: a batch of
//! transactions, each either an add like v3 or, from a broker, a check that the
//! partitions are in the transaction (`verify_only`, KIP-890); v4+ needs CLUSTER_ACTION.
//!
//! A client's transaction needs WRITE on its transactional id and on every topic; a
//! partition that is unknown or refused fails with its error and the others with
//! OPERATION_NOT_ATTEMPTED, and nothing is added, as in Kafka.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TopicName, TransactionalId,
};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;
use crate::authorizer::{Operation, ResourceType};
use crate::txn::TopicPartition;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// One transaction of the request.
struct Txn {
    id: String,
    producer_id: i64,
    epoch: i16,
    verify_only: bool,
    topics: Vec<AddPartitionsToTxnTopic>,
}

pub async fn handle(ctx: &Ctx, req: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse {
    if ctx.version < 4 {
        let txn = Txn {
            id: req.v3_and_below_transactional_id.to_string(),
            producer_id: req.v3_and_below_producer_id.0,
            epoch: req.v3_and_below_producer_epoch,
            verify_only: false,
            topics: req.v3_and_below_topics,
        };
        let results = add(ctx, &txn).await;
        return AddPartitionsToTxnResponse::default()
            .with_results_by_topic_v3_and_below(topic_results(&txn.topics, &results));
    }
    if !ctx.authorize_cluster(Operation::ClusterAction) {
        ctx.note_error(ResponseError::ClusterAuthorizationFailed.code());
        return AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let mut out = Vec::with_capacity(req.transactions.len());
    for t in req.transactions {
        let txn = Txn {
            id: t.transactional_id.to_string(),
            producer_id: t.producer_id.0,
            epoch: t.producer_epoch,
            verify_only: t.verify_only,
            topics: t.topics,
        };
        let results = add(ctx, &txn).await;
        out.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(TransactionalId(txn.id.clone().into()))
                .with_topic_results(topic_results(&txn.topics, &results)),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(out)
}

/// The error code of each partition of `txn`, in request order.
async fn add(ctx: &Ctx, txn: &Txn) -> Vec<i16> {
    let partitions: Vec<TopicPartition> = txn
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
        .collect();
    let all = |e: ResponseError| {
        let e = crate::errors::fenced_for_version(e, ctx.version, 2);
        vec![e.code(); partitions.len()]
    };
    if txn.id.is_empty() {
        return all(ResponseError::InvalidRequest);
    }
    // Clients (v0–v3) need WRITE on the transactional id and the topics; v4+ comes from
    // brokers, trusted through CLUSTER_ACTION.
    let client = ctx.version < 4;
    if client && !ctx.authorize(Operation::Write, ResourceType::TransactionalId, &txn.id) {
        return all(ResponseError::TransactionalIdAuthorizationFailed);
    }
    let image = ctx.state.controller.image();
    let checks: Vec<Option<ResponseError>> = partitions
        .iter()
        .map(|(t, p)| {
            if client && !ctx.authorize(Operation::Write, ResourceType::Topic, t) {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if image.partition(t, *p).is_none() {
                Some(ResponseError::UnknownTopicOrPartition)
            } else {
                None
            }
        })
        .collect();
    if checks.iter().any(Option::is_some) {
        let codes: Vec<i16> = checks
            .into_iter()
            .map(|c| c.unwrap_or(ResponseError::OperationNotAttempted).code())
            .collect();
        note(ctx, &codes);
        return codes;
    }
    let txns = &ctx.state.transactions;
    let codes = if txn.verify_only {
        match txns
            .read(&txn.id, |c| {
                c.verify_partitions(&txn.id, txn.producer_id, txn.epoch, &partitions)
            })
            .await
        {
            Ok(v) => v
                .into_iter()
                .map(|(_, e)| e.map_or(0, |e| e.code()))
                .collect(),
            Err(e) => all(e),
        }
    } else {
        let now_add = |c: &mut crate::txn::TxnCoordinator, now| {
            c.add_partitions(&txn.id, txn.producer_id, txn.epoch, &partitions, now)
        };
        match txns.run(&txn.id, now_add).await {
            Ok(Ok(())) => vec![0; partitions.len()],
            Ok(Err(e)) | Err(e) => all(e),
        }
    };
    note(ctx, &codes);
    codes
}

fn note(ctx: &Ctx, codes: &[i16]) {
    if let Some(&c) = codes.iter().find(|&&c| c != 0) {
        ctx.note_error(c);
    }
}

fn topic_results(
    topics: &[AddPartitionsToTxnTopic],
    codes: &[i16],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut codes = codes.iter();
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(TopicName(t.name.0.clone()))
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|&p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(p)
                                .with_partition_error_code(codes.next().copied().unwrap_or(0))
                        })
                        .collect(),
                )
        })
        .collect()
}

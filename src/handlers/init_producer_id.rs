//! InitProducerId (key 22), v0–v5, for idempotent producers: a fresh producer id at
//! epoch 0 from a block allocated through the metadata log. Transactional ids need the
//! transaction coordinator, which Weir does not have yet; they are refused.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;
use tracing::warn;

use super::Ctx;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

pub async fn handle(ctx: &Ctx, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let fail = |code: i16| {
        ctx.note_error(code);
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    match req.transactional_id.as_deref() {
        None => {}
        // Kafka refuses an empty transactional id outright.
        Some(id) if id.is_empty() => return fail(ResponseError::InvalidRequest.code()),
        Some(_) => return fail(ResponseError::TransactionalIdAuthorizationFailed.code()),
    }
    // An idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some
    // topic (KIP-679).
    use crate::authorizer::{Operation, ResourceType};
    if !ctx.allowed(
        Operation::IdempotentWrite,
        ResourceType::Cluster,
        crate::authorizer::CLUSTER_NAME,
    ) && !ctx.authorize_any(Operation::Write, ResourceType::Topic)
    {
        return fail(ResponseError::ClusterAuthorizationFailed.code());
    }
    // Without a transactional id Kafka always hands out a new id (the KIP-360 epoch bump
    // applies to transactional producers); an idempotent producer then restarts its
    // sequences at 0.
    match ctx.state.producer_ids.next().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            warn!(error = %e, "cannot allocate a producer id");
            fail(ResponseError::CoordinatorNotAvailable.code())
        }
    }
}

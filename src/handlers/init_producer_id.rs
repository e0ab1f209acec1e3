//! InitProducerId (key 22), v0–v5. Without a transactional id (an idempotent producer): a
//! fresh producer id at epoch 0 from a block allocated through the metadata log. With one:
//! the transaction coordinator's answer (the id's producer id with its epoch bumped,
//! fencing the previous instance; KIP-360's expected id and epoch from v3), which needs
//! WRITE on the transactional id.

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
    match req.transactional_id.as_deref().map(|s| s.as_str()) {
        None => {}
        // Kafka refuses an empty transactional id outright.
        Some("") => return fail(ResponseError::InvalidRequest.code()),
        Some(id) => {
            use crate::authorizer::{Operation, ResourceType};
            if !ctx.authorize(Operation::Write, ResourceType::TransactionalId, id) {
                return fail(ResponseError::TransactionalIdAuthorizationFailed.code());
            }
            return match transactional(ctx, id, &req).await {
                Ok((pid, epoch)) => InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch),
                Err(e) => fail(crate::errors::fenced_for_version(e, ctx.version, 4).code()),
            };
        }
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

/// The transaction coordinator's InitProducerId for `id`.
async fn transactional(
    ctx: &Ctx,
    id: &str,
    req: &InitProducerIdRequest,
) -> Result<(i64, i16), ResponseError> {
    // The coordinator needs a new producer id for a new transactional id (or one whose
    // epochs ran out); one is taken each time, since only the state machine knows.
    let fresh = ctx.state.producer_ids.next().await.map_err(|e| {
        warn!(error = %e, "cannot allocate a producer id");
        ResponseError::CoordinatorNotAvailable
    })?;
    let expected = (req.producer_id.0 >= 0).then_some((req.producer_id.0, req.producer_epoch));
    let init = crate::txn::InitProducerId {
        transactional_id: id.to_string(),
        timeout_ms: req.transaction_timeout_ms,
        expected,
        fresh_producer_id: fresh,
    };
    ctx.state
        .transactions
        .run(id, |c, now| c.init_producer_id(&init, now))
        .await?
}

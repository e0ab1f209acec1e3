//! AddOffsetsToTxn (key 25), v0–v4: a transactional producer that is about to commit a
//! consumer group's offsets in its transaction (TxnOffsetCommit) adds the group's
//! `__consumer_offsets` partition to the transaction, so the transaction's marker makes
//! the offsets visible. Needs WRITE on the transactional id and READ on the group.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;
use crate::authorizer::{Operation, ResourceType};
use crate::group::{manager::partition_for, OFFSETS_TOPIC};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

pub async fn handle(ctx: &Ctx, req: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let code = add(ctx, &req).await.err().map_or(0, |e| {
        crate::errors::fenced_for_version(e, ctx.version, 2).code()
    });
    ctx.note_error(code);
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

async fn add(ctx: &Ctx, req: &AddOffsetsToTxnRequest) -> Result<(), ResponseError> {
    let id = req.transactional_id.as_str();
    let group = req.group_id.as_str();
    if id.is_empty() {
        return Err(ResponseError::InvalidRequest);
    }
    if !ctx.authorize(Operation::Write, ResourceType::TransactionalId, id) {
        return Err(ResponseError::TransactionalIdAuthorizationFailed);
    }
    if !ctx.authorize(Operation::Read, ResourceType::Group, group) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    let image = ctx.state.controller.image();
    let partition = (
        OFFSETS_TOPIC.to_string(),
        partition_for(group, ctx.state.groups.num_partitions(&image)),
    );
    let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
    ctx.state
        .transactions
        .run(id, |c, now| {
            c.add_partitions(id, pid, epoch, std::slice::from_ref(&partition), now)
        })
        .await?
}

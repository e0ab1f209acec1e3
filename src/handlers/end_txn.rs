//! EndTxn (key 26), v0–v4: a transactional producer commits or aborts its ongoing
//! transaction. The answer comes once the coordinator's PrepareCommit or PrepareAbort is
//! durable; the markers are then written to every partition of the transaction in the
//! background (a read_committed consumer sees the commit as each marker lands). Needs
//! WRITE on the transactional id. v5 (transactions v2, an epoch bump on every end) is not
//! served: this broker finalizes transaction.version 1.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;
use crate::authorizer::{Operation, ResourceType};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

pub async fn handle(ctx: &Ctx, req: EndTxnRequest) -> EndTxnResponse {
    let code = end(ctx, &req).await.err().map_or(0, |e| {
        crate::errors::fenced_for_version(e, ctx.version, 2).code()
    });
    ctx.note_error(code);
    EndTxnResponse::default().with_error_code(code)
}

async fn end(ctx: &Ctx, req: &EndTxnRequest) -> Result<(), ResponseError> {
    let id = req.transactional_id.as_str();
    if id.is_empty() {
        return Err(ResponseError::InvalidRequest);
    }
    if !ctx.authorize(Operation::Write, ResourceType::TransactionalId, id) {
        return Err(ResponseError::TransactionalIdAuthorizationFailed);
    }
    let (pid, epoch, commit) = (req.producer_id.0, req.producer_epoch, req.committed);
    ctx.state
        .transactions
        .run(id, |c, now| c.end_txn(id, pid, epoch, commit, now))
        .await?
}

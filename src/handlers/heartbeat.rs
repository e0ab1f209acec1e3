//! Heartbeat (key 12), v0–v4: keeps a classic-group member's session alive and tells it
//! when a rebalance is in progress (REBALANCE_IN_PROGRESS means: rejoin).

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;
use crate::group;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

pub async fn handle(ctx: &Ctx, req: HeartbeatRequest) -> HeartbeatResponse {
    let group_id = req.group_id.to_string();
    if let Some(code) = ctx.refuse_group(crate::authorizer::Operation::Read, &group_id) {
        return HeartbeatResponse::default().with_error_code(code);
    }
    let hb = group::HeartbeatRequest {
        group_id: group_id.clone(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        now_ms: 0,
    };
    let result = ctx
        .state
        .groups
        .run(&group_id, |c, now| {
            c.heartbeat(group::HeartbeatRequest { now_ms: now, ..hb })
        })
        .await;
    let code = match result {
        Ok(e) => e.map_or(0, |e| e.code()),
        Err(e) => e.code(),
    };
    ctx.note_error(code);
    HeartbeatResponse::default().with_error_code(code)
}

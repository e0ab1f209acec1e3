//! SyncGroup (key 14), v0–v5: the leader hands in the assignment and every member gets
//! its share (an empty assignment is a valid one). Followers are parked until the
//! leader's assignment arrives; v5+ checks the protocol type and name.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::group::{Reply, SyncRequest, SyncResponse};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

pub async fn handle(ctx: &Ctx, req: SyncGroupRequest) -> SyncGroupResponse {
    let group_id = req.group_id.to_string();
    if let Some(code) = ctx.refuse_group(crate::authorizer::Operation::Read, &group_id) {
        return SyncGroupResponse::default().with_error_code(code);
    }
    let groups = &ctx.state.groups;
    let (reply_to, rx) = groups.park(&group_id);
    let sync = SyncRequest {
        group_id: group_id.clone(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        protocol_type: req.protocol_type.as_ref().map(|s| s.to_string()),
        protocol_name: req.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: req
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.to_vec()))
            .collect(),
        reply_to,
        now_ms: 0,
    };
    let started = groups
        .run(&group_id, |c, now| {
            (
                (),
                c.sync(SyncRequest {
                    now_ms: now,
                    ..sync
                }),
            )
        })
        .await;
    let reply = match started {
        Err(e) => {
            groups.unpark(reply_to);
            SyncResponse::error(e)
        }
        Ok(()) => match rx.await {
            Ok(Reply::Sync(r)) => r,
            Ok(Reply::Join(_)) => SyncResponse::error(ResponseError::UnknownServerError),
            Err(_) => SyncResponse::error(ResponseError::NotCoordinator),
        },
    };
    let code = reply.error.map_or(0, |e| e.code());
    ctx.note_error(code);
    SyncGroupResponse::default()
        .with_error_code(code)
        .with_protocol_type(reply.protocol_type.as_deref().map(s))
        .with_protocol_name(reply.protocol_name.as_deref().map(s))
        .with_assignment(reply.assignment.into())
}

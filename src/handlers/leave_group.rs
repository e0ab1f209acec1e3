//! LeaveGroup (key 13), v0–v5: members leave a classic group (v3+ several at once, by
//! member id or `group.instance.id`), which triggers a rebalance for the rest.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::VersionRange;
use tracing::debug;

use super::util::{code, s};
use super::Ctx;
use crate::group::{LeaveRequest, LeavingMember};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

pub async fn handle(ctx: &Ctx, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let group_id = req.group_id.to_string();
    if let Some(code) = ctx.refuse_group(crate::authorizer::Operation::Read, &group_id) {
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let members: Vec<LeavingMember> = if ctx.version >= 3 {
        req.members
            .iter()
            .map(|m| {
                if let Some(reason) = &m.reason {
                    debug!(group = %group_id, member = %m.member_id, %reason, "leave");
                }
                LeavingMember {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                }
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: req.member_id.to_string(),
            group_instance_id: None,
        }]
    };
    let leave = LeaveRequest {
        group_id: group_id.clone(),
        members,
        now_ms: 0,
    };
    let result = ctx
        .state
        .groups
        .run(&group_id, |c, now| {
            c.leave(LeaveRequest {
                now_ms: now,
                ..leave
            })
        })
        .await;
    let resp = match result {
        Ok(r) => r,
        Err(e) => {
            ctx.note_error(e.code());
            return LeaveGroupResponse::default().with_error_code(e.code());
        }
    };
    let mut error = code(resp.error);
    // Before v3 there are no per-member results: the single member's error is the
    // request's.
    if ctx.version < 3 && error == 0 {
        error = resp.members.first().map_or(0, |(_, _, e)| code(*e));
    }
    ctx.note_error(error);
    let members = if ctx.version >= 3 {
        resp.members
            .into_iter()
            .map(|(member_id, instance, e)| {
                ctx.note_error(code(e));
                MemberResponse::default()
                    .with_member_id(s(&member_id))
                    .with_group_instance_id(instance.as_deref().map(s))
                    .with_error_code(code(e))
            })
            .collect()
    } else {
        Vec::new()
    };
    LeaveGroupResponse::default()
        .with_error_code(error)
        .with_members(members)
}

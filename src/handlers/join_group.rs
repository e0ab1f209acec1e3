//! JoinGroup (key 11), v0–v9: a member joins a classic group and is parked until the
//! rebalance completes; the leader's reply carries every member's subscription. v4+
//! first answers MEMBER_ID_REQUIRED with an id the member must rejoin with; v5+ carries
//! `group.instance.id` (static membership).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::VersionRange;
use tracing::debug;

use super::util::{client_host, s};
use super::Ctx;
use crate::group::{JoinRequest, JoinResponse, Reply};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 9 };

pub async fn handle(ctx: &Ctx, req: JoinGroupRequest) -> JoinGroupResponse {
    let group_id = req.group_id.to_string();
    let member_id = req.member_id.to_string();
    if !ctx.authorize(
        crate::authorizer::Operation::Read,
        crate::authorizer::ResourceType::Group,
        &group_id,
    ) {
        return response(
            ctx,
            JoinResponse::error(&member_id, ResponseError::GroupAuthorizationFailed),
        );
    }
    if let Some(reason) = &req.reason {
        debug!(group = %group_id, member = %member_id, %reason, "join");
    }
    let groups = &ctx.state.groups;
    let (reply_to, rx) = groups.park(&group_id);
    let join = JoinRequest {
        group_id: group_id.clone(),
        member_id: member_id.clone(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: ctx.client_id.clone(),
        client_host: client_host(&ctx.peer),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout; the session timeout served as both.
        rebalance_timeout_ms: if ctx.version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.to_vec()))
            .collect(),
        require_known_member_id: ctx.version >= 4,
        reply_to,
        now_ms: 0,
    };
    let started = groups
        .run(&group_id, |c, now| {
            (
                (),
                c.join(JoinRequest {
                    now_ms: now,
                    ..join
                }),
            )
        })
        .await;
    let reply = match started {
        Err(e) => {
            groups.unpark(reply_to);
            JoinResponse::error(&member_id, e)
        }
        Ok(()) => match rx.await {
            Ok(Reply::Join(j)) => j,
            Ok(Reply::Sync(_)) => {
                JoinResponse::error(&member_id, ResponseError::UnknownServerError)
            }
            // The coordinator was dropped while the member waited.
            Err(_) => JoinResponse::error(&member_id, ResponseError::NotCoordinator),
        },
    };
    response(ctx, reply)
}

fn response(ctx: &Ctx, r: JoinResponse) -> JoinGroupResponse {
    let code = r.error.map_or(0, |e| e.code());
    ctx.note_error(code);
    // Before v7 the protocol name is not nullable.
    let protocol_name = match r.protocol_name {
        None if ctx.version < 7 => Some(String::new()),
        other => other,
    };
    JoinGroupResponse::default()
        .with_error_code(code)
        .with_generation_id(r.generation_id)
        .with_protocol_type(r.protocol_type.as_deref().map(s))
        .with_protocol_name(protocol_name.as_deref().map(s))
        .with_leader(s(&r.leader))
        .with_member_id(s(&r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(s(&m.member_id))
                        .with_group_instance_id(m.group_instance_id.as_deref().map(s))
                        .with_metadata(m.metadata.into())
                })
                .collect(),
        )
}

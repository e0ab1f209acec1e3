//! DescribeGroups (key 15), v0–v6: state, protocol and members of classic groups. An
//! unknown group (or a `consumer` protocol group) is described as Dead (v0–v5) or with
//! GROUP_ID_NOT_FOUND (v6, KIP-1043), as Kafka does. Needs DESCRIBE on each group
//! (GROUP_AUTHORIZATION_FAILED for the others).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::{code, s};
use super::Ctx;
use crate::authorizer::{Operation, ResourceType, NOT_REQUESTED};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 6 };

pub async fn handle(ctx: &Ctx, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let mut groups = Vec::with_capacity(req.groups.len());
    for group_id in &req.groups {
        let base = DescribedGroup::default()
            .with_group_id(group_id.clone())
            .with_authorized_operations(ctx.authorized_operations(
                ResourceType::Group,
                group_id.as_str(),
                req.include_authorized_operations,
            ));
        if !ctx.authorize(Operation::Describe, ResourceType::Group, group_id.as_str()) {
            let denied = ResponseError::GroupAuthorizationFailed.code();
            ctx.note_error(denied);
            groups.push(base.with_error_code(denied).with_group_state(s("")));
            continue;
        }
        let described = ctx
            .state
            .groups
            .read(group_id, |c| c.describe_group(group_id))
            .await;
        let d = match described {
            Ok(d) => d,
            Err(e) => {
                ctx.note_error(e.code());
                groups.push(base.with_error_code(e.code()).with_group_state(s("")));
                continue;
            }
        };
        // An unknown group, or one of the `consumer` protocol, is Dead here; v6+ also
        // says GROUP_ID_NOT_FOUND.
        let error = match d.state {
            "Dead" if ctx.version >= 6 => ResponseError::GroupIdNotFound.code(),
            "Dead" => 0,
            _ => code(d.error),
        };
        ctx.note_error(error);
        let members = d
            .members
            .into_iter()
            .map(|m| {
                DescribedGroupMember::default()
                    .with_member_id(s(&m.member_id))
                    .with_group_instance_id(m.group_instance_id.as_deref().map(s))
                    .with_client_id(s(&m.client_id))
                    .with_client_host(s(&m.client_host))
                    .with_member_metadata(m.metadata.into())
                    .with_member_assignment(m.assignment.into())
            })
            .collect();
        groups.push(
            base.with_error_code(error)
                .with_error_message(
                    (error != 0 && ctx.version >= 6)
                        .then(|| s(&format!("group {} not found", group_id.as_str()))),
                )
                .with_group_state(s(d.state))
                .with_protocol_type(s(&d.protocol_type))
                .with_protocol_data(s(&d.protocol_name))
                .with_members(members),
        );
    }
    // As Kafka: a group answered with an error carries no authorized operations.
    for g in groups.iter_mut().filter(|g| g.error_code != 0) {
        g.authorized_operations = NOT_REQUESTED;
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

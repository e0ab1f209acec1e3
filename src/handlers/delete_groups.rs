//! DeleteGroups (key 42), v0–v2: removes empty groups and their committed offsets
//! (tombstones in `__consumer_offsets`); a group with members answers NON_EMPTY_GROUP.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::code;
use super::Ctx;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

pub async fn handle(ctx: &Ctx, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for group_id in &req.groups_names {
        let id = group_id.to_string();
        let may_delete = ctx.authorize(
            crate::authorizer::Operation::Delete,
            crate::authorizer::ResourceType::Group,
            &id,
        );
        let error = if !may_delete {
            kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code()
        } else {
            match ctx
                .state
                .groups
                .run(&id, |c, _| c.delete_groups(std::slice::from_ref(&id)))
                .await
            {
                Ok(r) => r.first().map_or(0, |(_, e)| code(*e)),
                Err(e) => e.code(),
            }
        };
        ctx.note_error(error);
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id.clone())
                .with_error_code(error),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}

//! ListGroups (key 16), v0–v5: every group this broker coordinates, filtered by state
//! (v4+) and by type (v5+).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

pub async fn handle(ctx: &Ctx, req: ListGroupsRequest) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_string()).collect();
    let listed = ctx
        .state
        .groups
        .read_all(|c| c.list_groups(&states, &types))
        .await;
    use crate::authorizer::{Operation, ResourceType};
    // DESCRIBE on the cluster lists every group; otherwise those the principal may
    // DESCRIBE.
    let every = ctx.allowed(
        Operation::Describe,
        ResourceType::Cluster,
        crate::authorizer::CLUSTER_NAME,
    );
    let groups = listed
        .into_iter()
        .flatten()
        .filter(|g| every || ctx.allowed(Operation::Describe, ResourceType::Group, &g.group_id))
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(s(&g.group_id)))
                .with_protocol_type(s(&g.protocol_type))
                .with_group_state(s(g.state))
                .with_group_type(s(g.group_type))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

//! DeleteAcls (key 31), v1–3 (Kafka 4 removed v0): remove the bindings each filter
//! matches and tell which. Needs ALTER on the cluster; SECURITY_DISABLED without an
//! authorizer.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::admin::acls::{self, WireAcl};
use crate::authorizer::{Operation, ResourceType, CLUSTER_NAME};
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

pub async fn handle(ctx: &Ctx, req: DeleteAclsRequest) -> DeleteAclsResponse {
    let refused = if !ctx.state.authorizer.enabled() {
        Some(acls::security_disabled())
    } else if !ctx.authorize(Operation::Alter, ResourceType::Cluster, CLUSTER_NAME) {
        Some(KafkaError::new(ResponseError::ClusterAuthorizationFailed))
    } else {
        None
    };
    let results = match refused {
        Some(e) => req.filters.iter().map(|_| Err(e.clone())).collect(),
        None => {
            let filters = req
                .filters
                .iter()
                .map(|f| {
                    acls::filter(&WireAcl {
                        resource_type: f.resource_type_filter,
                        resource_name: f.resource_name_filter.as_ref().map(|n| n.to_string()),
                        pattern_type: f.pattern_type_filter,
                        principal: f.principal_filter.as_ref().map(|p| p.to_string()),
                        host: f.host_filter.as_ref().map(|h| h.to_string()),
                        operation: f.operation,
                        permission: f.permission_type,
                    })
                })
                .collect();
            acls::delete(ctx.state.admin(), filters).await
        }
    };
    let filter_results = results
        .into_iter()
        .map(|r| match r {
            Ok(deleted) => DeleteAclsFilterResult::default().with_matching_acls(
                deleted
                    .into_iter()
                    .map(|b| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.resource_type.code())
                            .with_resource_name(s(&b.resource_name))
                            .with_pattern_type(b.pattern_type.code())
                            .with_principal(s(&b.principal))
                            .with_host(s(&b.host))
                            .with_operation(b.operation.code())
                            .with_permission_type(b.permission.code())
                    })
                    .collect(),
            ),
            Err(e) => {
                ctx.note_error(e.code);
                DeleteAclsFilterResult::default()
                    .with_error_code(e.code)
                    .with_error_message(e.message.as_deref().map(s))
            }
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(filter_results)
}

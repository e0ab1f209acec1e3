//! DescribeAcls (key 29), v1–3 (Kafka 4 removed v0): the bindings a filter matches,
//! grouped by resource pattern. Needs DESCRIBE on the cluster; SECURITY_DISABLED
//! without an authorizer.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::admin::acls::{self, WireAcl};
use crate::authorizer::{Operation, ResourceType, CLUSTER_NAME};
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

pub async fn handle(ctx: &Ctx, req: DescribeAclsRequest) -> DescribeAclsResponse {
    match describe(ctx, &req) {
        Ok(resources) => DescribeAclsResponse::default().with_resources(resources),
        Err(e) => {
            ctx.note_error(e.code);
            DescribeAclsResponse::default()
                .with_error_code(e.code)
                .with_error_message(e.message.as_deref().map(s))
        }
    }
}

fn describe(ctx: &Ctx, req: &DescribeAclsRequest) -> Result<Vec<DescribeAclsResource>, KafkaError> {
    if !ctx.state.authorizer.enabled() {
        return Err(acls::security_disabled());
    }
    if !ctx.authorize(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        return Err(KafkaError::new(ResponseError::ClusterAuthorizationFailed));
    }
    let filter = acls::filter(&WireAcl {
        resource_type: req.resource_type_filter,
        resource_name: req.resource_name_filter.as_ref().map(|n| n.to_string()),
        pattern_type: req.pattern_type_filter,
        principal: req.principal_filter.as_ref().map(|p| p.to_string()),
        host: req.host_filter.as_ref().map(|h| h.to_string()),
        operation: req.operation,
        permission: req.permission_type,
    })?;
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    for b in acls::describe(&ctx.state.controller.image(), &filter) {
        let acl = AclDescription::default()
            .with_principal(s(&b.principal))
            .with_host(s(&b.host))
            .with_operation(b.operation.code())
            .with_permission_type(b.permission.code());
        let same = |r: &DescribeAclsResource| {
            r.resource_type == b.resource_type.code()
                && r.resource_name.as_str() == b.resource_name
                && r.pattern_type == b.pattern_type.code()
        };
        match resources.last_mut().filter(|r| same(r)) {
            Some(r) => r.acls.push(acl),
            None => resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(b.resource_type.code())
                    .with_resource_name(s(&b.resource_name))
                    .with_pattern_type(b.pattern_type.code())
                    .with_acls(vec![acl]),
            ),
        }
    }
    Ok(resources)
}

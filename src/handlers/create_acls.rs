//! CreateAcls (key 30), v1–3 (Kafka 4 removed v0): add ACL bindings, one result per
//! creation; the bindings live in the replicated metadata, in force on every node once
//! applied. Needs ALTER on the cluster; SECURITY_DISABLED without an authorizer.

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::admin::acls::{self, WireAcl};
use crate::authorizer::{Operation, ResourceType, CLUSTER_NAME};
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

pub async fn handle(ctx: &Ctx, req: CreateAclsRequest) -> CreateAclsResponse {
    let refused = if !ctx.state.authorizer.enabled() {
        Some(acls::security_disabled())
    } else if !ctx.authorize(Operation::Alter, ResourceType::Cluster, CLUSTER_NAME) {
        Some(KafkaError::new(
            kafka_protocol::error::ResponseError::ClusterAuthorizationFailed,
        ))
    } else {
        None
    };
    let results: Vec<Result<(), KafkaError>> = match refused {
        Some(e) => req.creations.iter().map(|_| Err(e.clone())).collect(),
        None => {
            let bindings = req
                .creations
                .iter()
                .map(|c| {
                    acls::binding(&WireAcl {
                        resource_type: c.resource_type,
                        resource_name: Some(c.resource_name.to_string()),
                        pattern_type: c.resource_pattern_type,
                        principal: Some(c.principal.to_string()),
                        host: Some(c.host.to_string()),
                        operation: c.operation,
                        permission: c.permission_type,
                    })
                })
                .collect();
            acls::create(ctx.state.admin(), bindings).await
        }
    };
    let results = results
        .into_iter()
        .map(|r| match r {
            Ok(()) => AclCreationResult::default(),
            Err(e) => {
                ctx.note_error(e.code);
                AclCreationResult::default()
                    .with_error_code(e.code)
                    .with_error_message(e.message.as_deref().map(s))
            }
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

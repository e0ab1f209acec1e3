//! `weir acl ...`: ACLs as `kafka-acls.sh` manages them (CreateAcls, DescribeAcls,
//! DeleteAcls): create bindings for a principal, list and delete the ones a filter
//! matches. The broker needs an authorizer (`authorizer.class.name`) for any of it.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::table::render;
use super::{check, Admin, CliError, Report};
use crate::authorizer::acl::{Operation, Permission, ResourceType, CLUSTER_NAME};

/// The resource an ACL names (one of them), and how.
#[derive(Debug, Clone, clap::Args)]
pub struct ResourceArgs {
    #[arg(long)]
    pub topic: Option<String>,
    #[arg(long)]
    pub group: Option<String>,
    /// The cluster (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, IDEMPOTENT_WRITE, configs).
    #[arg(long)]
    pub cluster: bool,
    #[arg(long)]
    pub transactional_id: Option<String>,
    /// A user (CREATE_TOKENS, DESCRIBE_TOKENS).
    #[arg(long)]
    pub user: Option<String>,
    /// The name is a prefix (PREFIXED); default LITERAL (`*` is every resource).
    #[arg(long)]
    pub prefixed: bool,
}

impl ResourceArgs {
    /// (type code, name), `None` when no resource was named.
    fn resource(&self) -> Result<Option<(ResourceType, String)>, CliError> {
        let mut named = Vec::new();
        if let Some(t) = &self.topic {
            named.push((ResourceType::Topic, t.clone()));
        }
        if let Some(g) = &self.group {
            named.push((ResourceType::Group, g.clone()));
        }
        if self.cluster {
            named.push((ResourceType::Cluster, CLUSTER_NAME.to_string()));
        }
        if let Some(t) = &self.transactional_id {
            named.push((ResourceType::TransactionalId, t.clone()));
        }
        if let Some(u) = &self.user {
            named.push((ResourceType::User, u.clone()));
        }
        match named.len() {
            0 => Ok(None),
            1 => Ok(named.pop()),
            _ => Err(CliError::Usage(
                "name one resource: --topic, --group, --cluster, --transactional-id or --user"
                    .into(),
            )),
        }
    }

    fn pattern_code(&self) -> i8 {
        if self.prefixed {
            4
        } else {
            3
        }
    }
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AclCommand {
    /// Add ACLs: PRINCIPAL may (or, with --deny, may not) do each OPERATION on the resource.
    Create {
        /// Who: User:alice, User:* for everyone, User:CN=... for a certificate.
        #[arg(long)]
        principal: String,
        /// From where (* for every address).
        #[arg(long, default_value = "*")]
        host: String,
        /// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION,
        /// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, ALL (repeatable).
        #[arg(long = "operation", required = true)]
        operations: Vec<String>,
        /// A DENY rule instead of ALLOW (DENY wins).
        #[arg(long)]
        deny: bool,
        #[command(flatten)]
        resource: ResourceArgs,
    },
    /// ACLs matching the filter (every ACL without one).
    List {
        #[arg(long)]
        principal: Option<String>,
        #[command(flatten)]
        resource: ResourceArgs,
    },
    /// Delete the ACLs matching the filter (a principal or a resource is needed).
    Delete {
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        operation: Option<String>,
        #[command(flatten)]
        resource: ResourceArgs,
    },
}

fn operation(name: &str) -> Result<Operation, CliError> {
    Operation::parse(name).ok_or_else(|| CliError::Usage(format!("unknown operation {name:?}")))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub async fn run(c: &mut Admin, cmd: &AclCommand) -> Result<Report, CliError> {
    match cmd {
        AclCommand::Create {
            principal,
            host,
            operations,
            deny,
            resource,
        } => {
            let (rt, name) = resource.resource()?.ok_or_else(|| {
                CliError::Usage(
                    "name the resource: --topic, --group, --cluster, --transactional-id or --user"
                        .into(),
                )
            })?;
            let permission = if *deny {
                Permission::Deny
            } else {
                Permission::Allow
            };
            let creations = operations
                .iter()
                .map(|o| {
                    Ok(AclCreation::default()
                        .with_resource_type(rt.code())
                        .with_resource_name(s(&name))
                        .with_resource_pattern_type(resource.pattern_code())
                        .with_principal(s(principal))
                        .with_host(s(host))
                        .with_operation(operation(o)?.code())
                        .with_permission_type(permission.code()))
                })
                .collect::<Result<Vec<_>, CliError>>()?;
            let v = c.version(ApiKey::CreateAcls, 1, 3)?;
            let r: CreateAclsResponse = c
                .call(
                    ApiKey::CreateAcls,
                    v,
                    &CreateAclsRequest::default().with_creations(creations),
                )
                .await?;
            for result in r.results {
                check(result.error_code, result.error_message)?;
            }
            Ok(Report::new(
                format!(
                    "{} ACL(s) added for {principal} on {} {name}",
                    operations.len(),
                    rt.name()
                ),
                json!({"added": operations.len()}),
            ))
        }
        AclCommand::List {
            principal,
            resource,
        } => list(c, principal.as_deref(), resource).await,
        AclCommand::Delete {
            principal,
            operation: op,
            resource,
        } => {
            let named = resource.resource()?;
            if principal.is_none() && named.is_none() {
                return Err(CliError::Usage(
                    "name a --principal or a resource to delete ACLs for".into(),
                ));
            }
            let (rt, name, pattern) = match &named {
                Some((rt, name)) => (rt.code(), Some(s(name)), resource.pattern_code()),
                None => (1, None, 1),
            };
            let filter = DeleteAclsFilter::default()
                .with_resource_type_filter(rt)
                .with_resource_name_filter(name)
                .with_pattern_type_filter(pattern)
                .with_principal_filter(principal.as_deref().map(s))
                .with_host_filter(None)
                .with_operation(
                    op.as_deref()
                        .map(operation)
                        .transpose()?
                        .map_or(1, |o| o.code()),
                )
                .with_permission_type(1);
            let v = c.version(ApiKey::DeleteAcls, 1, 3)?;
            let r: DeleteAclsResponse = c
                .call(
                    ApiKey::DeleteAcls,
                    v,
                    &DeleteAclsRequest::default().with_filters(vec![filter]),
                )
                .await?;
            let mut deleted = 0;
            for f in r.filter_results {
                check(f.error_code, f.error_message)?;
                deleted += f.matching_acls.len();
            }
            Ok(Report::new(
                format!("{deleted} ACL(s) deleted"),
                json!({"deleted": deleted}),
            ))
        }
    }
}

async fn list(
    c: &mut Admin,
    principal: Option<&str>,
    resource: &ResourceArgs,
) -> Result<Report, CliError> {
    let (rt, name, pattern) = match resource.resource()? {
        // MATCH: the ACLs that apply to the resource (literal, wildcard and prefixes),
        // or exactly the prefix with --prefixed.
        Some((rt, name)) => (
            rt.code(),
            Some(s(&name)),
            if resource.prefixed { 4 } else { 2 },
        ),
        None => (1, None, 1),
    };
    let req = DescribeAclsRequest::default()
        .with_resource_type_filter(rt)
        .with_resource_name_filter(name)
        .with_pattern_type_filter(pattern)
        .with_principal_filter(principal.map(s))
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    let v = c.version(ApiKey::DescribeAcls, 1, 3)?;
    let r: DescribeAclsResponse = c.call(ApiKey::DescribeAcls, v, &req).await?;
    check(r.error_code, r.error_message)?;
    let mut rows = Vec::new();
    let mut out = Vec::new();
    for res in &r.resources {
        let rt = ResourceType::from_code(res.resource_type).map_or("?", |t| t.name());
        let pattern = if res.pattern_type == 4 {
            "PREFIXED"
        } else {
            "LITERAL"
        };
        for a in &res.acls {
            let op = Operation::from_code(a.operation).map_or("?", |o| o.name());
            let perm = Permission::from_code(a.permission_type).map_or("?", |p| p.name());
            rows.push(vec![
                a.principal.to_string(),
                a.host.to_string(),
                perm.to_string(),
                op.to_string(),
                rt.to_string(),
                res.resource_name.to_string(),
                pattern.to_string(),
            ]);
            out.push(json!({
                "principal": a.principal.as_str(), "host": a.host.as_str(), "permission": perm,
                "operation": op, "resource_type": rt, "resource_name": res.resource_name.as_str(),
                "pattern_type": pattern,
            }));
        }
    }
    Ok(Report::new(
        render(
            &[
                "PRINCIPAL",
                "HOST",
                "PERMISSION",
                "OPERATION",
                "RESOURCE",
                "NAME",
                "PATTERN",
            ],
            &rows,
        ),
        json!({ "acls": out }),
    ))
}

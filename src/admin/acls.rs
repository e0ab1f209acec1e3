//! ACLs as CreateAcls, DescribeAcls and DeleteAcls change and show them: the checks of a
//! new binding and of a filter (Kafka's `AclControlManager` rules and messages), and the
//! metadata commands that add and remove bindings. Without an authorizer these APIs
//! answer SECURITY_DISABLED, as Kafka's do.

use kafka_protocol::error::ResponseError as R;
use uuid::Uuid;

use super::Admin;
use crate::authorizer::acl::{
    valid_principal, AclBinding, AclFilter, Operation, PatternFilter, PatternType, Permission,
    ResourceType, CLUSTER_NAME,
};
use crate::cluster::{CommandResult, MetadataCommand, MetadataImage};
use crate::errors::KafkaError;

fn bad(msg: impl Into<String>) -> KafkaError {
    KafkaError::with_message(R::InvalidRequest, msg)
}

/// The refusal of every ACL API when no authorizer is configured.
pub fn security_disabled() -> KafkaError {
    KafkaError::with_message(R::SecurityDisabled, "No Authorizer is configured.")
}

/// The wire fields of a binding or a filter.
#[derive(Debug, Clone)]
pub struct WireAcl {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

/// A new binding, checked as Kafka checks one.
pub fn binding(w: &WireAcl) -> Result<AclBinding, KafkaError> {
    let resource_type = ResourceType::from_code(w.resource_type)
        .ok_or_else(|| bad(format!("Invalid resourceType {}", w.resource_type)))?;
    let pattern_type = match w.pattern_type {
        3 => PatternType::Literal,
        4 => PatternType::Prefixed,
        p => return Err(bad(format!("Invalid patternType {p}"))),
    };
    let operation = Operation::from_code(w.operation)
        .ok_or_else(|| bad(format!("Invalid operation {}", w.operation)))?;
    let permission = Permission::from_code(w.permission)
        .ok_or_else(|| bad(format!("Invalid permissionType {}", w.permission)))?;
    let name = w.resource_name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err(bad("Resource name should not be empty"));
    }
    if resource_type == ResourceType::Cluster && name != CLUSTER_NAME {
        return Err(bad(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        )));
    }
    if operation != Operation::All && !resource_type.operations().contains(&operation) {
        return Err(bad(format!(
            "Operation {} is not valid for resource type {}",
            operation.name(),
            resource_type.name()
        )));
    }
    let principal = w.principal.clone().unwrap_or_default();
    if !valid_principal(&principal) {
        return Err(bad(format!(
            "Could not parse principal from `{principal}` (expected Type:name, e.g. User:alice)"
        )));
    }
    let host = w.host.clone().unwrap_or_default();
    if host.is_empty() {
        return Err(bad("Host should not be empty (use * for every host)"));
    }
    Ok(AclBinding {
        resource_type,
        resource_name: name,
        pattern_type,
        principal,
        host,
        operation,
        permission,
    })
}

/// A DescribeAcls or DeleteAcls filter, checked.
pub fn filter(w: &WireAcl) -> Result<AclFilter, KafkaError> {
    let resource_type = match w.resource_type {
        1 => None,
        c => Some(
            ResourceType::from_code(c).ok_or_else(|| bad(format!("Invalid resourceType {c}")))?,
        ),
    };
    let pattern = PatternFilter::from_code(w.pattern_type)
        .ok_or_else(|| bad(format!("Invalid patternType {}", w.pattern_type)))?;
    let operation = match w.operation {
        1 => None,
        c => Some(Operation::from_code(c).ok_or_else(|| bad(format!("Invalid operation {c}")))?),
    };
    let permission = match w.permission {
        1 => None,
        c => Some(
            Permission::from_code(c).ok_or_else(|| bad(format!("Invalid permissionType {c}")))?,
        ),
    };
    Ok(AclFilter {
        resource_type,
        resource_name: w.resource_name.clone(),
        pattern,
        principal: w.principal.clone(),
        host: w.host.clone(),
        operation,
        permission,
    })
}

/// Add each binding (the ones that failed their checks keep their error).
pub async fn create(
    admin: Admin<'_>,
    bindings: Vec<Result<AclBinding, KafkaError>>,
) -> Vec<Result<(), KafkaError>> {
    let acls: Vec<(Uuid, AclBinding)> = bindings
        .iter()
        .filter_map(|b| b.as_ref().ok())
        .map(|b| (Uuid::new_v4(), b.clone()))
        .collect();
    let applied = if acls.is_empty() {
        Ok(())
    } else {
        propose(admin, MetadataCommand::CreateAcls { acls }).await
    };
    bindings
        .into_iter()
        .map(|b| match b {
            Err(e) => Err(e),
            Ok(_) => applied.clone(),
        })
        .collect()
}

/// The bindings `filter` matches, in a stable order.
pub fn describe(image: &MetadataImage, filter: &AclFilter) -> Vec<AclBinding> {
    let mut found: Vec<AclBinding> = image
        .acls
        .values()
        .filter(|b| filter.matches(b))
        .cloned()
        .collect();
    found.sort();
    found
}

/// Remove what each filter matches; per filter, the bindings removed.
pub async fn delete(
    admin: Admin<'_>,
    filters: Vec<Result<AclFilter, KafkaError>>,
) -> Vec<Result<Vec<AclBinding>, KafkaError>> {
    let mut out = Vec::with_capacity(filters.len());
    for f in filters {
        out.push(match f {
            Err(e) => Err(e),
            Ok(filter) => {
                let image = admin.controller.image();
                let matched: Vec<(Uuid, AclBinding)> = image
                    .acls
                    .iter()
                    .filter(|(_, b)| filter.matches(b))
                    .map(|(id, b)| (*id, b.clone()))
                    .collect();
                if matched.is_empty() {
                    Ok(Vec::new())
                } else {
                    let ids = matched.iter().map(|(id, _)| *id).collect();
                    propose(admin, MetadataCommand::DeleteAcls { ids })
                        .await
                        .map(|()| matched.into_iter().map(|(_, b)| b).collect())
                }
            }
        });
    }
    out
}

async fn propose(admin: Admin<'_>, cmd: MetadataCommand) -> Result<(), KafkaError> {
    match admin.controller.propose(cmd).await {
        Ok(CommandResult::Err(e)) => Err(KafkaError::from(&e)),
        Ok(_) => Ok(()),
        Err(e) => Err(KafkaError::from(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(rt: i8, name: &str, pt: i8, principal: &str, op: i8, perm: i8) -> WireAcl {
        WireAcl {
            resource_type: rt,
            resource_name: Some(name.into()),
            pattern_type: pt,
            principal: Some(principal.into()),
            host: Some("*".into()),
            operation: op,
            permission: perm,
        }
    }

    #[test]
    fn bindings_are_checked_as_kafka_does() {
        assert!(binding(&wire(2, "orders", 3, "User:alice", 3, 3)).is_ok());
        assert!(binding(&wire(4, "kafka-cluster", 3, "User:alice", 7, 3)).is_ok());
        let msg = |w: WireAcl| binding(&w).unwrap_err().message.unwrap();
        assert!(msg(wire(1, "orders", 3, "User:alice", 3, 3)).contains("resourceType"));
        assert!(msg(wire(2, "orders", 2, "User:alice", 3, 3)).contains("patternType"));
        assert!(msg(wire(2, "orders", 3, "User:alice", 1, 3)).contains("operation"));
        assert!(msg(wire(2, "orders", 3, "User:alice", 3, 1)).contains("permissionType"));
        assert!(msg(wire(2, "", 3, "User:alice", 3, 3)).contains("empty"));
        assert!(msg(wire(4, "other", 3, "User:alice", 7, 3)).contains("kafka-cluster"));
        assert!(msg(wire(2, "orders", 3, "alice", 3, 3)).contains("principal"));
        assert!(
            msg(wire(3, "g", 3, "User:alice", 4, 3)).contains("not valid"),
            "WRITE on a GROUP"
        );
        assert_eq!(
            binding(&wire(2, "orders", 3, "alice", 3, 3))
                .unwrap_err()
                .code,
            R::InvalidRequest.code()
        );
    }

    #[test]
    fn filters_accept_any_and_refuse_unknown() {
        let any = WireAcl {
            resource_type: 1,
            resource_name: None,
            pattern_type: 1,
            principal: None,
            host: None,
            operation: 1,
            permission: 1,
        };
        let f = filter(&any).unwrap();
        assert_eq!(
            (f.resource_type, f.operation, f.permission),
            (None, None, None)
        );
        assert!(filter(&WireAcl {
            resource_type: 0,
            ..any.clone()
        })
        .is_err());
        assert!(filter(&WireAcl {
            pattern_type: 0,
            ..any.clone()
        })
        .is_err());
        assert!(filter(&WireAcl {
            operation: 0,
            ..any.clone()
        })
        .is_err());
        assert!(filter(&WireAcl {
            permission: 0,
            ..any
        })
        .is_err());
    }
}

//! Kafka's ACL model: resource types, pattern types, operations and permissions with
//! their protocol codes, an ACL binding (a resource pattern and an entry), and the
//! filters DescribeAcls and DeleteAcls match bindings with. Principals are strings of
//! the form `Type:name` (`User:alice`, `User:*`), as Kafka writes them.

use serde::{Deserialize, Serialize};

/// Kafka's `ResourceType` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    Topic = 2,
    Group = 3,
    Cluster = 4,
    TransactionalId = 5,
    DelegationToken = 6,
    User = 7,
}

impl ResourceType {
    pub const ALL: [ResourceType; 6] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
        ResourceType::DelegationToken,
        ResourceType::User,
    ];

    pub fn from_code(code: i8) -> Option<ResourceType> {
        ResourceType::ALL.into_iter().find(|r| *r as i8 == code)
    }

    pub fn code(self) -> i8 {
        self as i8
    }

    /// Kafka's name (TOPIC, GROUP, ...), for the CLI and logs.
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
            ResourceType::DelegationToken => "DELEGATION_TOKEN",
            ResourceType::User => "USER",
        }
    }

    pub fn parse(s: &str) -> Option<ResourceType> {
        let s = s.to_ascii_uppercase().replace('-', "_");
        ResourceType::ALL.into_iter().find(|r| r.name() == s)
    }

    /// The operations an ACL on this resource type may name (Kafka's
    /// `AclEntry.supportedOperations`), ALL aside.
    pub fn operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
        }
    }
}

/// The one CLUSTER resource's name.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// A LITERAL resource name that matches every resource of its type.
pub const WILDCARD: &str = "*";

/// Kafka's `PatternType` codes (LITERAL and PREFIXED are what a binding holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    Literal = 3,
    Prefixed = 4,
}

impl PatternType {
    pub fn code(self) -> i8 {
        self as i8
    }

    pub fn name(self) -> &'static str {
        match self {
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        }
    }
}

/// Kafka's `AclOperation` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operation {
    All = 2,
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
    CreateTokens = 13,
    DescribeTokens = 14,
}

impl Operation {
    pub const ALL_OPS: [Operation; 13] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
        Operation::CreateTokens,
        Operation::DescribeTokens,
    ];

    pub fn from_code(code: i8) -> Option<Operation> {
        Operation::ALL_OPS.into_iter().find(|o| *o as i8 == code)
    }

    pub fn code(self) -> i8 {
        self as i8
    }

    pub fn name(self) -> &'static str {
        match self {
            Operation::All => "ALL",
            Operation::Read => "READ",
            Operation::Write => "WRITE",
            Operation::Create => "CREATE",
            Operation::Delete => "DELETE",
            Operation::Alter => "ALTER",
            Operation::Describe => "DESCRIBE",
            Operation::ClusterAction => "CLUSTER_ACTION",
            Operation::DescribeConfigs => "DESCRIBE_CONFIGS",
            Operation::AlterConfigs => "ALTER_CONFIGS",
            Operation::IdempotentWrite => "IDEMPOTENT_WRITE",
            Operation::CreateTokens => "CREATE_TOKENS",
            Operation::DescribeTokens => "DESCRIBE_TOKENS",
        }
    }

    pub fn parse(s: &str) -> Option<Operation> {
        let s = s.to_ascii_uppercase().replace('-', "_");
        Operation::ALL_OPS.into_iter().find(|o| o.name() == s)
    }

    /// The operations an ALLOW of `self` grants: itself, and (as in Kafka) DESCRIBE for
    /// READ, WRITE, DELETE and ALTER, DESCRIBE_CONFIGS for ALTER_CONFIGS.
    pub fn allows(self, wanted: Operation) -> bool {
        use Operation::*;
        self == All
            || self == wanted
            || (wanted == Describe && matches!(self, Read | Write | Delete | Alter))
            || (wanted == DescribeConfigs && self == AlterConfigs)
    }
}

/// Kafka's `AclPermissionType` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    Deny = 2,
    Allow = 3,
}

impl Permission {
    pub fn code(self) -> i8 {
        self as i8
    }

    pub fn from_code(code: i8) -> Option<Permission> {
        match code {
            2 => Some(Permission::Deny),
            3 => Some(Permission::Allow),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Permission::Deny => "DENY",
            Permission::Allow => "ALLOW",
        }
    }
}

/// One ACL: who (`principal`, from `host`) may or may not (`permission`) do
/// `operation` on the resources the pattern names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// What a filter's pattern type asks for (Kafka's ANY, MATCH, LITERAL, PREFIXED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternFilter {
    /// Any pattern type, the exact name.
    Any,
    /// The bindings that apply to the named resource: the literal name, the wildcard,
    /// and the prefixes of the name.
    Match,
    Exact(PatternType),
}

impl PatternFilter {
    pub fn from_code(code: i8) -> Option<PatternFilter> {
        match code {
            1 => Some(PatternFilter::Any),
            2 => Some(PatternFilter::Match),
            3 => Some(PatternFilter::Exact(PatternType::Literal)),
            4 => Some(PatternFilter::Exact(PatternType::Prefixed)),
            _ => None,
        }
    }
}

/// A DescribeAcls / DeleteAcls filter; `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

impl AclFilter {
    pub fn matches(&self, b: &AclBinding) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        if self.resource_type.is_some_and(|t| t != b.resource_type)
            || !eq(&self.principal, &b.principal)
            || !eq(&self.host, &b.host)
            || self.operation.is_some_and(|o| o != b.operation)
            || self.permission.is_some_and(|p| p != b.permission)
        {
            return false;
        }
        match (self.pattern, &self.resource_name) {
            (PatternFilter::Exact(p), _) if p != b.pattern_type => false,
            (PatternFilter::Match, Some(name)) => match b.pattern_type {
                PatternType::Literal => b.resource_name == *name || b.resource_name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&b.resource_name),
            },
            (_, Some(name)) => b.resource_name == *name,
            (_, None) => true,
        }
    }
}

/// Whether `s` is a principal as Kafka writes one (`Type:name`, both parts non-empty).
pub fn valid_principal(s: &str) -> bool {
    s.split_once(':')
        .is_some_and(|(t, n)| !t.is_empty() && !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(rt: ResourceType, name: &str, pt: PatternType) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn implied_operations_are_kafkas() {
        use Operation::*;
        assert!(
            Read.allows(Describe)
                && Write.allows(Describe)
                && Delete.allows(Describe)
                && Alter.allows(Describe)
        );
        assert!(AlterConfigs.allows(DescribeConfigs));
        assert!(
            !Describe.allows(Read)
                && !Create.allows(Describe)
                && !DescribeConfigs.allows(AlterConfigs)
        );
        assert!(All.allows(ClusterAction));
    }

    #[test]
    fn filters_match_as_kafka_describes_them() {
        let lit = binding(ResourceType::Topic, "orders", PatternType::Literal);
        let wild = binding(ResourceType::Topic, "*", PatternType::Literal);
        let pre = binding(ResourceType::Topic, "ord", PatternType::Prefixed);
        let other = binding(ResourceType::Group, "orders", PatternType::Literal);
        let f = |pattern, name: Option<&str>| AclFilter {
            resource_type: Some(ResourceType::Topic),
            resource_name: name.map(String::from),
            pattern,
            principal: None,
            host: None,
            operation: None,
            permission: None,
        };
        let all = [&lit, &wild, &pre, &other];
        let count = |flt: AclFilter| all.iter().filter(|b| flt.matches(b)).count();
        assert_eq!(count(f(PatternFilter::Match, Some("orders"))), 3);
        assert_eq!(count(f(PatternFilter::Any, Some("orders"))), 1);
        assert_eq!(count(f(PatternFilter::Any, None)), 3);
        assert_eq!(
            count(f(PatternFilter::Exact(PatternType::Prefixed), None)),
            1
        );
        assert_eq!(
            count(f(PatternFilter::Exact(PatternType::Literal), Some("ord"))),
            0
        );
        assert!(
            valid_principal("User:alice") && !valid_principal("alice") && !valid_principal("User:")
        );
    }
}

//! What a client may do to a resource, in the form Kafka reports it: the
//! `*_authorized_operations` bit fields of Metadata, DescribeCluster, DescribeGroups and
//! ConsumerGroupDescribe. With no authorizer configured, Kafka reports every operation a
//! resource type supports as allowed, and so does this module; the set of operations per
//! resource type is Kafka's (`AclEntry.supportedOperations`).

/// Kafka's ACL operation codes (`AclOperation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum Operation {
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
}

/// The resource types whose authorized operations the protocol reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
}

/// "Not requested" in the protocol's encoding of authorized operations.
pub const NOT_REQUESTED: i32 = i32::MIN;

impl ResourceType {
    /// The operations Kafka defines on this resource type.
    pub fn supported(self) -> &'static [Operation] {
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
        }
    }
}

/// The bit field (bit n set = operation code n allowed) for `resource`, or
/// [`NOT_REQUESTED`] when the client did not ask for it.
pub fn authorized_operations(resource: ResourceType, requested: bool) -> i32 {
    if !requested {
        return NOT_REQUESTED;
    }
    resource
        .supported()
        .iter()
        .fold(0, |bits, op| bits | (1 << *op as i8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_fields_match_kafkas_with_no_authorizer() {
        // Kafka 4.x answers these values with no authorizer configured.
        assert_eq!(authorized_operations(ResourceType::Topic, true), 3576);
        assert_eq!(authorized_operations(ResourceType::Group, true), 328);
        assert_eq!(authorized_operations(ResourceType::Cluster, true), 8096);
        assert_eq!(
            authorized_operations(ResourceType::Topic, false),
            NOT_REQUESTED
        );
    }
}

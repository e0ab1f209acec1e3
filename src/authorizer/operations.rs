//! The `*_authorized_operations` bit fields of Metadata, DescribeCluster, DescribeGroups,
//! DescribeTopicPartitions and ConsumerGroupDescribe: bit n is set when operation code n
//! is allowed on the resource. With no authorizer, Kafka reports every operation the
//! resource type supports, and so does this module.

use super::acl::{Operation, ResourceType};

/// "Not requested" in the protocol's encoding of authorized operations.
pub const NOT_REQUESTED: i32 = i32::MIN;

/// The bit field of the operations of `resource` that `allowed` grants.
pub fn bits(resource: ResourceType, allowed: impl Fn(Operation) -> bool) -> i32 {
    resource
        .operations()
        .iter()
        .filter(|op| allowed(**op))
        .fold(0, |bits, op| bits | (1 << op.code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_fields_match_kafkas_with_no_authorizer() {
        // Kafka 4.x answers these values with no authorizer configured.
        assert_eq!(bits(ResourceType::Topic, |_| true), 3576);
        assert_eq!(bits(ResourceType::Group, |_| true), 328);
        assert_eq!(bits(ResourceType::Cluster, |_| true), 8096);
        assert_eq!(
            bits(ResourceType::Topic, |op| op == Operation::Read),
            1 << 3
        );
    }
}

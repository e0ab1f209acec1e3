//! Authorization: Kafka's StandardAuthorizer semantics over ACLs kept in the replicated
//! metadata (so every node enforces the same set). With `authorizer.class.name` unset
//! everything is allowed, as in Kafka; set, a principal may do what an ACL allows and no
//! ACL denies, super users may do anything, and a resource without any ACL is open only
//! with `allow.everyone.if.no.acl.found`. The ACLs are indexed once per change of the
//! set ([`index`]), so a decision on the produce and fetch paths is a few lookups.
//!
//! - [`acl`]: the ACL model and the DescribeAcls / DeleteAcls filters.
//! - [`index`]: the decision over indexed ACLs.
//! - [`operations`]: the `*_authorized_operations` bit fields.

pub mod acl;
pub mod index;
pub mod operations;

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::RwLock;

pub use acl::{AclBinding, Operation, ResourceType, CLUSTER_NAME};
pub use operations::NOT_REQUESTED;

use crate::cluster::MetadataImage;
use index::AclIndex;

/// The names `authorizer.class.name` accepts: Kafka's StandardAuthorizer (a stock
/// KRaft `server.properties` names it) is what Weir implements.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// The authorization settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerSettings {
    /// `authorizer.class.name` is set.
    pub enabled: bool,
    /// `super.users` (`User:admin;User:broker`).
    pub super_users: HashSet<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
}

/// Who asks, from where.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub principal: &'a str,
    pub host: &'a str,
}

/// The authorizer of one broker.
pub struct Authorizer {
    settings: AuthorizerSettings,
    /// The index and the ACL version it was built from.
    index: RwLock<(u64, Arc<AclIndex>)>,
}

impl Authorizer {
    pub fn new(settings: AuthorizerSettings) -> Authorizer {
        Authorizer {
            settings,
            index: RwLock::new((0, Arc::new(AclIndex::default()))),
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// The index for `image`'s ACLs, rebuilt when they changed.
    fn index(&self, image: &MetadataImage) -> Arc<AclIndex> {
        {
            let cur = self.index.read();
            if cur.0 == image.acl_version {
                return cur.1.clone();
            }
        }
        let ix = Arc::new(AclIndex::build(image.acls.values()));
        let mut cur = self.index.write();
        if image.acl_version >= cur.0 {
            *cur = (image.acl_version, ix.clone());
        }
        ix
    }

    /// Whether `who` may do `operation` on the resource.
    pub fn authorize(
        &self,
        image: &MetadataImage,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.settings.enabled || self.settings.super_users.contains(who.principal) {
            return true;
        }
        self.index(image)
            .decide(who.principal, who.host, operation, resource_type, name)
            .unwrap_or(self.settings.allow_if_no_acl)
    }

    /// Whether `who` may do `operation` on some resource of `resource_type` (Kafka's
    /// `authorizeByResourceType`, which InitProducerId asks for WRITE on any topic): an
    /// ALLOW for the principal that no DENY on every resource of the type cancels.
    pub fn authorize_any(
        &self,
        image: &MetadataImage,
        who: Requester<'_>,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if !self.settings.enabled || self.settings.super_users.contains(who.principal) {
            return true;
        }
        let applies = |b: &&AclBinding| {
            b.resource_type == resource_type
                && (b.principal == who.principal || b.principal == index::ANY_USER)
                && (b.host == who.host || b.host == index::ANY_HOST)
        };
        let mut of_type = image
            .acls
            .values()
            .filter(|b| b.resource_type == resource_type)
            .peekable();
        if of_type.peek().is_none() {
            return self.settings.allow_if_no_acl;
        }
        let denied_everywhere = image.acls.values().filter(applies).any(|b| {
            b.permission == acl::Permission::Deny
                && (b.operation == operation || b.operation == Operation::All)
                && ((b.pattern_type == acl::PatternType::Literal
                    && b.resource_name == acl::WILDCARD)
                    || (b.pattern_type == acl::PatternType::Prefixed && b.resource_name.is_empty()))
        });
        !denied_everywhere
            && image
                .acls
                .values()
                .filter(applies)
                .any(|b| b.permission == acl::Permission::Allow && b.operation.allows(operation))
    }

    /// The `*_authorized_operations` bit field of a resource, or NOT_REQUESTED.
    pub fn authorized_operations(
        &self,
        image: &MetadataImage,
        who: Requester<'_>,
        resource_type: ResourceType,
        name: &str,
        requested: bool,
    ) -> i32 {
        if !requested {
            return NOT_REQUESTED;
        }
        operations::bits(resource_type, |op| {
            self.authorize(image, who, op, resource_type, name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::acl::{PatternType, Permission};
    use super::*;

    fn image(acls: &[AclBinding]) -> MetadataImage {
        let mut img = MetadataImage::default();
        for (i, a) in acls.iter().enumerate() {
            img.acls.insert(uuid::Uuid::from_u128(i as u128), a.clone());
        }
        img.acl_version = acls.len() as u64;
        img
    }

    fn allow(principal: &str, op: Operation, rt: ResourceType, name: &str) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: PatternType::Literal,
            principal: principal.into(),
            host: "*".into(),
            operation: op,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn super_users_defaults_and_authorized_operations() {
        let who = |p| Requester {
            principal: p,
            host: "127.0.0.1",
        };
        let img = image(&[allow(
            "User:alice",
            Operation::Read,
            ResourceType::Topic,
            "t",
        )]);
        let settings = AuthorizerSettings {
            enabled: true,
            super_users: ["User:admin".to_string()].into(),
            allow_if_no_acl: false,
        };
        let a = Authorizer::new(settings.clone());
        assert!(a.authorize(
            &img,
            who("User:alice"),
            Operation::Read,
            ResourceType::Topic,
            "t"
        ));
        assert!(!a.authorize(
            &img,
            who("User:bob"),
            Operation::Read,
            ResourceType::Topic,
            "t"
        ));
        assert!(a.authorize(
            &img,
            who("User:admin"),
            Operation::Alter,
            ResourceType::Cluster,
            CLUSTER_NAME
        ));
        assert!(!a.authorize(
            &img,
            who("User:bob"),
            Operation::Read,
            ResourceType::Topic,
            "no-acls"
        ));
        let open = Authorizer::new(AuthorizerSettings {
            allow_if_no_acl: true,
            ..settings
        });
        assert!(open.authorize(
            &img,
            who("User:bob"),
            Operation::Read,
            ResourceType::Topic,
            "no-acls"
        ));
        assert!(!open.authorize(
            &img,
            who("User:bob"),
            Operation::Read,
            ResourceType::Topic,
            "t"
        ));
        // READ implies DESCRIBE: bits 3 and 8.
        assert_eq!(
            a.authorized_operations(&img, who("User:alice"), ResourceType::Topic, "t", true),
            (1 << 3) | (1 << 8)
        );
        assert_eq!(
            a.authorized_operations(&img, who("User:alice"), ResourceType::Topic, "t", false),
            NOT_REQUESTED
        );
        // Without an authorizer everything is allowed, whatever the ACLs say.
        let off = Authorizer::new(AuthorizerSettings::default());
        assert!(off.authorize(
            &img,
            who("User:bob"),
            Operation::Read,
            ResourceType::Topic,
            "t"
        ));
        assert_eq!(
            off.authorized_operations(&img, who("User:bob"), ResourceType::Topic, "t", true),
            3576
        );
    }

    #[test]
    fn a_new_acl_version_rebuilds_the_index() {
        let who = Requester {
            principal: "User:bob",
            host: "h",
        };
        let a = Authorizer::new(AuthorizerSettings {
            enabled: true,
            ..Default::default()
        });
        let img = image(&[allow(
            "User:alice",
            Operation::Read,
            ResourceType::Topic,
            "t",
        )]);
        assert!(!a.authorize(&img, who, Operation::Read, ResourceType::Topic, "t"));
        let img = image(&[
            allow("User:alice", Operation::Read, ResourceType::Topic, "t"),
            allow("User:bob", Operation::Read, ResourceType::Topic, "t"),
        ]);
        assert!(a.authorize(&img, who, Operation::Read, ResourceType::Topic, "t"));
    }
}

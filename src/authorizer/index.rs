//! The ACLs indexed for decisions: by (resource type, literal name) — the wildcard `*`
//! is one such name — and by (resource type, prefix), with the prefix lengths in use per
//! type, so that deciding costs a few hash lookups however many ACLs there are. The
//! decision is Kafka's StandardAuthorizer's: a matching DENY wins, then a matching ALLOW
//! (with the implied operations); with no ACL on the resource at all, the caller's
//! default applies.

use std::collections::{BTreeSet, HashMap};

use super::acl::{AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD};

/// The principal of an ACL that applies to every user.
pub const ANY_USER: &str = "User:*";
/// The host of an ACL that applies from every address.
pub const ANY_HOST: &str = "*";

#[derive(Debug, Clone)]
struct Entry {
    principal: String,
    host: String,
    operation: Operation,
    permission: Permission,
}

/// The entries of one resource type, by literal name and by prefix (looked up by `&str`,
/// so a decision allocates nothing).
#[derive(Debug, Default)]
struct TypeIndex {
    literal: HashMap<String, Vec<Entry>>,
    prefixed: HashMap<String, Vec<Entry>>,
    prefix_lens: BTreeSet<usize>,
}

#[derive(Debug, Default)]
pub struct AclIndex {
    by_type: HashMap<ResourceType, TypeIndex>,
}

impl AclIndex {
    pub fn build<'a>(acls: impl Iterator<Item = &'a AclBinding>) -> AclIndex {
        let mut ix = AclIndex::default();
        for b in acls {
            let e = Entry {
                principal: b.principal.clone(),
                host: b.host.clone(),
                operation: b.operation,
                permission: b.permission,
            };
            let t = ix.by_type.entry(b.resource_type).or_default();
            let name = b.resource_name.clone();
            match b.pattern_type {
                PatternType::Literal => t.literal.entry(name).or_default().push(e),
                PatternType::Prefixed => {
                    t.prefix_lens.insert(name.len());
                    t.prefixed.entry(name).or_default().push(e);
                }
            }
        }
        ix
    }

    /// `Some(allowed)` from the ACLs on the resource, `None` when it has none at all.
    pub fn decide(
        &self,
        principal: &str,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> Option<bool> {
        let mut found = false;
        let mut allowed = false;
        let mut visit = |entries: Option<&Vec<Entry>>| -> bool {
            for e in entries.into_iter().flatten() {
                found = true;
                let who = e.principal == principal || e.principal == ANY_USER;
                let from = e.host == host || e.host == ANY_HOST;
                if !(who && from) {
                    continue;
                }
                match e.permission {
                    // DENY applies to the operation named (or ALL), not to the implied ones.
                    Permission::Deny
                        if e.operation == operation || e.operation == Operation::All =>
                    {
                        return true
                    }
                    Permission::Allow if e.operation.allows(operation) => allowed = true,
                    _ => {}
                }
            }
            false
        };
        let t = self.by_type.get(&resource_type)?;
        if visit(t.literal.get(name)) || visit(t.literal.get(WILDCARD)) {
            return Some(false);
        }
        for &len in t.prefix_lens.range(..=name.len()) {
            if name.is_char_boundary(len) && visit(t.prefixed.get(&name[..len])) {
                return Some(false);
            }
        }
        found.then_some(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation::*;
    use ResourceType::*;

    fn acl(
        rt: ResourceType,
        name: &str,
        pt: PatternType,
        who: &str,
        host: &str,
        op: Operation,
        p: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: who.into(),
            host: host.into(),
            operation: op,
            permission: p,
        }
    }

    #[test]
    fn deny_beats_allow_and_implied_operations_allow_only() {
        use PatternType::*;
        use Permission::*;
        let acls = [
            acl(Topic, "orders", Literal, "User:alice", "*", Read, Allow),
            acl(Topic, "ord", Prefixed, "User:bob", "*", Write, Allow),
            acl(Topic, "orders", Literal, "User:bob", "10.0.0.9", All, Deny),
            acl(Topic, "*", Literal, "User:*", "*", Describe, Allow),
            acl(Topic, "orders", Literal, "User:carol", "*", Read, Deny),
            acl(Group, "g", Literal, "User:alice", "*", Read, Allow),
        ];
        let ix = AclIndex::build(acls.iter());
        let d = |who: &str, host: &str, op, rt, name: &str| ix.decide(who, host, op, rt, name);
        assert_eq!(
            d("User:alice", "1.2.3.4", Read, Topic, "orders"),
            Some(true)
        );
        assert_eq!(
            d("User:alice", "1.2.3.4", Write, Topic, "orders"),
            Some(false)
        );
        assert_eq!(
            d("User:alice", "1.2.3.4", Describe, Topic, "orders"),
            Some(true)
        );
        // Prefixed ALLOW WRITE, with DESCRIBE implied; a DENY ALL from one host.
        assert_eq!(d("User:bob", "1.2.3.4", Write, Topic, "orders"), Some(true));
        assert_eq!(
            d("User:bob", "10.0.0.9", Write, Topic, "orders"),
            Some(false)
        );
        assert_eq!(d("User:bob", "1.2.3.4", Write, Topic, "other"), Some(false));
        // DENY READ does not deny the DESCRIBE everyone is allowed.
        assert_eq!(
            d("User:carol", "1.2.3.4", Read, Topic, "orders"),
            Some(false)
        );
        assert_eq!(
            d("User:carol", "1.2.3.4", Describe, Topic, "orders"),
            Some(true)
        );
        // The wildcard topic ACL makes every topic "have ACLs"; groups without any do not.
        assert_eq!(
            d("User:dave", "1.2.3.4", Read, Topic, "anything"),
            Some(false)
        );
        assert_eq!(d("User:dave", "1.2.3.4", Read, Group, "other"), None);
        assert_eq!(d("User:alice", "1.2.3.4", Read, Group, "g"), Some(true));
        assert_eq!(
            d("User:alice", "1.2.3.4", Read, Cluster, "kafka-cluster"),
            None
        );
    }

    #[test]
    fn ten_thousand_acls_literal_and_prefixed() {
        let acls: Vec<AclBinding> = (0..10_000)
            .map(|i| {
                let pt = if i % 2 == 0 {
                    PatternType::Literal
                } else {
                    PatternType::Prefixed
                };
                acl(
                    Topic,
                    &format!("t{i}"),
                    pt,
                    &format!("User:u{i}"),
                    "*",
                    Write,
                    Permission::Allow,
                )
            })
            .collect();
        let ix = AclIndex::build(acls.iter());
        assert_eq!(ix.decide("User:u4", "h", Write, Topic, "t4"), Some(true));
        assert_eq!(ix.decide("User:u7", "h", Write, Topic, "t7-x"), Some(true));
        assert_eq!(ix.decide("User:u7", "h", Write, Topic, "t8"), Some(false));
        assert_eq!(ix.decide("User:u7", "h", Write, Topic, "zzz"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_names(name in ".{0,40}", prefix in ".{0,10}") {
            let acls = [acl(Topic, &prefix, PatternType::Prefixed, "User:a", "*", Read, Permission::Allow)];
            let ix = AclIndex::build(acls.iter());
            let _ = ix.decide("User:a", "h", Read, Topic, &name);
        }
    }
}

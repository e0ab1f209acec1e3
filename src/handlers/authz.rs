//! The authorization side of a request's [`Ctx`]: decisions for the connection's
//! principal and host, counted, logged and audited when refused (and, with
//! `audit.log.admin.allowed`, when an admin operation is allowed), quiet checks for
//! filtering lists, and the `*_authorized_operations` bit fields.

use kafka_protocol::messages::ApiKey;

use super::Ctx;
use crate::authorizer::{Operation, Requester, ResourceType, CLUSTER_NAME};
use crate::metrics as m;

/// The APIs whose allowed uses `audit.log.admin.allowed` audits: those that change the
/// cluster rather than read or write records.
const ADMIN_APIS: &[ApiKey] = &[
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::DeleteRecords,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::AlterUserScramCredentials,
    ApiKey::ElectLeaders,
    ApiKey::AlterPartitionReassignments,
    ApiKey::AlterReplicaLogDirs,
    ApiKey::DeleteGroups,
    ApiKey::OffsetDelete,
    ApiKey::UnregisterBroker,
    ApiKey::AddRaftVoter,
    ApiKey::RemoveRaftVoter,
];

impl Ctx {
    /// Who asks, from where.
    fn requester(&self) -> Requester<'_> {
        Requester {
            principal: &self.principal,
            host: &self.host,
        }
    }

    /// Whether the connection's principal may do `op` on the resource; a denial is
    /// counted and logged (use [`Ctx::allowed`] to filter lists quietly, as Kafka does).
    pub fn authorize(&self, op: Operation, rt: ResourceType, name: &str) -> bool {
        let ok = self.allowed(op, rt, name);
        if !ok {
            self.audit_authorization(false, op, rt, name);
            metrics::counter!(m::AUTHORIZATION_DENIALS_TOTAL, "api" => format!("{:?}", self.api_key),
                "resource_type" => rt.name())
            .increment(1);
            tracing::info!(principal = %self.principal, peer = %self.peer, api = ?self.api_key,
                operation = op.name(), resource_type = rt.name(), resource = name, "authorization denied");
        }
        ok
    }

    /// Whether the principal may do `op` on the resource, without counting a denial.
    pub fn allowed(&self, op: Operation, rt: ResourceType, name: &str) -> bool {
        let a = &self.state.authorizer;
        if !a.enabled() {
            return true;
        }
        let ok = a.authorize(
            &self.state.controller.image(),
            self.requester(),
            op,
            rt,
            name,
        );
        if ok && ADMIN_APIS.contains(&self.api_key) {
            self.audit_authorization(true, op, rt, name);
        }
        ok
    }

    /// An authorization decision in the audit log: every denial, and with
    /// `audit.log.admin.allowed` the allowed admin operations.
    fn audit_authorization(&self, allowed: bool, op: Operation, rt: ResourceType, name: &str) {
        let Some(audit) = &self.state.audit else {
            return;
        };
        if allowed && !audit.admin_allowed() {
            return;
        }
        audit.record(crate::audit::Event {
            kind: "authorization",
            outcome: if allowed { "allowed" } else { "denied" },
            principal: &self.principal,
            client: self.peer,
            listener: &self.listener,
            details: serde_json::json!({
                "api": format!("{:?}", self.api_key),
                "operation": op.name(),
                "resource_type": rt.name(),
                "resource": name,
            }),
        });
    }

    /// Whether the principal may do `op` on some resource of type `rt`.
    pub fn authorize_any(&self, op: Operation, rt: ResourceType) -> bool {
        self.state.authorizer.authorize_any(
            &self.state.controller.image(),
            self.requester(),
            op,
            rt,
        )
    }

    /// `op` on `group` refused: GROUP_AUTHORIZATION_FAILED's code (noted), for the
    /// group APIs that answer with one top-level error; `None` when allowed.
    pub fn refuse_group(&self, op: Operation, group: &str) -> Option<i16> {
        if self.authorize(op, ResourceType::Group, group) {
            return None;
        }
        let code = kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code();
        self.note_error(code);
        Some(code)
    }

    /// Whether the principal may do `op` on the cluster.
    pub fn authorize_cluster(&self, op: Operation) -> bool {
        self.authorize(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// The `*_authorized_operations` bit field of a resource for this principal.
    pub fn authorized_operations(&self, rt: ResourceType, name: &str, requested: bool) -> i32 {
        self.state.authorizer.authorized_operations(
            &self.state.controller.image(),
            self.requester(),
            rt,
            name,
            requested,
        )
    }
}

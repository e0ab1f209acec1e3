//! The state every connection and handler shares: the broker's settings and its
//! subsystems (metadata quorum, logs, replicas, groups, producer ids, client telemetry).
//! `broker` builds it at start and flags it at shutdown; everything else only reads it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::admin::Admin;
use crate::cluster::Controller;
use crate::config::Config;
use crate::group::GroupManager;
use crate::log::LogManager;
use crate::producer_ids::ProducerIdManager;
use crate::replica::ReplicaManager;
use crate::telemetry::ClientTelemetry;
use crate::tls::TlsListener;

/// State shared by every connection and handler.
pub struct BrokerState {
    pub config: Arc<Config>,
    pub node_id: i32,
    pub controller: Arc<Controller>,
    pub logs: Arc<LogManager>,
    pub replicas: Arc<ReplicaManager>,
    pub producer_ids: Arc<ProducerIdManager>,
    pub groups: Arc<GroupManager>,
    pub transactions: Arc<crate::txn::TxnManager>,
    /// Metrics clients push (KIP-714), exported on `/metrics`.
    pub telemetry: Arc<ClientTelemetry>,
    /// Every listener of this node that speaks TLS (its certificates' expiry is exported).
    pub tls: Vec<Arc<TlsListener>>,
    /// Decides what each principal may do (everything, without `authorizer.class.name`).
    pub authorizer: Arc<crate::authorizer::Authorizer>,
    /// The audit log, when `audit.log.file` is set.
    pub audit: Option<Arc<crate::audit::AuditLog>>,
    /// The OAUTHBEARER token validator of each listener that enables the mechanism.
    pub bearer: std::collections::BTreeMap<String, Arc<crate::sasl::jwt::JwtValidator>>,
    shutting_down: AtomicBool,
}

impl BrokerState {
    pub fn new(
        config: Arc<Config>,
        controller: Arc<Controller>,
        logs: Arc<LogManager>,
        replicas: Arc<ReplicaManager>,
        groups: Arc<GroupManager>,
        transactions: Arc<crate::txn::TxnManager>,
    ) -> BrokerState {
        BrokerState {
            node_id: config.node_id,
            authorizer: Arc::new(crate::authorizer::Authorizer::new(
                config.authorizer.clone(),
            )),
            config,
            producer_ids: Arc::new(ProducerIdManager::new(controller.clone())),
            controller,
            logs,
            replicas,
            groups,
            transactions,
            telemetry: Arc::default(),
            tls: Vec::new(),
            audit: None,
            bearer: Default::default(),
            shutting_down: AtomicBool::new(false),
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// This broker's parts that administration acts through.
    pub fn admin(&self) -> Admin<'_> {
        Admin {
            config: &self.config,
            node_id: self.node_id,
            controller: &self.controller,
            replicas: &self.replicas,
        }
    }

    /// From now on connections finish what they have and take nothing new.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }
}

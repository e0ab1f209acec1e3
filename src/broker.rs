//! Builds the subsystems in dependency order and tears them down in reverse, each step
//! bounded in time.
//!
//! Start: log recovery → metadata quorum → client listeners bound → broker registered →
//! partition logs reconciled with metadata → background tasks → accepting clients.
//! Shutdown: stop accepting and finish in-flight requests → stop background tasks →
//! flush and checkpoint every log → stop the metadata quorum.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::cluster::controller::ControllerConfig;
use crate::cluster::rebalance::RebalanceConfig;
use crate::cluster::{
    BrokerEndpoint, BrokerMeta, CommandResult, Controller, MetadataCommand, QuorumConfig,
};
use crate::config::Config;
use crate::dir_lock::DirLock;
use crate::group::GroupManager;
use crate::log::LogManager;
use crate::replica::ReplicaManager;
use crate::server::listener;
use crate::state::BrokerState;
use crate::tls::TlsListener;

/// A running broker.
pub struct Broker {
    state: Arc<BrokerState>,
    client_addrs: Vec<SocketAddr>,
    shutdown_tx: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    /// Held until shutdown is complete.
    locks: Vec<DirLock>,
}

impl Broker {
    pub async fn start(config: Config) -> anyhow::Result<Broker> {
        let config = Arc::new(config);
        let started = std::time::Instant::now();
        // Every directory is locked before anything in it is read: a second broker on
        // the same directories stops here, before it touches a file.
        let mut locks = Vec::new();
        for dir in &config.log_dirs {
            locks.push(DirLock::acquire(dir, "log")?);
        }
        locks.push(DirLock::acquire(&config.metadata_dir, "metadata")?);
        // Listeners next, their TLS material read first: a port in use or a certificate
        // that is missing or does not fit stops the start before any data is opened.
        let mut bound = Vec::new();
        for l in &config.listeners {
            let tls = match config.security.tls.get(&l.name) {
                Some(settings) => Some(Arc::new(TlsListener::new(settings.clone())?)),
                None => None,
            };
            let tcp = listener::bind(l)
                .with_context(|| format!("cannot bind listener {}", l.bind_addr()))?;
            bound.push((l.clone(), tcp.local_addr()?, tcp, tls));
        }
        // The OAUTHBEARER key sets in files, the audit log and the inter-broker TLS rules
        // are checked here too, for the same reason: a start that fails must fail before
        // the metadata quorum runs.
        let (bearer, key_stores) = crate::sasl::bearer_validators(&config.security.sasl)?;
        let audit = crate::audit::AuditLog::start(config.audit.clone()).map_err(|e| {
            anyhow::anyhow!(
                "cannot open audit.log.file {}: {e}",
                config
                    .audit
                    .as_ref()
                    .map_or(String::new(), |a| a.file.display().to_string())
            )
        })?;
        // Followers fetch over the inter-broker listener; over TLS they verify the leader's
        // certificate with that listener's truststore and present this broker's own.
        let inter_broker_tls = bound
            .iter()
            .find(|b| b.0.name == config.security.inter_broker)
            .and_then(|b| b.3.clone());
        if let Some(tls) = &inter_broker_tls {
            // A single node has no one to fetch from; a cluster's brokers must verify each other.
            if tls.connector().is_none() && !config.quorum_voters.is_empty() {
                anyhow::bail!(
                    "inter-broker listener {} uses TLS: give it ssl.truststore.location so brokers can verify each other",
                    config.security.inter_broker
                );
            }
        }
        crate::metrics::set_partition_series(config.metrics_partition_series);
        let logs = LogManager::open(config.clone()).context("opening log directories")?;
        let quorum = quorum_config(&config)?;
        let controller_tls = quorum.as_ref().and_then(|q| q.tls.clone());
        let controller = Controller::start(ControllerConfig {
            node_id: config.node_id,
            dir: config.metadata_dir.clone(),
            cluster_id: config.cluster_id.clone(),
            quorum,
        })
        .await
        .context("starting the metadata quorum")?;

        let client_addrs: Vec<SocketAddr> = bound.iter().map(|(_, a, _, _)| *a).collect();

        // Every advertised listener, a configured port 0 replaced by the port its listener
        // got; other brokers reach this one on the inter-broker listener.
        let endpoints: Vec<BrokerEndpoint> = config
            .advertised_listeners
            .iter()
            .map(|l| BrokerEndpoint {
                name: l.name.clone(),
                host: l.host.clone(),
                port: match (l.port, bound.iter().find(|b| b.0.name == l.name)) {
                    (0, Some((_, addr, _, _))) => addr.port(),
                    _ => l.port,
                },
            })
            .collect();
        let adv = endpoints
            .iter()
            .find(|e| e.name == config.security.inter_broker)
            .unwrap_or(&endpoints[0])
            .clone();
        let mut endpoints = endpoints;
        // A broker-only node does not publish its CONTROLLER endpoint: that is how the
        // controller tells it may not become a voter.
        if controller.is_quorum() && !config.broker_only {
            if let Some(c) = &config.controller_listener {
                let (host, port) = controller_address(&config)
                    .rsplit_once(':')
                    .map(|(h, p)| (h.to_string(), p.parse().unwrap_or(c.port)))
                    .unwrap_or((c.host.clone(), c.port));
                endpoints.push(BrokerEndpoint {
                    name: c.name.clone(),
                    host,
                    port,
                });
            }
        }
        let me = BrokerMeta {
            id: config.node_id,
            host: adv.host.clone(),
            port: adv.port,
            rack: config.rack.clone(),
            listeners: endpoints,
        };
        // Re-registering is needed when anything changed; a fenced broker stays fenced
        // (its heartbeats unfence it), so compare with wherever it is registered.
        if controller.image().registered_broker(config.node_id) != Some(&me) {
            let result = controller
                .propose(MetadataCommand::RegisterBroker(me.clone()))
                .await?;
            if let CommandResult::Err(e) = result {
                anyhow::bail!("broker registration refused: {e}");
            }
        }

        controller.start_heartbeats(me);
        ensure_inter_broker_scram_user(&config, &controller).await?;

        let replicas = ReplicaManager::new(config.clone(), logs.clone(), controller.clone());
        if let Some(tls) = inter_broker_tls {
            replicas.set_inter_broker_tls(tls);
        }
        replicas.reconcile(&controller.image());
        let groups = GroupManager::new(config.clone(), controller.clone(), replicas.clone());
        let transactions = crate::txn::TxnManager::new(
            config.clone(),
            controller.clone(),
            replicas.clone(),
            groups.clone(),
        );
        let mut state = BrokerState::new(
            config.clone(),
            controller.clone(),
            logs.clone(),
            replicas.clone(),
            groups.clone(),
            transactions.clone(),
        );
        state.tls = bound
            .iter()
            .filter_map(|b| b.3.clone())
            .chain(controller_tls)
            .collect();
        state.audit = audit;
        state.bearer = bearer;
        let state = Arc::new(state);

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut background = logs.start_background(shutdown_rx.clone());
        background.push(replicas.start(shutdown_rx.clone()));
        background.push(crate::replica::fetcher::start(
            replicas.clone(),
            shutdown_rx.clone(),
        ));
        background.extend(groups.start(shutdown_rx.clone()));
        background.extend(transactions.start(shutdown_rx.clone()));
        background.push(crate::memory_trim::start(shutdown_rx.clone()));
        for store in key_stores {
            background.push(tokio::spawn(store.run(shutdown_rx.clone())));
        }
        let mut listeners = Vec::new();
        for (l, addr, tcp, tls) in bound {
            let protocol = config.security.protocol(&l.name).name();
            info!(listener = %l.name, %addr, protocol, "listening");
            listeners.push(tokio::spawn(listener::accept_loop(
                state.clone(),
                tcp,
                l.name.clone(),
                tls,
                shutdown_rx.clone(),
            )));
        }
        metrics::gauge!(crate::metrics::UP).set(1.0);
        let (collect, ready) = (Arc::downgrade(&state), Arc::downgrade(&state));
        crate::metrics_http::set_broker_hooks(Some((
            Box::new(move || match collect.upgrade() {
                Some(s) => {
                    crate::metrics_collect::collect(&s);
                    s.telemetry.render()
                }
                None => String::new(),
            }),
            Box::new(move || match ready.upgrade() {
                Some(s) => crate::metrics_collect::ready(&s),
                None => Err("stopped".into()),
            }),
        )));
        let listening: Vec<String> = client_addrs.iter().map(|a| a.to_string()).collect();
        let log_dirs: Vec<String> = config
            .log_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        info!(
            node_id = config.node_id,
            elapsed_ms = started.elapsed().as_millis() as u64,
            listeners = %listening.join(","),
            metrics = %config.metrics_listen.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
            log_dirs = %log_dirs.join(","),
            metadata_dir = %config.metadata_dir.display(),
            "broker started"
        );
        Ok(Broker {
            state,
            client_addrs,
            shutdown_tx,
            listeners,
            background,
            locks,
        })
    }

    /// The bound address of the first client listener (useful when configured with port 0).
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addrs[0]
    }

    /// The bound address of the client listener named `name`.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.state
            .config
            .listeners
            .iter()
            .position(|l| l.name == name)
            .map(|i| self.client_addrs[i])
    }

    pub fn state(&self) -> &Arc<BrokerState> {
        &self.state
    }

    /// Ordered, timed shutdown.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        info!("shutting down");
        metrics::gauge!(crate::metrics::UP).set(0.0);
        // /ready: 503 from now on.
        crate::metrics_http::set_broker_hooks(None);
        // In a quorum, hand this broker's partition leaderships to others first, so that
        // clients move on now rather than after a session timeout.
        self.state
            .controller
            .controlled_shutdown(self.state.node_id)
            .await;
        self.state.begin_shutdown();
        let _ = self.shutdown_tx.send(true);
        for h in self.listeners {
            if tokio::time::timeout(Duration::from_secs(10), h)
                .await
                .is_err()
            {
                warn!("listener did not stop in time");
            }
        }
        for h in self.background {
            if tokio::time::timeout(Duration::from_secs(10), h)
                .await
                .is_err()
            {
                warn!("background task did not stop in time");
            }
        }
        let logs = self.state.logs.clone();
        tokio::task::spawn_blocking(move || logs.shutdown())
            .await?
            .context("flushing logs")?;
        self.state
            .controller
            .shutdown()
            .await
            .context("stopping the metadata quorum")?;
        drop(self.locks);
        info!("broker stopped");
        Ok(())
    }
}

/// Where the other nodes reach this node's CONTROLLER listener: its entry in the voter
/// list, else the advertised CONTROLLER listener, else the bound address.
fn controller_address(config: &Config) -> String {
    if let Some(a) = config.quorum_voters.get(&config.node_id) {
        return a.clone();
    }
    if let Some(a) = &config.controller_advertised {
        return a.clone();
    }
    match &config.controller_listener {
        Some(l) if l.host.is_empty() || l.host == "0.0.0.0" => format!("127.0.0.1:{}", l.port),
        Some(l) => format!("{}:{}", l.host, l.port),
        None => String::new(),
    }
}

/// The metadata quorum settings, when `controller.quorum.voters` is set.
fn quorum_config(config: &Config) -> anyhow::Result<Option<QuorumConfig>> {
    if config.quorum_voters.is_empty() {
        return Ok(None);
    }
    let Some(listener) = config.controller_listener.as_ref() else {
        return Ok(None);
    };
    let listen = listener.bind_addr();
    let voters = config
        .quorum_voters
        .iter()
        .filter_map(|(id, addr)| Some((u64::try_from(*id).ok()?, addr.clone())))
        .collect();
    let mut q = QuorumConfig::new(voters, listen);
    q.advertised = controller_address(config);
    q.session_timeout = Duration::from_millis(config.broker_session_timeout_ms);
    q.heartbeat_interval = Duration::from_millis(config.broker_heartbeat_interval_ms);
    let value = |name: &str| {
        config
            .broker_value(name)
            .map(|(v, _)| v)
            .unwrap_or_default()
    };
    q.rebalance = (value("auto.leader.rebalance.enable") == "true").then(|| RebalanceConfig {
        interval: Duration::from_secs(
            value("leader.imbalance.check.interval.seconds")
                .parse()
                .unwrap_or(300),
        ),
        percentage: value("leader.imbalance.per.broker.percentage")
            .parse()
            .unwrap_or(10),
    });
    // Nodes dial each other on this listener too: over TLS each verifies the other's
    // certificate, so the listener needs a truststore.
    if let Some(settings) = config.security.tls.get(&listener.name) {
        let tls = TlsListener::new(settings.clone())?;
        if tls.connector().is_none() {
            anyhow::bail!(
                "controller listener {} uses TLS: give it ssl.truststore.location so nodes can verify each other",
                listener.name
            );
        }
        q.tls = Some(Arc::new(tls));
    }
    Ok(Some(q))
}

/// On a SASL inter-broker listener with SCRAM, the brokers' own user (from their JAAS
/// settings) needs a credential before followers can fetch. Kafka has operators add it
/// when formatting storage; here the first broker to start adds it. An existing
/// credential is left alone: an operator may have changed it on purpose.
async fn ensure_inter_broker_scram_user(
    config: &Config,
    controller: &Controller,
) -> anyhow::Result<()> {
    let security = &config.security;
    let Some(crate::sasl::Mechanism::Scram(mechanism)) = security.sasl.inter_broker_mechanism
    else {
        return Ok(());
    };
    let Some((user, password)) = security
        .sasl
        .listeners
        .get(&security.inter_broker)
        .and_then(|l| {
            l.own_credentials
                .get(&crate::sasl::Mechanism::Scram(mechanism))
        })
    else {
        return Ok(());
    };
    let exists = controller
        .image()
        .scram_credentials
        .get(user)
        .is_some_and(|c| c.contains_key(&mechanism));
    if exists {
        return Ok(());
    }
    let credential = crate::sasl::ScramCredential::new(mechanism, password, 8192);
    let cmd = MetadataCommand::AlterScramCredential {
        user: user.clone(),
        mechanism,
        credential: Some(credential),
    };
    if let CommandResult::Err(e) = controller.propose(cmd).await? {
        anyhow::bail!("cannot add the inter-broker SCRAM user {user}: {e}");
    }
    info!(%user, mechanism = mechanism.name(), "added the inter-broker SCRAM user");
    Ok(())
}

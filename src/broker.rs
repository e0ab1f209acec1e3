//! Builds the subsystems in dependency order and tears them down in reverse, each step
//! bounded in time.
//!
//! Start: log recovery → metadata quorum → client listeners bound → broker registered →
//! partition logs reconciled with metadata → background tasks → accepting clients.
//! Shutdown: stop accepting and finish in-flight requests → stop background tasks →
//! flush and checkpoint every log → stop the metadata quorum.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::cluster::controller::ControllerConfig;
use crate::cluster::{BrokerMeta, CommandResult, Controller, MetadataCommand};
use crate::config::Config;
use crate::group::GroupManager;
use crate::log::LogManager;
use crate::producer_ids::ProducerIdManager;
use crate::replica::ReplicaManager;
use crate::server::listener;

/// State shared by every connection and handler.
pub struct BrokerState {
    pub config: Arc<Config>,
    pub node_id: i32,
    pub controller: Arc<Controller>,
    pub logs: Arc<LogManager>,
    pub replicas: Arc<ReplicaManager>,
    pub producer_ids: ProducerIdManager,
    pub groups: Arc<GroupManager>,
    shutting_down: AtomicBool,
}

impl BrokerState {
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }
}

/// A running broker.
pub struct Broker {
    state: Arc<BrokerState>,
    client_addrs: Vec<SocketAddr>,
    shutdown_tx: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

impl Broker {
    pub async fn start(config: Config) -> anyhow::Result<Broker> {
        let config = Arc::new(config);
        let started = std::time::Instant::now();
        for dir in &config.log_dirs {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create log dir {}", dir.display()))?;
        }
        let logs = LogManager::open(config.clone()).context("opening log directories")?;
        let controller = Controller::start(ControllerConfig {
            node_id: config.node_id,
            dir: config.metadata_dir.clone(),
            cluster_id: config.cluster_id.clone(),
        })
        .await
        .context("starting the metadata quorum")?;

        let mut bound = Vec::new();
        for l in &config.listeners {
            let tcp = listener::bind(l)
                .with_context(|| format!("cannot bind listener {}", l.bind_addr()))?;
            bound.push((l.clone(), tcp.local_addr()?, tcp));
        }
        let client_addrs: Vec<SocketAddr> = bound.iter().map(|(_, a, _)| *a).collect();

        // Advertise the first listener's address; a configured port 0 becomes the real one.
        let adv = &config.advertised_listeners[0];
        let port = if adv.port == 0 {
            client_addrs[0].port()
        } else {
            adv.port
        };
        let me = BrokerMeta {
            id: config.node_id,
            host: adv.host.clone(),
            port,
            rack: config.rack.clone(),
        };
        if controller.image().brokers.get(&config.node_id) != Some(&me) {
            let result = controller
                .propose(MetadataCommand::RegisterBroker(me))
                .await?;
            if let CommandResult::Err(e) = result {
                anyhow::bail!("broker registration refused: {e}");
            }
        }

        let replicas = ReplicaManager::new(config.clone(), logs.clone(), controller.clone());
        replicas.reconcile(&controller.image());
        let groups = GroupManager::new(config.clone(), controller.clone(), replicas.clone());
        let state = Arc::new(BrokerState {
            config: config.clone(),
            node_id: config.node_id,
            controller: controller.clone(),
            logs: logs.clone(),
            replicas: replicas.clone(),
            producer_ids: ProducerIdManager::new(controller.clone()),
            groups: groups.clone(),
            shutting_down: AtomicBool::new(false),
        });

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut background = logs.start_background(shutdown_rx.clone());
        background.push(replicas.start(shutdown_rx.clone()));
        background.push(crate::replica::fetcher::start(
            replicas.clone(),
            shutdown_rx.clone(),
        ));
        background.extend(groups.start(shutdown_rx.clone()));
        let mut listeners = Vec::new();
        for (l, addr, tcp) in bound {
            info!(listener = %l.name, %addr, "listening");
            listeners.push(tokio::spawn(listener::accept_loop(
                state.clone(),
                tcp,
                l.name.clone(),
                shutdown_rx.clone(),
            )));
        }
        metrics::gauge!(crate::metrics::UP).set(1.0);
        info!(
            node_id = config.node_id,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "broker started"
        );
        Ok(Broker {
            state,
            client_addrs,
            shutdown_tx,
            listeners,
            background,
        })
    }

    /// The bound address of the first client listener (useful when configured with port 0).
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addrs[0]
    }

    pub fn state(&self) -> &Arc<BrokerState> {
        &self.state
    }

    /// Ordered, timed shutdown.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        info!("shutting down");
        metrics::gauge!(crate::metrics::UP).set(0.0);
        self.state.shutting_down.store(true, Ordering::Relaxed);
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
        info!("shutdown complete");
        Ok(())
    }
}

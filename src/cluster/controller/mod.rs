//! The node's handle on the metadata quorum: start/bootstrap, propose, read the image,
//! and the controller duties of the Raft leader (broker liveness and fencing).
//!
//! `Controller` wires the pieces together: the sled store, openraft with the log storage
//! and state machine adapters, the image channel and, in a quorum, the internal listener.
//! The state machine publishes an image after every applied batch; a small task here
//! overlays `controller_id` with the current Raft leader, because leadership is Raft
//! state, not replicated metadata.
//!
//! Two ways to start (the single-node path is the cluster path with one member):
//! - no quorum configured: the node bootstraps itself as the only voter, exactly as a
//!   standalone broker, and no internal listener is bound;
//! - `controller.quorum.voters`: the voter with the lowest id initialises openraft with
//!   every voter (the others wait to hear from a leader); a restart never initialises
//!   again. `start` returns once a leader is known and this node has applied everything
//!   that leader had committed (a read index), or fails with a clear error.
//!
//! `propose` works on every node: a follower forwards the command to the leader over the
//! internal listener and then waits until it has applied the command itself, so
//! `image()` shows the change when `propose` returns, wherever it was called.
//!
//! Liveness (the leader only): every broker heartbeats the leader; a broker unheard of for
//! the session timeout is fenced (`FenceBroker`), and unfenced when it heartbeats again
//! and has applied the metadata the leader had then. Fencing and unfencing are committed
//! only by the leader that decided them, never forwarded.
//! A new leader gives every broker a full session before fencing it, since it has no
//! heartbeat history of its own.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, Fatal, InitializeError, RaftError};
use openraft::{BasicNode, LogIdOptionExt, RaftMetrics, ServerState, SnapshotPolicy};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::cluster_id::random_cluster_id;
use super::image::BrokerMeta;
use super::log_store::LogStore;
use super::network::NetworkFactory;
use super::rebalance::{rebalance_loop, RebalanceConfig};
use super::rpc::{Request, Response, RpcClient, RpcError};
use super::state_machine::{ImageSender, StateMachineStore};
use super::store::MetadataStore;
use super::store_sled::SledStore;
use super::types::{NodeId, Raft};
use super::{ClusterError, CommandResult, MetadataCommand, MetadataError, MetadataImage};
use crate::tls::TlsListener;

/// How long a single node's `start` waits to become leader and catch up.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `shutdown` waits for openraft's tasks to let go of the store.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `propose` keeps looking for a leader to take a command.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a forwarded request may take on the leader (a commit needs a quorum round).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a broker's controlled shutdown waits for the controller.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

mod liveness;
mod propose;

use liveness::fence_loop;

/// What the controller needs from the broker config.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub node_id: i32,
    /// Directory of the sled database (Raft log, vote, applied state, snapshots).
    pub dir: PathBuf,
    /// Cluster id to use when bootstrapping a new cluster; generated when `None`.
    pub cluster_id: Option<String>,
    /// `None`: a single self-bootstrapped node.
    pub quorum: Option<QuorumConfig>,
}

/// A multi-node metadata quorum (`controller.quorum.voters`).
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// Voter id → `host:port` of its internal (CONTROLLER) listener.
    pub voters: BTreeMap<NodeId, String>,
    /// Where this node binds its internal listener.
    pub listen: String,
    /// Where the other nodes reach that listener (a node joining as a learner gives
    /// this address to the quorum).
    pub advertised: String,
    /// `broker.session.timeout.ms`.
    pub session_timeout: Duration,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// How long `start` waits for a leader and for catching up.
    pub start_timeout: Duration,
    /// Build a snapshot after this many applied entries.
    pub snapshot_logs: u64,
    /// Log entries kept behind a snapshot (the rest is purged), so a briefly lagging
    /// follower catches up from the log rather than with a whole snapshot.
    pub keep_logs_after_snapshot: u64,
    /// `auto.leader.rebalance.enable` and its settings; `None` when off.
    pub rebalance: Option<RebalanceConfig>,
    /// TLS on the CONTROLLER listener, for serving peers and for dialling them.
    pub tls: Option<Arc<TlsListener>>,
}

impl QuorumConfig {
    pub fn new(voters: BTreeMap<NodeId, String>, listen: String) -> QuorumConfig {
        QuorumConfig {
            voters,
            advertised: listen.clone(),
            listen,
            session_timeout: Duration::from_millis(9000),
            heartbeat_interval: Duration::from_millis(2000),
            start_timeout: Duration::from_secs(60),
            snapshot_logs: 5000,
            keep_logs_after_snapshot: 1000,
            rebalance: None,
            tls: None,
        }
    }
}

/// The leader's view of broker liveness; reset whenever this node's leadership changes.
#[derive(Default)]
struct Liveness {
    /// Term of the leadership this view belongs to.
    term: Option<u64>,
    last_seen: HashMap<i32, Instant>,
    /// Fenced brokers heartbeating again: the metadata index each must have applied
    /// before it is unfenced (the leader's applied index at its first heartbeat).
    catch_up: HashMap<i32, u64>,
}

/// A running metadata node.
pub struct Controller {
    pub(super) node_id: NodeId,
    pub(super) raft: Raft,
    images: ImageSender,
    image_rx: watch::Receiver<Arc<MetadataImage>>,
    quorum: Option<QuorumConfig>,
    /// Taken (and the database closed) by `shutdown`.
    store: Mutex<Option<Arc<SledStore>>>,
    /// Where the store lives: `shutdown` returns once its lock is free.
    dir: PathBuf,
    /// Leader watch, internal listener, fencing: stopped by `shutdown`.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The broker heartbeat task; stopped first at a controlled shutdown.
    heartbeats: Mutex<Option<JoinHandle<()>>>,
    liveness: Mutex<Liveness>,
    /// Idle connections to peers, reused for forwarded proposals and heartbeats.
    peers: Mutex<Vec<RpcClient>>,
}

impl Controller {
    /// Open the store, start openraft, bootstrap if the store is new, wait until a leader
    /// is known and this node has applied what it committed, and make sure the cluster id
    /// is set.
    pub async fn start(cfg: ControllerConfig) -> Result<Arc<Controller>, ClusterError> {
        let node_id = NodeId::try_from(cfg.node_id)
            .map_err(|_| ClusterError::Raft(format!("invalid node id {}", cfg.node_id)))?;
        // Bind first: a port conflict is the most likely misconfiguration, and peers must
        // reach us as soon as openraft runs.
        let listener = match &cfg.quorum {
            Some(q) => Some(TcpListener::bind(&q.listen).await.map_err(|e| {
                ClusterError::Raft(format!(
                    "cannot bind the controller listener {}: {e}",
                    q.listen
                ))
            })?),
            None => None,
        };
        // sled replays its log on open, which can take a while on a large database.
        let dir = cfg.dir.clone();
        let store = tokio::task::spawn_blocking(move || SledStore::open(&dir))
            .await
            .map_err(|e| ClusterError::Store(format!("open task failed: {e}")))?
            .map_err(store_err)?;
        let store = Arc::new(store);

        let initial = MetadataImage {
            controller_id: -1,
            ..MetadataImage::default()
        };
        let (tx, image_rx) = watch::channel(Arc::new(initial));
        let images: ImageSender = Arc::new(tx);
        let sm = StateMachineStore::open(store.clone(), images.clone()).map_err(store_err)?;

        let raft = Raft::new(
            node_id,
            raft_config(cfg.quorum.as_ref())?,
            NetworkFactory {
                node_id,
                tls: cfg.quorum.as_ref().and_then(|q| q.tls.clone()),
            },
            LogStore::new(store.clone()),
            sm,
        )
        .await
        .map_err(fatal_err)?;

        let controller = Arc::new(Controller {
            node_id,
            raft,
            images,
            image_rx,
            quorum: cfg.quorum.clone(),
            store: Mutex::new(Some(store)),
            dir: cfg.dir.clone(),
            tasks: Mutex::new(Vec::new()),
            heartbeats: Mutex::new(None),
            liveness: Mutex::new(Liveness::default()),
            peers: Mutex::new(Vec::new()),
        });
        if let Some(listener) = listener {
            let tls = cfg.quorum.as_ref().and_then(|q| q.tls.clone());
            let task = tokio::spawn(super::server::accept_loop(
                listener,
                controller.clone(),
                tls,
            ));
            controller.tasks.lock().push(task);
        }
        if let Err(e) = controller.bootstrap(cfg.cluster_id).await {
            // Release the database so that a retry in this process can open it again.
            if let Err(stop) = controller.shutdown().await {
                tracing::warn!(error = %stop, "metadata shutdown after a failed start");
            }
            return Err(e);
        }
        if controller.quorum.is_some() {
            let task = tokio::spawn(fence_loop(Arc::downgrade(&controller)));
            controller.tasks.lock().push(task);
        }
        if let Some(cfg) = controller.quorum.as_ref().and_then(|q| q.rebalance) {
            let task = tokio::spawn(rebalance_loop(Arc::downgrade(&controller), cfg));
            controller.tasks.lock().push(task);
        }
        Ok(controller)
    }

    async fn bootstrap(&self, cluster_id: Option<String>) -> Result<(), ClusterError> {
        let voters: Option<BTreeMap<NodeId, BasicNode>> = match &self.quorum {
            None => Some(BTreeMap::from([(self.node_id, BasicNode::default())])),
            // Only the lowest id initialises, so two nodes never start rival clusters.
            Some(q) if q.voters.keys().next() == Some(&self.node_id) => Some(
                q.voters
                    .iter()
                    .map(|(id, addr)| (*id, BasicNode::new(addr)))
                    .collect(),
            ),
            Some(_) => None,
        };
        if let Some(voters) = voters {
            if !self.raft.is_initialized().await.map_err(fatal_err)? {
                match self.raft.initialize(voters).await {
                    Ok(()) => {}
                    // Someone (a previous attempt, or a vote from a peer) got there first.
                    Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                    Err(e) => return Err(ClusterError::Raft(e.to_string())),
                }
            }
        }

        match &self.quorum {
            None => self.wait_single_leader().await?,
            Some(q) => {
                if !q.voters.contains_key(&self.node_id) {
                    self.join_as_learner(q).await?;
                }
                self.wait_caught_up(q.start_timeout).await?
            }
        }

        let mut rx = self.raft.metrics();
        let images = self.images.clone();
        set_controller_id(&images, &rx.borrow_and_update());
        self.tasks.lock().push(tokio::spawn(async move {
            loop {
                set_controller_id(&images, &rx.borrow_and_update());
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }));

        if self.image().cluster_id.is_empty() {
            let configured = cluster_id.is_some();
            let cluster_id = cluster_id.unwrap_or_else(random_cluster_id);
            tracing::info!(%cluster_id, "initialising metadata for a new cluster");
            match self
                .propose(MetadataCommand::InitCluster { cluster_id })
                .await?
            {
                // Several nodes of a new quorum may race to set it: the first one wins.
                CommandResult::Err(MetadataError::AlreadyInitialised(id))
                    if self.quorum.is_some() =>
                {
                    if configured {
                        tracing::warn!(cluster_id = %id, "the cluster already has another id; keeping it");
                    }
                }
                CommandResult::Err(e) => return Err(ClusterError::Raft(e.to_string())),
                CommandResult::Ok | CommandResult::ProducerIds { .. } => {}
            }
        }
        Ok(())
    }

    /// The single node elects itself; wait for that and for its log to be applied.
    async fn wait_single_leader(&self) -> Result<(), ClusterError> {
        let me = self.node_id;
        self.raft
            .wait(Some(START_TIMEOUT))
            .metrics(
                |m| {
                    m.state == ServerState::Leader
                        && m.current_leader == Some(me)
                        && m.last_applied.index() >= m.last_log_index
                },
                "leader with the committed log applied",
            )
            .await
            .map_err(wait_err)?;
        Ok(())
    }

    /// Wait until a leader is known and this node has applied that leader's read index.
    async fn wait_caught_up(&self, timeout: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + timeout;
        let mut metrics = self.raft.metrics();
        let mut last_error = String::from("no leader elected yet");
        loop {
            if Instant::now() >= deadline {
                let voters = self
                    .quorum
                    .as_ref()
                    .map(|q| format!("{:?}", q.voters))
                    .unwrap_or_default();
                return Err(ClusterError::Raft(format!(
                    "metadata quorum not ready after {timeout:?} ({last_error}); \
                     are a majority of controller.quorum.voters {voters} running and reachable?"
                )));
            }
            match self.read_index().await {
                Ok(index) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    self.raft
                        .wait(Some(left))
                        .applied_index_at_least(Some(index), "applied the leader's read index")
                        .await
                        .map_err(wait_err)?;
                    return Ok(());
                }
                Err(e) => last_error = e,
            }
            // Wake on any Raft change (a leader appears), or retry after a moment.
            let _ = tokio::time::timeout(Duration::from_millis(200), metrics.changed()).await;
        }
    }

    /// The latest applied image (cheap: an `Arc` clone).
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image_rx.borrow().clone()
    }

    /// A receiver that sees every new image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image_rx.clone()
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        i32::try_from(self.node_id).unwrap_or(-1)
    }

    /// The TLS its peers are dialled with (the CONTROLLER listener's), if any.
    pub(super) fn rpc_tls(&self) -> Option<Arc<TlsListener>> {
        self.quorum.as_ref().and_then(|q| q.tls.clone())
    }

    /// Whether this node runs in a multi-node quorum (`controller.quorum.voters`).
    pub fn is_quorum(&self) -> bool {
        self.quorum.is_some()
    }

    /// openraft itself, for tests.
    #[cfg(test)]
    pub(crate) fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Stop Raft and flush the store. Idempotent; once it returns, the database is closed
    /// and the same directory can be opened again.
    pub async fn shutdown(&self) -> Result<(), ClusterError> {
        if let Some(task) = self.heartbeats.lock().take() {
            task.abort();
        }
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
        self.peers.lock().clear();
        let stopped = self
            .raft
            .shutdown()
            .await
            .map_err(|e| ClusterError::Raft(format!("raft task failed: {e}")));
        self.images.send_if_modified(|img| {
            if img.controller_id == -1 {
                return false;
            }
            let mut next = MetadataImage::clone(img);
            next.controller_id = -1;
            *img = Arc::new(next);
            true
        });

        let store = self.store.lock().take();
        if let Some(store) = store {
            store.flush().await.map_err(store_err)?;
            let weak = Arc::downgrade(&store);
            drop(store);
            wait_released(&weak).await?;
            wait_unlocked(&self.dir).await?;
        }
        stopped
    }
}

/// openraft's state-machine worker may outlive `Raft::shutdown` by a moment; sled keeps
/// an exclusive lock on the directory until the last handle is dropped.
async fn wait_released(weak: &Weak<SledStore>) -> Result<(), ClusterError> {
    let deadline = tokio::time::Instant::now() + RELEASE_TIMEOUT;
    while weak.strong_count() > 0 {
        if tokio::time::Instant::now() >= deadline {
            return Err(ClusterError::Timeout);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// sled releases its directory lock from a background thread after the last handle is
/// dropped; the store is closed only when another open could take the lock.
async fn wait_unlocked(dir: &Path) -> Result<(), ClusterError> {
    let deadline = tokio::time::Instant::now() + RELEASE_TIMEOUT;
    loop {
        match SledStore::is_locked(dir) {
            Ok(false) => return Ok(()),
            Ok(true) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            Ok(true) => return Err(ClusterError::Timeout),
            Err(e) => return Err(ClusterError::Store(e.to_string())),
        }
    }
}

fn set_controller_id(images: &ImageSender, metrics: &RaftMetrics<NodeId, BasicNode>) {
    let leader = metrics
        .current_leader
        .and_then(|id| i32::try_from(id).ok())
        .unwrap_or(-1);
    images.send_if_modified(|img| {
        if img.controller_id == leader {
            return false;
        }
        let mut next = MetadataImage::clone(img);
        next.controller_id = leader;
        *img = Arc::new(next);
        true
    });
}

/// Timeouts sized for a LAN: a restarted single node elects itself within about half a
/// second. Snapshots every 5000 entries keep the log (and restart replay) short. Snapshot
/// chunks stay far below the internal protocol's frame limit, with a deadline per chunk
/// that a loaded machine meets.
fn raft_config(quorum: Option<&QuorumConfig>) -> Result<Arc<openraft::Config>, ClusterError> {
    let mut config = openraft::Config {
        cluster_name: "weir-metadata".into(),
        heartbeat_interval: 100,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(5000),
        snapshot_max_chunk_size: 1 << 20,
        install_snapshot_timeout: 2000,
        ..openraft::Config::default()
    };
    if let Some(q) = quorum {
        config.snapshot_policy = SnapshotPolicy::LogsSinceLast(q.snapshot_logs.max(1));
        config.max_in_snapshot_log_to_keep = q.keep_logs_after_snapshot;
    }
    config
        .validate()
        .map(Arc::new)
        .map_err(|e| ClusterError::Raft(e.to_string()))
}

fn wait_err(e: openraft::metrics::WaitError) -> ClusterError {
    match e {
        openraft::metrics::WaitError::Timeout(..) => ClusterError::Timeout,
        openraft::metrics::WaitError::ShuttingDown => ClusterError::ShuttingDown,
    }
}

fn store_err(e: super::store::StoreError) -> ClusterError {
    ClusterError::Store(e.to_string())
}

fn fatal_err(e: Fatal<NodeId>) -> ClusterError {
    match e {
        Fatal::Stopped => ClusterError::ShuttingDown,
        other => ClusterError::Raft(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use uuid::Uuid;

    use super::*;
    use crate::cluster::PartitionMeta;

    fn config(dir: &std::path::Path, cluster_id: Option<&str>) -> ControllerConfig {
        ControllerConfig {
            node_id: 1,
            dir: dir.to_path_buf(),
            cluster_id: cluster_id.map(str::to_string),
            quorum: None,
        }
    }

    fn create_topic(name: &str, partitions: i32) -> MetadataCommand {
        MetadataCommand::CreateTopic {
            name: name.into(),
            id: Uuid::new_v4(),
            partitions: (0..partitions)
                .map(|p| PartitionMeta {
                    partition: p,
                    leader: 1,
                    leader_epoch: 0,
                    replicas: vec![1],
                    isr: vec![1],
                    ..Default::default()
                })
                .collect(),
            configs: BTreeMap::from([("cleanup.policy".into(), "compact".into())]),
            internal: false,
        }
    }

    async fn allocate(ctl: &Controller, count: i64) -> i64 {
        match ctl
            .propose(MetadataCommand::AllocateProducerIds { count })
            .await
            .expect("propose")
        {
            CommandResult::ProducerIds { first } => first,
            other => panic!("unexpected result {other:?}"),
        }
    }

    /// The image minus what legitimately changes across a restart (the new leader's
    /// blank entry may advance `applied_index`).
    fn durable_part(img: &MetadataImage) -> MetadataImage {
        MetadataImage {
            applied_index: 0,
            ..img.clone()
        }
    }

    #[tokio::test]
    async fn start_propose_restart_keeps_the_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctl = Controller::start(config(dir.path(), None))
            .await
            .expect("start");
        let first = ctl.image();
        assert_eq!(
            first.cluster_id.len(),
            22,
            "generated Kafka-style cluster id"
        );
        assert_eq!(first.controller_id, 1);

        assert_eq!(
            ctl.propose(create_topic("orders", 3))
                .await
                .expect("create"),
            CommandResult::Ok
        );
        assert_eq!(
            ctl.propose(create_topic("orders", 1))
                .await
                .expect("create again"),
            CommandResult::Err(crate::cluster::MetadataError::TopicExists("orders".into()))
        );
        let changes = BTreeMap::from([("retention.ms".to_string(), Some("1000".to_string()))]);
        ctl.propose(MetadataCommand::AlterTopicConfigs {
            topic: "orders".into(),
            changes,
        })
        .await
        .expect("alter");
        assert_eq!(allocate(&ctl, 1000).await, 0);

        let before = ctl.image();
        // `propose` returns only once the image shows the command.
        assert_eq!(before.topics["orders"].configs["retention.ms"], "1000");
        assert_eq!(before.next_producer_id, 1000);
        ctl.shutdown().await.expect("shutdown");
        ctl.shutdown().await.expect("second shutdown is a no-op");
        assert_eq!(ctl.image().controller_id, -1);
        assert!(matches!(
            ctl.propose(MetadataCommand::AllocateProducerIds { count: 1 })
                .await,
            Err(ClusterError::ShuttingDown)
        ));
        drop(ctl);

        // A different configured id must not re-initialise an existing cluster.
        let ctl = Controller::start(config(dir.path(), Some("ignored")))
            .await
            .expect("restart");
        let after = ctl.image();
        assert_eq!(durable_part(&after), durable_part(&before));
        assert!(after.applied_index >= before.applied_index);
        assert_eq!(allocate(&ctl, 10).await, 1000);
        ctl.shutdown().await.expect("shutdown");
    }

    #[tokio::test]
    async fn configured_cluster_id_is_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctl = Controller::start(config(dir.path(), Some("MkU3OEVBNTcwNTJENDM2Qk")))
            .await
            .expect("start");
        assert_eq!(ctl.image().cluster_id, "MkU3OEVBNTcwNTJENDM2Qk");
        ctl.shutdown().await.expect("shutdown");
    }

    #[tokio::test]
    async fn negative_node_id_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config(dir.path(), None);
        cfg.node_id = -1;
        assert!(matches!(
            Controller::start(cfg).await,
            Err(ClusterError::Raft(_))
        ));
    }

    #[tokio::test]
    async fn a_locked_directory_is_a_store_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctl = Controller::start(config(dir.path(), None))
            .await
            .expect("start");
        assert!(matches!(
            Controller::start(config(dir.path(), None)).await,
            Err(ClusterError::Store(_))
        ));
        ctl.shutdown().await.expect("shutdown");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_proposals_are_serialised() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctl = Controller::start(config(dir.path(), None))
            .await
            .expect("start");
        let mut rx = ctl.subscribe();

        let mut tasks = Vec::new();
        for i in 0..64 {
            let ctl = ctl.clone();
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    Ok(allocate(&ctl, 7).await)
                } else {
                    Err(ctl
                        .propose(create_topic("contended", 1))
                        .await
                        .expect("propose"))
                }
            }));
        }
        let mut firsts = Vec::new();
        let mut created = 0;
        for t in tasks {
            match t.await.expect("join") {
                Ok(first) => firsts.push(first),
                Err(CommandResult::Ok) => created += 1,
                Err(CommandResult::Err(crate::cluster::MetadataError::TopicExists(_))) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(created, 1, "exactly one CreateTopic wins");
        firsts.sort_unstable();
        let expected: Vec<i64> = (0..32).map(|i| i * 7).collect();
        assert_eq!(firsts, expected, "blocks are disjoint and contiguous");

        assert!(rx.has_changed().expect("sender alive"));
        let seen = rx.borrow_and_update().clone();
        assert_eq!(seen.next_producer_id, 32 * 7);
        ctl.shutdown().await.expect("shutdown");
    }

    #[tokio::test]
    async fn producer_id_blocks_never_overlap_across_restarts_and_snapshots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut handed_out = BTreeSet::new();
        for round in 0..3 {
            let ctl = Controller::start(config(dir.path(), None))
                .await
                .expect("start");
            for _ in 0..5 {
                let first = allocate(&ctl, 100).await;
                assert!(handed_out.insert(first), "block {first} handed out twice");
            }
            if round == 1 {
                // Restart from a snapshot with the log before it purged.
                let applied = ctl.image().applied_index;
                ctl.raft.trigger().snapshot().await.expect("snapshot");
                ctl.raft
                    .wait(Some(Duration::from_secs(5)))
                    .metrics(|m| m.snapshot.index() >= Some(applied), "snapshot")
                    .await
                    .expect("snapshot built");
                ctl.raft.trigger().purge_log(applied).await.expect("purge");
                ctl.raft
                    .wait(Some(Duration::from_secs(5)))
                    .metrics(|m| m.purged.index() >= Some(applied), "purged")
                    .await
                    .expect("log purged");
            }
            ctl.shutdown().await.expect("shutdown");
        }
        let firsts: Vec<i64> = handed_out.into_iter().collect();
        assert_eq!(firsts, (0..15).map(|i| i * 100).collect::<Vec<_>>());
    }
}

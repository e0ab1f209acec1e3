//! The node's handle on the metadata quorum: start/bootstrap, propose, read the image.
//!
//! `Controller` wires the pieces together: the sled store, openraft with the log storage
//! and state machine adapters, and the image channel. The state machine publishes an
//! image after every applied batch; a small task here overlays `controller_id` with the
//! current Raft leader, because leadership is Raft state, not replicated metadata.
//!
//! Today a node always bootstraps itself as the only voter (DESIGN decision 5: the
//! single-node path is the cluster path with one member). Joining other nodes needs the
//! internal transport (see [`super::network`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use openraft::error::{ClientWriteError, Fatal, InitializeError, RaftError};
use openraft::{BasicNode, LogIdOptionExt, RaftMetrics, ServerState, SnapshotPolicy};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::cluster_id::random_cluster_id;
use super::log_store::LogStore;
use super::network::NetworkFactory;
use super::state_machine::{ImageSender, StateMachineStore};
use super::store::MetadataStore;
use super::store_sled::SledStore;
use super::types::{NodeId, Raft};
use super::{ClusterError, CommandResult, MetadataCommand, MetadataImage};

/// How long `start` waits for this node to become leader and catch up.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `shutdown` waits for openraft's tasks to let go of the store.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the controller needs from the broker config.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub node_id: i32,
    /// Directory of the sled database (Raft log, vote, applied state, snapshots).
    pub dir: PathBuf,
    /// Cluster id to use when bootstrapping a new cluster; generated when `None`.
    pub cluster_id: Option<String>,
}

/// A running metadata node.
pub struct Controller {
    node_id: NodeId,
    raft: Raft,
    images: ImageSender,
    image_rx: watch::Receiver<Arc<MetadataImage>>,
    /// Taken (and the database closed) by `shutdown`.
    store: Mutex<Option<Arc<SledStore>>>,
    leader_watch: Mutex<Option<JoinHandle<()>>>,
}

impl Controller {
    /// Open the store, start openraft, bootstrap a one-voter cluster if the store is new,
    /// wait until this node is leader and has applied everything committed, and make sure
    /// the cluster id is set.
    pub async fn start(cfg: ControllerConfig) -> Result<Arc<Controller>, ClusterError> {
        let node_id = NodeId::try_from(cfg.node_id)
            .map_err(|_| ClusterError::Raft(format!("invalid node id {}", cfg.node_id)))?;
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
            raft_config()?,
            NetworkFactory,
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
            store: Mutex::new(Some(store)),
            leader_watch: Mutex::new(None),
        });
        if let Err(e) = controller.bootstrap(cfg.cluster_id).await {
            // Release the database so that a retry in this process can open it again.
            if let Err(stop) = controller.shutdown().await {
                tracing::warn!(error = %stop, "metadata shutdown after a failed start");
            }
            return Err(e);
        }
        Ok(controller)
    }

    async fn bootstrap(&self, cluster_id: Option<String>) -> Result<(), ClusterError> {
        if !self.raft.is_initialized().await.map_err(fatal_err)? {
            let voters = BTreeMap::from([(self.node_id, BasicNode::default())]);
            match self.raft.initialize(voters).await {
                Ok(()) => {}
                // Someone (a previous attempt) got there first: nothing to do.
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(ClusterError::Raft(e.to_string())),
            }
        }

        let me = self.node_id;
        let metrics = self
            .raft
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
            .map_err(|e| match e {
                openraft::metrics::WaitError::Timeout(..) => ClusterError::Timeout,
                openraft::metrics::WaitError::ShuttingDown => ClusterError::ShuttingDown,
            })?;
        set_controller_id(&self.images, &metrics);

        let mut rx = self.raft.metrics();
        let images = self.images.clone();
        *self.leader_watch.lock() = Some(tokio::spawn(async move {
            loop {
                set_controller_id(&images, &rx.borrow_and_update());
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }));

        if self.image().cluster_id.is_empty() {
            let cluster_id = cluster_id.unwrap_or_else(random_cluster_id);
            tracing::info!(%cluster_id, "initialising metadata for a new cluster");
            match self
                .propose(MetadataCommand::InitCluster { cluster_id })
                .await?
            {
                CommandResult::Err(e) => return Err(ClusterError::Raft(e.to_string())),
                CommandResult::Ok | CommandResult::ProducerIds { .. } => {}
            }
        }
        Ok(())
    }

    /// The latest applied image (cheap: an `Arc` clone).
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image_rx.borrow().clone()
    }

    /// A receiver that sees every new image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image_rx.clone()
    }

    /// Commit a command through Raft and return its result once applied locally
    /// (the image returned by `image()` afterwards reflects it).
    pub async fn propose(&self, cmd: MetadataCommand) -> Result<CommandResult, ClusterError> {
        match self.raft.client_write(cmd).await {
            Ok(resp) => Ok(resp.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(ClusterError::NotLeader)
            }
            Err(RaftError::APIError(e)) => Err(ClusterError::Raft(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(fatal_err(f)),
        }
    }

    /// Stop Raft and flush the store. Idempotent; once it returns, the database is closed
    /// and the same directory can be opened again.
    pub async fn shutdown(&self) -> Result<(), ClusterError> {
        if let Some(task) = self.leader_watch.lock().take() {
            task.abort();
        }
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
/// second. Snapshots every 5000 entries keep the log (and restart replay) short.
fn raft_config() -> Result<Arc<openraft::Config>, ClusterError> {
    let config = openraft::Config {
        cluster_name: "weir-metadata".into(),
        heartbeat_interval: 100,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(5000),
        ..openraft::Config::default()
    };
    config
        .validate()
        .map(Arc::new)
        .map_err(|e| ClusterError::Raft(e.to_string()))
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

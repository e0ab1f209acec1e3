//! Multi-node tests of the metadata quorum: three in-process controllers talking over
//! their internal listeners on 127.0.0.1 (forwarding, snapshots, fencing).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::LogIdOptionExt;
use uuid::Uuid;

use super::controller::{Controller, ControllerConfig, QuorumConfig};
use super::{BrokerMeta, CommandResult, MetadataCommand, PartitionMeta};

/// Free ports for the internal listeners (bound then released: good enough on loopback).
fn free_ports(n: usize) -> Vec<u16> {
    let socks: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    socks
        .iter()
        .map(|s| s.local_addr().expect("addr").port())
        .collect()
}

struct Cluster {
    dirs: Vec<tempfile::TempDir>,
    ports: Vec<u16>,
    nodes: Vec<Option<Arc<Controller>>>,
    tune: fn(&mut QuorumConfig),
}

impl Cluster {
    async fn start(n: usize, tune: fn(&mut QuorumConfig)) -> Cluster {
        let mut c = Cluster {
            dirs: (0..n)
                .map(|_| tempfile::tempdir().expect("tempdir"))
                .collect(),
            ports: free_ports(n),
            nodes: (0..n).map(|_| None).collect(),
            tune,
        };
        // Every node's start waits for a quorum, so start them together.
        let starts: Vec<_> = (0..n).map(|i| c.config(i)).map(Controller::start).collect();
        for (i, ctl) in futures::future::join_all(starts)
            .await
            .into_iter()
            .enumerate()
        {
            c.nodes[i] = Some(ctl.expect("controller starts"));
        }
        c
    }

    fn config(&self, i: usize) -> ControllerConfig {
        let voters = self
            .ports
            .iter()
            .enumerate()
            .map(|(j, p)| (j as u64 + 1, format!("127.0.0.1:{p}")))
            .collect();
        let mut q = QuorumConfig::new(voters, format!("127.0.0.1:{}", self.ports[i]));
        q.start_timeout = Duration::from_secs(20);
        (self.tune)(&mut q);
        ControllerConfig {
            node_id: i as i32 + 1,
            dir: self.dirs[i].path().to_path_buf(),
            cluster_id: None,
            quorum: Some(q),
        }
    }

    fn node(&self, i: usize) -> &Arc<Controller> {
        self.nodes[i].as_ref().expect("node running")
    }

    async fn stop(&mut self, i: usize) {
        if let Some(ctl) = self.nodes[i].take() {
            ctl.shutdown().await.expect("shutdown");
        }
    }

    async fn restart(&mut self, i: usize) {
        let ctl = Controller::start(self.config(i)).await.expect("restart");
        self.nodes[i] = Some(ctl);
    }

    /// Index of the node that leads (by the images' controller id).
    async fn leader(&self) -> usize {
        for _ in 0..200 {
            for ctl in self.nodes.iter().flatten() {
                let id = ctl.image().controller_id;
                if id > 0 && self.nodes[id as usize - 1].is_some() {
                    return id as usize - 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no leader");
    }

    async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i).await;
        }
    }
}

fn no_tuning(_: &mut QuorumConfig) {}

fn create_topic(name: &str, partitions: Vec<PartitionMeta>) -> MetadataCommand {
    MetadataCommand::CreateTopic {
        name: name.into(),
        id: Uuid::new_v4(),
        partitions,
        configs: BTreeMap::new(),
        internal: false,
    }
}

fn part(p: i32, replicas: &[i32]) -> PartitionMeta {
    PartitionMeta {
        partition: p,
        leader: replicas[0],
        leader_epoch: 0,
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
        ..Default::default()
    }
}

fn broker(id: i32) -> BrokerMeta {
    BrokerMeta {
        id,
        host: "127.0.0.1".into(),
        port: 9000 + id as u16,
        rack: None,
        listeners: Vec::new(),
    }
}

/// Wait until `f` holds for the node's image.
async fn eventually(ctl: &Controller, what: &str, f: impl Fn(&super::MetadataImage) -> bool) {
    let mut rx = ctl.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if f(&rx.borrow_and_update()) {
            return;
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            panic!("timed out waiting for: {what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_form_a_quorum_and_followers_forward_proposals() {
    let c = Cluster::start(3, no_tuning).await;
    let leader = c.leader().await;
    let cluster_id = c.node(0).image().cluster_id.clone();
    assert_eq!(cluster_id.len(), 22);
    for i in 0..3 {
        assert_eq!(c.node(i).image().cluster_id, cluster_id, "one cluster id");
    }
    // Propose on every node, leader or not: each sees its own result applied.
    for i in 0..3 {
        let name = format!("t{i}");
        let r = c
            .node(i)
            .propose(create_topic(&name, vec![part(0, &[1])]))
            .await
            .expect("propose");
        assert_eq!(r, CommandResult::Ok);
        assert!(c.node(i).image().topics.contains_key(&name), "node {i}");
    }
    let follower = (leader + 1) % 3;
    let r = c
        .node(follower)
        .propose(MetadataCommand::AllocateProducerIds { count: 10 })
        .await
        .expect("allocate");
    assert!(matches!(r, CommandResult::ProducerIds { .. }));
    for i in 0..3 {
        eventually(c.node(i), "every topic everywhere", |img| {
            img.topics.len() == 3
        })
        .await;
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_loss_elects_a_new_controller_and_restart_catches_up() {
    let mut c = Cluster::start(3, no_tuning).await;
    let old = c.leader().await;
    c.stop(old).await;
    let new = c.leader().await;
    assert_ne!(new, old);
    let other = (0..3).find(|i| *i != old && *i != new).expect("third node");
    // A proposal through the surviving follower reaches the new leader.
    let r = c
        .node(other)
        .propose(create_topic("after", vec![part(0, &[1])]))
        .await
        .expect("propose after failover");
    assert_eq!(r, CommandResult::Ok);
    c.restart(old).await;
    // `start` returned only after catching up with the leader's commit index.
    assert!(c.node(old).image().topics.contains_key("after"));
    c.shutdown().await;
}

/// A node that was down while the leader snapshotted and purged its log catches up
/// through InstallSnapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_node_catches_up_from_a_snapshot() {
    fn snapshot_often(q: &mut QuorumConfig) {
        q.snapshot_logs = 20;
        q.keep_logs_after_snapshot = 0;
    }
    let mut c = Cluster::start(3, snapshot_often).await;
    let leader = c.leader().await;
    let down = (leader + 1) % 3;
    c.stop(down).await;
    let ctl = c.node(leader).clone();
    for i in 0..60 {
        ctl.propose(create_topic(&format!("s{i}"), vec![part(0, &[1])]))
            .await
            .expect("propose");
    }
    // The policy snapshots by itself; purge everything it covers, whatever the down
    // node still needs.
    let raft = ctl.raft();
    let m = raft
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.snapshot.index() >= Some(40), "snapshot built")
        .await
        .expect("snapshot");
    let upto = m.snapshot.index().expect("snapshot index");
    raft.trigger().purge_log(upto).await.expect("purge");
    raft.wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.purged.index() >= Some(upto), "log purged")
        .await
        .expect("purged");

    c.restart(down).await;
    let node = c.node(down).clone();
    eventually(&node, "all topics from the snapshot", |img| {
        (0..60).all(|i| img.topics.contains_key(&format!("s{i}")))
    })
    .await;
    let snap = node.raft().metrics().borrow().snapshot;
    assert!(
        snap.index() >= Some(upto),
        "installed a snapshot: {snap:?} vs {upto}"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_brokers_are_fenced_and_lose_their_leaderships() {
    fn fast_sessions(q: &mut QuorumConfig) {
        q.session_timeout = Duration::from_millis(800);
        q.heartbeat_interval = Duration::from_millis(100);
    }
    let mut c = Cluster::start(3, fast_sessions).await;
    for i in 0..3 {
        let b = broker(i as i32 + 1);
        c.node(i)
            .propose(MetadataCommand::RegisterBroker(b.clone()))
            .await
            .expect("register");
        c.node(i).start_heartbeats(b);
    }
    let r = c
        .node(0)
        .propose(create_topic(
            "f",
            vec![part(0, &[3, 1, 2]), part(1, &[1, 2, 3]), part(2, &[3])],
        ))
        .await
        .expect("create");
    assert_eq!(r, CommandResult::Ok);
    // All three heartbeat: nobody is fenced for a while.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(c.node(0).image().brokers.len(), 3);

    // Node 3 dies (a majority is left). Its broker must be fenced and lose partition 0.
    c.stop(2).await;
    for i in 0..2 {
        eventually(c.node(i), "broker 3 fenced", |img| {
            img.fenced_brokers.contains_key(&3) && !img.brokers.contains_key(&3)
        })
        .await;
    }
    let img = c.node(1).image();
    let p0 = img.partition("f", 0).expect("p0");
    assert_eq!((p0.leader, p0.leader_epoch), (1, 1));
    assert!(!p0.isr.contains(&3));
    let p2 = img.partition("f", 2).expect("p2");
    assert_eq!((p2.leader, p2.isr.clone()), (-1, vec![3]));

    // Back again: heartbeats unfence it and it leads its sole partition again.
    c.restart(2).await;
    c.node(2).start_heartbeats(broker(3));
    eventually(c.node(0), "broker 3 unfenced", |img| {
        img.brokers.contains_key(&3) && img.partition("f", 2).map(|p| p.leader) == Some(3)
    })
    .await;

    // Controlled shutdown moves leaderships away at once.
    c.node(0).controlled_shutdown(1).await;
    let img = c.node(0).image();
    assert!(img.fenced_brokers.contains_key(&1));
    assert_eq!(img.partition("f", 1).map(|p| p.leader), Some(2));
    c.shutdown().await;
}

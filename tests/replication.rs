//! ISR replication over the real wire path, on one metadata quorum: broker 1 is a full
//! in-process broker; broker 2 is registered in its metadata and runs only a replica
//! manager and the follower fetcher (its own logs in a temporary directory, the same
//! controller's images), so every follower fetch and OffsetForLeaderEpoch travels over
//! TCP to broker 1's client listener.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{batch, Conn, Rec, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weir::cluster::{BrokerMeta, CommandResult, Controller, MetadataCommand, PartitionMeta};
use weir::config::Config;
use weir::log::{LogManager, PartitionLog};
use weir::replica::ReplicaManager;

const TOPIC: &str = "replicated";

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Broker 2: a replica manager and a fetcher over its own log directory.
struct Follower {
    replicas: Arc<ReplicaManager>,
    logs: Arc<LogManager>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl Follower {
    /// Logs are created from the image at once; the fetcher starts with `fetch`.
    async fn start(controller: &Arc<Controller>, dir: tempfile::TempDir, fetch: bool) -> Follower {
        let settings = vec![
            "node.id=2".to_string(),
            format!("log.dirs={}", dir.path().join("data").display()),
            "metrics.listen=".to_string(),
        ];
        let config = Arc::new(Config::load(None, Vec::new(), &settings).expect("config"));
        let logs = LogManager::open(config.clone()).expect("follower logs");
        let replicas = ReplicaManager::new(config, logs.clone(), controller.clone());
        replicas.reconcile(&controller.image());
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = vec![replicas.start(rx.clone())];
        if fetch {
            tasks.push(weir::replica::fetcher::start(replicas.clone(), rx));
        }
        Follower {
            replicas,
            logs,
            shutdown,
            tasks,
            dir,
        }
    }

    fn start_fetcher(&mut self) {
        let rx = self.shutdown.subscribe();
        self.tasks
            .push(weir::replica::fetcher::start(self.replicas.clone(), rx));
    }

    fn log(&self) -> Arc<PartitionLog> {
        self.logs.get(TOPIC, 0).expect("follower log")
    }

    /// Stop fetching and close the logs; the directory is kept for a restart.
    async fn stop(self) -> tempfile::TempDir {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("follower tasks stop")
                .expect("follower task");
        }
        let logs = self.logs.clone();
        tokio::task::spawn_blocking(move || logs.shutdown())
            .await
            .expect("join")
            .expect("follower logs close");
        self.dir
    }
}

/// Broker 1 with broker 2 registered (at a port this test holds but never serves) and
/// the topic created with replicas [1, 2].
async fn leader(min_isr: &str) -> (TestBroker, std::net::TcpListener) {
    let b = TestBroker::start(&[]).await;
    let state = b.broker.as_ref().expect("running").state().clone();
    state
        .replicas
        .set_replica_lag_time_max(Duration::from_millis(1000));
    let placeholder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let r = state
        .controller
        .propose(MetadataCommand::RegisterBroker(BrokerMeta {
            id: 2,
            host: "127.0.0.1".into(),
            port: placeholder.local_addr().expect("addr").port(),
            rack: None,
            listeners: Vec::new(),
        }))
        .await
        .expect("register broker 2");
    assert_eq!(r, CommandResult::Ok);
    let mut c = Conn::connect(b.addr).await;
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(TOPIC))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![CreatableReplicaAssignment::default()
                .with_partition_index(0)
                .with_broker_ids(vec![BrokerId(1), BrokerId(2)])])
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("min.insync.replicas"))
                .with_value(Some(StrBytes::from_string(min_isr.to_string())))])]);
    let resp: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req).await;
    assert_eq!(
        resp.topics[0].error_code, 0,
        "create: {:?}",
        resp.topics[0].error_message
    );
    let p = partition(&b);
    assert_eq!((p.leader, p.isr.clone()), (1, vec![1, 2]));
    (b, placeholder)
}

fn partition(b: &TestBroker) -> PartitionMeta {
    b.broker
        .as_ref()
        .expect("running")
        .state()
        .controller
        .image()
        .partition(TOPIC, 0)
        .expect("partition")
        .clone()
}

fn leader_log(b: &TestBroker) -> Arc<PartitionLog> {
    b.broker
        .as_ref()
        .expect("running")
        .state()
        .logs
        .get(TOPIC, 0)
        .expect("leader log")
}

fn records(n: usize, tag: &str) -> Bytes {
    let value = format!("{tag}-value");
    let recs: Vec<Rec<'_>> = (0..n).map(|_| Rec::kv(b"k", value.as_bytes())).collect();
    batch(&recs, Compression::None, None)
}

async fn produce(
    c: &mut Conn,
    acks: i16,
    timeout_ms: i32,
    records: Bytes,
) -> produce_response::PartitionProduceResponse {
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(TOPIC))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
    resp.responses[0].partition_responses[0].clone()
}

/// Produce right after a leader epoch change: until the leader has taken up its new
/// epoch it answers NOT_LEADER_OR_FOLLOWER, which clients retry; so does this, for 5 s.
async fn produce_after_epoch_change(
    c: &mut Conn,
    acks: i16,
    timeout_ms: i32,
    records: Bytes,
) -> produce_response::PartitionProduceResponse {
    let started = Instant::now();
    loop {
        let r = produce(c, acks, timeout_ms, records.clone()).await;
        if r.error_code != ResponseError::NotLeaderOrFollower.code()
            || started.elapsed() > Duration::from_secs(5)
        {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A consumer fetch (replica id -1) at `offset`.
async fn consume(c: &mut Conn, offset: i64) -> fetch_response::PartitionData {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(TOPIC))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &req).await;
    resp.responses[0].partitions[0].clone()
}

/// Poll `cond` until it holds, at most `within`.
async fn eventually(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every stored byte of a log (whole batches with their offsets and epochs).
fn contents(log: &PartitionLog) -> Bytes {
    log.read(0, 64 << 20, log.log_end_offset(), true)
        .expect("read")
        .records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_completes_after_the_follower_fetched_and_logs_match() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let (b, _port) = leader("2").await;
        let state = b.broker.as_ref().expect("running").state().clone();
        let f = Follower::start(&state.controller, tempfile::tempdir().expect("dir"), true).await;
        let mut c = Conn::connect(b.addr).await;
        for i in 0..5 {
            let r = produce(&mut c, -1, 10_000, records(3, &format!("b{i}"))).await;
            assert_eq!(r.error_code, 0, "acks=all produce {i}");
            assert_eq!(r.base_offset, i * 3);
            // Acknowledged means on the whole ISR: the follower already has it.
            assert!(
                f.log().log_end_offset() >= (i + 1) * 3,
                "follower has batch {i}"
            );
        }
        let leader = leader_log(&b);
        assert_eq!(leader.high_watermark(), 15, "HW = min LEO of the ISR");
        assert_eq!(partition(&b).isr, vec![1, 2]);
        // acks=1 answers after the leader's append; the follower catches up anyway.
        let r = produce(&mut c, 1, 10_000, records(2, "one")).await;
        assert_eq!((r.error_code, r.base_offset), (0, 15));
        eventually(Duration::from_secs(10), "follower HW", || {
            f.log().high_watermark() == 17 && leader.high_watermark() == 17
        })
        .await;
        let fl = f.log();
        assert_eq!(fl.log_end_offset(), leader.log_end_offset());
        assert_eq!(
            contents(&fl),
            contents(&leader),
            "same batches, offsets, epochs"
        );
        assert_eq!(fl.end_offset_for_epoch(0), leader.end_offset_for_epoch(0));
        f.stop().await;
        b.stop().await;
    })
    .await
    .expect("bounded test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_follower_times_out_acks_all_then_leaves_and_rejoins_the_isr() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let (b, _port) = leader("1").await;
        let state = b.broker.as_ref().expect("running").state().clone();
        let f = Follower::start(&state.controller, tempfile::tempdir().expect("dir"), true).await;
        let mut c = Conn::connect(b.addr).await;
        let r = produce(&mut c, -1, 10_000, records(2, "a")).await;
        assert_eq!((r.error_code, r.base_offset), (0, 0));
        let dir = f.stop().await;

        // The follower is gone but still in the ISR: acks=all cannot complete.
        let r = produce(&mut c, -1, 300, records(2, "b")).await;
        assert_eq!(r.error_code, ResponseError::RequestTimedOut.code());
        let leader = leader_log(&b);
        assert_eq!(leader.log_end_offset(), 4);
        assert_eq!(
            leader.high_watermark(),
            2,
            "HW = the stopped follower's LEO"
        );
        // Consumers never read above the high watermark.
        let p = consume(&mut c, 0).await;
        assert_eq!(p.high_watermark, 2);
        assert_eq!(
            common::decode_records(&p.records.unwrap_or_default()).len(),
            2
        );
        let p = consume(&mut c, 2).await;
        assert_eq!(p.error_code, 0);
        assert!(p.records.unwrap_or_default().is_empty());

        // After replica.lag.time.max.ms (1 s here) the leader drops it from the ISR; the
        // high watermark then covers the timed-out write.
        eventually(Duration::from_secs(10), "ISR shrink", || {
            partition(&b).isr == vec![1]
        })
        .await;
        eventually(Duration::from_secs(5), "HW after shrink", || {
            leader.high_watermark() == 4
        })
        .await;
        let r = produce(&mut c, -1, 5_000, records(1, "c")).await;
        assert_eq!(
            (r.error_code, r.base_offset),
            (0, 4),
            "ISR [1], min.insync 1"
        );
        assert_eq!(leader.high_watermark(), 5);

        // Back again: it catches up and rejoins the ISR.
        let f = Follower::start(&state.controller, dir, true).await;
        eventually(Duration::from_secs(10), "ISR expand", || {
            partition(&b).isr == vec![1, 2]
        })
        .await;
        let r = produce(&mut c, -1, 10_000, records(1, "d")).await;
        assert_eq!((r.error_code, r.base_offset), (0, 5));
        assert!(f.log().log_end_offset() >= 6);
        eventually(Duration::from_secs(10), "follower HW", || {
            f.log().high_watermark() == 6
        })
        .await;
        assert_eq!(contents(&f.log()), contents(&leader));
        f.stop().await;
        b.stop().await;
    })
    .await
    .expect("bounded test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_insync_two_refuses_once_the_isr_shrinks() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let (b, _port) = leader("2").await;
        let state = b.broker.as_ref().expect("running").state().clone();
        let f = Follower::start(&state.controller, tempfile::tempdir().expect("dir"), true).await;
        let mut c = Conn::connect(b.addr).await;
        let r = produce(&mut c, -1, 10_000, records(1, "a")).await;
        assert_eq!(r.error_code, 0);
        f.stop().await;
        // Written, then the ISR shrinks below min.insync.replicas while it waits.
        let r = produce(&mut c, -1, 10_000, records(1, "b")).await;
        assert_eq!(
            r.error_code,
            ResponseError::NotEnoughReplicasAfterAppend.code()
        );
        assert_eq!(partition(&b).isr, vec![1]);
        // Now refused before anything is written; acks=1 still works.
        let r = produce(&mut c, -1, 10_000, records(1, "c")).await;
        assert_eq!(r.error_code, ResponseError::NotEnoughReplicas.code());
        assert_eq!(leader_log(&b).log_end_offset(), 2);
        let r = produce(&mut c, 1, 10_000, records(1, "d")).await;
        assert_eq!((r.error_code, r.base_offset), (0, 2));
        b.stop().await;
    })
    .await
    .expect("bounded test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_truncates_a_divergent_tail_to_the_leaders_epoch_end() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let (b, _port) = leader("1").await;
        let state = b.broker.as_ref().expect("running").state().clone();
        let mut f =
            Follower::start(&state.controller, tempfile::tempdir().expect("dir"), false).await;
        let mut c = Conn::connect(b.addr).await;
        // Epoch 0: three batches both logs share (identical bytes, offsets 0..2).
        let shared: Vec<Bytes> = (0..3).map(|i| records(1, &format!("s{i}"))).collect();
        for r in &shared {
            let resp = produce(&mut c, 1, 5_000, r.clone()).await;
            assert_eq!(resp.error_code, 0);
        }
        let fl = f.log();
        for r in &shared {
            fl.append_as_leader(bytes::BytesMut::from(&r[..]), 0)
                .expect("follower append");
        }
        // The follower also has a tail the leader never had, written in epoch 0...
        for i in 0..2 {
            fl.append_as_leader(bytes::BytesMut::from(&records(2, &format!("x{i}"))[..]), 0)
                .expect("divergent append");
        }
        assert_eq!(fl.log_end_offset(), 7);
        // ...while the leader moved on to epoch 1 and wrote different data there.
        let mut p = partition(&b);
        p.leader_epoch += 1;
        let r = state
            .controller
            .propose(MetadataCommand::UpdatePartition {
                topic: TOPIC.into(),
                partition: p,
            })
            .await
            .expect("bump epoch");
        assert_eq!(r, CommandResult::Ok);
        let leader = leader_log(&b);
        eventually(Duration::from_secs(5), "new epoch at the leader", || {
            leader.end_offset_for_epoch(0) == (0, 3)
        })
        .await;
        let r = produce_after_epoch_change(&mut c, 1, 5_000, records(3, "e1")).await;
        assert_eq!((r.error_code, r.base_offset), (0, 3));
        assert_eq!(leader.epoch_at(3), Some(1));

        f.start_fetcher();
        eventually(Duration::from_secs(10), "follower caught up", || {
            fl.log_end_offset() == 6 && fl.epoch_at(5) == Some(1)
        })
        .await;
        assert_eq!(
            fl.end_offset_for_epoch(0),
            (0, 3),
            "epoch 0 ends where the leader's does"
        );
        assert_eq!(contents(&fl), contents(&leader));
        let r = produce(&mut c, -1, 10_000, records(1, "after")).await;
        assert_eq!((r.error_code, r.base_offset), (0, 6));
        eventually(
            Duration::from_secs(10),
            "follower has the last write",
            || fl.log_end_offset() == 7,
        )
        .await;
        f.stop().await;
        b.stop().await;
    })
    .await
    .expect("bounded test");
}

/// A follower fetch (replica id 2) at `offset`, without waiting.
async fn follower_fetch(
    c: &mut Conn,
    replica: i32,
    offset: i64,
    current_epoch: i32,
    last_fetched_epoch: i32,
) -> fetch_response::PartitionData {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(replica))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(TOPIC))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_current_leader_epoch(current_epoch)
                .with_last_fetched_epoch(last_fetched_epoch)
                .with_partition_max_bytes(1 << 20)])]);
    let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &req).await;
    resp.responses[0].partitions[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_fetches_read_to_the_log_end_and_move_the_high_watermark() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let (b, _port) = leader("1").await;
        let state = b.broker.as_ref().expect("running").state().clone();
        let mut c = Conn::connect(b.addr).await;
        let r = produce(&mut c, 1, 5_000, records(3, "a")).await;
        assert_eq!(r.error_code, 0);
        let leader = leader_log(&b);
        assert_eq!((leader.log_end_offset(), leader.high_watermark()), (3, 0));
        // Consumers stop at the high watermark; the follower reads to the log end.
        let p = consume(&mut c, 0).await;
        assert_eq!(p.high_watermark, 0);
        assert!(p.records.unwrap_or_default().is_empty());
        let p = follower_fetch(&mut c, 3, 0, 0, -1).await;
        assert_eq!(
            p.error_code,
            ResponseError::NotLeaderOrFollower.code(),
            "not a replica"
        );
        let p = follower_fetch(&mut c, 2, 0, 0, -1).await;
        assert_eq!(p.error_code, 0);
        assert_eq!(
            common::decode_records(&p.records.unwrap_or_default()).len(),
            3
        );
        // Its next fetch offset is its log end: the whole ISR has offsets 0..2.
        let p = follower_fetch(&mut c, 2, 3, 0, 0).await;
        assert_eq!((p.error_code, p.high_watermark), (0, 3));
        assert_eq!(leader.high_watermark(), 3);
        let p = consume(&mut c, 0).await;
        assert_eq!(
            common::decode_records(&p.records.unwrap_or_default()).len(),
            3
        );
        // A stale leader epoch is fenced.
        let mut meta = partition(&b);
        meta.leader_epoch += 1;
        state
            .controller
            .propose(MetadataCommand::UpdatePartition {
                topic: TOPIC.into(),
                partition: meta,
            })
            .await
            .expect("bump epoch");
        let p = follower_fetch(&mut c, 2, 3, 0, 0).await;
        assert_eq!(p.error_code, ResponseError::FencedLeaderEpoch.code());
        // KIP-320: a follower claiming epoch-0 data past where epoch 0 ends diverges.
        let r = produce_after_epoch_change(&mut c, 1, 5_000, records(1, "b")).await;
        assert_eq!((r.error_code, r.base_offset), (0, 3));
        let p = follower_fetch(&mut c, 2, 4, 1, 0).await;
        assert_eq!(p.error_code, 0);
        assert_eq!(
            (p.diverging_epoch.epoch, p.diverging_epoch.end_offset),
            (0, 3)
        );
        assert!(p.records.unwrap_or_default().is_empty());
        b.stop().await;
    })
    .await
    .expect("bounded test");
}

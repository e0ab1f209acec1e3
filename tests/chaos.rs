//! Failure tests: a real three-node Weir cluster of `weir` processes under
//! SIGKILLs, controller failover, a network partition and a rolling restart, driven by
//! librdkafka (the `rdkafka` crate) as the client.
//!
//! The cluster is the shared test harness's proxied one (`Cluster::start_proxied` in
//! `tests/common/cluster.rs`): every link between nodes, and every client connection,
//! crosses a TCP proxy in this process, which lets a test cut one node off from the
//! others while the test itself still reaches every node.
//!
//! The checker reads every replica's segment files directly and compares them: the
//! acknowledged messages must all be there, once each and in order, and every in-sync
//! replica must hold the same records. Figures (acks lost, duplicates, producer stall
//! per failover) are printed; run with `--nocapture` to see them.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::{metadata, Cluster};
use common::Conn;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

const SESSION_MS: u64 = 2000;
const LAG_MS: u64 = 4000;

// ---------------------------------------------------------------------------------------
// The cluster

/// Three proxied nodes (see `Cluster::start_proxied`) with short session, lag and
/// rebalance times, once every node sees all brokers and a controller.
async fn start_cluster() -> Cluster {
    let c = Cluster::start_proxied(3, |_| {
        vec![
            format!("broker.session.timeout.ms={SESSION_MS}"),
            "broker.heartbeat.interval.ms=250".to_string(),
            format!("replica.lag.time.max.ms={LAG_MS}"),
            "group.initial.rebalance.delay.ms=0".to_string(),
        ]
    })
    .await;
    let n = c.n();
    for i in 0..n {
        c.wait_for(
            i,
            Duration::from_secs(60),
            "brokers and a controller",
            |m| m.brokers.len() == n && m.controller_id.0 > 0,
        )
        .await;
    }
    c
}

/// A live node other than `not`.
fn live_other(c: &Cluster, not: usize) -> usize {
    (0..c.n())
        .find(|&j| j != not && c.alive(j))
        .expect("a live node")
}

/// The current leader (node index) of a partition, as node `via` sees it.
async fn leader(c: &Cluster, via: usize, topic: &str, p: i32) -> usize {
    let m = c
        .wait_for(via, Duration::from_secs(20), "a leader", |m| {
            part(m, topic, p).is_some_and(|x| x.leader_id.0 > 0)
        })
        .await;
    part(&m, topic, p).unwrap().leader_id.0 as usize - 1
}

/// Wait until every partition of `topic` has a full ISR, seen from node `via`.
async fn wait_full_isr(c: &Cluster, via: usize, topic: &str, within: Duration) {
    let n = c.n();
    c.wait_for(via, within, "a full ISR", |m| {
        find_topic(m, topic).is_some_and(|t| {
            !t.partitions.is_empty()
                && t.partitions
                    .iter()
                    .all(|p| p.isr_nodes.len() == n && p.leader_id.0 > 0)
        })
    })
    .await;
}

fn find_topic<'a>(
    m: &'a MetadataResponse,
    t: &str,
) -> Option<&'a metadata_response::MetadataResponseTopic> {
    m.topics
        .iter()
        .find(|x| x.name.as_ref().map(|n| n.0.as_str()) == Some(t))
}

fn part<'a>(
    m: &'a MetadataResponse,
    t: &str,
    p: i32,
) -> Option<&'a metadata_response::MetadataResponsePartition> {
    find_topic(m, t)?
        .partitions
        .iter()
        .find(|x| x.partition_index == p)
}

fn admin(c: &Cluster) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap())
        .create()
        .expect("admin client")
}

/// Create a topic with replication factor 3 and min.insync.replicas=2; retried while
/// the cluster is settling (no controller yet, brokers still fenced).
async fn create_topic(c: &Cluster, name: &str, partitions: i32, within: Duration) {
    let a = admin(c);
    let deadline = Instant::now() + within;
    loop {
        let t = NewTopic::new(name, partitions, TopicReplication::Fixed(3))
            .set("min.insync.replicas", "2");
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let r = a.create_topics([&t], &opts).await;
        let err = match &r {
            Ok(v) => match &v[0] {
                Ok(_) => break,
                Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => break,
                Err(e) => format!("{e:?}"),
            },
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "create topic {name}: {err}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let via = live_other(c, usize::MAX);
    wait_full_isr(c, via, name, Duration::from_secs(20)).await;
}

// ---------------------------------------------------------------------------------------
// The producer and what it saw

#[derive(Default)]
struct Acks {
    /// (sequence, partition, offset, when) per acknowledged message, in ack order.
    ok: Vec<(u64, i32, i64, Instant)>,
    /// (sequence, error) per message that failed for good.
    failed: Vec<(u64, String)>,
}

struct Recorder(Arc<Mutex<Acks>>, Option<Mutex<std::fs::File>>);

impl ClientContext for Recorder {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        use std::io::Write;
        if let Some(f) = &self.1 {
            let _ = writeln!(
                f.lock().unwrap(),
                "{:?} {level:?} {fac} {log_message}",
                Instant::now()
            );
        }
    }
}

impl ProducerContext for Recorder {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        let now = Instant::now();
        let seq = |m: &rdkafka::message::BorrowedMessage<'_>| -> u64 {
            m.key()
                .and_then(|k| std::str::from_utf8(k).ok()?.parse().ok())
                .unwrap_or(u64::MAX)
        };
        let mut a = self.0.lock().unwrap();
        match r {
            Ok(m) => a.ok.push((seq(m), m.partition(), m.offset(), now)),
            Err((e, m)) => a.failed.push((seq(m), e.to_string())),
        }
    }
}

/// An idempotent acks=all producer writing sequence-numbered messages (key and value
/// are the decimal sequence) round-robin over `partitions` until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Acks>>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Load {
    fn start(c: &Cluster, topic: &str, partitions: i32) -> Load {
        let acks = Arc::new(Mutex::new(Acks::default()));
        // WEIR_CHAOS_CLIENT_DEBUG=1 writes librdkafka's debug log next to the nodes'.
        let debug = std::env::var_os("WEIR_CHAOS_CLIENT_DEBUG").is_some();
        let log = debug
            .then(|| Mutex::new(std::fs::File::create(c.dir().join("producer.log")).expect("log")));
        let mut config = ClientConfig::new();
        if debug {
            config
                .set("debug", "eos,msg,protocol,broker,topic")
                .set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
        }
        let producer: ThreadedProducer<Recorder> = config
            .set("bootstrap.servers", c.bootstrap())
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("message.timeout.ms", "90000")
            .set("retry.backoff.ms", "50")
            .set("retry.backoff.max.ms", "500")
            .set("topic.metadata.refresh.interval.ms", "1000")
            .create_with_context(Recorder(acks.clone(), log))
            .expect("producer");
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, topic) = (stop.clone(), topic.to_string());
        let thread = std::thread::spawn(move || {
            let mut seq = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                let key = seq.to_string();
                let p = (seq % partitions as u64) as i32;
                let mut rec = BaseRecord::to(&topic).key(&key).payload(&key).partition(p);
                loop {
                    match producer.send(rec) {
                        Ok(()) => break,
                        Err((_, r)) => {
                            rec = r; // queue full: back off
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
                seq += 1;
                std::thread::sleep(Duration::from_millis(3));
            }
            let _ = producer.flush(Duration::from_secs(90));
            seq
        });
        Load {
            stop,
            acks,
            thread: Some(thread),
        }
    }

    fn acked(&self) -> usize {
        self.acks.lock().unwrap().ok.len()
    }

    /// Wait until at least `more` further messages are acknowledged.
    async fn progress(&self, more: usize, within: Duration, c: &Cluster) {
        let target = self.acked() + more;
        let deadline = Instant::now() + within;
        while self.acked() < target {
            assert!(
                Instant::now() < deadline,
                "producer made no progress in {within:?} ({} acked)\n{}",
                self.acked(),
                c.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop producing and flush; returns how many messages were sent.
    async fn finish(mut self) -> (u64, Acks) {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take().unwrap();
        let sent = tokio::task::spawn_blocking(move || t.join().unwrap())
            .await
            .unwrap();
        let acks = std::mem::take(&mut *self.acks.lock().unwrap());
        (sent, acks)
    }
}

/// The longest gap between consecutive acknowledgements that overlaps `[from, to]`.
fn stall(acks: &Acks, from: Instant, to: Instant) -> Duration {
    let mut times: Vec<Instant> = acks.ok.iter().map(|a| a.3).collect();
    times.sort();
    times
        .windows(2)
        .filter(|w| w[1] > from && w[0] < to)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// The checker

/// (offset, sequence) of every record in node `i`'s replica of a partition, read from
/// its segment files.
fn replica_records(c: &Cluster, i: usize, topic: &str, p: i32) -> Vec<(i64, u64)> {
    let dir = c.data_dir(i).join(format!("{topic}-{p}"));
    let mut segs: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect()
        })
        .unwrap_or_default();
    segs.sort();
    let mut out = Vec::new();
    for s in segs {
        let bytes = Bytes::from(std::fs::read(&s).expect("read segment"));
        for r in common::decode_records(&bytes) {
            let seq = r
                .key
                .as_ref()
                .and_then(|k| std::str::from_utf8(k).ok()?.parse().ok())
                .unwrap_or(u64::MAX);
            out.push((r.offset, seq));
        }
    }
    out
}

/// What the checker found for one partition.
#[derive(Debug, Default)]
struct Report {
    acked: usize,
    lost: usize,
    duplicates: usize,
    out_of_order: usize,
    records: usize,
}

/// Check one partition once the load stopped: all replicas (the ISR must be full)
/// hold identical records; every acknowledged message is there exactly once, at the
/// offset it was acknowledged with, in sequence order.
async fn check_partition(c: &Cluster, topic: &str, p: i32, acks: &Acks) -> Report {
    let via = live_other(c, usize::MAX);
    wait_full_isr(c, via, topic, Duration::from_secs(40)).await;
    // Followers may still be a fetch behind: wait for identical replicas.
    let deadline = Instant::now() + Duration::from_secs(20);
    let logs = loop {
        let logs: Vec<Vec<(i64, u64)>> = (0..c.n())
            .map(|i| replica_records(c, i, topic, p))
            .collect();
        if logs.iter().all(|l| *l == logs[0]) {
            break logs;
        }
        if Instant::now() > deadline {
            let lens: Vec<usize> = logs.iter().map(|l| l.len()).collect();
            let first_diff = (0..lens.iter().copied().min().unwrap_or(0))
                .find(|&k| logs.iter().any(|l| l[k] != logs[0][k]));
            panic!(
                "{topic}-{p}: in-sync replicas differ: lengths {lens:?}, first difference at \
                 record {first_diff:?}\n{}",
                c.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let log = &logs[0];
    let mut count: HashMap<u64, usize> = HashMap::new();
    let mut at: HashMap<u64, i64> = HashMap::new();
    for (off, seq) in log {
        *count.entry(*seq).or_default() += 1;
        at.entry(*seq).or_insert(*off);
    }
    let mine: Vec<&(u64, i32, i64, Instant)> = acks.ok.iter().filter(|a| a.1 == p).collect();
    let mut r = Report {
        acked: mine.len(),
        records: log.len(),
        duplicates: count.values().filter(|&&n| n > 1).map(|n| n - 1).sum(),
        ..Report::default()
    };
    for a in &mine {
        match at.get(&a.0) {
            None => r.lost += 1,
            Some(off) if *off != a.2 => r.lost += 1, // acknowledged at another offset
            Some(_) => {}
        }
    }
    let seqs: Vec<u64> = log.iter().map(|x| x.1).collect();
    r.out_of_order = seqs.windows(2).filter(|w| w[1] <= w[0]).count();
    r
}

/// Read a partition from the beginning with a consumer; returns the sequences in order.
fn consume_all(c: &Cluster, topic: &str, p: i32, expect: usize) -> Vec<u64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap())
        .set("group.id", "chaos-checker")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, p, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < expect && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(
                m.key()
                    .and_then(|k| std::str::from_utf8(k).ok()?.parse().ok())
                    .unwrap_or(u64::MAX),
            );
        }
    }
    out
}

fn assert_clean(name: &str, r: &Report, consumed: &[u64], log_len: usize) {
    println!(
        "[{name}] acked {} | records {} | acks lost {} | duplicates {} | out of order {} | \
         consumed {}",
        r.acked,
        r.records,
        r.lost,
        r.duplicates,
        r.out_of_order,
        consumed.len()
    );
    assert_eq!(r.lost, 0, "{name}: acknowledged messages lost");
    assert_eq!(r.duplicates, 0, "{name}: duplicates in the log");
    assert_eq!(r.out_of_order, 0, "{name}: log out of producer order");
    assert_eq!(consumed.len(), log_len, "{name}: consumer read everything");
}

async fn check_all(c: &Cluster, name: &str, topic: &str, partitions: i32, acks: &Acks) {
    for p in 0..partitions {
        let r = check_partition(c, topic, p, acks).await;
        let consumed = {
            let (topic, n) = (topic.to_string(), r.records);
            let c: &Cluster = c;
            // The consumer blocks; the cluster's proxies run on this runtime's workers.
            tokio::task::block_in_place(|| consume_all(c, &topic, p, n))
        };
        assert_clean(&format!("{name} p{p}"), &r, &consumed, r.records);
        let log: Vec<u64> = replica_records(c, 0, topic, p)
            .into_iter()
            .map(|x| x.1)
            .collect();
        assert_eq!(
            consumed, log,
            "{name} p{p}: consumer saw the replicas' records"
        );
    }
}

fn no_fatal(name: &str, acks: &Acks) {
    println!(
        "[{name}] delivery failures: {} {:?}",
        acks.failed.len(),
        acks.failed.iter().take(3).collect::<Vec<_>>()
    );
    assert!(
        acks.failed.is_empty(),
        "{name}: the producer gave up on messages: {:?}",
        acks.failed.iter().take(5).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------
// The tests

/// SIGKILL the partition leader four times under an idempotent acks=all producer,
/// restarting it each time; nothing acknowledged may be lost or duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_the_leader_repeatedly() {
    kill_leader_rounds("kill-leader", 4, true).await;
}

/// The same, faster: the killed leader restarts as soon as a new leader is elected and
/// the next kill does not wait for the ISR to be full again, so leaders die while the
/// restarted node is still truncating and catching up (and the ISR may be down to one,
/// below min.insync.replicas, for a while).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_the_leader_before_the_isr_recovers() {
    kill_leader_rounds("kill-fast", 6, false).await;
}

async fn kill_leader_rounds(name: &str, rounds: usize, wait_isr: bool) {
    let mut c = start_cluster().await;
    let topic = name;
    create_topic(&c, topic, 1, Duration::from_secs(30)).await;
    let load = Load::start(&c, topic, 1);
    load.progress(200, Duration::from_secs(30), &c).await;
    let mut stalls = Vec::new();
    for round in 0..rounds {
        let via = (0..3).find(|&j| c.alive(j)).unwrap();
        let leader = leader(&c, via, topic, 0).await;
        let t0 = Instant::now();
        c.kill(leader);
        let via = live_other(&c, leader);
        c.wait_for(via, Duration::from_secs(30), "a new leader", |m| {
            part(m, topic, 0)
                .is_some_and(|x| x.leader_id.0 > 0 && x.leader_id.0 != leader as i32 + 1)
        })
        .await;
        if wait_isr {
            load.progress(100, Duration::from_secs(30), &c).await;
        }
        let t1 = Instant::now();
        c.restart(leader);
        if wait_isr {
            wait_full_isr(&c, via, topic, Duration::from_secs(40)).await;
        }
        load.progress(100, Duration::from_secs(40), &c).await;
        stalls.push((round, leader + 1, t0, t1, Instant::now()));
    }
    let (sent, acks) = load.finish().await;
    for (round, node, t0, t1, t2) in &stalls {
        println!(
            "[{name}] round {round}: killed leader node {node}; producer stall {} ms after \
             the kill, {} ms around the restart",
            stall(&acks, *t0, *t1).as_millis(),
            stall(&acks, *t1, *t2).as_millis()
        );
    }
    println!("[{name}] sent {sent}, acknowledged {}", acks.ok.len());
    no_fatal(name, &acks);
    check_all(&c, name, topic, 1, &acks).await;
}

/// SIGKILL the Raft leader (the controller) under load: another node takes over,
/// topic creation and produce go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_failover() {
    let mut c = start_cluster().await;
    let topic = "ctl-failover";
    create_topic(&c, topic, 3, Duration::from_secs(30)).await;
    let load = Load::start(&c, topic, 3);
    load.progress(200, Duration::from_secs(30), &c).await;
    let m = metadata(c.addr(0)).await.expect("metadata");
    let ctl = m.controller_id.0 as usize - 1;
    let t0 = Instant::now();
    c.kill(ctl);
    let via = live_other(&c, ctl);
    let m = c
        .wait_for(via, Duration::from_secs(20), "a new controller", |m| {
            m.controller_id.0 > 0 && m.controller_id.0 as usize - 1 != ctl
        })
        .await;
    println!(
        "[controller] killed controller {}, new controller {} after {} ms",
        ctl + 1,
        m.controller_id.0,
        t0.elapsed().as_millis()
    );
    // A new topic while the old controller is down: RF 3 would need the dead broker,
    // so RF 2.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = admin(&c);
        let t = NewTopic::new("after-ctl", 2, TopicReplication::Fixed(2));
        let r = a
            .create_topics(
                [&t],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(5))),
            )
            .await;
        if matches!(&r, Ok(v) if v[0].is_ok()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "create after failover: {r:?}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let p: ThreadedProducer<Recorder> = {
        ClientConfig::new()
            .set("bootstrap.servers", c.bootstrap())
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .create_with_context(Recorder(Arc::new(Mutex::new(Acks::default())), None))
            .expect("producer")
    };
    for i in 0..10u64 {
        let k = i.to_string();
        p.send(BaseRecord::to("after-ctl").key(&k).payload(&k))
            .map_err(|(e, _)| e)
            .expect("send");
    }
    tokio::task::block_in_place(|| p.flush(Duration::from_secs(30))).expect("flush");
    assert_eq!(
        p.context().0.lock().unwrap().ok.len(),
        10,
        "produce to the new topic"
    );
    load.progress(200, Duration::from_secs(30), &c).await;
    let t1 = Instant::now();
    c.restart(ctl);
    wait_full_isr(&c, via, topic, Duration::from_secs(40)).await;
    let (_, acks) = load.finish().await;
    println!(
        "[controller] producer stall {} ms",
        stall(&acks, t0, t1).as_millis()
    );
    no_fatal("controller", &acks);
    check_all(&c, "controller", topic, 3, &acks).await;
}

/// Produce one acks=all batch straight to node `i` (not through the proxies); the
/// partition's error code.
async fn produce_direct(c: &Cluster, i: usize, topic: &str, p: i32) -> Option<i16> {
    let addr = c.addr(i);
    let topic = topic.to_string();
    let task = tokio::spawn(async move {
        let mut conn = Conn::connect(addr).await;
        let records = common::batch(
            &[common::Rec::kv(b"isolated", b"isolated")],
            kafka_protocol::records::Compression::None,
            None,
        );
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(3000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic)))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(p)
                        .with_records(Some(records)),
                ])]);
        let r: ProduceResponse = conn.call(ApiKey::Produce, 9, &req).await;
        r.responses[0].partition_responses[0].error_code
    });
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .ok()?
        .ok()
}

/// Cut a partition leader off from the other two nodes under load, twice: first a
/// leader that is not the controller (it is fenced by the controller and keeps a stale
/// image), then the controller itself (an isolated Raft leader). Each time the isolated
/// node takes no acks=all write, the majority elects a new leader and keeps serving,
/// and after the link returns the node truncates what it wrote alone, catches up, and
/// the ISR is full again. (A deposed controller once forwarded its stale fencing
/// decisions to the new one on healing: every broker fenced at once, a Metadata answer
/// with no broker, and librdkafka left with nobody to ask.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_partition() {
    let c = start_cluster().await;
    let topic = "partition";
    create_topic(&c, topic, 3, Duration::from_secs(30)).await;
    let load = Load::start(&c, topic, 3);
    load.progress(200, Duration::from_secs(30), &c).await;
    let mut phases = Vec::new();
    for phase in ["a leader that is not the controller", "the controller"] {
        let m = metadata(c.addr(0)).await.expect("metadata");
        let ctl = m.controller_id.0 as usize - 1;
        let t = find_topic(&m, topic).expect("topic");
        let led = |n: usize| {
            t.partitions
                .iter()
                .find(|p| p.leader_id.0 as usize == n + 1)
                .map(|p| p.partition_index)
        };
        let (x, p) = if phases.is_empty() {
            (0..3)
                .filter(|&n| n != ctl)
                .find_map(|n| Some((n, led(n)?)))
                .expect("a partition led by a non-controller")
        } else {
            (
                ctl,
                led(ctl).expect("round-robin gives the controller a partition"),
            )
        };
        println!(
            "[partition] isolating node {} ({phase}), leader of p{p}",
            x + 1
        );
        let t0 = Instant::now();
        c.isolate(Some(x));
        let other = live_other(&c, x);
        // The majority moves the leadership away from the isolated node.
        c.wait_for(
            other,
            Duration::from_secs(30),
            "a leader on the majority side",
            |m| {
                part(m, topic, p)
                    .is_some_and(|q| q.leader_id.0 > 0 && q.leader_id.0 as usize != x + 1)
            },
        )
        .await;
        let moved = t0.elapsed();
        load.progress(200, Duration::from_secs(30), &c).await;
        let t1 = Instant::now();
        // The isolated node accepts no acks=all write, whatever it believes.
        let mut codes = Vec::new();
        for _ in 0..2 {
            codes.push(produce_direct(&c, x, topic, p).await);
        }
        println!("[partition] acks=all produce to the isolated node: {codes:?}");
        assert!(
            codes.iter().all(|c| *c != Some(0)),
            "the isolated node acknowledged an acks=all write: {codes:?}"
        );
        c.isolate(None);
        let healed = Instant::now();
        wait_full_isr(&c, other, topic, Duration::from_secs(40)).await;
        let rejoined = healed.elapsed();
        load.progress(200, Duration::from_secs(30), &c).await;
        phases.push((phase, x, t0, t1, moved, rejoined));
    }
    let (_, acks) = load.finish().await;
    for (phase, x, t0, t1, moved, rejoined) in &phases {
        println!(
            "[partition] node {} ({phase}): leadership moved after {} ms, producer stall {} ms, \
             ISR full {} ms after healing",
            x + 1,
            moved.as_millis(),
            stall(&acks, *t0, *t1).as_millis(),
            rejoined.as_millis()
        );
    }
    no_fatal("partition", &acks);
    check_all(&c, "partition", topic, 3, &acks).await;
}

/// Restart each node in turn with SIGTERM (controlled shutdown) under a producer and a
/// consumer: no message the producer saw acknowledged is lost, the consumer sees all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart() {
    let mut c = start_cluster().await;
    let topic = "rolling";
    create_topic(&c, topic, 3, Duration::from_secs(30)).await;
    let load = Load::start(&c, topic, 3);
    // A consumer reading all the while.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(BTreeMap::<i32, Vec<u64>>::new()));
    let consumer_thread = {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", c.bootstrap())
            .set("group.id", "chaos-rolling")
            .set("enable.auto.commit", "false")
            .set("topic.metadata.refresh.interval.ms", "1000")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..3 {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).expect("assign");
        let (stop, seen) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        let seq = m
                            .key()
                            .and_then(|k| std::str::from_utf8(k).ok()?.parse().ok())
                            .unwrap_or(u64::MAX);
                        seen.lock()
                            .unwrap()
                            .entry(m.partition())
                            .or_default()
                            .push(seq);
                    }
                    Some(Err(e)) => errors.push(e.to_string()),
                    None => {}
                }
            }
            errors
        })
    };
    load.progress(200, Duration::from_secs(30), &c).await;
    for i in 0..3 {
        let t0 = Instant::now();
        let took = tokio::task::block_in_place(|| c.stop(i));
        c.restart(i);
        let via = live_other(&c, i);
        wait_full_isr(&c, via, topic, Duration::from_secs(40)).await;
        load.progress(100, Duration::from_secs(30), &c).await;
        println!(
            "[rolling] node {} shut down in {} ms, back in the ISR after {} ms",
            i + 1,
            took.as_millis(),
            t0.elapsed().as_millis()
        );
    }
    let (_, acks) = load.finish().await;
    no_fatal("rolling", &acks);
    // Let the consumer read the tail, then stop it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: usize = seen.lock().unwrap().values().map(|v| v.len()).sum();
        if n >= acks.ok.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let errors = tokio::task::block_in_place(|| consumer_thread.join().unwrap());
    println!("[rolling] consumer errors: {}", errors.len());
    let seen = seen.lock().unwrap().clone();
    for p in 0..3 {
        let got: std::collections::HashSet<u64> =
            seen.get(&p).into_iter().flatten().copied().collect();
        let missing = acks
            .ok
            .iter()
            .filter(|a| a.1 == p && !got.contains(&a.0))
            .count();
        println!("[rolling] p{p}: consumer missed {missing} acknowledged messages");
        assert_eq!(missing, 0, "consumer missed acknowledged messages in p{p}");
    }
    check_all(&c, "rolling", topic, 3, &acks).await;
}

/// The node coordinating `group`, asked with a raw FindCoordinator.
async fn coordinator(c: &Cluster, via: usize, group: &str) -> Option<usize> {
    let addr = c.addr(via);
    let group = group.to_string();
    let task = tokio::spawn(async move {
        let mut conn = Conn::connect(addr).await;
        let req = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(group))
            .with_key_type(0);
        let r: FindCoordinatorResponse = conn.call(ApiKey::FindCoordinator, 3, &req).await;
        (r.error_code == 0).then_some(r.node_id.0)
    });
    let id = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .ok()?
        .ok()??;
    usize::try_from(id - 1).ok()
}

/// Offset commits acknowledged by a group coordinator survive its SIGKILL: the node
/// that takes over the `__consumer_offsets` partition answers the last committed
/// offset. (Its replica may not have heard the high watermark of the last commits yet,
/// so loading the groups only up to the high watermark would forget them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_coordinator_failover() {
    let mut c = start_cluster().await;
    let topic = "committed";
    create_topic(&c, topic, 1, Duration::from_secs(30)).await;
    let group = "chaos-commits";
    let consumer = |c: &Cluster| -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", c.bootstrap())
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer")
    };
    let first = consumer(&c);
    let mut last = 0;
    for i in 1..=20i64 {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(i))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = tokio::task::block_in_place(|| {
                first.commit(&tpl, rdkafka::consumer::CommitMode::Sync)
            });
            match r {
                Ok(()) => break,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("commit {i}: {e}\n{}", c.logs()),
            }
        }
        last = i;
    }
    let coord = coordinator(&c, 0, group).await.expect("a coordinator");
    c.kill(coord);
    drop(first);
    println!(
        "[commits] committed up to {last}, killed coordinator node {}",
        coord + 1
    );
    let via = live_other(&c, coord);
    let second = consumer(&c);
    let deadline = Instant::now() + Duration::from_secs(40);
    let got = loop {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, 0);
        let r =
            tokio::task::block_in_place(|| second.committed_offsets(tpl, Duration::from_secs(5)));
        let now_coord = coordinator(&c, via, group).await;
        if let (Ok(t), Some(n)) = (&r, now_coord) {
            if n != coord {
                if let Some(e) = t.elements().first() {
                    if e.error().is_ok() {
                        break e.offset();
                    }
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no committed offset after failover: {r:?}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    println!("[commits] the new coordinator answers {got:?}");
    assert_eq!(
        got,
        Offset::Offset(last),
        "acknowledged offset commits lost"
    );
}

//! Transactions on a 3-node cluster with librdkafka: the coordinator writes markers to
//! partitions led by other brokers (WriteTxnMarkers), and a transaction open when its
//! coordinator is SIGKILLed commits through the coordinator that takes over, with
//! read_committed consumers seeing each committed record once and no aborted one.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cluster::Cluster;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const T: Duration = Duration::from_secs(60);
const ID: &str = "cluster-app";

fn client(bootstrap: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap);
    cfg
}

async fn send_all(p: &FutureProducer, tag: &str) {
    for part in 0..3 {
        p.send(
            FutureRecord::<(), _>::to("xt")
                .partition(part)
                .payload(&format!("{tag}-{part}")),
            T,
        )
        .await
        .expect("delivered");
    }
}

/// Every value of `xt` a read_committed consumer reads to the end of its 3 partitions.
fn read_committed(bootstrap: &str) -> BTreeSet<String> {
    let mut cfg = client(bootstrap);
    cfg.set("group.id", "xt-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer = cfg.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset("xt", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let mut eof = BTreeSet::new();
    let deadline = Instant::now() + T;
    while eof.len() < 3 && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => got.push(String::from_utf8_lossy(m.payload().unwrap()).into_owned()),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => panic!("consumer: {e}"),
            None => {}
        }
    }
    assert_eq!(eof.len(), 3, "read to the end");
    let set: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(set.len(), got.len(), "each record once: {got:?}");
    set
}

fn values(tags: &[&str]) -> BTreeSet<String> {
    tags.iter()
        .flat_map(|t| (0..3).map(move |p| format!("{t}-{p}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_span_brokers_and_survive_their_coordinators_death() {
    let mut c = Cluster::start(3);
    c.wait_for(0, T, "three brokers", |m| m.brokers.len() == 3)
        .await;
    let bootstrap = c.bootstrap();
    let admin: AdminClient<DefaultClientContext> = client(&bootstrap).create().unwrap();
    let r = admin
        .create_topics(
            &[NewTopic::new("xt", 3, TopicReplication::Fixed(3))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    let mut pcfg = client(&bootstrap);
    pcfg.set("transactional.id", ID)
        .set("transaction.timeout.ms", "120000");
    let p: FutureProducer = pcfg.create().unwrap();
    tokio::task::block_in_place(|| p.init_transactions(T)).expect("init");
    // Markers to all three leaders, one of them at most this coordinator.
    p.begin_transaction().unwrap();
    send_all(&p, "c1").await;
    tokio::task::block_in_place(|| p.commit_transaction(T)).expect("commit");
    p.begin_transaction().unwrap();
    send_all(&p, "a1").await;
    tokio::task::block_in_place(|| p.abort_transaction(T)).expect("abort");
    let got = tokio::task::block_in_place(|| read_committed(&bootstrap));
    assert_eq!(got, values(&["c1"]), "{}", c.logs());

    // The coordinator dies with a transaction open; another node's coordinator loads the
    // id from __transaction_state and commits it.
    let partition = weir::group::manager::partition_for(ID, 50);
    let md = c
        .wait_for(0, T, "a __transaction_state leader", |m| {
            m.topics.iter().any(|t| {
                t.name
                    .as_deref()
                    .is_some_and(|n| n.as_str() == "__transaction_state")
                    && t.partitions
                        .iter()
                        .any(|p| p.partition_index == partition && p.leader_id.0 > 0)
            })
        })
        .await;
    let leader = md
        .topics
        .iter()
        .find(|t| {
            t.name
                .as_deref()
                .is_some_and(|n| n.as_str() == "__transaction_state")
        })
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == partition))
        .map(|p| p.leader_id.0)
        .unwrap();
    p.begin_transaction().unwrap();
    send_all(&p, "c2").await;
    c.kill((leader - 1) as usize);
    tokio::task::block_in_place(|| p.commit_transaction(T))
        .unwrap_or_else(|e| panic!("commit after the coordinator died: {e}\n{}", c.logs()));
    let survivors: Vec<String> = (0..3)
        .filter(|&i| i != (leader - 1) as usize)
        .map(|i| c.addr(i).to_string())
        .collect();
    let got = tokio::task::block_in_place(|| read_committed(&survivors.join(",")));
    assert_eq!(got, values(&["c1", "c2"]), "{}", c.logs());
    // The dead node comes back and catches up: nothing changes for readers.
    c.restart((leader - 1) as usize);
    p.begin_transaction().unwrap();
    send_all(&p, "c3").await;
    tokio::task::block_in_place(|| p.commit_transaction(T)).expect("commit after restart");
    let got = tokio::task::block_in_place(|| read_committed(&bootstrap));
    assert_eq!(got, values(&["c1", "c2", "c3"]), "{}", c.logs());
}

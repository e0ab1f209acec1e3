//! Transactions with librdkafka (the rdkafka crate) against one broker: committed records
//! are read by read_committed consumers and aborted ones never are; a second instance
//! with the same transactional id fences the first; a transaction left open past its
//! timeout is aborted by the coordinator and stops holding back the last stable offset;
//! everything survives a restart.

mod common;

use std::time::{Duration, Instant};

use common::TestBroker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const T: Duration = Duration::from_secs(30);

fn client(b: &TestBroker) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", b.bootstrap());
    cfg
}

async fn create_topic(b: &TestBroker, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client(b).create().expect("admin");
    let r = admin
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topics");
    assert!(r[0].is_ok(), "{r:?}");
}

fn producer(b: &TestBroker, id: &str, timeout_ms: u32) -> FutureProducer {
    let mut cfg = client(b);
    cfg.set("transactional.id", id)
        .set("transaction.timeout.ms", timeout_ms.to_string());
    let p: FutureProducer = cfg.create().expect("producer");
    tokio::task::block_in_place(|| p.init_transactions(T)).expect("init_transactions");
    p
}

async fn send(p: &FutureProducer, topic: &str, partition: i32, values: &[&str]) {
    for v in values {
        p.send(
            FutureRecord::<(), _>::to(topic)
                .partition(partition)
                .payload(*v),
            T,
        )
        .await
        .expect("delivered");
    }
}

/// Every value of `topic` (partitions `0..partitions`) that a consumer with `isolation`
/// reads up to the current end, in partition order.
fn read_all(b: &TestBroker, topic: &str, partitions: i32, isolation: &str) -> Vec<String> {
    let mut cfg = client(b);
    cfg.set("group.id", "tx-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation);
    let consumer: BaseConsumer = cfg.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut got: Vec<(i32, i64, String)> = Vec::new();
    let mut at_end = std::collections::BTreeSet::new();
    let deadline = Instant::now() + T;
    while at_end.len() < partitions as usize && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => got.push((
                m.partition(),
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    assert_eq!(at_end.len(), partitions as usize, "read to the end");
    got.sort();
    got.into_iter().map(|(_, _, v)| v).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_committed_consumers_see_committed_transactions_and_never_aborted_ones() {
    let b = TestBroker::start(&[]).await;
    create_topic(&b, "tx", 2).await;
    let p = producer(&b, "app-1", 60_000);
    p.begin_transaction().unwrap();
    send(&p, "tx", 0, &["c1", "c2"]).await;
    send(&p, "tx", 1, &["c3"]).await;
    tokio::task::block_in_place(|| p.commit_transaction(T)).expect("commit");
    p.begin_transaction().unwrap();
    send(&p, "tx", 0, &["a1"]).await;
    send(&p, "tx", 1, &["a2", "a3"]).await;
    tokio::task::block_in_place(|| p.abort_transaction(T)).expect("abort");
    p.begin_transaction().unwrap();
    send(&p, "tx", 1, &["c4"]).await;
    tokio::task::block_in_place(|| p.commit_transaction(T)).expect("commit");

    let committed = tokio::task::block_in_place(|| read_all(&b, "tx", 2, "read_committed"));
    assert_eq!(committed, ["c1", "c2", "c3", "c4"]);
    // read_uncommitted sees the aborted records too (markers are never records).
    let all = tokio::task::block_in_place(|| read_all(&b, "tx", 2, "read_uncommitted"));
    assert_eq!(all, ["c1", "c2", "a1", "c3", "a2", "a3", "c4"]);

    // The same after a restart: the aborted-transaction index and the coordinator's
    // state come back from disk.
    drop(p);
    let b = b.restart().await;
    let committed = tokio::task::block_in_place(|| read_all(&b, "tx", 2, "read_committed"));
    assert_eq!(committed, ["c1", "c2", "c3", "c4"]);
    let p = producer(&b, "app-1", 60_000);
    p.begin_transaction().unwrap();
    send(&p, "tx", 0, &["c5"]).await;
    tokio::task::block_in_place(|| p.commit_transaction(T)).expect("commit after restart");
    let committed = tokio::task::block_in_place(|| read_all(&b, "tx", 2, "read_committed"));
    assert_eq!(committed, ["c1", "c2", "c5", "c3", "c4"]);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_instance_fences_the_first_and_its_open_transaction_is_aborted() {
    let b = TestBroker::start(&[]).await;
    create_topic(&b, "fence", 1).await;
    let first = producer(&b, "app-2", 60_000);
    first.begin_transaction().unwrap();
    send(&first, "fence", 0, &["zombie"]).await;
    // The second instance's InitProducerId aborts the first's transaction and bumps the
    // epoch; librdkafka retries CONCURRENT_TRANSACTIONS until the abort is done.
    let second = producer(&b, "app-2", 60_000);
    let refused = tokio::task::block_in_place(|| first.commit_transaction(T));
    let err = refused.expect_err("the fenced producer cannot commit");
    assert!(
        err.to_string().to_lowercase().contains("fenced"),
        "fenced: {err}"
    );
    second.begin_transaction().unwrap();
    send(&second, "fence", 0, &["live"]).await;
    tokio::task::block_in_place(|| second.commit_transaction(T)).expect("commit");
    let committed = tokio::task::block_in_place(|| read_all(&b, "fence", 1, "read_committed"));
    assert_eq!(committed, ["live"]);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_past_its_timeout_is_aborted_and_stops_holding_back_readers() {
    let b = TestBroker::start(&["transaction.abort.timed.out.transaction.cleanup.interval.ms=200"])
        .await;
    create_topic(&b, "slow", 1).await;
    let stuck = producer(&b, "app-3", 2_000);
    stuck.begin_transaction().unwrap();
    send(&stuck, "slow", 0, &["never"]).await;
    // Another producer commits after it: its records wait behind the open transaction.
    let other = producer(&b, "app-4", 60_000);
    other.begin_transaction().unwrap();
    send(&other, "slow", 0, &["after"]).await;
    tokio::task::block_in_place(|| other.commit_transaction(T)).expect("commit");
    let early = tokio::task::block_in_place(|| read_all(&b, "slow", 1, "read_committed"));
    assert!(
        early.is_empty(),
        "held back by the open transaction: {early:?}"
    );
    // Past the timeout the coordinator aborts it: the committed record becomes readable.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = tokio::task::block_in_place(|| read_all(&b, "slow", 1, "read_committed"));
        if got == ["after"] {
            break;
        }
        assert!(Instant::now() < deadline, "still held back: {got:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The timed-out producer was fenced by the abort's epoch bump.
    let refused = tokio::task::block_in_place(|| stuck.commit_transaction(T));
    assert!(refused.is_err(), "a timed-out transaction cannot commit");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offsets_sent_to_a_transaction_are_committed_with_it_and_dropped_on_abort() {
    let b = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]).await;
    create_topic(&b, "in", 1).await;
    create_topic(&b, "out", 1).await;
    let plain: FutureProducer = client(&b).create().expect("producer");
    for i in 0..6 {
        plain
            .send(
                FutureRecord::<(), _>::to("in")
                    .partition(0)
                    .payload(&format!("m{i}")),
                T,
            )
            .await
            .expect("delivered");
    }
    let mut cfg = client(&b);
    cfg.set("group.id", "ctp")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer = cfg.create().expect("consumer");
    consumer.subscribe(&["in"]).unwrap();
    let p = producer(&b, "ctp-app", 60_000);
    // Read three, transform, and commit output and offsets together; then the same
    // with the next three, aborted.
    let read = |n: usize| {
        let mut got = Vec::new();
        let deadline = Instant::now() + T;
        while got.len() < n && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                got.push((
                    m.offset(),
                    String::from_utf8_lossy(m.payload().unwrap()).to_string(),
                ));
            }
        }
        assert_eq!(got.len(), n, "read from the input");
        got
    };
    for (round, commit) in [(0, true), (1, false)] {
        let batch = tokio::task::block_in_place(|| read(3));
        p.begin_transaction().unwrap();
        for (_, v) in &batch {
            send(&p, "out", 0, &[&format!("{v}-r{round}")]).await;
        }
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset("in", 0, Offset::Offset(batch.last().unwrap().0 + 1))
            .unwrap();
        let cgm = consumer.group_metadata().expect("group metadata");
        tokio::task::block_in_place(|| p.send_offsets_to_transaction(&offsets, &cgm, T))
            .expect("send offsets");
        if commit {
            tokio::task::block_in_place(|| p.commit_transaction(T)).expect("commit");
        } else {
            tokio::task::block_in_place(|| p.abort_transaction(T)).expect("abort");
        }
    }
    // The group's committed offset is the first transaction's: 3.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("in", 0);
    let committed = tokio::task::block_in_place(|| consumer.committed_offsets(tpl, T))
        .expect("committed offsets");
    assert_eq!(
        committed.find_partition("in", 0).unwrap().offset(),
        Offset::Offset(3)
    );
    let out = tokio::task::block_in_place(|| read_all(&b, "out", 1, "read_committed"));
    assert_eq!(out, ["m0-r0", "m1-r0", "m2-r0"]);
    // The offsets come back from __consumer_offsets after a restart.
    drop(consumer);
    drop(p);
    let b = b.restart().await;
    let mut cfg = client(&b);
    cfg.set("group.id", "ctp")
        .set("isolation.level", "read_committed");
    let again: BaseConsumer = cfg.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("in", 0);
    let committed =
        tokio::task::block_in_place(|| again.committed_offsets(tpl, T)).expect("committed offsets");
    assert_eq!(
        committed.find_partition("in", 0).unwrap().offset(),
        Offset::Offset(3)
    );
    b.stop().await;
}

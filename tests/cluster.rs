//! A real three-node Weir cluster: `weir` processes on 127.0.0.1 forming a metadata
//! quorum over their CONTROLLER listeners, probed with raw Kafka requests.
//!
//! One test walks the whole story because every cluster start costs seconds: the quorum
//! forms, a topic created through a follower shows up everywhere, SIGKILL of the
//! controller elects another one that takes topic creation, the killed broker is fenced
//! after its session timeout and loses its partition leaderships (leader and epoch in
//! Metadata), and the killed node catches up after a restart. Every wait is bounded.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cluster::{metadata, wait_for, Cluster, SESSION_MS};

use common::Conn;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

async fn create_topic(addr: SocketAddr, topic: &str, partitions: i32, rf: i16) -> Option<i16> {
    tokio::net::TcpStream::connect(addr).await.ok()?;
    let topic = topic.to_string();
    let task = tokio::spawn(async move {
        let mut c = Conn::connect(addr).await;
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(name(&topic))
                .with_num_partitions(partitions)
                .with_replication_factor(rf)]);
        let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req).await;
        r.topics[0].error_code
    });
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .ok()?
        .ok()
}

fn broker_ids(m: &MetadataResponse) -> Vec<i32> {
    let mut ids: Vec<i32> = m.brokers.iter().map(|b| b.node_id.0).collect();
    ids.sort_unstable();
    ids
}

fn topic<'a>(
    m: &'a MetadataResponse,
    t: &str,
) -> Option<&'a metadata_response::MetadataResponseTopic> {
    m.topics
        .iter()
        .find(|x| x.name.as_ref().map(|n| n.0.as_str()) == Some(t))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_quorum_failover_fencing_and_catch_up() {
    common::init_tracing();
    let mut c = Cluster::start(3);

    // 1. The quorum forms: every node lists three brokers and a controller.
    let mut controller = -1;
    for i in 0..3 {
        let m = wait_for(
            &c,
            i,
            Duration::from_secs(60),
            "3 brokers and a controller",
            |m| broker_ids(m) == vec![1, 2, 3] && m.controller_id.0 > 0,
        )
        .await;
        controller = m.controller_id.0;
    }

    // 2. A topic created through a node that is not the controller is seen everywhere.
    let via = (0..3)
        .find(|i| *i as i32 + 1 != controller)
        .expect("a follower");
    assert_eq!(create_topic(c.addr(via), "orders", 6, 3).await, Some(0));
    for i in 0..3 {
        wait_for(&c, i, Duration::from_secs(10), "topic orders", |m| {
            topic(m, "orders").is_some_and(|t| t.partitions.len() == 6)
        })
        .await;
    }
    let before = metadata(c.addr(via)).await.expect("metadata");
    let led_by_controller: Vec<(i32, i32)> = topic(&before, "orders")
        .expect("orders")
        .partitions
        .iter()
        .filter(|p| p.leader_id.0 == controller)
        .map(|p| (p.partition_index, p.leader_epoch))
        .collect();
    assert!(
        !led_by_controller.is_empty(),
        "round-robin gives every broker a leadership"
    );

    // 3. SIGKILL the controller: another node takes over and topic creation works again.
    let killed = controller as usize - 1;
    c.kill(killed);
    let killed_at = Instant::now();
    let survivor = (0..3).find(|i| *i != killed).expect("survivor");
    let m = wait_for(
        &c,
        survivor,
        Duration::from_secs(10),
        "a new controller",
        |m| m.controller_id.0 > 0 && m.controller_id.0 != controller,
    )
    .await;
    let new_controller = m.controller_id.0;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match create_topic(c.addr(survivor), "after-failover", 2, 2).await {
            Some(0) => break,
            other if Instant::now() >= deadline => {
                panic!("topic creation after failover: {other:?}\n{}", c.logs())
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }

    // 4. The killed broker is fenced after its session and its leaderships move.
    let m = wait_for(
        &c,
        survivor,
        Duration::from_millis(SESSION_MS) * 4,
        "the killed broker fenced",
        |m| !broker_ids(m).contains(&controller),
    )
    .await;
    assert!(
        killed_at.elapsed() >= Duration::from_millis(SESSION_MS / 2),
        "fenced by the session timeout, not at once"
    );
    let orders = topic(&m, "orders").expect("orders");
    for (p, epoch) in &led_by_controller {
        let now = &orders.partitions[*p as usize];
        assert_ne!(now.leader_id.0, controller, "partition {p} moved");
        assert!(now.leader_id.0 > 0, "partition {p} has a live leader");
        assert!(now.leader_epoch > *epoch, "partition {p} epoch bumped");
        assert!(!now.isr_nodes.iter().any(|b| b.0 == controller));
    }
    let _ = new_controller;

    // 5. The killed node restarts, catches up (both topics) and is unfenced.
    c.restart(killed);
    let m = wait_for(
        &c,
        killed,
        Duration::from_secs(60),
        "caught up after restart",
        |m| {
            broker_ids(m) == vec![1, 2, 3]
                && topic(m, "orders").is_some()
                && topic(m, "after-failover").is_some()
        },
    )
    .await;
    assert!(m.controller_id.0 > 0);
}

//! Cluster administration against a real three-node Weir cluster (`weir` processes on
//! 127.0.0.1, started as in `tests/cluster.rs`), with raw Kafka requests: the rdkafka
//! admin client has no ElectLeaders or partition reassignment calls.
//!
//! One story, because every cluster start costs seconds: a partition on brokers [1, 2]
//! is reassigned to [2, 3] while it holds data; the move completes on its own (broker 3
//! catches up and joins the ISR), ListPartitionReassignments is empty afterwards, broker
//! 1's log is deleted, and broker 3 holds every record (it serves them all once it leads).
//! Then the preferred leader (2), killed and restarted, gets its leadership back through
//! a PREFERRED election, and DescribeCluster reports it fenced while it was down.
//! Every wait is bounded.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cluster::{call, metadata, wait_for, Cluster, SESSION_MS};

use bytes::Bytes;
use common::{batch, decode_records, Rec};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

const TOPIC: &str = "moved";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn name(v: &str) -> TopicName {
    TopicName(s(v))
}

fn partition0(m: &MetadataResponse) -> Option<&metadata_response::MetadataResponsePartition> {
    m.topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(TOPIC))?
        .partitions
        .first()
}

fn ids(v: &[BrokerId]) -> Vec<i32> {
    v.iter().map(|b| b.0).collect()
}

async fn produce(addr: SocketAddr, tag: &str, n: usize) -> i16 {
    let value = format!("{tag}-value");
    let recs: Vec<Rec<'_>> = (0..n).map(|_| Rec::kv(b"k", value.as_bytes())).collect();
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(name(TOPIC))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(&recs, Compression::None, None))),
            ])]);
    let resp: Option<ProduceResponse> = call(addr, ApiKey::Produce, 9, req).await;
    resp.map_or(-1, |r| r.responses[0].partition_responses[0].error_code)
}

async fn consume_all(addr: SocketAddr) -> Option<(i16, Vec<Bytes>)> {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(name(TOPIC))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let resp: FetchResponse = call(addr, ApiKey::Fetch, 12, req).await?;
    let p = &resp.responses[0].partitions[0];
    let values = p
        .records
        .as_ref()
        .map(|r| {
            decode_records(r)
                .into_iter()
                .filter_map(|r| r.value)
                .collect()
        })
        .unwrap_or_default();
    Some((p.error_code, values))
}

async fn reassignments(addr: SocketAddr) -> Option<ListPartitionReassignmentsResponse> {
    call(
        addr,
        ApiKey::ListPartitionReassignments,
        0,
        ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(None),
    )
    .await
}

async fn elect_preferred(addr: SocketAddr) -> Option<(i16, Option<String>)> {
    let req = ElectLeadersRequest::default()
        .with_election_type(0)
        .with_timeout_ms(10_000)
        .with_topic_partitions(Some(vec![elect_leaders_request::TopicPartitions::default(
        )
        .with_topic(name(TOPIC))
        .with_partitions(vec![0])]));
    let resp: ElectLeadersResponse = call(addr, ApiKey::ElectLeaders, 2, req).await?;
    let r = &resp.replica_election_results[0].partition_result[0];
    Some((
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reassignment_and_preferred_election_on_three_nodes() {
    common::init_tracing();
    // Brokers sit in racks so that placement is exercised end to end as well.
    let mut c = Cluster::start_with(3, |i| vec![format!("broker.rack=r{}", i + 1)]);
    for i in 0..3 {
        wait_for(&c, i, Duration::from_secs(60), "3 brokers", |m| {
            m.brokers.len() == 3 && m.controller_id.0 > 0
        })
        .await;
    }
    // Racks are reported.
    let m = metadata(c.addr(0)).await.expect("metadata");
    assert!(m.brokers.iter().all(|b| b.rack.is_some()), "{m:?}");

    // 1. A partition on [1, 2] with data.
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(TOPIC))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![CreatableReplicaAssignment::default()
                .with_partition_index(0)
                .with_broker_ids(vec![BrokerId(1), BrokerId(2)])])]);
    let r: CreateTopicsResponse = call(c.addr(0), ApiKey::CreateTopics, 7, req)
        .await
        .expect("create topic");
    assert_eq!(r.topics[0].error_code, 0, "{r:?}");
    wait_for(&c, 0, Duration::from_secs(10), "ISR [1, 2]", |m| {
        partition0(m).is_some_and(|p| p.leader_id.0 == 1 && ids(&p.isr_nodes).len() == 2)
    })
    .await;
    assert_eq!(produce(c.addr(0), "before", 5).await, 0);

    // 2. Reassign to [2, 3], asked through broker 3.
    let req = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            alter_partition_reassignments_request::ReassignableTopic::default()
                .with_name(name(TOPIC))
                .with_partitions(vec![
                    alter_partition_reassignments_request::ReassignablePartition::default()
                        .with_partition_index(0)
                        .with_replicas(Some(vec![BrokerId(2), BrokerId(3)])),
                ]),
        ]);
    let r: AlterPartitionReassignmentsResponse =
        call(c.addr(2), ApiKey::AlterPartitionReassignments, 0, req)
            .await
            .expect("reassign");
    assert_eq!(r.error_code, 0, "{r:?}");
    assert_eq!(r.responses[0].partitions[0].error_code, 0, "{r:?}");

    // 3. It completes on its own: broker 3 catches up, 1 leaves, 2 leads.
    let m = wait_for(&c, 2, Duration::from_secs(30), "replicas [2, 3]", |m| {
        partition0(m)
            .is_some_and(|p| ids(&p.replica_nodes) == vec![2, 3] && ids(&p.isr_nodes).len() == 2)
    })
    .await;
    let p = partition0(&m).expect("partition");
    assert_eq!(p.leader_id.0, 2, "the removed leader handed over: {p:?}");
    let listed = reassignments(c.addr(0)).await.expect("list");
    assert!(listed.topics.is_empty(), "{listed:?}");
    assert_eq!(produce(c.addr(1), "after", 3).await, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.data_dir(0).join(format!("{TOPIC}-0")).exists() {
        assert!(
            Instant::now() < deadline,
            "broker 1 kept its log\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(c.data_dir(2).join(format!("{TOPIC}-0")).exists());

    // 4. Kill broker 2: broker 3 takes over and serves every record, old and new.
    c.kill(1);
    let m = wait_for(
        &c,
        2,
        Duration::from_millis(SESSION_MS * 4),
        "broker 3 leads",
        |m| partition0(m).is_some_and(|p| p.leader_id.0 == 3),
    )
    .await;
    let epoch_led_by_3 = partition0(&m).expect("partition").leader_epoch;
    let (code, values) = consume_all(c.addr(2)).await.expect("fetch from broker 3");
    assert_eq!(code, 0);
    let want: Vec<Bytes> = std::iter::repeat_n(Bytes::from_static(b"before-value"), 5)
        .chain(std::iter::repeat_n(Bytes::from_static(b"after-value"), 3))
        .collect();
    assert_eq!(values, want);

    // DescribeCluster v2 shows broker 2 fenced when asked to include fenced brokers.
    let req = DescribeClusterRequest::default().with_include_fenced_brokers(true);
    let d: DescribeClusterResponse = call(c.addr(0), ApiKey::DescribeCluster, 2, req)
        .await
        .expect("describe cluster");
    let fenced: Vec<(i32, bool)> = d
        .brokers
        .iter()
        .map(|b| (b.broker_id.0, b.is_fenced))
        .collect();
    assert_eq!(fenced, vec![(1, false), (2, true), (3, false)]);

    // 5. Broker 2 restarts and rejoins the ISR; a preferred election gives it back.
    assert_eq!(
        elect_preferred(c.addr(0)).await.map(|r| r.0),
        Some(kafka_protocol::error::ResponseError::PreferredLeaderNotAvailable.code())
    );
    c.restart(1);
    wait_for(
        &c,
        0,
        Duration::from_secs(60),
        "broker 2 back in the ISR",
        |m| partition0(m).is_some_and(|p| ids(&p.isr_nodes).contains(&2)),
    )
    .await;
    assert_eq!(elect_preferred(c.addr(0)).await, Some((0, None)));
    let m = wait_for(&c, 1, Duration::from_secs(10), "broker 2 leads", |m| {
        partition0(m).is_some_and(|p| p.leader_id.0 == 2)
    })
    .await;
    assert!(partition0(&m).expect("partition").leader_epoch > epoch_led_by_3);
    assert_eq!(
        elect_preferred(c.addr(2)).await.map(|r| r.0),
        Some(kafka_protocol::error::ResponseError::ElectionNotNeeded.code())
    );
    assert_eq!(produce(c.addr(1), "last", 1).await, 0);
}

/// `auto.leader.rebalance.enable` (on by default): a broker stopped and started again
/// gets the leadership of the partitions that prefer it back with no election asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_returns_to_the_preferred_replicas_on_its_own() {
    common::init_tracing();
    const T: &str = "balanced";
    let c = &mut Cluster::start_with(3, |_| {
        vec!["leader.imbalance.check.interval.seconds=1".to_string()]
    });
    for i in 0..3 {
        wait_for(c, i, Duration::from_secs(60), "3 brokers", |m| {
            m.brokers.len() == 3 && m.controller_id.0 > 0
        })
        .await;
    }
    // Partition p prefers broker p + 1.
    let assignments = (0..3)
        .map(|p| {
            let brokers = (0..3).map(|k| BrokerId((p + k) % 3 + 1)).collect();
            CreatableReplicaAssignment::default()
                .with_partition_index(p)
                .with_broker_ids(brokers)
        })
        .collect();
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(T))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(assignments)]);
    let r: CreateTopicsResponse = call(c.addr(0), ApiKey::CreateTopics, 7, req)
        .await
        .expect("create topic");
    assert_eq!(r.topics[0].error_code, 0, "{r:?}");
    let leaders = |m: &MetadataResponse| -> Vec<(i32, usize)> {
        let Some(t) = m
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(T))
        else {
            return vec![];
        };
        let mut v: Vec<(i32, usize)> = t
            .partitions
            .iter()
            .map(|p| (p.leader_id.0, p.isr_nodes.len()))
            .collect();
        v.sort_unstable();
        v
    };
    let balanced = vec![(1, 3), (2, 3), (3, 3)];
    wait_for(c, 1, Duration::from_secs(20), "balanced and in sync", |m| {
        leaders(m) == balanced
    })
    .await;

    // A clean stop of broker 1 hands its leadership to the others.
    c.stop(0);
    wait_for(
        c,
        1,
        Duration::from_secs(20),
        "broker 1 leads nothing",
        |m| leaders(m).iter().all(|(l, _)| *l != 1),
    )
    .await;
    // Back, it catches up, rejoins the ISR and leads partition 0 again: no one asked.
    c.restart(0);
    wait_for(
        c,
        1,
        Duration::from_secs(60),
        "leadership back on broker 1",
        |m| leaders(m) == balanced,
    )
    .await;
}

/// Two log directories per node, under the system temp dir (the harness takes plain
/// functions for extra settings, so the paths are derived from the process and node).
fn two_dirs(i: usize) -> Vec<String> {
    let base = std::env::temp_dir().join(format!("weir-logdirs-{}-{}", std::process::id(), i + 1));
    vec![format!(
        "log.dirs={},{}",
        base.join("a").display(),
        base.join("b").display()
    )]
}

/// AlterReplicaLogDirs on a follower of a three-node cluster: its replica moves to its
/// other directory while replication goes on, and, once it leads, it serves every record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_replica_moves_between_log_directories() {
    use kafka_protocol::messages::alter_replica_log_dirs_request::{
        AlterReplicaLogDir, AlterReplicaLogDirTopic,
    };
    common::init_tracing();
    let mut c = Cluster::start_with(3, two_dirs);
    for i in 0..3 {
        wait_for(&c, i, Duration::from_secs(60), "3 brokers", |m| {
            m.brokers.len() == 3 && m.controller_id.0 > 0
        })
        .await;
    }
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(TOPIC))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![CreatableReplicaAssignment::default()
                .with_partition_index(0)
                .with_broker_ids(vec![BrokerId(1), BrokerId(2), BrokerId(3)])])]);
    let r: CreateTopicsResponse = call(c.addr(0), ApiKey::CreateTopics, 7, req)
        .await
        .expect("create topic");
    assert_eq!(r.topics[0].error_code, 0, "{r:?}");
    wait_for(&c, 0, Duration::from_secs(20), "ISR of 3", |m| {
        partition0(m).is_some_and(|p| p.leader_id.0 == 1 && p.isr_nodes.len() == 3)
    })
    .await;
    assert_eq!(produce(c.addr(0), "before", 50).await, 0);

    // Where broker 2 keeps it, and the other directory.
    let dirs_of_2 = |topic_only: bool| {
        let addr = c.addr(1);
        async move {
            let r: DescribeLogDirsResponse = call(
                addr,
                ApiKey::DescribeLogDirs,
                4,
                DescribeLogDirsRequest::default().with_topics(None),
            )
            .await
            .expect("describe log dirs");
            r.results
                .iter()
                .filter(|d| {
                    !topic_only
                        || d.topics.iter().any(|t| {
                            &*t.name.0 == TOPIC && t.partitions.iter().any(|p| !p.is_future_key)
                        })
                })
                .map(|d| d.log_dir.to_string())
                .collect::<Vec<_>>()
        }
    };
    let all = dirs_of_2(false).await;
    let here = dirs_of_2(true).await;
    assert_eq!((all.len(), here.len()), (2, 1), "{all:?} {here:?}");
    let there = all.iter().find(|d| **d != here[0]).unwrap().clone();
    let req = AlterReplicaLogDirsRequest::default().with_dirs(vec![AlterReplicaLogDir::default()
        .with_path(s(&there))
        .with_topics(vec![AlterReplicaLogDirTopic::default()
            .with_name(name(TOPIC))
            .with_partitions(vec![0])])]);
    let r: AlterReplicaLogDirsResponse = call(c.addr(1), ApiKey::AlterReplicaLogDirs, 2, req)
        .await
        .expect("alter replica log dirs");
    assert_eq!(r.results[0].partitions[0].error_code, 0, "{r:?}");
    // Replication goes on meanwhile.
    assert_eq!(produce(c.addr(0), "during", 50).await, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while dirs_of_2(true).await != vec![there.clone()] {
        assert!(Instant::now() < deadline, "not moved\n{}", c.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(produce(c.addr(0), "after", 50).await, 0);
    wait_for(&c, 0, Duration::from_secs(20), "broker 2 in sync", |m| {
        partition0(m).is_some_and(|p| p.isr_nodes.iter().any(|b| b.0 == 2))
    })
    .await;
    // Broker 1 stops: broker 2 leads, from its moved log. Its high watermark covers
    // every record once broker 3, still in the ISR, has fetched from it (a new leader
    // serves only what it knows to be committed).
    c.stop(0);
    wait_for(&c, 1, Duration::from_secs(30), "broker 2 leads", |m| {
        partition0(m).is_some_and(|p| p.leader_id.0 == 2)
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, values) = consume_all(c.addr(1)).await.expect("fetch from broker 2");
        assert_eq!(code, 0);
        if values.len() >= 150 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "broker 2 serves {} records\n{}",
            values.len(),
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Broker 2 alone (broker 3 stopped too) still serves every record from its moved log.
    c.stop(2);
    let (code, values) = consume_all(c.addr(1)).await.expect("fetch from broker 2");
    assert_eq!(code, 0);
    let count = |tag: &str| {
        values
            .iter()
            .filter(|v| v.as_ref() == format!("{tag}-value").as_bytes())
            .count()
    };
    assert_eq!(
        (count("before"), count("during"), count("after")),
        (50, 50, 50),
        "{}",
        c.logs()
    );
    for i in 0..3 {
        let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!(
            "weir-logdirs-{}-{}",
            std::process::id(),
            i + 1
        )));
    }
}

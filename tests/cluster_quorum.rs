//! Growing and shrinking a running cluster (README "Adding and removing nodes"), with
//! the Kafka APIs an operator's tools send: DescribeQuorum, AddRaftVoter,
//! RemoveRaftVoter and UnregisterBroker, against real `weir` processes.
//!
//! One story, every wait bounded: three voters start; node 4 starts with the same voter
//! list (which does not name it) and joins as a learner, then becomes a broker and, by
//! AddRaftVoter, a voter; node 5 starts broker-only and cannot be promoted. The Raft
//! leader is removed as a voter (it steps down and stays a broker), and the quorum of
//! {the other two, 4} still commits metadata (a topic is created). Node 5 is stopped
//! and unregistered; live brokers, voters and unknown ids are refused with Kafka's
//! errors. Finally node 4, a voter the voter list does not name, restarts and rejoins.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cluster::{call, metadata, wait_for, Cluster};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// (leader, voters, observers) of the metadata quorum, as node `addr` reports it.
async fn quorum(addr: SocketAddr) -> Option<(i32, BTreeSet<i32>, BTreeSet<i32>)> {
    let req = DescribeQuorumRequest::default().with_topics(vec![
        describe_quorum_request::TopicData::default()
            .with_topic_name(TopicName(s("__cluster_metadata")))
            .with_partitions(vec![describe_quorum_request::PartitionData::default()]),
    ]);
    let r: DescribeQuorumResponse = call(addr, ApiKey::DescribeQuorum, 2, req).await?;
    if r.error_code != 0 {
        return None;
    }
    let p = &r.topics.first()?.partitions.first()?;
    let ids = |v: &[describe_quorum_response::ReplicaState]| {
        v.iter().map(|r| r.replica_id.0).collect::<BTreeSet<i32>>()
    };
    // The leader knows its own log end offset. (A leader that was just removed as a
    // voter leads from the observers until the voters have elected one of theirs.)
    assert!(
        p.current_voters
            .iter()
            .chain(&p.observers)
            .any(|v| v.replica_id == p.leader_id && v.log_end_offset >= p.high_watermark),
        "the leader's log end offset is below the high watermark: {p:?}"
    );
    Some((p.leader_id.0, ids(&p.current_voters), ids(&p.observers)))
}

async fn wait_quorum(
    c: &Cluster,
    via: usize,
    what: &str,
    f: impl Fn(&(i32, BTreeSet<i32>, BTreeSet<i32>)) -> bool,
) -> (i32, BTreeSet<i32>, BTreeSet<i32>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while Instant::now() < deadline {
        if let Some(q) = quorum(c.addr(via)).await {
            if f(&q) {
                return q;
            }
            last = Some(q);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "timed out waiting for {what}; last quorum {last:?}\n{}",
        c.logs()
    );
}

fn set(v: &[i32]) -> BTreeSet<i32> {
    v.iter().copied().collect()
}

async fn add_voter(addr: SocketAddr, id: i32) -> (i16, Option<String>) {
    let req = AddRaftVoterRequest::default()
        .with_voter_id(id)
        .with_timeout_ms(10_000);
    let r: AddRaftVoterResponse = call(addr, ApiKey::AddRaftVoter, 0, req)
        .await
        .expect("AddRaftVoter answered");
    (r.error_code, r.error_message.map(|m| m.to_string()))
}

async fn remove_voter(addr: SocketAddr, id: i32) -> (i16, Option<String>) {
    let req = RemoveRaftVoterRequest::default().with_voter_id(id);
    let r: RemoveRaftVoterResponse = call(addr, ApiKey::RemoveRaftVoter, 0, req)
        .await
        .expect("RemoveRaftVoter answered");
    (r.error_code, r.error_message.map(|m| m.to_string()))
}

async fn unregister(addr: SocketAddr, id: i32) -> (i16, Option<String>) {
    let req = UnregisterBrokerRequest::default().with_broker_id(BrokerId(id));
    let r: UnregisterBrokerResponse = call(addr, ApiKey::UnregisterBroker, 0, req)
        .await
        .expect("UnregisterBroker answered");
    (r.error_code, r.error_message.map(|m| m.to_string()))
}

/// Broker ids DescribeCluster lists, fenced ones included.
async fn registered(addr: SocketAddr) -> BTreeSet<i32> {
    let req = DescribeClusterRequest::default().with_include_fenced_brokers(true);
    let r: DescribeClusterResponse = call(addr, ApiKey::DescribeCluster, 2, req)
        .await
        .expect("DescribeCluster answered");
    r.brokers.iter().map(|b| b.broker_id.0).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_become_voters_leave_and_are_unregistered() {
    let mut c = Cluster::start(3);
    for i in 0..3 {
        wait_for(&c, i, Duration::from_secs(60), "3 brokers", |m| {
            m.brokers.len() == 3 && m.controller_id.0 > 0
        })
        .await;
    }
    let (_, voters, observers) =
        wait_quorum(&c, 0, "three voters", |q| q.1 == set(&[1, 2, 3])).await;
    assert!(observers.is_empty(), "{observers:?}");

    // Node 4 is not in the voter list: it follows the log as a learner and registers.
    let four = c.add_node(Vec::new());
    wait_for(&c, 0, Duration::from_secs(60), "broker 4", |m| {
        m.brokers.iter().any(|b| b.node_id.0 == 4)
    })
    .await;
    // ... and it serves metadata itself (it has applied the log).
    wait_for(
        &c,
        four,
        Duration::from_secs(30),
        "4 brokers seen by node 4",
        |m| m.brokers.len() == 4,
    )
    .await;
    let q = wait_quorum(&c, four, "4 observing", |q| q.2 == set(&[4])).await;
    assert_eq!(q.1, voters, "a learner does not vote");

    // Node 5 is broker-only: a learner for good.
    let five = c.add_node(vec!["process.roles=broker".into()]);
    wait_for(&c, 0, Duration::from_secs(60), "broker 5", |m| {
        m.brokers.iter().any(|b| b.node_id.0 == 5)
    })
    .await;
    let (code, msg) = add_voter(c.addr(1), 5).await;
    assert_eq!(code, ResponseError::InvalidRequest.code(), "{msg:?}");
    assert!(msg.unwrap_or_default().contains("broker-only"));

    // AddRaftVoter, sent to any node (forwarded to the leader).
    assert_eq!(add_voter(c.addr(2), 4).await, (0, None));
    let (leader, _, _) = wait_quorum(&c, 0, "4 voting", |q| {
        q.1 == set(&[1, 2, 3, 4]) && q.2 == set(&[5])
    })
    .await;
    let (code, _) = add_voter(c.addr(0), 4).await;
    assert_eq!(code, ResponseError::DuplicateVoter.code());
    let (code, _) = remove_voter(c.addr(0), 9).await;
    assert_eq!(code, ResponseError::VoterNotFound.code());

    // Remove the Raft leader itself: it steps down, stays a broker, and the three
    // remaining voters commit metadata on their own.
    let leader_removed = leader;
    let r = remove_voter(c.addr(four), leader).await;
    assert_eq!(r, (0, None), "{}", c.logs());
    let rest: BTreeSet<i32> = set(&[1, 2, 3, 4])
        .into_iter()
        .filter(|v| *v != leader)
        .collect();
    let q = wait_quorum(&c, four, "the old leader demoted", |q| {
        q.1 == rest && q.2 == set(&[leader, 5]) && rest.contains(&q.0)
    })
    .await;
    println!("[quorum] leader {leader} removed; new leader {}", q.0);
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(TopicName(s("after-shrink")))
            .with_num_partitions(1)
            .with_replication_factor(3)]);
    let r: CreateTopicsResponse = call(c.addr(four), ApiKey::CreateTopics, 5, req)
        .await
        .expect("CreateTopics answered");
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    let old = (leader - 1) as usize;
    wait_for(
        &c,
        old,
        Duration::from_secs(30),
        "the topic on the demoted node",
        |m| {
            m.topics.iter().any(|t| {
                t.name
                    .as_ref()
                    .is_some_and(|n| n.as_str() == "after-shrink")
            })
        },
    )
    .await;

    // Unregistering: refused while live, for voters and for unknown ids.
    let (code, msg) = unregister(c.addr(0), 5).await;
    assert_eq!(code, ResponseError::InvalidRequest.code(), "{msg:?}");
    let (code, msg) = unregister(c.addr(0), 4).await;
    assert_eq!(code, ResponseError::InvalidRequest.code(), "{msg:?}");
    assert!(msg.unwrap_or_default().contains("voter"));
    let (code, _) = unregister(c.addr(0), 42).await;
    assert_eq!(code, ResponseError::BrokerIdNotRegistered.code());

    // Node 5 stops (controlled shutdown: fenced at once) and is forgotten.
    c.stop(five);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = unregister(c.addr(1), 5).await;
        if r == (0, None) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "unregistering 5: {r:?}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(registered(c.addr(0)).await, set(&[1, 2, 3, 4]));
    wait_quorum(&c, 0, "5 gone from the observers", |q| {
        q.2 == set(&[leader])
    })
    .await;

    // The shrunk quorum survives losing its leader: the two other voters elect one.
    let (leader, _, _) = wait_quorum(&c, four, "a leader", |q| rest.contains(&q.0)).await;
    let gone = (leader - 1) as usize;
    c.kill(gone);
    let survivor = rest
        .iter()
        .find(|v| **v != leader)
        .map(|v| (v - 1) as usize)
        .unwrap();
    let q = wait_quorum(&c, survivor, "a new leader", |q| {
        q.0 != leader && rest.contains(&q.0)
    })
    .await;
    println!("[quorum] leader {leader} killed; new leader {}", q.0);
    c.restart(gone);
    wait_for(
        &c,
        gone,
        Duration::from_secs(60),
        "the killed leader back",
        |m| m.controller_id.0 > 0,
    )
    .await;

    // Node 4 is a voter the voter list does not name: it restarts on its own state.
    c.kill(four);
    c.restart(four);
    wait_for(&c, four, Duration::from_secs(60), "node 4 back", |m| {
        m.brokers.iter().any(|b| b.node_id.0 == 4) && m.controller_id.0 > 0
    })
    .await;
    let q = wait_quorum(&c, four, "4 still voting", |q| q.1 == rest).await;
    assert!(q.1.contains(&4));
    assert!(metadata(c.addr(four)).await.is_some());

    // The operator's tool says the same, and passes refusals on.
    let weir = |args: &[&str]| {
        let bootstrap = c.addr(four).to_string();
        std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["quorum", "--bootstrap-server", &bootstrap])
            .args(args)
            .output()
            .expect("weir quorum")
    };
    let out = weir(&["describe"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    println!("[quorum] weir quorum describe:\n{text}");
    for v in &rest {
        assert!(
            text.lines()
                .any(|l| l.starts_with("voter")
                    && l.split_whitespace().nth(1) == Some(&v.to_string())),
            "{text}"
        );
    }
    assert!(
        text.lines().any(|l| l.starts_with("observer")
            && l.split_whitespace().nth(1) == Some(&leader_removed.to_string())),
        "{text}"
    );
    let out = weir(&["add-voter", "4"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DUPLICATE_VOTER"));
}

//! Unit tests of `consumer` groups (KIP-848), driven with explicit timestamps (a paused
//! clock). A small simulated client applies each assignment it is sent at once and
//! reports what it owns on its next heartbeat, as real clients do.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError as E;
use proptest::prelude::*;
use uuid::Uuid;

use super::*;

const A: Uuid = Uuid::from_u128(0xa);
const B: Uuid = Uuid::from_u128(0xb);
const REBALANCE: i32 = 30_000;
const SESSION: u64 = 45_000;

/// Two topics of six partitions each: twelve partitions.
fn topics(a: i32, b: i32) -> Topics {
    BTreeMap::from([
        (
            "a".to_string(),
            TopicInfo {
                id: A,
                partitions: a,
            },
        ),
        (
            "b".to_string(),
            TopicInfo {
                id: B,
                partitions: b,
            },
        ),
    ])
}

fn coordinator() -> GroupCoordinator {
    GroupCoordinator::new(GroupConfig::default(), 7)
}

fn join_req(member_id: &str, subscription: &[&str], now_ms: u64) -> ConsumerHeartbeatRequest {
    ConsumerHeartbeatRequest {
        api_version: 1,
        group_id: "g".into(),
        member_id: member_id.into(),
        member_epoch: 0,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: REBALANCE,
        subscribed_topic_names: Some(subscription.iter().map(|s| s.to_string()).collect()),
        subscribed_topic_regex: None,
        server_assignor: None,
        topic_partitions: Some(Vec::new()),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        now_ms,
    }
}

/// A heartbeat that only says what changed (here: nothing but the owned partitions).
fn beat(
    member_id: &str,
    epoch: i32,
    owned: Option<&Assignment>,
    now_ms: u64,
) -> ConsumerHeartbeatRequest {
    ConsumerHeartbeatRequest {
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        subscribed_topic_names: None,
        topic_partitions: owned.map(to_list),
        ..join_req(member_id, &[], now_ms)
    }
}

fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

/// A consumer as the coordinator sees it from outside.
#[derive(Debug, Clone)]
struct Client {
    id: String,
    epoch: i32,
    owned: Assignment,
    subscription: Vec<&'static str>,
    assignor: Option<&'static str>,
    instance: Option<String>,
}

impl Client {
    fn new(id: &str) -> Self {
        Client {
            id: id.into(),
            epoch: 0,
            owned: Assignment::new(),
            subscription: vec!["a", "b"],
            assignor: None,
            instance: None,
        }
    }

    fn request(&self, now_ms: u64) -> ConsumerHeartbeatRequest {
        let mut req = if self.epoch == 0 {
            join_req(&self.id, &self.subscription, now_ms)
        } else {
            beat(&self.id, self.epoch, Some(&self.owned), now_ms)
        };
        req.server_assignor = self.assignor.map(str::to_string);
        req.instance_id = self.instance.clone();
        req
    }

    /// One heartbeat; the client takes whatever assignment comes back.
    fn heartbeat(&mut self, c: &mut GroupCoordinator, topics: &Topics, now_ms: u64) -> Output {
        let (resp, out) = c.consumer_heartbeat(&self.request(now_ms), topics);
        assert_eq!(resp.error, None, "{} got {resp:?}", self.id);
        self.epoch = resp.member_epoch;
        if let Some(assignment) = resp.assignment {
            self.owned = from_list(&assignment);
        }
        out
    }
}

/// No partition is owned by two clients, nor held by two members on the server.
fn assert_exclusive(clients: &[Client], c: &GroupCoordinator) {
    let mut seen = BTreeSet::new();
    for client in clients {
        for (t, ps) in &client.owned {
            for p in ps {
                assert!(seen.insert((*t, *p)), "{t}-{p} owned twice: {clients:?}");
            }
        }
    }
    if let Some(group) = c.consumer_group("g") {
        let mut held = BTreeSet::new();
        for m in group.members.values() {
            for set in [&m.assigned, &m.pending_revocation] {
                for (t, ps) in set {
                    for p in ps {
                        assert!(held.insert((*t, *p)), "{t}-{p} held twice: {group:?}");
                    }
                }
            }
        }
    }
}

/// Heartbeats every client in turn until the group is Stable and every client owns
/// what the server assigned it, checking exclusivity after every heartbeat.
fn settle(c: &mut GroupCoordinator, clients: &mut [Client], topics: &Topics, now_ms: u64) {
    for _ in 0..10 {
        for i in 0..clients.len() {
            clients[i].heartbeat(c, topics, now_ms);
            assert_exclusive(clients, c);
        }
        let group = c.consumer_group("g").expect("group");
        let synced = clients
            .iter()
            .all(|cl| group.members[&cl.id].assigned == cl.owned);
        if group.state() == ConsumerGroupState::Stable && synced {
            return;
        }
    }
    panic!("group did not settle: {:?}", c.consumer_group("g"));
}

fn state(c: &GroupCoordinator) -> &'static str {
    c.consumer_group("g").map_or("Dead", |g| g.state().name())
}

#[test]
fn members_join_one_by_one_with_uniform() {
    let mut c = coordinator();
    let t = topics(6, 6);
    let mut clients = vec![Client::new("m1")];
    let out = clients[0].heartbeat(&mut c, &t, 0);
    assert_eq!(clients[0].epoch, 1);
    assert_eq!(count(&clients[0].owned), 12);
    assert_eq!(state(&c), "Stable");
    assert!(out.records.contains(&Record::ConsumerGroupMetadata {
        group_id: "g".into(),
        value: Some(ConsumerGroupMetadataValue { epoch: 1 }),
    }));

    // m2 joins: it gets the new epoch but nothing yet, m1 still owns everything.
    clients.push(Client::new("m2"));
    clients[1].heartbeat(&mut c, &t, 10);
    assert_eq!(clients[1].epoch, 2);
    assert!(clients[1].owned.is_empty());
    assert_eq!(state(&c), "Reconciling");
    // m1 is asked to revoke six, stays at epoch 1 until it confirms.
    clients[0].heartbeat(&mut c, &t, 20);
    assert_eq!((clients[0].epoch, count(&clients[0].owned)), (1, 6));
    assert_eq!(
        c.consumer_group("g").unwrap().members["m1"].state,
        MemberState::UnrevokedPartitions
    );
    clients[0].heartbeat(&mut c, &t, 30);
    assert_eq!(clients[0].epoch, 2);
    clients[1].heartbeat(&mut c, &t, 40);
    assert_eq!(count(&clients[1].owned), 6);
    assert_exclusive(&clients, &c);
    assert_eq!(state(&c), "Stable");

    clients.push(Client::new("m3"));
    settle(&mut c, &mut clients, &t, 50);
    for client in &clients {
        assert_eq!(count(&client.owned), 4, "{clients:?}");
        assert_eq!(client.epoch, 3);
    }
}

#[test]
fn members_join_with_range() {
    let mut c = coordinator();
    let t = topics(6, 6);
    let mut clients: Vec<Client> = ["m1", "m2", "m3"]
        .iter()
        .map(|id| Client {
            assignor: Some("range"),
            ..Client::new(id)
        })
        .collect();
    settle(&mut c, &mut clients[..1], &t, 0);
    assert_eq!(count(&clients[0].owned), 12);
    settle(&mut c, &mut clients[..2], &t, 10);
    settle(&mut c, &mut clients, &t, 20);
    let range = |ps: &[i32]| ps.iter().copied().collect::<BTreeSet<i32>>();
    for (client, ps) in clients.iter().zip([[0, 1], [2, 3], [4, 5]]) {
        assert_eq!(client.owned[&A], range(&ps), "{clients:?}");
        assert_eq!(client.owned[&B], range(&ps), "co-partitioned");
    }
    let d = c.describe_consumer_group("g", &t);
    assert_eq!(d.assignor_name, "range");
    assert_eq!(d.state, "Stable");
    assert_eq!(d.group_epoch, 3);
    assert_eq!(d.members.len(), 3);
    assert_eq!(d.members[0].assignment[0].topic_name, "a");
    assert_eq!(d.members[0].assignment, d.members[0].target_assignment);
}

/// One step of a random scenario.
#[derive(Debug, Clone)]
enum Op {
    Heartbeat(usize),
    /// A heartbeat that does not report owned partitions (unchanged).
    QuietHeartbeat(usize),
    Join,
    Leave(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..8).prop_map(Op::Heartbeat),
        2 => (0usize..8).prop_map(Op::QuietHeartbeat),
        2 => Just(Op::Join),
        1 => (0usize..8).prop_map(Op::Leave),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever the order of heartbeats, joins and leaves, no partition is ever owned
    /// by two members, and the group then settles with every partition assigned.
    #[test]
    fn no_partition_is_ever_owned_twice(ops in proptest::collection::vec(op(), 1..60), range in any::<bool>()) {
        let mut c = coordinator();
        let t = topics(6, 6);
        let mut clients: Vec<Client> = Vec::new();
        let mut next = 0;
        for (step, op) in ops.into_iter().enumerate() {
            let now = step as u64;
            match op {
                Op::Join => {
                    next += 1;
                    let mut client = Client::new(&format!("m{next}"));
                    client.assignor = range.then_some("range");
                    client.heartbeat(&mut c, &t, now);
                    clients.push(client);
                }
                Op::Heartbeat(i) if !clients.is_empty() => {
                    let i = i % clients.len();
                    clients[i].heartbeat(&mut c, &t, now);
                }
                Op::QuietHeartbeat(i) if !clients.is_empty() => {
                    let i = i % clients.len();
                    let client = &mut clients[i];
                    let mut req = client.request(now);
                    if client.epoch > 0 {
                        req.topic_partitions = None;
                    }
                    let (resp, _) = c.consumer_heartbeat(&req, &t);
                    prop_assert_eq!(resp.error, None);
                    client.epoch = resp.member_epoch;
                    if let Some(a) = resp.assignment {
                        client.owned = from_list(&a);
                    }
                }
                Op::Leave(i) if !clients.is_empty() => {
                    let client = clients.remove(i % clients.len());
                    let (resp, _) = c.consumer_heartbeat(&beat(&client.id, -1, None, now), &t);
                    prop_assert_eq!(resp.error, None);
                }
                _ => {}
            }
            assert_exclusive(&clients, &c);
        }
        if !clients.is_empty() {
            settle(&mut c, &mut clients, &t, 1_000);
            let total: usize = clients.iter().map(|cl| count(&cl.owned)).sum();
            prop_assert_eq!(total, 12);
        }
    }
}

#[test]
fn leaving_member_gives_its_partitions_back() {
    let mut c = coordinator();
    let t = topics(6, 6);
    let mut clients = vec![Client::new("m1"), Client::new("m2")];
    settle(&mut c, &mut clients, &t, 0);
    let (resp, out) = c.consumer_heartbeat(&beat("m2", -1, None, 10), &t);
    assert_eq!((resp.error, resp.member_epoch), (None, -1));
    assert!(out.records.contains(&Record::ConsumerGroupMemberMetadata {
        group_id: "g".into(),
        member_id: "m2".into(),
        value: None,
    }));
    assert!(out.timers.contains(&TimerOp::Cancel {
        key: TimerKey::ConsumerSession {
            group_id: "g".into(),
            member_id: "m2".into()
        }
    }));
    assert_eq!(state(&c), "Assigning");
    clients.truncate(1);
    settle(&mut c, &mut clients, &t, 20);
    assert_eq!(count(&clients[0].owned), 12);
    // A member that left is unknown afterwards.
    let (resp, _) = c.consumer_heartbeat(&beat("m2", 2, None, 30), &t);
    assert_eq!(resp.error, Some(E::UnknownMemberId));
}

#[test]
fn session_expiry_removes_a_silent_member() {
    let mut c = coordinator();
    let t = topics(6, 6);
    let mut clients = vec![Client::new("m1"), Client::new("m2")];
    settle(&mut c, &mut clients, &t, 0);
    // m1 keeps heartbeating; m2 goes silent.
    for now in (5_000..SESSION).step_by(5_000) {
        clients[0].heartbeat(&mut c, &t, now);
        c.tick(now);
    }
    assert_eq!(c.consumer_group("g").unwrap().members.len(), 2);
    let out = c.tick(SESSION);
    assert!(out
        .records
        .contains(&Record::ConsumerGroupCurrentMemberAssignment {
            group_id: "g".into(),
            member_id: "m2".into(),
            value: None,
        }));
    assert!(!c.consumer_group("g").unwrap().members.contains_key("m2"));
    clients.truncate(1);
    settle(&mut c, &mut clients, &t, SESSION + 2);
    assert_eq!(count(&clients[0].owned), 12);
    assert_eq!(c.next_deadline(), Some(SESSION + 2 + SESSION));
}

#[test]
fn member_that_never_revokes_is_removed_at_its_rebalance_timeout() {
    let mut c = coordinator();
    let t = topics(6, 6);
    let mut stubborn = Client::new("m1");
    stubborn.heartbeat(&mut c, &t, 0);
    let mut newcomer = Client::new("m2");
    newcomer.heartbeat(&mut c, &t, 10);
    // m1 is asked to revoke but keeps reporting all twelve partitions.
    let all = stubborn.owned.clone();
    let (resp, out) = c.consumer_heartbeat(&beat("m1", 1, Some(&all), 20), &t);
    assert_eq!(count(&from_list(&resp.assignment.unwrap())), 6);
    assert!(out.timers.contains(&TimerOp::Set {
        key: TimerKey::ConsumerRebalance {
            group_id: "g".into(),
            member_id: "m1".into()
        },
        deadline_ms: 20 + REBALANCE as u64,
    }));
    for now in [5_000, 10_000, 15_000, 20_000, 25_000] {
        let (resp, _) = c.consumer_heartbeat(&beat("m1", 1, Some(&all), now), &t);
        assert_eq!((resp.error, resp.member_epoch), (None, 1));
        newcomer.heartbeat(&mut c, &t, now);
        assert!(newcomer.owned.is_empty(), "m1 still owns them");
    }
    c.tick(20 + REBALANCE as u64);
    assert!(!c.consumer_group("g").unwrap().members.contains_key("m1"));
    let (resp, _) = c.consumer_heartbeat(&beat("m1", 1, Some(&all), 30_100), &t);
    assert_eq!(resp.error, Some(E::UnknownMemberId));
    let mut clients = vec![newcomer];
    settle(&mut c, &mut clients, &t, 30_200);
    assert_eq!(count(&clients[0].owned), 12);
}

#[test]
fn epochs_are_checked() {
    let mut c = coordinator();
    let t = topics(6, 6);
    let mut clients = vec![Client::new("m1"), Client::new("m2")];
    settle(&mut c, &mut clients, &t, 0);
    let epoch = clients[0].epoch;
    let owned = clients[0].owned.clone();
    let (resp, _) = c.consumer_heartbeat(&beat("m1", epoch + 1, Some(&owned), 10), &t);
    assert_eq!(resp.error, Some(E::FencedMemberEpoch));
    assert_eq!(resp.member_id, None);
    // The previous epoch with a subset of the assignment: the answer was lost.
    let (resp, _) = c.consumer_heartbeat(&beat("m1", epoch - 1, Some(&owned), 10), &t);
    assert_eq!((resp.error, resp.member_epoch), (None, epoch));
    let (resp, _) = c.consumer_heartbeat(&beat("m1", epoch - 1, None, 10), &t);
    assert_eq!(resp.error, Some(E::FencedMemberEpoch));
    let (resp, _) = c.consumer_heartbeat(&beat("nobody", epoch, None, 10), &t);
    assert_eq!(resp.error, Some(E::UnknownMemberId));
    let (resp, _) = c.consumer_heartbeat(&beat("m1", epoch, None, 10), &topics(6, 6));
    assert_eq!(
        (resp.error, resp.assignment),
        (None, None),
        "no change, no assignment"
    );
    // A fenced member rejoins with epoch 0 and the same id: it starts over.
    clients[0].epoch = 0;
    clients[0].owned.clear();
    settle(&mut c, &mut clients, &t, 20);
    assert_eq!(count(&clients[0].owned), 6);
    // Unknown group.
    let mut req = beat("m1", 3, None, 30);
    req.group_id = "other".into();
    let (resp, _) = c.consumer_heartbeat(&req, &t);
    assert_eq!(resp.error, Some(E::GroupIdNotFound));
}

#[test]
fn request_validation() {
    let mut c = coordinator();
    let t = topics(6, 6);
    let mut no_timeout = join_req("m1", &["a"], 0);
    no_timeout.rebalance_timeout_ms = -1;
    let mut owned_on_join = join_req("m1", &["a"], 0);
    owned_on_join.topic_partitions = Some(vec![(A, vec![0])]);
    let mut no_subscription = join_req("m1", &["a"], 0);
    no_subscription.subscribed_topic_names = None;
    let mut empty_v1_id = join_req("", &["a"], 0);
    empty_v1_id.api_version = 1;
    let mut bad_epoch = join_req("m1", &["a"], 0);
    bad_epoch.member_epoch = -3;
    let mut bad_instance = join_req("m1", &["a"], 0);
    bad_instance.instance_id = Some(String::new());
    for req in [
        no_timeout,
        owned_on_join,
        no_subscription,
        empty_v1_id,
        bad_epoch,
        bad_instance,
    ] {
        let (resp, out) = c.consumer_heartbeat(&req, &t);
        assert_eq!(resp.error, Some(E::InvalidRequest), "{req:?}");
        assert!(resp.error_message.is_some());
        assert_eq!(out, Output::default());
    }
    let mut assignor = join_req("m1", &["a"], 0);
    assignor.server_assignor = Some("sticky".into());
    assert_eq!(
        c.consumer_heartbeat(&assignor, &t).0.error,
        Some(E::UnsupportedAssignor)
    );
    let mut regex = join_req("m1", &[], 0);
    regex.subscribed_topic_regex = Some("(unclosed".into());
    assert_eq!(
        c.consumer_heartbeat(&regex, &t).0.error,
        Some(E::InvalidRegularExpression)
    );
    assert!(
        c.consumer_group("g").is_none(),
        "failed joins leave nothing behind"
    );

    // v0: the coordinator makes up the member id.
    let mut v0 = join_req("", &["a"], 0);
    v0.api_version = 0;
    let (resp, _) = c.consumer_heartbeat(&v0, &t);
    let id = resp.member_id.expect("generated id");
    assert!(Uuid::parse_str(&id).is_ok(), "{id}");
    assert_eq!(resp.heartbeat_interval_ms, 5_000);
    let small = GroupConfig {
        consumer_max_size: 1,
        ..GroupConfig::default()
    };
    let mut c = GroupCoordinator::new(small, 1);
    c.consumer_heartbeat(&join_req("m1", &["a"], 0), &t);
    let (resp, _) = c.consumer_heartbeat(&join_req("m2", &["a"], 0), &t);
    assert_eq!(resp.error, Some(E::GroupMaxSizeReached));
}

#[test]
fn static_member_gets_its_assignment_back() {
    let mut c = coordinator();
    let t = topics(6, 6);
    let mut s1 = Client::new("s1-a");
    s1.instance = Some("instance-1".into());
    let mut clients = vec![s1, Client::new("d2")];
    settle(&mut c, &mut clients, &t, 0);
    let before = clients[0].owned.clone();
    let epoch = c.consumer_group("g").unwrap().group_epoch;

    // Another process with the same instance id while s1 is alive.
    let mut impostor = join_req("s1-b", &["a", "b"], 10);
    impostor.instance_id = Some("instance-1".into());
    assert_eq!(
        c.consumer_heartbeat(&impostor, &t).0.error,
        Some(E::UnreleasedInstanceId)
    );
    let mut wrong_id = beat("s1-b", clients[0].epoch, None, 10);
    wrong_id.instance_id = Some("instance-1".into());
    assert_eq!(
        c.consumer_heartbeat(&wrong_id, &t).0.error,
        Some(E::FencedInstanceId)
    );

    // s1 restarts: leaves with -2, comes back with a new member id.
    let mut leave = beat("s1-a", clients[0].epoch, None, 20);
    leave.member_epoch = -2;
    leave.instance_id = Some("instance-1".into());
    let (resp, _) = c.consumer_heartbeat(&leave, &t);
    assert_eq!((resp.error, resp.member_epoch), (None, -2));
    assert_eq!(state(&c), "Reconciling");
    // d2 heartbeating meanwhile gets none of s1's partitions.
    clients[1].heartbeat(&mut c, &t, 30);
    assert_eq!(count(&clients[1].owned), 6);
    let (resp, _) = c.consumer_heartbeat(&impostor, &t);
    assert_eq!(resp.error, None);
    assert_eq!(from_list(&resp.assignment.unwrap()), before);
    assert_eq!(
        c.consumer_group("g").unwrap().group_epoch,
        epoch,
        "no rebalance"
    );
    assert!(!c.consumer_group("g").unwrap().members.contains_key("s1-a"));
    assert_eq!(state(&c), "Stable");
}

#[test]
fn regex_subscription_follows_new_topics() {
    let mut c = coordinator();
    let mut t = topics(6, 6);
    t.insert(
        "orders-1".into(),
        TopicInfo {
            id: Uuid::from_u128(1),
            partitions: 2,
        },
    );
    let mut req = join_req("m1", &[], 0);
    req.subscribed_topic_names = None;
    req.subscribed_topic_regex = Some("orders-.*".into());
    let (resp, _) = c.consumer_heartbeat(&req, &t);
    assert_eq!(
        resp.assignment,
        Some(vec![(Uuid::from_u128(1), vec![0, 1])])
    );
    let epoch = resp.member_epoch;
    // A matching topic appears: noticed on the next heartbeat.
    t.insert(
        "orders-2".into(),
        TopicInfo {
            id: Uuid::from_u128(2),
            partitions: 1,
        },
    );
    t.insert(
        "xorders-3".into(),
        TopicInfo {
            id: Uuid::from_u128(3),
            partitions: 1,
        },
    );
    let owned = from_list(&[(Uuid::from_u128(1), vec![0, 1])]);
    let (resp, out) = c.consumer_heartbeat(&beat("m1", epoch, Some(&owned), 10), &t);
    assert_eq!(resp.member_epoch, epoch + 1);
    let assigned = from_list(&resp.assignment.unwrap());
    assert_eq!(count(&assigned), 3, "whole-name match only: {assigned:?}");
    assert!(out
        .records
        .iter()
        .any(|r| matches!(r, Record::ConsumerGroupPartitionMetadata { .. })));
    let d = c.describe_consumer_group("g", &t);
    assert_eq!(
        d.members[0].subscribed_topic_regex.as_deref(),
        Some("orders-.*")
    );
}

#[test]
fn added_partitions_are_assigned_on_the_next_heartbeat() {
    let mut c = coordinator();
    let mut clients = vec![Client::new("m1"), Client::new("m2")];
    settle(&mut c, &mut clients, &topics(6, 6), 0);
    let epoch = c.consumer_group("g").unwrap().group_epoch;
    let grown = topics(8, 6);
    settle(&mut c, &mut clients, &grown, 10);
    assert_eq!(c.consumer_group("g").unwrap().group_epoch, epoch + 1);
    let total: usize = clients.iter().map(|cl| count(&cl.owned)).sum();
    assert_eq!(total, 14);
    assert_eq!(count(&clients[0].owned), 7);
    // Subscribing to a topic that does not exist yet: ignored until it does.
    let mut c = coordinator();
    let (resp, _) = c.consumer_heartbeat(&join_req("m1", &["later"], 0), &topics(6, 6));
    assert_eq!(resp.assignment, Some(Vec::new()));
    let mut t = topics(6, 6);
    t.insert(
        "later".into(),
        TopicInfo {
            id: Uuid::from_u128(9),
            partitions: 3,
        },
    );
    let (resp, _) = c.consumer_heartbeat(
        &beat("m1", resp.member_epoch, Some(&Assignment::new()), 10),
        &t,
    );
    assert_eq!(
        resp.assignment,
        Some(vec![(Uuid::from_u128(9), vec![0, 1, 2])])
    );
}

fn classic_join(group_id: &str, now_ms: u64) -> JoinRequest {
    JoinRequest {
        group_id: group_id.into(),
        member_id: String::new(),
        group_instance_id: None,
        client_id: "classic".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Vec::new())],
        require_known_member_id: false,
        reply_to: ReplyTo(1),
        now_ms,
    }
}

fn commit(group_id: &str, member_id: &str, epoch: i32, now_ms: u64) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group_id.into(),
        generation_id: epoch,
        member_id: member_id.into(),
        group_instance_id: None,
        retention_ms: None,
        partitions: vec![CommitPartition {
            topic: "a".into(),
            partition: 0,
            offset: 42,
            leader_epoch: 1,
            metadata: None,
        }],
        now_ms,
    }
}

#[test]
fn classic_and_consumer_groups_stay_apart() {
    let mut c = coordinator();
    let t = topics(6, 6);
    c.consumer_heartbeat(&join_req("m1", &["a"], 0), &t);
    let out = c.join(classic_join("g", 0));
    match out.reply_for(ReplyTo(1)) {
        Some(Reply::Join(r)) => assert_eq!(r.error, Some(E::InconsistentGroupProtocol)),
        other => panic!("{other:?}"),
    }
    assert!(c.group("g").is_none());

    // A classic group with a member cannot be taken over.
    c.join(classic_join("old", 0));
    let mut req = join_req("m1", &["a"], 0);
    req.group_id = "old".into();
    assert_eq!(
        c.consumer_heartbeat(&req, &t).0.error,
        Some(E::GroupIdNotFound)
    );

    // An empty classic group holding offsets is converted and keeps them.
    let (results, _) = c.commit_offsets(&commit("simple", "", -1, 0));
    assert_eq!(results[0].2, None);
    req.group_id = "simple".into();
    let (resp, out) = c.consumer_heartbeat(&req, &t);
    assert_eq!(resp.error, None);
    assert_eq!(
        out.records[0],
        Record::Group {
            group_id: "simple".into(),
            value: None
        }
    );
    assert!(c.group("simple").is_none());
    let fetched = c.fetch_offsets(&OffsetFetchRequest {
        group_id: "simple".into(),
        topics: None,
        require_stable: false,
    });
    assert_eq!(fetched[0].offset, 42);

    let listed = c.list_groups(&[], &["consumer".into()]);
    let ids: Vec<&str> = listed.iter().map(|l| l.group_id.as_str()).collect();
    assert_eq!(ids, ["g", "simple"]);
    assert_eq!(listed[0].state, "Stable");
    assert_eq!(listed[0].protocol_type, "consumer");
    assert_eq!(c.list_groups(&["stable".into()], &[]).len(), 2);
    assert_eq!(c.list_groups(&[], &["classic".into()]).len(), 1);
    let described = c.describe_group("g");
    assert_eq!(
        (described.state, described.error),
        ("Dead", Some(E::GroupIdNotFound))
    );
    let d = c.describe_consumer_group("old", &t);
    assert_eq!(d.error, Some(E::GroupIdNotFound));
}

#[test]
fn offset_commits_carry_the_member_epoch() {
    let mut c = coordinator();
    let t = topics(6, 6);
    let mut clients = vec![Client::new("m1")];
    settle(&mut c, &mut clients, &t, 0);
    let epoch = clients[0].epoch;
    let commit_error =
        |c: &mut GroupCoordinator, req: OffsetCommitRequest| c.commit_offsets(&req).0[0].2;
    assert_eq!(commit_error(&mut c, commit("g", "m1", epoch, 1)), None);
    assert_eq!(
        commit_error(&mut c, commit("g", "m1", epoch - 1, 1)),
        Some(E::StaleMemberEpoch)
    );
    assert_eq!(
        commit_error(&mut c, commit("g", "m9", epoch, 1)),
        Some(E::UnknownMemberId)
    );
    assert_eq!(
        commit_error(&mut c, commit("g", "", -1, 1)),
        Some(E::UnknownMemberId)
    );
    assert_eq!(c.validate_offset_fetch("g", Some("m1"), epoch), None);
    assert_eq!(
        c.validate_offset_fetch("g", Some("m1"), epoch + 1),
        Some(E::StaleMemberEpoch)
    );
    assert_eq!(c.validate_offset_fetch("g", None, -1), None);
    assert_eq!(c.consumer_group("g").unwrap().offsets.len(), 1);
    // OffsetDelete: not the offsets of a subscribed topic.
    let ((error, results), _) = c.delete_offsets("g", &[("a".into(), 0)]);
    assert_eq!(
        (error, results[0].2),
        (None, Some(E::GroupSubscribedToTopic))
    );
    // Once everyone left, standalone commits are accepted again.
    c.consumer_heartbeat(&beat("m1", -1, None, 2), &t);
    assert_eq!(commit_error(&mut c, commit("g", "", -1, 3)), None);
    let ((error, results), out) = c.delete_offsets("g", &[("a".into(), 0)]);
    assert_eq!((error, results[0].2), (None, None));
    assert_eq!(out.records.len(), 1);
}

#[test]
fn replaying_the_records_rebuilds_the_same_groups() {
    let mut c = coordinator();
    let t = topics(6, 6);
    let mut log: Vec<Record> = Vec::new();
    let mut clients = vec![Client::new("m1"), Client::new("m2")];
    clients[1].instance = Some("i2".into());
    for client in clients.iter_mut() {
        log.extend(client.heartbeat(&mut c, &t, 0).records);
    }
    // Stop half-way through a rebalance: m1 is asked to revoke.
    log.extend(clients[0].heartbeat(&mut c, &t, 1).records);
    log.extend(
        c.commit_offsets(&commit("g", "m1", clients[0].epoch, 2))
            .1
            .records,
    );
    let mut third = Client::new("m3");
    log.extend(third.heartbeat(&mut c, &t, 3).records);
    let mut leave = beat("m3", third.epoch, None, 4);
    leave.member_epoch = -1;
    log.extend(c.consumer_heartbeat(&leave, &t).1.records);
    assert_eq!(state(&c), "Assigning");

    let mut fresh = coordinator();
    let mut timers = Vec::new();
    for record in &log {
        timers.extend(fresh.replay(record, 100).timers);
    }
    assert_eq!(fresh.consumer_group("g"), c.consumer_group("g"));
    assert!(timers.contains(&TimerOp::Set {
        key: TimerKey::ConsumerSession {
            group_id: "g".into(),
            member_id: "m2".into()
        },
        deadline_ms: 100 + SESSION,
    }));
    // The replayed coordinator carries on where the first one stopped.
    let mut replayed = clients.clone();
    settle(&mut fresh, &mut replayed, &t, 200);
    settle(&mut c, &mut clients, &t, 200);
    assert_eq!(fresh.consumer_group("g"), c.consumer_group("g"));
}

#[test]
fn only_an_empty_group_can_be_deleted() {
    let mut c = coordinator();
    let t = topics(6, 6);
    let mut log = Vec::new();
    let (resp, out) = c.consumer_heartbeat(&join_req("m1", &["a"], 0), &t);
    log.extend(out.records);
    log.extend(
        c.commit_offsets(&commit("g", "m1", resp.member_epoch, 1))
            .1
            .records,
    );
    let (results, _) = c.delete_groups(&["g".into()]);
    assert_eq!(results[0].1, Some(E::NonEmptyGroup));
    log.extend(
        c.consumer_heartbeat(&beat("m1", resp.member_epoch, None, 2), &t)
            .1
            .records,
    );
    log.extend(c.consumer_heartbeat(&beat("m1", -1, None, 3), &t).1.records);
    assert_eq!(state(&c), "Empty");
    let (results, out) = c.delete_groups(&["g".into()]);
    assert_eq!(results[0].1, None);
    assert!(c.consumer_group("g").is_none() && c.group("g").is_none());
    assert!(out.records.contains(&Record::ConsumerGroupMetadata {
        group_id: "g".into(),
        value: None
    }));
    log.extend(out.records);
    let mut fresh = coordinator();
    for record in &log {
        fresh.replay(record, 10);
    }
    assert!(fresh.consumer_group("g").is_none() && fresh.group("g").is_none());
    let (results, _) = c.delete_groups(&["g".into()]);
    assert_eq!(results[0].1, Some(E::GroupIdNotFound));
}

#[test]
fn offsets_of_unsubscribed_topics_expire() {
    let mut c = coordinator();
    let t = topics(6, 6);
    let (resp, _) = c.consumer_heartbeat(&join_req("m1", &["b"], 0), &t);
    c.commit_offsets(&commit("g", "m1", resp.member_epoch, 0));
    let retention = GroupConfig::default().offsets_retention_ms;
    let out = c.expire_offsets(retention);
    assert_eq!(out.records.len(), 1, "topic a is not subscribed: {out:?}");
    assert!(c.consumer_group("g").unwrap().offsets.is_empty());
    // An empty group without offsets goes away.
    c.consumer_heartbeat(&beat("m1", resp.member_epoch, None, 1), &t);
    c.consumer_heartbeat(&beat("m1", -1, None, 2), &t);
    c.expire_offsets(retention + 1);
    assert!(c.consumer_group("g").is_none());
}

//! The group coordinator over TCP, request by request: the classic protocol's happy path
//! and its errors, parked JoinGroup requests across connections, session expiry driven by
//! the broker's timers, and group state and offsets rebuilt from `__consumer_offsets`
//! after a restart. (The real clients' view is in the compat matrix.)

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Conn, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

const SESSION_MS: i32 = 1_000;

async fn join(c: &mut Conn, group: &str, member: &str) -> JoinGroupResponse {
    let req = JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_session_timeout_ms(SESSION_MS)
        .with_rebalance_timeout_ms(5_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(s("range"))
        .with_metadata(Bytes::from_static(b"subscription"))]);
    c.call(ApiKey::JoinGroup, 6, &req).await
}

/// Join as a new member: the first JoinGroup (v4+) only hands out the member id.
async fn join_new(c: &mut Conn, group: &str) -> JoinGroupResponse {
    let first = join(c, group, "").await;
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    assert!(!first.member_id.is_empty());
    join(c, group, &first.member_id).await
}

async fn sync(
    c: &mut Conn,
    group: &str,
    generation: i32,
    member: &str,
    assignments: &[(&str, &[u8])],
) -> SyncGroupResponse {
    let req = SyncGroupRequest::default()
        .with_group_id(gid(group))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(Bytes::copy_from_slice(a))
                })
                .collect(),
        );
    c.call(ApiKey::SyncGroup, 5, &req).await
}

async fn heartbeat(c: &mut Conn, group: &str, generation: i32, member: &str) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_generation_id(generation)
        .with_member_id(s(member));
    let r: HeartbeatResponse = c.call(ApiKey::Heartbeat, 4, &req).await;
    r.error_code
}

async fn commit(c: &mut Conn, group: &str, generation: i32, member: &str, offset: i64) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("gt")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(-1)
                        .with_committed_metadata(Some(s("note"))),
                ]),
        ]);
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &req).await;
    r.topics[0].partitions[0].error_code
}

/// (offset, metadata) committed for gt-0.
async fn fetch(c: &mut Conn, group: &str) -> (i64, String) {
    let req = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(gid(group))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopics::default()
                    .with_name(TopicName(s("gt")))
                    .with_partition_indexes(vec![0]),
            ])),
    ]);
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 8, &req).await;
    assert_eq!(r.groups[0].error_code, 0);
    let p = &r.groups[0].topics[0].partitions[0];
    (
        p.committed_offset,
        p.metadata
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

async fn describe(c: &mut Conn, group: &str) -> describe_groups_response::DescribedGroup {
    let req = DescribeGroupsRequest::default().with_groups(vec![gid(group)]);
    let mut r: DescribeGroupsResponse = c.call(ApiKey::DescribeGroups, 5, &req).await;
    r.groups.remove(0)
}

async fn wait_for_state(c: &mut Conn, group: &str, state: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let d = describe(c, group).await;
        if d.group_state.as_str() == state {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "group {group} still {} after {within:?}",
            d.group_state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A broker with the topic `gt` (one partition) that the tests commit offsets for.
async fn start() -> TestBroker {
    let b = TestBroker::start(&[
        "group.initial.rebalance.delay.ms=0",
        "group.min.session.timeout.ms=500",
    ])
    .await;
    let mut c = Conn::connect(b.addr).await;
    let md: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default()
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                )
                .with_name(Some(TopicName(s("gt"))))]))
                .with_allow_auto_topic_creation(true),
        )
        .await;
    assert_eq!(md.topics[0].error_code, 0);
    b
}

#[tokio::test]
async fn a_group_lives_through_a_restart() {
    let b = start().await;
    let mut c = Conn::connect(b.addr).await;
    let fc: FindCoordinatorResponse = c
        .call(
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g1")]),
        )
        .await;
    let coord = &fc.coordinators[0];
    assert_eq!(coord.error_code, 0);
    assert_eq!((coord.node_id.0, coord.port), (1, b.addr.port() as i32));

    let joined = join_new(&mut c, "g1").await;
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader, joined.member_id);
    assert_eq!(joined.members.len(), 1);
    let me = joined.member_id.to_string();
    let synced = sync(&mut c, "g1", 1, &me, &[(&me, b"gt-0")]).await;
    assert_eq!(synced.error_code, 0);
    assert_eq!(&synced.assignment[..], b"gt-0");
    assert_eq!(heartbeat(&mut c, "g1", 1, &me).await, 0);
    assert_eq!(commit(&mut c, "g1", 1, &me, 3).await, 0);
    assert_eq!(
        commit(&mut c, "g1", 7, &me, 4).await,
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(
        commit(&mut c, "g1", 1, "stranger", 4).await,
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(fetch(&mut c, "g1").await, (3, "note".to_string()));
    let d = describe(&mut c, "g1").await;
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!(d.members.len(), 1);
    assert_eq!(&d.members[0].member_assignment[..], b"gt-0");
    // A standalone commit goes to a group without members.
    assert_eq!(commit(&mut c, "solo", -1, "", 11).await, 0);
    drop(c);

    let b = b.restart().await;
    let mut c = Conn::connect(b.addr).await;
    assert_eq!(fetch(&mut c, "g1").await, (3, "note".to_string()));
    assert_eq!(fetch(&mut c, "solo").await.0, 11);
    // The member was restored with a fresh session: it carries on without rejoining.
    let d = describe(&mut c, "g1").await;
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!(d.members[0].member_id.as_str(), me);
    assert_eq!(heartbeat(&mut c, "g1", 1, &me).await, 0);

    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("g1"))
        .with_members(vec![
            leave_group_request::MemberIdentity::default().with_member_id(s(&me)),
            leave_group_request::MemberIdentity::default().with_member_id(s("stranger")),
        ]);
    let left: LeaveGroupResponse = c.call(ApiKey::LeaveGroup, 4, &leave).await;
    assert_eq!(left.error_code, 0);
    assert_eq!(left.members[0].error_code, 0);
    assert_eq!(
        left.members[1].error_code,
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(describe(&mut c, "g1").await.group_state.as_str(), "Empty");

    let listed: ListGroupsResponse = c
        .call(
            ApiKey::ListGroups,
            4,
            &ListGroupsRequest::default().with_states_filter(vec![s("Empty")]),
        )
        .await;
    let mut names: Vec<String> = listed
        .groups
        .iter()
        .map(|g| g.group_id.to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["g1", "solo"]);

    let deleted: DeleteGroupsResponse = c
        .call(
            ApiKey::DeleteGroups,
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![gid("g1"), gid("nope")]),
        )
        .await;
    assert_eq!(deleted.results[0].error_code, 0);
    assert_eq!(
        deleted.results[1].error_code,
        ResponseError::GroupIdNotFound.code()
    );
    assert_eq!(fetch(&mut c, "g1").await.0, -1);
    // Deleted stays deleted across a restart (the tombstones were written).
    drop(c);
    let b = b.restart().await;
    let mut c = Conn::connect(b.addr).await;
    assert_eq!(fetch(&mut c, "g1").await.0, -1);
    assert_eq!(fetch(&mut c, "solo").await.0, 11);
    b.stop().await;
}

#[tokio::test]
async fn members_rebalance_across_connections_and_expire_without_heartbeats() {
    let b = start().await;
    let mut c1 = Conn::connect(b.addr).await;
    let mut c2 = Conn::connect(b.addr).await;
    let _: FindCoordinatorResponse = c1
        .call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default().with_key(s("g2")),
        )
        .await;
    let first = join_new(&mut c1, "g2").await;
    let m1 = first.member_id.to_string();
    assert_eq!(
        sync(&mut c1, "g2", 1, &m1, &[(&m1, b"all")])
            .await
            .error_code,
        0
    );

    // A second member parks in JoinGroup until the first rejoins.
    let id2 = join(&mut c2, "g2", "").await.member_id.to_string();
    let req2 = JoinGroupRequest::default()
        .with_group_id(gid("g2"))
        .with_session_timeout_ms(SESSION_MS)
        .with_rebalance_timeout_ms(5_000)
        .with_member_id(s(&id2))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(s("range"))
        .with_metadata(Bytes::from_static(b"subscription"))]);
    c2.send(ApiKey::JoinGroup, 6, &req2).await;
    let rebalancing = Instant::now();
    let mut hb = 0;
    while rebalancing.elapsed() < Duration::from_secs(5) {
        hb = heartbeat(&mut c1, "g2", 1, &m1).await;
        if hb != 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hb, ResponseError::RebalanceInProgress.code());
    let rejoined = join(&mut c1, "g2", &m1).await;
    assert_eq!(rejoined.error_code, 0);
    assert_eq!(rejoined.generation_id, 2);
    assert_eq!(rejoined.members.len(), 2, "the leader sees both members");
    let frame = c2.recv_frame().await.expect("parked join answered");
    let mut body = frame;
    let _ = <ResponseHeader as kafka_protocol::protocol::Decodable>::decode(
        &mut body,
        ApiKey::JoinGroup.response_header_version(6),
    )
    .unwrap();
    let joined2 =
        <JoinGroupResponse as kafka_protocol::protocol::Decodable>::decode(&mut body, 6).unwrap();
    assert_eq!((joined2.error_code, joined2.generation_id), (0, 2));
    assert!(
        joined2.members.is_empty(),
        "followers do not get the member list"
    );

    // The follower's SyncGroup waits for the leader's assignment.
    let sync2 = SyncGroupRequest::default()
        .with_group_id(gid("g2"))
        .with_generation_id(2)
        .with_member_id(s(&id2))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")));
    c2.send(ApiKey::SyncGroup, 5, &sync2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let leader_sync = sync(&mut c1, "g2", 2, &m1, &[(&m1, b"p0"), (&id2, b"p1")]).await;
    assert_eq!(&leader_sync.assignment[..], b"p0");
    let mut body = c2.recv_frame().await.expect("parked sync answered");
    let _ = <ResponseHeader as kafka_protocol::protocol::Decodable>::decode(
        &mut body,
        ApiKey::SyncGroup.response_header_version(5),
    )
    .unwrap();
    let synced2 =
        <SyncGroupResponse as kafka_protocol::protocol::Decodable>::decode(&mut body, 5).unwrap();
    assert_eq!(
        (synced2.error_code, &synced2.assignment[..]),
        (0, &b"p1"[..])
    );

    // Member 2 stops heartbeating; the broker's timer removes it after its session and
    // the group rebalances for member 1 alone.
    let expired = Instant::now();
    let mut hb = 0;
    while expired.elapsed() < Duration::from_secs(10) {
        hb = heartbeat(&mut c1, "g2", 2, &m1).await;
        if hb != 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hb, ResponseError::RebalanceInProgress.code());
    assert!(
        expired.elapsed() >= Duration::from_millis(SESSION_MS as u64 - 200),
        "expired before its session ended: {:?}",
        expired.elapsed()
    );
    let alone = join(&mut c1, "g2", &m1).await;
    assert_eq!((alone.generation_id, alone.members.len()), (3, 1));

    // And member 1 going silent too leaves the group Empty.
    wait_for_state(&mut c2, "g2", "Empty", Duration::from_secs(10)).await;
    b.stop().await;
}

async fn consumer_heartbeat(
    c: &mut Conn,
    member: &str,
    epoch: i32,
    owned: Option<Vec<consumer_group_heartbeat_request::TopicPartitions>>,
) -> ConsumerGroupHeartbeatResponse {
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(gid("kg"))
        .with_member_id(s(member))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(if epoch == 0 { 5_000 } else { -1 })
        .with_subscribed_topic_names(if epoch == 0 {
            Some(vec![TopicName(s("kt"))])
        } else {
            None
        })
        .with_topic_partitions(owned);
    c.call(ApiKey::ConsumerGroupHeartbeat, 1, &req).await
}

#[tokio::test]
async fn a_consumer_protocol_group_is_assigned_and_lives_through_a_restart() {
    let b = TestBroker::start(&["num.partitions=4"]).await;
    let mut c = Conn::connect(b.addr).await;
    let md: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default()
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                )
                .with_name(Some(TopicName(s("kt"))))]))
                .with_allow_auto_topic_creation(true),
        )
        .await;
    let topic_id = md.topics[0].topic_id;
    let _: FindCoordinatorResponse = c
        .call(
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default().with_coordinator_keys(vec![s("kg")]),
        )
        .await;

    let joined = consumer_heartbeat(&mut c, "m1", 0, Some(vec![])).await;
    assert_eq!(joined.error_code, 0, "{:?}", joined.error_message);
    assert!(joined.member_epoch > 0);
    assert!(joined.heartbeat_interval_ms > 0);
    let assignment = joined
        .assignment
        .expect("the first heartbeat gets an assignment");
    assert_eq!(assignment.topic_partitions.len(), 1);
    assert_eq!(assignment.topic_partitions[0].topic_id, topic_id);
    let mut parts = assignment.topic_partitions[0].partitions.clone();
    parts.sort();
    assert_eq!(parts, [0, 1, 2, 3], "a single member gets every partition");
    let owned = vec![consumer_group_heartbeat_request::TopicPartitions::default()
        .with_topic_id(topic_id)
        .with_partitions(parts.clone())];
    let epoch = joined.member_epoch;
    let steady = consumer_heartbeat(&mut c, "m1", epoch, Some(owned.clone())).await;
    assert_eq!((steady.error_code, steady.member_epoch), (0, epoch));
    let stale = consumer_heartbeat(&mut c, "m1", epoch + 7, None).await;
    assert_eq!(stale.error_code, ResponseError::FencedMemberEpoch.code());

    // The classic protocol cannot take over a consumer group.
    let classic = join(&mut c, "kg", "").await;
    assert_eq!(
        classic.error_code,
        ResponseError::InconsistentGroupProtocol.code()
    );
    drop(c);

    let b = b.restart().await;
    let mut c = Conn::connect(b.addr).await;
    let described: ConsumerGroupDescribeResponse = c
        .call(
            ApiKey::ConsumerGroupDescribe,
            1,
            &ConsumerGroupDescribeRequest::default().with_group_ids(vec![gid("kg"), gid("g-none")]),
        )
        .await;
    let g = &described.groups[0];
    assert_eq!(g.error_code, 0);
    assert_eq!(g.group_state.as_str(), "Stable");
    assert_eq!(g.members.len(), 1);
    assert_eq!(g.members[0].member_id.as_str(), "m1");
    assert_eq!(g.members[0].member_epoch, epoch);
    let mut described_parts = g.members[0].assignment.topic_partitions[0]
        .partitions
        .clone();
    described_parts.sort();
    assert_eq!(described_parts, parts);
    assert_eq!(
        described.groups[1].error_code,
        ResponseError::GroupIdNotFound.code()
    );
    // The member carries on at its epoch after the restart.
    let resumed = consumer_heartbeat(&mut c, "m1", epoch, Some(owned)).await;
    assert_eq!((resumed.error_code, resumed.member_epoch), (0, epoch));
    let left = consumer_heartbeat(&mut c, "m1", -1, None).await;
    assert_eq!((left.error_code, left.member_epoch), (0, -1));
    b.stop().await;
}

/// FindCoordinator for `group`, which must answer without an error.
async fn coordinator(c: &mut Conn, group: &str) {
    let fc: FindCoordinatorResponse = c
        .call(
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default().with_coordinator_keys(vec![s(group)]),
        )
        .await;
    assert_eq!(fc.coordinators[0].error_code, 0);
}

#[tokio::test]
async fn commits_for_partitions_that_do_not_exist_are_refused_per_partition() {
    let b = start().await;
    let mut c = Conn::connect(b.addr).await;
    // gt exists with one partition (see start); the coordinator is ready.
    coordinator(&mut c, "never").await;
    let part = |i: i32| {
        offset_commit_request::OffsetCommitRequestPartition::default()
            .with_partition_index(i)
            .with_committed_offset(1)
    };
    let req = OffsetCommitRequest::default()
        .with_group_id(gid("never"))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("no-such-topic")))
                .with_partitions(vec![part(0), part(1)]),
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("gt")))
                .with_partitions(vec![part(7)]),
        ]);
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &req).await;
    let codes: Vec<(String, i32, i16)> = r
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.to_string(), p.partition_index, p.error_code))
        })
        .collect();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    assert_eq!(
        codes,
        [
            ("no-such-topic".to_string(), 0, unknown),
            ("no-such-topic".to_string(), 1, unknown),
            ("gt".to_string(), 7, unknown),
        ]
    );
    // Nothing was stored and no group came into being.
    let req = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(gid("never"))
            .with_topics(None),
    ]);
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 8, &req).await;
    assert!(r.groups[0].topics.is_empty(), "{r:?}");
    let listed: ListGroupsResponse = c
        .call(ApiKey::ListGroups, 4, &ListGroupsRequest::default())
        .await;
    assert!(listed.groups.iter().all(|g| g.group_id.as_str() != "never"));
    b.stop().await;
}

#[tokio::test]
async fn authorized_operations_are_every_operation_without_an_authorizer() {
    let b = start().await;
    let mut c = Conn::connect(b.addr).await;
    coordinator(&mut c, "any").await;
    let req = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(TopicName(s("gt"))))]))
        .with_allow_auto_topic_creation(true)
        .with_include_topic_authorized_operations(true);
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &req).await;
    // READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
    assert_eq!(r.topics[0].topic_authorized_operations, 3576);
    let r: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            10,
            &req.clone().with_include_cluster_authorized_operations(true),
        )
        .await;
    assert_eq!(r.cluster_authorized_operations, 8096);
    let r: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &req.with_include_topic_authorized_operations(false),
        )
        .await;
    assert_eq!(r.topics[0].topic_authorized_operations, i32::MIN);
    let r: DescribeGroupsResponse = c
        .call(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default()
                .with_groups(vec![gid("any")])
                .with_include_authorized_operations(true),
        )
        .await;
    // READ, DESCRIBE, DELETE.
    assert_eq!(r.groups[0].authorized_operations, 328);
    let r: ConsumerGroupDescribeResponse = c
        .call(
            ApiKey::ConsumerGroupDescribe,
            0,
            &ConsumerGroupDescribeRequest::default()
                .with_group_ids(vec![gid("any")])
                .with_include_authorized_operations(true),
        )
        .await;
    // Unknown: an error, and (as Kafka) no operations.
    assert_ne!(r.groups[0].error_code, 0);
    assert_eq!(r.groups[0].authorized_operations, i32::MIN);
    let r: DescribeClusterResponse = c
        .call(
            ApiKey::DescribeCluster,
            1,
            &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
        )
        .await;
    assert_eq!(r.cluster_authorized_operations, 8096);
    b.stop().await;
}

/// Before FindCoordinator has created `__consumer_offsets`, no broker coordinates any
/// group: a commit is answered NOT_COORDINATOR (as Kafka's coordinator runtime answers),
/// so a client looks the coordinator up, and the same commit then succeeds.
#[tokio::test]
async fn a_commit_before_any_coordinator_exists_is_sent_to_look_one_up() {
    let b = start().await;
    let mut c = Conn::connect(b.addr).await;
    let commit = OffsetCommitRequest::default()
        .with_group_id(gid("early"))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("gt")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1),
                ]),
        ]);
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &commit).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::NotCoordinator.code()
    );
    coordinator(&mut c, "early").await;
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &commit).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    b.stop().await;
}

//! Unit tests of the group state machine, driven with explicit timestamps (a paused
//! clock): nothing here sleeps; time only moves when a test says so.

use kafka_protocol::error::ResponseError as E;

use super::*;

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;

fn coordinator(delay: u64) -> GroupCoordinator {
    let config = GroupConfig {
        initial_rebalance_delay_ms: delay,
        ..GroupConfig::default()
    };
    GroupCoordinator::new(config, 7)
}

fn join(client: &str, member_id: &str, reply: u64, now_ms: u64) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: client.into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), format!("sub-{client}").into_bytes())],
        require_known_member_id: false,
        reply_to: ReplyTo(reply),
        now_ms,
    }
}

fn static_join(client: &str, member_id: &str, reply: u64, now_ms: u64) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(format!("instance-{client}")),
        ..join(client, member_id, reply, now_ms)
    }
}

fn sync(member_id: &str, generation_id: i32, reply: u64, now_ms: u64) -> SyncRequest {
    SyncRequest {
        group_id: "g".into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: Vec::new(),
        reply_to: ReplyTo(reply),
        now_ms,
    }
}

fn heartbeat(member_id: &str, generation_id: i32, now_ms: u64) -> HeartbeatRequest {
    HeartbeatRequest {
        group_id: "g".into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        now_ms,
    }
}

fn commit(member_id: &str, generation_id: i32, offset: i64, now_ms: u64) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: "g".into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        retention_ms: None,
        partitions: vec![CommitPartition {
            topic: "t".into(),
            partition: 0,
            offset,
            leader_epoch: 3,
            metadata: Some("meta".into()),
        }],
        now_ms,
    }
}

fn join_reply(out: &Output, to: u64) -> JoinResponse {
    match out.reply_for(ReplyTo(to)) {
        Some(Reply::Join(r)) => r.clone(),
        other => panic!("no join reply for {to}: {other:?} in {out:?}"),
    }
}

fn sync_reply(out: &Output, to: u64) -> SyncResponse {
    match out.reply_for(ReplyTo(to)) {
        Some(Reply::Sync(r)) => r.clone(),
        other => panic!("no sync reply for {to}: {other:?} in {out:?}"),
    }
}

fn state(c: &GroupCoordinator) -> GroupState {
    c.group("g").map(|g| g.state).unwrap_or(GroupState::Dead)
}

fn commit_error(c: &mut GroupCoordinator, req: &OffsetCommitRequest) -> Option<E> {
    let (results, _) = c.commit_offsets(req);
    assert_eq!(results.len(), 1);
    results[0].2
}

/// Members c1..cn join at t=0 and the leader syncs "a-<client>" assignments; returns
/// their member ids in join order. The group ends Stable at generation 1.
fn stable_group(c: &mut GroupCoordinator, n: usize, statics: bool) -> Vec<String> {
    for i in 1..=n {
        let client = format!("c{i}");
        let req = if statics {
            static_join(&client, "", i as u64, 0)
        } else {
            join(&client, "", i as u64, 0)
        };
        let out = c.join(req);
        assert!(out.replies.is_empty(), "joins are parked: {out:?}");
    }
    let out = c.tick(0);
    let ids: Vec<String> = (1..=n)
        .map(|i| join_reply(&out, i as u64).member_id)
        .collect();
    let leader = join_reply(&out, 1);
    assert_eq!(leader.leader, ids[0]);
    let syncs: Vec<SyncRequest> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut req = sync(id, 1, 100 + i as u64, 0);
            req.group_instance_id = statics.then(|| format!("instance-c{}", i + 1));
            req
        })
        .collect();
    for req in syncs.iter().skip(1) {
        assert!(c.sync(req.clone()).replies.is_empty(), "followers wait");
    }
    let mut leader_sync = syncs[0].clone();
    leader_sync.assignments = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), format!("a-c{}", i + 1).into_bytes()))
        .collect();
    let out = c.sync(leader_sync);
    assert_eq!(out.replies.len(), n);
    for i in 0..n {
        let r = sync_reply(&out, 100 + i as u64);
        assert_eq!(r.error, None);
        assert_eq!(r.assignment, format!("a-c{}", i + 1).into_bytes());
    }
    assert_eq!(state(c), GroupState::Stable);
    ids
}

#[test]
fn three_members_join_and_sync() {
    let mut c = coordinator(0);
    let out = c.join(join("c1", "", 1, 0));
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert!(out.timers.contains(&TimerOp::Set {
        key: TimerKey::Join {
            group_id: "g".into()
        },
        deadline_ms: 0
    }));
    c.join(join("c2", "", 2, 0));
    c.join(join("c3", "", 3, 0));
    let out = c.tick(0);
    assert_eq!(out.replies.len(), 3);
    let leader = join_reply(&out, 1);
    let follower = join_reply(&out, 2);
    assert_eq!(leader.error, None);
    assert_eq!(leader.generation_id, 1);
    assert_eq!(leader.protocol_name.as_deref(), Some("range"));
    assert_eq!(leader.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(leader.leader, leader.member_id);
    assert_eq!(leader.members.len(), 3);
    assert!(leader.member_id.starts_with("c1-"));
    assert_eq!(follower.leader, leader.member_id);
    assert!(follower.members.is_empty());
    assert_eq!(state(&c), GroupState::CompletingRebalance);

    // Followers wait for the leader; the leader leaves c3 out: it gets a valid empty
    // consumer assignment (never zero bytes).
    assert!(c
        .sync(sync(&follower.member_id, 1, 12, 5))
        .replies
        .is_empty());
    let c3 = join_reply(&out, 3).member_id;
    assert!(c.sync(sync(&c3, 1, 13, 5)).replies.is_empty());
    let mut s = sync(&leader.member_id, 1, 11, 6);
    s.assignments = vec![
        (leader.member_id.clone(), b"p0".to_vec()),
        (follower.member_id.clone(), b"p1".to_vec()),
        ("stranger".into(), b"px".to_vec()),
    ];
    let out = c.sync(s);
    assert_eq!(sync_reply(&out, 11).assignment, b"p0");
    assert_eq!(sync_reply(&out, 12).assignment, b"p1");
    assert_eq!(
        sync_reply(&out, 13).assignment,
        [0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]
    );
    assert_eq!(sync_reply(&out, 13).error, None);
    assert_eq!(state(&c), GroupState::Stable);
    match out.records.as_slice() {
        [Record::Group { value: Some(v), .. }] => {
            assert_eq!(v.generation_id, 1);
            assert_eq!(v.members.len(), 3);
            assert_eq!(v.leader.as_deref(), Some(leader.member_id.as_str()));
        }
        other => panic!("expected a group record: {other:?}"),
    }
    // A late sync in Stable gets the member's assignment.
    assert_eq!(
        sync_reply(&c.sync(sync(&follower.member_id, 1, 14, 7)), 14).assignment,
        b"p1"
    );
    let d = c.describe_group("g");
    assert_eq!(d.state, "Stable");
    assert_eq!(d.protocol_name, "range");
    assert_eq!(d.members.len(), 3);
}

#[test]
fn fourth_member_triggers_rebalance_and_eager_rejoin_completes_it() {
    let mut c = coordinator(0);
    let ids = stable_group(&mut c, 3, false);
    let out = c.join(join("c4", "", 4, 1_000));
    assert!(out.replies.is_empty());
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert!(out.timers.contains(&TimerOp::Set {
        key: TimerKey::Join {
            group_id: "g".into()
        },
        deadline_ms: 31_000
    }));
    assert_eq!(
        c.heartbeat(heartbeat(&ids[1], 1, 1_100)).0,
        Some(E::RebalanceInProgress)
    );
    // Commits still work while preparing (the generation is unchanged).
    assert_eq!(commit_error(&mut c, &commit(&ids[0], 1, 5, 1_150)), None);
    assert!(c.join(join("c1", &ids[0], 21, 1_200)).replies.is_empty());
    assert!(c.join(join("c2", &ids[1], 22, 1_200)).replies.is_empty());
    let out = c.join(join("c3", &ids[2], 23, 1_300));
    assert_eq!(
        out.replies.len(),
        4,
        "the last rejoin completes the join phase"
    );
    let leader = join_reply(&out, 21);
    assert_eq!(leader.generation_id, 2);
    assert_eq!(leader.leader, ids[0]);
    assert_eq!(leader.members.len(), 4);
    assert_eq!(join_reply(&out, 4).generation_id, 2);
    assert!(out.timers.contains(&TimerOp::Cancel {
        key: TimerKey::Join {
            group_id: "g".into()
        }
    }));
    assert_eq!(state(&c), GroupState::CompletingRebalance);
    assert_eq!(c.group("g").map(|g| g.rebalances), Some(2));
    // Old generation is now illegal.
    assert_eq!(
        c.heartbeat(heartbeat(&ids[1], 1, 1_400)).0,
        Some(E::IllegalGeneration)
    );
    assert_eq!(c.heartbeat(heartbeat(&ids[1], 2, 1_400)).0, None);
}

#[test]
fn member_leaves_and_the_rest_rebalance() {
    let mut c = coordinator(0);
    let ids = stable_group(&mut c, 3, false);
    let (resp, _) = c.leave(LeaveRequest {
        group_id: "g".into(),
        members: vec![
            LeavingMember {
                member_id: ids[1].clone(),
                group_instance_id: None,
            },
            LeavingMember {
                member_id: "ghost".into(),
                group_instance_id: None,
            },
        ],
        now_ms: 500,
    });
    assert_eq!(resp.error, None);
    assert_eq!(resp.members[0].2, None);
    assert_eq!(resp.members[1].2, Some(E::UnknownMemberId));
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    c.join(join("c1", &ids[0], 31, 600));
    let out = c.join(join("c3", &ids[2], 33, 600));
    assert_eq!(join_reply(&out, 31).members.len(), 2);
    assert_eq!(join_reply(&out, 33).generation_id, 2);
    assert_eq!(
        c.heartbeat(heartbeat(&ids[1], 2, 700)).0,
        Some(E::UnknownMemberId)
    );
}

#[test]
fn last_members_leaving_empties_the_group_and_allows_delete() {
    let mut c = coordinator(0);
    let ids = stable_group(&mut c, 2, false);
    assert_eq!(commit_error(&mut c, &commit(&ids[0], 1, 42, 10)), None);
    let (res, _) = c.delete_groups(&["g".to_string(), "nope".to_string(), String::new()]);
    assert_eq!(res[0].1, Some(E::NonEmptyGroup));
    assert_eq!(res[1].1, Some(E::GroupIdNotFound));
    assert_eq!(res[2].1, Some(E::InvalidGroupId));
    let members = ids
        .iter()
        .map(|id| LeavingMember {
            member_id: id.clone(),
            group_instance_id: None,
        })
        .collect();
    let (_, out) = c.leave(LeaveRequest {
        group_id: "g".into(),
        members,
        now_ms: 20,
    });
    assert_eq!(state(&c), GroupState::Empty);
    assert_eq!(c.group("g").map(|g| g.generation_id), Some(2));
    assert!(
        matches!(out.records.as_slice(), [Record::Group { value: Some(v), .. }] if v.members.is_empty())
    );
    assert_eq!(c.list_groups(&["empty".into()], &[])[0].state, "Empty");
    assert!(c.list_groups(&["Stable".into()], &[]).is_empty());
    let (res, out) = c.delete_groups(&["g".to_string()]);
    assert_eq!(res[0].1, None);
    assert_eq!(out.records.len(), 2, "offset tombstone and group tombstone");
    assert!(out.records.iter().all(|r| matches!(
        r,
        Record::Offset { value: None, .. } | Record::Group { value: None, .. }
    )));
    assert_eq!(c.describe_group("g").state, "Dead");
}

#[test]
fn session_expiry_removes_member_and_triggers_rebalance() {
    let mut c = coordinator(0);
    let ids = stable_group(&mut c, 3, false);
    assert_eq!(c.heartbeat(heartbeat(&ids[0], 1, 5_000)).0, None);
    assert_eq!(c.heartbeat(heartbeat(&ids[2], 1, 5_000)).0, None);
    assert_eq!(c.next_deadline(), Some(10_000));
    let out = c.tick(9_999);
    assert!(out.timers.is_empty());
    assert_eq!(state(&c), GroupState::Stable);
    c.tick(10_000);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert!(!c
        .group("g")
        .is_some_and(|g| g.members.contains_key(&ids[1])));
    c.join(join("c1", &ids[0], 41, 10_100));
    let out = c.join(join("c3", &ids[2], 43, 10_100));
    assert_eq!(join_reply(&out, 41).members.len(), 2);
}

#[test]
fn rebalance_timeout_evicts_member_that_never_rejoins() {
    let mut c = coordinator(0);
    let ids = stable_group(&mut c, 3, false);
    c.join(join("c4", "", 4, 1_000));
    c.join(join("c1", &ids[0], 21, 2_000));
    c.join(join("c2", &ids[1], 22, 2_000));
    // c3 keeps heartbeating but never rejoins.
    for t in [8_000, 16_000, 24_000] {
        assert_eq!(
            c.heartbeat(heartbeat(&ids[2], 1, t)).0,
            Some(E::RebalanceInProgress)
        );
    }
    // Parked members are kept alive past their session timeout.
    assert!(c.tick(30_999).replies.is_empty());
    let out = c.tick(31_000);
    assert_eq!(out.replies.len(), 3);
    let leader = join_reply(&out, 21);
    assert_eq!(leader.generation_id, 2);
    assert_eq!(leader.members.len(), 3);
    assert!(leader.members.iter().all(|m| m.member_id != ids[2]));
    assert_eq!(
        c.heartbeat(heartbeat(&ids[2], 2, 31_001)).0,
        Some(E::UnknownMemberId)
    );
}

#[test]
fn static_member_restart_keeps_assignment_without_rebalance() {
    let mut c = coordinator(0);
    let ids = stable_group(&mut c, 3, true);
    let out = c.join(static_join("c2", "", 50, 2_000));
    let r = join_reply(&out, 50);
    assert_eq!(r.error, None);
    assert_ne!(r.member_id, ids[1]);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader, ids[0]);
    assert!(r.members.is_empty());
    assert_eq!(state(&c), GroupState::Stable, "no rebalance");
    assert!(
        matches!(out.records.as_slice(), [Record::Group { value: Some(v), .. }] if v.members.iter().any(|m| m.member_id == r.member_id))
    );
    let mut s = sync(&r.member_id, 1, 51, 2_100);
    s.group_instance_id = Some("instance-c2".into());
    assert_eq!(sync_reply(&c.sync(s), 51).assignment, b"a-c2");

    // The old incarnation is fenced everywhere.
    let mut hb = heartbeat(&ids[1], 1, 2_200);
    hb.group_instance_id = Some("instance-c2".into());
    assert_eq!(c.heartbeat(hb).0, Some(E::FencedInstanceId));
    let out = c.join(static_join("c2", &ids[1], 52, 2_300));
    assert_eq!(join_reply(&out, 52).error, Some(E::FencedInstanceId));
    let mut stale = commit(&ids[1], 1, 9, 2_400);
    stale.group_instance_id = Some("instance-c2".into());
    assert_eq!(commit_error(&mut c, &stale), Some(E::FencedInstanceId));
    let (resp, _) = c.leave(LeaveRequest {
        group_id: "g".into(),
        members: vec![LeavingMember {
            member_id: ids[1].clone(),
            group_instance_id: Some("instance-c2".into()),
        }],
        now_ms: 2_500,
    });
    assert_eq!(resp.members[0].2, Some(E::FencedInstanceId));
    assert_eq!(state(&c), GroupState::Stable);
}

#[test]
fn static_leader_restart_and_changed_protocols_rebalance() {
    let mut c = coordinator(0);
    let ids = stable_group(&mut c, 2, true);
    // The leader restarts: no rebalance, and it is told the old leader id so it does
    // not compute an assignment the stable group would ignore.
    let out = c.join(static_join("c1", "", 60, 1_000));
    let r = join_reply(&out, 60);
    assert_eq!(r.leader, ids[0]);
    assert_eq!(state(&c), GroupState::Stable);
    assert_eq!(
        c.group("g").and_then(|g| g.leader.clone()),
        Some(r.member_id.clone())
    );
    // c2 restarts with another subscription: the leader must reassign.
    let mut req = static_join("c2", "", 61, 2_000);
    req.protocols = vec![("range".into(), b"other".to_vec())];
    let out = c.join(req);
    assert!(out.replies.is_empty());
    assert_eq!(state(&c), GroupState::PreparingRebalance);
}

#[test]
fn commits_in_each_state() {
    let mut c = coordinator(0);
    // Standalone commits create an offsets-only group.
    assert_eq!(commit_error(&mut c, &commit("", -1, 7, 0)), None);
    assert_eq!(state(&c), GroupState::Empty);
    let fetched = c.fetch_offsets(&OffsetFetchRequest {
        group_id: "g".into(),
        topics: Some(vec![("t".into(), vec![0, 1])]),
        require_stable: true,
    });
    assert_eq!(
        (
            fetched[0].offset,
            fetched[0].leader_epoch,
            fetched[0].metadata.as_str()
        ),
        (7, 3, "meta")
    );
    assert_eq!((fetched[1].offset, fetched[1].leader_epoch), (-1, -1));
    let mut other = commit("", 5, 1, 0);
    other.group_id = "unknown".into();
    assert_eq!(commit_error(&mut c, &other), Some(E::IllegalGeneration));

    let mut c = coordinator(0);
    c.join(join("c1", "", 1, 0));
    c.join(join("c2", "", 2, 0));
    let out = c.tick(0);
    let (m1, m2) = (join_reply(&out, 1).member_id, join_reply(&out, 2).member_id);
    // CompletingRebalance: the member knows the generation but not its partitions.
    assert_eq!(
        commit_error(&mut c, &commit(&m1, 1, 1, 1)),
        Some(E::RebalanceInProgress)
    );
    assert_eq!(
        commit_error(&mut c, &commit("", -1, 1, 1)),
        Some(E::UnknownMemberId)
    );
    c.sync(sync(&m2, 1, 12, 2));
    c.sync(sync(&m1, 1, 11, 2));
    assert_eq!(state(&c), GroupState::Stable);
    assert_eq!(commit_error(&mut c, &commit(&m1, 1, 10, 3)), None);
    assert_eq!(
        commit_error(&mut c, &commit(&m1, 0, 10, 3)),
        Some(E::IllegalGeneration)
    );
    assert_eq!(
        commit_error(&mut c, &commit("who", 1, 10, 3)),
        Some(E::UnknownMemberId)
    );
    let mut big = commit(&m1, 1, 10, 3);
    big.partitions[0].metadata = Some("x".repeat(5000));
    assert_eq!(commit_error(&mut c, &big), Some(E::OffsetMetadataTooLarge));
    let (_, out) = c.commit_offsets(&commit(&m2, 1, 11, 4));
    assert!(
        matches!(out.records.as_slice(), [Record::Offset { value: Some(v), .. }] if v.offset == 11 && v.commit_timestamp_ms == 4)
    );
}

#[test]
fn initial_rebalance_delay_waits_for_more_members() {
    let mut c = coordinator(3_000);
    let mut first = join("c1", "", 1, 0);
    first.rebalance_timeout_ms = 10_000;
    let out = c.join(first);
    assert!(out.timers.contains(&TimerOp::Set {
        key: TimerKey::Join {
            group_id: "g".into()
        },
        deadline_ms: 3_000
    }));
    c.join(join("c2", "", 2, 1_000));
    assert!(c.tick(2_999).replies.is_empty());
    // A member arrived during the delay: wait another delay.
    let out = c.tick(3_000);
    assert!(out.replies.is_empty());
    assert!(out.timers.contains(&TimerOp::Set {
        key: TimerKey::Join {
            group_id: "g".into()
        },
        deadline_ms: 6_000
    }));
    let out = c.tick(6_000);
    assert_eq!(out.replies.len(), 2);
    assert_eq!(join_reply(&out, 1).members.len(), 2);
}

#[test]
fn max_size_and_member_id_required() {
    let mut c = GroupCoordinator::new(
        GroupConfig {
            initial_rebalance_delay_ms: 0,
            max_size: 2,
            ..GroupConfig::default()
        },
        1,
    );
    let mut req = join("c1", "", 1, 0);
    req.require_known_member_id = true;
    let r = join_reply(&c.join(req), 1);
    assert_eq!(r.error, Some(E::MemberIdRequired));
    assert!(r.member_id.starts_with("c1-"));
    assert!(c.join(join("c1", &r.member_id, 2, 10)).replies.is_empty());
    c.join(join("c2", "", 3, 10));
    let out = c.tick(10);
    assert_eq!(join_reply(&out, 2).members.len(), 2);
    let r = join_reply(&c.join(join("c3", "", 4, 20)), 4);
    assert_eq!(r.error, Some(E::GroupMaxSizeReached));
    // As in Kafka, the size is checked before the member id.
    let r = join_reply(&c.join(join("c3", "bogus", 5, 20)), 5);
    assert_eq!(r.error, Some(E::GroupMaxSizeReached));
    // A known member rejoining a full group is fine.
    assert_eq!(
        join_reply(
            &c.join(join("c2", &join_reply(&out, 3).member_id, 6, 30)),
            6
        )
        .error,
        None
    );
}

#[test]
fn pending_member_expires_after_its_session() {
    let mut c = coordinator(0);
    let mut req = join("c1", "", 1, 0);
    req.require_known_member_id = true;
    let id = join_reply(&c.join(req), 1).member_id;
    c.tick(SESSION as u64);
    let r = join_reply(&c.join(join("c1", &id, 2, 10_001)), 2);
    assert_eq!(r.error, Some(E::UnknownMemberId));
}

#[test]
fn protocol_checks() {
    let mut c = coordinator(0);
    stable_group(&mut c, 1, false);
    let mut req = join("x", "", 9, 1);
    req.protocol_type = "connect".into();
    assert_eq!(
        join_reply(&c.join(req), 9).error,
        Some(E::InconsistentGroupProtocol)
    );
    let mut req = join("x", "", 9, 1);
    req.protocols = vec![("roundrobin".into(), Vec::new())];
    assert_eq!(
        join_reply(&c.join(req), 9).error,
        Some(E::InconsistentGroupProtocol)
    );
    let mut req = join("x", "", 9, 1);
    req.protocols.clear();
    assert_eq!(
        join_reply(&c.join(req), 9).error,
        Some(E::InconsistentGroupProtocol)
    );
    let mut req = join("x", "", 9, 1);
    req.session_timeout_ms = -5;
    assert_eq!(
        join_reply(&c.join(req), 9).error,
        Some(E::InvalidSessionTimeout)
    );
    let mut req = join("x", "", 9, 1);
    req.group_id.clear();
    assert_eq!(join_reply(&c.join(req), 9).error, Some(E::InvalidGroupId));
    assert!(c.group("").is_none());
}

#[test]
fn sync_errors() {
    let mut c = coordinator(0);
    let ids = stable_group(&mut c, 2, false);
    assert_eq!(
        sync_reply(&c.sync(sync("who", 1, 1, 1)), 1).error,
        Some(E::UnknownMemberId)
    );
    assert_eq!(
        sync_reply(&c.sync(sync(&ids[1], 7, 1, 1)), 1).error,
        Some(E::IllegalGeneration)
    );
    let mut s = sync(&ids[1], 1, 1, 1);
    s.protocol_name = Some("roundrobin".into());
    assert_eq!(
        sync_reply(&c.sync(s), 1).error,
        Some(E::InconsistentGroupProtocol)
    );
    let mut s = sync(&ids[1], 1, 1, 1);
    s.protocol_type = Some("connect".into());
    assert_eq!(
        sync_reply(&c.sync(s), 1).error,
        Some(E::InconsistentGroupProtocol)
    );
    let mut s = sync("x", 1, 1, 1);
    s.group_id = "none".into();
    assert_eq!(sync_reply(&c.sync(s), 1).error, Some(E::UnknownMemberId));
    c.join(join("c3", "", 3, 2));
    assert_eq!(
        sync_reply(&c.sync(sync(&ids[1], 1, 1, 3)), 1).error,
        Some(E::RebalanceInProgress)
    );
}

#[test]
fn rejoins_in_stable_and_completing_states() {
    let mut c = coordinator(0);
    let ids = stable_group(&mut c, 2, false);
    // A follower rejoining with unchanged metadata is told the current generation.
    let r = join_reply(&c.join(join("c2", &ids[1], 70, 100)), 70);
    assert_eq!((r.generation_id, r.error), (1, None));
    assert_eq!(state(&c), GroupState::Stable);
    // The leader rejoining asks for a new assignment (eager rebalance).
    assert!(c.join(join("c1", &ids[0], 71, 200)).replies.is_empty());
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    let out = c.join(join("c2", &ids[1], 72, 300));
    assert_eq!(join_reply(&out, 72).generation_id, 2);
    // In CompletingRebalance a follower that lost its answer gets it again.
    let r = join_reply(&c.join(join("c2", &ids[1], 73, 400)), 73);
    assert_eq!((r.generation_id, r.leader.as_str()), (2, ids[0].as_str()));
    // A parked follower sync is answered REBALANCE_IN_PROGRESS when metadata changes.
    assert!(c.sync(sync(&ids[1], 2, 74, 500)).replies.is_empty());
    let mut changed = join("c1", &ids[0], 75, 600);
    changed.protocols = vec![("range".into(), b"new".to_vec())];
    let out = c.join(changed);
    assert_eq!(sync_reply(&out, 74).error, Some(E::RebalanceInProgress));
    assert_eq!(state(&c), GroupState::PreparingRebalance);
}

#[test]
fn offsets_of_an_empty_group_expire_after_retention() {
    let mut c = GroupCoordinator::new(
        GroupConfig {
            initial_rebalance_delay_ms: 0,
            offsets_retention_ms: 1_000,
            ..GroupConfig::default()
        },
        1,
    );
    let ids = stable_group(&mut c, 1, false);
    assert_eq!(commit_error(&mut c, &commit(&ids[0], 1, 5, 10)), None);
    // Offsets of an active group never expire.
    assert!(c.expire_offsets(100_000).records.is_empty());
    c.leave(LeaveRequest {
        group_id: "g".into(),
        members: vec![LeavingMember {
            member_id: ids[0].clone(),
            group_instance_id: None,
        }],
        now_ms: 200_000,
    });
    assert_eq!(state(&c), GroupState::Empty);
    assert!(c.expire_offsets(200_999).records.is_empty());
    let out = c.expire_offsets(201_000);
    assert_eq!(out.records.len(), 2);
    assert!(c.group("g").is_none());
    // Standalone offsets expire from their own commit time.
    assert_eq!(commit_error(&mut c, &commit("", -1, 5, 300_000)), None);
    assert!(c.expire_offsets(300_999).records.is_empty());
    assert_eq!(c.expire_offsets(301_000).records.len(), 2);
}

#[test]
fn replay_restores_a_stable_group() {
    let mut c = coordinator(0);
    let ids = stable_group(&mut c, 2, false);
    let (_, committed) = c.commit_offsets(&commit(&ids[0], 1, 99, 5));
    let group_record = Record::Group {
        group_id: "g".into(),
        value: Some(c.group("g").map(|g| g.metadata_value()).expect("group")),
    };
    let mut fresh = coordinator(0);
    fresh.replay(&group_record, 1_000);
    for r in &committed.records {
        fresh.replay(r, 1_000);
    }
    assert_eq!(state(&fresh), GroupState::Stable);
    assert_eq!(fresh.heartbeat(heartbeat(&ids[1], 1, 1_001)).0, None);
    assert_eq!(
        sync_reply(&fresh.sync(sync(&ids[1], 1, 1, 1_002)), 1).assignment,
        b"a-c2"
    );
    let fetched = fresh.fetch_offsets(&OffsetFetchRequest {
        group_id: "g".into(),
        topics: None,
        require_stable: false,
    });
    assert_eq!(fetched[0].offset, 99);
    fresh.replay(
        &Record::Group {
            group_id: "g".into(),
            value: None,
        },
        1_003,
    );
    // The metadata is gone; the offsets are not (Kafka keeps them apart from the group,
    // and DeleteGroups tombstones them explicitly).
    let left = fresh.group("g").expect("offsets remain");
    assert!(left.members.is_empty() && left.protocol_type.is_none());
    assert_eq!(left.offsets.len(), 1);
}

/// A ConsumerProtocolSubscription v0 naming `topics`.
fn subscription(topics: &[&str]) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend_from_slice(&(t.len() as i16).to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // null user data
    b
}

#[test]
fn offset_delete_respects_subscriptions() {
    let mut c = coordinator(0);
    let mut req = join("c1", "", 1, 0);
    req.protocols = vec![("range".into(), subscription(&["t"]))];
    c.join(req);
    let id = join_reply(&c.tick(0), 1).member_id;
    c.sync(sync(&id, 1, 2, 0));
    let mut two = commit(&id, 1, 5, 1);
    two.partitions.push(CommitPartition {
        topic: "u".into(),
        ..two.partitions[0].clone()
    });
    c.commit_offsets(&two);
    let ((error, results), out) = c.delete_offsets("g", &[("t".into(), 0), ("u".into(), 0)]);
    assert_eq!(error, None);
    assert_eq!(results[0].2, Some(E::GroupSubscribedToTopic));
    assert_eq!(results[1].2, None);
    assert!(
        matches!(out.records.as_slice(), [Record::Offset { topic, value: None, .. }] if topic == "u")
    );
    assert_eq!(c.delete_offsets("nope", &[]).0 .0, Some(E::GroupIdNotFound));
    // Garbage metadata never panics; it just protects the offsets.
    assert_eq!(
        offset_delete::parse_subscription_topics(&[0, 0, 0x7f, 0xff, 0xff, 0xff]),
        None
    );
    assert_eq!(offset_delete::parse_subscription_topics(&[]), None);
}

#[test]
fn members_that_never_sync_are_removed_at_the_rebalance_timeout() {
    let mut c = coordinator(0);
    c.join(join("c1", "", 1, 0));
    c.join(join("c2", "", 2, 0));
    let out = c.tick(0);
    let sync_timer = TimerKey::Sync {
        group_id: "g".into(),
        generation_id: 1,
    };
    assert!(out.timers.contains(&TimerOp::Set {
        key: sync_timer.clone(),
        deadline_ms: REBALANCE as u64
    }));
    let (leader, follower) = (join_reply(&out, 1).member_id, join_reply(&out, 2).member_id);
    // The follower waits; the leader heartbeats but never sends its assignment.
    assert!(c.sync(sync(&follower, 1, 12, 100)).replies.is_empty());
    for t in (5_000..30_000).step_by(5_000) {
        assert_eq!(c.heartbeat(heartbeat(&leader, 1, t)).0, None);
    }
    let out = c.tick(REBALANCE as u64);
    assert_eq!(sync_reply(&out, 12).error, Some(E::RebalanceInProgress));
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert!(!c
        .group("g")
        .is_some_and(|g| g.members.contains_key(&leader)));
    // When everyone syncs in time the timer is cancelled.
    let out = c.join(join("c2", &follower, 22, 30_001));
    assert_eq!(join_reply(&out, 22).generation_id, 2);
    let out = c.sync(sync(&follower, 2, 23, 30_002));
    assert_eq!(sync_reply(&out, 23).error, None);
    assert!(out.timers.contains(&TimerOp::Cancel {
        key: TimerKey::Sync {
            group_id: "g".into(),
            generation_id: 2
        }
    }));
}

#[test]
fn hostile_values_do_not_panic() {
    let mut c = coordinator(0);
    // A negative rebalance timeout counts as zero: the member joins, then misses the
    // (zero) sync deadline within the same tick, and the group is empty again.
    let mut req = join("c0", "", 9, 50);
    req.rebalance_timeout_ms = i32::MIN;
    c.join(req);
    let out = c.tick(50);
    assert_eq!(join_reply(&out, 9).generation_id, 1);
    assert_eq!(state(&c), GroupState::Empty);
    assert_eq!(c.group("g").map(|g| g.generation_id), Some(2));

    let mut req = join("c1", "", 1, u64::MAX - 5);
    req.session_timeout_ms = 1_800_000;
    c.join(req);
    let out = c.tick(u64::MAX - 5);
    let r = join_reply(&out, 1);
    assert_eq!((r.error, r.generation_id), (None, 3));
    assert_eq!(c.next_deadline(), Some(u64::MAX), "deadlines saturate");
    let (resp, _) = c.leave(LeaveRequest {
        group_id: "g".into(),
        members: Vec::new(),
        now_ms: 0,
    });
    assert!(resp.members.is_empty());
    let mut s = sync(&r.member_id, 3, 2, 0);
    s.assignments = vec![
        (r.member_id.clone(), Vec::new()),
        (r.member_id.clone(), vec![1]),
    ];
    assert_eq!(
        sync_reply(&c.sync(s), 2).assignment,
        vec![1],
        "the last duplicate wins"
    );
    let fetched = c.fetch_offsets(&OffsetFetchRequest {
        group_id: "none".into(),
        topics: None,
        require_stable: false,
    });
    assert!(fetched.is_empty());
}

#[test]
fn a_member_left_out_of_a_consumer_assignment_gets_a_valid_empty_one() {
    let mut c = coordinator(0);
    for i in 1..=2 {
        c.join(join(&format!("c{i}"), "", i, 0));
    }
    let out = c.tick(0);
    let (leader, follower) = (join_reply(&out, 1).member_id, join_reply(&out, 2).member_id);
    assert!(c.sync(sync(&follower, 1, 20, 0)).replies.is_empty());
    let mut leader_sync = sync(&leader, 1, 10, 0);
    // The leader assigns itself everything and names nobody else.
    leader_sync.assignments = vec![(leader.clone(), b"all".to_vec())];
    let out = c.sync(leader_sync);
    assert_eq!(sync_reply(&out, 10).assignment, b"all");
    // Version 0, no topics, null user data: decodable by every consumer client.
    assert_eq!(
        sync_reply(&out, 20).assignment,
        [0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]
    );
}

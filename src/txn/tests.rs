//! The transaction coordinator's rules, call by call.

use kafka_protocol::error::ResponseError as E;

use super::coordinator::{InitProducerId, TxnConfig, TxnCoordinator};
use super::metadata::{TxnState, NO_EPOCH};

const NOW: i64 = 1_700_000_000_000;

fn coord() -> TxnCoordinator {
    TxnCoordinator::new(
        TxnConfig {
            max_timeout_ms: 900_000,
            id_expiration_ms: 7 * 86_400_000,
        },
        3,
    )
}

fn init(c: &mut TxnCoordinator, id: &str, fresh: i64) -> Result<(i64, i16), E> {
    c.init_producer_id(
        &InitProducerId {
            transactional_id: id.into(),
            timeout_ms: 60_000,
            expected: None,
            fresh_producer_id: fresh,
        },
        NOW,
    )
    .0
}

fn tp(t: &str, p: i32) -> (String, i32) {
    (t.to_string(), p)
}

#[test]
fn a_new_id_starts_at_epoch_0_and_each_init_fences_the_previous_producer() {
    let mut c = coord();
    assert_eq!(init(&mut c, "app", 100), Ok((100, 0)));
    assert_eq!(init(&mut c, "app", 101), Ok((100, 1)));
    // The old instance (epoch 0) is fenced.
    let (r, _) = c.add_partitions("app", 100, 0, &[tp("t", 0)], NOW);
    assert_eq!(r, Err(E::ProducerFenced));
    let (r, _) = c.add_partitions("app", 99, 1, &[tp("t", 0)], NOW);
    assert_eq!(r, Err(E::InvalidProducerIdMapping));
    let (r, _) = c.add_partitions("nope", 100, 1, &[tp("t", 0)], NOW);
    assert_eq!(r, Err(E::InvalidProducerIdMapping));
}

#[test]
fn timeouts_beyond_the_maximum_are_refused() {
    let mut c = coord();
    for timeout_ms in [0, -1, 900_001] {
        let (r, out) = c.init_producer_id(
            &InitProducerId {
                transactional_id: "app".into(),
                timeout_ms,
                expected: None,
                fresh_producer_id: 1,
            },
            NOW,
        );
        assert_eq!(r, Err(E::InvalidTransactionTimeout));
        assert!(out.records.is_empty());
    }
}

#[test]
fn commit_goes_through_prepare_markers_and_complete() {
    let mut c = coord();
    let (pid, epoch) = init(&mut c, "app", 7).unwrap();
    let (r, out) = c.add_partitions("app", pid, epoch, &[tp("t", 0), tp("t", 1)], NOW);
    assert_eq!(r, Ok(()));
    assert_eq!(out.records.len(), 1);
    // Adding what is already there writes nothing.
    let (r, out) = c.add_partitions("app", pid, epoch, &[tp("t", 1)], NOW + 1);
    assert_eq!((r, out.records.len()), (Ok(()), 0));
    let (r, out) = c.end_txn("app", pid, epoch, true, NOW + 2);
    assert_eq!(r, Ok(()));
    assert_eq!(c.get("app").unwrap().state, TxnState::PrepareCommit);
    let job = out.markers[0].clone();
    assert!(job.commit);
    assert_eq!(job.coordinator_epoch, 3);
    assert_eq!(job.partitions, [tp("t", 0), tp("t", 1)]);
    // While markers are written, the client's retry waits and other calls too.
    assert_eq!(
        c.end_txn("app", pid, epoch, true, NOW + 3).0,
        Err(E::ConcurrentTransactions)
    );
    assert_eq!(
        c.end_txn("app", pid, epoch, false, NOW + 3).0,
        Err(E::InvalidTxnState)
    );
    assert_eq!(
        c.add_partitions("app", pid, epoch, &[tp("u", 0)], NOW).0,
        Err(E::ConcurrentTransactions)
    );
    assert_eq!(c.pending_markers(), std::slice::from_ref(&job));
    let out = c.markers_written(&job, NOW + 4);
    assert_eq!(out.records.len(), 1);
    let m = c.get("app").unwrap();
    assert_eq!(m.state, TxnState::CompleteCommit);
    assert!(m.partitions.is_empty());
    // A retried commit succeeds; an abort now is invalid.
    assert_eq!(c.end_txn("app", pid, epoch, true, NOW + 5).0, Ok(()));
    assert_eq!(
        c.end_txn("app", pid, epoch, false, NOW + 5).0,
        Err(E::InvalidTxnState)
    );
    // The next transaction starts fresh.
    c.add_partitions("app", pid, epoch, &[tp("u", 0)], NOW + 6)
        .0
        .unwrap();
    let m = c.get("app").unwrap();
    assert_eq!(m.partitions.len(), 1);
    assert_eq!(m.start_ms, NOW + 6);
}

#[test]
fn ending_without_a_transaction_is_invalid() {
    let mut c = coord();
    let (pid, epoch) = init(&mut c, "app", 7).unwrap();
    assert_eq!(
        c.end_txn("app", pid, epoch, true, NOW).0,
        Err(E::InvalidTxnState)
    );
}

#[test]
fn init_during_a_transaction_aborts_it_with_a_bumped_epoch_then_bumps_again() {
    let mut c = coord();
    let (pid, epoch) = init(&mut c, "app", 7).unwrap();
    c.add_partitions("app", pid, epoch, &[tp("t", 0)], NOW)
        .0
        .unwrap();
    let (r, out) = c.init_producer_id(
        &InitProducerId {
            transactional_id: "app".into(),
            timeout_ms: 60_000,
            expected: None,
            fresh_producer_id: 8,
        },
        NOW,
    );
    assert_eq!(r, Err(E::ConcurrentTransactions));
    let job = &out.markers[0];
    assert!(!job.commit);
    assert_eq!(
        job.producer_epoch,
        epoch + 1,
        "the abort fences the old producer"
    );
    // The old producer cannot commit now.
    assert_eq!(
        c.end_txn("app", pid, epoch, true, NOW).0,
        Err(E::ProducerFenced)
    );
    assert_eq!(init(&mut c, "app", 8), Err(E::ConcurrentTransactions));
    c.markers_written(&job.clone(), NOW);
    assert_eq!(c.get("app").unwrap().state, TxnState::CompleteAbort);
    assert_eq!(init(&mut c, "app", 8), Ok((pid, epoch + 2)));
}

#[test]
fn kip_360_retries_get_the_same_epoch_and_strangers_are_fenced() {
    let mut c = coord();
    let (pid, _) = init(&mut c, "app", 7).unwrap(); // epoch 0
    let req = |expected| InitProducerId {
        transactional_id: "app".into(),
        timeout_ms: 60_000,
        expected: Some(expected),
        fresh_producer_id: 9,
    };
    // The producer at epoch 0 recovers: bumped to 1.
    assert_eq!(c.init_producer_id(&req((pid, 0)), NOW).0, Ok((pid, 1)));
    // Its retry (it never heard the answer) names epoch 0 again: still 1.
    assert_eq!(c.init_producer_id(&req((pid, 0)), NOW).0, Ok((pid, 1)));
    // An unknown producer id or an older epoch is fenced.
    assert_eq!(
        c.init_producer_id(&req((55, 1)), NOW).0,
        Err(E::ProducerFenced)
    );
    assert_eq!(c.init_producer_id(&req((pid, 1)), NOW).0, Ok((pid, 2)));
    assert_eq!(
        c.init_producer_id(&req((pid, 0)), NOW).0,
        Err(E::ProducerFenced)
    );
}

#[test]
fn an_exhausted_epoch_rotates_the_producer_id() {
    let mut c = coord();
    init(&mut c, "app", 7).unwrap();
    let mut m = c.get("app").unwrap().clone();
    m.producer_epoch = i16::MAX - 1;
    c.replay(&super::records::TxnRecord {
        transactional_id: "app".into(),
        value: Some(m),
    });
    assert_eq!(init(&mut c, "app", 8), Ok((8, 0)));
    let m = c.get("app").unwrap();
    assert_eq!((m.prev_producer_id, m.last_producer_epoch), (7, NO_EPOCH));
}

#[test]
fn timed_out_transactions_are_aborted_and_idle_ids_expire() {
    let mut c = coord();
    let (pid, epoch) = init(&mut c, "app", 7).unwrap();
    init(&mut c, "idle", 8).unwrap();
    c.add_partitions("app", pid, epoch, &[tp("t", 0)], NOW)
        .0
        .unwrap();
    assert_eq!(c.next_deadline(), Some(NOW + 60_001));
    assert!(c.tick(NOW + 60_000).markers.is_empty());
    let out = c.tick(NOW + 60_001);
    assert_eq!(out.markers.len(), 1);
    assert_eq!(out.markers[0].producer_epoch, epoch + 1);
    assert_eq!(c.get("app").unwrap().state, TxnState::PrepareAbort);
    // The producer learns it was fenced.
    assert_eq!(
        c.end_txn("app", pid, epoch, true, NOW + 60_002).0,
        Err(E::ProducerFenced)
    );
    let week = 7 * 86_400_000;
    let out = c.tick(NOW + week);
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].transactional_id, "idle");
    assert!(out.records[0].value.is_none());
    assert!(c.get("idle").is_none());
    // A transaction still writing markers does not expire.
    assert!(c.get("app").is_some());
}

#[test]
fn brokers_verify_that_a_partition_is_in_the_transaction() {
    let mut c = coord();
    let (pid, epoch) = init(&mut c, "app", 7).unwrap();
    c.add_partitions("app", pid, epoch, &[tp("t", 0)], NOW)
        .0
        .unwrap();
    let v = c.verify_partitions("app", pid, epoch, &[tp("t", 0), tp("t", 1)]);
    assert_eq!(v[0].1, None);
    assert_eq!(v[1].1, Some(E::InvalidTxnState));
    let v = c.verify_partitions("app", pid, epoch - 1, &[tp("t", 0)]);
    assert_eq!(v[0].1, Some(E::ProducerFenced));
}

#[test]
fn replaying_the_records_rebuilds_the_same_state() {
    let mut c = coord();
    let mut log = Vec::new();
    let req = |id: &str, fresh| InitProducerId {
        transactional_id: id.into(),
        timeout_ms: 60_000,
        expected: None,
        fresh_producer_id: fresh,
    };
    let (r, out) = c.init_producer_id(&req("a", 1), NOW);
    let (pid, epoch) = r.unwrap();
    log.extend(out.records);
    log.extend(
        c.add_partitions("a", pid, epoch, &[tp("t", 0)], NOW)
            .1
            .records,
    );
    log.extend(c.init_producer_id(&req("b", 2), NOW).1.records);
    log.extend(c.end_txn("a", pid, epoch, false, NOW).1.records);
    let mut fresh = coord();
    for r in &log {
        fresh.replay(r);
    }
    assert_eq!(fresh.all().collect::<Vec<_>>(), c.all().collect::<Vec<_>>());
    assert_eq!(fresh.pending_markers(), c.pending_markers());
    assert_eq!(fresh.pending_markers().len(), 1);
}

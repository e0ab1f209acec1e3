//! Transactions in one partition log: the last stable offset, markers, the
//! aborted-transaction index and what survives restarts, crashes and truncation.

use super::*;
use crate::log::batch::control::TxnMarker;
use crate::log::batch::BatchBuilder;
use crate::log::txn_index::AbortedTxn;

fn cfg() -> TopicConfig {
    TopicConfig {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        ..TopicConfig::default()
    }
}

fn open(dir: &Path, clean: bool, hw: Option<i64>) -> Arc<PartitionLog> {
    PartitionLog::open(OpenOptions {
        dir: dir.join("t-0"),
        topic: "t".into(),
        partition: 0,
        topic_id: Uuid::from_u128(7),
        config: cfg(),
        recovery_point: 0,
        clean_shutdown: clean,
        producer_id_expiration_ms: 86_400_000,
        high_watermark: hw,
        handles: HandleCache::new(64),
    })
    .unwrap()
}

/// A transactional batch of `n` records of producer `pid` (epoch 0) from `seq`.
fn txn(pid: i64, seq: i32, n: usize) -> Bytes {
    let mut b = BatchBuilder::new(0)
        .producer(pid, 0, seq)
        .transactional(true);
    for i in 0..n {
        b = b.record(None, Some(&[b'x'; 100]), now_ms() - 100 + i as i64);
    }
    Bytes::from(b.build())
}

fn plain(n: usize) -> Bytes {
    let mut b = BatchBuilder::new(0);
    for i in 0..n {
        b = b.record(None, Some(&[b'p'; 100]), now_ms() - 100 + i as i64);
    }
    Bytes::from(b.build())
}

fn marker(commit: bool) -> TxnMarker {
    TxnMarker {
        commit,
        coordinator_epoch: 1,
    }
}

fn aborted(log: &PartitionLog) -> Vec<(i64, i64, i64)> {
    log.aborted_transactions(0, i64::MAX)
        .iter()
        .map(|a: &AbortedTxn| (a.producer_id, a.first_offset, a.last_offset))
        .collect()
}

#[test]
fn open_transactions_hold_the_last_stable_offset_until_their_markers() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false, None);
    log.append_as_leader(plain(2), 0).unwrap(); // 0-1
    assert_eq!(log.last_stable_offset(), 2);
    log.append_as_leader(txn(10, 0, 3), 0).unwrap(); // 2-4
    log.append_as_leader(txn(11, 0, 2), 0).unwrap(); // 5-6
    log.append_as_leader(plain(1), 0).unwrap(); // 7
    assert_eq!(log.high_watermark(), 8);
    assert_eq!(log.last_stable_offset(), 2);
    assert_eq!(log.ongoing_transactions(), [(10, 2), (11, 5)]);
    // Producer 10 commits at 8: the LSO moves to producer 11's first offset.
    let m = log.append_marker(10, 0, marker(true), 0).unwrap();
    assert_eq!(m.base_offset, 8);
    assert_eq!(log.last_stable_offset(), 5);
    // Producer 11 aborts at 9: everything is stable, and its transaction is indexed.
    log.append_marker(11, 0, marker(false), 0).unwrap();
    assert_eq!(log.last_stable_offset(), 10);
    assert_eq!(aborted(&log), [(11, 5, 9)]);
    // A read ending before the aborted transaction starts does not meet it.
    assert!(log.aborted_transactions(0, 5).is_empty());
    assert_eq!(log.aborted_transactions(7, 10).len(), 1);
    // Markers are control batches in the log, with the producer's id and epoch.
    let read = log.read(8, 1 << 20, i64::MAX, true).unwrap().records;
    let headers: Vec<BatchHeader> = batch::batches(&read, true).map(|r| r.unwrap().0).collect();
    assert!(headers
        .iter()
        .all(|h| h.is_control() && h.is_transactional()));
    assert_eq!(headers[0].producer_id, 10);
}

#[test]
fn markers_of_stale_epochs_or_coordinators_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false, None);
    let mut b = BatchBuilder::new(0).producer(5, 3, 0).transactional(true);
    b = b.record(None, Some(b"v"), now_ms());
    log.append_as_leader(Bytes::from(b.build()), 0).unwrap();
    let end = log.log_end_offset();
    assert!(matches!(
        log.append_marker(5, 2, marker(true), 0),
        Err(LogError::InvalidProducerEpoch(_))
    ));
    log.append_marker(5, 3, marker(false), 0).unwrap();
    let old = TxnMarker {
        commit: true,
        coordinator_epoch: 0,
    };
    assert!(matches!(
        log.append_marker(5, 3, old, 0),
        Err(LogError::CoordinatorFenced(_))
    ));
    assert_eq!(
        log.log_end_offset(),
        end + 1,
        "refused markers are not written"
    );
}

#[test]
fn a_replicated_log_keeps_decided_transactions_unstable_until_the_high_watermark_passes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false, None);
    log.set_auto_high_watermark(false);
    log.append_as_leader(txn(1, 0, 2), 0).unwrap(); // 0-1
    log.set_high_watermark(2);
    assert_eq!(log.last_stable_offset(), 0);
    log.append_marker(1, 0, marker(false), 0).unwrap(); // 2
                                                        // Decided, but the marker is not replicated yet.
    assert_eq!(log.last_stable_offset(), 0);
    log.set_high_watermark(3);
    assert_eq!(log.last_stable_offset(), 3);
}

#[test]
fn aborted_transactions_and_open_ones_survive_clean_and_unclean_restarts() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), false, None);
        // Enough data to roll several 1 KiB segments between the transactions.
        for round in 0..4 {
            let pid = 100 + round;
            log.append_as_leader(txn(pid, 0, 3), 0).unwrap();
            log.append_as_leader(plain(5), 0).unwrap();
            log.append_marker(pid, 0, marker(round % 2 == 1), 0)
                .unwrap();
        }
        log.append_as_leader(txn(200, 0, 1), 0).unwrap(); // stays open
        let want = aborted(&log);
        assert_eq!(want.len(), 2);
        let lso = log.last_stable_offset();
        assert!(log.num_segments() > 2);
        if clean {
            log.shutdown().unwrap();
        } else {
            log.close();
        }
        drop(log);
        let log = open(dir.path(), clean, None);
        assert_eq!(aborted(&log), want, "clean shutdown: {clean}");
        assert_eq!(log.last_stable_offset(), lso);
        assert_eq!(log.ongoing_transactions().len(), 1);
        // The .txnindex files are Kafka's: 34 bytes per aborted transaction.
        let bytes: usize = std::fs::read_dir(dir.path().join("t-0"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "txnindex"))
            .map(|e| e.metadata().unwrap().len() as usize)
            .sum();
        if clean {
            assert_eq!(bytes, 2 * crate::log::txn_index::ENTRY);
        }
    }
}

#[test]
fn a_damaged_transaction_index_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false, None);
    log.append_as_leader(txn(1, 0, 3), 0).unwrap();
    log.append_marker(1, 0, marker(false), 0).unwrap();
    for _ in 0..20 {
        log.append_as_leader(plain(3), 0).unwrap();
    }
    let want = aborted(&log);
    log.shutdown().unwrap();
    drop(log);
    let index = std::fs::read_dir(dir.path().join("t-0"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "txnindex"))
        .expect("a transaction index file");
    std::fs::write(&index, b"garbage").unwrap();
    let log = open(dir.path(), true, None);
    assert_eq!(aborted(&log), want);
}

#[test]
fn truncation_forgets_markers_past_the_cut_and_reopens_their_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false, None);
    log.append_as_leader(txn(1, 0, 2), 0).unwrap(); // 0-1
    log.append_as_leader(plain(2), 0).unwrap(); // 2-3
    log.append_marker(1, 0, marker(false), 0).unwrap(); // 4
    assert_eq!(aborted(&log), [(1, 0, 4)]);
    log.truncate_to(4).unwrap();
    assert!(aborted(&log).is_empty());
    assert_eq!(log.ongoing_transactions(), [(1, 0)]);
    assert_eq!(log.last_stable_offset(), 0);
}

#[test]
fn followers_apply_the_leaders_markers() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader = open(leader_dir.path(), false, None);
    leader.append_as_leader(txn(1, 0, 2), 3).unwrap();
    leader.append_as_leader(txn(2, 0, 1), 3).unwrap();
    leader.append_marker(1, 0, marker(false), 3).unwrap();
    let bytes = leader.read(0, 1 << 20, i64::MAX, true).unwrap().records;
    let dir = tempfile::tempdir().unwrap();
    let follower = open(dir.path(), false, None);
    follower.set_auto_high_watermark(false);
    follower.append_as_follower(&bytes).unwrap();
    assert_eq!(aborted(&follower), [(1, 0, 3)]);
    assert_eq!(follower.ongoing_transactions(), [(2, 2)]);
    follower.set_high_watermark(4);
    assert_eq!(follower.last_stable_offset(), 2);
}

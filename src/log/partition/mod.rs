//! One partition's log: its segments, the leader-epoch cache, the log start offset, the
//! high watermark and the flushed offset; append, read, search by time and deletion.
//!
//! Appends are serialised by one mutex that covers only in-memory bookkeeping and a single
//! positioned write. Reads take the mutex just long enough to snapshot the segments they
//! need, then read the files without it, so a slow consumer never delays a producer.
//! Durability is separate from appending: `flush_to` waits for the directory's flusher
//! (group commit, see [`super::flusher`]), and everything flushed so far is this
//! partition's recovery point.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use uuid::Uuid;

use super::batch::{self, BatchHeader, ValidateOptions};
use super::checkpoint;
use super::codec::{self, TopicCompression};
use super::epoch::{self, EpochCache};
use super::flusher::FlusherHandle;
use super::handles::HandleCache;
use super::producer_state::{CompletedTxn, ProducerInfo, ProducerStateManager, SeqCheck};
use super::records::Records;
use super::segment::{self, Segment, SegmentOptions, SegmentView};
use super::txn_index::AbortedTxn;
use super::LogError;
use crate::config::{TimestampType, TopicConfig};

mod append;
mod clean;
mod files;
mod flush;
mod open;
mod read;
#[cfg(test)]
mod tests_txn;
mod truncate;

use files::*;
pub use files::{parse_topic_id, topic_id_to_string};

/// Name of the file holding the topic id, as Kafka writes it.
pub const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// Producer-state snapshots kept; older ones are removed when a new one is written.
const SNAPSHOTS_KEPT: usize = 3;

/// How many segments a read snapshots at a time past the one holding its offset: a read
/// moves on only when a segment holds nothing at or past the offset (rare, except after
/// compaction emptied segments).
const READ_SEGMENTS: usize = 3;

/// The largest segment the cleaner reads into memory: it holds one segment and its
/// cleaned form at a time (Kafka's `__consumer_offsets` uses 100 MiB segments).
const MAX_CLEANABLE_SEGMENT_BYTES: u64 = 256 << 20;

/// Outcome of a successful append (or of a duplicate, answered with the original offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The timestamp the broker stamped (LogAppendTime topics), else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// The batch was a retry of one already in the log.
    pub duplicate: bool,
}

/// Whole batches read from the log.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Whole stored batches; empty (never absent) when nothing is available.
    pub records: Bytes,
}

/// How a partition is opened: where it lives and what the last run left behind.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub dir: PathBuf,
    pub topic: String,
    pub partition: i32,
    pub topic_id: Uuid,
    pub config: TopicConfig,
    /// Offsets below this were fsynced by the previous run; later segments are recovered.
    pub recovery_point: i64,
    /// The previous run shut down cleanly: nothing needs re-validation.
    pub clean_shutdown: bool,
    /// Idle producers are forgotten after this long (producer.id.expiration.ms).
    pub producer_id_expiration_ms: i64,
    /// The high watermark the previous run checkpointed; `None` (no checkpoint file at
    /// all, a directory written by an older version) starts it at the log end. It matters for
    /// replicated partitions only: a single-replica log moves it to its end itself.
    pub high_watermark: Option<i64>,
    /// The broker's budget of open segment files, shared by every log.
    pub handles: Arc<HandleCache>,
}

struct Inner {
    /// Sorted by base offset; never empty; the last one takes appends.
    segments: Vec<Segment>,
    epochs: EpochCache,
    producers: ProducerStateManager,
    /// A segment file was created or removed since the last directory fsync.
    dir_dirty: bool,
    /// `partition.metadata` was written without an fsync (a new partition): the next
    /// flush syncs it before the directory.
    metadata_unsynced: bool,
    /// The partition directory itself is new: its entry in the log directory is synced
    /// with the first flush, or a power loss could take the whole directory, and the
    /// records acknowledged as durable in it, back.
    parent_unsynced: bool,
}

/// A partition log. Thread-safe; appends are serialised internally.
pub struct PartitionLog {
    topic: String,
    partition: i32,
    /// Nil while a log found on disk without `partition.metadata` waits for the id from
    /// the metadata ([`PartitionLog::adopt_topic_id`]).
    topic_id: Mutex<Uuid>,
    dir: PathBuf,
    me: Weak<PartitionLog>,
    handles: Arc<HandleCache>,
    inner: Mutex<Inner>,
    config: RwLock<TopicConfig>,
    hw: watch::Sender<i64>,
    /// Single node: the log moves its own high watermark to the log end after each
    /// append. The replication layer turns this off and calls `set_high_watermark`.
    auto_high_watermark: AtomicBool,
    /// Log end offset changes, for follower fetches parked at the leader's log end
    /// (the high watermark no longer moves on every append once replication owns it).
    end_tx: watch::Sender<i64>,
    log_start: AtomicI64,
    log_end: AtomicI64,
    /// The producer state's first unstable offset (`i64::MAX` when no transaction is
    /// undecided), kept outside the lock so the last stable offset costs a load.
    first_unstable: AtomicI64,
    /// Some segment has held an aborted transaction: until then a read_committed fetch
    /// needs no look at the transaction indexes (nor the partition lock). Never cleared.
    has_aborted: AtomicBool,
    /// Everything below this offset is fsynced (the recovery point).
    flushed: AtomicI64,
    unflushed_messages: AtomicI64,
    last_flush_ms: AtomicI64,
    fsyncs: AtomicU64,
    /// Serialises flushes when no directory flusher is attached (tests, shutdown).
    local_flush: tokio::sync::Mutex<()>,
    flusher: Mutex<Option<FlusherHandle>>,
    closed: AtomicBool,
    /// Writes are refused while the log is copied to another directory (see
    /// `super::mover`); reads go on.
    frozen: AtomicBool,
    roll_jitter_ms: i64,
    producer_id_expiration_ms: i64,
    /// One cleaner pass at a time per log.
    clean_lock: Mutex<()>,
    /// Counts truncations, so a cleaner pass that overlapped one neither swaps nor
    /// records a checkpoint past the new log end.
    truncations: AtomicU64,
    /// The cleaner checkpoint on disk may lie past a truncation (lowering it failed):
    /// the next pass treats the whole range as dirty.
    checkpoint_stale: AtomicBool,
}

/// What a cleaner pass did ([`PartitionLog::clean`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanStats {
    /// The pass ran (the dirty ratio was reached); false leaves the rest zero.
    pub ran: bool,
    /// Bytes of the segments the pass read (the cleanable range).
    pub bytes_read: u64,
    /// Bytes of those segments after the pass.
    pub bytes_after: u64,
    pub segments_rewritten: usize,
    pub records_removed: u64,
    /// Offsets below this are clean (the new cleaner checkpoint): the end of the
    /// cleaned range, or the first batch of a transaction still open in it.
    pub clean_end: i64,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl PartitionLog {
    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn topic_id(&self) -> Uuid {
        *self.topic_id.lock()
    }

    /// Give a log opened without a topic id (its directory lacked `partition.metadata`)
    /// the id the metadata knows, writing `partition.metadata` atomically. Idempotent for
    /// the same id; a log that already has a different id refuses (it belongs to an
    /// earlier incarnation of the topic and must be deleted instead). On a write error
    /// the id stays unchanged, so the caller may retry.
    pub fn adopt_topic_id(&self, id: Uuid) -> Result<(), LogError> {
        if id.is_nil() {
            return Err(LogError::InvalidRecord(
                "cannot adopt the nil topic id".into(),
            ));
        }
        // Held across the write so two adopters cannot interleave file and memory.
        let mut current = self.topic_id.lock();
        if !current.is_nil() && *current != id {
            return Err(LogError::InvalidRecord(format!(
                "{}-{} has topic id {}, not {}",
                self.topic,
                self.partition,
                topic_id_to_string(*current),
                topic_id_to_string(id)
            )));
        }
        if *current == id && read_partition_metadata(&self.dir) == Some(id) {
            return Ok(());
        }
        write_partition_metadata(&self.dir, id)?;
        if current.is_nil() {
            tracing::info!(topic = %self.topic, partition = self.partition,
                topic_id = %topic_id_to_string(id), "adopted topic id");
        }
        *current = id;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check_open(&self) -> Result<(), LogError> {
        if self.closed.load(Ordering::Acquire) {
            Err(LogError::Closed)
        } else {
            Ok(())
        }
    }

    /// Open and not frozen for a move: checked under the append lock by every write.
    fn check_writable(&self) -> Result<(), LogError> {
        self.check_open()?;
        if self.frozen.load(Ordering::Acquire) {
            Err(LogError::Closed)
        } else {
            Ok(())
        }
    }

    /// Stops writes (appends, truncation, retention, compaction, DeleteRecords) until
    /// [`Self::thaw`]: a write in progress finishes first, as the flag is set under the
    /// append lock and the cleaner's. Reads go on. Writers get `Closed`, which clients
    /// see as NOT_LEADER_OR_FOLLOWER and retry.
    pub fn freeze(&self) {
        let _pass = self.clean_lock.lock();
        let _inner = self.inner.lock();
        self.frozen.store(true, Ordering::Release);
    }

    pub fn thaw(&self) {
        self.frozen.store(false, Ordering::Release);
    }

    pub fn auto_high_watermark(&self) -> bool {
        self.auto_high_watermark.load(Ordering::Acquire)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start.load(Ordering::Acquire)
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }

    pub fn high_watermark(&self) -> i64 {
        *self.hw.borrow()
    }

    /// A receiver of high-watermark changes, for long-polling fetches.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.hw.subscribe()
    }

    /// A receiver of log-end-offset changes, for follower fetches.
    pub fn subscribe_end(&self) -> watch::Receiver<i64> {
        self.end_tx.subscribe()
    }

    fn set_log_end(&self, end: i64) {
        self.log_end.store(end, Ordering::Release);
        self.end_tx.send_replace(end);
    }

    /// Set the high watermark (replication layer); clamped to the log end. Markers it
    /// passes become replicated, which may move the last stable offset.
    pub fn set_high_watermark(&self, hw: i64) {
        let hw = hw.clamp(self.log_start_offset(), self.log_end_offset());
        if self.first_unstable.load(Ordering::Acquire) != i64::MAX {
            let mut inner = self.inner.lock();
            inner.producers.on_high_watermark(hw);
            self.note_unstable(&inner.producers);
        }
        self.hw.send_if_modified(|cur| {
            let changed = *cur != hw;
            *cur = hw;
            changed
        });
    }

    /// The offset below which every transaction is decided and replicated (Kafka's last
    /// stable offset): the high watermark, or the first offset of the oldest transaction
    /// that is not.
    pub fn last_stable_offset(&self) -> i64 {
        self.high_watermark()
            .min(self.first_unstable.load(Ordering::Acquire))
    }

    /// Note (under the partition lock) that a segment may hold aborted transactions.
    fn note_aborted(&self, segments: &[Segment]) {
        if segments.iter().any(|s| !s.aborted_txns().is_empty()) {
            self.has_aborted.store(true, Ordering::Release);
        }
    }

    /// Publish the producer state's first unstable offset (under the partition lock).
    fn note_unstable(&self, producers: &ProducerStateManager) {
        let first = producers.first_unstable_offset().unwrap_or(i64::MAX);
        self.first_unstable.store(first, Ordering::Release);
    }

    /// The transactions aborted in `[from, upper)` (marker at or past `from`, first offset
    /// below `upper`), for a read_committed fetch of that range.
    pub fn aborted_transactions(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        if !self.has_aborted.load(Ordering::Acquire) {
            return Vec::new();
        }
        let inner = self.inner.lock();
        let mut out = Vec::new();
        let first = segment_index(&inner.segments, from);
        for seg in &inner.segments[first..] {
            if seg.collect_aborted(from, upper, &mut out) {
                break;
            }
        }
        out
    }

    /// The timestamp of the first batch of this partition's oldest open transaction.
    pub fn oldest_open_txn_since(&self) -> Option<i64> {
        if self.first_unstable.load(Ordering::Acquire) == i64::MAX {
            return None;
        }
        self.inner.lock().producers.oldest_open_since()
    }

    /// Open transactions (producer id, first offset), oldest first.
    pub fn ongoing_transactions(&self) -> Vec<(i64, i64)> {
        self.inner.lock().producers.ongoing().collect()
    }

    /// Whether appends move the high watermark to the log end (single node: yes).
    pub fn set_auto_high_watermark(&self, on: bool) {
        self.auto_high_watermark.store(on, Ordering::Release);
        if on {
            self.set_high_watermark(self.log_end_offset());
        }
    }

    pub fn config(&self) -> TopicConfig {
        self.config.read().clone()
    }

    /// New topic settings; segment size, retention, limits and timestamp type apply from
    /// the next append, roll or retention pass.
    pub fn update_config(&self, cfg: TopicConfig) {
        *self.config.write() = cfg;
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.inner.lock().segments.iter().map(Segment::size).sum()
    }

    pub fn num_segments(&self) -> usize {
        self.inner.lock().segments.len()
    }

    /// Every idempotent producer with state in this partition (DescribeProducers).
    pub fn producers(&self) -> Vec<ProducerInfo> {
        self.inner.lock().producers.producers().collect()
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.inner.lock().epochs.latest_epoch()
    }

    /// A new leader records where its epoch starts before it writes anything, so that
    /// OffsetForLeaderEpoch from followers ends the previous epoch there (Kafka's
    /// `maybeAssignEpochStartOffset`). Ignored unless `epoch` is newer than the latest.
    pub fn assign_epoch_start(&self, epoch: i32, offset: i64) {
        let mut inner = self.inner.lock();
        if let Err(e) = inner.epochs.assign(epoch, offset) {
            tracing::error!(topic = %self.topic, partition = self.partition, error = %e,
                "cannot persist leader-epoch checkpoint");
        }
    }

    /// OffsetForLeaderEpoch: (epoch, end offset), Kafka's `endOffsetFor`.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let inner = self.inner.lock();
        inner
            .epochs
            .end_offset_for(epoch, self.log_end.load(Ordering::Acquire))
    }

    /// The leader epoch the record at `offset` was written in.
    pub fn epoch_at(&self, offset: i64) -> Option<i32> {
        self.inner.lock().epochs.epoch_at(offset)
    }

    /// Stop taking appends and reads (topic deleted).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        *self.flusher.lock() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::BatchBuilder;
    use bytes::BytesMut;

    const DAY: i64 = 86_400_000;

    fn small_cfg() -> TopicConfig {
        TopicConfig {
            segment_bytes: 2048,
            index_interval_bytes: 256,
            ..TopicConfig::default()
        }
    }

    fn open_log(
        dir: &Path,
        cfg: TopicConfig,
        clean: bool,
        recovery_point: i64,
    ) -> Arc<PartitionLog> {
        PartitionLog::open(OpenOptions {
            dir: dir.join("t-0"),
            topic: "t".into(),
            partition: 0,
            topic_id: Uuid::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788),
            config: cfg,
            recovery_point,
            clean_shutdown: clean,
            producer_id_expiration_ms: DAY,
            high_watermark: None,
            handles: HandleCache::new(64),
        })
        .unwrap()
    }

    /// A batch of `n` records with timestamps `ts, ts+1, ...`.
    fn batch_at(n: usize, ts: i64) -> BytesMut {
        let mut b = BatchBuilder::new(0);
        for i in 0..n {
            b = b.record(Some(b"key"), Some(&[b'v'; 60]), ts + i as i64);
        }
        BytesMut::from(&b.build()[..])
    }

    fn batch(n: usize) -> BytesMut {
        batch_at(n, now_ms() - 1000)
    }

    /// (base offset, last offset) of every batch in a read.
    fn spans(bytes: &[u8]) -> Vec<(i64, i64)> {
        batch::batches(bytes, true)
            .map(|r| {
                let (h, _) = r.unwrap();
                (h.base_offset, h.last_offset())
            })
            .collect()
    }

    fn fill(log: &PartitionLog, batches: usize, per_batch: usize) {
        for _ in 0..batches {
            log.append_as_leader(batch(per_batch), 0).unwrap();
        }
    }

    fn active_log_file(log: &PartitionLog) -> PathBuf {
        log.inner
            .lock()
            .segments
            .last()
            .unwrap()
            .log_path()
            .to_path_buf()
    }

    #[test]
    fn a_new_partition_directory_is_synced_into_its_parent_by_the_first_flush() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("logs");
        std::fs::create_dir(&parent).unwrap();
        let log = open_log(&parent, small_cfg(), false, 0);
        assert!(log.inner.lock().parent_unsynced);
        log.append_as_leader(batch(2), 0).unwrap();
        // The directory is gone from under the flush: it fails and the sync stays owed.
        let moved = dir.path().join("moved");
        std::fs::rename(&parent, &moved).unwrap();
        assert!(log.flush_blocking().is_err());
        assert!(log.inner.lock().parent_unsynced);
        std::fs::rename(&moved, &parent).unwrap();
        assert_eq!(log.flush_blocking().unwrap(), 2);
        assert!(!log.inner.lock().parent_unsynced);
        drop(log);
        // A directory that was already there is not new.
        let reopened = open_log(&parent, small_cfg(), false, 2);
        assert!(!reopened.inner.lock().parent_unsynced);
    }

    #[test]
    fn append_and_read_across_rolls() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), small_cfg(), false, 0);
        for i in 0..40 {
            let r = log.append_as_leader(batch(3), 0).unwrap();
            assert_eq!((r.base_offset, r.last_offset), (i * 3, i * 3 + 2));
            assert!(!r.duplicate);
        }
        assert_eq!(log.log_end_offset(), 120);
        assert_eq!(log.high_watermark(), 120);
        assert!(log.num_segments() > 3, "{}", log.num_segments());
        for offset in 0..120 {
            let r = log.read(offset, 1, i64::MAX, true).unwrap();
            let s = spans(&r.records);
            assert_eq!(s.len(), 1);
            assert!(s[0].0 <= offset && offset <= s[0].1, "{offset}: {s:?}");
        }
        // Reading everything batch by batch yields each offset once, in order.
        let mut next = 0;
        while next < 120 {
            let r = log.read(next, 10_000, i64::MAX, false).unwrap();
            let s = spans(&r.records);
            assert!(!s.is_empty());
            for (b, l) in s {
                assert_eq!(b, next);
                next = l + 1;
            }
        }
        assert!(log
            .read(120, 100, i64::MAX, true)
            .unwrap()
            .records
            .is_empty());
        assert!(matches!(
            log.read(121, 100, i64::MAX, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert!(log.size_bytes() > 2048);
    }

    #[test]
    fn segments_roll_by_time_and_index_size() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), TopicConfig::default(), false, 0);
        fill(&log, 3, 1);
        assert_eq!(log.num_segments(), 1);
        let small_index = TopicConfig {
            index_interval_bytes: 0,
            segment_index_bytes: 16,
            ..TopicConfig::default()
        };
        log.update_config(TopicConfig {
            segment_ms: 1,
            ..small_index.clone()
        });
        std::thread::sleep(std::time::Duration::from_millis(5));
        fill(&log, 1, 1);
        assert_eq!(log.num_segments(), 2);
        // Index sizes apply to segments created after the change: this one's time index
        // holds a single 12-byte entry, so every segment takes two batches.
        log.update_config(small_index);
        fill(&log, 12, 1);
        assert_eq!(log.num_segments(), 8);
        assert_eq!(
            spans(&log.read(0, 1 << 20, i64::MAX, true).unwrap().records).len(),
            3
        );
    }

    fn idempotent(seq: i32, n: usize) -> BytesMut {
        let mut b = BatchBuilder::new(0).producer(7, 0, seq);
        for i in 0..n {
            b = b.record(None, Some(b"v"), now_ms() - 100 + i as i64);
        }
        BytesMut::from(&b.build()[..])
    }

    #[test]
    fn idempotent_retries_are_answered_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), small_cfg(), false, 0);
        let first = log.append_as_leader(idempotent(0, 2), 0).unwrap();
        fill(&log, 3, 1);
        let retry = log.append_as_leader(idempotent(0, 2), 0).unwrap();
        assert!(retry.duplicate);
        assert_eq!(
            (retry.base_offset, retry.last_offset),
            (first.base_offset, first.last_offset)
        );
        assert_eq!(log.log_end_offset(), 5);
        assert!(matches!(
            log.append_as_leader(idempotent(5, 1), 0),
            Err(LogError::OutOfOrderSequence(_))
        ));
        log.append_as_leader(idempotent(2, 1), 0).unwrap();
        assert_eq!(log.producers().len(), 1);
        assert_eq!(log.producers()[0].last_sequence, 2);
        // Rebuilt after a crash (replay of headers) ...
        drop(log);
        let log = open_log(dir.path(), small_cfg(), false, 0);
        assert!(log.append_as_leader(idempotent(2, 1), 0).unwrap().duplicate);
        // ... and after a clean shutdown, from the snapshot.
        fill(&log, 30, 1);
        log.append_as_leader(idempotent(3, 1), 0).unwrap();
        log.shutdown().unwrap();
        let end = log.log_end_offset();
        let snapshot = dir
            .path()
            .join("t-0")
            .join(segment::file_name(end, "snapshot"));
        assert!(snapshot.exists());
        let log = open_log(dir.path(), small_cfg(), true, end);
        let dup = log.append_as_leader(idempotent(3, 1), 0).unwrap();
        assert!(dup.duplicate);
        assert_eq!(dup.base_offset, end - 1);
        assert_eq!(log.producers()[0].last_sequence, 3);
    }

    #[test]
    fn follower_truncates_and_appends_leader_batches() {
        let dir = tempfile::tempdir().unwrap();
        let leader = open_log(&dir.path().join("leader"), small_cfg(), false, 0);
        for epoch in [
            1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
        ] {
            leader.append_as_leader(batch(2), epoch).unwrap();
        }
        let follower = open_log(&dir.path().join("follower"), small_cfg(), false, 0);
        for _ in 0..10 {
            follower.append_as_leader(batch(1), 1).unwrap();
        }
        // Diverged at offset 6 (epoch 1 ends there on the leader).
        assert_eq!(leader.end_offset_for_epoch(1), (1, 6));
        follower.truncate_to(6).unwrap();
        assert_eq!(follower.log_end_offset(), 6);
        assert_eq!(follower.high_watermark(), 6);
        assert!(matches!(
            follower.append_as_follower(&leader.read(8, 1 << 20, i64::MAX, true).unwrap().records),
            Err(LogError::InvalidRecord(_))
        ));
        let mut next = 6;
        while next < leader.log_end_offset() {
            let chunk = leader.read(next, 300, i64::MAX, true).unwrap().records;
            let (first, last) = follower.append_as_follower(&chunk).unwrap().unwrap();
            assert_eq!(first, next);
            next = last + 1;
        }
        assert_eq!(follower.log_end_offset(), 48);
        assert_eq!(follower.end_offset_for_epoch(1), (1, 6));
        assert_eq!(follower.latest_epoch(), Some(2));
        // Segment boundaries differ, so compare the whole logs from offset 6 on.
        let all = |log: &PartitionLog| {
            let mut out = Vec::new();
            let mut next = 6;
            while next < log.log_end_offset() {
                let r = log.read(next, 1 << 20, i64::MAX, true).unwrap().records;
                next = spans(&r).last().unwrap().1 + 1;
                out.extend_from_slice(&r);
            }
            out
        };
        assert_eq!(all(&follower), all(&leader));
        assert!(follower.num_segments() > 1);
        // Truncating across segments.
        follower.truncate_to(13).unwrap();
        assert_eq!(follower.log_end_offset(), 12);
        drop(follower);
        let follower = open_log(&dir.path().join("follower"), small_cfg(), false, 0);
        assert_eq!(follower.log_end_offset(), 12);
        assert_eq!(follower.append_as_follower(&[]).unwrap(), None);
    }

    #[test]
    fn max_bytes_min_one_and_max_offset() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), TopicConfig::default(), false, 0);
        fill(&log, 5, 2);
        let one = log.read(0, 1, i64::MAX, true).unwrap().records;
        let size = one.len();
        assert_eq!(spans(&one), vec![(0, 1)]);
        assert!(log
            .read(0, size - 1, i64::MAX, false)
            .unwrap()
            .records
            .is_empty());
        let two = log.read(1, 2 * size + 1, i64::MAX, false).unwrap().records;
        assert_eq!(spans(&two), vec![(0, 1), (2, 3)]);
        let capped = log.read(0, 1 << 20, 6, true).unwrap().records;
        assert_eq!(spans(&capped), vec![(0, 1), (2, 3), (4, 5)]);
        assert!(log.read(7, 1 << 20, 6, true).unwrap().records.is_empty());
    }

    #[test]
    fn recovery_truncates_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), small_cfg(), false, 0);
        fill(&log, 10, 2);
        let file = active_log_file(&log);
        let whole = log.read(18, 1 << 20, i64::MAX, true).unwrap().records;
        drop(log);
        // Half a batch at the end, as a crash mid-write leaves it.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        std::io::Write::write_all(&mut f, &batch(2)[..40]).unwrap();
        drop(f);
        let log = open_log(dir.path(), small_cfg(), false, 0);
        assert_eq!(log.log_end_offset(), 20);
        assert_eq!(
            log.read(18, 1 << 20, i64::MAX, true).unwrap().records,
            whole
        );
        let r = log.append_as_leader(batch(1), 0).unwrap();
        assert_eq!(r.base_offset, 20);
        assert_eq!(
            spans(&log.read(20, 1 << 20, i64::MAX, true).unwrap().records),
            vec![(20, 20)]
        );
    }

    #[test]
    fn recovery_at_any_cut_point_serves_only_whole_batches() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), TopicConfig::default(), false, 0);
        let mut ends = vec![0u64];
        for _ in 0..4 {
            log.append_as_leader(batch(2), 0).unwrap();
            ends.push(log.size_bytes());
        }
        let file = active_log_file(&log);
        drop(log);
        let full = std::fs::read(&file).unwrap();
        for cut in (0..=full.len()).step_by(7) {
            std::fs::write(&file, &full[..cut]).unwrap();
            let log = open_log(dir.path(), TopicConfig::default(), false, 0);
            let whole = ends.iter().filter(|&&e| e <= cut as u64).count() as i64 - 1;
            assert_eq!(log.log_end_offset(), whole * 2, "cut at {cut}");
            assert_eq!(
                std::fs::metadata(&file).unwrap().len(),
                ends[whole as usize]
            );
            if whole > 0 {
                let r = log.read(0, 1 << 20, i64::MAX, true).unwrap().records;
                assert_eq!(r.len() as u64, ends[whole as usize]);
            }
        }
    }

    #[test]
    fn recovery_truncates_corrupt_crc_in_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), TopicConfig::default(), false, 0);
        fill(&log, 4, 2);
        let file = active_log_file(&log);
        drop(log);
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0xff;
        std::fs::write(&file, &bytes).unwrap();
        let log = open_log(dir.path(), TopicConfig::default(), false, 0);
        assert_eq!(log.log_end_offset(), 6);
        assert_eq!(
            spans(&log.read(0, 1 << 20, i64::MAX, true).unwrap().records).len(),
            3
        );
        // A clean shutdown skips validation, but only for data it flushed itself.
        log.shutdown().unwrap();
        let log = open_log(dir.path(), TopicConfig::default(), true, 6);
        assert_eq!(log.log_end_offset(), 6);
    }

    #[test]
    fn corruption_in_an_older_segment_drops_everything_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), small_cfg(), false, 0);
        fill(&log, 40, 2);
        let first_end = {
            let inner = log.inner.lock();
            assert!(inner.segments.len() > 3);
            inner.segments[1].base_offset()
        };
        drop(log);
        let first = dir.path().join("t-0").join(segment::file_name(0, "log"));
        let mut bytes = std::fs::read(&first).unwrap();
        let n = bytes.len();
        bytes[n - 2] ^= 0x55;
        std::fs::write(&first, &bytes).unwrap();
        let log = open_log(dir.path(), small_cfg(), false, 0);
        assert_eq!(log.num_segments(), 1);
        assert!(log.log_end_offset() < first_end);
        let leo = log.log_end_offset();
        assert_eq!(log.append_as_leader(batch(1), 0).unwrap().base_offset, leo);
    }

    #[test]
    fn reads_run_concurrently_with_appends() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), small_cfg(), false, 0);
        fill(&log, 1, 1);
        let reader = {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut next = 0;
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                while next < 399 && std::time::Instant::now() < deadline {
                    let hw = log.high_watermark();
                    if next >= hw {
                        std::thread::yield_now();
                        continue;
                    }
                    let r = log.read(next, 4096, hw, true).unwrap();
                    for (b, l) in spans(&r.records) {
                        assert_eq!(b, next);
                        next = l + 1;
                    }
                }
                next
            })
        };
        fill(&log, 199, 2);
        assert_eq!(reader.join().unwrap(), 399);
    }

    #[test]
    fn preallocated_segments_recover_to_their_data() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TopicConfig {
            preallocate: true,
            ..small_cfg()
        };
        let log = open_log(dir.path(), cfg.clone(), false, 0);
        fill(&log, 12, 2);
        let file = active_log_file(&log);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 2048);
        drop(log);
        let log = open_log(dir.path(), cfg.clone(), false, 0);
        assert_eq!(log.log_end_offset(), 24);
        fill(&log, 1, 1);
        log.shutdown().unwrap();
        let log = open_log(dir.path(), cfg, true, 25);
        assert_eq!(log.log_end_offset(), 25);
    }

    #[test]
    fn indexes_are_rebuilt_when_missing_or_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), small_cfg(), false, 0);
        fill(&log, 30, 2);
        let expected: Vec<_> = (0..60)
            .map(|o| log.read(o, 1, i64::MAX, true).unwrap().records)
            .collect();
        log.shutdown().unwrap();
        let pdir = dir.path().join("t-0");
        let mut removed = 0;
        for e in std::fs::read_dir(&pdir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "index") {
                if removed % 2 == 0 {
                    std::fs::remove_file(&p).unwrap();
                } else {
                    std::fs::write(&p, [0xffu8; 13]).unwrap();
                }
                removed += 1;
            }
        }
        assert!(removed > 1);
        let log = open_log(dir.path(), small_cfg(), true, 60);
        for (o, want) in expected.iter().enumerate() {
            assert_eq!(
                &log.read(o as i64, 1, i64::MAX, true).unwrap().records,
                want
            );
        }
        let first_index = pdir.join(segment::file_name(0, "index"));
        assert!(std::fs::metadata(first_index).unwrap().len() > 0);
    }

    #[test]
    fn retention_by_time_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TopicConfig {
            retention_ms: DAY,
            retention_bytes: -1,
            ..small_cfg()
        };
        let log = open_log(dir.path(), cfg.clone(), false, 0);
        let old = now_ms() - 10 * DAY;
        for _ in 0..20 {
            log.append_as_leader(batch_at(2, old), 0).unwrap();
        }
        let old_end = log.log_end_offset();
        fill(&log, 20, 2);
        let segments = log.num_segments();
        let deleted = log.apply_retention(now_ms()).unwrap();
        assert!(deleted > 0);
        assert_eq!(log.num_segments(), segments - deleted);
        assert!(log.log_start_offset() > 0 && log.log_start_offset() <= old_end);
        assert!(matches!(
            log.read(0, 100, i64::MAX, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        // Segments with recent data stay.
        assert_eq!(log.apply_retention(now_ms()).unwrap(), 0);

        log.update_config(TopicConfig {
            retention_ms: -1,
            retention_bytes: 3000,
            ..cfg
        });
        log.apply_retention(now_ms()).unwrap();
        assert!(log.size_bytes() >= 3000 - 2048 && log.size_bytes() < 3000 + 2048);
        assert!(log.num_segments() >= 1);
        let start = log.log_start_offset();
        assert!(!log
            .read(start, 100, i64::MAX, true)
            .unwrap()
            .records
            .is_empty());
        let deleted_files = std::fs::read_dir(dir.path().join("t-0"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .to_string_lossy()
                    .ends_with(".deleted")
            })
            .count();
        assert_eq!(deleted_files, 0, "no runtime: removed at once");
    }

    #[tokio::test]
    async fn deleted_segment_files_linger_for_the_delete_delay() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TopicConfig {
            file_delete_delay_ms: 100,
            ..small_cfg()
        };
        let log = open_log(dir.path(), cfg, false, 0);
        fill(&log, 30, 2);
        log.delete_records_before(40).unwrap();
        let deleted = || {
            std::fs::read_dir(dir.path().join("t-0"))
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .to_string_lossy()
                        .ends_with(".deleted")
                })
                .count()
        };
        assert!(deleted() >= 3, "log, index and time index of each segment");
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert_eq!(deleted(), 0);
    }

    #[test]
    fn delete_records_moves_log_start_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), small_cfg(), false, 0);
        fill(&log, 30, 2);
        let segments = log.num_segments();
        assert!(matches!(
            log.delete_records_before(61),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(log.delete_records_before(25).unwrap(), 25);
        assert_eq!(log.log_start_offset(), 25);
        assert!(log.num_segments() < segments);
        assert!(matches!(
            log.read(24, 100, i64::MAX, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        // Reading at the start returns the batch holding it.
        let s = spans(&log.read(25, 1, i64::MAX, true).unwrap().records);
        assert_eq!(s, vec![(24, 25)]);
        assert_eq!(log.delete_records_before(3).unwrap(), 25);
        drop(log);
        let log = open_log(dir.path(), small_cfg(), false, 0);
        assert_eq!(log.log_start_offset(), 25);
        assert_eq!(log.delete_records_before(-1).unwrap(), 60);
        assert_eq!(log.num_segments(), 1);
        assert!(log
            .read(60, 100, i64::MAX, true)
            .unwrap()
            .records
            .is_empty());
    }

    #[test]
    fn leader_epochs_are_tracked_and_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), TopicConfig::default(), false, 0);
        assert_eq!(log.latest_epoch(), None);
        assert_eq!(log.end_offset_for_epoch(0), (-1, -1));
        for epoch in [0, 0, 2, 2, 5] {
            log.append_as_leader(batch(2), epoch).unwrap();
        }
        assert_eq!(log.latest_epoch(), Some(5));
        assert_eq!(log.end_offset_for_epoch(5), (5, 10));
        assert_eq!(log.end_offset_for_epoch(0), (0, 4));
        assert_eq!(log.end_offset_for_epoch(1), (0, 4));
        assert_eq!(log.end_offset_for_epoch(3), (2, 8));
        assert_eq!(log.end_offset_for_epoch(6), (-1, -1));
        assert_eq!(log.epoch_at(5), Some(2));
        let r = log.read(4, 1, i64::MAX, true).unwrap().records;
        assert_eq!(BatchHeader::parse(&r).unwrap().partition_leader_epoch, 2);
        drop(log);
        let log = open_log(dir.path(), TopicConfig::default(), false, 0);
        assert_eq!(log.end_offset_for_epoch(3), (2, 8));
        assert_eq!(log.end_offset_for_epoch(5), (5, 10));
    }

    #[test]
    fn search_by_timestamp_and_max_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), small_cfg(), false, 0);
        assert_eq!(log.max_timestamp().unwrap(), None);
        let t0 = now_ms() - 100_000;
        // Batch i holds timestamps t0 + 10i .. t0 + 10i + 2, except one late outlier.
        for i in 0..30 {
            let ts = if i == 17 { t0 + 50_000 } else { t0 + 10 * i };
            log.append_as_leader(batch_at(3, ts), i as i32 / 10)
                .unwrap();
        }
        assert!(log.num_segments() > 2);
        assert_eq!(log.offset_for_timestamp(t0).unwrap(), Some((0, t0, 0)));
        assert_eq!(log.offset_for_timestamp(t0 - 5).unwrap(), Some((0, t0, 0)));
        assert_eq!(
            log.offset_for_timestamp(t0 + 101).unwrap(),
            Some((31, t0 + 101, 1))
        );
        assert_eq!(
            log.offset_for_timestamp(t0 + 103).unwrap(),
            Some((33, t0 + 110, 1))
        );
        assert_eq!(
            log.offset_for_timestamp(t0 + 300).unwrap(),
            Some((51, t0 + 50_000, 1))
        );
        assert_eq!(log.offset_for_timestamp(t0 + 60_000).unwrap(), None);
        assert_eq!(log.max_timestamp().unwrap(), Some((53, t0 + 50_002, 1)));
        log.shutdown().unwrap();
        let log = open_log(dir.path(), small_cfg(), true, 90);
        assert_eq!(log.max_timestamp().unwrap(), Some((53, t0 + 50_002, 1)));
        assert_eq!(
            log.offset_for_timestamp(t0 + 103).unwrap(),
            Some((33, t0 + 110, 1))
        );
    }

    #[test]
    fn log_append_time_is_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TopicConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..TopicConfig::default()
        };
        let log = open_log(dir.path(), cfg, false, 0);
        let before = now_ms();
        let r = log.append_as_leader(batch_at(2, 5), 0).unwrap();
        assert!(r.log_append_time >= before);
        let (off, ts, _) = log.offset_for_timestamp(before).unwrap().unwrap();
        assert_eq!((off, ts), (0, r.log_append_time));
    }

    #[test]
    fn invalid_batches_are_rejected_and_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), TopicConfig::default(), false, 0);
        let mut b = batch(2);
        let n = b.len();
        b[n - 1] ^= 1;
        assert!(matches!(
            log.append_as_leader(b, 0),
            Err(LogError::Corrupt(_))
        ));
        assert_eq!(log.log_end_offset(), 0);
        assert_eq!(log.size_bytes(), 0);
    }

    #[test]
    fn partition_metadata_uses_kafka_format() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), TopicConfig::default(), false, 0);
        let text =
            std::fs::read_to_string(dir.path().join("t-0").join(PARTITION_METADATA_FILE)).unwrap();
        let id = log.topic_id();
        assert_eq!(
            text,
            format!("version: 0\ntopic_id: {}\n", topic_id_to_string(id))
        );
        assert_eq!(topic_id_to_string(id).len(), 22);
        assert_eq!(parse_topic_id(&topic_id_to_string(id)), Some(id));
        assert_eq!(parse_topic_id(&id.to_string()), Some(id));
        let u = Uuid::new_v4();
        assert_eq!(parse_topic_id(&topic_id_to_string(u)), Some(u));
        assert_eq!(parse_topic_id("not an id"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_flushes_share_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), TopicConfig::default(), false, 0);
        let (handle, flusher) = crate::log::flusher::channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(flusher.run(stop_rx));
        log.attach_flusher(Some(handle));
        let mut waiters = Vec::new();
        for _ in 0..64 {
            let log = log.clone();
            waiters.push(tokio::spawn(async move {
                let r = log.append_as_leader(batch(1), 0).unwrap();
                log.flush_to(r.last_offset).await.unwrap();
                r.last_offset
            }));
        }
        for w in waiters {
            let last = w.await.unwrap();
            assert!(log.recovery_point() > last);
        }
        let fsyncs = log.fsync_count();
        assert!((1..64).contains(&fsyncs), "{fsyncs} fsyncs for 64 flushes");
        // Already durable: no new fsync.
        log.flush_to(10).await.unwrap();
        assert_eq!(log.fsync_count(), fsyncs);
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        // Without a flusher the log flushes by itself.
        log.append_as_leader(batch(1), 0).unwrap();
        log.flush_to(64).await.unwrap();
        assert_eq!(log.recovery_point(), 65);
    }

    #[test]
    fn adopt_topic_id_gives_a_found_log_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let open_nil = || {
            PartitionLog::open(OpenOptions {
                dir: dir.path().join("t-0"),
                topic: "t".into(),
                partition: 0,
                topic_id: Uuid::nil(),
                config: TopicConfig::default(),
                recovery_point: 0,
                clean_shutdown: false,
                producer_id_expiration_ms: DAY,
                high_watermark: None,
                handles: HandleCache::new(64),
            })
            .unwrap()
        };
        let log = open_nil();
        let meta = dir.path().join("t-0").join(PARTITION_METADATA_FILE);
        assert!(log.topic_id().is_nil());
        assert!(!meta.exists(), "a nil id is never recorded");
        assert!(log.adopt_topic_id(Uuid::nil()).is_err());
        let id = Uuid::new_v4();
        log.adopt_topic_id(id).unwrap();
        assert_eq!(log.topic_id(), id);
        assert_eq!(read_partition_metadata(&dir.path().join("t-0")), Some(id));
        log.adopt_topic_id(id).unwrap();
        let other = Uuid::new_v4();
        assert!(matches!(
            log.adopt_topic_id(other),
            Err(LogError::InvalidRecord(_))
        ));
        assert_eq!(log.topic_id(), id);
        // The same id again rewrites a lost file.
        std::fs::remove_file(&meta).unwrap();
        log.adopt_topic_id(id).unwrap();
        assert!(meta.exists());
        drop(log);
        assert_eq!(open_nil().topic_id(), id);
    }

    /// Every batch from the log start, across segments.
    fn read_everything(log: &PartitionLog) -> Vec<u8> {
        let mut out = Vec::new();
        let mut next = log.log_start_offset();
        while next < log.log_end_offset() {
            let r = log.read(next, 1 << 20, i64::MAX, true).unwrap().records;
            let last = spans(&r).last().expect("progress").1;
            out.extend_from_slice(&r);
            next = last + 1;
        }
        out
    }

    /// A tiny tmpfs: a real full disk. Needs root; `None` elsewhere.
    struct Tmpfs(tempfile::TempDir);

    impl Tmpfs {
        fn mount(size: &str) -> Option<Tmpfs> {
            let dir = tempfile::tempdir().ok()?;
            let ok = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            ok.then_some(Tmpfs(dir))
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg(self.0.path())
                .status();
        }
    }

    /// Write a file until the disk is full.
    fn fill_disk(path: &Path) {
        let mut f = std::fs::File::create(path).unwrap();
        let chunk = [7u8; 4096];
        while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    }

    #[test]
    fn full_disk_crash_recovers_without_writing_and_appends_resume_when_space_is_freed() {
        let Some(fs) = Tmpfs::mount("512k") else {
            eprintln!("SKIPPED: mounting a tmpfs needs root");
            return;
        };
        let root = fs.0.path();
        let ballast = root.join("ballast");
        std::fs::write(&ballast, vec![1u8; 128 << 10]).unwrap();
        let cfg = TopicConfig {
            segment_bytes: 64 << 10,
            index_interval_bytes: 256,
            ..TopicConfig::default()
        };
        let log = open_log(root, cfg.clone(), false, 0);
        let mut acked = 0i64;
        loop {
            match log.append_as_leader(batch(20), 0) {
                Ok(r) => {
                    assert_eq!(r.base_offset, acked);
                    acked = r.last_offset + 1;
                }
                Err(LogError::Io(_)) => break,
                Err(e) => panic!("unexpected {e}"),
            }
            assert!(acked < 1_000_000, "the disk never filled");
        }
        assert!(acked > 100);
        log.flush_blocking().unwrap();
        let expected = read_everything(&log);
        assert_eq!(spans(&expected).last().map(|s| s.1), Some(acked - 1));
        // A crash (no shutdown, no checkpoint) that lost the index files, and every byte
        // left taken: the open must rebuild the indexes without writing them.
        drop(log);
        for e in std::fs::read_dir(root.join("t-0")).unwrap() {
            let p = e.unwrap().path();
            if p.extension()
                .is_some_and(|x| x == "index" || x == "timeindex")
            {
                std::fs::remove_file(p).unwrap();
            }
        }
        let filler = root.join("filler");
        fill_disk(&filler);
        let log = open_log(root, cfg.clone(), false, 0);
        assert!(
            log.inner
                .lock()
                .segments
                .iter()
                .any(Segment::indexes_lagging),
            "the disk was full while indexes were rebuilt"
        );
        assert_eq!(log.log_end_offset(), acked);
        assert_eq!(read_everything(&log), expected);
        for o in (0..acked).step_by(37) {
            let s = spans(&log.read(o, 1, i64::MAX, true).unwrap().records);
            assert!(s[0].0 <= o && o <= s[0].1, "offset {o} found via the index");
        }
        // Space freed: appends resume at the next offset, and lagging files catch up.
        std::fs::remove_file(&ballast).unwrap();
        std::fs::remove_file(&filler).unwrap();
        for _ in 0..3 {
            let r = log.append_as_leader(batch(20), 0).unwrap();
            assert_eq!(r.base_offset, acked);
            acked = r.last_offset + 1;
        }
        log.flush_blocking().unwrap();
        let all = read_everything(&log);
        log.shutdown().unwrap();
        assert!(!log
            .inner
            .lock()
            .segments
            .iter()
            .any(Segment::indexes_lagging));
        let log = open_log(root, cfg.clone(), true, acked);
        assert_eq!(log.log_end_offset(), acked);
        assert_eq!(read_everything(&log), all);
    }

    #[test]
    fn shutdown_on_a_full_disk_leaves_files_a_clean_start_accepts() {
        let Some(fs) = Tmpfs::mount("256k") else {
            eprintln!("SKIPPED: mounting a tmpfs needs root");
            return;
        };
        let root = fs.0.path();
        let cfg = TopicConfig {
            segment_bytes: 32 << 10,
            index_interval_bytes: 256,
            ..TopicConfig::default()
        };
        let log = open_log(root, cfg.clone(), false, 0);
        while log.append_as_leader(batch(20), 0).is_ok() {}
        fill_disk(&root.join("filler"));
        let expected = read_everything(&log);
        let (leo, max_ts) = (log.log_end_offset(), log.max_timestamp().unwrap());
        log.shutdown().unwrap();

        let log = open_log(root, cfg, true, leo);
        assert_eq!(log.log_end_offset(), leo);
        assert_eq!(log.max_timestamp().unwrap(), max_ts);
        assert_eq!(read_everything(&log), expected);
    }

    #[test]
    fn index_files_that_cannot_be_completed_are_removed_at_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), small_cfg(), false, 0);
        fill(&log, 3, 2);
        if !log.inner.lock().segments[0].fail_index_writes() {
            return; // no /dev/full here
        }
        fill(&log, 6, 2);
        assert_eq!(log.num_segments(), 1);
        assert!(log.inner.lock().segments[0].indexes_lagging());
        let expected: Vec<_> = (0..18)
            .map(|o| log.read(o, 1, i64::MAX, true).unwrap().records)
            .collect();
        let max_ts = log.max_timestamp().unwrap();
        log.shutdown().unwrap();
        let pdir = dir.path().join("t-0");
        assert!(!pdir.join(segment::file_name(0, "index")).exists());
        assert!(!pdir.join(segment::file_name(0, "timeindex")).exists());
        let log = open_log(dir.path(), small_cfg(), true, 18);
        assert_eq!(log.log_end_offset(), 18);
        assert_eq!(log.max_timestamp().unwrap(), max_ts);
        for (o, want) in expected.iter().enumerate() {
            assert_eq!(
                &log.read(o as i64, 1, i64::MAX, true).unwrap().records,
                want
            );
        }
        assert!(
            pdir.join(segment::file_name(0, "index")).exists(),
            "rebuilt"
        );
    }

    #[test]
    fn retention_frees_a_full_disk() {
        let Some(fs) = Tmpfs::mount("256k") else {
            eprintln!("SKIPPED: mounting a tmpfs needs root");
            return;
        };
        let root = fs.0.path();
        let cfg = TopicConfig {
            segment_bytes: 16 << 10,
            ..TopicConfig::default()
        };
        let log = open_log(root, cfg.clone(), false, 0);
        while log.append_as_leader(batch(20), 0).is_ok() {}
        fill_disk(&root.join("filler"));
        assert!(log.append_as_leader(batch(20), 0).is_err());
        let leo = log.log_end_offset();
        log.update_config(TopicConfig {
            retention_bytes: 32 << 10,
            ..cfg.clone()
        });
        let deleted = log.apply_retention(now_ms()).unwrap();
        assert!(
            deleted > 0,
            "retention runs although no checkpoint can be written"
        );
        let start = log.log_start_offset();
        assert!(start > 0);
        let r = log.append_as_leader(batch(20), 0).unwrap();
        assert_eq!(r.base_offset, leo);
        drop(log);
        let log = open_log(root, cfg, false, 0);
        assert_eq!(log.log_start_offset(), start);
        assert_eq!(log.log_end_offset(), r.last_offset + 1);
    }

    // --- log compaction ------------------------------------------------------------------

    fn compact_cfg() -> TopicConfig {
        TopicConfig {
            segment_bytes: 1024,
            index_interval_bytes: 128,
            compact: true,
            delete: false,
            min_cleanable_dirty_ratio: 0.5,
            ..TopicConfig::default()
        }
    }

    /// Append one keyed record (zstd-compressed for odd `n`, to mix codecs).
    fn put(log: &PartitionLog, n: usize, key: &str, value: Option<&str>, ts: i64) -> i64 {
        let codec = if n % 2 == 1 {
            batch::Compression::Zstd
        } else {
            batch::Compression::None
        };
        let b = BatchBuilder::new(0)
            .compression(codec)
            .record(Some(key.as_bytes()), value.map(str::as_bytes), ts)
            .build();
        log.append_as_leader(BytesMut::from(&b[..]), 0)
            .unwrap()
            .base_offset
    }

    type Rec = crate::log::cleaner::Content;

    fn all_records(log: &PartitionLog) -> Vec<Rec> {
        crate::log::cleaner::contents(&read_everything(log))
    }

    fn s(x: &str) -> Option<Vec<u8>> {
        Some(x.as_bytes().to_vec())
    }

    #[test]
    fn compaction_keeps_the_last_value_per_key_and_offsets_and_reads_stay_right() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), compact_cfg(), false, 0);
        let ts = now_ms() - 1000;
        let mut appended: Vec<Rec> = Vec::new();
        for i in 0..80 {
            let (k, v) = (format!("k{}", i % 5), format!("v{i}"));
            let o = put(&log, i, &k, Some(&v), ts);
            appended.push((o, s(&k), s(&v)));
        }
        assert!(log.num_segments() > 3);
        let active_before = std::fs::read(active_log_file(&log)).unwrap();
        let leo = log.log_end_offset();
        let stats = log.clean(now_ms()).unwrap();
        assert!(stats.ran && stats.segments_rewritten > 0, "{stats:?}");
        assert!(stats.records_removed > 0 && stats.bytes_after < stats.bytes_read);
        let end = stats.clean_end;
        assert_eq!(std::fs::read(active_log_file(&log)).unwrap(), active_before);
        assert_eq!(log.log_end_offset(), leo);
        let expect = |recs: &[Rec]| {
            let mut want: Vec<Rec> = appended
                .iter()
                .filter(|(o, k, _)| {
                    *o >= end
                        || !appended
                            .iter()
                            .any(|(o2, k2, _)| k2 == k && o2 > o && *o2 < end)
                })
                .cloned()
                .collect();
            want.sort();
            let mut got = recs.to_vec();
            got.sort();
            assert_eq!(got, want);
        };
        let recs = all_records(&log);
        expect(&recs);
        let emptied = std::fs::read_dir(dir.path().join("t-0"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .filter(|e| e.metadata().unwrap().len() == 0)
            .count();
        assert!(emptied > 0, "the test should empty whole segments");
        let below: Vec<&Rec> = recs.iter().filter(|r| r.0 < end).collect();
        let keys: std::collections::BTreeSet<_> = below.iter().map(|r| &r.1).collect();
        assert_eq!(
            keys.len(),
            below.len(),
            "one record per key in the cleaned range"
        );
        // A read at any offset, compacted away or not, starts at the first batch that
        // reaches it, and that batch holds the next surviving record.
        for o in 0..leo {
            let r = log.read(o, 1, i64::MAX, true).unwrap().records;
            let first = spans(&r)[0];
            assert!(first.1 >= o, "read at {o} gave {first:?}");
            let next = recs.iter().find(|x| x.0 >= o).map(|x| x.0);
            // No empty batch is left for a client to get stuck on (KafkaJS cannot step
            // over one): the first batch read holds the next surviving record, even when
            // whole segments in between were emptied.
            let got = crate::log::cleaner::contents(&r).first().map(|x| x.0);
            assert_eq!(got, next, "read at {o}");
        }
        // The checkpoint is Kafka's text file in the log directory.
        let cp = std::fs::read_to_string(dir.path().join("cleaner-offset-checkpoint")).unwrap();
        assert_eq!(cp, format!("0\n1\nt 0 {end}\n"));
        // Nothing dirty now: the next pass does nothing.
        assert!(!log.clean(now_ms()).unwrap().ran);
        // A restart (after a crash) reads the same log.
        drop(log);
        let log = open_log(dir.path(), compact_cfg(), false, 0);
        assert_eq!(all_records(&log), recs);
        assert_eq!(log.log_end_offset(), leo);
        for o in (0..leo).step_by(7) {
            let r = log.read(o, 1, i64::MAX, true).unwrap().records;
            assert!(spans(&r)[0].1 >= o);
        }
    }

    #[test]
    fn compaction_removes_tombstones_only_after_delete_retention() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TopicConfig {
            delete_retention_ms: 60_000,
            ..compact_cfg()
        };
        let log = open_log(dir.path(), cfg.clone(), false, 0);
        let ts = now_ms() - 1000;
        put(&log, 0, "a", Some("1"), ts);
        put(&log, 1, "b", Some("1"), ts);
        let tomb = put(&log, 2, "a", None, ts);
        let mut i = 3;
        while log.num_segments() < 4 {
            put(&log, i, &format!("f{}", i % 3), Some("x"), ts);
            i += 1;
        }
        assert!(log.clean(now_ms()).unwrap().ran);
        let recs = all_records(&log);
        assert!(recs.contains(&(tomb, s("a"), None)), "tombstone kept");
        assert!(!recs.iter().any(|r| r.1 == s("a") && r.2.is_some()));
        // More dirty data, and later than delete.retention.ms: the tombstone goes.
        while log.num_segments() < 8 {
            put(&log, i, &format!("f{}", i % 3), Some("y"), ts);
            i += 1;
        }
        let stats = log.clean(now_ms() + 120_000).unwrap();
        assert!(stats.ran);
        let recs = all_records(&log);
        assert!(!recs.iter().any(|r| r.1 == s("a")), "tombstone removed");
        assert!(recs.iter().any(|r| r.1 == s("b")));
    }

    #[test]
    fn compaction_respects_min_lag_dirty_ratio_and_policy() {
        let dir = tempfile::tempdir().unwrap();
        let lagged = TopicConfig {
            min_compaction_lag_ms: 60_000,
            ..compact_cfg()
        };
        let log = open_log(dir.path(), lagged, false, 0);
        let ts = now_ms() - 1000;
        for i in 0..60 {
            put(&log, i, "k", Some("v"), ts);
        }
        let before = read_everything(&log);
        assert!(
            !log.clean(now_ms()).unwrap().ran,
            "records younger than the lag"
        );
        assert_eq!(read_everything(&log), before);
        // Not compacted at all: nothing happens.
        log.update_config(TopicConfig {
            compact: false,
            ..compact_cfg()
        });
        assert!(!log.clean(now_ms()).unwrap().ran);
        log.update_config(compact_cfg());
        assert!(log.clean(now_ms()).unwrap().ran);
        // One more closed segment over a cleaned range is below the 0.5 ratio.
        let segs = log.num_segments();
        let mut i = 60;
        while log.num_segments() < segs + 1 {
            put(&log, i, "k", Some("w"), ts);
            i += 1;
        }
        let after_first = read_everything(&log);
        let strict = TopicConfig {
            min_cleanable_dirty_ratio: 0.99,
            ..compact_cfg()
        };
        log.update_config(strict);
        assert!(
            !log.clean(now_ms()).unwrap().ran,
            "dirty ratio below threshold"
        );
        assert_eq!(read_everything(&log), after_first);
    }

    #[test]
    fn truncation_below_the_cleaner_checkpoint_lowers_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), compact_cfg(), false, 0);
        let ts = now_ms() - 1000;
        for i in 0..60 {
            put(&log, i, &format!("k{}", i % 3), Some("v"), ts);
        }
        let end = log.clean(now_ms()).unwrap().clean_end;
        assert!(end > 5);
        let cp = |log: &PartitionLog| {
            crate::log::cleaner::read_checkpoint(dir.path(), log.topic(), log.partition())
        };
        assert_eq!(cp(&log), end);
        let target = log.read(5, 1, i64::MAX, true).unwrap().records;
        log.truncate_to(spans(&target)[0].0).unwrap();
        assert_eq!(cp(&log), log.log_end_offset());
        assert!(cp(&log) < end);
        // A log created anew under the same name starts without a checkpoint.
        drop(log);
        std::fs::remove_dir_all(dir.path().join("t-0")).unwrap();
        let log = open_log(dir.path(), compact_cfg(), false, 0);
        assert_eq!(cp(&log), 0);
        assert!(
            !std::fs::read_to_string(dir.path().join("cleaner-offset-checkpoint"))
                .unwrap()
                .contains("t 0")
        );
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }

    #[test]
    fn a_crash_mid_swap_recovers_a_consistent_log() {
        use crate::log::cleaner::{staged_path, CLEANED_SUFFIX, SWAP_SUFFIX};
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), compact_cfg(), false, 0);
        let ts = now_ms() - 1000;
        for i in 0..80 {
            put(&log, i, &format!("k{}", i % 4), Some(&format!("v{i}")), ts);
        }
        log.shutdown().unwrap();
        drop(log);
        let pdir = dir.path().join("t-0");
        let original = dir.path().join("original");
        copy_dir(&pdir, &original);
        let log = open_log(dir.path(), compact_cfg(), true, 0);
        let before = all_records(&log);
        let stats = log.clean(now_ms()).unwrap();
        assert!(stats.segments_rewritten >= 2);
        let cleaned = all_records(&log);
        assert_ne!(cleaned, before);
        let bases: Vec<i64> = log
            .inner
            .lock()
            .segments
            .iter()
            .map(Segment::base_offset)
            .filter(|b| *b < stats.clean_end)
            .collect();
        let cleaned_files: Vec<(i64, Vec<u8>)> = bases
            .iter()
            .map(|b| {
                (
                    *b,
                    std::fs::read(pdir.join(segment::file_name(*b, "log"))).unwrap(),
                )
            })
            .collect();
        log.shutdown().unwrap();
        drop(log);
        let restore = || {
            std::fs::remove_dir_all(&pdir).unwrap();
            copy_dir(&original, &pdir);
        };

        // Crash while writing or committing: a `.cleaned` file is left, so the pass is
        // undone, whatever `.swap` files exist already.
        restore();
        std::fs::write(
            staged_path(&pdir, bases[0], SWAP_SUFFIX),
            &cleaned_files[0].1,
        )
        .unwrap();
        std::fs::write(staged_path(&pdir, bases[1], CLEANED_SUFFIX), b"half a segm").unwrap();
        let log = open_log(dir.path(), compact_cfg(), false, 0);
        assert_eq!(all_records(&log), before);
        drop(log);
        assert!(!staged_path(&pdir, bases[0], SWAP_SUFFIX).exists());
        assert!(!staged_path(&pdir, bases[1], CLEANED_SUFFIX).exists());

        // Crash after the commit point, with the first original already replaced: the
        // swap is finished and stale indexes are rebuilt.
        restore();
        for (i, (b, bytes)) in cleaned_files.iter().enumerate() {
            if i == 0 {
                std::fs::write(pdir.join(segment::file_name(*b, "log")), bytes).unwrap();
                std::fs::remove_file(pdir.join(segment::file_name(*b, "index"))).unwrap();
            } else {
                std::fs::write(staged_path(&pdir, *b, SWAP_SUFFIX), bytes).unwrap();
            }
        }
        let log = open_log(dir.path(), compact_cfg(), false, 0);
        assert_eq!(all_records(&log), cleaned);
        for o in 0..log.log_end_offset() {
            let r = log.read(o, 1, i64::MAX, true).unwrap().records;
            assert!(spans(&r)[0].1 >= o, "read at {o}");
            let next = cleaned.iter().find(|x| x.0 >= o).map(|x| x.0);
            if let Some(first) = crate::log::cleaner::contents(&r).first() {
                assert_eq!(Some(first.0), next, "read at {o}");
            }
        }
        for b in &bases {
            assert!(!staged_path(&pdir, *b, SWAP_SUFFIX).exists());
        }
    }
}

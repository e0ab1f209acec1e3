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
use super::producer_state::{ProducerInfo, ProducerStateManager, SeqCheck};
use super::records::Records;
use super::segment::{self, Segment, SegmentOptions, SegmentView};
use super::LogError;
use crate::config::{FlushPolicy, TimestampType, TopicConfig};

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
    /// all) starts it at the log end, as before checkpoints existed. It matters for
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
    /// Open (creating if needed) the partition directory and recover its log.
    ///
    /// Opening an existing log writes nothing it cannot do without: rebuilt indexes stay
    /// in memory until their files can be written, and checkpoint, snapshot and metadata
    /// writes that fail (full disk) are retried later. So a full disk still opens, and
    /// serves, every acknowledged record. Only a new (empty) log needs its first segment
    /// file created.
    pub fn open(opts: OpenOptions) -> Result<Arc<PartitionLog>, LogError> {
        let dir = opts.dir.clone();
        let mut checkpoint_stale = false;
        let mut metadata_unsynced = false;
        let created = !dir.is_dir();
        if created {
            std::fs::create_dir_all(&dir)?;
            // A new log must not inherit the cleaner checkpoint of a deleted one of the
            // same name: its records would count as clean and enter no offset map.
            let log_dir = dir.parent().unwrap_or(&dir);
            if let Err(e) = super::cleaner::forget_checkpoint(log_dir, &opts.topic, opts.partition)
            {
                tracing::warn!(dir = %dir.display(), error = %e,
                    "cannot clear an old cleaner checkpoint; the first pass cleans everything");
                checkpoint_stale = true;
            }
        }
        let topic_id = match read_partition_metadata(&dir) {
            Some(id) => id,
            None => {
                // A directory found on disk without metadata keeps it absent until the
                // controller supplies the id; never record a nil id. A failed write is
                // retried at shutdown: the id is known in memory meanwhile.
                //
                // A new partition's file is written without fsyncs (two per partition made
                // creating thousands of partitions slow); its first flush syncs it and the
                // directory, before any record counts as durable. A crash before that can
                // only leave the file absent or torn, which reads as absent: the log
                // (holding nothing durable) then takes its id from metadata, as above.
                if !opts.topic_id.is_nil() {
                    let written = if created {
                        metadata_unsynced = true;
                        std::fs::write(
                            dir.join(PARTITION_METADATA_FILE),
                            partition_metadata_text(opts.topic_id),
                        )
                    } else {
                        write_partition_metadata(&dir, opts.topic_id)
                    };
                    if let Err(e) = written {
                        tracing::warn!(dir = %dir.display(), error = %e,
                            "cannot write partition.metadata; will retry");
                    }
                }
                opts.topic_id
            }
        };
        let seg_opts = SegmentOptions::from(&opts.config);
        // A cleaner pass cut short by a crash is finished or undone before anything reads
        // the segments.
        super::cleaner::recover_interrupted(&dir)?;
        let mut bases = list_segments(&dir)?;
        bases.sort_unstable();
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
        let mut recovered_any = false;
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            // A segment may hold unflushed offsets if it reaches the recovery point.
            let recover = !opts.clean_shutdown && next_base.is_none_or(|n| n > opts.recovery_point);
            let (seg, outcome) = Segment::open(&dir, base, seg_opts, recover, &opts.handles)?;
            recovered_any |= recover;
            let overlaps = segments.last().is_some_and(|p| p.next_offset() > base);
            if overlaps {
                tracing::warn!(dir = %dir.display(), base, "segment overlaps its predecessor; dropping it and later ones");
                for b in &bases[i..] {
                    remove_segment_files(&dir, *b);
                }
                break;
            }
            let damaged = outcome.truncated_bytes > 0 && !outcome.zero_tail;
            if damaged {
                metrics::counter!(crate::metrics::LOG_RECOVERY_TRUNCATED_BYTES_TOTAL)
                    .increment(outcome.truncated_bytes);
            }
            segments.push(seg);
            if damaged && next_base.is_some() {
                // Kafka's rule: after a corrupt batch nothing later can be trusted.
                tracing::warn!(dir = %dir.display(), base, "corruption inside the log; dropping later segments");
                for b in &bases[i + 1..] {
                    remove_segment_files(&dir, *b);
                }
                break;
            }
        }
        let saved_start = checkpoint::read(&dir.join(checkpoint::LOG_START_FILE))
            .get(&(opts.topic.clone(), opts.partition))
            .copied()
            .unwrap_or(0);
        // Indexes rebuilt for sealed segments are written now if the disk allows (the
        // next flush or the shutdown retries otherwise); the active one's wait for its
        // seal, like those of any active segment.
        let sealed = segments.len().saturating_sub(1);
        for seg in &mut segments[..sealed] {
            if seg.indexes_lagging() {
                let _ = seg.settle_indexes();
            }
        }
        if segments.is_empty() {
            segments.push(Segment::create(
                &dir,
                saved_start.max(0),
                seg_opts,
                &opts.handles,
            )?);
        }
        let first_base = segments[0].base_offset();
        let log_end = segments.last().map_or(0, |s| s.next_offset());
        let log_start = saved_start.clamp(first_base, log_end.max(first_base));
        let mut epochs = EpochCache::open(&dir);
        // The cache is right in memory either way; the checkpoint is rewritten on its next
        // change or at shutdown, and re-truncated by the next open if we crash first.
        if let Err(e) = epochs
            .truncate_from_end(log_end)
            .and_then(|()| epochs.truncate_from_start(log_start))
        {
            tracing::warn!(dir = %dir.display(), error = %e,
                "cannot rewrite leader-epoch checkpoint; will retry");
        }
        let flushed = if opts.clean_shutdown {
            log_end
        } else {
            opts.recovery_point.clamp(first_base, log_end)
        };
        let producers = load_producer_state(&dir, &segments, log_start, log_end)?;
        if recovered_any {
            tracing::info!(topic = %opts.topic, partition = opts.partition, log_start,
                log_end, "partition log recovered");
        }
        // Records above the checkpointed high watermark may not be on the other in-sync
        // replicas: they stay invisible to consumers until replication confirms them.
        let start_hw = opts
            .high_watermark
            .map_or(log_end, |hw| hw.clamp(log_start, log_end));
        let (hw, _) = watch::channel(start_hw);
        let (end_tx, _) = watch::channel(log_end);
        let jitter = if opts.config.segment_jitter_ms > 0 {
            (Uuid::new_v4().as_u128() % opts.config.segment_jitter_ms as u128) as i64
        } else {
            0
        };
        Ok(Arc::new_cyclic(|me| PartitionLog {
            topic: opts.topic,
            partition: opts.partition,
            topic_id: Mutex::new(topic_id),
            dir,
            me: me.clone(),
            handles: opts.handles,
            inner: Mutex::new(Inner {
                segments,
                epochs,
                producers,
                dir_dirty: true,
                metadata_unsynced,
                parent_unsynced: created,
            }),
            config: RwLock::new(opts.config),
            hw,
            auto_high_watermark: AtomicBool::new(true),
            end_tx,
            log_start: AtomicI64::new(log_start),
            log_end: AtomicI64::new(log_end),
            flushed: AtomicI64::new(flushed),
            unflushed_messages: AtomicI64::new(0),
            last_flush_ms: AtomicI64::new(now_ms()),
            fsyncs: AtomicU64::new(0),
            local_flush: tokio::sync::Mutex::new(()),
            flusher: Mutex::new(None),
            closed: AtomicBool::new(false),
            frozen: AtomicBool::new(false),
            roll_jitter_ms: jitter,
            producer_id_expiration_ms: opts.producer_id_expiration_ms,
            clean_lock: Mutex::new(()),
            truncations: AtomicU64::new(0),
            checkpoint_stale: AtomicBool::new(checkpoint_stale),
        }))
    }

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

    /// Validate, check producer sequences, assign offsets, write. Does not fsync.
    pub fn append_as_leader(
        &self,
        records: impl Into<Bytes>,
        leader_epoch: i32,
    ) -> Result<AppendResult, LogError> {
        let records: Bytes = records.into();
        self.check_open()?;
        let cfg = self.config.read().clone();
        let now = now_ms();
        let log_append_time = cfg.timestamp_type == TimestampType::LogAppendTime;
        let opts = ValidateOptions {
            max_message_bytes: cfg.max_message_bytes,
            compacted: cfg.compact,
            log_append_time,
            now_ms: now,
            timestamp_before_max_ms: cfg.timestamp_before_max_ms,
            timestamp_after_max_ms: cfg.timestamp_after_max_ms,
            rewrite: cfg.compression != TopicCompression::Producer,
        };
        let mut validated = batch::validate_produce(&records, &opts)?;
        // The topic's compression.type: the rewrite happens before the lock is taken,
        // so compressing one batch never holds up appends to the partition.
        let records = match cfg.compression.rewrite_to(validated.compression()) {
            None => records,
            Some((codec, level)) => {
                let rewritten = codec::recompress_off_runtime(&records, codec, level)?;
                if rewritten.len() > cfg.max_message_bytes {
                    return Err(LogError::TooLarge {
                        size: rewritten.len(),
                        max: cfg.max_message_bytes,
                    });
                }
                metrics::counter!(crate::metrics::LOG_RECOMPRESSED_BATCHES_TOTAL,
                    "from" => codec::name(validated.compression()), "to" => codec::name(codec))
                .increment(1);
                validated = BatchHeader::parse(&rewritten)?;
                Bytes::from(rewritten)
            }
        };
        let mut inner = self.inner.lock();
        self.check_writable()?;
        if let SeqCheck::Duplicate {
            first_offset,
            last_offset,
            timestamp,
        } = inner.producers.check(&validated)?
        {
            return Ok(AppendResult {
                base_offset: first_offset,
                last_offset,
                log_append_time: if log_append_time { timestamp } else { -1 },
                log_start_offset: self.log_start.load(Ordering::Acquire),
                duplicate: true,
            });
        }
        let base = self.log_end.load(Ordering::Acquire);
        let stamp = log_append_time.then_some(now);
        // The request's bytes are written as they came, behind a patched copy of the
        // header: the records are not copied on their way to the page cache.
        let head = batch::stamped_header(&records, base, leader_epoch, stamp)
            .ok_or_else(|| LogError::Corrupt("record batch shorter than its header".into()))?;
        let hdr = BatchHeader::parse(&head)?;
        let last = base + validated.last_offset_delta as i64;
        self.maybe_roll(&mut inner, &cfg, records.len(), last, now)?;
        let active = inner.segments.last_mut().ok_or(LogError::Closed)?;
        active.append_with_header(&head, &records[head.len()..], &hdr)?;
        // The batch is in the log: nothing below may fail the append, or its offsets
        // would be handed out twice.
        self.set_log_end(last + 1);
        inner.producers.update(&hdr);
        match inner.epochs.assign(leader_epoch, base) {
            Ok(true) => tracing::info!(topic = %self.topic, partition = self.partition,
                epoch = leader_epoch, start_offset = base, "new leader epoch"),
            Ok(false) => {}
            // The entry is in memory; the checkpoint is rewritten on the next change.
            Err(e) => tracing::error!(topic = %self.topic, partition = self.partition,
                error = %e, "cannot persist leader-epoch checkpoint"),
        }
        if self.auto_high_watermark.load(Ordering::Acquire) {
            self.hw.send_replace(last + 1);
        }
        drop(inner);
        let unflushed = self
            .unflushed_messages
            .fetch_add(validated.record_count.max(0) as i64, Ordering::AcqRel)
            + validated.record_count.max(0) as i64;
        if unflushed >= cfg.flush_messages {
            self.kick_flush();
        }
        crate::metrics_cache::appended_bytes().increment(records.len() as u64);
        Ok(AppendResult {
            base_offset: base,
            last_offset: last,
            log_append_time: stamp.unwrap_or(-1),
            log_start_offset: self.log_start.load(Ordering::Acquire),
            duplicate: false,
        })
    }

    fn maybe_roll(
        &self,
        inner: &mut Inner,
        cfg: &TopicConfig,
        batch_len: usize,
        last_offset: i64,
        now: i64,
    ) -> Result<(), LogError> {
        let Some(active) = inner.segments.last_mut() else {
            return Err(LogError::Closed);
        };
        if !active.should_roll(cfg, batch_len, last_offset, now, self.roll_jitter_ms) {
            return Ok(());
        }
        active.seal()?;
        let base = active.next_offset();
        // Recovery replays batch headers from the newest snapshot; one per segment keeps
        // that replay to at most one segment.
        if let Err(e) = write_snapshot(&self.dir, &inner.producers) {
            tracing::warn!(topic = %self.topic, partition = self.partition, error = %e,
                "cannot write producer snapshot");
        }
        let seg = Segment::create(&self.dir, base, SegmentOptions::from(cfg), &self.handles)?;
        inner.segments.push(seg);
        inner.dir_dirty = true;
        metrics::counter!(crate::metrics::LOG_SEGMENTS_ROLLED_TOTAL).increment(1);
        tracing::debug!(topic = %self.topic, partition = self.partition, base, "rolled segment");
        Ok(())
    }

    /// Wait until everything up to and including `offset` is fsynced (group commit).
    pub async fn flush_to(&self, offset: i64) -> Result<(), LogError> {
        if offset < self.flushed.load(Ordering::Acquire) {
            return Ok(());
        }
        let me = self.me.upgrade().ok_or(LogError::Closed)?;
        let handle = self.flusher.lock().clone();
        if let Some(h) = handle {
            match h.flush(me.clone(), offset).await {
                Err(LogError::Closed) => {}
                other => return other,
            }
        }
        // No flusher (tests, shutdown): flush here, still one fsync for all who queue.
        let _guard = self.local_flush.lock().await;
        if offset < self.flushed.load(Ordering::Acquire) {
            return Ok(());
        }
        tokio::task::spawn_blocking(move || me.flush_blocking())
            .await
            .map_err(|e| LogError::Io(std::io::Error::other(e.to_string())))??;
        Ok(())
    }

    /// fsync every segment holding unflushed data and advance the recovery point to the
    /// log end as it was when the flush began. Returns the new flushed offset.
    pub fn flush_blocking(&self) -> std::io::Result<i64> {
        let started = std::time::Instant::now();
        let (target, files, dir_dirty) = {
            let mut inner = self.inner.lock();
            let flushed = self.flushed.load(Ordering::Acquire);
            let target = self.log_end.load(Ordering::Acquire);
            let n = inner.segments.len();
            // Sealed segments write and sync their indexes when sealed (a sealed segment
            // below the recovery point is trusted without a rebuild); ones that could not
            // (full disk) are retried here, off the append path. The active segment's
            // indexes need neither: a restart after a crash always recovers it.
            for s in inner.segments[..n.saturating_sub(1)].iter_mut() {
                if s.indexes_unsettled() {
                    let _ = s.settle_indexes();
                }
            }
            // The active segment, plus sealed ones still holding unflushed data.
            let files: Vec<std::sync::Arc<std::fs::File>> = inner
                .segments
                .iter()
                .enumerate()
                .filter(|(i, s)| *i + 1 == n || s.next_offset() > flushed)
                .map(|(_, s)| s.log_handle())
                .collect::<std::io::Result<_>>()?;
            // Small files written without fsyncs when the partition was new are synced
            // with its first flush, so nothing counts as durable before they are.
            let mut files = files;
            let metadata_unsynced = std::mem::take(&mut inner.metadata_unsynced);
            let epochs_unsynced = inner.epochs.take_unsynced();
            if let Some(p) = &epochs_unsynced {
                match std::fs::File::open(p) {
                    Ok(f) => files.push(Arc::new(f)),
                    Err(e) => {
                        inner.epochs.mark_unsynced();
                        inner.metadata_unsynced |= metadata_unsynced;
                        return Err(e);
                    }
                }
            }
            let parent_unsynced = std::mem::take(&mut inner.parent_unsynced);
            let dir_dirty = std::mem::take(&mut inner.dir_dirty)
                || metadata_unsynced
                || epochs_unsynced.is_some()
                || parent_unsynced;
            (
                target,
                files,
                (
                    dir_dirty,
                    metadata_unsynced,
                    epochs_unsynced.is_some(),
                    parent_unsynced,
                ),
            )
        };
        let (dir_dirty, metadata_unsynced, epochs_unsynced, parent_unsynced) = dir_dirty;
        if target <= self.flushed.load(Ordering::Acquire) && !dir_dirty {
            return Ok(target);
        }
        let unflushed_before = self.unflushed_messages.load(Ordering::Acquire);
        let result = (|| {
            for f in &files {
                f.sync_data()?;
            }
            if metadata_unsynced {
                match std::fs::File::open(self.dir.join(PARTITION_METADATA_FILE)) {
                    Ok(f) => f.sync_data()?,
                    // Never written (the write failed): shutdown writes it atomically.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            if dir_dirty {
                std::fs::File::open(&self.dir)?.sync_all()?;
            }
            if parent_unsynced {
                if let Some(parent) = self.dir.parent() {
                    std::fs::File::open(parent)?.sync_all()?;
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            // The directory must be synced again next time.
            let mut inner = self.inner.lock();
            inner.dir_dirty |= dir_dirty;
            inner.metadata_unsynced |= metadata_unsynced;
            inner.parent_unsynced |= parent_unsynced;
            if epochs_unsynced {
                inner.epochs.mark_unsynced();
            }
            return Err(e);
        }
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::metrics::LOG_FLUSHES_TOTAL).increment(1);
        metrics::histogram!(crate::metrics::LOG_PARTITION_FLUSH_DURATION_SECONDS)
            .record(started.elapsed().as_secs_f64());
        self.flushed.fetch_max(target, Ordering::AcqRel);
        self.unflushed_messages
            .fetch_sub(unflushed_before, Ordering::AcqRel);
        self.last_flush_ms.store(now_ms(), Ordering::Release);
        Ok(target)
    }

    /// Ask the directory flusher to flush without waiting (flush.messages / flush.ms).
    pub fn kick_flush(&self) {
        let handle = self.flusher.lock().clone();
        if let (Some(h), Some(me)) = (handle, self.me.upgrade()) {
            h.kick(me);
        }
    }

    /// Whether the background flush policy (flush.ms / flush.messages) wants a flush now.
    pub fn background_flush_due(&self, now: i64) -> bool {
        let cfg = self.config.read();
        let unflushed = self.unflushed_messages.load(Ordering::Acquire);
        if unflushed <= 0 && self.flushed.load(Ordering::Acquire) >= self.log_end_offset() {
            return false;
        }
        unflushed >= cfg.flush_messages
            || now.saturating_sub(self.last_flush_ms.load(Ordering::Acquire)) >= cfg.flush_ms
    }

    /// Whether acks=all appends to this topic wait for an fsync (flush.policy=durable).
    pub fn durable_acks(&self) -> bool {
        self.config.read().flush_policy == FlushPolicy::Durable
    }

    /// Route flushes through a directory flusher (set by the log manager).
    pub fn attach_flusher(&self, handle: Option<FlusherHandle>) {
        *self.flusher.lock() = handle;
    }

    /// Number of fsync rounds this log has done (tests and metrics).
    pub fn fsync_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// Everything below this offset is durable.
    pub fn recovery_point(&self) -> i64 {
        self.flushed.load(Ordering::Acquire)
    }

    /// Whole batches starting at the one containing `offset`, below `max_offset`, up to
    /// `max_bytes` (but at least one batch when `min_one`).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one: bool,
    ) -> Result<ReadResult, LogError> {
        let records = self.read_records(offset, max_bytes, max_offset, min_one)?;
        Ok(ReadResult {
            records: records.into_bytes()?,
        })
    }

    /// As [`read`](Self::read), but large batches stay in their segment file (see
    /// [`Records`]): what Fetch sends.
    pub fn read_records(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one: bool,
    ) -> Result<Records, LogError> {
        let empty = || Ok(Records::empty());
        // Segments are looked at a few at a time: a read moves past a segment only when
        // it holds nothing at or past the offset (compaction can empty whole stretches),
        // and each step re-reads the segment list, which may change in between.
        let mut from_base: Option<i64> = None;
        loop {
            let (views, hint) = {
                let inner = self.inner.lock();
                self.check_open()?;
                let log_start = self.log_start.load(Ordering::Acquire);
                let log_end = self.log_end.load(Ordering::Acquire);
                if offset < log_start || offset > log_end {
                    return Err(LogError::OffsetOutOfRange {
                        offset,
                        log_start,
                        log_end,
                    });
                }
                if offset == log_end || offset >= max_offset {
                    return empty();
                }
                let i = match from_base {
                    None => segment_index(&inner.segments, offset),
                    Some(base) => inner.segments.partition_point(|s| s.base_offset() < base),
                };
                if i >= inner.segments.len() {
                    return empty();
                }
                let hint = match from_base {
                    None => inner.segments[i].position_hint(offset),
                    Some(_) => 0,
                };
                let views: Vec<SegmentView> = inner.segments[i..]
                    .iter()
                    .take(1 + READ_SEGMENTS)
                    .map(Segment::view)
                    .collect();
                (views, hint)
            };
            for (i, view) in views.iter().enumerate() {
                let from = if i == 0 { hint } else { 0 };
                if let Some((_, pos)) = view.find(offset, from)? {
                    return Ok(view.read_records(pos, max_bytes, max_offset, min_one)?);
                }
            }
            match views.last() {
                // Continue after the last segment looked at.
                Some(last) => from_base = Some(last.base_offset + 1),
                None => return empty(),
            }
        }
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

    /// Set the high watermark (replication layer); clamped to the log end.
    pub fn set_high_watermark(&self, hw: i64) {
        let hw = hw.clamp(self.log_start_offset(), self.log_end_offset());
        self.hw.send_if_modified(|cur| {
            let changed = *cur != hw;
            *cur = hw;
            changed
        });
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

    /// The first record with a timestamp >= `timestamp`: (offset, timestamp, epoch).
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64, i32)>, LogError> {
        let (candidates, log_start) = {
            let inner = self.inner.lock();
            self.check_open()?;
            let c: Vec<(SegmentView, u64)> = inner
                .segments
                .iter()
                .filter(|s| s.max_timestamp() >= timestamp)
                .map(|s| (s.view(), s.time_hint(timestamp)))
                .collect();
            (c, self.log_start.load(Ordering::Acquire))
        };
        for (view, hint) in candidates {
            let mut cursor = segment::Cursor::new(&view, hint);
            while let Some((p, pos)) = cursor.next_header()? {
                if p.max_timestamp < timestamp || p.last_offset < log_start {
                    continue;
                }
                let bytes = view.read_batch(pos, p.size)?;
                for (off, ts) in batch::record_timestamps(&bytes)? {
                    if ts >= timestamp && off >= log_start {
                        return Ok(Some((off, ts, p.partition_leader_epoch)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The record with the largest timestamp (ListOffsets MAX_TIMESTAMP): the first record
    /// carrying it, as (offset, timestamp, epoch).
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64, i32)>, LogError> {
        let found = {
            let inner = self.inner.lock();
            self.check_open()?;
            let mut best: Option<&Segment> = None;
            for s in &inner.segments {
                if s.size() > 0 && best.is_none_or(|b| s.max_timestamp() > b.max_timestamp()) {
                    best = Some(s);
                }
            }
            best.map(|s| {
                let off = s.offset_of_max_timestamp();
                (s.view(), s.position_hint(off), off, s.max_timestamp())
            })
        };
        let Some((view, hint, offset, max_ts)) = found else {
            return Ok(None);
        };
        let Some((p, pos)) = view.find(offset, hint)? else {
            return Ok(None);
        };
        let bytes = view.read_batch(pos, p.size)?;
        let records = batch::record_timestamps(&bytes)?;
        let hit = records
            .iter()
            .find(|&&(_, ts)| ts == max_ts)
            .or_else(|| records.iter().max_by_key(|&&(_, ts)| ts));
        Ok(hit.map(|&(off, ts)| (off, ts, p.partition_leader_epoch)))
    }

    /// Follower side of replication: append batches that already carry their offsets
    /// and leader epochs (as fetched from the leader). The first must start at the log
    /// end offset. Returns (first offset, last offset), or `None` for an empty set.
    pub fn append_as_follower(&self, records: &[u8]) -> Result<Option<(i64, i64)>, LogError> {
        self.check_open()?;
        let headers: Vec<(BatchHeader, std::ops::Range<usize>)> =
            batch::batches(records, true).collect::<Result<_, _>>()?;
        if headers.last().is_none_or(|(_, r)| r.end != records.len()) && !records.is_empty() {
            return Err(LogError::Corrupt(
                "trailing bytes after the last batch".into(),
            ));
        }
        let Some(first) = headers.first().map(|(h, _)| h.base_offset) else {
            return Ok(None);
        };
        let cfg = self.config.read().clone();
        let now = now_ms();
        let mut inner = self.inner.lock();
        self.check_writable()?;
        let mut expected = self.log_end.load(Ordering::Acquire);
        if first != expected {
            return Err(LogError::InvalidRecord(format!(
                "follower append at offset {first}, log end is {expected}"
            )));
        }
        let mut last = expected - 1;
        for (hdr, range) in &headers {
            if hdr.base_offset < expected {
                return Err(LogError::InvalidRecord("batch offsets go backwards".into()));
            }
            self.maybe_roll(&mut inner, &cfg, range.len(), hdr.last_offset(), now)?;
            let active = inner.segments.last_mut().ok_or(LogError::Closed)?;
            active.append(&records[range.clone()], hdr)?;
            expected = hdr.last_offset() + 1;
            last = hdr.last_offset();
            self.set_log_end(expected);
            inner.producers.update(hdr);
            if let Err(e) = inner
                .epochs
                .assign(hdr.partition_leader_epoch, hdr.base_offset)
            {
                tracing::error!(topic = %self.topic, partition = self.partition, error = %e,
                    "cannot persist leader-epoch checkpoint");
            }
            self.unflushed_messages
                .fetch_add(hdr.record_count.max(0) as i64, Ordering::AcqRel);
        }
        if self.auto_high_watermark.load(Ordering::Acquire) {
            self.hw.send_replace(expected);
        }
        Ok(Some((first, last)))
    }

    /// Follower truncation (after OffsetForLeaderEpoch): remove every batch at or past
    /// the one holding `offset`; the log then ends at that batch's base offset.
    pub fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        self.check_open()?;
        let mut inner = self.inner.lock();
        self.check_writable()?;
        let log_end = self.log_end.load(Ordering::Acquire);
        let log_start = self.log_start.load(Ordering::Acquire);
        if offset >= log_end {
            return Ok(());
        }
        if offset < log_start {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            });
        }
        while inner.segments.len() > 1
            && inner
                .segments
                .last()
                .is_some_and(|s| s.base_offset() >= offset)
        {
            if let Some(gone) = inner.segments.pop() {
                remove_later(gone.mark_deleted(), 0);
            }
        }
        let active = inner.segments.last_mut().ok_or(LogError::Closed)?;
        let view = active.view();
        if let Some((_, pos)) = view.find(offset, active.position_hint(offset))? {
            active.truncate_to_position(pos)?;
        }
        let new_end = active.next_offset();
        inner.dir_dirty = true;
        self.set_log_end(new_end);
        self.truncations.fetch_add(1, Ordering::AcqRel);
        // Offsets re-appended past the new end are dirty again: a tombstone there must
        // enter the offset map before it may expire.
        let log_dir = self.dir.parent().unwrap_or(&self.dir);
        if super::cleaner::read_checkpoint(log_dir, &self.topic, self.partition) > new_end {
            if let Err(e) =
                super::cleaner::write_checkpoint(log_dir, &self.topic, self.partition, new_end)
            {
                tracing::warn!(topic = %self.topic, partition = self.partition, error = %e,
                    "cannot lower the cleaner checkpoint; the next pass cleans everything");
                self.checkpoint_stale.store(true, Ordering::Release);
            }
        }
        // The log is already cut: the bookkeeping below must follow whatever the disk
        // says. A stale checkpoint is re-truncated to the log end by the next open.
        if let Err(e) = inner.epochs.truncate_from_end(new_end) {
            tracing::warn!(topic = %self.topic, partition = self.partition, error = %e,
                "cannot rewrite leader-epoch checkpoint; will retry");
        }
        inner.producers = load_producer_state(&self.dir, &inner.segments, log_start, new_end)?;
        self.flushed.fetch_min(new_end, Ordering::AcqRel);
        if self.high_watermark() > new_end {
            self.hw.send_replace(new_end);
        }
        tracing::info!(topic = %self.topic, partition = self.partition, from = log_end,
            to = new_end, "log truncated");
        Ok(())
    }

    /// DeleteRecords: move the log start offset up to `offset` (-1: the high watermark)
    /// and drop whole segments below it. Returns the new log start offset.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        self.check_open()?;
        let hw = self.high_watermark();
        let target = if offset == -1 { hw } else { offset };
        if target < 0 || target > hw {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset(),
                log_end: hw,
            });
        }
        let mut inner = self.inner.lock();
        self.check_writable()?;
        if target <= self.log_start.load(Ordering::Acquire) {
            return Ok(self.log_start.load(Ordering::Acquire));
        }
        self.advance_log_start(&mut inner, target, false)?;
        let removable = inner
            .segments
            .windows(2)
            .take_while(|w| w[1].base_offset() <= target)
            .count();
        self.remove_oldest(&mut inner, removable, "delete-records");
        Ok(target)
    }

    /// Move the log start to `start`. The checkpoint is written first, so a start inside
    /// a segment (DeleteRecords) survives a restart; `at_segment_boundary` says the
    /// segments below `start` are about to be removed, which records the start on its
    /// own, so a failed checkpoint write (full disk) is then only logged.
    fn advance_log_start(
        &self,
        inner: &mut Inner,
        start: i64,
        at_segment_boundary: bool,
    ) -> Result<(), LogError> {
        let mut m = checkpoint::Offsets::new();
        m.insert((self.topic.clone(), self.partition), start);
        if let Err(e) = checkpoint::write(&self.dir.join(checkpoint::LOG_START_FILE), &m) {
            if !at_segment_boundary {
                return Err(e.into());
            }
            tracing::warn!(topic = %self.topic, partition = self.partition, error = %e,
                "cannot write log-start checkpoint; the segment files record the start");
        }
        self.log_start.fetch_max(start, Ordering::AcqRel);
        // Right in memory; the next open re-truncates the checkpoint to the log start.
        if let Err(e) = inner.epochs.truncate_from_start(start) {
            tracing::warn!(topic = %self.topic, partition = self.partition, error = %e,
                "cannot rewrite leader-epoch checkpoint; will retry");
        }
        inner.producers.truncate_head(start);
        Ok(())
    }

    /// Drop the `count` oldest segments (never the active one); their files are renamed
    /// to `.deleted` now and removed after `file.delete.delay.ms`.
    fn remove_oldest(&self, inner: &mut Inner, count: usize, reason: &str) {
        let count = count.min(inner.segments.len().saturating_sub(1));
        if count == 0 {
            return;
        }
        let gone: Vec<Segment> = inner.segments.drain(..count).collect();
        inner.dir_dirty = true;
        let mut paths = Vec::new();
        for s in &gone {
            tracing::info!(topic = %self.topic, partition = self.partition,
                base = s.base_offset(), reason, "deleting segment");
            paths.extend(s.mark_deleted());
        }
        let delay = self.config.read().file_delete_delay_ms;
        remove_later(paths, delay);
    }

    /// Retention pass: delete closed segments past retention.ms / retention.bytes (for
    /// `delete` topics) and segments wholly below the log start offset. Returns how many
    /// segments were deleted.
    pub fn apply_retention(&self, now: i64) -> Result<usize, LogError> {
        self.check_open()?;
        let cfg = self.config.read().clone();
        let hw = self.high_watermark();
        let mut inner = self.inner.lock();
        if self.frozen.load(Ordering::Acquire) {
            return Ok(0);
        }
        let expired = inner.producers.expire(now, self.producer_id_expiration_ms);
        if expired > 0 {
            tracing::debug!(topic = %self.topic, partition = self.partition, expired,
                "expired idle producers");
        }
        let log_start = self.log_start.load(Ordering::Acquire);
        let segs: Vec<super::retention::SegmentInfo> = inner
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| super::retention::SegmentInfo {
                size: s.size(),
                largest_timestamp: s.largest_timestamp(),
                end_offset: inner
                    .segments
                    .get(i + 1)
                    .map_or(i64::MAX, |n| n.base_offset()),
            })
            .collect();
        let count = super::retention::deletable(&segs, &cfg, now, hw, log_start);
        if count == 0 {
            return Ok(0);
        }
        let new_start = inner.segments[count].base_offset();
        if new_start > log_start {
            // The segments below `new_start` are removed next, so the files themselves
            // carry the new start: retention must free space even on a full disk.
            self.advance_log_start(&mut inner, new_start, true)?;
        }
        self.remove_oldest(&mut inner, count, "retention");
        metrics::counter!(crate::metrics::LOG_RETENTION_DELETED_SEGMENTS_TOTAL)
            .increment(count as u64);
        Ok(count)
    }

    /// Log compaction pass (`cleanup.policy` includes `compact`), see [`super::cleaner`].
    ///
    /// Runs when the dirty ratio of the cleanable range reaches `min.cleanable.dirty.ratio`
    /// (or the oldest dirty segment is past `max.compaction.lag.ms`). The segments are read
    /// and cleaned without the partition lock (closed segments do not change); the
    /// results are written and fsynced as `.cleaned` files; then, under the lock, and only
    /// if every original is still there untouched, they become `.swap` files (the commit
    /// point), replace the originals and are reopened with rebuilt indexes. Readers hold
    /// views of the original files and never see a mix. Finally the cleaner checkpoint
    /// records where the next pass's dirty section starts.
    pub fn clean(&self, now: i64) -> Result<CleanStats, LogError> {
        use super::cleaner::{self, Cleaner, SegmentSpan, CLEANED_SUFFIX};
        self.check_open()?;
        let cfg = self.config.read().clone();
        if !cfg.compact {
            return Ok(CleanStats::default());
        }
        let _pass = self.clean_lock.lock();
        if self.frozen.load(Ordering::Acquire) {
            return Ok(CleanStats::default());
        }
        let log_dir = self.dir.parent().unwrap_or(&self.dir).to_path_buf();
        let checkpoint = if self.checkpoint_stale.load(Ordering::Acquire) {
            0
        } else {
            cleaner::read_checkpoint(&log_dir, &self.topic, self.partition)
        };
        let hw = self.high_watermark();
        let (spans, views, generation) = {
            let inner = self.inner.lock();
            let spans: Vec<SegmentSpan> = inner
                .segments
                .iter()
                .enumerate()
                .map(|(i, s)| SegmentSpan {
                    base_offset: s.base_offset(),
                    end_offset: inner
                        .segments
                        .get(i + 1)
                        .map_or(i64::MAX, |n| n.base_offset()),
                    size: s.size(),
                    largest_timestamp: s.largest_timestamp(),
                })
                .collect();
            let views: Vec<SegmentView> = inner.segments.iter().map(Segment::view).collect();
            (spans, views, self.truncations.load(Ordering::Acquire))
        };
        let Some(plan) = cleaner::plan(&spans, checkpoint, hw, now, &cfg) else {
            return Ok(CleanStats::default());
        };
        // A pass holds one segment (and its cleaned form) in memory at a time.
        if let Some(big) = spans[..plan.count]
            .iter()
            .find(|s| s.size > MAX_CLEANABLE_SEGMENT_BYTES)
        {
            tracing::warn!(topic = %self.topic, partition = self.partition,
                base = big.base_offset, size = big.size,
                "segment too large to compact in memory; set segment.bytes lower");
            return Ok(CleanStats::default());
        }
        let read = |v: &SegmentView| v.read_batch(0, v.size);
        let mut pass = Cleaner::new(plan.first_dirty);
        for v in &views[..plan.count] {
            pass.scan(&read(v)?)?;
        }
        pass.finish_scan();
        // Open transactions stay dirty (see `Cleaner::first_undecided`).
        let next_dirty = pass
            .first_undecided()
            .map_or(plan.clean_end, |o| o.min(plan.clean_end));
        let mut stats = CleanStats {
            ran: true,
            bytes_read: plan.total_bytes,
            clean_end: next_dirty,
            ..CleanStats::default()
        };
        let mut staged: Vec<(i64, SegmentView)> = Vec::new();
        let discard = |staged: &[(i64, SegmentView)]| {
            for (b, _) in staged {
                let _ = std::fs::remove_file(cleaner::staged_path(&self.dir, *b, CLEANED_SUFFIX));
            }
        };
        let write_all = (|| -> Result<(), LogError> {
            for (span, view) in spans.iter().zip(&views).take(plan.count) {
                let drop_tombstones =
                    now.saturating_sub(span.largest_timestamp) > cfg.delete_retention_ms;
                let out = pass.clean_segment(&read(view)?, drop_tombstones)?;
                stats.records_removed += out.records_read.saturating_sub(out.records_kept);
                stats.bytes_after += out.bytes.len() as u64;
                if out.unchanged {
                    continue;
                }
                let path = cleaner::staged_path(&self.dir, span.base_offset, CLEANED_SUFFIX);
                staged.push((span.base_offset, view.clone()));
                let mut f = std::fs::File::create(&path)?;
                std::io::Write::write_all(&mut f, &out.bytes)?;
                f.sync_all()?;
            }
            Ok(())
        })();
        if let Err(e) = write_all {
            discard(&staged);
            return Err(e);
        }
        if !staged.is_empty() {
            let mut inner = self.inner.lock();
            // Retention, DeleteRecords or a truncation may have changed the range meanwhile:
            // then this pass is stale and its work is thrown away.
            let n = inner.segments.len();
            let positions: Option<Vec<usize>> = staged
                .iter()
                .map(|(base, view)| {
                    let i = inner
                        .segments
                        .iter()
                        .position(|s| s.base_offset() == *base)?;
                    let cur = inner.segments[i].view();
                    (i + 1 < n && cur.size == view.size && Arc::ptr_eq(&cur.file, &view.file))
                        .then_some(i)
                })
                .collect();
            let unchanged = self.truncations.load(Ordering::Acquire) == generation;
            let (Some(positions), Ok(()), true) = (positions, self.check_open(), unchanged) else {
                drop(inner);
                discard(&staged);
                return Ok(CleanStats::default());
            };
            let bases: Vec<i64> = staged.iter().map(|(b, _)| *b).collect();
            if let Err(e) = cleaner::commit_cleaned(&self.dir, &bases) {
                // Some `.cleaned` file is still there, so a restart undoes the pass too.
                for &b in &bases {
                    let _ =
                        std::fs::remove_file(cleaner::staged_path(&self.dir, b, CLEANED_SUFFIX));
                    let _ = std::fs::remove_file(cleaner::staged_path(
                        &self.dir,
                        b,
                        cleaner::SWAP_SUFFIX,
                    ));
                }
                return Err(e.into());
            }
            // Committed. Should the replace or the reopen fail, the disk or memory could
            // mix cleaned and original segments, so the log stops serving at once; the
            // next open finishes the swap from the `.swap` files.
            let opts = SegmentOptions::from(&cfg);
            // The originals' names are about to name the cleaned files: views taken
            // before keep reading the originals.
            for &i in &positions {
                inner.segments[i].retire();
            }
            let swapped = cleaner::replace_with_swaps(&self.dir, &bases)
                .map_err(LogError::from)
                .and_then(|()| {
                    let mut reopened = Vec::with_capacity(bases.len());
                    for &base in &bases {
                        reopened.push(Segment::open(&self.dir, base, opts, true, &self.handles)?.0);
                    }
                    Ok(reopened)
                });
            match swapped {
                Ok(reopened) => {
                    for (&i, seg) in positions.iter().zip(reopened) {
                        inner.segments[i] = seg;
                    }
                }
                Err(e) => {
                    tracing::error!(topic = %self.topic, partition = self.partition, error = %e,
                        "cleaner swap failed; the partition is offline until a restart finishes it");
                    drop(inner);
                    self.close();
                    return Err(e);
                }
            }
            stats.segments_rewritten = bases.len();
        }
        // Under the lock, so no truncation slips between the check and the write.
        let inner = self.inner.lock();
        if self.truncations.load(Ordering::Acquire) == generation {
            match cleaner::write_checkpoint(&log_dir, &self.topic, self.partition, next_dirty) {
                Ok(()) => self.checkpoint_stale.store(false, Ordering::Release),
                // The next pass redoes this one's work; nothing is lost.
                Err(e) => tracing::warn!(topic = %self.topic, partition = self.partition,
                    error = %e, "cannot write cleaner checkpoint"),
            }
        }
        drop(inner);
        tracing::debug!(topic = %self.topic, partition = self.partition, ?stats, "cleaned");
        Ok(stats)
    }

    /// Stop taking appends and reads (topic deleted).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        *self.flusher.lock() = None;
    }

    /// Clean shutdown of this log: flush, seal the active segment (gives back
    /// preallocated space) and flush again so the files are exactly what a restart reads.
    ///
    /// An error means the next start must not trust this log without recovery (the data
    /// is not durable, or a segment file does not end with its last batch). Everything
    /// else is best effort, because a full disk must not turn a clean shutdown into a
    /// full recovery: index files that cannot be completed are removed (the next open
    /// rebuilds them from the log), a missing producer snapshot only costs a longer
    /// replay, and the leader-epoch checkpoint was written when each epoch began.
    pub fn shutdown(&self) -> Result<(), LogError> {
        self.flush_blocking()?;
        {
            let mut inner = self.inner.lock();
            let n = inner.segments.len();
            let mut dir_changed = false;
            for (i, seg) in inner.segments.iter_mut().enumerate() {
                if i + 1 == n {
                    seg.seal()?;
                    seg.sync_log()?;
                }
                if !seg.indexes_unsettled() {
                    continue;
                }
                match seg.settle_indexes() {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(topic = %self.topic, partition = self.partition,
                            base = seg.base_offset(), error = %e,
                            "cannot complete index files; removing them for a rebuild");
                        seg.remove_index_files()?;
                        dir_changed = true;
                    }
                }
            }
            if dir_changed {
                std::fs::File::open(&self.dir)?.sync_all()?;
            }
            // A log with no producer state and nothing to replay needs no snapshot (a
            // broker with thousands of idle partitions would spend two fsyncs on each).
            let nothing_to_replay =
                inner.producers.is_empty() && self.log_end_offset() == self.log_start_offset();
            if !nothing_to_replay {
                if let Err(e) = write_snapshot(&self.dir, &inner.producers) {
                    tracing::warn!(topic = %self.topic, partition = self.partition, error = %e,
                        "cannot write producer snapshot at shutdown");
                }
            }
            if let Err(e) = inner.epochs.persist_if_dirty() {
                tracing::warn!(topic = %self.topic, partition = self.partition, error = %e,
                    "cannot rewrite leader-epoch checkpoint at shutdown");
            }
            let id = self.topic_id();
            if !id.is_nil() && read_partition_metadata(&self.dir) != Some(id) {
                if let Err(e) = write_partition_metadata(&self.dir, id) {
                    tracing::warn!(topic = %self.topic, partition = self.partition, error = %e,
                        "cannot write partition.metadata at shutdown");
                }
            }
        }
        self.close();
        Ok(())
    }
}

/// Index of the segment holding `offset`: the last one whose base offset is <= it.
fn segment_index(segments: &[Segment], offset: i64) -> usize {
    segments
        .partition_point(|s| s.base_offset() <= offset)
        .saturating_sub(1)
}

fn list_segments(dir: &Path) -> std::io::Result<Vec<i64>> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = segment::parse_log_name(name) {
            bases.push(base);
        } else if name.ends_with(".deleted") || name.ends_with(".tmp") || name.ends_with(".swap") {
            // Leftovers of a run that died before finishing a delete or a rewrite.
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(bases)
}

/// `<offset, 20 digits>.snapshot` files in `dir`, newest first.
fn list_snapshots(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut out: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let stem = name.to_str()?.strip_suffix(".snapshot")?;
            if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((stem.parse().ok()?, e.path()))
        })
        .collect();
    out.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
    out
}

/// Write the producer state as `<end offset>.snapshot` and drop old snapshots.
fn write_snapshot(dir: &Path, producers: &ProducerStateManager) -> std::io::Result<()> {
    let path = dir.join(segment::file_name(producers.end_offset(), "snapshot"));
    epoch::write_atomically(&path, &producers.encode_snapshot())?;
    for (_, old) in list_snapshots(dir).into_iter().skip(SNAPSHOTS_KEPT) {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

/// Rebuild the producer state: the newest readable snapshot at or below the log end, then
/// the headers of every batch after it. Snapshots past the log end (their batches were
/// truncated away) are deleted.
fn load_producer_state(
    dir: &Path,
    segments: &[Segment],
    log_start: i64,
    log_end: i64,
) -> Result<ProducerStateManager, LogError> {
    let mut state = ProducerStateManager::new();
    let mut from = log_start;
    for (offset, path) in list_snapshots(dir) {
        if offset > log_end || offset < log_start {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        match std::fs::read(&path)
            .map_err(LogError::from)
            .and_then(|b| ProducerStateManager::decode_snapshot(&b))
        {
            Ok(s) => {
                from = s.end_offset().max(log_start);
                state = s;
                break;
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "producer snapshot unreadable");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let first = segment_index(segments, from);
    for seg in &segments[first..] {
        if seg.next_offset() <= from {
            continue;
        }
        let view = seg.view();
        let mut cursor = segment::Cursor::new(&view, seg.position_hint(from));
        while let Some((p, _)) = cursor.next_header()? {
            if p.last_offset >= from {
                state.update(&cursor.full_header()?);
            }
        }
    }
    state.truncate_head(log_start);
    Ok(state)
}

fn remove_segment_files(dir: &Path, base: i64) {
    for ext in ["log", "index", "timeindex"] {
        let _ = std::fs::remove_file(dir.join(segment::file_name(base, ext)));
    }
}

/// Remove files after `delay_ms` (on the runtime when there is one).
fn remove_later(paths: Vec<PathBuf>, delay_ms: i64) {
    let remove = move |paths: Vec<PathBuf>| {
        for p in paths {
            if let Err(e) = std::fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(file = %p.display(), error = %e, "cannot remove deleted file");
                }
            }
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) if delay_ms > 0 => {
            rt.spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms as u64)).await;
                let _ = tokio::task::spawn_blocking(move || remove(paths)).await;
            });
        }
        _ => remove(paths),
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A topic id as Kafka prints it: URL-safe base64 of the 16 bytes, no padding.
pub fn topic_id_to_string(id: Uuid) -> String {
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Parse a topic id written as Kafka's base64 or as a hyphenated UUID.
pub fn parse_topic_id(s: &str) -> Option<Uuid> {
    if let Ok(u) = Uuid::parse_str(s) {
        return Some(u);
    }
    if s.len() != 22 {
        return None;
    }
    let mut bits: u128 = 0;
    for (i, c) in s.bytes().enumerate() {
        let v = B64.iter().position(|&b| b == c)? as u128;
        // 22 characters carry 132 bits: the last character holds 2 bits and 4 padding.
        bits = if i < 21 {
            (bits << 6) | v
        } else {
            (bits << 2) | (v >> 4)
        };
    }
    Some(Uuid::from_u128(bits))
}

fn read_partition_metadata(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA_FILE)).ok()?;
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("topic_id:"))
        .map(str::trim)?;
    parse_topic_id(id)
}

fn partition_metadata_text(id: Uuid) -> String {
    format!("version: 0\ntopic_id: {}\n", topic_id_to_string(id))
}

fn write_partition_metadata(dir: &Path, id: Uuid) -> std::io::Result<()> {
    epoch::write_atomically(
        &dir.join(PARTITION_METADATA_FILE),
        partition_metadata_text(id).as_bytes(),
    )
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
        let (handle, flusher) = super::super::flusher::channel();
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

//! Appends: the leader's (validate, rewrite to the topic's codec, check producer
//! sequences, assign offsets, write the request's bytes behind a patched header) and the
//! follower's (batches that already carry their offsets), with segment rolls.

use super::*;
use crate::log::batch::control::TxnMarker;

impl PartitionLog {
    /// Validate, check producer sequences, assign offsets, write. Does not fsync.
    pub fn append_as_leader(
        &self,
        records: impl Into<Bytes>,
        leader_epoch: i32,
    ) -> Result<AppendResult, LogError> {
        self.append_leader(records.into(), leader_epoch, false)
    }

    /// A coordinator's own append (the group coordinator's transactional offset
    /// commits): as [`Self::append_as_leader`], but its batches carry no sequence, so
    /// only the producer epoch is checked (Kafka's append origin COORDINATOR).
    pub fn append_as_coordinator(
        &self,
        records: impl Into<Bytes>,
        leader_epoch: i32,
    ) -> Result<AppendResult, LogError> {
        self.append_leader(records.into(), leader_epoch, true)
    }

    fn append_leader(
        &self,
        records: Bytes,
        leader_epoch: i32,
        coordinator: bool,
    ) -> Result<AppendResult, LogError> {
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
        let check = if coordinator {
            inner.producers.check_epoch(&validated)?;
            SeqCheck::Append
        } else {
            inner.producers.check(&validated)?
        };
        if let SeqCheck::Duplicate {
            first_offset,
            last_offset,
            timestamp,
        } = check
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
        if hdr.is_transactional() {
            self.note_unstable(&inner.producers);
        }
        self.appended_as_leader(&mut inner, leader_epoch, base, last);
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

    /// A leader's bookkeeping after a batch at `[base, last]` is in the log: the leader
    /// epoch's start and, on a single node, the high watermark.
    fn appended_as_leader(&self, inner: &mut Inner, leader_epoch: i32, base: i64, last: i64) {
        match inner.epochs.assign(leader_epoch, base) {
            Ok(true) => tracing::info!(topic = %self.topic, partition = self.partition,
                epoch = leader_epoch, start_offset = base, "new leader epoch"),
            Ok(false) => {}
            // The entry is in memory; the checkpoint is rewritten on the next change.
            Err(e) => tracing::error!(topic = %self.topic, partition = self.partition,
                error = %e, "cannot persist leader-epoch checkpoint"),
        }
        if self.auto_high_watermark.load(Ordering::Acquire) {
            self.advance_auto_hw(inner, last + 1);
        }
    }

    /// Single node: the high watermark follows the log end (markers below it count as
    /// replicated at once).
    fn advance_auto_hw(&self, inner: &mut Inner, hw: i64) {
        if self.first_unstable.load(Ordering::Acquire) != i64::MAX {
            inner.producers.on_high_watermark(hw);
            self.note_unstable(&inner.producers);
        }
        self.hw.send_replace(hw);
    }

    /// Write a transaction marker (COMMIT or ABORT) for `producer_id` as the leader in
    /// `leader_epoch`: Kafka's `appendAsLeader` with origin COORDINATOR. The producer's
    /// open transaction ends; an aborted one enters the segment's transaction index. A
    /// marker of an older producer epoch or an older coordinator is refused.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: TxnMarker,
        leader_epoch: i32,
    ) -> Result<AppendResult, LogError> {
        self.check_open()?;
        let cfg = self.config.read().clone();
        let now = now_ms();
        let records = batch::control::marker_batch(producer_id, producer_epoch, marker, now)?;
        let mut inner = self.inner.lock();
        self.check_writable()?;
        inner
            .producers
            .check_marker(producer_id, producer_epoch, &marker)?;
        let base = self.log_end.load(Ordering::Acquire);
        let stamp = (cfg.timestamp_type == TimestampType::LogAppendTime).then_some(now);
        let head = batch::stamped_header(&records, base, leader_epoch, stamp)
            .ok_or_else(|| LogError::Corrupt("record batch shorter than its header".into()))?;
        let hdr = BatchHeader::parse(&head)?;
        self.maybe_roll(&mut inner, &cfg, records.len(), base, now)?;
        let active = inner.segments.last_mut().ok_or(LogError::Closed)?;
        active.append_with_header(&head, &records[head.len()..], &hdr)?;
        self.set_log_end(base + 1);
        let hw = self.high_watermark();
        if let Some(done) = inner.producers.complete(&hdr, &marker, hw) {
            self.index_aborted(&mut inner, &done);
        }
        self.note_unstable(&inner.producers);
        self.appended_as_leader(&mut inner, leader_epoch, base, base);
        drop(inner);
        Ok(AppendResult {
            base_offset: base,
            last_offset: base,
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
            if hdr.is_control() {
                self.follow_control_batch(&mut inner, hdr, &records[range.clone()]);
            } else {
                inner.producers.update(hdr);
                if hdr.is_transactional() {
                    self.note_unstable(&inner.producers);
                }
            }
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
            self.advance_auto_hw(&mut inner, expected);
        }
        Ok(Some((first, last)))
    }

    /// An aborted transaction whose marker was just appended enters the active
    /// segment's transaction index.
    fn index_aborted(&self, inner: &mut Inner, done: &CompletedTxn) {
        if !done.aborted {
            return;
        }
        if let Some(active) = inner.segments.last_mut() {
            active.push_aborted(aborted_entry(done));
            self.has_aborted.store(true, Ordering::Release);
        }
    }

    /// A control batch copied from the leader: a transaction marker ends the producer's
    /// transaction here as it did there (the leader checked it). One that does not parse
    /// ends nothing, as for a consumer.
    fn follow_control_batch(&self, inner: &mut Inner, hdr: &BatchHeader, bytes: &[u8]) {
        match batch::control::parse_marker(bytes) {
            Ok((_, marker)) => {
                let hw = self.high_watermark();
                if let Some(done) = inner.producers.complete(hdr, &marker, hw) {
                    self.index_aborted(inner, &done);
                }
                self.note_unstable(&inner.producers);
            }
            Err(e) => {
                tracing::warn!(topic = %self.topic, partition = self.partition,
                    offset = hdr.base_offset, error = %e, "control batch is not a transaction marker");
                inner.producers.update(hdr);
            }
        }
    }
}

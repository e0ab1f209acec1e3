//! Appends: the leader's (validate, rewrite to the topic's codec, check producer
//! sequences, assign offsets, write the request's bytes behind a patched header) and the
//! follower's (batches that already carry their offsets), with segment rolls.

use super::*;

impl PartitionLog {
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
}

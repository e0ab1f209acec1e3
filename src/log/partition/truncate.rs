//! Removing records: follower truncation to a divergence point, DeleteRecords moving the
//! log start, and retention by time and size.

use super::*;

impl PartitionLog {
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
        if crate::log::cleaner::read_checkpoint(log_dir, &self.topic, self.partition) > new_end {
            if let Err(e) =
                crate::log::cleaner::write_checkpoint(log_dir, &self.topic, self.partition, new_end)
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
        let hw = self.high_watermark().min(new_end);
        let inner = &mut *inner;
        inner.producers = load_producer_state(
            &self.dir,
            &mut inner.segments,
            log_start,
            new_end,
            new_end,
            hw,
        )?;
        self.note_unstable(&inner.producers);
        self.note_aborted(&inner.segments);
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
        let segs: Vec<crate::log::retention::SegmentInfo> = inner
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| crate::log::retention::SegmentInfo {
                size: s.size(),
                largest_timestamp: s.largest_timestamp(),
                end_offset: inner
                    .segments
                    .get(i + 1)
                    .map_or(i64::MAX, |n| n.base_offset()),
            })
            .collect();
        let count = crate::log::retention::deletable(&segs, &cfg, now, hw, log_start);
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
}

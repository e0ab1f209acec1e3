//! Compaction of this log: which segments a pass cleans, the rewrite through `.cleaned` /
//! `.swap` files, and swapping the result in.

use super::*;

impl PartitionLog {
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
        use crate::log::cleaner::{self, Cleaner, SegmentSpan, CLEANED_SUFFIX};
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
}

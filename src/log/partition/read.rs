//! Reads: batches from an offset (large ones left in their segment file for sendfile),
//! search by timestamp and the max timestamp, without holding the append lock while files
//! are read.

use super::*;

impl PartitionLog {
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
}

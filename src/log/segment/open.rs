//! Creating a segment, opening an existing one and recovering it: the file re-validated
//! batch by batch, a torn or corrupt tail truncated, and both indexes rebuilt when they
//! cannot be trusted.

use super::*;

impl Segment {
    /// Create a new, empty segment (replacing stale files of the same name).
    pub fn create(
        dir: &Path,
        base_offset: i64,
        opts: SegmentOptions,
        handles: &Arc<HandleCache>,
    ) -> io::Result<Segment> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let create = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&log_path)
        };
        let log = match create() {
            // Out of descriptors: cached segment files give way to a new segment.
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) && handles.shed() > 0 => create(),
            other => other,
        }?;
        if opts.preallocate {
            preallocate(&log, opts.segment_bytes)?;
        }
        // Stale index files of the same name must never be read for this segment: they
        // go now (which frees space). The new indexes are written at the first seal,
        // flush or shutdown; until then a restart finds none and rebuilds them from the
        // log, as it does for any segment it recovers.
        for ext in ["index", "timeindex", "txnindex"] {
            let _ = std::fs::remove_file(dir.join(file_name(base_offset, ext)));
        }
        let offset_index = OffsetIndex::empty(
            &dir.join(file_name(base_offset, "index")),
            base_offset,
            opts.segment_index_bytes,
        );
        let time_index = TimeIndex::empty(
            &dir.join(file_name(base_offset, "timeindex")),
            base_offset,
            opts.segment_index_bytes,
        );
        let txn_index = TxnIndex::empty(&dir.join(file_name(base_offset, "txnindex")));
        Ok(Segment {
            base_offset,
            log: SegmentFile::new(handles, &log_path, log)?,
            log_path,
            size: 0,
            offset_index,
            time_index,
            txn_index,
            opts,
            bytes_since_index: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            rolling_timestamp: None,
            created_ms: now_ms(),
            index_warned: false,
        })
    }

    /// Open an existing segment. With `recover` (it lies past the recovery point) every
    /// batch is re-validated and a bad tail truncated; otherwise the stored indexes are
    /// used when consistent and rebuilt when missing or not.
    ///
    /// Needs no write: rebuilt indexes live in memory until their files can be written,
    /// and a tail that cannot be cut is kept out of reach (see [`Segment::recover`]).
    pub fn open(
        dir: &Path,
        base_offset: i64,
        opts: SegmentOptions,
        recover: bool,
        handles: &Arc<HandleCache>,
    ) -> io::Result<(Segment, RecoveryOutcome)> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let log = SegmentFile::open_path(&log_path, handles)?;
        let size = log.metadata()?.len();
        let created_ms = log
            .metadata()?
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or_else(now_ms, |d| d.as_millis() as i64);
        let index_path = dir.join(file_name(base_offset, "index"));
        let time_path = dir.join(file_name(base_offset, "timeindex"));
        let index_existed = index_path.exists() && time_path.exists();
        let offset_index =
            OffsetIndex::open(&index_path, base_offset, opts.segment_index_bytes, size);
        let time_index =
            TimeIndex::open(&time_path, base_offset, opts.segment_index_bytes, i64::MAX);
        let must_rebuild =
            recover || !index_existed || offset_index.is_err() || time_index.is_err();
        // An index that cannot be read (or created: that may need space) or does not fit
        // its segment is rebuilt in memory from the log; its file is replaced later.
        let offset_index = offset_index.unwrap_or_else(|e| {
            tracing::warn!(file = %index_path.display(), error = %e, "offset index unusable; rebuilding");
            OffsetIndex::empty(&index_path, base_offset, opts.segment_index_bytes)
        });
        let time_index = time_index.unwrap_or_else(|e| {
            tracing::warn!(file = %time_path.display(), error = %e, "time index unusable; rebuilding");
            TimeIndex::empty(&time_path, base_offset, opts.segment_index_bytes)
        });
        // The aborted-transaction index is not rebuilt here: that needs the transactions'
        // first offsets, which may lie in earlier segments (the partition log replays
        // producer state for it when this reports it lost).
        let txn_path = dir.join(file_name(base_offset, "txnindex"));
        let (txn_index, mut txn_index_lost) = match TxnIndex::open(&txn_path, base_offset, i64::MAX)
        {
            Ok(t) => (t, false),
            Err(e) => {
                tracing::warn!(file = %txn_path.display(), error = %e,
                        "transaction index unusable; rebuilding");
                (TxnIndex::empty(&txn_path), true)
            }
        };
        let mut seg = Segment {
            base_offset,
            log: SegmentFile::new(handles, &log_path, log)?,
            log_path,
            size,
            offset_index,
            time_index,
            txn_index,
            opts,
            bytes_since_index: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            rolling_timestamp: None,
            created_ms,
            index_warned: false,
        };
        let mut outcome = if must_rebuild {
            seg.recover()?
        } else {
            seg.load_tail()?;
            RecoveryOutcome::default()
        };
        if seg
            .txn_index
            .entries()
            .last()
            .is_some_and(|e| e.last_offset >= seg.next_offset)
        {
            seg.txn_index.truncate_to(seg.base_offset);
            txn_index_lost = true;
        }
        outcome.txn_index_lost = txn_index_lost;
        Ok((seg, outcome))
    }

    /// Re-validate every batch, truncate at the first bad one and rebuild the indexes.
    ///
    /// Writes are best effort: the indexes are rebuilt in memory whatever their files
    /// allow, and a tail that cannot be cut stays on disk past `size`, where nothing reads
    /// it, appends overwrite it and [`seal`](Self::seal) cuts it later.
    pub fn recover(&mut self) -> io::Result<RecoveryOutcome> {
        self.offset_index.reset();
        self.time_index.reset();
        self.index_warned = false;
        self.bytes_since_index = 0;
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = self.base_offset;
        self.rolling_timestamp = None;
        self.size = 0;
        let log = self.log()?;
        let file_len = log.metadata()?.len();
        let mut pos = 0u64;
        let mut want = RECOVERY_CHUNK;
        let mut buf = Vec::new();
        'chunks: while pos < file_len {
            let len = (want as u64).min(file_len - pos) as usize;
            buf.resize(len, 0);
            log.read_exact_at(&mut buf, pos)?;
            let mut consumed = 0usize;
            for item in batch::batches(&buf, true) {
                let Ok((hdr, range)) = item else { break };
                if hdr.base_offset < self.next_offset || range.start != consumed {
                    break;
                }
                self.account(&hdr, pos + range.start as u64, range.len() as u64);
                consumed = range.end;
            }
            want = RECOVERY_CHUNK;
            if consumed == buf.len() {
                pos += consumed as u64;
                continue;
            }
            // A batch cut by the end of this chunk is read again whole.
            let rest = &buf[consumed..];
            let unread = file_len - pos - buf.len() as u64;
            if unread > 0 {
                if rest.len() < LOG_OVERHEAD {
                    pos += consumed as u64;
                    continue 'chunks;
                }
                let declared = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
                let total = LOG_OVERHEAD as u64 + declared.max(0) as u64;
                if total > rest.len() as u64 && total <= rest.len() as u64 + unread {
                    pos += consumed as u64;
                    want = total as usize;
                    continue 'chunks;
                }
            }
            pos += consumed as u64;
            break;
        }
        let valid_end = pos;
        let mut outcome = RecoveryOutcome::default();
        if valid_end < file_len {
            outcome.truncated_bytes = file_len - valid_end;
            outcome.zero_tail = self.is_zero_tail(valid_end, file_len)?;
            if outcome.zero_tail {
                tracing::debug!(file = %self.log_path.display(), position = valid_end,
                    "trimming preallocated tail");
            } else {
                tracing::warn!(file = %self.log_path.display(), position = valid_end,
                    bytes = outcome.truncated_bytes, "truncating torn or corrupt tail");
            }
            if let Err(e) = log.set_len(valid_end) {
                tracing::warn!(file = %self.log_path.display(), error = %e,
                    "cannot cut the tail now; it stays unread until it can be");
            }
        }
        self.size = valid_end;
        Ok(outcome)
    }

    pub(super) fn is_zero_tail(&self, from: u64, to: u64) -> io::Result<bool> {
        let log = self.log()?;
        let mut buf = vec![0u8; RECOVERY_CHUNK];
        let mut pos = from;
        while pos < to {
            let n = ((to - pos) as usize).min(buf.len());
            log.read_exact_at(&mut buf[..n], pos)?;
            if buf[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
            pos += n as u64;
        }
        Ok(true)
    }

    /// For a segment trusted without recovery: find the next offset and the largest
    /// timestamp from the index tails and the batches after the last index entry.
    pub(super) fn load_tail(&mut self) -> io::Result<()> {
        if let Some((ts, off)) = self.time_index.last() {
            self.max_timestamp = ts;
            self.offset_of_max_timestamp = off;
        }
        let (_, start) = self.offset_index.lookup(i64::MAX);
        let view = self.view();
        let mut cursor = Cursor::new(&view, start);
        let mut end = start;
        while let Some((p, pos)) = cursor.next_header()? {
            if p.base_offset < self.next_offset && pos != 0 {
                break;
            }
            if self.rolling_timestamp.is_none() && pos == 0 {
                self.rolling_timestamp = (p.max_timestamp >= 0).then_some(p.max_timestamp);
            }
            self.next_offset = p.last_offset + 1;
            if p.max_timestamp > self.max_timestamp {
                self.max_timestamp = p.max_timestamp;
                self.offset_of_max_timestamp = p.last_offset;
            }
            end = pos + p.size;
        }
        if self.rolling_timestamp.is_none() && self.size > 0 {
            let first = read_at(&*self.log()?, 0, HEADER_LEN.min(self.size as usize))?;
            self.rolling_timestamp = peek(&first).map(|p| p.max_timestamp).filter(|&t| t >= 0);
        }
        if end < self.size {
            // Only a trimmed preallocated file or damage can end in a non-batch; either
            // way nothing past the last whole batch may be served.
            tracing::warn!(file = %self.log_path.display(), position = end,
                "segment ends in a partial batch; truncating");
            if let Err(e) = self.log()?.set_len(end) {
                tracing::warn!(file = %self.log_path.display(), error = %e,
                    "cannot cut the tail now; it stays unread until it can be");
            }
            self.size = end;
            self.offset_index.truncate_to_position(end);
            self.time_index.truncate_to_offset(self.next_offset);
        }
        Ok(())
    }

    /// Index bookkeeping for a batch now stored at `pos` (Kafka's LogSegment.append).
    /// Never fails: an index entry that cannot be written stays in memory.
    pub(super) fn account(&mut self, hdr: &BatchHeader, pos: u64, len: u64) {
        if self.rolling_timestamp.is_none() {
            self.rolling_timestamp = Some(if hdr.max_timestamp >= 0 {
                hdr.max_timestamp
            } else {
                self.created_ms
            });
        }
        if hdr.max_timestamp > self.max_timestamp {
            self.max_timestamp = hdr.max_timestamp;
            self.offset_of_max_timestamp = hdr.last_offset();
        }
        if self.bytes_since_index > self.opts.index_interval_bytes {
            self.offset_index.append(hdr.last_offset(), pos);
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += len;
        self.next_offset = hdr.last_offset() + 1;
    }
}

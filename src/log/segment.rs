//! One log segment: the append-only `<base offset>.log` file and its two indexes.
//!
//! A segment owns its files and knows its valid size, next offset and largest timestamp.
//! Appends are one positioned write of a whole batch; a failed write (full disk) is cut
//! back so no torn batch is ever visible. Recovery re-validates the file batch by batch
//! (lengths and CRC through [`batch::batches`]), truncates at the first torn or corrupt
//! batch and rebuilds both indexes. Readers work on a [`SegmentView`]: a snapshot of the
//! file and the size taken under the partition lock, read after the lock is released, so
//! reads never wait for appends.
//!
//! The `.log` file is reached through a [`SegmentFile`], which holds a descriptor only
//! while the broker-wide [`HandleCache`] lets it and reopens the file when needed, and the
//! indexes keep none at all: a segment costs no descriptor of its own. The indexes are
//! written and fsynced when the segment is sealed, so a sealed segment trusted without
//! recovery after a crash never meets an index that lags it (a lagging time index would
//! understate its largest timestamp, and retention could delete it early).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};

use super::batch::{self, BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use super::handles::{HandleCache, SegmentFile};
use super::index::{OffsetIndex, TimeIndex};
use super::records::{data_records, Records, FILE_SEND_MIN};
use crate::config::TopicConfig;
use crate::protocol::file_chunk::{FileChunk, MAX_CHUNK};

/// How much of a segment recovery reads at once.
const RECOVERY_CHUNK: usize = 1 << 20;
/// How much a header scan reads at once: a few batch headers, or one index interval.
const SCAN_CHUNK: usize = 16 << 10;

/// `<base offset, 20 digits>.<ext>`, Kafka's segment file name.
pub fn file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// The base offset of a `.log` file name, if it is one.
pub fn parse_log_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok().filter(|o: &i64| *o >= 0)
}

/// The segment settings of a topic, as they were when the segment was opened.
#[derive(Debug, Clone, Copy)]
pub struct SegmentOptions {
    pub segment_bytes: u64,
    pub index_interval_bytes: u64,
    pub segment_index_bytes: u64,
    pub preallocate: bool,
}

impl From<&TopicConfig> for SegmentOptions {
    fn from(c: &TopicConfig) -> Self {
        SegmentOptions {
            segment_bytes: c.segment_bytes,
            index_interval_bytes: c.index_interval_bytes,
            segment_index_bytes: c.segment_index_bytes,
            preallocate: c.preallocate,
        }
    }
}

/// The fields of a stored batch header that reads need, taken without trusting the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peek {
    pub base_offset: i64,
    /// Whole batch on disk: `LOG_OVERHEAD + batch_length`.
    pub size: u64,
    pub partition_leader_epoch: i32,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// Read the header fields at the start of `buf`; `None` if it is short or malformed.
pub fn peek(buf: &[u8]) -> Option<Peek> {
    if buf.len() < HEADER_LEN {
        return None;
    }
    let i64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&buf[at..at + 8]);
        i64::from_be_bytes(b)
    };
    let i32_at = |at: usize| i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
    let batch_length = i32_at(8);
    let last_delta = i32_at(23);
    if buf[16] != 2 || (batch_length as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 || last_delta < 0
    {
        return None;
    }
    let base_offset = i64_at(0);
    Some(Peek {
        base_offset,
        size: LOG_OVERHEAD as u64 + batch_length as u64,
        partition_leader_epoch: i32_at(12),
        last_offset: base_offset.checked_add(last_delta as i64)?,
        max_timestamp: i64_at(35),
    })
}

/// What recovery found in a segment.
#[derive(Debug, Default, Clone, Copy)]
pub struct RecoveryOutcome {
    /// Bytes cut from the end (torn or corrupt tail); 0 when the file was whole.
    pub truncated_bytes: u64,
    /// The cut bytes were all zero: preallocated space, not damage.
    pub zero_tail: bool,
}

/// A segment of a partition log.
#[derive(Debug)]
pub struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    log: Arc<SegmentFile>,
    /// Bytes of valid batches; the file may be longer when preallocated.
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    opts: SegmentOptions,
    bytes_since_index: u64,
    next_offset: i64,
    max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`.
    offset_of_max_timestamp: i64,
    /// Kafka's rolling-based timestamp: the first batch's max timestamp, else the wall
    /// clock when the segment was created.
    rolling_timestamp: Option<i64>,
    created_ms: i64,
    /// An index write failed and was reported; quiet until one succeeds again.
    index_warned: bool,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn preallocate(file: &File, len: u64) -> io::Result<()> {
    // SAFETY: plain syscall on a file descriptor we own for the duration of the call.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
    match rc {
        0 => Ok(()),
        // Filesystems without fallocate: appends simply extend the file.
        libc::EOPNOTSUPP | libc::EINVAL => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

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
        for ext in ["index", "timeindex"] {
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
        Ok(Segment {
            base_offset,
            log: SegmentFile::new(handles, &log_path, log)?,
            log_path,
            size: 0,
            offset_index,
            time_index,
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
        let mut seg = Segment {
            base_offset,
            log: SegmentFile::new(handles, &log_path, log)?,
            log_path,
            size,
            offset_index,
            time_index,
            opts,
            bytes_since_index: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            rolling_timestamp: None,
            created_ms,
            index_warned: false,
        };
        if must_rebuild {
            let outcome = seg.recover()?;
            return Ok((seg, outcome));
        }
        seg.load_tail()?;
        Ok((seg, RecoveryOutcome::default()))
    }

    /// The open `.log` file (reopened if the handle cache closed it).
    fn log(&self) -> io::Result<Arc<File>> {
        self.log.get()
    }

    /// Cut the segment at `position` (a batch boundary) and rebuild its bookkeeping.
    pub fn truncate_to_position(&mut self, position: u64) -> io::Result<()> {
        if position < self.size {
            self.log()?.set_len(position)?;
        }
        self.recover().map(|_| ())
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

    fn is_zero_tail(&self, from: u64, to: u64) -> io::Result<bool> {
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
    fn load_tail(&mut self) -> io::Result<()> {
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
    fn account(&mut self, hdr: &BatchHeader, pos: u64, len: u64) {
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

    /// Warn once per run of failures, not once per batch of a full-disk recovery.
    /// Warn once per run of failed index writes; passes the outcome on.
    fn note_index_write(&mut self, written: io::Result<()>) -> io::Result<()> {
        match &written {
            Ok(()) => self.index_warned = false,
            Err(e) if !self.index_warned => {
                self.index_warned = true;
                tracing::warn!(file = %self.log_path.display(), error = %e,
                    "index file lags (kept in memory; written when possible)");
            }
            Err(_) => {}
        }
        written
    }

    /// Write index entries their files lack (after a failed write).
    pub fn persist_indexes(&mut self) -> io::Result<()> {
        let written = self
            .offset_index
            .persist()
            .and_then(|()| self.time_index.persist());
        self.note_index_write(written)
    }

    /// Write the indexes and fsync them: what a sealed segment needs before a restart
    /// may trust it without recovery.
    pub fn settle_indexes(&mut self) -> io::Result<()> {
        self.persist_indexes()?;
        let synced = self
            .offset_index
            .sync()
            .and_then(|()| self.time_index.sync());
        self.note_index_write(synced)
    }

    /// Whether an index file does not hold exactly the in-memory index.
    pub fn indexes_lagging(&self) -> bool {
        self.offset_index.is_lagging() || self.time_index.is_lagging()
    }

    /// Whether the index files are not yet what a restart may trust: lagging, or written
    /// but not synced. An empty segment's never are: a restart that finds its index files
    /// missing, or holding anything, rebuilds them from nothing for free.
    pub fn indexes_unsettled(&self) -> bool {
        self.size > 0
            && (self.indexes_lagging()
                || self.offset_index.is_unsynced()
                || self.time_index.is_unsynced())
    }

    /// Remove both index files, so the next open rebuilds them from the log (a lagging
    /// time index would understate the segment's largest timestamp).
    pub fn remove_index_files(&self) -> io::Result<()> {
        for p in [self.offset_index.path(), self.time_index.path()] {
            match std::fs::remove_file(p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Append one whole batch (already validated and patched) with a single write. On
    /// failure the file is cut back to its previous size and the segment is unchanged.
    pub fn append(&mut self, batch: &[u8], hdr: &BatchHeader) -> io::Result<()> {
        self.append_with_header(&[], batch, hdr)
    }

    /// Append a batch given as its (patched) header and the rest of its bytes, as
    /// [`Segment::append`] does. Small batches are joined into one write; large ones
    /// are written from where they lie, header first.
    pub fn append_with_header(
        &mut self,
        head: &[u8],
        rest: &[u8],
        hdr: &BatchHeader,
    ) -> io::Result<()> {
        const JOIN_BELOW: usize = 16 * 1024;
        let pos = self.size;
        let log = self.log()?;
        let len = head.len() + rest.len();
        let written = if head.is_empty() {
            log.write_all_at(rest, pos)
        } else if len < JOIN_BELOW {
            let mut joined = Vec::with_capacity(len);
            joined.extend_from_slice(head);
            joined.extend_from_slice(rest);
            log.write_all_at(&joined, pos)
        } else {
            log.write_all_at(head, pos)
                .and_then(|()| log.write_all_at(rest, pos + head.len() as u64))
        };
        if let Err(e) = written {
            // A partial write must never become readable; with preallocation the bytes
            // past `size` are never served and recovery discards them.
            if !self.opts.preallocate {
                if let Err(te) = log.set_len(pos) {
                    tracing::error!(file = %self.log_path.display(), error = %te,
                        "cannot cut back a failed append");
                }
            }
            return Err(e);
        }
        self.size += len as u64;
        self.account(hdr, pos, len as u64);
        Ok(())
    }

    /// Whether appending `batch_len` bytes ending at `last_offset` needs a new segment.
    pub fn should_roll(
        &self,
        cfg: &TopicConfig,
        batch_len: usize,
        last_offset: i64,
        now_ms: i64,
        jitter_ms: i64,
    ) -> bool {
        if self.size == 0 {
            return false;
        }
        let rolling = self.rolling_timestamp.unwrap_or(self.created_ms);
        let expired = now_ms.saturating_sub(rolling) > cfg.segment_ms.saturating_sub(jitter_ms);
        self.size + batch_len as u64 > cfg.segment_bytes
            || expired
            || self.offset_index.is_full()
            || self.time_index.is_full()
            || last_offset - self.base_offset > u32::MAX as i64
    }

    /// The segment stops taking appends: record its final largest timestamp in the time
    /// index (retention reads it after a restart), cut the file to its valid bytes
    /// (preallocated space, or a tail recovery could not cut), and write and fsync both
    /// indexes. Only the cut can fail: a sealed segment must end with its last batch,
    /// since after a restart it is trusted without re-validation. Index files that cannot
    /// be settled now (full disk) are settled by a later flush, or removed at shutdown so
    /// the next start rebuilds them.
    pub fn seal(&mut self) -> io::Result<()> {
        if self.max_timestamp >= 0 {
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
        }
        let log = self.log()?;
        if log.metadata()?.len() > self.size {
            log.set_len(self.size)?;
        }
        if self.indexes_unsettled() {
            let _ = self.settle_indexes();
        }
        Ok(())
    }

    /// fsync the log file.
    pub fn sync_log(&self) -> io::Result<()> {
        self.log()?.sync_data()
    }

    /// The log file, for an fsync outside the partition lock.
    pub fn log_handle(&self) -> io::Result<Arc<File>> {
        self.log()
    }

    /// Rename the files to `*.deleted` (Kafka's convention) and return the new paths; the
    /// caller removes them after `file.delete.delay.ms`. Views still reading the segment
    /// keep its file open (see [`SegmentFile::detach`]).
    pub fn mark_deleted(&self) -> Vec<PathBuf> {
        self.log.detach();
        let mut out = Vec::new();
        for p in [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
        ] {
            let mut to = p.clone().into_os_string();
            to.push(".deleted");
            let to = PathBuf::from(to);
            match std::fs::rename(&p, &to) {
                Ok(()) => {
                    if p == self.log_path {
                        self.log.renamed(&to);
                    }
                    out.push(to)
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %p.display(), error = %e, "cannot rename deleted segment file");
                    out.push(p);
                }
            }
        }
        out
    }

    /// Position at or before the batch holding `offset`.
    pub fn position_hint(&self, offset: i64) -> u64 {
        self.offset_index.lookup(offset).1
    }

    /// Position to start a timestamp search from: every record before it is older than
    /// `timestamp`.
    pub fn time_hint(&self, timestamp: i64) -> u64 {
        match self.time_index.last_below(timestamp) {
            Some((_, offset)) => self.position_hint(offset),
            None => 0,
        }
    }

    pub fn view(&self) -> SegmentView {
        SegmentView {
            base_offset: self.base_offset,
            file: self.log.clone(),
            size: self.size,
            open: OnceLock::new(),
        }
    }

    /// The segment file is about to be replaced by another of the same name (the
    /// cleaner's swap): views taken before keep reading this one.
    pub fn retire(&self) {
        self.log.detach();
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp
    }
    /// When the segment became "old" for time retention: its largest timestamp, or the
    /// file's modification time when no batch carries one (Kafka's fallback).
    pub fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp >= 0 {
            self.max_timestamp
        } else {
            self.created_ms
        }
    }
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Point both index files at `/dev/full`, where every write fails with ENOSPC.
    /// Returns false where there is no `/dev/full`.
    #[cfg(test)]
    pub(crate) fn fail_index_writes(&mut self) -> bool {
        self.offset_index.fail_writes() && self.time_index.fail_writes()
    }
}

/// A read-only snapshot of a segment: safe to use without the partition lock, because
/// the file only grows past `size` and deleted files stay readable through the handle.
/// The file is opened (or taken from the handle cache) on the first read, not when the
/// snapshot is taken, so snapshotting segments a read may not need costs nothing.
#[derive(Debug, Clone)]
pub struct SegmentView {
    pub base_offset: i64,
    pub file: Arc<SegmentFile>,
    pub size: u64,
    open: OnceLock<Arc<File>>,
}

fn read_at(file: &File, pos: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, pos)?;
    Ok(buf)
}

/// `len` bytes at `pos`, read into fresh uninitialised memory: fetches are the bulk of
/// what a broker reads, and zeroing each buffer first would touch every byte twice.
fn read_uninit(file: &File, pos: u64, len: usize) -> io::Result<BytesMut> {
    let mut buf = BytesMut::with_capacity(len);
    while buf.len() < len {
        let filled = buf.len();
        let at = pos + filled as u64;
        let spare = &mut buf.spare_capacity_mut()[..len - filled];
        // SAFETY: pread writes at most `spare.len()` bytes into memory we own and that no
        // one else references; it never reads the (uninitialised) destination.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                spare.as_mut_ptr().cast(),
                spare.len(),
                at as libc::off_t,
            )
        };
        match n {
            n if n > 0 => {
                // SAFETY: pread initialised the first `n` bytes of the spare capacity.
                unsafe { buf.set_len(buf.len() + n as usize) };
            }
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(buf)
}

/// Walks batch headers of a [`SegmentView`] from a position, reading a chunk at a time.
pub struct Cursor<'a> {
    view: &'a SegmentView,
    pos: u64,
    chunk: Vec<u8>,
    chunk_pos: u64,
    /// Where in `chunk` the header last returned starts.
    last_at: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(view: &'a SegmentView, pos: u64) -> Cursor<'a> {
        Cursor {
            view,
            pos,
            chunk: Vec::new(),
            chunk_pos: 0,
            last_at: 0,
        }
    }

    /// The full header of the batch last returned by [`next_header`](Self::next_header).
    pub fn full_header(&self) -> Result<BatchHeader, super::LogError> {
        BatchHeader::parse(self.chunk.get(self.last_at..).unwrap_or_default())
    }

    /// The next header and its position; `None` at the end of the valid data or at a
    /// header that does not parse (nothing past it is served).
    pub fn next_header(&mut self) -> io::Result<Option<(Peek, u64)>> {
        let pos = self.pos;
        if pos + HEADER_LEN as u64 > self.view.size {
            return Ok(None);
        }
        let in_chunk = pos >= self.chunk_pos
            && pos + HEADER_LEN as u64 <= self.chunk_pos + self.chunk.len() as u64;
        if !in_chunk {
            let len = (SCAN_CHUNK as u64).min(self.view.size - pos) as usize;
            self.chunk = read_at(self.view.handle()?, pos, len)?;
            self.chunk_pos = pos;
        }
        let at = (pos - self.chunk_pos) as usize;
        let Some(p) = peek(&self.chunk[at..]) else {
            return Ok(None);
        };
        if pos + p.size > self.view.size {
            return Ok(None);
        }
        self.last_at = at;
        self.pos = pos + p.size;
        Ok(Some((p, pos)))
    }
}

impl SegmentView {
    /// The open file: held for the rest of this view's life once read, so a read that
    /// spans many calls uses one descriptor even if the cache closes its own.
    fn handle(&self) -> io::Result<&File> {
        if let Some(f) = self.open.get() {
            return Ok(f);
        }
        let f = self.file.get()?;
        Ok(self.open.get_or_init(|| f))
    }

    /// The open file as a shared handle, for a send that outlives this view.
    fn shared_handle(&self) -> io::Result<Arc<File>> {
        if let Some(f) = self.open.get() {
            return Ok(f.clone());
        }
        let f = self.file.get()?;
        Ok(self.open.get_or_init(|| f).clone())
    }

    /// Position of the first batch whose last offset is >= `offset`, scanning from
    /// `hint`; with the batch header.
    pub fn find(&self, offset: i64, hint: u64) -> io::Result<Option<(Peek, u64)>> {
        let mut cursor = Cursor::new(self, hint);
        while let Some((p, pos)) = cursor.next_header()? {
            if p.last_offset >= offset {
                return Ok(Some((p, pos)));
            }
        }
        Ok(None)
    }

    /// Whole batches from `start` (a batch boundary): batches whose last offset is below
    /// `max_offset`, up to `max_bytes` in total, at least the first one when `min_one`.
    /// One read for the common case.
    pub fn read_batches(
        &self,
        start: u64,
        max_bytes: usize,
        max_offset: i64,
        min_one: bool,
    ) -> io::Result<Bytes> {
        if start >= self.size {
            return Ok(Bytes::new());
        }
        let avail = (self.size - start) as usize;
        let first_len = (max_bytes.max(HEADER_LEN)).min(avail);
        let file = self.handle()?;
        if !min_one && avail >= HEADER_LEN {
            // A first batch that cannot be served whole is not read at all. Without this
            // look at its header, a fetch of many partitions whose batches are larger
            // than the partition limit read (and held until the response was written) up
            // to the limit for every partition only to return nothing for most: 520 MB
            // RSS for one consumer of a 1,000-partition topic.
            let mut head = [0u8; HEADER_LEN];
            file.read_exact_at(&mut head, start)?;
            match peek(&head) {
                Some(p) if p.size <= max_bytes as u64 && p.last_offset < max_offset => {}
                _ => return Ok(Bytes::new()),
            }
        }
        let mut buf = read_uninit(file, start, first_len)?;
        let mut end = 0usize;
        while let Some(p) = peek(&buf[end.min(buf.len())..]) {
            if p.last_offset >= max_offset {
                break;
            }
            let batch_end = end as u64 + p.size;
            if batch_end > avail as u64 {
                break;
            }
            if batch_end > max_bytes as u64 && !(end == 0 && min_one) {
                break;
            }
            if batch_end > buf.len() as u64 {
                // Only the first batch can outgrow the buffer (min_one): read it whole.
                buf = read_uninit(file, start, batch_end as usize)?;
            }
            end = batch_end as usize;
            if end >= max_bytes {
                break;
            }
        }
        buf.truncate(end);
        Ok(buf.freeze())
    }

    /// Like [`read_batches`](Self::read_batches), but batches of [`FILE_SEND_MIN`] or
    /// more are not read: the result names their range of the file. The walk reads only
    /// headers, and stops before a small batch (the next read serves it from memory).
    pub fn read_records(
        &self,
        start: u64,
        max_bytes: usize,
        max_offset: i64,
        min_one: bool,
    ) -> io::Result<Records> {
        if start + HEADER_LEN as u64 > self.size {
            return Ok(Records::empty());
        }
        let mut head = [0u8; HEADER_LEN];
        self.handle()?.read_exact_at(&mut head, start)?;
        match peek(&head) {
            Some(first) if first.size >= FILE_SEND_MIN => {}
            _ => {
                return self
                    .read_batches(start, max_bytes, max_offset, min_one)
                    .map(Records::Mem)
            }
        }
        let avail = self.size - start;
        let limit = max_bytes as u64;
        let (mut end, mut records) = (0u64, 0u64);
        while let Some(p) = peek(&head).filter(|p| p.size >= FILE_SEND_MIN) {
            let batch_end = end + p.size;
            if p.last_offset >= max_offset
                || batch_end > avail
                || batch_end > MAX_CHUNK as u64
                || (batch_end > limit && !(end == 0 && min_one))
            {
                break;
            }
            end = batch_end;
            records += data_records(&head);
            if end >= limit || end + HEADER_LEN as u64 > avail {
                break;
            }
            self.handle()?.read_exact_at(&mut head, start + end)?;
        }
        if end == 0 {
            // A first batch too large for one file chunk is read the usual way.
            return self
                .read_batches(start, max_bytes, max_offset, min_one)
                .map(Records::Mem);
        }
        Ok(Records::File {
            chunk: FileChunk {
                file: self.shared_handle()?,
                pos: start,
                len: end as usize,
            },
            records,
        })
    }

    /// The bytes of one batch found by a [`Cursor`].
    pub fn read_batch(&self, pos: u64, size: u64) -> io::Result<Vec<u8>> {
        read_at(self.handle()?, pos, size as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::BatchBuilder;

    fn opts() -> SegmentOptions {
        SegmentOptions {
            segment_bytes: 1 << 20,
            index_interval_bytes: 0,
            segment_index_bytes: 1 << 10,
            preallocate: false,
        }
    }

    fn stored(base: i64, n: usize) -> (Vec<u8>, BatchHeader) {
        let mut b = BatchBuilder::new(base);
        for i in 0..n {
            b = b.record(None, Some(b"v"), 1_000 + i as i64);
        }
        let bytes = b.build();
        let hdr = BatchHeader::parse(&bytes).unwrap();
        (bytes, hdr)
    }

    #[test]
    fn file_names_follow_kafka() {
        assert_eq!(file_name(42, "log"), "00000000000000000042.log");
        assert_eq!(parse_log_name("00000000000000000042.log"), Some(42));
        assert_eq!(parse_log_name("42.log"), None);
        assert_eq!(parse_log_name("00000000000000000042.index"), None);
        assert_eq!(parse_log_name("0000000000000000004x.log"), None);
    }

    #[test]
    fn failed_write_leaves_segment_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 0, opts(), &HandleCache::new(16)).unwrap();
        let (a, ha) = stored(0, 2);
        seg.append(&a, &ha).unwrap();
        // /dev/full fails every write with ENOSPC, like a full disk.
        let Ok(full) = OpenOptions::new().write(true).read(true).open("/dev/full") else {
            return;
        };
        let good = seg.log.swap_open(Arc::new(full)).unwrap();
        let (b, hb) = stored(2, 2);
        let err = seg.append(&b, &hb).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!((seg.size(), seg.next_offset()), (a.len() as u64, 2));
        seg.log.swap_open(good);
        seg.append(&b, &hb).unwrap();
        let view = seg.view();
        let all = view.read_batches(0, 1 << 20, i64::MAX, true).unwrap();
        assert_eq!(all.len(), a.len() + b.len());
        assert_eq!(&all[a.len()..], &b[..]);
    }

    #[test]
    fn reads_never_trust_damaged_headers() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 0, opts(), &HandleCache::new(16)).unwrap();
        let (a, ha) = stored(0, 1);
        seg.append(&a, &ha).unwrap();
        let size = seg.size();
        // Damage the header behind the segment's back: reads stop instead of panicking.
        seg.log().unwrap().write_all_at(&[0xff; 12], 0).unwrap();
        let view = seg.view();
        assert_eq!(view.find(0, 0).unwrap(), None);
        assert!(view
            .read_batches(0, 100, i64::MAX, true)
            .unwrap()
            .is_empty());
        assert!(view
            .read_batches(size + 10, 100, i64::MAX, true)
            .unwrap()
            .is_empty());
        assert_eq!(peek(&[0u8; 10]), None);
        // Recovery cuts the damaged batch.
        let outcome = seg.recover().unwrap();
        assert_eq!(outcome.truncated_bytes, size);
        assert!(!outcome.zero_tail);
        assert_eq!((seg.size(), seg.next_offset()), (0, 0));
    }

    #[test]
    fn segments_serve_reads_and_appends_through_a_small_handle_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = HandleCache::new(2);
        let mut segs: Vec<Segment> = (0..6)
            .map(|i| Segment::create(dir.path(), i * 100, opts(), &cache).unwrap())
            .collect();
        assert!(cache.len() <= 2);
        // Appends reopen evicted files; the bound holds throughout.
        for round in 0..3 {
            for seg in segs.iter_mut() {
                let (b, h) = stored(seg.next_offset(), 1 + round);
                seg.append(&b, &h).unwrap();
                assert!(cache.len() <= 2);
            }
        }
        assert!(cache.evictions() > 0);
        let contents = |seg: &Segment| {
            let v = seg.view();
            spans(&v.read_batches(0, 1 << 20, i64::MAX, true).unwrap())
        };
        for seg in &segs {
            let b = seg.base_offset();
            assert_eq!(contents(seg), vec![(b, b), (b + 1, b + 2), (b + 3, b + 5)]);
        }
        // A view taken before a deletion reads the deleted segment even after its file
        // is gone and the cache turned over.
        let view = segs[0].view();
        let paths = segs[0].mark_deleted();
        segs.remove(0);
        for p in paths {
            std::fs::remove_file(p).unwrap();
        }
        for seg in &segs {
            contents(seg);
        }
        assert_eq!(
            spans(&view.read_batches(0, 1 << 20, i64::MAX, true).unwrap()),
            vec![(0, 0), (1, 2), (3, 5)]
        );
        // Sealing writes and syncs the indexes, so a reopen trusts them.
        let mut last = segs.pop().unwrap();
        last.seal().unwrap();
        assert!(!last.indexes_unsettled());
        drop(last);
        let (reopened, outcome) = Segment::open(dir.path(), 500, opts(), false, &cache).unwrap();
        assert_eq!(outcome.truncated_bytes, 0);
        assert_eq!(reopened.next_offset(), 506);
    }

    /// A batch of `n` records of `value_len` bytes each.
    fn sized(base: i64, n: usize, value_len: usize) -> (Vec<u8>, BatchHeader) {
        let value = vec![b'x'; value_len];
        let mut b = BatchBuilder::new(base);
        for i in 0..n {
            b = b.record(None, Some(&value), 1_000 + i as i64);
        }
        let bytes = b.build();
        let hdr = BatchHeader::parse(&bytes).unwrap();
        (bytes, hdr)
    }

    #[test]
    fn large_batches_are_read_as_file_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts();
        o.segment_bytes = 8 << 20;
        let mut seg = Segment::create(dir.path(), 0, o, &HandleCache::new(16)).unwrap();
        // big (offsets 0-39), big (40-79), small (80-81), big (82-121)
        let batches = [
            sized(0, 40, 1000),
            sized(40, 40, 1000),
            sized(80, 2, 10),
            sized(82, 40, 1000),
        ];
        for (b, h) in &batches {
            seg.append(b, h).unwrap();
        }
        let view = seg.view();
        let len = |i: usize| batches[i].0.len();
        let file = |r: Records| match r {
            Records::File { chunk, records } => (chunk.pos, chunk.len, records),
            Records::Mem(b) => panic!("read into memory: {} bytes", b.len()),
        };
        // Both large batches go by file range; the walk stops before the small one.
        let all = view.read_records(0, 1 << 20, i64::MAX, true).unwrap();
        assert_eq!(
            all.clone().into_bytes().unwrap(),
            view.read_batches(0, len(0) + len(1), i64::MAX, true)
                .unwrap()
        );
        assert_eq!(file(all), (0, len(0) + len(1), 80));
        // The byte limit, the high watermark and min_one bound it as for memory reads.
        assert_eq!(
            file(view.read_records(0, len(0) + 10, i64::MAX, false).unwrap()),
            (0, len(0), 40)
        );
        assert_eq!(
            file(view.read_records(0, 1 << 20, 79, true).unwrap()),
            (0, len(0), 40)
        );
        assert_eq!(
            file(view.read_records(0, 10, i64::MAX, true).unwrap()),
            (0, len(0), 40)
        );
        assert!(view
            .read_records(0, 10, i64::MAX, false)
            .unwrap()
            .is_empty());
        assert!(view.read_records(0, 1 << 20, 39, true).unwrap().is_empty());
        // A small first batch is read into memory, as before.
        let small_at = (len(0) + len(1)) as u64;
        match view
            .read_records(small_at, 1 << 20, i64::MAX, true)
            .unwrap()
        {
            Records::Mem(b) => assert_eq!(spans(&b), vec![(80, 81), (82, 121)]),
            Records::File { .. } => panic!("small first batch sent from the file"),
        }
        let last_at = small_at + len(2) as u64;
        assert_eq!(
            file(view.read_records(last_at, 1 << 20, i64::MAX, true).unwrap()),
            (last_at, len(3), 40)
        );
    }

    fn spans(bytes: &[u8]) -> Vec<(i64, i64)> {
        batch::batches(bytes, false)
            .map(|b| {
                let (h, _) = b.unwrap();
                (h.base_offset, h.last_offset())
            })
            .collect()
    }
}

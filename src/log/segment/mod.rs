//! One log segment: the append-only `<base offset>.log` file, its two sparse indexes and
//! its aborted-transaction index (`.txnindex`, see [`super::txn_index`]).
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

use super::batch::data_record_count as data_records;
use super::batch::{self, BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use super::handles::{HandleCache, SegmentFile};
use super::index::{OffsetIndex, TimeIndex};
use super::records::{FileRange, Records, FILE_SEND_MIN, MAX_FILE_RANGE};
use super::txn_index::{AbortedTxn, TxnIndex};
use crate::config::TopicConfig;

mod open;
mod view;
mod write;

use view::read_at;
pub use view::{Cursor, SegmentView};

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
    let h = BatchHeader::parse(buf).ok()?;
    if h.magic != 2
        || (h.batch_length as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64
        || h.last_offset_delta < 0
    {
        return None;
    }
    Some(Peek {
        base_offset: h.base_offset,
        size: h.size() as u64,
        partition_leader_epoch: h.partition_leader_epoch,
        last_offset: h.base_offset.checked_add(h.last_offset_delta as i64)?,
        max_timestamp: h.max_timestamp,
    })
}

/// What recovery found in a segment.
#[derive(Debug, Default, Clone, Copy)]
pub struct RecoveryOutcome {
    /// Bytes cut from the end (torn or corrupt tail); 0 when the file was whole.
    pub truncated_bytes: u64,
    /// The cut bytes were all zero: preallocated space, not damage.
    pub zero_tail: bool,
    /// The stored aborted-transaction index could not be used (unreadable, or naming
    /// offsets the segment does not hold): the caller rebuilds it from the log.
    pub txn_index_lost: bool,
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
    /// Transactions aborted by a marker in this segment.
    txn_index: TxnIndex,
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
    /// The open `.log` file (reopened if the handle cache closed it).
    fn log(&self) -> io::Result<Arc<File>> {
        self.log.get()
    }

    /// The log file, for an fsync outside the partition lock.
    pub fn log_handle(&self) -> io::Result<Arc<File>> {
        self.log()
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

    /// Transactions aborted by markers in this segment, by marker offset.
    pub fn aborted_txns(&self) -> &[AbortedTxn] {
        self.txn_index.entries()
    }

    /// Record a transaction aborted by a marker just appended to this segment.
    pub fn push_aborted(&mut self, txn: AbortedTxn) {
        self.txn_index.push(txn);
    }

    /// Forget the aborted transactions whose marker is at or past `offset`, so that
    /// a replay from `offset` can record them again.
    pub fn forget_aborted_from(&mut self, offset: i64) {
        self.txn_index.truncate_to(offset);
    }

    /// The transactions of this segment overlapping `[from, upper)`; true when no later
    /// segment can hold one (see [`TxnIndex::collect`]).
    pub fn collect_aborted(&self, from: i64, upper: i64, out: &mut Vec<AbortedTxn>) -> bool {
        self.txn_index.collect(from, upper, out)
    }

    /// Point both index files at `/dev/full`, where every write fails with ENOSPC.
    /// Returns false where there is no `/dev/full`.
    #[cfg(test)]
    pub(crate) fn fail_index_writes(&mut self) -> bool {
        self.offset_index.fail_writes() && self.time_index.fail_writes()
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
            Records::File { range, records } => (range.pos, range.len, records),
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

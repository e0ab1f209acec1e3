//! The two sparse per-segment indexes, in Kafka's file formats.
//!
//! The offset index (`.index`) maps a relative offset to a byte position in the segment
//! (8-byte entries: relative offset u32 BE, position u32 BE) and gets an entry every
//! `index.interval.bytes`. The time index (`.timeindex`) maps a timestamp to a relative
//! offset (12-byte entries: timestamp i64 BE, relative offset u32 BE) and gets an entry
//! only when the segment's largest timestamp grows. Both are small, so each is kept in a
//! `Vec` and the file is brought up to date with positioned writes when the segment is
//! sealed or shut down (no descriptor stays open); lookups are binary searches on the
//! `Vec`. A file whose contents are not strictly increasing (torn write, zeros from a
//! crash, foreign garbage) is reported as inconsistent so the segment rebuilds it.
//!
//! The `Vec` is the truth and the file a cache of it: a write that fails (full disk)
//! keeps the entry in memory and leaves the file a consistent prefix, which is caught up
//! by the next write or [`OffsetIndex::persist`]. So an index can always be rebuilt, and a
//! log opened, without writing anything. A lagging file costs nothing but a longer scan:
//! the segment's tail past the last stored entry is read at open either way.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes of one offset-index entry.
pub const OFFSET_ENTRY: usize = 8;
/// Bytes of one time-index entry.
pub const TIME_ENTRY: usize = 12;

/// Why a stored index cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index {0} is not consistent with its segment")]
    Inconsistent(PathBuf),
    #[error(transparent)]
    Io(#[from] io::Error),
}

fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

fn read_all(file: &File) -> io::Result<Vec<u8>> {
    let len = file.metadata()?.len() as usize;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, 0)?;
    Ok(buf)
}

/// The file behind an index. It may lag the in-memory entries, but whatever it holds is
/// always a prefix of them, so a restart that finds it reads a consistent (if sparser)
/// index.
///
/// It holds no descriptor: the file is opened to be read once (at open), written (see
/// [`OffsetIndex::persist`]) or synced, and closed again, so a broker with many segments
/// does not spend two descriptors on each. Writes are therefore batched: appends only
/// grow the in-memory entries, and the file catches up when the segment is sealed, at
/// shutdown, or after a failed write.
#[derive(Debug)]
struct IndexFile {
    path: PathBuf,
    /// The file exists and holds our entries (false until the first successful write of
    /// a detached index: creating it may itself need space).
    exists: bool,
    /// How many leading entries the file holds.
    persisted: usize,
    /// The file may hold bytes past `persisted` entries (a reset or truncation whose
    /// `set_len` failed, or an inconsistent file being replaced) that must be cut.
    stale_tail: bool,
    /// Written since the last fsync.
    unsynced: bool,
    /// Tests: write to this file instead (`/dev/full`, to fail like a full disk).
    #[cfg(test)]
    redirect: Option<PathBuf>,
}

impl IndexFile {
    /// Read the whole file (creating it if absent).
    fn open(path: &Path) -> io::Result<(IndexFile, Vec<u8>)> {
        let raw = read_all(&open_rw(path)?)?;
        Ok((
            IndexFile {
                path: path.to_path_buf(),
                exists: true,
                persisted: 0,
                stale_tail: false,
                unsynced: false,
                #[cfg(test)]
                redirect: None,
            },
            raw,
        ))
    }

    /// An index whose file is replaced on the first successful write; no I/O now.
    fn detached(path: &Path) -> IndexFile {
        IndexFile {
            path: path.to_path_buf(),
            exists: false,
            persisted: 0,
            stale_tail: true,
            unsynced: false,
            #[cfg(test)]
            redirect: None,
        }
    }

    fn lagging(&self, len: usize) -> bool {
        !self.exists || self.stale_tail || self.persisted < len
    }

    fn open_for_write(&self) -> io::Result<File> {
        #[cfg(test)]
        if let Some(p) = &self.redirect {
            return OpenOptions::new().read(true).write(true).open(p);
        }
        open_rw(&self.path)
    }

    /// Bring the file up to `len` entries; `tail` encodes entries `persisted..len`.
    fn catch_up(&mut self, len: usize, entry: usize, tail: &[u8]) -> io::Result<()> {
        let file = self.open_for_write()?;
        if !tail.is_empty() {
            self.unsynced = true;
            file.write_all_at(tail, (self.persisted * entry) as u64)?;
        }
        if self.stale_tail {
            self.unsynced = true;
            file.set_len((len * entry) as u64)?;
            self.stale_tail = false;
        }
        self.exists = true;
        self.persisted = len;
        Ok(())
    }

    /// Memory now holds only `keep` entries: cut the file to match, now if possible.
    fn truncate(&mut self, keep: usize, entry: usize) {
        if self.persisted <= keep && !self.stale_tail {
            return;
        }
        self.persisted = self.persisted.min(keep);
        self.stale_tail = true;
        if self.exists {
            let cut = self
                .open_for_write()
                .and_then(|f| f.set_len((self.persisted * entry) as u64));
            if cut.is_ok() {
                self.stale_tail = false;
                self.unsynced = true;
            }
        }
    }

    #[cfg(test)]
    fn fail_writes(&mut self) -> bool {
        let full = Path::new("/dev/full");
        if full.exists() {
            self.redirect = Some(full.to_path_buf());
        }
        self.redirect.is_some()
    }

    /// fsync what was written since the last sync (a file never written needs none).
    fn sync(&mut self) -> io::Result<()> {
        if !self.unsynced {
            return Ok(());
        }
        File::open(&self.path)?.sync_data()?;
        self.unsynced = false;
        Ok(())
    }
}

/// Sparse offset → position index of one segment.
#[derive(Debug)]
pub struct OffsetIndex {
    file: IndexFile,
    base_offset: i64,
    /// (relative offset, position), both strictly increasing.
    entries: Vec<(u32, u32)>,
    max_entries: usize,
}

impl OffsetIndex {
    /// Open (creating if absent) and load the index. `segment_size` bounds the positions
    /// a consistent index may hold.
    pub fn open(
        path: &Path,
        base_offset: i64,
        max_bytes: u64,
        segment_size: u64,
    ) -> Result<OffsetIndex, IndexError> {
        let (file, raw) = IndexFile::open(path)?;
        let mut idx = OffsetIndex {
            file,
            base_offset,
            entries: Vec::with_capacity(raw.len() / OFFSET_ENTRY),
            max_entries: (max_bytes as usize / OFFSET_ENTRY).max(1),
        };
        if raw.len() % OFFSET_ENTRY != 0 {
            return Err(IndexError::Inconsistent(idx.file.path));
        }
        for chunk in raw.chunks_exact(OFFSET_ENTRY) {
            let rel = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let pos = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            let increasing = idx.entries.last().is_none_or(|&(r, p)| rel > r && pos > p);
            if !increasing || pos as u64 >= segment_size.max(1) {
                return Err(IndexError::Inconsistent(idx.file.path));
            }
            idx.entries.push((rel, pos));
        }
        idx.file.persisted = idx.entries.len();
        Ok(idx)
    }

    /// An empty index whose file at `path` (absent, unreadable or inconsistent) is
    /// replaced on the first successful write. Does no I/O.
    pub fn empty(path: &Path, base_offset: i64, max_bytes: u64) -> OffsetIndex {
        OffsetIndex {
            file: IndexFile::detached(path),
            base_offset,
            entries: Vec::new(),
            max_entries: (max_bytes as usize / OFFSET_ENTRY).max(1),
        }
    }

    /// Discard every entry (before a rebuild). The file is cut now if possible, else on
    /// the next write.
    pub fn reset(&mut self) {
        self.entries.clear();
        self.file.truncate(0, OFFSET_ENTRY);
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Record that the batch whose last offset is `offset` starts at `position` (Kafka
    /// indexes last offsets, so a lookup lands at or before the batch holding a target).
    /// Entries that would not increase are ignored: the index stays sorted by construction.
    /// Only memory changes; the file catches up on [`persist`](Self::persist).
    pub fn append(&mut self, offset: i64, position: u64) {
        let rel = offset - self.base_offset;
        if self.is_full() || !(0..=u32::MAX as i64).contains(&rel) || position > u32::MAX as u64 {
            return;
        }
        let (rel, pos) = (rel as u32, position as u32);
        if let Some(&(r, p)) = self.entries.last() {
            if rel <= r || pos <= p {
                return;
            }
        }
        self.entries.push((rel, pos));
    }

    /// Write the entries the file lacks.
    pub fn persist(&mut self) -> io::Result<()> {
        if !self.is_lagging() {
            return Ok(());
        }
        let from = self.file.persisted.min(self.entries.len());
        let mut tail = Vec::with_capacity((self.entries.len() - from) * OFFSET_ENTRY);
        for &(rel, pos) in &self.entries[from..] {
            tail.extend_from_slice(&rel.to_be_bytes());
            tail.extend_from_slice(&pos.to_be_bytes());
        }
        self.file.catch_up(self.entries.len(), OFFSET_ENTRY, &tail)
    }

    /// The file does not (yet) hold exactly the in-memory entries.
    pub fn is_lagging(&self) -> bool {
        self.file.lagging(self.entries.len())
    }

    /// The last entry whose offset is <= `offset`, as (absolute offset, position); the
    /// segment start when there is none.
    pub fn lookup(&self, offset: i64) -> (i64, u64) {
        let rel = offset - self.base_offset;
        if rel < 0 {
            return (self.base_offset, 0);
        }
        let rel = rel.min(u32::MAX as i64) as u32;
        let n = self.entries.partition_point(|&(r, _)| r <= rel);
        match n {
            0 => (self.base_offset, 0),
            _ => {
                let (r, p) = self.entries[n - 1];
                (self.base_offset + r as i64, p as u64)
            }
        }
    }

    /// Drop entries pointing at or past `position` (after the segment was truncated).
    pub fn truncate_to_position(&mut self, position: u64) {
        let keep = self
            .entries
            .partition_point(|&(_, p)| (p as u64) < position);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.file.truncate(keep, OFFSET_ENTRY);
        }
    }

    /// fsync the file if it was written since the last sync.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync()
    }

    /// Written but not yet synced.
    pub fn is_unsynced(&self) -> bool {
        self.file.unsynced
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Send writes to `/dev/full` (ENOSPC), like a full disk; false without it.
    #[cfg(test)]
    pub(crate) fn fail_writes(&mut self) -> bool {
        self.file.fail_writes()
    }
}

/// Sparse timestamp → offset index of one segment.
#[derive(Debug)]
pub struct TimeIndex {
    file: IndexFile,
    base_offset: i64,
    /// (timestamp, relative offset), both strictly increasing.
    entries: Vec<(i64, u32)>,
    max_entries: usize,
}

impl TimeIndex {
    /// Open (creating if absent) and load the index. `next_offset` bounds the offsets a
    /// consistent index may hold (pass `i64::MAX` when it is not known yet).
    pub fn open(
        path: &Path,
        base_offset: i64,
        max_bytes: u64,
        next_offset: i64,
    ) -> Result<TimeIndex, IndexError> {
        let (file, raw) = IndexFile::open(path)?;
        let mut idx = TimeIndex {
            file,
            base_offset,
            entries: Vec::with_capacity(raw.len() / TIME_ENTRY),
            max_entries: (max_bytes as usize / TIME_ENTRY).max(1),
        };
        if raw.len() % TIME_ENTRY != 0 {
            return Err(IndexError::Inconsistent(idx.file.path));
        }
        for chunk in raw.chunks_exact(TIME_ENTRY) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let ts = i64::from_be_bytes(ts);
            let rel = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            let increasing = idx.entries.last().is_none_or(|&(t, r)| ts > t && rel >= r);
            if !increasing || base_offset + rel as i64 >= next_offset {
                return Err(IndexError::Inconsistent(idx.file.path));
            }
            idx.entries.push((ts, rel));
        }
        idx.file.persisted = idx.entries.len();
        Ok(idx)
    }

    /// An empty index whose file at `path` is replaced on the first successful write.
    /// Does no I/O.
    pub fn empty(path: &Path, base_offset: i64, max_bytes: u64) -> TimeIndex {
        TimeIndex {
            file: IndexFile::detached(path),
            base_offset,
            entries: Vec::new(),
            max_entries: (max_bytes as usize / TIME_ENTRY).max(1),
        }
    }

    /// Discard every entry (before a rebuild); the file follows when it can.
    pub fn reset(&mut self) {
        self.entries.clear();
        self.file.truncate(0, TIME_ENTRY);
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// The largest timestamp indexed and its offset.
    pub fn last(&self) -> Option<(i64, i64)> {
        self.entries
            .last()
            .map(|&(t, r)| (t, self.base_offset + r as i64))
    }

    /// Add an entry when `timestamp` is larger than every indexed one. Only memory
    /// changes; the file catches up on [`persist`](Self::persist).
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) {
        let rel = offset - self.base_offset;
        if self.is_full() || !(0..=u32::MAX as i64).contains(&rel) {
            return;
        }
        if let Some(&(t, r)) = self.entries.last() {
            if timestamp <= t || (rel as u32) < r {
                return;
            }
        }
        self.entries.push((timestamp, rel as u32));
    }

    /// Write the entries the file lacks.
    pub fn persist(&mut self) -> io::Result<()> {
        if !self.is_lagging() {
            return Ok(());
        }
        let from = self.file.persisted.min(self.entries.len());
        let mut tail = Vec::with_capacity((self.entries.len() - from) * TIME_ENTRY);
        for &(ts, rel) in &self.entries[from..] {
            tail.extend_from_slice(&ts.to_be_bytes());
            tail.extend_from_slice(&rel.to_be_bytes());
        }
        self.file.catch_up(self.entries.len(), TIME_ENTRY, &tail)
    }

    /// The file does not (yet) hold exactly the in-memory entries.
    pub fn is_lagging(&self) -> bool {
        self.file.lagging(self.entries.len())
    }

    /// The last entry with a timestamp strictly below `timestamp`, as (timestamp,
    /// absolute offset): every record up to that offset is older than `timestamp`.
    pub fn last_below(&self, timestamp: i64) -> Option<(i64, i64)> {
        let n = self.entries.partition_point(|&(t, _)| t < timestamp);
        (n > 0).then(|| {
            let (t, r) = self.entries[n - 1];
            (t, self.base_offset + r as i64)
        })
    }

    /// Drop entries for offsets at or past `offset`.
    pub fn truncate_to_offset(&mut self, offset: i64) {
        let keep = self
            .entries
            .partition_point(|&(_, r)| self.base_offset + (r as i64) < offset);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.file.truncate(keep, TIME_ENTRY);
        }
    }

    /// fsync the file if it was written since the last sync.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync()
    }

    /// Written but not yet synced.
    pub fn is_unsynced(&self) -> bool {
        self.file.unsynced
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Send writes to `/dev/full` (ENOSPC), like a full disk; false without it.
    #[cfg(test)]
    pub(crate) fn fail_writes(&mut self) -> bool {
        self.file.fail_writes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("00000000000000000100.index");
        let mut idx = OffsetIndex::open(&p, 100, 1024, 0).unwrap();
        assert_eq!(idx.lookup(150), (100, 0));
        idx.append(110, 400);
        idx.append(120, 800);
        idx.append(115, 900); // not increasing: ignored
        assert_eq!(idx.lookup(99), (100, 0));
        assert_eq!(idx.lookup(110), (110, 400));
        assert_eq!(idx.lookup(119), (110, 400));
        assert_eq!(idx.lookup(500), (120, 800));
        assert!(idx.is_lagging(), "appends change memory only");
        idx.persist().unwrap();
        drop(idx);
        let idx = OffsetIndex::open(&p, 100, 1024, 1000).unwrap();
        assert_eq!(idx.len(), 2);
        // Positions past the segment's end mean the index does not belong to it.
        assert!(matches!(
            OffsetIndex::open(&p, 100, 1024, 500),
            Err(IndexError::Inconsistent(_))
        ));
        std::fs::write(&p, [0u8; 7]).unwrap();
        assert!(OffsetIndex::open(&p, 100, 1024, 1000).is_err());
        std::fs::write(&p, [0u8; 16]).unwrap();
        assert!(OffsetIndex::open(&p, 100, 1024, 1000).is_err());
    }

    #[test]
    fn offset_index_fills_and_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.index");
        let mut idx = OffsetIndex::open(&p, 0, 24, 0).unwrap();
        for i in 1..=5 {
            idx.append(i * 10, i as u64 * 100);
        }
        idx.persist().unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 24);
        assert!(idx.is_full());
        assert_eq!(idx.len(), 3);
        idx.truncate_to_position(200);
        assert_eq!(idx.len(), 1);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 8);
    }

    #[test]
    fn time_index_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.timeindex");
        let mut idx = TimeIndex::open(&p, 0, 1200, i64::MAX).unwrap();
        idx.maybe_append(1000, 4);
        idx.maybe_append(900, 6); // not larger: ignored
        idx.maybe_append(2000, 9);
        idx.persist().unwrap();
        assert!(idx.is_unsynced());
        idx.sync().unwrap();
        assert!(!idx.is_unsynced());
        assert_eq!(idx.last(), Some((2000, 9)));
        assert_eq!(idx.last_below(1000), None);
        assert_eq!(idx.last_below(1001), Some((1000, 4)));
        assert_eq!(idx.last_below(5000), Some((2000, 9)));
        drop(idx);
        let mut idx = TimeIndex::open(&p, 0, 1200, 10).unwrap();
        idx.truncate_to_offset(9);
        assert_eq!(idx.last(), Some((1000, 4)));
        assert!(TimeIndex::open(&p, 0, 1200, 4).is_err());
    }

    #[test]
    fn failed_writes_keep_entries_in_memory_and_catch_up_later() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.index");
        let mut idx = OffsetIndex::open(&p, 0, 1024, 0).unwrap();
        idx.append(10, 100);
        idx.persist().unwrap();
        // /dev/full fails every write with ENOSPC, like a full disk.
        if !idx.fail_writes() {
            return;
        }
        idx.append(20, 200);
        assert!(idx.persist().is_err());
        idx.append(30, 300);
        assert!(idx.persist().is_err());
        assert!(idx.is_lagging());
        assert_eq!(idx.lookup(25), (20, 200), "the entry is served from memory");
        // Truncation while lagging: memory is cut, and the file stays a prefix.
        idx.truncate_to_position(300);
        assert_eq!(idx.len(), 2);
        idx.file.redirect = None;
        idx.persist().unwrap();
        assert!(!idx.is_lagging());
        drop(idx);
        let idx = OffsetIndex::open(&p, 0, 1024, 1000).unwrap();
        assert_eq!((idx.len(), idx.lookup(25)), (2, (20, 200)));

        // A detached index creates and replaces its file on the first write.
        std::fs::write(&p, [0xffu8; 13]).unwrap();
        let mut idx = OffsetIndex::empty(&p, 0, 1024);
        assert!(idx.is_lagging());
        idx.append(5, 50);
        idx.persist().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), [0, 0, 0, 5, 0, 0, 0, 50]);

        let tp = dir.path().join("0.timeindex");
        let mut t = TimeIndex::empty(&tp, 0, 1200);
        t.maybe_append(1000, 3);
        t.persist().unwrap();
        assert!(t.fail_writes());
        t.maybe_append(2000, 7);
        assert!(t.persist().is_err());
        assert_eq!(t.last(), Some((2000, 7)));
        t.file.redirect = None;
        t.persist().unwrap();
        let t = TimeIndex::open(&tp, 0, 1200, 10).unwrap();
        assert_eq!(t.last(), Some((2000, 7)));
    }
}

//! The two sparse per-segment indexes, in Kafka's file formats.
//!
//! The offset index (`.index`) maps a relative offset to a byte position in the segment
//! (8-byte entries: relative offset u32 BE, position u32 BE) and gets an entry every
//! `index.interval.bytes`. The time index (`.timeindex`) maps a timestamp to a relative
//! offset (12-byte entries: timestamp i64 BE, relative offset u32 BE) and gets an entry
//! only when the segment's largest timestamp grows. Both are small, so each is kept in a
//! `Vec` and the file is appended with positioned writes; lookups are binary searches on
//! the `Vec`. A file whose contents are not strictly increasing (torn write, zeros from a
//! crash, foreign garbage) is reported as inconsistent so the segment rebuilds it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// Sparse offset → position index of one segment.
#[derive(Debug)]
pub struct OffsetIndex {
    path: PathBuf,
    file: Arc<File>,
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
        let file = open_rw(path)?;
        let raw = read_all(&file)?;
        let mut idx = OffsetIndex {
            path: path.to_path_buf(),
            file: Arc::new(file),
            base_offset,
            entries: Vec::with_capacity(raw.len() / OFFSET_ENTRY),
            max_entries: (max_bytes as usize / OFFSET_ENTRY).max(1),
        };
        if raw.len() % OFFSET_ENTRY != 0 {
            return Err(IndexError::Inconsistent(idx.path));
        }
        for chunk in raw.chunks_exact(OFFSET_ENTRY) {
            let rel = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let pos = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            let increasing = idx.entries.last().is_none_or(|&(r, p)| rel > r && pos > p);
            if !increasing || pos as u64 >= segment_size.max(1) {
                return Err(IndexError::Inconsistent(idx.path));
            }
            idx.entries.push((rel, pos));
        }
        Ok(idx)
    }

    /// Discard every entry (before a rebuild).
    pub fn reset(&mut self) -> io::Result<()> {
        self.entries.clear();
        self.file.set_len(0)
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
    pub fn append(&mut self, offset: i64, position: u64) -> io::Result<()> {
        let rel = offset - self.base_offset;
        if self.is_full() || !(0..=u32::MAX as i64).contains(&rel) || position > u32::MAX as u64 {
            return Ok(());
        }
        let (rel, pos) = (rel as u32, position as u32);
        if let Some(&(r, p)) = self.entries.last() {
            if rel <= r || pos <= p {
                return Ok(());
            }
        }
        let mut entry = [0u8; OFFSET_ENTRY];
        entry[..4].copy_from_slice(&rel.to_be_bytes());
        entry[4..].copy_from_slice(&pos.to_be_bytes());
        let at = (self.entries.len() * OFFSET_ENTRY) as u64;
        self.file.write_all_at(&entry, at)?;
        self.entries.push((rel, pos));
        Ok(())
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
    pub fn truncate_to_position(&mut self, position: u64) -> io::Result<()> {
        let keep = self
            .entries
            .partition_point(|&(_, p)| (p as u64) < position);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.file.set_len((keep * OFFSET_ENTRY) as u64)?;
        }
        Ok(())
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// The file, for an fsync outside the partition lock.
    pub fn handle(&self) -> Arc<File> {
        self.file.clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Sparse timestamp → offset index of one segment.
#[derive(Debug)]
pub struct TimeIndex {
    path: PathBuf,
    file: Arc<File>,
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
        let file = open_rw(path)?;
        let raw = read_all(&file)?;
        let mut idx = TimeIndex {
            path: path.to_path_buf(),
            file: Arc::new(file),
            base_offset,
            entries: Vec::with_capacity(raw.len() / TIME_ENTRY),
            max_entries: (max_bytes as usize / TIME_ENTRY).max(1),
        };
        if raw.len() % TIME_ENTRY != 0 {
            return Err(IndexError::Inconsistent(idx.path));
        }
        for chunk in raw.chunks_exact(TIME_ENTRY) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let ts = i64::from_be_bytes(ts);
            let rel = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            let increasing = idx.entries.last().is_none_or(|&(t, r)| ts > t && rel >= r);
            if !increasing || base_offset + rel as i64 >= next_offset {
                return Err(IndexError::Inconsistent(idx.path));
            }
            idx.entries.push((ts, rel));
        }
        Ok(idx)
    }

    pub fn reset(&mut self) -> io::Result<()> {
        self.entries.clear();
        self.file.set_len(0)
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

    /// Add an entry when `timestamp` is larger than every indexed one.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) -> io::Result<()> {
        let rel = offset - self.base_offset;
        if self.is_full() || !(0..=u32::MAX as i64).contains(&rel) {
            return Ok(());
        }
        if let Some(&(t, r)) = self.entries.last() {
            if timestamp <= t || (rel as u32) < r {
                return Ok(());
            }
        }
        let mut entry = [0u8; TIME_ENTRY];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&(rel as u32).to_be_bytes());
        let at = (self.entries.len() * TIME_ENTRY) as u64;
        self.file.write_all_at(&entry, at)?;
        self.entries.push((timestamp, rel as u32));
        Ok(())
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
    pub fn truncate_to_offset(&mut self, offset: i64) -> io::Result<()> {
        let keep = self
            .entries
            .partition_point(|&(_, r)| self.base_offset + (r as i64) < offset);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.file.set_len((keep * TIME_ENTRY) as u64)?;
        }
        Ok(())
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// The file, for an fsync outside the partition lock.
    pub fn handle(&self) -> Arc<File> {
        self.file.clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        idx.append(110, 400).unwrap();
        idx.append(120, 800).unwrap();
        idx.append(115, 900).unwrap(); // not increasing: ignored
        assert_eq!(idx.lookup(99), (100, 0));
        assert_eq!(idx.lookup(110), (110, 400));
        assert_eq!(idx.lookup(119), (110, 400));
        assert_eq!(idx.lookup(500), (120, 800));
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
            idx.append(i * 10, i as u64 * 100).unwrap();
        }
        assert!(idx.is_full());
        assert_eq!(idx.len(), 3);
        idx.truncate_to_position(200).unwrap();
        assert_eq!(idx.len(), 1);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 8);
    }

    #[test]
    fn time_index_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.timeindex");
        let mut idx = TimeIndex::open(&p, 0, 1200, i64::MAX).unwrap();
        idx.maybe_append(1000, 4).unwrap();
        idx.maybe_append(900, 6).unwrap(); // not larger: ignored
        idx.maybe_append(2000, 9).unwrap();
        assert_eq!(idx.last(), Some((2000, 9)));
        assert_eq!(idx.last_below(1000), None);
        assert_eq!(idx.last_below(1001), Some((1000, 4)));
        assert_eq!(idx.last_below(5000), Some((2000, 9)));
        drop(idx);
        let mut idx = TimeIndex::open(&p, 0, 1200, 10).unwrap();
        idx.truncate_to_offset(9).unwrap();
        assert_eq!(idx.last(), Some((1000, 4)));
        assert!(TimeIndex::open(&p, 0, 1200, 4).is_err());
    }
}

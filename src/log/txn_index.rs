//! The aborted-transaction index of a segment (Kafka's `.txnindex`): one entry per
//! transaction whose ABORT marker lies in the segment, giving the producer id and the
//! transaction's first and last offset (the marker's). A read_committed fetch returns the
//! entries that overlap what it reads, so the consumer drops those producers' records.
//!
//! File format, Kafka's: 34-byte entries of version i16 (0), producer id i64, first offset
//! i64, last offset i64 and last stable offset i64 (the LSO once the transaction
//! completed), big-endian. As with the other indexes the `Vec` is the truth and the file
//! a cache of it, brought up to date when the segment is sealed, flushed or shut down; a
//! file that does not parse is rebuilt from the log. Aborted transactions are rare, so an
//! empty index has no file at all.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes of one entry.
pub const ENTRY: usize = 34;
const VERSION: i16 = 0;

/// One aborted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of the ABORT marker.
    pub last_offset: i64,
    /// The partition's last stable offset once this transaction completed: a read that
    /// ends at or below it meets no later entry of the segment.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; ENTRY] {
        let mut b = [0u8; ENTRY];
        b[0..2].copy_from_slice(&VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<AbortedTxn> {
        let i64_at = |at: usize| Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?));
        if i16::from_be_bytes(b.get(0..2)?.try_into().ok()?) != VERSION {
            return None;
        }
        Some(AbortedTxn {
            producer_id: i64_at(2)?,
            first_offset: i64_at(10)?,
            last_offset: i64_at(18)?,
            last_stable_offset: i64_at(26)?,
        })
    }
}

/// A segment's aborted transactions, ordered by marker offset.
#[derive(Debug)]
pub struct TxnIndex {
    path: PathBuf,
    entries: Vec<AbortedTxn>,
    /// How many entries the file holds (a prefix of `entries`); `None` when the file must
    /// be rewritten whole (after a truncation).
    persisted: Option<usize>,
    unsynced: bool,
}

impl TxnIndex {
    /// An empty index for a new segment (its file, if one is left over, is stale).
    pub fn empty(path: &Path) -> TxnIndex {
        let exists = path.exists();
        TxnIndex {
            path: path.to_path_buf(),
            entries: Vec::new(),
            persisted: if exists { None } else { Some(0) },
            unsynced: false,
        }
    }

    /// The stored index of `base_offset`'s segment holding offsets below `next_offset`:
    /// an error when the file does not parse, is not ordered, or names offsets outside
    /// the segment (the caller rebuilds it). No file is an empty index.
    pub fn open(path: &Path, base_offset: i64, next_offset: i64) -> io::Result<TxnIndex> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(TxnIndex::empty(path)),
            Err(e) => return Err(e),
        };
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a valid transaction index", path.display()),
            )
        };
        if bytes.len() % ENTRY != 0 {
            return Err(bad());
        }
        let mut entries = Vec::with_capacity(bytes.len() / ENTRY);
        for chunk in bytes.chunks_exact(ENTRY) {
            let e = AbortedTxn::decode(chunk).ok_or_else(bad)?;
            let ordered = entries
                .last()
                .is_none_or(|p: &AbortedTxn| p.last_offset < e.last_offset);
            if !ordered
                || e.first_offset > e.last_offset
                || e.last_offset < base_offset
                || e.last_offset >= next_offset
            {
                return Err(bad());
            }
            entries.push(e);
        }
        Ok(TxnIndex {
            path: path.to_path_buf(),
            persisted: Some(entries.len()),
            entries,
            unsynced: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add a transaction aborted by a marker past every entry's.
    pub fn push(&mut self, txn: AbortedTxn) {
        if let Some(last) = self.entries.last() {
            debug_assert!(last.last_offset < txn.last_offset);
        }
        self.entries.push(txn);
    }

    /// Forget the entries whose marker is at or past `offset` (the log was cut there).
    pub fn truncate_to(&mut self, offset: i64) {
        let keep = self.entries.partition_point(|e| e.last_offset < offset);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.persisted = None;
        }
    }

    /// Whether the file does not hold exactly the entries.
    pub fn is_lagging(&self) -> bool {
        self.persisted != Some(self.entries.len())
    }

    pub fn is_unsynced(&self) -> bool {
        self.unsynced
    }

    /// Bring the file up to date: append what it lacks, or rewrite it after a cut (no
    /// file when there is nothing to hold).
    pub fn persist(&mut self) -> io::Result<()> {
        let Some(from) = self.persisted.filter(|&n| n <= self.entries.len()) else {
            if self.entries.is_empty() {
                match std::fs::remove_file(&self.path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                self.persisted = Some(0);
                return Ok(());
            }
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&self.path)?;
            file.write_all_at(&self.encoded(0), 0)?;
            self.persisted = Some(self.entries.len());
            self.unsynced = true;
            return Ok(());
        };
        if from == self.entries.len() {
            return Ok(());
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)?;
        file.write_all_at(&self.encoded(from), (from * ENTRY) as u64)?;
        self.persisted = Some(self.entries.len());
        self.unsynced = true;
        Ok(())
    }

    /// fsync the file if a write since the last sync left it unsynced.
    pub fn sync(&mut self) -> io::Result<()> {
        if !self.unsynced {
            return Ok(());
        }
        match std::fs::File::open(&self.path) {
            Ok(f) => f.sync_data()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.unsynced = false;
        Ok(())
    }

    fn encoded(&self, from: usize) -> Vec<u8> {
        self.entries[from..]
            .iter()
            .flat_map(AbortedTxn::encode)
            .collect()
    }

    /// Append to `out` the transactions overlapping `[from, upper)`: marker at or past
    /// `from`, first offset below `upper`. True when no later segment can hold one (an
    /// entry's last stable offset reached `upper`).
    pub fn collect(&self, from: i64, upper: i64, out: &mut Vec<AbortedTxn>) -> bool {
        let start = self.entries.partition_point(|e| e.last_offset < from);
        for e in &self.entries[start..] {
            if e.first_offset < upper {
                out.push(*e);
            }
            if e.last_stable_offset >= upper {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(pid: i64, first: i64, last: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn entries_persist_in_kafkas_format_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.txnindex");
        let mut idx = TxnIndex::empty(&path);
        idx.persist().unwrap();
        assert!(!path.exists(), "an empty index has no file");
        idx.push(txn(7, 100, 105));
        idx.push(txn(8, 101, 110));
        assert!(idx.is_lagging());
        idx.persist().unwrap();
        idx.sync().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 2 * ENTRY);
        assert_eq!(&bytes[0..2], &[0, 0]);
        assert_eq!(i64::from_be_bytes(bytes[2..10].try_into().unwrap()), 7);
        idx.push(txn(9, 111, 120));
        idx.persist().unwrap();
        let back = TxnIndex::open(&path, 100, 200).unwrap();
        assert_eq!(back.entries(), idx.entries());
        // Cut: the file is rewritten without the entries at or past the cut.
        idx.truncate_to(110);
        idx.persist().unwrap();
        assert_eq!(
            TxnIndex::open(&path, 100, 200).unwrap().entries(),
            &[txn(7, 100, 105)]
        );
        idx.truncate_to(0);
        idx.persist().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn damaged_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.txnindex");
        let mut good = TxnIndex::empty(&path);
        good.push(txn(1, 10, 12));
        good.push(txn(2, 11, 15));
        good.persist().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // Torn, out of range, out of order, unknown version.
        std::fs::write(&path, &bytes[..ENTRY + 3]).unwrap();
        assert!(TxnIndex::open(&path, 0, 100).is_err());
        std::fs::write(&path, &bytes).unwrap();
        assert!(TxnIndex::open(&path, 13, 100).is_err());
        assert!(TxnIndex::open(&path, 0, 15).is_err());
        let mut swapped = bytes[ENTRY..].to_vec();
        swapped.extend_from_slice(&bytes[..ENTRY]);
        std::fs::write(&path, &swapped).unwrap();
        assert!(TxnIndex::open(&path, 0, 100).is_err());
        let mut v1 = bytes.clone();
        v1[1] = 1;
        std::fs::write(&path, &v1).unwrap();
        assert!(TxnIndex::open(&path, 0, 100).is_err());
    }

    #[test]
    fn collect_returns_overlapping_transactions() {
        let mut idx = TxnIndex::empty(Path::new("/nonexistent/x.txnindex"));
        idx.push(txn(1, 0, 4));
        idx.push(txn(2, 3, 9));
        idx.push(txn(3, 20, 25));
        let mut out = Vec::new();
        assert!(!idx.collect(5, 30, &mut out));
        assert_eq!(
            out.iter().map(|t| t.producer_id).collect::<Vec<_>>(),
            [2, 3]
        );
        out.clear();
        // A read ending at 8 meets txn 2 (it started at 3); txn 2's LSO (10) ends the search.
        assert!(idx.collect(0, 8, &mut out));
        assert_eq!(
            out.iter().map(|t| t.producer_id).collect::<Vec<_>>(),
            [1, 2]
        );
    }
}

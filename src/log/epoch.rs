//! The leader-epoch cache of one partition and its `leader-epoch-checkpoint` file.
//!
//! Each entry says "epoch E started at offset O". Followers use it (through
//! OffsetForLeaderEpoch) to find where their log diverges from the leader's, so it must
//! survive restarts: every change is written to the checkpoint file (Kafka's text format:
//! a version line `0`, a count line, then `epoch offset` lines) through a temporary file
//! and a rename, so a crash leaves either the old or the new file.
//!
//! The first write of a partition that has no checkpoint yet (every new partition's first
//! append) skips the fsyncs: there is no old file to protect, a torn new one reads as
//! empty, and the partition's next flush syncs it before any of its records counts as
//! durable ([`EpochCache::take_unsynced`]). That keeps two fsyncs per partition off the
//! first produce to each of thousands of new partitions.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// (epoch, start offset) entries, both strictly increasing.
#[derive(Debug)]
pub struct EpochCache {
    path: PathBuf,
    entries: Vec<(i32, i64)>,
    /// The file lags the entries: a write failed (full disk) and must be retried.
    dirty: bool,
    /// A checkpoint file exists (its contents are replaced atomically, with fsyncs).
    on_disk: bool,
    /// Written without an fsync; the next flush syncs it.
    unsynced: bool,
}

impl EpochCache {
    /// Load the checkpoint in `dir`; a missing file is an empty cache, a malformed one is
    /// logged and treated as empty (the epochs are rebuilt from the batches appended next).
    pub fn open(dir: &Path) -> EpochCache {
        let path = dir.join(CHECKPOINT_FILE);
        let (entries, on_disk) = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let entries = parse_checkpoint(&text).unwrap_or_else(|| {
                    tracing::warn!(file = %path.display(), "malformed leader-epoch checkpoint ignored");
                    Vec::new()
                });
                (entries, true)
            }
            Err(e) => (Vec::new(), e.kind() != io::ErrorKind::NotFound),
        };
        EpochCache {
            path,
            entries,
            dirty: false,
            on_disk,
            unsynced: false,
        }
    }

    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.0)
    }

    /// Record that `epoch` starts at `offset`. Only a newer epoch adds an entry (older or
    /// equal epochs are what the cache already knows); returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, offset: i64) -> io::Result<bool> {
        if epoch < 0 || self.entries.last().is_some_and(|&(e, _)| epoch <= e) {
            return Ok(false);
        }
        // An entry starting at or after `offset` was written by an epoch whose records
        // were truncated away; the new epoch supersedes it.
        self.entries.retain(|&(_, o)| o < offset);
        self.entries.push((epoch, offset));
        self.persist()?;
        Ok(true)
    }

    /// Kafka's `LeaderEpochFileCache.endOffsetFor`: the epoch at or below `requested` and
    /// the offset where the next higher epoch starts (the log end offset for the latest).
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        let Some(&(latest, _)) = self.entries.last() else {
            return (-1, -1);
        };
        if requested == latest {
            return (latest, log_end_offset);
        }
        let higher = self.entries.iter().find(|&&(e, _)| e > requested);
        let Some(&(_, higher_start)) = higher else {
            return (-1, -1);
        };
        match self.entries.iter().rev().find(|&&(e, _)| e <= requested) {
            Some(&(floor, _)) => (floor, higher_start),
            None => (requested, higher_start),
        }
    }

    /// The epoch of the record at `offset`, if the cache covers it.
    pub fn epoch_at(&self, offset: i64) -> Option<i32> {
        self.entries
            .iter()
            .rev()
            .find(|&&(_, o)| o <= offset)
            .map(|e| e.0)
    }

    /// Drop entries starting at or past `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> io::Result<()> {
        let before = self.entries.len();
        self.entries.retain(|&(_, o)| o < end_offset);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    /// The log now starts at `start_offset`: entries wholly before it go, and the epoch
    /// covering it is moved up to start there.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> io::Result<()> {
        let covering = self.entries.iter().rposition(|&(_, o)| o <= start_offset);
        let Some(i) = covering else { return Ok(()) };
        if i == 0 && self.entries[0].1 == start_offset {
            return Ok(());
        }
        self.entries.drain(..i);
        self.entries[0].1 = start_offset;
        self.persist()
    }

    /// Rewrite the checkpoint. On failure the entries stay right in memory and the cache
    /// is dirty until a later write succeeds.
    pub fn persist(&mut self) -> io::Result<()> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for (e, o) in &self.entries {
            text.push_str(&format!("{e} {o}\n"));
        }
        let written = if self.on_disk {
            write_atomically(&self.path, text.as_bytes())
        } else {
            std::fs::write(&self.path, text.as_bytes()).map(|()| self.unsynced = true)
        };
        self.dirty = written.is_err();
        self.on_disk |= written.is_ok();
        written
    }

    /// The checkpoint file if it was written without an fsync since the last call; the
    /// caller syncs it (and the directory) before advancing the recovery point, or hands
    /// it back with [`mark_unsynced`](Self::mark_unsynced) if it cannot.
    pub fn take_unsynced(&mut self) -> Option<PathBuf> {
        std::mem::take(&mut self.unsynced).then(|| self.path.clone())
    }

    pub fn mark_unsynced(&mut self) {
        self.unsynced = true;
    }

    /// Rewrite the checkpoint if an earlier write failed (at shutdown, on flush).
    pub fn persist_if_dirty(&mut self) -> io::Result<()> {
        if self.dirty {
            self.persist()?;
        }
        Ok(())
    }
}

fn parse_checkpoint(text: &str) -> Option<Vec<(i32, i64)>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut entries = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let mut parts = lines.next()?.split_whitespace();
        let epoch: i32 = parts.next()?.parse().ok()?;
        let offset: i64 = parts.next()?.parse().ok()?;
        if entries
            .last()
            .is_some_and(|&(e, o)| epoch <= e || offset < o)
        {
            return None;
        }
        entries.push((epoch, offset));
    }
    Some(entries)
}

/// Replace `path` with `data` so that a crash leaves the old or the new contents, whole.
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // A full disk: give back what the partial file took; the old file is untouched.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(parent) = path.parent() {
        // The rename is only durable once the directory entry is.
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> (tempfile::TempDir, EpochCache) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = EpochCache::open(dir.path());
        for &(e, o) in entries {
            c.assign(e, o).unwrap();
        }
        (dir, c)
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let (_d, empty) = cache(&[]);
        assert_eq!(empty.end_offset_for(0, 10), (-1, -1));
        let (_d, c) = cache(&[(2, 10), (4, 30), (7, 50)]);
        assert_eq!(c.end_offset_for(7, 80), (7, 80)); // latest: the log end
        assert_eq!(c.end_offset_for(9, 80), (-1, -1)); // nothing higher
        assert_eq!(c.end_offset_for(1, 80), (1, 10)); // below the first entry
        assert_eq!(c.end_offset_for(2, 80), (2, 30));
        assert_eq!(c.end_offset_for(3, 80), (2, 30)); // between: floor epoch
        assert_eq!(c.end_offset_for(5, 80), (4, 50));
        assert_eq!(c.latest_epoch(), Some(7));
        assert_eq!(c.epoch_at(9), None);
        assert_eq!(c.epoch_at(30), Some(4));
        assert_eq!(c.epoch_at(1000), Some(7));
    }

    #[test]
    fn persists_and_truncates() {
        let (dir, mut c) = cache(&[(0, 0), (1, 5), (1, 9), (0, 12), (3, 20)]);
        assert_eq!(c.entries(), &[(0, 0), (1, 5), (3, 20)]);
        let text = std::fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).unwrap();
        assert_eq!(text, "0\n3\n0 0\n1 5\n3 20\n");
        c.truncate_from_end(20).unwrap();
        c.truncate_from_start(7).unwrap();
        assert_eq!(c.entries(), &[(1, 7)]);
        let reopened = EpochCache::open(dir.path());
        assert_eq!(reopened.entries(), &[(1, 7)]);
        std::fs::write(dir.path().join(CHECKPOINT_FILE), "0\n5\n1 2\n").unwrap();
        assert!(EpochCache::open(dir.path()).entries().is_empty());
    }
}

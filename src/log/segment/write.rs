//! Writing a segment: appends (one positioned write per batch, cut back on failure),
//! index entries, rolling and sealing, truncation, and the removal of a deleted segment's
//! files.

use super::*;

impl Segment {
    /// Cut the segment at `position` (a batch boundary) and rebuild its bookkeeping.
    pub fn truncate_to_position(&mut self, position: u64) -> io::Result<()> {
        if position < self.size {
            self.log()?.set_len(position)?;
        }
        self.recover()?;
        self.txn_index.truncate_to(self.next_offset);
        Ok(())
    }

    /// Warn once per run of failures, not once per batch of a full-disk recovery.
    /// Warn once per run of failed index writes; passes the outcome on.
    pub(super) fn note_index_write(&mut self, written: io::Result<()>) -> io::Result<()> {
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
            .and_then(|()| self.time_index.persist())
            .and_then(|()| self.txn_index.persist());
        self.note_index_write(written)
    }

    /// Write the indexes and fsync them: what a sealed segment needs before a restart
    /// may trust it without recovery.
    pub fn settle_indexes(&mut self) -> io::Result<()> {
        self.persist_indexes()?;
        let synced = self
            .offset_index
            .sync()
            .and_then(|()| self.time_index.sync())
            .and_then(|()| self.txn_index.sync());
        self.note_index_write(synced)
    }

    /// Whether an index file does not hold exactly the in-memory index.
    pub fn indexes_lagging(&self) -> bool {
        self.offset_index.is_lagging()
            || self.time_index.is_lagging()
            || self.txn_index.is_lagging()
    }

    /// Whether the index files are not yet what a restart may trust: lagging, or written
    /// but not synced. An empty segment's never are: a restart that finds its index files
    /// missing, or holding anything, rebuilds them from nothing for free.
    pub fn indexes_unsettled(&self) -> bool {
        self.size > 0
            && (self.indexes_lagging()
                || self.offset_index.is_unsynced()
                || self.time_index.is_unsynced()
                || self.txn_index.is_unsynced())
    }

    /// Remove both sparse index files, so the next open rebuilds them from the log (a
    /// lagging time index would understate the segment's largest timestamp). The
    /// transaction index cannot be rebuilt from this segment alone: if its file lags,
    /// this fails, so the shutdown counts as unclean and the next open replays.
    pub fn remove_index_files(&self) -> io::Result<()> {
        if self.txn_index.is_lagging() {
            return Err(io::Error::other(format!(
                "cannot write {}",
                self.txn_index.path().display()
            )));
        }
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
            self.txn_index.path().to_path_buf(),
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

    /// The segment file is about to be replaced by another of the same name (the
    /// cleaner's swap): views taken before keep reading this one.
    pub fn retire(&self) {
        self.log.detach();
    }
}

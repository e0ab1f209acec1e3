//! Durability: waiting for the directory's flusher (group commit), fsyncing in place, and
//! the background flush policy (flush.ms, flush.messages).

use super::*;

impl PartitionLog {
    /// Wait until everything up to and including `offset` is fsynced (group commit).
    pub async fn flush_to(&self, offset: i64) -> Result<(), LogError> {
        if offset < self.flushed.load(Ordering::Acquire) {
            return Ok(());
        }
        let me = self.me.upgrade().ok_or(LogError::Closed)?;
        let handle = self.flusher.lock().clone();
        if let Some(h) = handle {
            match h.flush(me.clone(), offset).await {
                Err(LogError::Closed) => {}
                other => return other,
            }
        }
        // No flusher (tests, shutdown): flush here, still one fsync for all who queue.
        let _guard = self.local_flush.lock().await;
        if offset < self.flushed.load(Ordering::Acquire) {
            return Ok(());
        }
        tokio::task::spawn_blocking(move || me.flush_blocking())
            .await
            .map_err(|e| LogError::Io(std::io::Error::other(e.to_string())))??;
        Ok(())
    }

    /// fsync every segment holding unflushed data and advance the recovery point to the
    /// log end as it was when the flush began. Returns the new flushed offset.
    pub fn flush_blocking(&self) -> std::io::Result<i64> {
        let started = std::time::Instant::now();
        let (target, files, dir_dirty) = {
            let mut inner = self.inner.lock();
            let flushed = self.flushed.load(Ordering::Acquire);
            let target = self.log_end.load(Ordering::Acquire);
            let n = inner.segments.len();
            // Sealed segments write and sync their indexes when sealed (a sealed segment
            // below the recovery point is trusted without a rebuild); ones that could not
            // (full disk) are retried here, off the append path. The active segment's
            // indexes need neither: a restart after a crash always recovers it.
            for s in inner.segments[..n.saturating_sub(1)].iter_mut() {
                if s.indexes_unsettled() {
                    let _ = s.settle_indexes();
                }
            }
            // The active segment, plus sealed ones still holding unflushed data.
            let files: Vec<std::sync::Arc<std::fs::File>> = inner
                .segments
                .iter()
                .enumerate()
                .filter(|(i, s)| *i + 1 == n || s.next_offset() > flushed)
                .map(|(_, s)| s.log_handle())
                .collect::<std::io::Result<_>>()?;
            // Small files written without fsyncs when the partition was new are synced
            // with its first flush, so nothing counts as durable before they are.
            let mut files = files;
            let metadata_unsynced = std::mem::take(&mut inner.metadata_unsynced);
            let epochs_unsynced = inner.epochs.take_unsynced();
            if let Some(p) = &epochs_unsynced {
                match std::fs::File::open(p) {
                    Ok(f) => files.push(Arc::new(f)),
                    Err(e) => {
                        inner.epochs.mark_unsynced();
                        inner.metadata_unsynced |= metadata_unsynced;
                        return Err(e);
                    }
                }
            }
            let parent_unsynced = std::mem::take(&mut inner.parent_unsynced);
            let dir_dirty = std::mem::take(&mut inner.dir_dirty)
                || metadata_unsynced
                || epochs_unsynced.is_some()
                || parent_unsynced;
            (
                target,
                files,
                (
                    dir_dirty,
                    metadata_unsynced,
                    epochs_unsynced.is_some(),
                    parent_unsynced,
                ),
            )
        };
        let (dir_dirty, metadata_unsynced, epochs_unsynced, parent_unsynced) = dir_dirty;
        if target <= self.flushed.load(Ordering::Acquire) && !dir_dirty {
            return Ok(target);
        }
        let unflushed_before = self.unflushed_messages.load(Ordering::Acquire);
        let result = (|| {
            for f in &files {
                f.sync_data()?;
            }
            if metadata_unsynced {
                match std::fs::File::open(self.dir.join(PARTITION_METADATA_FILE)) {
                    Ok(f) => f.sync_data()?,
                    // Never written (the write failed): shutdown writes it atomically.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            if dir_dirty {
                std::fs::File::open(&self.dir)?.sync_all()?;
            }
            if parent_unsynced {
                if let Some(parent) = self.dir.parent() {
                    std::fs::File::open(parent)?.sync_all()?;
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            // The directory must be synced again next time.
            let mut inner = self.inner.lock();
            inner.dir_dirty |= dir_dirty;
            inner.metadata_unsynced |= metadata_unsynced;
            inner.parent_unsynced |= parent_unsynced;
            if epochs_unsynced {
                inner.epochs.mark_unsynced();
            }
            return Err(e);
        }
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::metrics::LOG_FLUSHES_TOTAL).increment(1);
        metrics::histogram!(crate::metrics::LOG_PARTITION_FLUSH_DURATION_SECONDS)
            .record(started.elapsed().as_secs_f64());
        self.flushed.fetch_max(target, Ordering::AcqRel);
        self.unflushed_messages
            .fetch_sub(unflushed_before, Ordering::AcqRel);
        self.last_flush_ms.store(now_ms(), Ordering::Release);
        Ok(target)
    }

    /// Ask the directory flusher to flush without waiting (flush.messages / flush.ms).
    pub fn kick_flush(&self) {
        let handle = self.flusher.lock().clone();
        if let (Some(h), Some(me)) = (handle, self.me.upgrade()) {
            h.kick(me);
        }
    }

    /// Whether the background flush policy (flush.ms / flush.messages) wants a flush now.
    pub fn background_flush_due(&self, now: i64) -> bool {
        let cfg = self.config.read();
        let unflushed = self.unflushed_messages.load(Ordering::Acquire);
        if unflushed <= 0 && self.flushed.load(Ordering::Acquire) >= self.log_end_offset() {
            return false;
        }
        unflushed >= cfg.flush_messages
            || now.saturating_sub(self.last_flush_ms.load(Ordering::Acquire)) >= cfg.flush_ms
    }

    /// Route flushes through a directory flusher (set by the log manager).
    pub fn attach_flusher(&self, handle: Option<FlusherHandle>) {
        *self.flusher.lock() = handle;
    }

    /// Number of fsync rounds this log has done (tests and metrics).
    pub fn fsync_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// Everything below this offset is durable.
    pub fn recovery_point(&self) -> i64 {
        self.flushed.load(Ordering::Acquire)
    }
}

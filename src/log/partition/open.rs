//! Opening a partition's log: the directory, segments and indexes, recovery of everything
//! past the recovery point (a torn or corrupt tail is cut, never served), the leader-
//! epoch cache and producer state; and the clean shutdown that makes the files exactly
//! what the next open reads.

use super::*;

impl PartitionLog {
    /// Open (creating if needed) the partition directory and recover its log.
    ///
    /// Opening an existing log writes nothing it cannot do without: rebuilt indexes stay
    /// in memory until their files can be written, and checkpoint, snapshot and metadata
    /// writes that fail (full disk) are retried later. So a full disk still opens, and
    /// serves, every acknowledged record. Only a new (empty) log needs its first segment
    /// file created.
    pub fn open(opts: OpenOptions) -> Result<Arc<PartitionLog>, LogError> {
        let dir = opts.dir.clone();
        let mut checkpoint_stale = false;
        let mut metadata_unsynced = false;
        let created = !dir.is_dir();
        if created {
            std::fs::create_dir_all(&dir)?;
            // A new log must not inherit the cleaner checkpoint of a deleted one of the
            // same name: its records would count as clean and enter no offset map.
            let log_dir = dir.parent().unwrap_or(&dir);
            if let Err(e) =
                crate::log::cleaner::forget_checkpoint(log_dir, &opts.topic, opts.partition)
            {
                tracing::warn!(dir = %dir.display(), error = %e,
                    "cannot clear an old cleaner checkpoint; the first pass cleans everything");
                checkpoint_stale = true;
            }
        }
        let topic_id = match read_partition_metadata(&dir) {
            Some(id) => id,
            None => {
                // A directory found on disk without metadata keeps it absent until the
                // controller supplies the id; never record a nil id. A failed write is
                // retried at shutdown: the id is known in memory meanwhile.
                //
                // A new partition's file is written without fsyncs (two per partition made
                // creating thousands of partitions slow); its first flush syncs it and the
                // directory, before any record counts as durable. A crash before that can
                // only leave the file absent or torn, which reads as absent: the log
                // (holding nothing durable) then takes its id from metadata, as above.
                if !opts.topic_id.is_nil() {
                    let written = if created {
                        metadata_unsynced = true;
                        std::fs::write(
                            dir.join(PARTITION_METADATA_FILE),
                            partition_metadata_text(opts.topic_id),
                        )
                    } else {
                        write_partition_metadata(&dir, opts.topic_id)
                    };
                    if let Err(e) = written {
                        tracing::warn!(dir = %dir.display(), error = %e,
                            "cannot write partition.metadata; will retry");
                    }
                }
                opts.topic_id
            }
        };
        let seg_opts = SegmentOptions::from(&opts.config);
        // A cleaner pass cut short by a crash is finished or undone before anything reads
        // the segments.
        crate::log::cleaner::recover_interrupted(&dir)?;
        let mut bases = list_segments(&dir)?;
        bases.sort_unstable();
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
        let mut recovered_any = false;
        // The first segment whose aborted-transaction index must be rebuilt by replay.
        let mut replay_from = i64::MAX;
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            // A segment may hold unflushed offsets if it reaches the recovery point.
            let recover = !opts.clean_shutdown && next_base.is_none_or(|n| n > opts.recovery_point);
            let (seg, outcome) = Segment::open(&dir, base, seg_opts, recover, &opts.handles)?;
            recovered_any |= recover;
            if recover || outcome.txn_index_lost {
                replay_from = replay_from.min(base);
            }
            let overlaps = segments.last().is_some_and(|p| p.next_offset() > base);
            if overlaps {
                tracing::warn!(dir = %dir.display(), base, "segment overlaps its predecessor; dropping it and later ones");
                for b in &bases[i..] {
                    remove_segment_files(&dir, *b);
                }
                break;
            }
            let damaged = outcome.truncated_bytes > 0 && !outcome.zero_tail;
            if damaged {
                metrics::counter!(crate::metrics::LOG_RECOVERY_TRUNCATED_BYTES_TOTAL)
                    .increment(outcome.truncated_bytes);
            }
            segments.push(seg);
            if damaged && next_base.is_some() {
                // Kafka's rule: after a corrupt batch nothing later can be trusted.
                tracing::warn!(dir = %dir.display(), base, "corruption inside the log; dropping later segments");
                for b in &bases[i + 1..] {
                    remove_segment_files(&dir, *b);
                }
                break;
            }
        }
        let saved_start = checkpoint::read(&dir.join(checkpoint::LOG_START_FILE))
            .get(&(opts.topic.clone(), opts.partition))
            .copied()
            .unwrap_or(0);
        // Indexes rebuilt for sealed segments are written now if the disk allows (the
        // next flush or the shutdown retries otherwise); the active one's wait for its
        // seal, like those of any active segment.
        let sealed = segments.len().saturating_sub(1);
        for seg in &mut segments[..sealed] {
            if seg.indexes_lagging() {
                let _ = seg.settle_indexes();
            }
        }
        if segments.is_empty() {
            segments.push(Segment::create(
                &dir,
                saved_start.max(0),
                seg_opts,
                &opts.handles,
            )?);
        }
        let first_base = segments[0].base_offset();
        let log_end = segments.last().map_or(0, |s| s.next_offset());
        let log_start = saved_start.clamp(first_base, log_end.max(first_base));
        let mut epochs = EpochCache::open(&dir);
        // The cache is right in memory either way; the checkpoint is rewritten on its next
        // change or at shutdown, and re-truncated by the next open if we crash first.
        if let Err(e) = epochs
            .truncate_from_end(log_end)
            .and_then(|()| epochs.truncate_from_start(log_start))
        {
            tracing::warn!(dir = %dir.display(), error = %e,
                "cannot rewrite leader-epoch checkpoint; will retry");
        }
        let flushed = if opts.clean_shutdown {
            log_end
        } else {
            opts.recovery_point.clamp(first_base, log_end)
        };
        // Records above the checkpointed high watermark may not be on the other in-sync
        // replicas: they stay invisible to consumers until replication confirms them.
        let start_hw = opts
            .high_watermark
            .map_or(log_end, |hw| hw.clamp(log_start, log_end));
        let producers = load_producer_state(
            &dir,
            &mut segments,
            log_start,
            log_end,
            replay_from,
            start_hw,
        )?;
        if recovered_any {
            tracing::info!(topic = %opts.topic, partition = opts.partition, log_start,
                log_end, "partition log recovered");
        }
        let first_unstable = producers.first_unstable_offset().unwrap_or(i64::MAX);
        let has_aborted = segments.iter().any(|s| !s.aborted_txns().is_empty());
        let (hw, _) = watch::channel(start_hw);
        let (end_tx, _) = watch::channel(log_end);
        let jitter = if opts.config.segment_jitter_ms > 0 {
            (Uuid::new_v4().as_u128() % opts.config.segment_jitter_ms as u128) as i64
        } else {
            0
        };
        Ok(Arc::new_cyclic(|me| PartitionLog {
            topic: opts.topic,
            partition: opts.partition,
            topic_id: Mutex::new(topic_id),
            dir,
            me: me.clone(),
            handles: opts.handles,
            inner: Mutex::new(Inner {
                segments,
                epochs,
                producers,
                dir_dirty: true,
                metadata_unsynced,
                parent_unsynced: created,
            }),
            config: RwLock::new(opts.config),
            hw,
            auto_high_watermark: AtomicBool::new(true),
            end_tx,
            log_start: AtomicI64::new(log_start),
            log_end: AtomicI64::new(log_end),
            first_unstable: AtomicI64::new(first_unstable),
            has_aborted: AtomicBool::new(has_aborted),
            flushed: AtomicI64::new(flushed),
            unflushed_messages: AtomicI64::new(0),
            last_flush_ms: AtomicI64::new(now_ms()),
            fsyncs: AtomicU64::new(0),
            local_flush: tokio::sync::Mutex::new(()),
            flusher: Mutex::new(None),
            closed: AtomicBool::new(false),
            frozen: AtomicBool::new(false),
            roll_jitter_ms: jitter,
            producer_id_expiration_ms: opts.producer_id_expiration_ms,
            clean_lock: Mutex::new(()),
            truncations: AtomicU64::new(0),
            checkpoint_stale: AtomicBool::new(checkpoint_stale),
        }))
    }

    /// Clean shutdown of this log: flush, seal the active segment (gives back
    /// preallocated space) and flush again so the files are exactly what a restart reads.
    ///
    /// An error means the next start must not trust this log without recovery (the data
    /// is not durable, or a segment file does not end with its last batch). Everything
    /// else is best effort, because a full disk must not turn a clean shutdown into a
    /// full recovery: index files that cannot be completed are removed (the next open
    /// rebuilds them from the log), a missing producer snapshot only costs a longer
    /// replay, and the leader-epoch checkpoint was written when each epoch began.
    pub fn shutdown(&self) -> Result<(), LogError> {
        self.flush_blocking()?;
        {
            let mut inner = self.inner.lock();
            let n = inner.segments.len();
            let mut dir_changed = false;
            for (i, seg) in inner.segments.iter_mut().enumerate() {
                if i + 1 == n {
                    seg.seal()?;
                    seg.sync_log()?;
                }
                if !seg.indexes_unsettled() {
                    continue;
                }
                match seg.settle_indexes() {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(topic = %self.topic, partition = self.partition,
                            base = seg.base_offset(), error = %e,
                            "cannot complete index files; removing them for a rebuild");
                        seg.remove_index_files()?;
                        dir_changed = true;
                    }
                }
            }
            if dir_changed {
                std::fs::File::open(&self.dir)?.sync_all()?;
            }
            // A log with no producer state and nothing to replay needs no snapshot (a
            // broker with thousands of idle partitions would spend two fsyncs on each).
            let nothing_to_replay =
                inner.producers.is_empty() && self.log_end_offset() == self.log_start_offset();
            if !nothing_to_replay {
                if let Err(e) = write_snapshot(&self.dir, &inner.producers) {
                    tracing::warn!(topic = %self.topic, partition = self.partition, error = %e,
                        "cannot write producer snapshot at shutdown");
                }
            }
            if let Err(e) = inner.epochs.persist_if_dirty() {
                tracing::warn!(topic = %self.topic, partition = self.partition, error = %e,
                    "cannot rewrite leader-epoch checkpoint at shutdown");
            }
            let id = self.topic_id();
            if !id.is_nil() && read_partition_metadata(&self.dir) != Some(id) {
                if let Err(e) = write_partition_metadata(&self.dir, id) {
                    tracing::warn!(topic = %self.topic, partition = self.partition, error = %e,
                        "cannot write partition.metadata at shutdown");
                }
            }
        }
        self.close();
        Ok(())
    }
}

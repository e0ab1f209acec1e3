//! The log manager's background work and its end: the per-directory flushers, the
//! background flush scheduler, retention and compaction passes, recovery-point and high-
//! watermark checkpoints, and the orderly shutdown that flushes and checkpoints every
//! log.

use super::*;

impl LogManager {
    /// Start the flushers (one per directory), the background flush scheduler and the
    /// retention task. They stop when `shutdown` flips to true.
    pub fn start_background(
        self: &Arc<Self>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        let mut handles = Vec::new();
        for _ in &self.dirs {
            let (handle, task) = flusher::channel();
            handles.push(handle);
            tasks.push(tokio::spawn(task.run(shutdown.clone())));
        }
        for log in self.all() {
            if let Some(i) = self.dir_index(&log) {
                log.attach_flusher(Some(handles[i].clone()));
            }
        }
        *self.flushers.lock() = Some(handles);

        let me = Arc::downgrade(self);
        let tick_ms = self.cfg.flush_scheduler_interval_ms.clamp(10, 1000);
        let mut stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(tick_ms));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_checkpoint = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                if *stop.borrow() {
                    break;
                }
                let Some(mgr) = me.upgrade() else { break };
                mgr.background_flush_pass();
                if last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL {
                    last_checkpoint = tokio::time::Instant::now();
                    let m = mgr.clone();
                    let _ =
                        tokio::task::spawn_blocking(move || m.checkpoint_recovery_points()).await;
                }
            }
        }));

        let me = Arc::downgrade(self);
        let every = Duration::from_millis(self.cfg.retention_check_interval_ms.max(1));
        let mut stop = shutdown;
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                if *stop.borrow() {
                    break;
                }
                let Some(mgr) = me.upgrade() else { break };
                let _ = tokio::task::spawn_blocking(move || mgr.retention_pass()).await;
            }
        }));
        tasks
    }

    /// Flush logs whose flush.ms / flush.messages say so (Kafka's background flush). The
    /// requests go to the directory flushers without waiting, so due logs share fsync
    /// rounds with producers' waits.
    fn background_flush_pass(&self) {
        let now = now_ms();
        for log in self.all() {
            if log.background_flush_due(now) {
                log.kick_flush();
            }
        }
    }

    /// One retention pass over every log, then a cleaner pass over compacted ones;
    /// returns the number of segments deleted.
    pub fn retention_pass(&self) -> usize {
        let now = now_ms();
        let mut deleted = 0;
        for log in self.all() {
            match log.apply_retention(now) {
                Ok(n) => deleted += n,
                Err(LogError::Closed) => {}
                Err(e) => tracing::warn!(topic = log.topic(), partition = log.partition(),
                    error = %e, "retention failed"),
            }
            // Compaction after retention, so it never rewrites segments about to go.
            if log.config().compact {
                match log.clean(now) {
                    Ok(stats) if stats.ran => {
                        metrics::counter!(crate::metrics::LOG_CLEANER_RUNS_TOTAL).increment(1);
                        metrics::counter!(crate::metrics::LOG_CLEANER_CLEANED_BYTES_TOTAL)
                            .increment(stats.bytes_read);
                    }
                    Ok(_) | Err(LogError::Closed) => {}
                    Err(e) => tracing::warn!(topic = log.topic(), partition = log.partition(),
                        error = %e, "log cleaning failed"),
                }
            }
        }
        deleted
    }

    /// Write each directory's recovery-point and high-watermark checkpoints.
    pub fn checkpoint_recovery_points(&self) {
        let logs = self.all();
        for (i, dir) in self.dirs.iter().enumerate() {
            if dir.error.lock().is_some() {
                continue;
            }
            let offsets: checkpoint::Offsets = logs
                .iter()
                .filter(|l| self.dir_index(l) == Some(i))
                .map(|l| ((l.topic().to_string(), l.partition()), l.recovery_point()))
                .collect();
            let path = dir.path.join(checkpoint::RECOVERY_POINT_FILE);
            if let Err(e) = self.with_descriptors(|| checkpoint::write(&path, &offsets)) {
                tracing::warn!(file = %path.display(), error = %e, "cannot write recovery points");
            }
            let hws: checkpoint::Offsets = logs
                .iter()
                .filter(|l| self.dir_index(l) == Some(i))
                .map(|l| ((l.topic().to_string(), l.partition()), l.high_watermark()))
                .collect();
            let path = dir.path.join(checkpoint::HIGH_WATERMARK_FILE);
            if let Err(e) = self.with_descriptors(|| checkpoint::write(&path, &hws)) {
                tracing::warn!(file = %path.display(), error = %e, "cannot write high watermarks");
            }
        }
    }

    /// Flush everything, write recovery checkpoints and producer snapshots, mark clean.
    /// Blocking file I/O: call it from `spawn_blocking` (or after the runtime stopped),
    /// after the background tasks were told to stop.
    ///
    /// A directory is marked clean only if every partition in it shut down cleanly and
    /// none is offline: the marker lets the next start trust the files without
    /// re-validation. The error returned is the first log that could not be flushed and
    /// sealed (its data may not be durable): that is what the exit status reports. The
    /// checkpoints and the marker are best effort, and only warned about: without them
    /// the next start re-validates more, but every flushed record is safe.
    pub fn shutdown(&self) -> Result<(), LogError> {
        *self.flushers.lock() = None;
        let mut failed = None;
        let mut unclean = vec![false; self.dirs.len()];
        // Each log's shutdown is a few fsyncs, which wait on the device rather than the
        // CPU: several at a time keep the device busy (10,000 partitions one after the
        // other took over half a minute).
        let logs = self.all();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Mutex<Vec<(Arc<PartitionLog>, LogError)>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..SHUTDOWN_THREADS.min(logs.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(log) = logs.get(i) else { break };
                    if let Err(e) = log.shutdown() {
                        results.lock().push((log.clone(), e));
                    }
                });
            }
        });
        for (log, e) in results.into_inner() {
            tracing::error!(topic = log.topic(), partition = log.partition(), error = %e,
                "log shutdown failed");
            if let Some(i) = self.dir_index(&log) {
                unclean[i] = true;
            }
            failed.get_or_insert(e);
        }
        for (dir, _) in self.offline.lock().values() {
            if let Some(i) = self
                .dirs
                .iter()
                .position(|d| Some(d.path.as_path()) == dir.parent())
            {
                unclean[i] = true;
            }
        }
        self.checkpoint_recovery_points();
        for (i, dir) in self.dirs.iter().enumerate() {
            if dir.error.lock().is_some() || unclean[i] {
                continue;
            }
            let marker = dir.path.join(CLEAN_SHUTDOWN_FILE);
            let marked = self.with_descriptors(|| {
                std::fs::File::create(&marker)
                    .and_then(|f| f.sync_all())
                    .and_then(|()| std::fs::File::open(&dir.path)?.sync_all())
            });
            if let Err(e) = marked {
                tracing::warn!(dir = %dir.path.display(), error = %e,
                    "cannot mark clean shutdown; the next start recovers");
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

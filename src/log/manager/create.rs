//! Creating and deleting partition logs: placement in the directory with the fewest (or
//! the one an operator chose), retries with backoff for logs that cannot be created,
//! offline partitions opened again where they lie, and removal through `-delete` renames.

use super::*;

impl LogManager {
    /// Create a partition's log unless it exists or its last failure is too recent to
    /// try again, and say what changed. `Err` means the log is not there (now or still).
    pub fn create_with_backoff(
        &self,
        topic: &str,
        partition: i32,
        topic_id: Uuid,
        cfg: TopicConfig,
    ) -> (Result<Arc<PartitionLog>, LogError>, CreateOutcome) {
        if let Some(log) = self.get(topic, partition) {
            return (Ok(log), CreateOutcome::Unchanged);
        }
        let key = (topic.to_string(), partition);
        let now = Instant::now();
        if let Some(f) = self.create_failures.lock().get(&key) {
            if f.retry_at > now {
                let e = std::io::Error::other(format!(
                    "partition log unavailable ({}); next attempt in {} ms",
                    f.error,
                    f.retry_at.duration_since(now).as_millis()
                ));
                return (Err(LogError::Io(e)), CreateOutcome::Unchanged);
            }
        }
        match self.get_or_create(topic, partition, topic_id, cfg) {
            Ok(log) => {
                let outcome = match self.create_failures.lock().remove(&key) {
                    Some(f) => CreateOutcome::Recovered {
                        attempts: f.attempts,
                    },
                    None => CreateOutcome::Unchanged,
                };
                (Ok(log), outcome)
            }
            Err(e) => {
                let error = e.to_string();
                let mut failures = self.create_failures.lock();
                let f = failures.entry(key).or_insert(CreateFailure {
                    error: String::new(),
                    attempts: 0,
                    retry_at: now,
                });
                let changed = f.error != error;
                f.attempts += 1;
                let wait = CREATE_RETRY_MIN
                    .saturating_mul(1 << (f.attempts - 1).min(8))
                    .min(CREATE_RETRY_MAX);
                f.retry_at = now + wait;
                f.error = error.clone();
                let outcome = if changed {
                    CreateOutcome::Failed(error)
                } else {
                    CreateOutcome::Unchanged
                };
                (Err(e), outcome)
            }
        }
    }

    /// A log that could not be created is due for another attempt.
    pub fn create_retry_due(&self) -> bool {
        let now = Instant::now();
        self.create_failures
            .lock()
            .values()
            .any(|f| f.retry_at <= now)
    }

    /// Forget creation failures of partitions no longer wanted here.
    pub fn retain_create_failures(&self, wanted: &HashSet<(String, i32)>) {
        self.create_failures
            .lock()
            .retain(|k, _| wanted.contains(k));
    }

    /// The log of a partition, created (in the directory with fewest partitions) if absent.
    /// An offline partition is opened again where it lies, never re-created elsewhere:
    /// that would hand out its offsets a second time.
    pub fn get_or_create(
        &self,
        topic: &str,
        partition: i32,
        topic_id: Uuid,
        cfg: TopicConfig,
    ) -> Result<Arc<PartitionLog>, LogError> {
        if let Some(log) = self.get(topic, partition) {
            return Ok(log);
        }
        let mut logs = self.logs.write();
        if let Some(log) = logs.get(&(topic.to_string(), partition)) {
            return Ok(log.clone());
        }
        let key = (topic.to_string(), partition);
        let offline_at = self.offline.lock().get(&key).map(|(p, _)| p.clone());
        if let Some(path) = offline_at {
            let log = PartitionLog::open(OpenOptions {
                dir: path.clone(),
                topic: topic.to_string(),
                partition,
                topic_id: Uuid::nil(),
                config: cfg,
                recovery_point: 0,
                clean_shutdown: false,
                producer_id_expiration_ms: self.cfg.producer_id_expiration_ms,
                high_watermark: None,
                handles: self.handles.clone(),
            })
            .inspect_err(|e| {
                if let Some(entry) = self.offline.lock().get_mut(&key) {
                    entry.1 = e.to_string();
                }
            })?;
            tracing::info!(dir = %path.display(), "offline partition opened");
            self.offline.lock().remove(&key);
            if log.topic_id().is_nil() && !topic_id.is_nil() {
                if let Err(e) = log.adopt_topic_id(topic_id) {
                    tracing::warn!(dir = %path.display(), error = %e, "cannot record topic id");
                }
            }
            if let Some(handles) = self.flushers.lock().as_ref() {
                if let Some(i) = self.dir_index(&log) {
                    log.attach_flusher(handles.get(i).cloned());
                }
            }
            if let Some(i) = self.dir_index(&log) {
                self.placed.lock()[i] += 1;
            }
            logs.insert(key, log.clone());
            return Ok(log);
        }
        let counts = self.placed.lock().clone();
        let usable = |i: &usize| self.dirs[*i].error.lock().is_none();
        let preferred = self.preferred.lock().remove(&key).filter(usable);
        let dir = preferred
            .or_else(|| {
                (0..self.dirs.len())
                    .filter(usable)
                    .min_by_key(|&i| counts[i])
            })
            .ok_or_else(|| LogError::Io(std::io::Error::other("no usable log directory")))?;
        let log = PartitionLog::open(OpenOptions {
            dir: self.dirs[dir].path.join(format!("{topic}-{partition}")),
            topic: topic.to_string(),
            partition,
            topic_id,
            config: cfg,
            recovery_point: 0,
            clean_shutdown: false,
            producer_id_expiration_ms: self.cfg.producer_id_expiration_ms,
            high_watermark: None,
            handles: self.handles.clone(),
        })?;
        if let Some(handles) = self.flushers.lock().as_ref() {
            log.attach_flusher(handles.get(dir).cloned());
        }
        self.placed.lock()[dir] += 1;
        logs.insert((topic.to_string(), partition), log.clone());
        Ok(log)
    }

    /// Close and remove one partition's log (a replica reassigned away from this broker).
    pub fn delete_partition(&self, topic: &str, partition: i32) -> Result<(), LogError> {
        let key = (topic.to_string(), partition);
        if let Some(m) = self.moves.lock().remove(&key) {
            m.cancel();
        }
        let removed = self.logs.write().remove(&key);
        let Some(log) = removed else {
            return Ok(());
        };
        self.recount_placement();
        log.close();
        let dir = log.dir().to_path_buf();
        // Renamed first, as for deleted topics, so that a crash mid-removal never leaves
        // a half-deleted directory that looks like a partition at the next start.
        let doomed = dir.with_file_name(format!(
            "{topic}-{partition}.{}-delete",
            Uuid::new_v4().simple()
        ));
        std::fs::rename(&dir, &doomed)
            .and_then(|()| std::fs::remove_dir_all(&doomed))
            .map_err(LogError::Io)
    }

    /// Close and remove every partition of a topic (offline ones too).
    pub fn delete_topic(&self, topic: &str) -> Result<(), LogError> {
        self.moves.lock().retain(|(t, _), m| {
            if t == topic {
                m.cancel();
            }
            t != topic
        });
        let mut removed: Vec<(i32, PathBuf)> = {
            let mut logs = self.logs.write();
            let keys: Vec<(String, i32)> =
                logs.keys().filter(|(t, _)| t == topic).cloned().collect();
            keys.iter()
                .filter_map(|k| logs.remove(k))
                .map(|log| {
                    log.close();
                    (log.partition(), log.dir().to_path_buf())
                })
                .collect()
        };
        self.recount_placement();
        self.offline.lock().retain(|(t, p), (dir, _)| {
            let gone = t == topic;
            if gone {
                removed.push((*p, dir.clone()));
            }
            !gone
        });
        let mut first_err = None;
        for (partition, dir) in removed {
            let name = format!("{topic}-{partition}.{}-delete", Uuid::new_v4().simple());
            let doomed = dir.with_file_name(name);
            let result =
                std::fs::rename(&dir, &doomed).and_then(|()| std::fs::remove_dir_all(&doomed));
            if let Err(e) = result {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove deleted partition");
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(LogError::Io(e)),
            None => Ok(()),
        }
    }
}

//! Moving a partition's log to another log directory of this broker
//! (AlterReplicaLogDirs), so an operator can balance disks or empty one.
//!
//! The files are copied into `<dest>/<topic>-<partition>.<id>-future` while the log stays
//! writable; DescribeLogDirs shows that future replica and how far it has come. Then the
//! log is frozen (writes answer NOT_LEADER_OR_FOLLOWER, clients retry; reads go on), the
//! in-flight acks=all writes are given a moment to complete, the log is flushed, and the
//! files that changed since their copy are copied again. The switch is made of renames
//! that a crash at any point leaves recoverable, each followed by a directory fsync:
//! the future copy becomes `<id>-moved` (complete), the old directory `<id>-delete`, and
//! the moved copy `<topic>-<partition>`. At start, [`finish_interrupted`] completes a
//! `-moved` copy whose original is gone and drops it otherwise, and drops `-future`
//! copies (the move must be asked again: the original is intact). The new log is opened
//! and takes the old one's place; the old directory is removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use uuid::Uuid;

use super::manager::LogManager;
use super::partition::{OpenOptions, PartitionLog};
use super::LogError;

/// How long a frozen log waits for its acks=all writes to be replicated before the
/// switch (they fail retriably otherwise).
const SETTLE: Duration = Duration::from_secs(5);

/// A move in progress, for DescribeLogDirs.
#[derive(Debug)]
pub struct Move {
    /// Index of the destination directory.
    pub dest: usize,
    pub future_dir: PathBuf,
    /// Bytes copied so far, and the size of the log when the copy began.
    pub copied: AtomicU64,
    pub total: u64,
    /// This broker leads the partition: its acks=all writes in flight wait on this log.
    leader: bool,
    cancelled: AtomicBool,
}

impl Move {
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }
}

/// `<dir>/<topic>-<partition>.<id>-<suffix>`.
fn sibling(dir: &Path, topic: &str, partition: i32, id: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{topic}-{partition}.{id}-{suffix}"))
}

/// (file name, (length, modification time)) of every file of a partition directory.
fn listing(dir: &Path) -> std::io::Result<BTreeMap<String, (u64, SystemTime)>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_file() {
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            out.insert(
                entry.file_name().to_string_lossy().into_owned(),
                (meta.len(), modified),
            );
        }
    }
    Ok(out)
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn fsync_file(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

/// Copies the files of `from` that `copied` does not have at their current length and
/// time into `to`, and removes from `to` what `from` no longer has.
fn sync_files(
    from: &Path,
    to: &Path,
    copied: &mut BTreeMap<String, (u64, SystemTime)>,
    progress: &AtomicU64,
    cancelled: &AtomicBool,
) -> Result<(), LogError> {
    let now = listing(from)?;
    for (name, stamp) in &now {
        if cancelled.load(Ordering::Acquire) {
            return Err(LogError::Io(std::io::Error::other("move cancelled")));
        }
        if copied.get(name) == Some(stamp) {
            continue;
        }
        let n = std::fs::copy(from.join(name), to.join(name))?;
        progress.fetch_add(n, Ordering::Relaxed);
        copied.insert(name.clone(), *stamp);
    }
    let gone: Vec<String> = copied
        .keys()
        .filter(|k| !now.contains_key(*k))
        .cloned()
        .collect();
    for name in gone {
        std::fs::remove_file(to.join(&name))?;
        copied.remove(&name);
    }
    Ok(())
}

impl LogManager {
    /// Starts moving `topic`-`partition` to log directory `dest` (a path of
    /// `log.dirs`). A partition already there is left alone (and a move of it elsewhere
    /// cancelled); one this broker does not host yet is created there when it comes.
    pub fn alter_log_dir(
        self: &Arc<Self>,
        topic: &str,
        partition: i32,
        dest: &Path,
        leader: bool,
    ) -> Result<(), LogError> {
        let dest = self
            .dir_named(dest)
            .ok_or_else(|| LogError::LogDirNotFound(dest.display().to_string()))?;
        if let Some(err) = self.dir_error(dest) {
            return Err(LogError::Io(std::io::Error::other(format!(
                "log directory offline: {err}"
            ))));
        }
        let key = (topic.to_string(), partition);
        let Some(log) = self.get(topic, partition) else {
            self.prefer_dir(key, dest);
            return Ok(());
        };
        let mut moves = self.moves.lock();
        if self.dir_of(&log) == Some(dest) {
            if let Some(m) = moves.remove(&key) {
                m.cancel();
            }
            return Ok(());
        }
        match moves.get(&key) {
            Some(m) if m.dest == dest => return Ok(()),
            Some(m) => m.cancel(),
            None => {}
        }
        let id = Uuid::new_v4().simple().to_string();
        let future_dir = sibling(self.dir_path(dest), topic, partition, &id, "future");
        let m = Arc::new(Move {
            dest,
            future_dir,
            copied: AtomicU64::new(0),
            total: log.size_bytes(),
            leader,
            cancelled: AtomicBool::new(false),
        });
        moves.insert(key.clone(), m.clone());
        drop(moves);
        let me = self.clone();
        std::thread::Builder::new()
            .name(format!("move-{topic}-{partition}"))
            .spawn(move || {
                let result = me.run_move(&log, &m, &id);
                match &result {
                    Ok(()) => tracing::info!(topic = %key.0, partition = key.1,
                        dir = %me.dir_path(m.dest).display(), "partition moved to another log directory"),
                    Err(e) => {
                        log.thaw();
                        let _ = std::fs::remove_dir_all(&m.future_dir);
                        tracing::warn!(topic = %key.0, partition = key.1, error = %e,
                            "moving partition to another log directory failed; it stays where it was");
                    }
                }
                let mut moves = me.moves.lock();
                if moves.get(&key).is_some_and(|cur| Arc::ptr_eq(cur, &m)) {
                    moves.remove(&key);
                }
            })
            .map_err(LogError::Io)?;
        Ok(())
    }

    fn run_move(&self, log: &Arc<PartitionLog>, m: &Move, id: &str) -> Result<(), LogError> {
        let (topic, partition) = (log.topic().to_string(), log.partition());
        let source = log.dir().to_path_buf();
        std::fs::create_dir_all(&m.future_dir)?;
        // 1. A first copy while the log takes writes.
        let mut copied = BTreeMap::new();
        sync_files(&source, &m.future_dir, &mut copied, &m.copied, &m.cancelled)?;
        // 2. Frozen: what acks=all writes are in flight settle, everything is on disk,
        // and the files that changed meanwhile are copied again.
        log.freeze();
        // On a leader, acks=all writes in flight complete when the high watermark
        // passes them; a follower's high watermark follows its leader's, so it has
        // nothing to wait for.
        let deadline = Instant::now() + if m.leader { SETTLE } else { Duration::ZERO };
        while log.high_watermark() < log.log_end_offset() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        log.flush_blocking()?;
        sync_files(&source, &m.future_dir, &mut copied, &m.copied, &m.cancelled)?;
        for name in copied.keys() {
            fsync_file(&m.future_dir.join(name))?;
        }
        fsync_dir(&m.future_dir)?;
        // 3. The switch, by renames a restart can always finish or undo.
        let dest_dir = self.dir_path(m.dest).to_path_buf();
        let moved = sibling(&dest_dir, &topic, partition, id, "moved");
        std::fs::rename(&m.future_dir, &moved)?;
        fsync_dir(&dest_dir)?;
        let final_dir = dest_dir.join(format!("{topic}-{partition}"));
        let doomed = sibling(
            source.parent().unwrap_or(&source),
            &topic,
            partition,
            id,
            "delete",
        );
        let opened = {
            let mut logs = self.logs_mut();
            // Deleted (or replaced) meanwhile: nothing to switch to.
            let current = logs.get(&(topic.clone(), partition));
            if m.cancelled.load(Ordering::Acquire) || !current.is_some_and(|c| Arc::ptr_eq(c, log))
            {
                let _ = std::fs::remove_dir_all(&moved);
                return Err(LogError::Io(std::io::Error::other("move cancelled")));
            }
            std::fs::rename(&source, &doomed)?;
            fsync_dir(doomed.parent().unwrap_or(&doomed))?;
            std::fs::rename(&moved, &final_dir)?;
            fsync_dir(&dest_dir)?;
            let new = PartitionLog::open(OpenOptions {
                dir: final_dir.clone(),
                topic: topic.clone(),
                partition,
                topic_id: log.topic_id(),
                config: log.config(),
                recovery_point: log.log_end_offset(),
                clean_shutdown: false,
                producer_id_expiration_ms: self.producer_id_expiration_ms(),
                high_watermark: Some(log.high_watermark()),
                handles: self.handles().clone(),
            });
            match new {
                Ok(new) => {
                    new.set_auto_high_watermark(log.auto_high_watermark());
                    self.attach_dir_flusher(&new, m.dest);
                    logs.insert((topic.clone(), partition), new);
                    log.close();
                    Ok(())
                }
                Err(e) => {
                    // Back to where it was: the original is complete and unchanged.
                    let _ = std::fs::rename(&final_dir, &moved);
                    let _ = std::fs::rename(&doomed, &source);
                    let _ = std::fs::remove_dir_all(&moved);
                    Err(e)
                }
            }
        };
        opened?;
        self.recount_placement();
        if let Err(e) = std::fs::remove_dir_all(&doomed) {
            tracing::warn!(dir = %doomed.display(), error = %e, "cannot remove the moved partition's old directory");
        }
        Ok(())
    }
}

/// At start, before partitions are loaded: a `-moved` copy (complete) becomes the
/// partition unless its original still exists, and `-future` copies (incomplete) go.
pub fn finish_interrupted(dirs: &[PathBuf]) {
    let mut present = std::collections::HashSet::new();
    let mut moved = Vec::new();
    let mut future = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with("-moved") {
                moved.push((dir.clone(), name));
            } else if name.ends_with("-future") {
                future.push(entry.path());
            } else if !name.ends_with("-delete") {
                present.insert(name);
            }
        }
    }
    for path in future {
        tracing::info!(dir = %path.display(), "dropping the copy of an interrupted move between log directories");
        let _ = std::fs::remove_dir_all(&path);
    }
    for (dir, name) in moved {
        // `<topic>-<partition>.<id>-moved`
        let Some(partition_dir) = name.rsplit_once('.').map(|(p, _)| p.to_string()) else {
            continue;
        };
        let path = dir.join(&name);
        if present.contains(&partition_dir) {
            let _ = std::fs::remove_dir_all(&path);
        } else {
            tracing::info!(dir = %path.display(), "completing a move between log directories");
            if std::fs::rename(&path, dir.join(&partition_dir)).is_ok() {
                let _ = fsync_dir(&dir);
                present.insert(partition_dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_move_is_finished_or_dropped_at_start() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        // t-0: crash after the original became -delete: the moved copy takes its place.
        std::fs::create_dir_all(a.join("t-0.1-delete")).unwrap();
        std::fs::create_dir_all(b.join("t-0.1-moved")).unwrap();
        std::fs::write(b.join("t-0.1-moved/00000000000000000000.log"), b"x").unwrap();
        // t-1: crash before the original was renamed: the original stays.
        std::fs::create_dir_all(a.join("t-1")).unwrap();
        std::fs::create_dir_all(b.join("t-1.2-moved")).unwrap();
        // t-2: crash while copying: the copy goes.
        std::fs::create_dir_all(a.join("t-2")).unwrap();
        std::fs::create_dir_all(b.join("t-2.3-future")).unwrap();
        finish_interrupted(&[a.clone(), b.clone()]);
        assert!(b.join("t-0/00000000000000000000.log").is_file());
        assert!(!b.join("t-0.1-moved").exists());
        assert!(a.join("t-1").is_dir() && !b.join("t-1.2-moved").exists());
        assert!(!b.join("t-1").exists());
        assert!(a.join("t-2").is_dir() && !b.join("t-2.3-future").exists());
        // The -delete directory is left to the loader, which removes it.
        assert!(a.join("t-0.1-delete").exists());
    }
}

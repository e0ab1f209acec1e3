//! The log manager: every partition log on this broker, across all log directories.
//!
//! It owns the directory level of Kafka's layout: one `<topic>-<partition>/` directory per
//! partition, a `recovery-point-offset-checkpoint` per log directory and a clean-shutdown
//! marker that lets the next start skip re-validation. It places new partitions in the
//! directory holding the fewest, and runs the background work: one group-commit flusher
//! per directory, the flush.ms / flush.messages scheduler, recovery-point checkpoints,
//! retention and log compaction ([`super::cleaner`]).
//!
//! A failing disk is handled per partition, not per directory (where Kafka takes the
//! whole directory offline): a full disk keeps every log readable, answers appends with
//! KAFKA_STORAGE_ERROR, and takes them again once space is freed. A partition that cannot
//! be opened at all stays offline, remembered with its directory so that it is neither
//! re-created empty elsewhere nor forgotten; opening it is retried when it is next asked
//! for.
//!
//! A log that cannot be created (out of descriptors, or space) is not retried on every
//! request or metadata change: each failure sets a retry time (1 s, doubling to 30 s),
//! and until it succeeds the partition counts as unavailable here, so Metadata does not
//! offer this broker as its leader. Failures are logged when a partition's state
//! changes (first failure, a different error, recovery), never once per attempt.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::checkpoint;
use super::flusher::{self, FlusherHandle};
use super::handles::HandleCache;
use super::partition::{now_ms, OpenOptions};
use super::{LogError, PartitionLog};
use crate::config::{Config, TopicConfig};

/// Kafka's marker of a clean shutdown, in each log directory.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";

/// Logs shut down in parallel (see [`LogManager::shutdown`]).
const SHUTDOWN_THREADS: usize = 8;

/// How often recovery points are checkpointed (Kafka: log.flush.offset.checkpoint.interval.ms).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

/// First wait before a log that could not be created is tried again; it doubles with
/// each failure up to [`CREATE_RETRY_MAX`].
const CREATE_RETRY_MIN: Duration = Duration::from_secs(1);
const CREATE_RETRY_MAX: Duration = Duration::from_secs(30);

/// A partition log that could not be created, and when to try again.
#[derive(Debug, Clone)]
struct CreateFailure {
    error: String,
    attempts: u32,
    retry_at: Instant,
}

/// What a creation attempt changed, for logging once per change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Nothing to report: created or found as before, or still failing the same way, or
    /// waiting for its retry time.
    Unchanged,
    /// Failed for the first time, or with a different error than before.
    Failed(String),
    /// Created after failing `attempts` times.
    Recovered { attempts: u32 },
}

/// Usage of one log directory, for DescribeLogDirs.
#[derive(Debug, Clone)]
pub struct LogDirInfo {
    pub path: PathBuf,
    pub total_bytes: u64,
    pub usable_bytes: u64,
    /// Set when the directory failed (I/O error); its partitions are offline.
    pub error: Option<String>,
}

struct LogDir {
    path: PathBuf,
    error: Mutex<Option<String>>,
}

/// All partition logs.
pub struct LogManager {
    cfg: Arc<Config>,
    dirs: Vec<LogDir>,
    logs: RwLock<BTreeMap<(String, i32), Arc<PartitionLog>>>,
    /// Partitions found on disk that could not be opened: their directory and the error.
    offline: Mutex<BTreeMap<(String, i32), (PathBuf, String)>>,
    /// One per directory once the background tasks run.
    flushers: Mutex<Option<Vec<FlusherHandle>>>,
    /// The open segment files of every log, bounded (`log.segment.files.open.max`).
    handles: Arc<HandleCache>,
    /// Logs that could not be created, retried with backoff.
    create_failures: Mutex<HashMap<(String, i32), CreateFailure>>,
    /// Logs per directory, for placing new ones: kept up to date rather than counted
    /// for every creation (that made creating 10,000 partitions quadratic).
    placed: Mutex<Vec<usize>>,
    /// Moves between directories in progress (AlterReplicaLogDirs, see `super::mover`).
    pub(super) moves: Mutex<BTreeMap<(String, i32), Arc<super::mover::Move>>>,
    /// The directory an operator chose for a partition not hosted here yet.
    preferred: Mutex<HashMap<(String, i32), usize>>,
}

mod background;
mod create;
mod load;

use load::{load_dir, statvfs};

/// `<topic>-<partition>` → (topic, partition).
fn parse_partition_dir(name: &str) -> Option<(String, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((topic.to_string(), partition.parse().ok()?))
}

impl LogManager {
    /// Open every log directory: create missing ones, load and recover every partition
    /// found (`<topic>-<partition>/` with a `partition.metadata` holding the topic id).
    pub fn open(cfg: Arc<Config>) -> Result<Arc<LogManager>, LogError> {
        let mut dirs = Vec::new();
        let mut logs = BTreeMap::new();
        let mut offline = BTreeMap::new();
        let default_topic_cfg = cfg.topic_config(&BTreeMap::new());
        let handles = match cfg.segment_files_open_max {
            Some(n) => HandleCache::new(n),
            None => HandleCache::from_limit(),
        };
        tracing::info!(
            capacity = handles.capacity(),
            open_files_limit = super::handles::open_files_limit(),
            "segment files held open at most"
        );
        super::mover::finish_interrupted(&cfg.log_dirs);
        for path in &cfg.log_dirs {
            let dir = LogDir {
                path: path.clone(),
                error: Mutex::new(None),
            };
            let loaded = load_dir(
                path,
                &cfg,
                &default_topic_cfg,
                &handles,
                &mut logs,
                &mut offline,
            );
            if let Err(e) = loaded {
                tracing::error!(dir = %path.display(), error = %e, "log directory failed");
                *dir.error.lock() = Some(e.to_string());
            }
            dirs.push(dir);
        }
        if dirs.iter().all(|d| d.error.lock().is_some()) {
            return Err(LogError::Io(std::io::Error::other(
                "no usable log directory",
            )));
        }
        let mgr = Arc::new(LogManager {
            cfg,
            placed: Mutex::new(vec![0; dirs.len()]),
            dirs,
            logs: RwLock::new(logs),
            offline: Mutex::new(offline),
            flushers: Mutex::new(None),
            handles,
            create_failures: Mutex::new(HashMap::new()),
            moves: Mutex::new(BTreeMap::new()),
            preferred: Mutex::new(HashMap::new()),
        });
        mgr.recount_placement();
        Ok(mgr)
    }

    /// The index of the configured log directory at `path` (compared as absolute,
    /// canonical paths, as Kafka compares them).
    pub fn dir_named(&self, path: &Path) -> Option<usize> {
        let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let want = canon(path);
        self.dirs.iter().position(|d| canon(&d.path) == want)
    }

    pub(super) fn dir_error(&self, i: usize) -> Option<String> {
        self.dirs.get(i).and_then(|d| d.error.lock().clone())
    }

    pub(super) fn dir_path(&self, i: usize) -> &Path {
        &self.dirs[i].path
    }

    pub(super) fn dir_of(&self, log: &PartitionLog) -> Option<usize> {
        self.dir_index(log)
    }

    pub(super) fn prefer_dir(&self, key: (String, i32), dir: usize) {
        self.preferred.lock().insert(key, dir);
    }

    pub(super) fn logs_mut(
        &self,
    ) -> parking_lot::RwLockWriteGuard<'_, BTreeMap<(String, i32), Arc<PartitionLog>>> {
        self.logs.write()
    }

    pub(super) fn producer_id_expiration_ms(&self) -> i64 {
        self.cfg.producer_id_expiration_ms
    }

    pub(super) fn attach_dir_flusher(&self, log: &PartitionLog, dir: usize) {
        if let Some(handles) = self.flushers.lock().as_ref() {
            log.attach_flusher(handles.get(dir).cloned());
        }
    }

    /// Moves in progress: (topic, partition) -> (destination directory, the copy's
    /// directory, bytes copied, bytes to copy).
    pub fn moves(&self) -> Vec<((String, i32), usize, u64, u64)> {
        self.moves
            .lock()
            .iter()
            .map(|(k, m)| {
                (
                    k.clone(),
                    m.dest,
                    m.copied.load(std::sync::atomic::Ordering::Relaxed),
                    m.total,
                )
            })
            .collect()
    }

    pub(super) fn recount_placement(&self) {
        let logs = self.logs.read();
        let mut placed = self.placed.lock();
        placed.iter_mut().for_each(|n| *n = 0);
        for log in logs.values() {
            if let Some(i) = self.dir_index(log) {
                placed[i] += 1;
            }
        }
    }

    /// Partitions this broker should serve but has no log for: creation failed, or found
    /// on disk but cannot be opened.
    pub fn unavailable(&self) -> HashSet<(String, i32)> {
        let mut out: HashSet<(String, i32)> = self.create_failures.lock().keys().cloned().collect();
        out.extend(self.offline.lock().keys().cloned());
        out
    }

    pub fn unavailable_count(&self) -> usize {
        self.unavailable().len()
    }

    /// The budget of open segment files (for metrics).
    pub fn handles(&self) -> &Arc<HandleCache> {
        &self.handles
    }

    fn dir_index(&self, log: &PartitionLog) -> Option<usize> {
        let parent = log.dir().parent()?;
        self.dirs.iter().position(|d| d.path == parent)
    }

    /// Run `f`; if it fails for want of descriptors, close some cached segment files and
    /// run it once more (a checkpoint matters more than a cached handle).
    fn with_descriptors<T>(&self, f: impl Fn() -> std::io::Result<T>) -> std::io::Result<T> {
        match f() {
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) && self.handles.shed() > 0 => f(),
            other => other,
        }
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        self.logs
            .read()
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    /// Partitions found on disk that could not be opened, with their directory and
    /// error (they answer KAFKA_STORAGE_ERROR until an open succeeds).
    pub fn offline_partitions(&self) -> Vec<((String, i32), PathBuf, String)> {
        self.offline
            .lock()
            .iter()
            .map(|(k, (p, e))| (k.clone(), p.clone(), e.clone()))
            .collect()
    }

    /// Every partition log, in (topic, partition) order.
    pub fn all(&self) -> Vec<Arc<PartitionLog>> {
        self.logs.read().values().cloned().collect()
    }

    pub fn dirs(&self) -> Vec<LogDirInfo> {
        self.dirs
            .iter()
            .map(|d| {
                let (total_bytes, usable_bytes, err) = match statvfs(&d.path) {
                    Ok((t, u)) => (t, u, None),
                    Err(e) => (0, 0, Some(e.to_string())),
                };
                LogDirInfo {
                    path: d.path.clone(),
                    total_bytes,
                    usable_bytes,
                    error: d.error.lock().clone().or(err),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::BatchBuilder;
    use bytes::BytesMut;

    fn config(dirs: &[&Path]) -> Arc<Config> {
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        Arc::new(Config::load(None, Vec::new(), &[format!("log.dirs={}", dirs.join(","))]).unwrap())
    }

    fn batch(n: usize) -> BytesMut {
        let mut b = BatchBuilder::new(0);
        for i in 0..n {
            b = b.record(None, Some(b"value"), now_ms() - 10 + i as i64);
        }
        BytesMut::from(&b.build()[..])
    }

    #[test]
    fn parses_partition_directory_names() {
        assert_eq!(parse_partition_dir("a-b-3"), Some(("a-b".into(), 3)));
        assert_eq!(parse_partition_dir("__cluster_metadata"), None);
        assert_eq!(parse_partition_dir("x--1"), Some(("x-".into(), 1)));
        assert_eq!(parse_partition_dir("x-"), None);
        assert_eq!(parse_partition_dir("-1"), None);
        assert_eq!(parse_partition_dir("t-+1"), None);
    }

    #[test]
    fn retention_pass_compacts_compacted_topics_only() {
        let d = tempfile::tempdir().unwrap();
        let mgr = LogManager::open(config(&[d.path()])).unwrap();
        let small = TopicConfig {
            segment_bytes: 1024,
            ..TopicConfig::default()
        };
        let compacted = TopicConfig {
            compact: true,
            delete: false,
            ..small.clone()
        };
        let keyed = || {
            let b = BatchBuilder::new(0)
                .record(Some(b"k"), Some(b"value"), now_ms() - 10)
                .build();
            BytesMut::from(&b[..])
        };
        let c = mgr
            .get_or_create("c", 0, Uuid::new_v4(), compacted)
            .unwrap();
        let plain = mgr.get_or_create("p", 0, Uuid::new_v4(), small).unwrap();
        for _ in 0..60 {
            c.append_as_leader(keyed(), 0).unwrap();
            plain.append_as_leader(keyed(), 0).unwrap();
        }
        let (c_size, p_size) = (c.size_bytes(), plain.size_bytes());
        assert_eq!(mgr.retention_pass(), 0);
        assert!(c.size_bytes() < c_size, "compacted");
        assert_eq!(plain.size_bytes(), p_size, "delete-only topic untouched");
        let cp = std::fs::read_to_string(d.path().join("cleaner-offset-checkpoint")).unwrap();
        assert!(cp.starts_with("0\n1\nc 0 "), "{cp}");
    }

    #[test]
    fn restart_keeps_data_offsets_and_placement() {
        let d1 = tempfile::tempdir().unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let cfg = config(&[d1.path(), d2.path()]);
        let id = Uuid::new_v4();
        let mgr = LogManager::open(cfg.clone()).unwrap();
        for p in 0..4 {
            let log = mgr
                .get_or_create("orders", p, id, TopicConfig::default())
                .unwrap();
            for _ in 0..=p {
                log.append_as_leader(batch(2), 1).unwrap();
            }
        }
        let in_d1 = std::fs::read_dir(d1.path()).unwrap().count();
        assert!(in_d1 >= 2, "partitions spread over both dirs");
        let before: Vec<_> = mgr
            .all()
            .iter()
            .map(|l| {
                (
                    l.partition(),
                    l.log_end_offset(),
                    l.read(0, 1 << 20, i64::MAX, true).unwrap().records,
                )
            })
            .collect();
        mgr.shutdown().unwrap();
        assert!(d1.path().join(CLEAN_SHUTDOWN_FILE).exists());
        assert!(d1.path().join(checkpoint::RECOVERY_POINT_FILE).exists());
        drop(mgr);

        let mgr = LogManager::open(cfg).unwrap();
        assert!(!d1.path().join(CLEAN_SHUTDOWN_FILE).exists());
        let after: Vec<_> = mgr
            .all()
            .iter()
            .map(|l| {
                (
                    l.partition(),
                    l.log_end_offset(),
                    l.read(0, 1 << 20, i64::MAX, true).unwrap().records,
                )
            })
            .collect();
        assert_eq!(before, after);
        let log = mgr.get("orders", 3).unwrap();
        assert_eq!(log.topic_id(), id);
        assert_eq!(log.log_end_offset(), 8);
        assert_eq!(log.high_watermark(), 8);
        assert_eq!(log.append_as_leader(batch(1), 1).unwrap().base_offset, 8);
        let infos = mgr.dirs();
        assert_eq!(infos.len(), 2);
        assert!(infos[0].total_bytes >= infos[0].usable_bytes && infos[0].total_bytes > 0);
        assert!(infos.iter().all(|i| i.error.is_none()));
    }

    #[test]
    fn high_watermarks_survive_a_restart() {
        let d = tempfile::tempdir().unwrap();
        let cfg = config(&[d.path()]);
        {
            let mgr = LogManager::open(cfg.clone()).unwrap();
            let cfg = TopicConfig::default();
            let log = mgr
                .get_or_create("r", 0, Uuid::new_v4(), cfg.clone())
                .unwrap();
            // A replicated partition: only 4 of its 10 records are committed.
            log.set_auto_high_watermark(false);
            log.append_as_leader(batch(10), 0).unwrap();
            log.set_high_watermark(4);
            let single = mgr.get_or_create("s", 0, Uuid::new_v4(), cfg).unwrap();
            single.append_as_leader(batch(3), 0).unwrap();
            mgr.checkpoint_recovery_points();
            // Written after the checkpoint: not listed in it.
            let late = mgr.get_or_create("late", 0, Uuid::new_v4(), TopicConfig::default());
            let late = late.unwrap();
            late.set_auto_high_watermark(false);
            late.append_as_leader(batch(2), 0).unwrap();
            late.flush_blocking().unwrap();
        }
        let hws = checkpoint::read(&d.path().join(checkpoint::HIGH_WATERMARK_FILE));
        assert_eq!(hws.get(&("r".to_string(), 0)), Some(&4));
        let mgr = LogManager::open(cfg).unwrap();
        let log = mgr.get("r", 0).unwrap();
        assert_eq!((log.log_end_offset(), log.high_watermark()), (10, 4));
        assert_eq!(mgr.get("s", 0).unwrap().high_watermark(), 3);
        assert_eq!(mgr.get("late", 0).unwrap().high_watermark(), 0);
        // A single-replica log commits its whole end again.
        log.set_auto_high_watermark(true);
        assert_eq!(log.high_watermark(), 10);
    }

    #[test]
    fn unclean_restart_recovers_past_the_recovery_point() {
        let d = tempfile::tempdir().unwrap();
        let cfg = config(&[d.path()]);
        let mgr = LogManager::open(cfg.clone()).unwrap();
        let small = TopicConfig {
            segment_bytes: 1024,
            ..TopicConfig::default()
        };
        let log = mgr.get_or_create("t", 0, Uuid::new_v4(), small).unwrap();
        for _ in 0..20 {
            log.append_as_leader(batch(2), 0).unwrap();
        }
        log.flush_blocking().unwrap();
        mgr.checkpoint_recovery_points();
        let points = checkpoint::read(&d.path().join(checkpoint::RECOVERY_POINT_FILE));
        assert_eq!(points.get(&("t".to_string(), 0)), Some(&40));
        for _ in 0..5 {
            log.append_as_leader(batch(2), 0).unwrap();
        }
        let active = {
            let mut files: Vec<_> = std::fs::read_dir(log.dir())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect();
            files.sort();
            files.pop().unwrap()
        };
        // Crash: no shutdown, and a torn write at the end.
        drop((log, mgr));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&active)
            .unwrap();
        std::io::Write::write_all(&mut f, &[1, 2, 3, 4, 5, 6, 7]).unwrap();
        drop(f);
        let mgr = LogManager::open(cfg).unwrap();
        let log = mgr.get("t", 0).unwrap();
        assert_eq!(log.log_end_offset(), 50);
        assert_eq!(log.recovery_point(), 40);
        assert!(!log.read(48, 1, i64::MAX, true).unwrap().records.is_empty());
    }

    #[test]
    fn delete_topic_removes_directories() {
        let d = tempfile::tempdir().unwrap();
        let cfg = config(&[d.path()]);
        let mgr = LogManager::open(cfg.clone()).unwrap();
        let log = mgr
            .get_or_create("gone", 0, Uuid::new_v4(), TopicConfig::default())
            .unwrap();
        mgr.get_or_create("kept", 0, Uuid::new_v4(), TopicConfig::default())
            .unwrap();
        log.append_as_leader(batch(1), 0).unwrap();
        mgr.delete_topic("gone").unwrap();
        assert!(mgr.get("gone", 0).is_none());
        assert!(matches!(
            log.append_as_leader(batch(1), 0),
            Err(LogError::Closed)
        ));
        assert!(!d.path().join("gone-0").exists());
        // A half-finished delete from a previous run is finished on open; stray dirs stay.
        std::fs::create_dir(d.path().join("old-0.abc-delete")).unwrap();
        std::fs::create_dir(d.path().join("__cluster_metadata")).unwrap();
        drop(mgr);
        let mgr = LogManager::open(cfg).unwrap();
        assert!(!d.path().join("old-0.abc-delete").exists());
        assert!(d.path().join("__cluster_metadata").exists());
        assert_eq!(mgr.all().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn background_tasks_flush_and_stop() {
        let d = tempfile::tempdir().unwrap();
        let mgr = LogManager::open(config(&[d.path()])).unwrap();
        let log = mgr
            .get_or_create("t", 0, Uuid::new_v4(), TopicConfig::default())
            .unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let tasks = mgr.start_background(rx);
        let mut waiters = Vec::new();
        for _ in 0..32 {
            let log = log.clone();
            waiters.push(tokio::spawn(async move {
                let r = log.append_as_leader(batch(1), 0).unwrap();
                log.flush_to(r.last_offset).await
            }));
        }
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        assert_eq!(log.recovery_point(), 32);
        assert!(log.fsync_count() < 32);
        // Background policy: flush.messages reached triggers a flush without a waiter.
        log.update_config(TopicConfig {
            flush_messages: 2,
            ..TopicConfig::default()
        });
        log.append_as_leader(batch(3), 0).unwrap();
        for _ in 0..100 {
            if log.recovery_point() == 35 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(log.recovery_point(), 35);
        tx.send(true).unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        let m = mgr.clone();
        tokio::task::spawn_blocking(move || m.shutdown())
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn a_partition_that_cannot_open_stays_offline_not_its_directory() {
        let d = tempfile::tempdir().unwrap();
        let cfg = config(&[d.path()]);
        let id = Uuid::new_v4();
        let mgr = LogManager::open(cfg.clone()).unwrap();
        for p in 0..2 {
            let log = mgr
                .get_or_create("t", p, id, TopicConfig::default())
                .unwrap();
            log.append_as_leader(batch(2), 0).unwrap();
        }
        mgr.shutdown().unwrap();
        drop(mgr);
        // A segment "file" that cannot be opened (a directory in its place).
        let bad = d
            .path()
            .join("t-1")
            .join(super::super::segment::file_name(2, "log"));
        std::fs::create_dir(&bad).unwrap();
        let mgr = LogManager::open(cfg.clone()).unwrap();
        assert_eq!(
            mgr.get("t", 0).unwrap().log_end_offset(),
            2,
            "the others serve"
        );
        assert!(mgr.get("t", 1).is_none());
        assert_eq!(mgr.offline_partitions().len(), 1);
        assert!(mgr.dirs()[0].error.is_none());
        // Never re-created empty (its offsets would be handed out twice).
        assert!(matches!(
            mgr.get_or_create("t", 1, id, TopicConfig::default()),
            Err(LogError::Io(_))
        ));
        mgr.shutdown().unwrap();
        assert!(
            !d.path().join(CLEAN_SHUTDOWN_FILE).exists(),
            "an offline partition was not shut down cleanly"
        );
        // Repaired: the next request opens it where it lies.
        std::fs::remove_dir(&bad).unwrap();
        let mgr = LogManager::open(cfg).unwrap();
        assert_eq!(mgr.get("t", 1).unwrap().log_end_offset(), 2);
        std::fs::create_dir(&bad).unwrap();
        drop(mgr);
        let mgr = LogManager::open(config(&[d.path()])).unwrap();
        std::fs::remove_dir(&bad).unwrap();
        let log = mgr
            .get_or_create("t", 1, id, TopicConfig::default())
            .unwrap();
        assert_eq!((log.log_end_offset(), log.topic_id()), (2, id));
        assert!(mgr.offline_partitions().is_empty());
        mgr.delete_topic("t").unwrap();
        assert!(!d.path().join("t-1").exists());
    }

    #[test]
    fn logs_that_cannot_be_created_are_retried_with_backoff() {
        let d = tempfile::tempdir().unwrap();
        let mgr = LogManager::open(config(&[d.path()])).unwrap();
        let id = Uuid::new_v4();
        // A file where the partition directory must go: creation fails.
        let blocker = d.path().join("t-0");
        std::fs::write(&blocker, b"x").unwrap();
        let (r, outcome) = mgr.create_with_backoff("t", 0, id, TopicConfig::default());
        assert!(r.is_err());
        assert!(matches!(outcome, CreateOutcome::Failed(_)), "{outcome:?}");
        assert_eq!(mgr.unavailable_count(), 1);
        assert!(mgr.unavailable().contains(&("t".to_string(), 0)));
        // Within the backoff nothing is tried (and nothing new is reported), even once
        // the cause is gone.
        std::fs::remove_file(&blocker).unwrap();
        let (r, outcome) = mgr.create_with_backoff("t", 0, id, TopicConfig::default());
        assert!(r.is_err() && outcome == CreateOutcome::Unchanged);
        assert!(!d.path().join("t-0").exists(), "not attempted");
        assert!(!mgr.create_retry_due());
        std::thread::sleep(CREATE_RETRY_MIN + Duration::from_millis(50));
        assert!(mgr.create_retry_due());
        let (r, outcome) = mgr.create_with_backoff("t", 0, id, TopicConfig::default());
        assert!(r.is_ok());
        assert_eq!(outcome, CreateOutcome::Recovered { attempts: 1 });
        assert_eq!(mgr.unavailable_count(), 0);
        // Failing again the same way is one report, however often it is tried.
        std::fs::write(d.path().join("t-1"), b"x").unwrap();
        let first = mgr
            .create_with_backoff("t", 1, id, TopicConfig::default())
            .1;
        assert!(matches!(first, CreateOutcome::Failed(_)));
        mgr.create_failures
            .lock()
            .values_mut()
            .for_each(|f| f.retry_at = Instant::now());
        let again = mgr
            .create_with_backoff("t", 1, id, TopicConfig::default())
            .1;
        assert_eq!(again, CreateOutcome::Unchanged);
        let wait = mgr.create_failures.lock()[&("t".to_string(), 1)].retry_at - Instant::now();
        assert!(wait > CREATE_RETRY_MIN, "the backoff grows: {wait:?}");
        mgr.retain_create_failures(&HashSet::new());
        assert_eq!(mgr.unavailable_count(), 0, "no longer wanted here");
    }
}

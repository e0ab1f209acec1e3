//! The cleaner's files: the swap protocol that replaces segments with their cleaned
//! form (`.cleaned` while written, `.swap` once complete, finished or undone by a
//! restart) and the per-directory `cleaner-offset-checkpoint` of first dirty offsets.

/// Kafka's per-log-directory file of first dirty offsets.
pub const CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";
/// A cleaned segment being written: incomplete until renamed to [`SWAP_SUFFIX`].
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// A complete cleaned segment waiting to replace its original.
pub const SWAP_SUFFIX: &str = ".swap";

/// Checkpoint files are read-modify-written by every partition of a directory.
static CHECKPOINT_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// The first dirty offset recorded for a partition in `log_dir` (0 when none).
pub fn read_checkpoint(log_dir: &std::path::Path, topic: &str, partition: i32) -> i64 {
    let _g = CHECKPOINT_LOCK.lock();
    crate::log::checkpoint::read(&log_dir.join(CHECKPOINT_FILE))
        .get(&(topic.to_string(), partition))
        .copied()
        .unwrap_or(0)
}

/// Record `offset` as a partition's first dirty offset in `log_dir`.
pub fn write_checkpoint(
    log_dir: &std::path::Path,
    topic: &str,
    partition: i32,
    offset: i64,
) -> std::io::Result<()> {
    let _g = CHECKPOINT_LOCK.lock();
    let path = log_dir.join(CHECKPOINT_FILE);
    let mut all = crate::log::checkpoint::read(&path);
    all.insert((topic.to_string(), partition), offset);
    crate::log::checkpoint::write(&path, &all)
}

/// Drop a partition's entry (a new log of a reused name starts all dirty).
pub fn forget_checkpoint(
    log_dir: &std::path::Path,
    topic: &str,
    partition: i32,
) -> std::io::Result<()> {
    let _g = CHECKPOINT_LOCK.lock();
    let path = log_dir.join(CHECKPOINT_FILE);
    let mut all = crate::log::checkpoint::read(&path);
    if all.remove(&(topic.to_string(), partition)).is_some() {
        crate::log::checkpoint::write(&path, &all)?;
    }
    Ok(())
}

pub(super) fn fsync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// `<dir>/<base>.log<suffix>`.
pub fn staged_path(dir: &std::path::Path, base: i64, suffix: &str) -> std::path::PathBuf {
    dir.join(format!(
        "{}{suffix}",
        crate::log::segment::file_name(base, "log")
    ))
}

/// Base offsets of the segments staged in `dir` with `suffix`.
pub(super) fn staged(dir: &std::path::Path, suffix: &str) -> std::io::Result<Vec<i64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = name
            .strip_suffix(suffix)
            .and_then(crate::log::segment::parse_log_name)
        {
            out.push(base);
        }
    }
    Ok(out)
}

/// Replace the original segments by their `.swap` files. The originals' index files go
/// first, made durable by a directory fsync before any rename, so no new log can ever
/// meet an old index (the next open rebuilds them); then one rename per segment
/// replaces each log atomically.
pub fn replace_with_swaps(dir: &std::path::Path, bases: &[i64]) -> std::io::Result<()> {
    for &base in bases {
        for ext in ["index", "timeindex"] {
            match std::fs::remove_file(dir.join(crate::log::segment::file_name(base, ext))) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    fsync_dir(dir)?;
    for &base in bases {
        std::fs::rename(
            staged_path(dir, base, SWAP_SUFFIX),
            dir.join(crate::log::segment::file_name(base, "log")),
        )?;
    }
    fsync_dir(dir)
}

/// Make the segments of `staged` (all written and fsynced as `.cleaned`) the pass's
/// committed result: rename every one to `.swap`, then fsync the directory. From the
/// moment no `.cleaned` file is left, a restart finishes the swap.
pub fn commit_cleaned(dir: &std::path::Path, bases: &[i64]) -> std::io::Result<()> {
    for &base in bases {
        std::fs::rename(
            staged_path(dir, base, CLEANED_SUFFIX),
            staged_path(dir, base, SWAP_SUFFIX),
        )?;
    }
    fsync_dir(dir)
}

/// On open, before the segments are listed: settle a pass a crash interrupted. Any
/// `.cleaned` file left means the pass never reached its commit point (every `.cleaned`
/// becomes `.swap` before any original is replaced), so all its files go and the
/// originals stand. Otherwise the `.swap` files are a committed pass and replace their
/// originals. A log of some cleaned and some original segments is never served: with
/// tombstones gone from one segment and old values still in another, deleted keys would
/// come back.
pub fn recover_interrupted(dir: &std::path::Path) -> std::io::Result<()> {
    let cleaned = staged(dir, CLEANED_SUFFIX)?;
    let swaps = staged(dir, SWAP_SUFFIX)?;
    if cleaned.is_empty() && swaps.is_empty() {
        return Ok(());
    }
    if !cleaned.is_empty() {
        tracing::warn!(dir = %dir.display(), "discarding an unfinished cleaner pass");
        for (bases, suffix) in [(&cleaned, CLEANED_SUFFIX), (&swaps, SWAP_SUFFIX)] {
            for &b in bases {
                std::fs::remove_file(staged_path(dir, b, suffix))?;
            }
        }
        return fsync_dir(dir);
    }
    tracing::warn!(dir = %dir.display(), segments = swaps.len(), "finishing an interrupted cleaner swap");
    replace_with_swaps(dir, &swaps)
}

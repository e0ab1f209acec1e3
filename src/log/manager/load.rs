//! Loading a log directory at start: partitions deleted before a restart are removed,
//! each partition is opened and recovered from the directory's checkpoints, and one that
//! cannot be opened stays offline alone.

use super::*;

/// Load every partition directory in one log directory.
pub(super) fn load_dir(
    path: &Path,
    cfg: &Config,
    topic_cfg: &TopicConfig,
    handles: &Arc<HandleCache>,
    logs: &mut BTreeMap<(String, i32), Arc<PartitionLog>>,
    offline: &mut BTreeMap<(String, i32), (PathBuf, String)>,
) -> Result<(), LogError> {
    if !path.is_dir() {
        std::fs::create_dir_all(path)?;
    }
    let marker = path.join(CLEAN_SHUTDOWN_FILE);
    let clean = marker.exists();
    let recovery_points = checkpoint::read(&path.join(checkpoint::RECOVERY_POINT_FILE));
    let hw_file = path.join(checkpoint::HIGH_WATERMARK_FILE);
    let high_watermarks = hw_file.exists().then(|| checkpoint::read(&hw_file));
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with("-delete") {
            tracing::info!(dir = %entry.path().display(), "removing partition deleted before restart");
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!(dir = %entry.path().display(), error = %e, "cannot remove");
            }
            continue;
        }
        let Some((topic, partition)) = parse_partition_dir(&name) else {
            tracing::debug!(dir = %entry.path().display(), "not a partition directory; skipped");
            continue;
        };
        if logs.contains_key(&(topic.clone(), partition))
            || offline.contains_key(&(topic.clone(), partition))
        {
            tracing::error!(dir = %entry.path().display(),
                "partition present in two log directories; keeping the first");
            continue;
        }
        let recovery_point = recovery_points
            .get(&(topic.clone(), partition))
            .copied()
            .unwrap_or(0);
        let opened = PartitionLog::open(OpenOptions {
            dir: entry.path(),
            topic: topic.clone(),
            partition,
            topic_id: Uuid::nil(),
            config: topic_cfg.clone(),
            recovery_point,
            clean_shutdown: clean,
            producer_id_expiration_ms: cfg.producer_id_expiration_ms,
            // A partition the checkpoint does not list gets the log start: safe, and
            // replication moves it up again.
            high_watermark: high_watermarks
                .as_ref()
                .map(|hws| hws.get(&(topic.clone(), partition)).copied().unwrap_or(0)),
            handles: handles.clone(),
        });
        match opened {
            Ok(log) => {
                logs.insert((topic, partition), log);
            }
            // One unreadable partition must not take the directory's others down.
            Err(e) => {
                tracing::error!(dir = %entry.path().display(), error = %e,
                    "cannot open partition log; it stays offline");
                offline.insert((topic, partition), (entry.path(), e.to_string()));
            }
        }
    }
    // From now on a crash is unclean until the next orderly shutdown.
    if clean {
        std::fs::remove_file(&marker)?;
    }
    Ok(())
}

pub(super) fn statvfs(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let frsize = st.f_frsize as u64;
    Ok((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

//! Exclusive ownership of a data directory by one process: a `.lock` file in each log
//! directory and in the metadata directory, held with `flock` for the broker's lifetime
//! and taken before anything in the directory is read or written. A second broker started
//! on the same directories stops at once, with the owner's pid, instead of "recovering"
//! partitions that a live broker is writing. The kernel drops the lock when the owner
//! exits, however it exits, so a crashed broker never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file's name, as Kafka names it.
pub const LOCK_FILE: &str = ".lock";

/// A held directory lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    _file: File,
}

/// Why a directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{kind} directory {dir} is in use by another process ({owner}); stop it first or choose another directory")]
    InUse {
        kind: &'static str,
        dir: PathBuf,
        owner: String,
    },
    #[error("cannot lock {kind} directory {dir}: {source}")]
    Io {
        kind: &'static str,
        dir: PathBuf,
        source: std::io::Error,
    },
}

impl DirLock {
    /// Create `dir` if needed and lock it; `kind` names it in errors ("log", "metadata").
    pub fn acquire(dir: &Path, kind: &'static str) -> Result<DirLock, LockError> {
        let io = |source| LockError::Io {
            kind,
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io)?;
        // SAFETY: flock only reads the descriptor, which `file` keeps open.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let owner = match text.trim().parse::<u32>() {
                    Ok(pid) => format!("pid {pid}"),
                    Err(_) => "pid unknown".to_string(),
                };
                return Err(LockError::InUse {
                    kind,
                    dir: dir.to_path_buf(),
                    owner,
                });
            }
            return Err(io(err));
        }
        // The pid is only a hint for the message above; the flock is the lock.
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DirLock {
            dir: dir.to_path_buf(),
            _file: file,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_with_the_owners_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let held = DirLock::acquire(&dir, "log").unwrap();
        let err = DirLock::acquire(&dir, "log").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, LockError::InUse { .. }), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("log directory"), "{text}");
        drop(held);
        // Released with its holder: the directory can be taken again.
        DirLock::acquire(&dir, "log").unwrap();
    }

    #[test]
    fn a_lock_file_left_by_a_dead_owner_does_not_block() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(LOCK_FILE), "999999999\n").unwrap();
        let lock = DirLock::acquire(tmp.path(), "metadata").unwrap();
        assert_eq!(lock.dir(), tmp.path());
        let pid = std::fs::read_to_string(tmp.path().join(LOCK_FILE)).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
    }
}

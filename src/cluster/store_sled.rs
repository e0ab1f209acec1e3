//! The sled implementation of [`MetadataStore`]: one tree for the log, one for values.
//!
//! Log keys are big-endian `u64` indexes so that sled's byte order is index order and
//! range scans are cheap. sled cannot delete a key range, so truncation and purge
//! collect the keys first and remove them in one batch.

use std::path::Path;

use super::store::{MetaKey, MetadataStore, StoreError};

const LOG_TREE: &[u8] = b"raft_log";
const META_TREE: &[u8] = b"raft_meta";

/// A sled database holding one node's Raft log and applied metadata.
pub struct SledStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
}

impl SledStore {
    /// Open (or create) the database in `dir`. Fails if another handle holds it open.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir).open()?;
        let log = db.open_tree(LOG_TREE)?;
        let meta = db.open_tree(META_TREE)?;
        Ok(SledStore { db, log, meta })
    }

    /// Whether some open handle (in this process or another) still holds the database in
    /// `dir`: sled takes an exclusive `flock` on its `db` file. A missing file is free.
    pub fn is_locked(dir: &Path) -> std::io::Result<bool> {
        use std::os::fd::AsRawFd;
        let file = match std::fs::File::open(dir.join("db")) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        // SAFETY: flock on a descriptor this function owns; closing it drops the lock.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(false);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() == std::io::ErrorKind::WouldBlock {
            Ok(true)
        } else {
            Err(err)
        }
    }

    fn keys_in(
        &self,
        range: impl std::ops::RangeBounds<[u8; 8]>,
    ) -> Result<sled::Batch, StoreError> {
        let mut batch = sled::Batch::default();
        for kv in self.log.range(range) {
            let (k, _) = kv?;
            batch.remove(k);
        }
        Ok(batch)
    }
}

fn decode_index(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("log key of {} bytes", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

impl MetadataStore for SledStore {
    fn log_insert(&self, entries: Vec<(u64, Vec<u8>)>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (index, bytes) in entries {
            batch.insert(&index.to_be_bytes(), bytes);
        }
        self.log.apply_batch(batch)?;
        Ok(())
    }

    fn log_range(&self, start: u64, end: Option<u64>) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let start = start.to_be_bytes();
        let iter = match end {
            Some(end) if end <= u64::from_be_bytes(start) => return Ok(Vec::new()),
            Some(end) => self.log.range(start..end.to_be_bytes()),
            None => self.log.range(start..),
        };
        iter.map(|kv| {
            let (k, v) = kv?;
            Ok((decode_index(&k)?, v.to_vec()))
        })
        .collect()
    }

    fn log_last(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        match self.log.last()? {
            Some((k, v)) => Ok(Some((decode_index(&k)?, v.to_vec()))),
            None => Ok(None),
        }
    }

    fn log_remove_from(&self, from: u64) -> Result<(), StoreError> {
        let batch = self.keys_in(from.to_be_bytes()..)?;
        self.log.apply_batch(batch)?;
        Ok(())
    }

    fn log_remove_upto(&self, upto: u64) -> Result<(), StoreError> {
        let batch = self.keys_in(..=upto.to_be_bytes())?;
        self.log.apply_batch(batch)?;
        Ok(())
    }

    fn get(&self, key: MetaKey) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    fn put(&self, items: &[(MetaKey, &[u8])]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in items {
            batch.insert(k.as_bytes(), *v);
        }
        self.meta.apply_batch(batch)?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // One flush of the db covers every tree: sled has a single shared log.
        self.db.flush_async().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_seen_while_open_and_freed_after_close() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(
            !SledStore::is_locked(dir.path()).unwrap(),
            "nothing there yet"
        );
        let s = SledStore::open(dir.path()).expect("open");
        assert!(SledStore::is_locked(dir.path()).unwrap());
        assert!(
            SledStore::open(dir.path()).is_err(),
            "a second open is refused"
        );
        drop(s);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while SledStore::is_locked(dir.path()).unwrap() {
            assert!(std::time::Instant::now() < deadline, "lock never freed");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        SledStore::open(dir.path()).expect("open again once free");
    }

    #[tokio::test]
    async fn log_ranges_truncation_and_purge() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = SledStore::open(dir.path()).expect("open");
        s.log_insert((1..=300u64).map(|i| (i, vec![i as u8])).collect())
            .expect("insert");
        // Index 256 sorts after 255 only with big-endian keys.
        assert_eq!(s.log_range(255, Some(258)).expect("range").len(), 3);
        assert_eq!(s.log_last().expect("last").map(|e| e.0), Some(300));
        s.log_remove_from(200).expect("truncate");
        s.log_remove_upto(10).expect("purge");
        let all = s.log_range(0, None).expect("range");
        assert_eq!((all.first().map(|e| e.0), all.len()), (Some(11), 189));
        assert!(s.log_range(5, Some(5)).expect("empty").is_empty());

        s.put(&[(MetaKey::Vote, b"v"), (MetaKey::Committed, b"c")])
            .expect("put");
        s.flush().await.expect("flush");
        drop(s);
        let s = SledStore::open(dir.path()).expect("reopen");
        assert_eq!(s.get(MetaKey::Vote).expect("get"), Some(b"v".to_vec()));
        assert_eq!(s.get(MetaKey::Applied).expect("get"), None);
        assert_eq!(s.log_last().expect("last").map(|e| e.0), Some(199));
    }
}

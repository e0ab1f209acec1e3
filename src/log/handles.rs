//! A bounded set of open segment `.log` files, shared by every partition of the broker.
//!
//! Keeping every segment file open costs one descriptor per segment for the life of the
//! process, so the number of partitions (and of old segments) a node can hold was capped
//! by RLIMIT_NOFILE, and going past it broke unrelated things: accepting connections,
//! writing checkpoints, flushing at shutdown. Here a segment owns a [`SegmentFile`], which
//! knows its path and opens the file on demand; the open descriptors are counted by one
//! [`HandleCache`], which closes the least recently used ones when the count passes its
//! capacity (`log.segment.files.open.max`). An evicted file is reopened by its next read
//! or append. Index files never hold descriptors at all (see [`super::index`]).
//!
//! A reader gets an `Arc<File>`, so closing a cached handle never pulls a file out from
//! under a read in progress: the descriptor closes when the last user drops it. What
//! needs care is a file that is renamed, removed or replaced by another file of the same
//! name (retention, truncation, the cleaner's swap) while views of the old segment may
//! still read it. [`SegmentFile::detach`] keeps the old file open outside the budget for
//! exactly as long as such views exist, and a reopen checks the file's identity (device
//! and inode), so a view never reads another file that took the old one's name.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

/// Descriptors left to everything else when the capacity is sized from the limit:
/// sockets, the metadata store, checkpoints and index files being written, the runtime.
fn reserve_for(limit: u64) -> u64 {
    (limit / 4).max(64)
}

/// The capacity for a given open-file limit: three quarters of it, keeping at least 64
/// descriptors for everything else, and never below 16 (a tiny limit still serves,
/// reopening often).
pub fn capacity_for_limit(limit: u64) -> usize {
    limit.saturating_sub(reserve_for(limit)).clamp(16, 1 << 24) as usize
}

/// The process's soft RLIMIT_NOFILE (read when the log manager starts, after `weir` has
/// raised it to the hard limit).
pub fn open_files_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed in.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return 1 << 20;
    }
    lim.rlim_cur
}

/// Counts and bounds the segment files open at once (see the module docs).
#[derive(Debug)]
pub struct HandleCache {
    capacity: usize,
    /// The files holding a descriptor that counts against the capacity, by id. Weak, so
    /// that a dropped segment leaves (its `Drop` removes the entry).
    open: Mutex<HashMap<u64, Weak<SegmentFile>>>,
    /// Logical clock for "least recently used".
    clock: AtomicU64,
    next_id: AtomicU64,
    evictions: AtomicU64,
}

impl HandleCache {
    pub fn new(capacity: usize) -> Arc<HandleCache> {
        Arc::new(HandleCache {
            capacity: capacity.max(1),
            open: Mutex::new(HashMap::new()),
            clock: AtomicU64::new(1),
            next_id: AtomicU64::new(1),
            evictions: AtomicU64::new(0),
        })
    }

    /// A cache sized from the open-file limit.
    pub fn from_limit() -> Arc<HandleCache> {
        HandleCache::new(capacity_for_limit(open_files_limit()))
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Segment files holding a counted descriptor now.
    pub fn len(&self) -> usize {
        self.open.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Descriptors closed to stay within the capacity (or to free some for others).
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Count a file that now holds a descriptor, closing the least recently used others
    /// if that passes the capacity.
    fn admit(&self, file: &Arc<SegmentFile>) {
        let victims = {
            let mut open = self.open.lock();
            open.insert(file.id, Arc::downgrade(file));
            if open.len() <= self.capacity {
                return;
            }
            // Evict a slice at a time (down to 15/16 of the capacity), so the scan for
            // the oldest entries is paid once per many opens, not on every one.
            let target = self.capacity - self.capacity / 16;
            let excess = open.len() - target.min(open.len());
            Self::pick_oldest(&mut open, excess, file.id)
        };
        self.release(victims);
    }

    /// Close the least recently used tenth of the open files (at least one): the process
    /// ran out of descriptors and something else needs one.
    pub fn shed(&self) -> usize {
        let victims = {
            let mut open = self.open.lock();
            let n = (open.len() / 10).max(1);
            Self::pick_oldest(&mut open, n, 0)
        };
        let n = victims.len();
        self.release(victims);
        n
    }

    /// Remove the `n` least recently used entries (never `keep`) from the map.
    fn pick_oldest(
        open: &mut HashMap<u64, Weak<SegmentFile>>,
        n: usize,
        keep: u64,
    ) -> Vec<Arc<SegmentFile>> {
        if n == 0 {
            return Vec::new();
        }
        let mut aged: Vec<(u64, u64)> = Vec::with_capacity(open.len());
        open.retain(|&id, w| match w.upgrade() {
            Some(f) => {
                if id != keep {
                    aged.push((f.last_used.load(Ordering::Relaxed), id));
                }
                true
            }
            // Being dropped right now; its Drop finds the entry gone.
            None => false,
        });
        let n = n.min(aged.len());
        if n == 0 {
            return Vec::new();
        }
        if n < aged.len() {
            aged.select_nth_unstable(n - 1);
        }
        aged[..n]
            .iter()
            .filter_map(|(_, id)| open.remove(id)?.upgrade())
            .collect()
    }

    /// Close the victims' descriptors (outside the map's lock: each takes its own).
    fn release(&self, victims: Vec<Arc<SegmentFile>>) {
        let mut closed = 0u64;
        for v in victims {
            let mut st = v.state.lock();
            if !st.detached && st.file.take().is_some() {
                closed += 1;
            }
        }
        if closed > 0 {
            self.evictions.fetch_add(closed, Ordering::Relaxed);
            metrics::counter!(crate::metrics::LOG_SEGMENT_FILES_EVICTED_TOTAL).increment(closed);
        }
    }

    fn forget(&self, id: u64) {
        self.open.lock().remove(&id);
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }
}

/// The `.log` file of one segment, shared by the segment and the views read from it.
#[derive(Debug)]
pub struct SegmentFile {
    id: u64,
    cache: Arc<HandleCache>,
    last_used: AtomicU64,
    state: Mutex<FileState>,
}

#[derive(Debug)]
struct FileState {
    path: PathBuf,
    /// The open descriptor, if any.
    file: Option<Arc<File>>,
    /// Device and inode of the file this segment owns: a reopen that finds another file
    /// under the path (the cleaner put a new segment there) refuses to read it.
    identity: (u64, u64),
    /// Renamed away, removed or replaced while views may still read it: the descriptor
    /// stays open outside the budget until the last view is dropped.
    detached: bool,
}

fn identity(file: &File) -> io::Result<(u64, u64)> {
    let m = file.metadata()?;
    Ok((m.dev(), m.ino()))
}

fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

impl SegmentFile {
    /// Take charge of a file just opened (or created) at `path`.
    pub fn new(cache: &Arc<HandleCache>, path: &Path, file: File) -> io::Result<Arc<SegmentFile>> {
        let identity = identity(&file)?;
        let me = Arc::new(SegmentFile {
            id: cache.next_id.fetch_add(1, Ordering::Relaxed),
            cache: cache.clone(),
            last_used: AtomicU64::new(cache.tick()),
            state: Mutex::new(FileState {
                path: path.to_path_buf(),
                file: Some(Arc::new(file)),
                identity,
                detached: false,
            }),
        });
        cache.admit(&me);
        Ok(me)
    }

    /// Open the file at `path` for reading and writing (it must exist), or return the
    /// error; a process out of descriptors first closes some cached ones and retries.
    pub fn open_path(path: &Path, cache: &HandleCache) -> io::Result<File> {
        let open = || OpenOptions::new().read(true).write(true).open(path);
        match open() {
            Err(e) if is_out_of_descriptors(&e) && cache.shed() > 0 => open(),
            other => other,
        }
    }

    /// The open file, reopened by path if it was evicted.
    pub fn get(self: &Arc<Self>) -> io::Result<Arc<File>> {
        self.last_used.store(self.cache.tick(), Ordering::Relaxed);
        let mut st = self.state.lock();
        if let Some(f) = &st.file {
            return Ok(f.clone());
        }
        let file = SegmentFile::open_path(&st.path, &self.cache)?;
        if identity(&file)? != st.identity {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} was replaced by another file", st.path.display()),
            ));
        }
        let file = Arc::new(file);
        st.file = Some(file.clone());
        let detached = st.detached;
        drop(st);
        if !detached {
            self.cache.admit(self);
        }
        Ok(file)
    }

    /// The file's name changed (renamed to `*.deleted`): reopens use the new one.
    pub fn renamed(&self, to: &Path) {
        self.state.lock().path = to.to_path_buf();
    }

    /// The file is about to be renamed, removed or replaced by another of the same name.
    /// If views of it exist (anything but the segment holds this), keep it open for them
    /// outside the budget; it closes when the last of them is dropped. Best effort: a
    /// view that cannot get its file reports an I/O error, never another file's bytes.
    pub fn detach(self: &Arc<Self>) {
        if Arc::strong_count(self) <= 1 {
            return;
        }
        if let Err(e) = self.get() {
            tracing::debug!(error = %e, "cannot keep a retired segment file open for its readers");
        }
        let mut st = self.state.lock();
        if !st.detached {
            st.detached = true;
            drop(st);
            self.cache.forget(self.id);
        }
    }

    /// Put another file in place of the open one (tests: `/dev/full` fails writes).
    #[cfg(test)]
    pub fn swap_open(&self, file: Arc<File>) -> Option<Arc<File>> {
        self.state.lock().file.replace(file)
    }

    /// Whether a descriptor is open now (tests).
    #[cfg(test)]
    pub fn is_open(&self) -> bool {
        self.state.lock().file.is_some()
    }
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if st.file.is_some() && !st.detached {
            self.cache.forget(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    fn file_with(dir: &Path, name: &str, bytes: &[u8]) -> (PathBuf, File) {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
        (p, f)
    }

    fn read_all(f: &Arc<SegmentFile>) -> Vec<u8> {
        let file = f.get().unwrap();
        let mut buf = vec![0u8; file.metadata().unwrap().len() as usize];
        file.read_exact_at(&mut buf, 0).unwrap();
        buf
    }

    #[test]
    fn capacity_follows_the_limit() {
        assert_eq!(capacity_for_limit(20_000), 15_000);
        assert_eq!(capacity_for_limit(256), 192);
        assert_eq!(capacity_for_limit(40), 16);
    }

    #[test]
    fn eviction_keeps_the_bound_and_reads_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cache = HandleCache::new(4);
        let files: Vec<Arc<SegmentFile>> = (0..10)
            .map(|i| {
                let (p, f) = file_with(
                    dir.path(),
                    &format!("{i}.log"),
                    format!("seg{i}").as_bytes(),
                );
                SegmentFile::new(&cache, &p, f).unwrap()
            })
            .collect();
        assert!(cache.len() <= 4, "{}", cache.len());
        assert!(cache.evictions() >= 6);
        // The most recent one is open; the first ones were closed.
        assert!(files[9].is_open());
        assert!(!files[0].is_open());
        for round in 0..3 {
            for (i, f) in files.iter().enumerate() {
                assert_eq!(read_all(f), format!("seg{i}").into_bytes(), "round {round}");
                assert!(cache.len() <= 4);
            }
        }
        let open = files.iter().filter(|f| f.is_open()).count();
        assert_eq!(open, cache.len());
        drop(files);
        assert_eq!(cache.len(), 0, "dropped segments leave the cache");
    }

    #[test]
    fn an_evicted_handle_stays_valid_for_its_reader() {
        let dir = tempfile::tempdir().unwrap();
        let cache = HandleCache::new(1);
        let (p, f) = file_with(dir.path(), "a.log", b"aaaa");
        let a = SegmentFile::new(&cache, &p, f).unwrap();
        let in_use = a.get().unwrap();
        let (p, f) = file_with(dir.path(), "b.log", b"bbbb");
        let _b = SegmentFile::new(&cache, &p, f).unwrap();
        assert!(!a.is_open(), "evicted");
        let mut buf = [0u8; 4];
        in_use.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"aaaa");
    }

    #[test]
    fn renamed_and_removed_files_stay_readable_by_their_views() {
        let dir = tempfile::tempdir().unwrap();
        let cache = HandleCache::new(2);
        let (p, f) = file_with(dir.path(), "0.log", b"old");
        let seg = SegmentFile::new(&cache, &p, f).unwrap();
        // No view: detaching is a no-op and the name change is followed.
        seg.detach();
        assert_eq!(cache.len(), 1);
        let view = seg.clone();
        // Deleted: renamed, then removed, while a view exists.
        seg.detach();
        assert_eq!(cache.len(), 0, "a detached file is outside the budget");
        let gone = dir.path().join("0.log.deleted");
        std::fs::rename(&p, &gone).unwrap();
        seg.renamed(&gone);
        std::fs::remove_file(&gone).unwrap();
        // Pressure on the cache does not close a detached file.
        for i in 0..5 {
            let (p, f) = file_with(dir.path(), &format!("x{i}.log"), b"x");
            let _ = SegmentFile::new(&cache, &p, f).unwrap();
        }
        drop(seg);
        assert_eq!(read_all(&view), b"old");
    }

    #[test]
    fn a_reopen_never_reads_a_file_that_took_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let cache = HandleCache::new(1);
        let (p, f) = file_with(dir.path(), "0.log", b"original");
        let seg = SegmentFile::new(&cache, &p, f).unwrap();
        let (q, f) = file_with(dir.path(), "1.log", b"x");
        let _other = SegmentFile::new(&cache, &q, f).unwrap();
        assert!(!seg.is_open());
        // The cleaner's swap: another file renamed over the name.
        let (s, _) = file_with(dir.path(), "0.swap", b"cleaned");
        std::fs::rename(&s, &p).unwrap();
        let err = seg.get().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn shedding_closes_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let cache = HandleCache::new(100);
        let files: Vec<Arc<SegmentFile>> = (0..20)
            .map(|i| {
                let (p, f) = file_with(dir.path(), &format!("{i}.log"), b"z");
                SegmentFile::new(&cache, &p, f).unwrap()
            })
            .collect();
        files[0].get().unwrap();
        assert_eq!(cache.shed(), 2);
        assert_eq!(cache.len(), 18);
        assert!(files[0].is_open(), "recently used");
        assert!(!files[1].is_open() && !files[2].is_open());
    }
}

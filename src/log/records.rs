//! What a log read returns: whole stored batches, either read into memory or, when they
//! are large, named by where they lie in a segment file (a [`FileRange`]), so that the
//! network layer can send them from the page cache without copying them through user
//! space. The log knows file ranges; how they are sent is the protocol layer's business.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

/// The most a read leaves in its file at once (larger batches are read into memory).
pub const MAX_FILE_RANGE: usize = 64 << 20;

/// A byte range of an open segment file.
#[derive(Debug, Clone)]
pub struct FileRange {
    pub file: Arc<File>,
    pub pos: u64,
    pub len: usize,
}

impl FileRange {
    /// The bytes themselves.
    pub fn read(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.len];
        self.file.read_exact_at(&mut buf, self.pos)?;
        Ok(buf)
    }
}

/// Batches this large (each) are left in the file: below this, reading them costs less
/// than a `sendfile` call and its page references.
pub const FILE_SEND_MIN: u64 = 32 << 10;

#[derive(Debug, Clone)]
pub enum Records {
    Mem(Bytes),
    /// Whole batches at `chunk`, with their record count (control batches excluded).
    File {
        range: FileRange,
        records: u64,
    },
}

impl Records {
    pub fn empty() -> Records {
        Records::Mem(Bytes::new())
    }

    pub fn len(&self) -> usize {
        match self {
            Records::Mem(b) => b.len(),
            Records::File { range, .. } => range.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes themselves (reading them if they are still in the file).
    pub fn into_bytes(self) -> io::Result<Bytes> {
        match self {
            Records::Mem(b) => Ok(b),
            Records::File { range, .. } => range.read().map(Bytes::from),
        }
    }
}

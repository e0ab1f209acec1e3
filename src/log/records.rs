//! What a log read returns: whole stored batches, either read into memory or, when they
//! are large, named by where they lie in a segment file so the connection can send them
//! from the page cache without copying them through user space
//! ([`crate::protocol::file_chunk`]).

use std::io;

use bytes::Bytes;

use crate::protocol::file_chunk::FileChunk;

/// Batches this large (each) are left in the file: below this, reading them costs less
/// than a `sendfile` call and its page references.
pub const FILE_SEND_MIN: u64 = 32 << 10;

#[derive(Debug, Clone)]
pub enum Records {
    Mem(Bytes),
    /// Whole batches at `chunk`, with their record count (control batches excluded).
    File {
        chunk: FileChunk,
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
            Records::File { chunk, .. } => chunk.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes themselves (reading them if they are still in the file).
    pub fn into_bytes(self) -> io::Result<Bytes> {
        match self {
            Records::Mem(b) => Ok(b),
            Records::File { chunk, .. } => chunk.read().map(Bytes::from),
        }
    }
}

/// Records a batch holds by its header (`count` at 57, control flag in the attributes at
/// 21), 0 for control batches.
pub fn data_records(header: &[u8]) -> u64 {
    if header.len() < 61 || header[16] != 2 || header[22] & 0x20 != 0 {
        return 0;
    }
    u64::try_from(i32::from_be_bytes([
        header[57], header[58], header[59], header[60],
    ]))
    .unwrap_or(0)
}

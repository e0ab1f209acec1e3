//! Response bytes that stay in a file until the socket takes them.
//!
//! A consumer fetch is mostly whole record batches lying in segment files. Reading them
//! into memory only to write them to the socket costs a copy from the page cache and a
//! copy into the socket, plus the buffers that hold the bytes meanwhile. A [`FileChunk`]
//! names the bytes instead (an open file, a position, a length), and the connection hands
//! them to the kernel with `sendfile`, which queues the page-cache pages themselves: no
//! user-space copy and no buffer at all.
//!
//! The Kafka message encoder only knows `Bytes`. It is given a *placeholder* for each
//! file chunk: a slice of a static zeroed region, unique by address, of the chunk's
//! length. The response buffer ([`super::response::SplicingBuf`]) recognises the
//! placeholder's address when the encoder writes it and puts the file chunk in its
//! place; a placeholder that is ever written anywhere else, or not written at all, fails
//! the encoding (the connection is closed) rather than sending zeros.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;

/// The largest file chunk one placeholder can stand for.
pub const MAX_CHUNK: usize = 64 << 20;
/// File chunks one response can hold; later record sets are read into memory instead.
pub const MAX_CHUNKS: usize = 4096;

/// Never read: placeholders point into it only so that their addresses are unique and
/// recognisable. Zeroed statics live in .bss, so this costs address space, not memory.
static PLACEHOLDERS: [u8; MAX_CHUNK + MAX_CHUNKS] = [0; MAX_CHUNK + MAX_CHUNKS];

/// A byte range of an open file.
#[derive(Debug, Clone)]
pub struct FileChunk {
    pub file: Arc<File>,
    pub pos: u64,
    pub len: usize,
}

impl FileChunk {
    /// Read the bytes (responses written to something other than a TCP socket, tests).
    pub fn read(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.len];
        self.file.read_exact_at(&mut buf, self.pos)?;
        Ok(buf)
    }

    /// Write the bytes to `w` through a bounded buffer.
    pub async fn copy_to<W: AsyncWrite + Unpin>(&self, w: &mut W) -> io::Result<()> {
        const PIECE: usize = 256 << 10;
        let mut buf = vec![0u8; PIECE.min(self.len)];
        let mut done = 0;
        while done < self.len {
            let n = PIECE.min(self.len - done);
            self.file
                .read_exact_at(&mut buf[..n], self.pos + done as u64)?;
            w.write_all(&buf[..n]).await?;
            done += n;
        }
        Ok(())
    }

    /// Send the bytes to a TCP socket with `sendfile`, waiting whenever its buffer is
    /// full. A file that has become shorter than the chunk (truncated under the read) is
    /// an error: the response could no longer be completed as framed.
    pub async fn send_to(&self, w: &OwnedWriteHalf) -> io::Result<()> {
        let stream: &tokio::net::TcpStream = w.as_ref();
        let mut offset = self.pos as libc::off_t;
        let end = self.pos as libc::off_t + self.len as libc::off_t;
        while offset < end {
            let sent = stream
                .async_io(Interest::WRITABLE, || {
                    let count = (end - offset) as usize;
                    // SAFETY: both descriptors are open for the duration of the call (the
                    // socket borrowed, the file held by our Arc); `offset` is a valid
                    // pointer to a local the kernel advances.
                    let n = unsafe {
                        libc::sendfile(
                            stream.as_raw_fd(),
                            self.file.as_raw_fd(),
                            &mut offset,
                            count,
                        )
                    };
                    if n < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(n as usize)
                    }
                })
                .await?;
            if sent == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file shorter than the records being sent",
                ));
            }
        }
        Ok(())
    }
}

/// The file chunks of one response, each with its placeholder, in the order the encoder
/// will meet them.
#[derive(Debug, Default, Clone)]
pub struct FileChunks {
    chunks: Vec<(Bytes, FileChunk)>,
}

impl FileChunks {
    /// The placeholder to give the encoder for `chunk`; `None` when this response holds
    /// no more file chunks, or the chunk is too long (read it into memory instead).
    pub fn add(&mut self, chunk: FileChunk) -> Option<Bytes> {
        let k = self.chunks.len();
        if k >= MAX_CHUNKS || chunk.len > MAX_CHUNK || chunk.len == 0 {
            return None;
        }
        let placeholder = Bytes::from_static(&PLACEHOLDERS[k..k + chunk.len]);
        self.chunks.push((placeholder.clone(), chunk));
        Some(placeholder)
    }

    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub(super) fn into_vec(self) -> Vec<(Bytes, FileChunk)> {
        self.chunks
    }
}

/// Whether `src` lies in the placeholder region (so must never be copied as bytes).
pub(super) fn is_placeholder(src: &[u8]) -> bool {
    let start = PLACEHOLDERS.as_ptr() as usize;
    let at = src.as_ptr() as usize;
    !src.is_empty() && at >= start && at < start + PLACEHOLDERS.len()
}

//! Responses as the connection writes them: a size prefix, header and body laid out as
//! one or more chunks.
//!
//! Most responses are a single buffer. A Fetch response is mostly record bytes from
//! segment files; encoding them into one buffer would copy every fetched byte a second
//! time. [`SplicingBuf`] is the encoder's output buffer for those: when the encoder writes
//! a record set we handed it, the buffer keeps a reference to that `Bytes` as its own
//! chunk instead of copying it, and record sets still in their file (large batches, see
//! [`super::file_chunk`]) become file chunks that the socket takes with `sendfile`.
//! Memory chunks go out with vectored writes. So large batches are never copied in user
//! space, and small ones once (the read from the page cache): the issue's "serve fetches
//! from the file bytes without copying records more than once".

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::ops::Range;

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;

use super::file_chunk::{is_placeholder, FileChunk, FileChunks};

/// Record sets smaller than this are copied: a separate iovec costs more than the copy.
const SPLICE_MIN: usize = 4096;

/// IoSlices per `writev` (the kernel's limit is 1024).
const MAX_IOV: usize = 64;

/// One piece of a response: bytes in memory, or a range of a file sent from there.
#[derive(Debug, Clone)]
pub enum Chunk {
    Mem(Bytes),
    File(FileChunk),
}

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Chunk::Mem(b) => b.len(),
            Chunk::File(f) => f.len,
        }
    }
}

/// A response ready to be written, in order.
#[derive(Debug, Default)]
pub struct Response {
    chunks: Vec<Chunk>,
}

impl Response {
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Chunk::len).sum()
    }

    /// How many separately written pieces the response has.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// How many pieces are sent from files.
    pub fn file_chunk_count(&self) -> usize {
        self.chunks
            .iter()
            .filter(|c| matches!(c, Chunk::File(_)))
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All the bytes in one buffer (tests and callers that need a contiguous frame);
    /// file chunks are read.
    pub fn to_bytes(&self) -> io::Result<Bytes> {
        if let [Chunk::Mem(one)] = self.chunks.as_slice() {
            return Ok(one.clone());
        }
        let mut out = BytesMut::with_capacity(self.len());
        for c in &self.chunks {
            match c {
                Chunk::Mem(b) => out.extend_from_slice(b),
                Chunk::File(f) => out.extend_from_slice(&f.read()?),
            }
        }
        Ok(out.freeze())
    }

    /// Write every chunk to any writer: memory with as few `writev` calls as it allows,
    /// file chunks read through a bounded buffer.
    pub async fn write_to<W: AsyncWrite + Unpin>(&self, w: &mut W) -> io::Result<()> {
        for run in self.runs() {
            match run {
                Run::Mem(chunks) => write_vectored_all(w, &chunks).await?,
                Run::File(f) => f.copy_to(w).await?,
            }
        }
        Ok(())
    }

    /// Write every chunk to a client's TCP socket: file chunks go with `sendfile`.
    pub async fn write_to_socket(&self, w: &mut OwnedWriteHalf) -> io::Result<()> {
        for run in self.runs() {
            match run {
                Run::Mem(chunks) => write_vectored_all(w, &chunks).await?,
                Run::File(f) => f.send_to(w).await?,
            }
        }
        Ok(())
    }

    /// Consecutive memory chunks together, each file chunk alone.
    fn runs(&self) -> Vec<Run<'_>> {
        let mut runs = Vec::new();
        let mut mem: Vec<&Bytes> = Vec::new();
        for c in &self.chunks {
            match c {
                Chunk::Mem(b) => mem.push(b),
                Chunk::File(f) => {
                    if !mem.is_empty() {
                        runs.push(Run::Mem(std::mem::take(&mut mem)));
                    }
                    runs.push(Run::File(f));
                }
            }
        }
        if !mem.is_empty() {
            runs.push(Run::Mem(mem));
        }
        runs
    }
}

enum Run<'a> {
    Mem(Vec<&'a Bytes>),
    File(&'a FileChunk),
}

/// Write `chunks` whole, with as few `writev` calls as the writer allows.
async fn write_vectored_all<W: AsyncWrite + Unpin>(w: &mut W, chunks: &[&Bytes]) -> io::Result<()> {
    if let [one] = chunks {
        return w.write_all(one).await;
    }
    let mut chunk = 0;
    let mut skip = 0;
    while chunk < chunks.len() {
        let mut slices = Vec::with_capacity(MAX_IOV.min(chunks.len() - chunk));
        slices.push(IoSlice::new(&chunks[chunk][skip..]));
        for c in chunks[chunk + 1..].iter().take(MAX_IOV - 1) {
            slices.push(IoSlice::new(c));
        }
        let mut n = w.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 && chunk < chunks.len() {
            let left = chunks[chunk].len() - skip;
            if n >= left {
                n -= left;
                chunk += 1;
                skip = 0;
            } else {
                skip += n;
                n = 0;
            }
        }
    }
    Ok(())
}

impl From<Bytes> for Response {
    fn from(b: Bytes) -> Response {
        Response {
            chunks: vec![Chunk::Mem(b)],
        }
    }
}

/// An encoder output buffer that keeps given record sets by reference (see the module
/// docs) and puts file chunks in place of their placeholders. Everything else is written
/// into `head`, which is cut into a chunk each time a record set is spliced in.
pub struct SplicingBuf {
    head: BytesMut,
    chunks: Vec<Chunk>,
    /// The record sets to keep by reference, in the order the encoder writes them, with
    /// what goes out in their place.
    splice: Vec<(Bytes, Chunk)>,
    next: usize,
    files: usize,
    files_placed: usize,
    /// A placeholder written that was not the next expected one.
    stray_placeholder: bool,
}

impl SplicingBuf {
    /// `capacity` is for the copied part (headers and small fields).
    /// `records` are the message's record sets in the order the encoder writes them,
    /// file chunks' placeholders among them.
    pub fn new(capacity: usize, records: Vec<Bytes>, files: FileChunks) -> SplicingBuf {
        let mut files: HashMap<(usize, usize), FileChunk> = files
            .into_vec()
            .into_iter()
            .map(|(p, f)| ((p.as_ptr() as usize, p.len()), f))
            .collect();
        let file_count = files.len();
        let splice = records
            .into_iter()
            .filter_map(|b| {
                if is_placeholder(&b) {
                    let f = files.remove(&(b.as_ptr() as usize, b.len()))?;
                    Some((b, Chunk::File(f)))
                } else if b.len() >= SPLICE_MIN {
                    Some((b.clone(), Chunk::Mem(b)))
                } else {
                    None
                }
            })
            .collect();
        SplicingBuf {
            head: BytesMut::with_capacity(capacity),
            chunks: Vec::new(),
            splice,
            next: 0,
            files: file_count,
            files_placed: 0,
            stray_placeholder: false,
        }
    }

    /// The response; an error when a file chunk's placeholder was not written exactly
    /// once where expected (zeros would have gone out instead of records).
    pub fn finish(mut self) -> Result<Response, String> {
        if self.stray_placeholder || self.files_placed != self.files {
            return Err(format!(
                "{} of {} file chunks placed{}",
                self.files_placed,
                self.files,
                if self.stray_placeholder {
                    ", a placeholder written as bytes"
                } else {
                    ""
                }
            ));
        }
        if !self.head.is_empty() || self.chunks.is_empty() {
            self.chunks.push(Chunk::Mem(self.head.freeze()));
        }
        Ok(Response {
            chunks: self.chunks,
        })
    }

    /// What goes out in place of `src`, if it is a record set to keep by reference: the
    /// next one or, if a set was skipped, a later one. Matching is by address and length,
    /// never by content.
    fn spliced(&mut self, src: &[u8]) -> Option<Chunk> {
        let at = self.splice[self.next..]
            .iter()
            .position(|(b, _)| b.as_ptr() == src.as_ptr() && b.len() == src.len())?;
        self.next += at + 1;
        Some(self.splice[self.next - 1].1.clone())
    }
}

// SAFETY: every method delegates to `head`, a `BytesMut`, whose `BufMut` implementation
// upholds the trait's contract; `put_slice` only adds whole chunks beside it.
unsafe impl BufMut for SplicingBuf {
    fn remaining_mut(&self) -> usize {
        self.head.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's contract for `advance_mut` is passed on unchanged.
        unsafe { self.head.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.head.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        let placeholder = is_placeholder(src);
        if src.len() >= SPLICE_MIN || placeholder {
            if let Some(c) = self.spliced(src) {
                let head = self.head.split();
                if !head.is_empty() {
                    self.chunks.push(Chunk::Mem(head.freeze()));
                }
                if matches!(c, Chunk::File(_)) {
                    self.files_placed += 1;
                }
                self.chunks.push(c);
                return;
            }
        }
        if placeholder {
            self.stray_placeholder = true;
        }
        self.head.extend_from_slice(src);
    }
}

/// Offsets are those of the copied part only. The generated message encoders never seek
/// (they write strictly forward); only record-batch encoding does, and that is never run
/// on this buffer.
impl ByteBufMut for SplicingBuf {
    fn offset(&self) -> usize {
        self.head.len()
    }

    fn seek(&mut self, offset: usize) {
        self.head.resize(offset, 0);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        let end = r.end.min(self.head.len());
        let start = r.start.min(end);
        &mut self.head[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spliced_chunks_are_written_in_order() {
        let big = Bytes::from(vec![7u8; 10_000]);
        let other = Bytes::from(vec![9u8; 5_000]);
        let small = Bytes::from(vec![1u8; 10]);
        let mut buf = SplicingBuf::new(
            64,
            vec![big.clone(), small.clone(), other.clone()],
            FileChunks::default(),
        );
        buf.put_i32(5);
        buf.put_slice(&big);
        buf.put_slice(&small);
        // Equal content at another address is copied, not spliced.
        let copy = other.to_vec();
        buf.put_slice(&copy);
        buf.put_slice(&other);
        buf.put_u8(3);
        let resp = buf.finish().unwrap();
        // head, big, head (small + copy), other, head (trailer)
        assert_eq!(resp.chunks.len(), 5);
        let mut want = vec![0, 0, 0, 5];
        want.extend_from_slice(&big);
        want.extend_from_slice(&small);
        want.extend_from_slice(&other);
        want.extend_from_slice(&other);
        want.push(3);
        assert_eq!(resp.to_bytes().unwrap(), want);
        let mut out = Vec::new();
        resp.write_to(&mut out).await.unwrap();
        assert_eq!(out, want);
    }

    /// A writer that takes at most 7 bytes per call exercises partial vectored writes.
    struct Trickle(Vec<u8>);

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            let n = buf.len().min(7);
            self.0.extend_from_slice(&buf[..n]);
            std::task::Poll::Ready(Ok(n))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn partial_writes_resume_mid_chunk() {
        let chunks: Vec<Bytes> = (0..200u8)
            .map(|i| Bytes::from(vec![i; 5 + i as usize % 11]))
            .collect();
        let want: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
        let resp = Response {
            chunks: chunks.into_iter().map(Chunk::Mem).collect(),
        };
        let mut w = Trickle(Vec::new());
        resp.write_to(&mut w).await.unwrap();
        assert_eq!(w.0, want);
    }

    /// File chunks go to a real socket with sendfile, between memory chunks, and a
    /// response through any other writer reads them; a file cut short is an error.
    #[tokio::test]
    async fn file_chunks_are_sent_from_the_file() {
        use std::io::Write;
        use std::sync::Arc;
        use tokio::io::AsyncReadExt;

        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut tmp = tempfile::tempfile().unwrap();
        tmp.write_all(&data).unwrap();
        let file = Arc::new(tmp);
        let chunk = |pos: u64, len: usize| {
            Chunk::File(FileChunk {
                file: file.clone(),
                pos,
                len,
            })
        };
        let resp = Response {
            chunks: vec![
                Chunk::Mem(Bytes::from_static(b"head")),
                chunk(10, 2_500_000),
                Chunk::Mem(Bytes::from_static(b"mid")),
                chunk(0, 7),
            ],
        };
        let mut want = b"head".to_vec();
        want.extend_from_slice(&data[10..2_500_010]);
        want.extend_from_slice(b"mid");
        want.extend_from_slice(&data[..7]);
        assert_eq!(resp.to_bytes().unwrap(), want);
        let mut trickle = Trickle(Vec::new());
        resp.write_to(&mut trickle).await.unwrap();
        assert_eq!(trickle.0, want);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let (_rd, mut wr) = tokio::net::TcpStream::connect(addr)
            .await
            .unwrap()
            .into_split();
        // More than a socket buffer holds: sendfile waits for room on the way.
        resp.write_to_socket(&mut wr).await.unwrap();
        let short = Response {
            chunks: vec![chunk(2_999_000, 5_000)],
        };
        let err = short.write_to_socket(&mut wr).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        drop(wr);
        let got = reader.await.unwrap();
        assert_eq!(&got[..want.len()], &want[..]);
        // What the short chunk managed to send before the file ended.
        assert_eq!(&got[want.len()..], &data[2_999_000..]);
    }
}

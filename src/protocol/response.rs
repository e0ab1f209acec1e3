//! Responses as the connection writes them: a size prefix, header and body laid out as
//! one or more byte chunks.
//!
//! Most responses are a single buffer. A Fetch response is mostly record bytes read from
//! segment files; encoding them into one buffer would copy every fetched byte a second
//! time. [`SplicingBuf`] is the encoder's output buffer for those: when the encoder writes
//! a record set we handed it, the buffer keeps a reference to that `Bytes` as its own
//! chunk instead of copying it, and the chunks go to the socket with vectored writes. So
//! fetched records are copied once in user space (the read from the page cache) — the
//! issue's "serve fetches from the file bytes without copying records more than once".

use std::io::{self, IoSlice};
use std::ops::Range;

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Record sets smaller than this are copied: a separate iovec costs more than the copy.
const SPLICE_MIN: usize = 4096;

/// IoSlices per `writev` (the kernel's limit is 1024).
const MAX_IOV: usize = 64;

/// A response ready to be written, in order.
#[derive(Debug, Default)]
pub struct Response {
    chunks: Vec<Bytes>,
}

impl Response {
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    /// How many separately written pieces the response has.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All the bytes in one buffer (tests and callers that need a contiguous frame).
    pub fn to_bytes(&self) -> Bytes {
        match self.chunks.as_slice() {
            [one] => one.clone(),
            chunks => {
                let mut out = BytesMut::with_capacity(self.len());
                for c in chunks {
                    out.extend_from_slice(c);
                }
                out.freeze()
            }
        }
    }

    /// Write every chunk, with as few `writev` calls as the socket allows.
    pub async fn write_to<W: AsyncWrite + Unpin>(&self, w: &mut W) -> io::Result<()> {
        if let [one] = self.chunks.as_slice() {
            return w.write_all(one).await;
        }
        let mut chunk = 0;
        let mut skip = 0;
        while chunk < self.chunks.len() {
            let mut slices = Vec::with_capacity(MAX_IOV.min(self.chunks.len() - chunk));
            slices.push(IoSlice::new(&self.chunks[chunk][skip..]));
            for c in self.chunks[chunk + 1..].iter().take(MAX_IOV - 1) {
                slices.push(IoSlice::new(c));
            }
            let mut n = w.write_vectored(&slices).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            while n > 0 && chunk < self.chunks.len() {
                let left = self.chunks[chunk].len() - skip;
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
}

impl From<Bytes> for Response {
    fn from(b: Bytes) -> Response {
        Response { chunks: vec![b] }
    }
}

/// An encoder output buffer that keeps given record sets by reference (see the module
/// docs). Everything else is written into `head`, which is cut into a chunk each time a
/// record set is spliced in.
pub struct SplicingBuf {
    head: BytesMut,
    chunks: Vec<Bytes>,
    /// The record sets to keep by reference, in the order the encoder writes them.
    splice: Vec<Bytes>,
    next: usize,
}

impl SplicingBuf {
    /// `capacity` is for the copied part (headers and small fields).
    pub fn new(capacity: usize, splice: Vec<Bytes>) -> SplicingBuf {
        let splice = splice
            .into_iter()
            .filter(|b| b.len() >= SPLICE_MIN)
            .collect();
        SplicingBuf {
            head: BytesMut::with_capacity(capacity),
            chunks: Vec::new(),
            splice,
            next: 0,
        }
    }

    pub fn finish(mut self) -> Response {
        if !self.head.is_empty() || self.chunks.is_empty() {
            self.chunks.push(self.head.freeze());
        }
        Response {
            chunks: self.chunks,
        }
    }

    /// The record set `src` is, if it is the next one to keep by reference. The encoder
    /// writes record sets in order, so only the next one (or, if a set was skipped, a
    /// later one) can match; matching is by address and length, never by content.
    fn spliced(&mut self, src: &[u8]) -> Option<Bytes> {
        let at = self.splice[self.next..]
            .iter()
            .position(|b| b.as_ptr() == src.as_ptr() && b.len() == src.len())?;
        self.next += at + 1;
        Some(self.splice[self.next - 1].clone())
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
        if src.len() >= SPLICE_MIN {
            if let Some(b) = self.spliced(src) {
                let head = self.head.split();
                if !head.is_empty() {
                    self.chunks.push(head.freeze());
                }
                self.chunks.push(b);
                return;
            }
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
        let mut buf = SplicingBuf::new(64, vec![big.clone(), small.clone(), other.clone()]);
        buf.put_i32(5);
        buf.put_slice(&big);
        buf.put_slice(&small);
        // Equal content at another address is copied, not spliced.
        let copy = other.to_vec();
        buf.put_slice(&copy);
        buf.put_slice(&other);
        buf.put_u8(3);
        let resp = buf.finish();
        // head, big, head (small + copy), other, head (trailer)
        assert_eq!(resp.chunks.len(), 5);
        let mut want = vec![0, 0, 0, 5];
        want.extend_from_slice(&big);
        want.extend_from_slice(&small);
        want.extend_from_slice(&other);
        want.extend_from_slice(&other);
        want.push(3);
        assert_eq!(resp.to_bytes(), want);
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
        let resp = Response { chunks };
        let mut w = Trickle(Vec::new());
        resp.write_to(&mut w).await.unwrap();
        assert_eq!(w.0, want);
    }
}

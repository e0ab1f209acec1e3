//! Reading size-prefixed frames (`i32` big-endian length, then the bytes).

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Debug, Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds the limit of {max} (socket.request.max.bytes, or sasl.server.max.receive.size before authentication)")]
    TooLarge { size: i64, max: usize },
    #[error("negative frame size {0}")]
    Negative(i32),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// How much a [`FrameReader`] asks the socket for at least, so that a burst of small
/// requests is read with one syscall.
const READ_AHEAD: usize = 64 * 1024;

/// Frames from a byte stream, read into one buffer that later frames reuse once earlier
/// ones are dropped (no per-frame allocation in the steady state, no zeroing).
///
/// [`FrameReader::next`] is cancel safe: whatever was read stays in the buffer, so the
/// connection can wait for the next frame and for responses in one `select!` instead of
/// handing frames over from a reader task (a task wake-up per request saved).
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    max: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max: usize) -> FrameReader<R> {
        FrameReader {
            inner,
            buf: BytesMut::with_capacity(READ_AHEAD),
            max,
        }
    }

    /// Change the largest frame accepted (smaller before a SASL client authenticates).
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// The next frame's bytes (without the size prefix); `Ok(None)` at a clean end of
    /// stream between frames.
    pub async fn next(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            let mut want = READ_AHEAD;
            if self.buf.len() >= 4 {
                let size = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                if size < 0 {
                    return Err(FrameError::Negative(size));
                }
                if size as usize > self.max {
                    return Err(FrameError::TooLarge {
                        size: size as i64,
                        max: self.max,
                    });
                }
                let total = 4 + size as usize;
                if self.buf.len() >= total {
                    let mut frame = self.buf.split_to(total);
                    frame.advance(4);
                    return Ok(Some(frame.freeze()));
                }
                want = want.max(total - self.buf.len());
            }
            self.buf.reserve(want);
            let read = match self.inner.read_buf(&mut self.buf).await {
                Ok(n) => n,
                // TLS reports a peer that closed without close_notify this way; between
                // frames that loses nothing (the framing says where requests end), and
                // most Kafka clients close like that.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
                Err(e) => return Err(e.into()),
            };
            if read == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(FrameError::Truncated)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frame_reader_splits_frames_and_rejects_bad_ones() {
        let data: &[u8] = &[0, 0, 0, 2, 7, 8, 0, 0, 0, 0, 0, 0, 0, 1, 9];
        let mut r = FrameReader::new(data, 10);
        assert_eq!(&r.next().await.unwrap().unwrap()[..], &[7, 8]);
        assert!(r.next().await.unwrap().unwrap().is_empty());
        assert_eq!(&r.next().await.unwrap().unwrap()[..], &[9]);
        assert!(r.next().await.unwrap().is_none());
        // A frame larger than the read-ahead, arriving in pieces.
        let (mut w, rd) = tokio::io::duplex(1000);
        let mut r = FrameReader::new(rd, 1 << 20);
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let sender = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            w.write_all(&(big.len() as i32).to_be_bytes())
                .await
                .unwrap();
            w.write_all(&big).await.unwrap();
            big
        });
        let got = r.next().await.unwrap().unwrap();
        assert_eq!(got, sender.await.unwrap());
        assert!(r.next().await.unwrap().is_none());
        let too_big: &[u8] = &[0, 0, 1, 0];
        assert!(matches!(
            FrameReader::new(too_big, 10).next().await,
            Err(FrameError::TooLarge { .. })
        ));
        let neg: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            FrameReader::new(neg, 10).next().await,
            Err(FrameError::Negative(_))
        ));
        let torn: &[u8] = &[0, 0, 0, 5, 1];
        assert!(matches!(
            FrameReader::new(torn, 10).next().await,
            Err(FrameError::Truncated)
        ));
    }

    /// Yields its bytes, then the error TLS gives for a close without close_notify.
    struct EofWithoutCloseNotify(&'static [u8]);

    impl AsyncRead for EofWithoutCloseNotify {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.0.is_empty() {
                return std::task::Poll::Ready(Err(std::io::ErrorKind::UnexpectedEof.into()));
            }
            let n = self.0.len().min(buf.remaining());
            buf.put_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_close_without_close_notify_ends_the_stream_between_frames_only() {
        let mut r = FrameReader::new(EofWithoutCloseNotify(&[0, 0, 0, 1, 7]), 10);
        assert_eq!(&r.next().await.unwrap().unwrap()[..], &[7]);
        assert!(r.next().await.unwrap().is_none());
        let mut torn = FrameReader::new(EofWithoutCloseNotify(&[0, 0, 0, 5, 1]), 10);
        assert!(matches!(torn.next().await, Err(FrameError::Truncated)));
    }
}

//! Reading a segment without the partition lock: a [`SegmentView`] snapshot of the file
//! and its size, positioned reads into uninitialised memory, and a [`Cursor`] walking
//! batch headers a chunk at a time.

use super::*;

/// A read-only snapshot of a segment: safe to use without the partition lock, because
/// the file only grows past `size` and deleted files stay readable through the handle.
/// The file is opened (or taken from the handle cache) on the first read, not when the
/// snapshot is taken, so snapshotting segments a read may not need costs nothing.
#[derive(Debug, Clone)]
pub struct SegmentView {
    pub base_offset: i64,
    pub file: Arc<SegmentFile>,
    pub size: u64,
    pub(super) open: OnceLock<Arc<File>>,
}

pub(super) fn read_at(file: &File, pos: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, pos)?;
    Ok(buf)
}

/// `len` bytes at `pos`, read into fresh uninitialised memory: fetches are the bulk of
/// what a broker reads, and zeroing each buffer first would touch every byte twice.
pub(super) fn read_uninit(file: &File, pos: u64, len: usize) -> io::Result<BytesMut> {
    let mut buf = BytesMut::with_capacity(len);
    while buf.len() < len {
        let filled = buf.len();
        let at = pos + filled as u64;
        let spare = &mut buf.spare_capacity_mut()[..len - filled];
        // SAFETY: pread writes at most `spare.len()` bytes into memory we own and that no
        // one else references; it never reads the (uninitialised) destination.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                spare.as_mut_ptr().cast(),
                spare.len(),
                at as libc::off_t,
            )
        };
        match n {
            n if n > 0 => {
                // SAFETY: pread initialised the first `n` bytes of the spare capacity.
                unsafe { buf.set_len(buf.len() + n as usize) };
            }
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(buf)
}

/// Walks batch headers of a [`SegmentView`] from a position, reading a chunk at a time.
pub struct Cursor<'a> {
    view: &'a SegmentView,
    pos: u64,
    chunk: Vec<u8>,
    chunk_pos: u64,
    /// Where in `chunk` the header last returned starts.
    last_at: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(view: &'a SegmentView, pos: u64) -> Cursor<'a> {
        Cursor {
            view,
            pos,
            chunk: Vec::new(),
            chunk_pos: 0,
            last_at: 0,
        }
    }

    /// The full header of the batch last returned by [`next_header`](Self::next_header).
    pub fn full_header(&self) -> Result<BatchHeader, crate::log::LogError> {
        BatchHeader::parse(self.chunk.get(self.last_at..).unwrap_or_default())
    }

    /// The next header and its position; `None` at the end of the valid data or at a
    /// header that does not parse (nothing past it is served).
    pub fn next_header(&mut self) -> io::Result<Option<(Peek, u64)>> {
        let pos = self.pos;
        if pos + HEADER_LEN as u64 > self.view.size {
            return Ok(None);
        }
        let in_chunk = pos >= self.chunk_pos
            && pos + HEADER_LEN as u64 <= self.chunk_pos + self.chunk.len() as u64;
        if !in_chunk {
            let len = (SCAN_CHUNK as u64).min(self.view.size - pos) as usize;
            self.chunk = read_at(self.view.handle()?, pos, len)?;
            self.chunk_pos = pos;
        }
        let at = (pos - self.chunk_pos) as usize;
        let Some(p) = peek(&self.chunk[at..]) else {
            return Ok(None);
        };
        if pos + p.size > self.view.size {
            return Ok(None);
        }
        self.last_at = at;
        self.pos = pos + p.size;
        Ok(Some((p, pos)))
    }
}

impl SegmentView {
    /// The open file: held for the rest of this view's life once read, so a read that
    /// spans many calls uses one descriptor even if the cache closes its own.
    fn handle(&self) -> io::Result<&File> {
        if let Some(f) = self.open.get() {
            return Ok(f);
        }
        let f = self.file.get()?;
        Ok(self.open.get_or_init(|| f))
    }

    /// The open file as a shared handle, for a send that outlives this view.
    fn shared_handle(&self) -> io::Result<Arc<File>> {
        if let Some(f) = self.open.get() {
            return Ok(f.clone());
        }
        let f = self.file.get()?;
        Ok(self.open.get_or_init(|| f).clone())
    }

    /// Position of the first batch whose last offset is >= `offset`, scanning from
    /// `hint`; with the batch header.
    pub fn find(&self, offset: i64, hint: u64) -> io::Result<Option<(Peek, u64)>> {
        let mut cursor = Cursor::new(self, hint);
        while let Some((p, pos)) = cursor.next_header()? {
            if p.last_offset >= offset {
                return Ok(Some((p, pos)));
            }
        }
        Ok(None)
    }

    /// Whole batches from `start` (a batch boundary): batches whose last offset is below
    /// `max_offset`, up to `max_bytes` in total, at least the first one when `min_one`.
    /// One read for the common case.
    pub fn read_batches(
        &self,
        start: u64,
        max_bytes: usize,
        max_offset: i64,
        min_one: bool,
    ) -> io::Result<Bytes> {
        if start >= self.size {
            return Ok(Bytes::new());
        }
        let avail = (self.size - start) as usize;
        let first_len = (max_bytes.max(HEADER_LEN)).min(avail);
        let file = self.handle()?;
        if !min_one && avail >= HEADER_LEN {
            // A first batch that cannot be served whole is not read at all. Without this
            // look at its header, a fetch of many partitions whose batches are larger
            // than the partition limit read (and held until the response was written) up
            // to the limit for every partition only to return nothing for most: 520 MB
            // RSS for one consumer of a 1,000-partition topic.
            let mut head = [0u8; HEADER_LEN];
            file.read_exact_at(&mut head, start)?;
            match peek(&head) {
                Some(p) if p.size <= max_bytes as u64 && p.last_offset < max_offset => {}
                _ => return Ok(Bytes::new()),
            }
        }
        let mut buf = read_uninit(file, start, first_len)?;
        let mut end = 0usize;
        while let Some(p) = peek(&buf[end.min(buf.len())..]) {
            if p.last_offset >= max_offset {
                break;
            }
            let batch_end = end as u64 + p.size;
            if batch_end > avail as u64 {
                break;
            }
            if batch_end > max_bytes as u64 && !(end == 0 && min_one) {
                break;
            }
            if batch_end > buf.len() as u64 {
                // Only the first batch can outgrow the buffer (min_one): read it whole.
                buf = read_uninit(file, start, batch_end as usize)?;
            }
            end = batch_end as usize;
            if end >= max_bytes {
                break;
            }
        }
        buf.truncate(end);
        Ok(buf.freeze())
    }

    /// Like [`read_batches`](Self::read_batches), but batches of [`FILE_SEND_MIN`] or
    /// more are not read: the result names their range of the file. The walk reads only
    /// headers, and stops before a small batch (the next read serves it from memory).
    pub fn read_records(
        &self,
        start: u64,
        max_bytes: usize,
        max_offset: i64,
        min_one: bool,
    ) -> io::Result<Records> {
        if start + HEADER_LEN as u64 > self.size {
            return Ok(Records::empty());
        }
        let mut head = [0u8; HEADER_LEN];
        self.handle()?.read_exact_at(&mut head, start)?;
        match peek(&head) {
            Some(first) if first.size >= FILE_SEND_MIN => {}
            _ => {
                return self
                    .read_batches(start, max_bytes, max_offset, min_one)
                    .map(Records::Mem)
            }
        }
        let avail = self.size - start;
        let limit = max_bytes as u64;
        let (mut end, mut records) = (0u64, 0u64);
        while let Some(p) = peek(&head).filter(|p| p.size >= FILE_SEND_MIN) {
            let batch_end = end + p.size;
            if p.last_offset >= max_offset
                || batch_end > avail
                || batch_end > MAX_FILE_RANGE as u64
                || (batch_end > limit && !(end == 0 && min_one))
            {
                break;
            }
            end = batch_end;
            records += data_records(&head);
            if end >= limit || end + HEADER_LEN as u64 > avail {
                break;
            }
            self.handle()?.read_exact_at(&mut head, start + end)?;
        }
        if end == 0 {
            // A first batch too large for one file chunk is read the usual way.
            return self
                .read_batches(start, max_bytes, max_offset, min_one)
                .map(Records::Mem);
        }
        Ok(Records::File {
            range: FileRange {
                file: self.shared_handle()?,
                pos: start,
                len: end as usize,
            },
            records,
        })
    }

    /// The bytes of one batch found by a [`Cursor`].
    pub fn read_batch(&self, pos: u64, size: u64) -> io::Result<Vec<u8>> {
        read_at(self.handle()?, pos, size as usize)
    }
}

//! The records inside a batch: walking their framing (varint lengths, offset deltas,
//! timestamps, keys, headers) from a slice or a streaming decompressor, without copying,
//! and with an error, never a panic, on any malformed byte.

use std::io::{BufRead, BufReader, Read};

use super::*;

/// What the validators need to know about one record.
pub(super) struct RecordInfo {
    pub(super) offset_delta: i32,
    pub(super) timestamp: i64,
    pub(super) has_key: bool,
}

/// A byte source the record walker reads from: a slice for uncompressed batches, a
/// streaming decompressor otherwise.
pub(super) trait Source {
    fn byte(&mut self) -> Result<u8, Fault>;
    fn skip(&mut self, n: usize) -> Result<(), Fault>;
    /// Bytes consumed so far.
    fn position(&self) -> u64;
    fn at_end(&mut self) -> Result<bool, Fault>;
}

pub(super) struct SliceSource<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> SliceSource<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        SliceSource { buf, pos: 0 }
    }
}

impl Source for SliceSource<'_> {
    fn byte(&mut self) -> Result<u8, Fault> {
        let b = self
            .buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| malformed("record runs past the end of the batch"))?;
        self.pos += 1;
        Ok(b)
    }
    fn skip(&mut self, n: usize) -> Result<(), Fault> {
        if n > self.buf.len() - self.pos {
            return Err(malformed("record field runs past the end of the batch"));
        }
        self.pos += n;
        Ok(())
    }
    fn position(&self) -> u64 {
        self.pos as u64
    }
    fn at_end(&mut self) -> Result<bool, Fault> {
        Ok(self.pos == self.buf.len())
    }
}

/// Reads decompressed bytes with a running count, refusing to go past
/// [`MAX_DECOMPRESSED_BYTES`].
pub(super) struct StreamSource<R> {
    inner: BufReader<R>,
    pos: u64,
}

impl<R: Read> StreamSource<R> {
    pub(super) fn new(inner: R) -> Self {
        StreamSource {
            inner: BufReader::with_capacity(16 << 10, inner),
            pos: 0,
        }
    }
    fn fill(&mut self) -> Result<&[u8], Fault> {
        if self.pos >= MAX_DECOMPRESSED_BYTES {
            return Err(Fault::Codec(format!(
                "batch decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes"
            )));
        }
        self.inner
            .fill_buf()
            .map_err(|e| Fault::Codec(format!("cannot decompress batch: {e}")))
    }
}

impl<R: Read> Source for StreamSource<R> {
    fn byte(&mut self) -> Result<u8, Fault> {
        let b = *self
            .fill()?
            .first()
            .ok_or_else(|| malformed("record runs past the end of the decompressed batch"))?;
        self.inner.consume(1);
        self.pos += 1;
        Ok(b)
    }
    fn skip(&mut self, mut n: usize) -> Result<(), Fault> {
        while n > 0 {
            let available = self.fill()?.len();
            if available == 0 {
                return Err(malformed(
                    "record field runs past the end of the decompressed batch",
                ));
            }
            let step = available.min(n);
            self.inner.consume(step);
            self.pos += step as u64;
            n -= step;
        }
        Ok(())
    }
    fn position(&self) -> u64 {
        self.pos
    }
    fn at_end(&mut self) -> Result<bool, Fault> {
        Ok(self.fill()?.is_empty())
    }
}

pub(super) fn read_varint(src: &mut impl Source) -> Result<i32, Fault> {
    let mut raw: u32 = 0;
    for i in 0..5 {
        let b = src.byte()?;
        raw |= ((b & 0x7f) as u32) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32));
        }
    }
    Err(malformed("varint longer than 5 bytes"))
}

pub(super) fn read_varlong(src: &mut impl Source) -> Result<i64, Fault> {
    let mut raw: u64 = 0;
    for i in 0..10 {
        let b = src.byte()?;
        raw |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    Err(malformed("varlong longer than 10 bytes"))
}

/// Skip a length-prefixed field of the record ending at `end`; false for a null field.
pub(super) fn skip_nullable(src: &mut impl Source, what: &str, end: u64) -> Result<bool, Fault> {
    let len = read_varint(src)?;
    if len < -1 {
        return Err(malformed(format!("negative {what} length {len}")));
    }
    if len == -1 {
        return Ok(false);
    }
    skip_within(src, len, end)?;
    Ok(true)
}

/// Skip `len` bytes, failing before reading them if they overrun the record: a stream
/// source would otherwise decompress them first.
pub(super) fn skip_within(src: &mut impl Source, len: i32, end: u64) -> Result<(), Fault> {
    if src.position() + len as u64 > end {
        return Err(malformed(format!(
            "a field of {len} bytes runs past the end of its record"
        )));
    }
    src.skip(len as usize)
}

/// Why a record walk failed; [`walk_records`] turns it into the right [`LogError`].
pub(super) enum Fault {
    /// The framing is wrong: the sender's mistake or damage, depending on [`Origin`].
    Malformed(String),
    /// The compressed payload does not decode (or decodes to too much).
    Codec(String),
    /// The visitor refused a well-formed record.
    Rejected(LogError),
}

pub(super) fn malformed(msg: impl Into<String>) -> Fault {
    Fault::Malformed(msg.into())
}

/// Walk exactly `record_count` records that must fill `src` exactly, calling `visit` for
/// each.
pub(super) fn walk_records<S: Source>(
    header: &BatchHeader,
    origin: Origin,
    src: &mut S,
    visit: impl FnMut(RecordInfo) -> Result<(), LogError>,
) -> Result<(), LogError> {
    walk(header, origin, src, visit).map_err(|fault| match fault {
        Fault::Malformed(m) => origin.malformed(m),
        Fault::Codec(m) => corrupt(m),
        Fault::Rejected(e) => e,
    })
}

pub(super) fn walk<S: Source>(
    header: &BatchHeader,
    origin: Origin,
    src: &mut S,
    mut visit: impl FnMut(RecordInfo) -> Result<(), LogError>,
) -> Result<(), Fault> {
    let mut previous_delta = -1i64;
    for index in 0..header.record_count {
        let len = read_varint(src)?;
        if len < 0 {
            return Err(malformed(format!(
                "record {index} has negative length {len}"
            )));
        }
        let body_start = src.position();
        let body_end = body_start + len as u64;
        let _attributes = src.byte()?;
        let timestamp_delta = read_varlong(src)?;
        let offset_delta = read_varint(src)?;
        let in_order = match origin {
            Origin::Client => offset_delta == index,
            Origin::Stored => {
                offset_delta as i64 > previous_delta && offset_delta <= header.last_offset_delta
            }
        };
        if !in_order {
            return Err(malformed(format!(
                "record {index} has offset delta {offset_delta}"
            )));
        }
        previous_delta = offset_delta as i64;
        let has_key = skip_nullable(src, "key", body_end)?;
        skip_nullable(src, "value", body_end)?;
        let headers = read_varint(src)?;
        if headers < 0 {
            return Err(malformed(format!(
                "record {index} has negative header count {headers}"
            )));
        }
        for _ in 0..headers {
            // Each header takes at least two bytes, so a huge count on a short record
            // ends here rather than looping.
            if src.position() >= body_end {
                return Err(malformed(format!(
                    "record {index}: headers run past its length {len}"
                )));
            }
            let key_len = read_varint(src)?;
            if key_len < 0 {
                return Err(malformed(format!(
                    "record {index} has a header with negative key length"
                )));
            }
            skip_within(src, key_len, body_end)?;
            skip_nullable(src, "header value", body_end)?;
        }
        if src.position() != body_end {
            return Err(malformed(format!(
                "record {index} declares {len} bytes but its fields take {}",
                src.position() - body_start
            )));
        }
        visit(RecordInfo {
            offset_delta,
            timestamp: header.base_timestamp.wrapping_add(timestamp_delta),
            has_key,
        })
        .map_err(Fault::Rejected)?;
    }
    if !src.at_end()? {
        return Err(malformed(format!(
            "bytes remain after the batch's {} records",
            header.record_count
        )));
    }
    Ok(())
}

/// One record of a decompressed stored batch, borrowing its bytes.
#[derive(Debug)]
pub struct RecordRef<'a> {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The whole record: length varint and body, as stored.
    pub raw: &'a [u8],
}

/// A length-prefixed field of the record ending at `end`, borrowed (None when null).
fn take_nullable<'a>(src: &mut SliceSource<'a>, end: usize) -> Result<Option<&'a [u8]>, Fault> {
    let len = read_varint(src)?;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 {
        return Err(malformed(format!("negative field length {len}")));
    }
    let start = src.pos;
    let stop = start
        .checked_add(len as usize)
        .filter(|&e| e <= end)
        .ok_or_else(|| malformed("record field runs past the end of its record"))?;
    src.pos = stop;
    Ok(Some(&src.buf[start..stop]))
}

/// The records of one stored batch's decompressed bytes: exactly `record_count` of
/// them, with increasing offset deltas inside the batch's range (compaction may have
/// thinned them), filling `buf` exactly. Anything else is Corrupt.
pub fn parse_records<'a>(
    header: &BatchHeader,
    buf: &'a [u8],
) -> Result<Vec<RecordRef<'a>>, LogError> {
    let fault = |f: Fault| match f {
        Fault::Malformed(m) | Fault::Codec(m) => corrupt(m),
        Fault::Rejected(e) => e,
    };
    let mut src = SliceSource::new(buf);
    let mut out = Vec::with_capacity(header.record_count.clamp(0, 4096) as usize);
    let mut previous = -1i64;
    for _ in 0..header.record_count {
        let start = src.pos;
        let len = read_varint(&mut src).map_err(fault)?;
        if len < 0 {
            return Err(corrupt(format!("negative record length {len}")));
        }
        let end = src
            .pos
            .checked_add(len as usize)
            .filter(|&e| e <= buf.len())
            .ok_or_else(|| corrupt("record runs past the end of its batch"))?;
        let _attributes = src.byte().map_err(fault)?;
        let timestamp_delta = read_varlong(&mut src).map_err(fault)?;
        let offset_delta = read_varint(&mut src).map_err(fault)?;
        if offset_delta as i64 <= previous || offset_delta > header.last_offset_delta {
            return Err(corrupt(format!(
                "record offset delta {offset_delta} out of order"
            )));
        }
        previous = offset_delta as i64;
        let key = take_nullable(&mut src, end).map_err(fault)?;
        let value = take_nullable(&mut src, end).map_err(fault)?;
        // Headers are part of `raw`; nothing here reads them.
        src.pos = end;
        let timestamp = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(timestamp_delta)
        };
        out.push(RecordRef {
            offset: header.base_offset.wrapping_add(offset_delta as i64),
            timestamp,
            key,
            value,
            raw: &buf[start..end],
        });
    }
    if src.pos != buf.len() {
        return Err(corrupt("bytes remain after the batch's records"));
    }
    Ok(out)
}

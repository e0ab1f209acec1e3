//! Decompression of batch payloads (gzip, snappy in either framing, LZ4 frames, zstd),
//! streaming and capped at [`MAX_DECOMPRESSED_BYTES`] so a small hostile payload cannot
//! exhaust memory.

use std::io::{self, Read};

use super::*;

/// A streaming reader over the decompressed records of a batch.
pub(super) fn decompressing_source<'a>(
    header: &BatchHeader,
    records: &'a [u8],
) -> Result<StreamSource<Box<dyn Read + 'a>>, LogError> {
    Ok(StreamSource::new(decoder(header.compression(), records)?))
}

/// `data` compressed with `codec` (a batch attribute's codec id), decompressed; more
/// than `limit` bytes is an error, so a small hostile payload cannot exhaust memory.
pub fn decompress(codec: i16, data: &[u8], limit: u64) -> Result<Vec<u8>, LogError> {
    let mut out = Vec::new();
    decoder(codec, data)?
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
    if out.len() as u64 > limit {
        return Err(corrupt(format!("decompresses to more than {limit} bytes")));
    }
    Ok(out)
}

/// A reader of the decompressed bytes of a batch's records.
pub(super) fn decoder<'a>(codec: i16, records: &'a [u8]) -> Result<Box<dyn Read + 'a>, LogError> {
    let reader: Box<dyn Read + 'a> = match codec {
        0 => Box::new(records),
        1 => Box::new(flate2::read::MultiGzDecoder::new(records)),
        2 => Box::new(SnappyReader::new(records)),
        3 => Box::new(
            lz4::Decoder::new(records)
                .map_err(|e| corrupt(format!("cannot decompress lz4 batch: {e}")))?,
        ),
        4 => Box::new(
            zstd::stream::read::Decoder::with_buffer(records)
                .map_err(|e| corrupt(format!("cannot decompress zstd batch: {e}")))?,
        ),
        c => return Err(corrupt(format!("unknown compression codec {c}"))),
    };
    Ok(reader)
}

/// snappy-java's stream framing, which the Java client writes: an 8-byte magic, two
/// version ints, then blocks of `[u32 length][raw snappy]`.
pub(super) const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
pub(super) const XERIAL_HEADER_LEN: usize = 16;
/// Snappy's densest element (a 3-byte copy of 64 bytes) expands about 21x; a block that
/// claims more than this cannot be valid, so refuse it before allocating its output.
pub(super) const SNAPPY_MAX_EXPANSION: usize = 32;

/// Decodes Kafka's snappy payloads one block at a time: xerial-framed like the Java client,
/// or a single raw snappy block like some other clients (snappy-java accepts both too).
pub(super) struct SnappyReader<'a> {
    rest: &'a [u8],
    raw: bool,
    block: Vec<u8>,
    block_pos: usize,
}

impl<'a> SnappyReader<'a> {
    fn new(input: &'a [u8]) -> Self {
        if input.starts_with(XERIAL_MAGIC) {
            SnappyReader {
                rest: input.get(XERIAL_HEADER_LEN..).unwrap_or_default(),
                raw: false,
                block: Vec::new(),
                block_pos: 0,
            }
        } else {
            SnappyReader {
                rest: input,
                raw: true,
                block: Vec::new(),
                block_pos: 0,
            }
        }
    }

    fn next_block(&mut self) -> io::Result<bool> {
        if self.rest.is_empty() {
            return Ok(false);
        }
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        let compressed = if self.raw {
            std::mem::take(&mut self.rest)
        } else {
            let len = read_u32(self.rest, 0)
                .ok_or_else(|| invalid("truncated snappy block length".into()))?
                as usize;
            let block = self
                .rest
                .get(4..4usize.saturating_add(len))
                .ok_or_else(|| invalid(format!("snappy block of {len} bytes is truncated")))?;
            self.rest = self.rest.get(4 + len..).unwrap_or_default();
            block
        };
        let claimed = snap::raw::decompress_len(compressed)
            .map_err(|e| invalid(format!("bad snappy block: {e}")))?;
        if claimed > compressed.len().saturating_mul(SNAPPY_MAX_EXPANSION) + 64 {
            return Err(invalid(format!(
                "snappy block of {} bytes claims {claimed} bytes",
                compressed.len()
            )));
        }
        self.block.clear();
        self.block.resize(claimed, 0);
        let n = snap::raw::Decoder::new()
            .decompress(compressed, &mut self.block)
            .map_err(|e| invalid(format!("bad snappy block: {e}")))?;
        self.block.truncate(n);
        self.block_pos = 0;
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.block_pos >= self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let available = &self.block[self.block_pos..];
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.block_pos += n;
        Ok(n)
    }
}

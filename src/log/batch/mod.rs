//! Record batch (magic 2) parsing, validation and in-place patching.
//!
//! This module owns the byte layout of Kafka's v2 RecordBatch. The produce path never
//! decodes records unless it must: validation reads the 61-byte header, checks lengths and
//! CRC-32C, and for uncompressed batches walks the record framing (lengths, offset deltas,
//! timestamps, keys) without copying. Compressed batches are only decompressed on slow
//! paths (keys on compacted topics, per-record timestamps), through streaming decoders
//! with a hard cap on the decompressed size, so a small hostile batch cannot exhaust
//! memory. Everything here takes bytes from the network or from disk and must answer with
//! an error, never a panic.

use std::io::Read;
use std::ops::Range;

use super::LogError;

pub use kafka_protocol::records::Compression;

mod builder;
mod compression;
pub mod control;
mod framing;
mod validate;

#[cfg(test)]
use builder::OwnedRecord;
pub use builder::{build_batch, BatchBuilder, TestRecord};
pub use compression::decompress;
use compression::*;
use framing::*;
pub use framing::{parse_records, RecordRef};
use validate::*;
pub use validate::{validate_produce, ValidateOptions};

/// Size of the v2 batch header (base offset through record count).
pub const HEADER_LEN: usize = 61;
/// Offset of the length field's end: the batch occupies `12 + batch_length` bytes.
pub const LOG_OVERHEAD: usize = 12;

// Field offsets inside a v2 batch.
const BATCH_LENGTH_OFFSET: usize = 8;
const LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const MAX_TIMESTAMP_OFFSET: usize = 35;
/// Bytes up to and including the magic byte: enough to tell the format apart.
const HEADER_LEN_UP_TO_MAGIC: usize = MAGIC_OFFSET + 1;
/// The smallest legal `batch_length` (a batch with no records).
const MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;

const ATTR_LOG_APPEND_TIME: i16 = 0x8;

/// Upper bound on the bytes one compressed batch may decompress to. Legitimate producers
/// cap a batch well below this (librdkafka's batch.size is 1 MB uncompressed, the Java
/// producer's is 16 KiB); the cap stops a decompression bomb from spending unbounded CPU
/// and the callers of [`record_timestamps`] from buffering unbounded results.
pub const MAX_DECOMPRESSED_BYTES: u64 = 128 << 20;

/// The fixed header of a v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn corrupt(msg: impl Into<String>) -> LogError {
    LogError::Corrupt(msg.into())
}

fn read_i16(buf: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}
fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}
fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}
fn read_i64(buf: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(buf.get(at..at + 8)?.try_into().ok()?))
}

impl BatchHeader {
    /// Parse the header at the start of `buf` (no CRC check). Needs `HEADER_LEN` bytes
    /// (for magic != 2 it needs only 17 and fills what it can).
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, LogError> {
        let short = || {
            corrupt(format!(
                "record batch header needs {HEADER_LEN} bytes, got {}",
                buf.len()
            ))
        };
        if buf.len() < HEADER_LEN_UP_TO_MAGIC {
            return Err(short());
        }
        let base_offset = read_i64(buf, 0).ok_or_else(short)?;
        let batch_length = read_i32(buf, BATCH_LENGTH_OFFSET).ok_or_else(short)?;
        let magic = buf.get(MAGIC_OFFSET).copied().ok_or_else(short)? as i8;
        if magic != 2 {
            // Legacy message sets (magic 0/1) put a CRC where v2 has the leader epoch and
            // a one-byte attributes field after the magic; keep only what identifies them.
            return Ok(BatchHeader {
                base_offset,
                batch_length,
                partition_leader_epoch: -1,
                magic,
                crc: read_u32(buf, LEADER_EPOCH_OFFSET).unwrap_or(0),
                attributes: buf.get(MAGIC_OFFSET + 1).map_or(0, |&a| a as i8 as i16),
                last_offset_delta: 0,
                base_timestamp: -1,
                max_timestamp: -1,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                record_count: -1,
            });
        }
        if buf.len() < HEADER_LEN {
            return Err(short());
        }
        Ok(BatchHeader {
            base_offset,
            batch_length,
            partition_leader_epoch: read_i32(buf, LEADER_EPOCH_OFFSET).ok_or_else(short)?,
            magic,
            crc: read_u32(buf, CRC_OFFSET).ok_or_else(short)?,
            attributes: read_i16(buf, ATTRIBUTES_OFFSET).ok_or_else(short)?,
            last_offset_delta: read_i32(buf, 23).ok_or_else(short)?,
            base_timestamp: read_i64(buf, 27).ok_or_else(short)?,
            max_timestamp: read_i64(buf, MAX_TIMESTAMP_OFFSET).ok_or_else(short)?,
            producer_id: read_i64(buf, 43).ok_or_else(short)?,
            producer_epoch: read_i16(buf, 51).ok_or_else(short)?,
            base_sequence: read_i32(buf, 53).ok_or_else(short)?,
            record_count: read_i32(buf, 57).ok_or_else(short)?,
        })
    }
    /// Total bytes of the batch on disk/wire: `LOG_OVERHEAD + batch_length`.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }
    pub fn last_offset(&self) -> i64 {
        // Wrapping: the header may come from a corrupt file and must not overflow-panic.
        self.base_offset.wrapping_add(self.last_offset_delta as i64)
    }
    /// 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> i16 {
        self.attributes & 0x7
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// Last sequence number of the batch (wrapping at i32::MAX like Kafka).
    ///
    /// Sequences live in `0..=i32::MAX` and the one after `i32::MAX` is 0, so the sum is
    /// taken modulo 2^31. A batch without sequence (-1) has no last sequence either.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == -1 {
            return -1;
        }
        let sum = self.base_sequence as i64 + self.last_offset_delta as i64;
        sum.rem_euclid(1 << 31) as i32
    }
}

/// Patch a batch in place as the leader stores it; see [`stamped_header`].
pub fn assign_offsets(
    buf: &mut [u8],
    base_offset: i64,
    leader_epoch: i32,
    log_append_time: Option<i64>,
) {
    if let Some(head) = stamped_header(buf, base_offset, leader_epoch, log_append_time) {
        buf[..HEADER_LEN].copy_from_slice(&head);
    }
}

/// The header of `batch` as the leader stores it: base offset and partition leader
/// epoch assigned and, with log-append time, the timestamp type and max timestamp set and
/// the CRC recomputed. Only the header is copied: base offset and leader epoch sit before
/// the CRC-covered range, and the CRC of a log-append-time batch is carried over the
/// records where they lie, so an append never copies the records themselves.
/// `None` when `batch` is shorter than a header.
pub fn stamped_header(
    batch: &[u8],
    base_offset: i64,
    leader_epoch: i32,
    log_append_time: Option<i64>,
) -> Option<[u8; HEADER_LEN]> {
    let mut head: [u8; HEADER_LEN] = batch.get(..HEADER_LEN)?.try_into().ok()?;
    head[0..8].copy_from_slice(&base_offset.to_be_bytes());
    head[LEADER_EPOCH_OFFSET..LEADER_EPOCH_OFFSET + 4].copy_from_slice(&leader_epoch.to_be_bytes());
    if let Some(ts) = log_append_time {
        let attrs = read_i16(&head, ATTRIBUTES_OFFSET).unwrap_or(0) | ATTR_LOG_APPEND_TIME;
        head[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
        head[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&ts.to_be_bytes());
        let batch_length = read_i32(&head, BATCH_LENGTH_OFFSET).unwrap_or(0).max(0) as usize;
        let end = (LOG_OVERHEAD + batch_length).clamp(ATTRIBUTES_OFFSET, batch.len());
        let crc = if end <= HEADER_LEN {
            crc32c::crc32c(&head[ATTRIBUTES_OFFSET..end])
        } else {
            crc32c::crc32c_append(
                crc32c::crc32c(&head[ATTRIBUTES_OFFSET..]),
                &batch[HEADER_LEN..end],
            )
        };
        head[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }
    Some(head)
}

/// Iterate over consecutive batches in `buf` (as stored on disk), yielding each header
/// and its byte range. Stops with an error at the first torn or inconsistent batch; when
/// `verify_crc` is set, also checks each CRC.
///
/// Stored batches may be empty (compaction keeps empty batches to preserve producer
/// state), so a zero record count is accepted here. Everything before the first error is
/// sound, which is what log recovery needs to decide where to truncate.
pub fn batches(
    buf: &[u8],
    verify_crc: bool,
) -> impl Iterator<Item = Result<(BatchHeader, Range<usize>), LogError>> + '_ {
    let mut pos = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= buf.len() {
            return None;
        }
        let result = next_stored_batch(buf.get(pos..).unwrap_or_default(), verify_crc, pos);
        match result {
            Ok((header, size)) => {
                let range = pos..pos + size;
                pos += size;
                Some(Ok((header, range)))
            }
            Err(e) => {
                failed = true;
                Some(Err(e))
            }
        }
    })
}

fn next_stored_batch(
    rest: &[u8],
    verify_crc: bool,
    pos: usize,
) -> Result<(BatchHeader, usize), LogError> {
    let at = |e: LogError| match e {
        LogError::Corrupt(m) => corrupt(format!("at byte {pos}: {m}")),
        other => other,
    };
    if rest.len() < LOG_OVERHEAD {
        return Err(at(corrupt(format!(
            "torn batch: {} trailing bytes",
            rest.len()
        ))));
    }
    let batch_length = read_i32(rest, BATCH_LENGTH_OFFSET).unwrap_or(-1);
    if batch_length < MIN_BATCH_LENGTH {
        return Err(at(corrupt(format!(
            "batch length {batch_length} is smaller than the minimum {MIN_BATCH_LENGTH}"
        ))));
    }
    let size = LOG_OVERHEAD + batch_length as usize;
    if rest.len() < size {
        return Err(at(corrupt(format!(
            "torn batch: {size} bytes announced, {} present",
            rest.len()
        ))));
    }
    let header = BatchHeader::parse(rest).map_err(at)?;
    if header.magic != 2 {
        return Err(at(corrupt(format!("unexpected magic {}", header.magic))));
    }
    if header.record_count < 0 || header.last_offset_delta < 0 {
        return Err(at(corrupt(format!(
            "negative record count {} or last offset delta {}",
            header.record_count, header.last_offset_delta
        ))));
    }
    if verify_crc {
        check_crc(&header, rest).map_err(at)?;
    }
    Ok((header, size))
}

/// (offset, timestamp) of every record of one stored batch, decompressing if needed.
/// Used by ListOffsets by timestamp and max timestamp.
///
/// For LogAppendTime batches every record carries the batch's max timestamp, as Kafka's
/// readers report it. The CRC is not checked (stored batches were checked on the way in
/// and on recovery); the framing is, and a batch that does not parse is Corrupt.
pub fn record_timestamps(batch: &[u8]) -> Result<Vec<(i64, i64)>, LogError> {
    let header = BatchHeader::parse(batch)?;
    if header.magic != 2 {
        return Err(corrupt(format!("unexpected magic {}", header.magic)));
    }
    check_length(&header, batch.len())?;
    check_counts(&header, Origin::Stored)?;
    let records = batch.get(HEADER_LEN..header.size()).unwrap_or_default();
    let mut out = Vec::new();
    let mut visit = |r: RecordInfo| {
        let ts = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            r.timestamp
        };
        out.push((header.base_offset.wrapping_add(r.offset_delta as i64), ts));
        Ok(())
    };
    if header.compression() == 0 {
        walk_records(
            &header,
            Origin::Stored,
            &mut SliceSource::new(records),
            &mut visit,
        )?;
    } else {
        let mut source = decompressing_source(&header, records)?;
        walk_records(&header, Origin::Stored, &mut source, &mut visit)?;
    }
    Ok(out)
}

/// The header and the (decompressed) record bytes of one stored batch, for the log
/// cleaner. Lengths are checked, the CRC is not (callers get batches from
/// [`batches`] with `verify_crc`); decompression stops at [`MAX_DECOMPRESSED_BYTES`].
pub fn stored_records(batch: &[u8]) -> Result<(BatchHeader, Vec<u8>), LogError> {
    let header = BatchHeader::parse(batch)?;
    if header.magic != 2 {
        return Err(corrupt(format!("unexpected magic {}", header.magic)));
    }
    check_length(&header, batch.len())?;
    check_counts(&header, Origin::Stored)?;
    let records = batch.get(HEADER_LEN..header.size()).unwrap_or_default();
    if header.compression() == 0 {
        return Ok((header, records.to_vec()));
    }
    let mut out = Vec::new();
    decoder(header.compression(), records)?
        .take(MAX_DECOMPRESSED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(format!("cannot decompress batch: {e}")))?;
    if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
        return Err(corrupt(format!(
            "batch decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes"
        )));
    }
    Ok((header, out))
}

/// Records a batch holds by its header, 0 for control batches and anything not a v2
/// batch header.
pub fn data_record_count(header: &[u8]) -> u64 {
    match BatchHeader::parse(header) {
        Ok(h) if h.magic == 2 && !h.is_control() => u64::try_from(h.record_count).unwrap_or(0),
        _ => 0,
    }
}

/// Records in the whole batches of `bytes`, control batches excluded; a batch cut short
/// at the end (as a fetch may end) is not counted.
pub fn count_data_records(bytes: &[u8]) -> u64 {
    let mut count = 0u64;
    let mut pos = 0usize;
    while let Some(rest) = bytes.get(pos..) {
        let Ok(h) = BatchHeader::parse(rest) else {
            break;
        };
        if h.batch_length < 0 || h.size() > rest.len() {
            break;
        }
        count += data_record_count(rest);
        pos += h.size();
    }
    count
}

/// `batch`'s header with `records` (encoded in `codec`) behind it: attributes carry the
/// new codec, length and CRC are recomputed, every other field is kept.
pub fn with_records(batch: &[u8], header: &BatchHeader, codec: i16, records: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + records.len());
    out.extend_from_slice(&batch[..HEADER_LEN.min(batch.len())]);
    out.resize(HEADER_LEN, 0);
    let batch_length = (HEADER_LEN - LOG_OVERHEAD + records.len()) as i32;
    out[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = (header.attributes & !0x7) | (codec & 0x7);
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(records);
    let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io;

    const NOW: i64 = 1_700_000_000_000;
    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    pub(crate) fn opts() -> ValidateOptions {
        ValidateOptions {
            max_message_bytes: 1 << 20,
            compacted: false,
            log_append_time: false,
            now_ms: NOW,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            rewrite: false,
        }
    }

    fn three(codec: Compression) -> Vec<u8> {
        build_batch(
            0,
            &[
                (Some(b"k1"), Some(b"v1"), NOW - 10),
                (Some(b"k2"), None, NOW - 5),
                (
                    Some(b"k3"),
                    Some(b"a longer value, longer than the rest"),
                    NOW,
                ),
            ],
            Some((7, 1, 42)),
            codec,
        )
    }

    fn refresh_crc(buf: &mut [u8]) {
        let end = (LOG_OVERHEAD + read_i32(buf, 8).unwrap().max(0) as usize).min(buf.len());
        let crc = crc32c::crc32c(&buf[ATTRIBUTES_OFFSET..end]);
        buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }

    fn set_i32(buf: &mut [u8], at: usize, v: i32) {
        buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    /// Replace the records region and fix length and CRC.
    fn with_records(batch: &[u8], attributes: i16, records: &[u8]) -> Vec<u8> {
        let mut out = batch[..HEADER_LEN].to_vec();
        out.extend_from_slice(records);
        let batch_length = (out.len() - LOG_OVERHEAD) as i32;
        set_i32(&mut out, 8, batch_length);
        out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
        refresh_crc(&mut out);
        out
    }

    fn is_corrupt<T: std::fmt::Debug>(r: Result<T, LogError>) -> bool {
        matches!(r, Err(LogError::Corrupt(_)))
    }
    fn is_invalid<T: std::fmt::Debug>(r: Result<T, LogError>) -> bool {
        matches!(r, Err(LogError::InvalidRecord(_)))
    }

    #[test]
    fn valid_batches_of_every_codec_pass_and_report_their_header() {
        for codec in CODECS {
            let buf = three(codec);
            let h = validate_produce(&buf, &opts()).unwrap();
            assert_eq!(h.compression(), codec as i16);
            assert_eq!((h.record_count, h.last_offset_delta), (3, 2));
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (7, 1, 42)
            );
            assert_eq!(h.last_sequence(), 44);
            assert_eq!(h.size(), buf.len());
            assert_eq!((h.base_timestamp, h.max_timestamp), (NOW - 10, NOW));
            let mut compacted = opts();
            compacted.compacted = true;
            validate_produce(&buf, &compacted).unwrap();
            assert_eq!(
                record_timestamps(&buf).unwrap(),
                vec![(0, NOW - 10), (1, NOW - 5), (2, NOW)],
                "{codec:?}"
            );
        }
    }

    #[test]
    fn parse_is_bounds_checked() {
        let buf = three(Compression::None);
        for n in 0..HEADER_LEN {
            assert!(is_corrupt(BatchHeader::parse(&buf[..n])), "{n} bytes");
        }
        assert!(BatchHeader::parse(&buf[..HEADER_LEN]).is_ok());
        let mut legacy = vec![0u8; 17];
        legacy[16] = 1;
        assert_eq!(BatchHeader::parse(&legacy).unwrap().magic, 1);
    }

    #[test]
    fn last_sequence_wraps_like_kafka() {
        let mut h = BatchHeader::parse(&three(Compression::None)).unwrap();
        h.base_sequence = i32::MAX - 1;
        h.last_offset_delta = 1;
        assert_eq!(h.last_sequence(), i32::MAX);
        h.last_offset_delta = 2;
        assert_eq!(h.last_sequence(), 0);
        h.last_offset_delta = 4;
        assert_eq!(h.last_sequence(), 2);
        h.base_sequence = -1;
        assert_eq!(h.last_sequence(), -1);
    }

    #[test]
    fn exactly_one_batch() {
        assert!(is_invalid(validate_produce(&[], &opts())));
        let one = three(Compression::None);
        let mut two = one.clone();
        two.extend_from_slice(&one);
        assert!(is_invalid(validate_produce(&two, &opts())));
        let mut trailing = one.clone();
        trailing.push(0);
        assert!(is_invalid(validate_produce(&trailing, &opts())));
    }

    #[test]
    fn legacy_and_unknown_magic_are_invalid_record() {
        for magic in [0u8, 1, 3, 0xff] {
            let mut buf = three(Compression::None);
            buf[MAGIC_OFFSET] = magic;
            let err = validate_produce(&buf, &opts()).unwrap_err();
            assert!(matches!(err, LogError::InvalidRecord(ref m) if m.contains("magic")));
        }
    }

    #[test]
    fn lengths_must_match_the_buffer() {
        let buf = three(Compression::None);
        assert!(is_corrupt(validate_produce(&buf[..buf.len() - 1], &opts())));
        let mut short = buf.clone();
        set_i32(&mut short, 8, 10);
        assert!(is_corrupt(validate_produce(&short, &opts())));
        let mut negative = buf.clone();
        set_i32(&mut negative, 8, -1);
        assert!(is_corrupt(validate_produce(&negative, &opts())));
    }

    #[test]
    fn too_large() {
        let buf = three(Compression::None);
        let mut o = opts();
        o.max_message_bytes = buf.len() - 1;
        assert!(matches!(
            validate_produce(&buf, &o),
            Err(LogError::TooLarge { size, max }) if size == buf.len() && max == buf.len() - 1
        ));
        o.max_message_bytes = buf.len();
        validate_produce(&buf, &o).unwrap();
    }

    #[test]
    fn crc_mismatch_is_corrupt() {
        for codec in CODECS {
            let mut buf = three(codec);
            let last = buf.len() - 1;
            buf[last] ^= 1;
            assert!(is_corrupt(validate_produce(&buf, &opts())));
        }
    }

    #[test]
    fn unknown_codec_is_corrupt() {
        for codec in 5..8i16 {
            let buf = three(Compression::None);
            let bad = with_records(&buf, codec, &buf[HEADER_LEN..]);
            assert!(is_corrupt(validate_produce(&bad, &opts())));
            assert!(is_corrupt(record_timestamps(&bad)));
        }
    }

    #[test]
    fn counts_must_agree() {
        let base = three(Compression::None);
        let mut wrong_delta = base.clone();
        set_i32(&mut wrong_delta, 23, 5);
        refresh_crc(&mut wrong_delta);
        assert!(is_invalid(validate_produce(&wrong_delta, &opts())));
        let mut negative = base.clone();
        set_i32(&mut negative, 57, -3);
        refresh_crc(&mut negative);
        assert!(is_invalid(validate_produce(&negative, &opts())));
        // Header claims 4 records with delta 3, but only three are present.
        let mut more = base.clone();
        set_i32(&mut more, 57, 4);
        set_i32(&mut more, 23, 3);
        refresh_crc(&mut more);
        assert!(is_invalid(validate_produce(&more, &opts())));
        // Header claims 2: the third record is left over.
        let mut fewer = base.clone();
        set_i32(&mut fewer, 57, 2);
        set_i32(&mut fewer, 23, 1);
        refresh_crc(&mut fewer);
        assert!(is_invalid(validate_produce(&fewer, &opts())));
        // An empty batch from a producer is refused like Kafka does.
        let empty = with_records(&base, 0, &[]);
        let mut empty = empty;
        set_i32(&mut empty, 57, 0);
        set_i32(&mut empty, 23, 0);
        refresh_crc(&mut empty);
        assert!(is_invalid(validate_produce(&empty, &opts())));
    }

    /// One uncompressed record: len, attrs, ts delta, offset delta, key, value, headers.
    fn single(record: &[u8]) -> Vec<u8> {
        let base = build_batch(0, &[(Some(b"k"), Some(b"v"), NOW)], None, Compression::None);
        with_records(&base, 0, record)
    }

    #[test]
    fn record_framing_is_checked() {
        // zigzag: 1 -> 2, -1 -> 1, 2 -> 4, 5 -> 10
        let good = [16, 0, 0, 0, 2, b'k', 2, b'v', 0];
        let good = {
            let mut g = good.to_vec();
            g[0] = ((g.len() - 1) * 2) as u8;
            g
        };
        validate_produce(&single(&good), &opts()).unwrap();
        let mut bad_delta = good.clone();
        bad_delta[3] = 2;
        assert!(is_invalid(validate_produce(&single(&bad_delta), &opts())));
        let mut long = good.clone();
        long[0] += 2;
        assert!(is_invalid(validate_produce(&single(&long), &opts())));
        let mut short = good.clone();
        short[0] -= 2;
        assert!(is_invalid(validate_produce(&single(&short), &opts())));
        let mut neg_key = good.clone();
        neg_key[4] = 3; // -2
        assert!(is_invalid(validate_produce(&single(&neg_key), &opts())));
        let mut huge_headers = good.clone();
        huge_headers[8] = 0xfe; // a 5-byte varint header count near i32::MAX
        huge_headers.extend_from_slice(&[0xff, 0xff, 0xff, 0x0f]);
        huge_headers[0] = ((huge_headers.len() - 1) * 2) as u8;
        assert!(is_invalid(validate_produce(
            &single(&huge_headers),
            &opts()
        )));
        let mut overlong_varint = good.clone();
        overlong_varint.truncate(3);
        overlong_varint.extend_from_slice(&[0x80; 6]);
        assert!(is_invalid(validate_produce(
            &single(&overlong_varint),
            &opts()
        )));
        let mut extra = good.clone();
        extra.push(0);
        assert!(is_invalid(validate_produce(&single(&extra), &opts())));
        // A header with a null value is legal.
        let with_header = [0, 0, 0, 0, 2, b'k', 2, b'v', 2, 2, b'h', 1];
        let mut with_header = with_header.to_vec();
        with_header[0] = ((with_header.len() - 1) * 2) as u8;
        validate_produce(&single(&with_header), &opts()).unwrap();
    }

    #[test]
    fn timestamps_are_bounded_for_create_time() {
        let mut o = opts();
        o.timestamp_before_max_ms = 1000;
        o.timestamp_after_max_ms = 1000;
        for codec in CODECS {
            let old = build_batch(0, &[(Some(b"k"), None, NOW - 1001)], None, codec);
            let future = build_batch(0, &[(Some(b"k"), None, NOW + 1001)], None, codec);
            let ok = build_batch(0, &[(Some(b"k"), None, NOW + 1000)], None, codec);
            let none = build_batch(0, &[(Some(b"k"), None, -1)], None, codec);
            for bad in [&old, &future] {
                assert!(matches!(
                    validate_produce(bad, &o),
                    Err(LogError::InvalidTimestamp(_)
                        | LogError::InvalidRecords {
                            timestamp: true,
                            ..
                        })
                ));
            }
            validate_produce(&ok, &o).unwrap();
            validate_produce(&none, &o).unwrap();
            let mut lat = o.clone();
            lat.log_append_time = true;
            validate_produce(&old, &lat).unwrap();
        }
        // Per record in uncompressed batches, even when the header is within bounds.
        let buf = build_batch(
            0,
            &[(Some(b"k"), None, NOW), (Some(b"k"), None, NOW + 5000)],
            None,
            Compression::None,
        );
        // The header says the max timestamp is NOW; record 1 really is NOW + 5000.
        let mut lying = buf.clone();
        lying[35..43].copy_from_slice(&NOW.to_be_bytes());
        refresh_crc(&mut lying);
        assert_eq!(record_timestamps(&lying).unwrap()[1], (1, NOW + 5000));
        assert!(matches!(
            validate_produce(&lying, &o),
            Err(LogError::InvalidTimestamp(_)
                | LogError::InvalidRecords {
                    timestamp: true,
                    ..
                })
        ));
    }

    #[test]
    fn a_header_timestamp_out_of_range_is_refused_even_when_the_records_are_not() {
        let mut o = opts();
        o.timestamp_after_max_ms = 1000;
        let buf = build_batch(0, &[(Some(b"k"), None, NOW)], None, Compression::None);
        // Records in range, the header's max timestamp an hour ahead.
        let mut lying = buf.clone();
        lying[35..43].copy_from_slice(&(NOW + 3_600_000).to_be_bytes());
        refresh_crc(&mut lying);
        assert!(matches!(
            validate_produce(&lying, &o),
            Err(LogError::InvalidTimestamp(_))
        ));
        validate_produce(&buf, &o).unwrap();
    }

    #[test]
    fn compacted_topics_need_keys_in_every_codec() {
        let mut compacted = opts();
        compacted.compacted = true;
        for codec in CODECS {
            let buf = build_batch(
                0,
                &[(Some(b"k"), Some(b"v"), NOW), (None, Some(b"v"), NOW)],
                None,
                codec,
            );
            let err = validate_produce(&buf, &compacted).unwrap_err();
            match err {
                LogError::InvalidRecords {
                    timestamp: false,
                    ref errors,
                } => {
                    assert_eq!(errors.len(), 1, "{codec:?}");
                    assert_eq!(errors[0].0, 1, "{codec:?}: the second record has no key");
                    assert!(errors[0].1.contains("without key"), "{codec:?}: {err}");
                }
                _ => panic!("{codec:?}: {err}"),
            }
            validate_produce(&buf, &opts()).unwrap();
        }
    }

    #[test]
    fn producer_only_flags_are_refused() {
        let control = BatchBuilder::new(0)
            .control(true)
            .record(Some(b"k"), None, NOW)
            .build();
        assert!(is_invalid(validate_produce(&control, &opts())));
        let mut no_seq = three(Compression::None);
        set_i32(&mut no_seq, 53, -1);
        refresh_crc(&mut no_seq);
        assert!(is_invalid(validate_produce(&no_seq, &opts())));
        let mut lat = three(Compression::None);
        lat[ATTRIBUTES_OFFSET + 1] |= 0x8;
        refresh_crc(&mut lat);
        assert!(matches!(
            validate_produce(&lat, &opts()),
            Err(LogError::InvalidTimestamp(_)
                | LogError::InvalidRecords {
                    timestamp: true,
                    ..
                })
        ));
        let txn = BatchBuilder::new(0)
            .producer(1, 0, 0)
            .transactional(true)
            .record(Some(b"k"), None, NOW)
            .build();
        assert!(validate_produce(&txn, &opts()).unwrap().is_transactional());
        let txn_without_pid = BatchBuilder::new(0)
            .transactional(true)
            .record(Some(b"k"), None, NOW)
            .build();
        assert!(is_invalid(validate_produce(&txn_without_pid, &opts())));
    }

    #[test]
    fn assign_offsets_patches_in_place() {
        for codec in CODECS {
            let mut buf = three(codec);
            let before = buf.clone();
            assign_offsets(&mut buf, 1000, 7, None);
            let h = BatchHeader::parse(&buf).unwrap();
            assert_eq!((h.base_offset, h.partition_leader_epoch), (1000, 7));
            assert_eq!(h.last_offset(), 1002);
            assert_eq!(buf[CRC_OFFSET..], before[CRC_OFFSET..]);
            validate_produce(&buf, &opts()).unwrap();

            assign_offsets(&mut buf, 2000, 8, Some(NOW + 7));
            let h = BatchHeader::parse(&buf).unwrap();
            assert!(h.is_log_append_time());
            assert_eq!((h.base_offset, h.max_timestamp), (2000, NOW + 7));
            assert_eq!(h.compression(), codec as i16);
            let stored: Vec<_> = batches(&buf, true).collect();
            assert_eq!(stored.len(), 1);
            assert_eq!(stored[0].as_ref().unwrap().1, 0..buf.len());
            assert_eq!(
                record_timestamps(&buf).unwrap(),
                vec![(2000, NOW + 7), (2001, NOW + 7), (2002, NOW + 7)]
            );
        }
        let mut tiny = vec![1u8; 10];
        assign_offsets(&mut tiny, 5, 5, Some(5));
        assert_eq!(tiny, vec![1u8; 10]);
    }

    #[test]
    fn batches_walks_a_segment_and_stops_at_damage() {
        let mut log = Vec::new();
        let mut offset = 0;
        for codec in CODECS {
            let mut b = three(codec);
            assign_offsets(&mut b, offset, 0, None);
            offset += 3;
            log.extend_from_slice(&b);
        }
        let all: Vec<_> = batches(&log, true).map(Result::unwrap).collect();
        assert_eq!(all.len(), 5);
        assert_eq!(all[4].1.end, log.len());
        assert_eq!(all[3].0.base_offset, 9);

        // Torn tail: every truncation point inside the last batch gives four good and one error.
        let last_start = all[4].1.start;
        for cut in last_start + 1..log.len() {
            let items: Vec<_> = batches(&log[..cut], true).collect();
            assert_eq!(items.len(), 5, "cut at {cut}");
            assert!(items[..4].iter().all(Result::is_ok));
            assert!(is_corrupt(items[4].clone_err()));
        }
        // A zeroed (preallocated) tail is an error, not an endless run of empty batches.
        let mut padded = log.clone();
        padded.extend_from_slice(&[0u8; 100]);
        let items: Vec<_> = batches(&padded, true).collect();
        assert_eq!(items.len(), 6);
        assert!(items[5].is_err());

        // CRC damage in the middle: caught only when asked to verify.
        let mut damaged = log.clone();
        damaged[all[2].1.end - 1] ^= 0x40;
        let items: Vec<_> = batches(&damaged, true).collect();
        assert_eq!(items.len(), 3);
        assert!(items[2].is_err());
        assert_eq!(batches(&damaged, false).filter(Result::is_ok).count(), 5);
    }

    #[test]
    fn stored_batches_thinned_by_compaction_still_read() {
        // Offsets 0..=4 with records 1 and 3 removed: deltas 0, 2, 4, count 3.
        let base = build_batch(0, &[(Some(b"k"), None, NOW)], None, Compression::None);
        let record = |delta: u8| {
            let body = [0u8, 0, delta * 2, 2, b'k', 1, 0];
            let mut r = vec![(body.len() * 2) as u8];
            r.extend_from_slice(&body);
            r
        };
        let records: Vec<u8> = [0, 2, 4].into_iter().flat_map(record).collect();
        let mut stored = with_records(&base, 0, &records);
        set_i32(&mut stored, 57, 3);
        set_i32(&mut stored, 23, 4);
        refresh_crc(&mut stored);
        assert_eq!(
            record_timestamps(&stored).unwrap(),
            vec![(0, NOW), (2, NOW), (4, NOW)]
        );
        assert!(batches(&stored, true).all(|b| b.is_ok()));
        // Not from a producer, though.
        assert!(is_invalid(validate_produce(&stored, &opts())));
        // Deltas must increase and stay within the last offset delta.
        let records: Vec<u8> = [0, 4, 2].into_iter().flat_map(record).collect();
        let mut bad = with_records(&stored, 0, &records);
        refresh_crc(&mut bad);
        assert!(is_corrupt(record_timestamps(&bad)));
        let records: Vec<u8> = [0, 2, 5].into_iter().flat_map(record).collect();
        let bad = with_records(&stored, 0, &records);
        assert!(is_corrupt(record_timestamps(&bad)));
    }

    #[test]
    fn compressed_records_are_checked_when_decompressed_anyway() {
        let mut o = opts();
        o.compacted = true;
        o.timestamp_after_max_ms = 1000;
        let buf = build_batch(
            0,
            &[(Some(b"k"), None, NOW), (Some(b"k"), None, NOW + 5000)],
            None,
            Compression::Zstd,
        );
        let mut lying = buf.clone();
        lying[35..43].copy_from_slice(&NOW.to_be_bytes());
        refresh_crc(&mut lying);
        assert!(matches!(
            validate_produce(&lying, &o),
            Err(LogError::InvalidTimestamp(_)
                | LogError::InvalidRecords {
                    timestamp: true,
                    ..
                })
        ));
        o.compacted = false;
        validate_produce(&lying, &o).unwrap();
    }

    /// Writes the seed corpus of the `batch_validate` fuzz target (fuzz/seeds/):
    /// `WEIR_FUZZ_SEEDS=fuzz/seeds/batch_validate cargo test --lib write_fuzz_seeds -- --ignored`
    #[test]
    #[ignore]
    fn write_fuzz_seeds() {
        let Ok(dir) = std::env::var("WEIR_FUZZ_SEEDS") else {
            return;
        };
        std::fs::create_dir_all(&dir).unwrap();
        let mut segment = vec![2u8];
        for codec in CODECS {
            let keyed = three(codec);
            let keyless = build_batch(
                0,
                &[(None, Some(b"v"), NOW), (Some(b"k"), Some(b"v"), NOW + 1)],
                None,
                codec,
            );
            for (name, batch) in [("keyed", &keyed), ("keyless", &keyless)] {
                for mode in [0u8, 1] {
                    let mut seed = vec![mode];
                    seed.extend_from_slice(batch);
                    let path = format!("{dir}/{codec:?}-{name}-{mode}").to_lowercase();
                    std::fs::write(path, seed).unwrap();
                }
            }
            segment.extend_from_slice(&keyed);
        }
        std::fs::write(format!("{dir}/segment"), segment).unwrap();
        let mut state = crate::log::producer_state::ProducerStateManager::new();
        for codec in CODECS {
            state.update(&BatchHeader::parse(&three(codec)).unwrap());
        }
        let mut snapshot = vec![3u8];
        snapshot.extend_from_slice(&state.encode_snapshot()[5..]);
        std::fs::write(format!("{dir}/snapshot"), snapshot).unwrap();
    }

    trait CloneErr {
        fn clone_err(&self) -> Result<(), LogError>;
    }
    impl CloneErr for Result<(BatchHeader, Range<usize>), LogError> {
        fn clone_err(&self) -> Result<(), LogError> {
            match self {
                Ok(_) => Ok(()),
                Err(e) => Err(corrupt(e.to_string())),
            }
        }
    }

    #[test]
    fn raw_snappy_is_accepted_and_snappy_bombs_are_not() {
        let plain = three(Compression::None);
        let raw = snap::raw::Encoder::new()
            .compress_vec(&plain[HEADER_LEN..])
            .unwrap();
        let batch = with_records(&plain, 2, &raw);
        let mut compacted = opts();
        compacted.compacted = true;
        validate_produce(&batch, &compacted).unwrap();
        assert_eq!(record_timestamps(&batch).unwrap().len(), 3);

        // A 6-byte raw block claiming 4 GiB must fail before allocating it.
        let bomb = with_records(&plain, 2, &[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
        assert!(is_corrupt(validate_produce(&bomb, &compacted)));
        // The same inside xerial framing.
        let mut framed = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
        framed.extend_from_slice(&6u32.to_be_bytes());
        framed.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
        let bomb = with_records(&plain, 2, &framed);
        assert!(is_corrupt(record_timestamps(&bomb)));
    }

    #[test]
    fn garbage_compressed_payloads_are_corrupt() {
        let plain = three(Compression::None);
        let mut compacted = opts();
        compacted.compacted = true;
        for codec in 1..=4 {
            for payload in [&b""[..], b"garbage", &[0u8; 64], &plain[HEADER_LEN..]] {
                let bad = with_records(&plain, codec, payload);
                // Corrupt when it does not decompress, InvalidRecord when what it
                // decompresses to is not records.
                assert!(
                    matches!(
                        validate_produce(&bad, &compacted),
                        Err(LogError::Corrupt(_) | LogError::InvalidRecord(_))
                    ),
                    "codec {codec}"
                );
                assert!(is_corrupt(record_timestamps(&bad)), "codec {codec}");
                // Not compacted: compressed records are not decoded on the hot path.
                validate_produce(&bad, &opts()).unwrap();
            }
        }
    }

    #[test]
    fn decompression_is_capped() {
        // One record whose value is just over the cap, of zeros: tiny compressed.
        let value_len = (MAX_DECOMPRESSED_BYTES + 1) as i64;
        let mut prefix = vec![];
        let mut body = vec![0u8, 0, 0, 2, b'k'];
        let mut zz = ((value_len << 1) ^ (value_len >> 63)) as u64;
        loop {
            let b = (zz & 0x7f) as u8;
            zz >>= 7;
            if zz == 0 {
                body.push(b);
                break;
            }
            body.push(b | 0x80);
        }
        let total = (body.len() as i64 + value_len + 1) as u64; // + header count
        let mut zz = total << 1;
        loop {
            let b = (zz & 0x7f) as u8;
            zz >>= 7;
            if zz == 0 {
                prefix.push(b);
                break;
            }
            prefix.push(b | 0x80);
        }
        prefix.extend_from_slice(&body);
        let stream = io::Read::chain(&prefix[..], io::repeat(0).take(value_len as u64 + 1));
        let compressed = zstd::stream::encode_all(stream, 1).unwrap();
        let plain = build_batch(0, &[(Some(b"k"), None, NOW)], None, Compression::None);
        let bomb = with_records(&plain, 4, &compressed);
        let err = record_timestamps(&bomb).unwrap_err();
        assert!(
            err.to_string().contains("decompresses to more than"),
            "{err}"
        );
    }

    fn codec() -> impl Strategy<Value = Compression> {
        prop::sample::select(CODECS.to_vec())
    }

    fn records() -> impl Strategy<Value = Vec<OwnedRecord>> {
        prop::collection::vec(
            (
                prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
                prop::option::of(prop::collection::vec(any::<u8>(), 0..100)),
                NOW - 100_000..NOW + 100_000,
            ),
            1..8,
        )
    }

    fn encode(recs: &[OwnedRecord], codec: Compression) -> Vec<u8> {
        let mut b = BatchBuilder::new(0).compression(codec).producer(3, 0, 0);
        for (k, v, ts) in recs {
            b = b.record(k.as_deref(), v.as_deref(), *ts);
        }
        b.build()
    }

    fn exercise(buf: &[u8]) {
        let _ = BatchHeader::parse(buf);
        let _ = validate_produce(buf, &opts());
        let mut compacted = opts();
        compacted.compacted = true;
        let _ = validate_produce(buf, &compacted);
        let _ = record_timestamps(buf);
        for (_, range) in batches(buf, true).chain(batches(buf, false)).flatten() {
            assert!(range.end <= buf.len());
        }
        let mut copy = buf.to_vec();
        assign_offsets(&mut copy, 1, 1, Some(1));
    }

    /// 2000 cases per property by default; PROPTEST_CASES=n for a longer run.
    pub(crate) fn proptest_cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(2000)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(proptest_cases()))]

        #[test]
        fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..400)) {
            exercise(&buf);
        }

        #[test]
        fn arbitrary_bytes_behind_a_valid_header_never_panic(
            codec in codec(),
            attrs_extra in 0i16..8,
            count in -2i32..6,
            tail in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let base = three(Compression::None);
            let mut buf = with_records(&base, codec as i16 | (attrs_extra << 3), &tail);
            set_i32(&mut buf, 57, count);
            set_i32(&mut buf, 23, count - 1);
            refresh_crc(&mut buf);
            exercise(&buf);
        }

        #[test]
        fn roundtrip(recs in records(), codec in codec()) {
            let buf = encode(&recs, codec);
            let h = validate_produce(&buf, &opts()).unwrap();
            prop_assert_eq!(h.record_count as usize, recs.len());
            let ts: Vec<i64> = record_timestamps(&buf).unwrap().into_iter().map(|(_, t)| t).collect();
            let want: Vec<i64> = recs.iter().map(|r| r.2).collect();
            prop_assert_eq!(ts, want);
            let mut compacted = opts();
            compacted.compacted = true;
            let keyless = recs.iter().any(|r| r.0.is_none());
            prop_assert_eq!(validate_produce(&buf, &compacted).is_err(), keyless);
        }

        #[test]
        fn any_flipped_byte_after_the_magic_is_rejected(
            recs in records(),
            codec in codec(),
            at in any::<prop::sample::Index>(),
            mask in 1u8..=255,
        ) {
            let mut buf = encode(&recs, codec);
            let i = CRC_OFFSET + at.index(buf.len() - CRC_OFFSET);
            buf[i] ^= mask;
            prop_assert!(validate_produce(&buf, &opts()).is_err());
            prop_assert!(batches(&buf, true).any(|r| r.is_err()));
        }

        #[test]
        fn mutations_with_fixed_crc_never_panic(
            recs in records(),
            codec in codec(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let mut buf = encode(&recs, codec);
            for (at, byte) in edits {
                let i = ATTRIBUTES_OFFSET + at.index(buf.len() - ATTRIBUTES_OFFSET);
                buf[i] = byte;
            }
            refresh_crc(&mut buf);
            exercise(&buf);
        }
    }

    /// A v2 batch header claiming `records` records, padded to `body` bytes after the
    /// length field.
    fn header_only(records: i32, control: bool, body: usize) -> Vec<u8> {
        let mut b = vec![0u8; 12 + body];
        b[8..12].copy_from_slice(&(body as i32).to_be_bytes());
        b[16] = 2;
        if control {
            b[22] = 0x20;
        }
        b[57..61].copy_from_slice(&records.to_be_bytes());
        b
    }

    #[test]
    fn counts_whole_data_batches_only() {
        let mut bytes = header_only(3, false, 80);
        bytes.extend(header_only(1, true, 60));
        bytes.extend(header_only(5, false, 100));
        assert_eq!(count_data_records(&bytes), 8);
        // A batch cut short by the fetch size is not counted.
        let mut cut = bytes.clone();
        cut.extend(&header_only(7, false, 200)[..90]);
        assert_eq!(count_data_records(&cut), 8);
        assert_eq!(count_data_records(&[]), 0);
        assert_eq!(count_data_records(&[0u8; 30]), 0);
        // A negative length stops the walk instead of looping or panicking.
        let mut bad = header_only(2, false, 60);
        bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(count_data_records(&bad), 0);
    }
}

//! Record batch (magic 2) parsing, validation and in-place patching.
//!
//! The produce path never decodes records unless it must: validation reads the 61-byte
//! header, checks lengths and CRC-32C, and for uncompressed batches walks record lengths.

// IMPLEMENTATION OWNED BY THE BATCH HELPER; the signatures below are the contract.

use super::LogError;

/// Size of the v2 batch header (base offset through record count).
pub const HEADER_LEN: usize = 61;
/// Offset of the length field's end: the batch occupies `12 + batch_length` bytes.
pub const LOG_OVERHEAD: usize = 12;

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

impl BatchHeader {
    /// Parse the header at the start of `buf` (no CRC check). Needs `HEADER_LEN` bytes
    /// (for magic != 2 it needs only 17 and fills what it can).
    pub fn parse(_buf: &[u8]) -> Result<BatchHeader, LogError> {
        todo!("batch helper")
    }
    /// Total bytes of the batch on disk/wire: `LOG_OVERHEAD + batch_length`.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    /// 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> i16 {
        self.attributes & 0x7
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & 0x8 != 0
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
    pub fn last_sequence(&self) -> i32 {
        todo!("batch helper")
    }
}

/// Limits and policies the produce path validates against.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    pub max_message_bytes: usize,
    /// cleanup.policy contains compact: every record needs a key.
    pub compacted: bool,
    /// message.timestamp.type=LogAppendTime: CreateTime checks are skipped.
    pub log_append_time: bool,
    pub now_ms: i64,
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
}

/// Validate a produce request's record set for one partition: exactly one magic-2 batch
/// (else InvalidRecord; magic 0/1 also InvalidRecord like Kafka 4), lengths consistent,
/// CRC-32C correct (Corrupt), codec known (Corrupt), size within max_message_bytes
/// (TooLarge), record count consistent (walk records of uncompressed batches; Corrupt),
/// CreateTime timestamps within bounds (InvalidTimestamp), keys present on compacted
/// topics (InvalidRecord; decompress only in that case). Returns the parsed header.
pub fn validate_produce(_buf: &[u8], _opts: &ValidateOptions) -> Result<BatchHeader, LogError> {
    todo!("batch helper")
}

/// Patch a validated batch in place: base offset, partition leader epoch, and when
/// `log_append_time` is `Some(ts)` set the timestamp-type bit, max_timestamp = ts and
/// recompute the CRC.
pub fn assign_offsets(
    _buf: &mut [u8],
    _base_offset: i64,
    _leader_epoch: i32,
    _log_append_time: Option<i64>,
) {
    todo!("batch helper")
}

/// Iterate over consecutive batches in `buf` (as stored on disk), yielding each header
/// and its byte range. Stops with an error at the first torn or inconsistent batch; when
/// `verify_crc` is set, also checks each CRC.
pub fn batches(
    _buf: &[u8],
    _verify_crc: bool,
) -> impl Iterator<Item = Result<(BatchHeader, std::ops::Range<usize>), LogError>> + '_ {
    std::iter::empty()
}

/// (offset, timestamp) of every record of one stored batch, decompressing if needed.
/// Used by ListOffsets by timestamp and max timestamp.
pub fn record_timestamps(_batch: &[u8]) -> Result<Vec<(i64, i64)>, LogError> {
    todo!("batch helper")
}

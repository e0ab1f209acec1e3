//! Validation of a produced batch, as Kafka's LogValidator does it: exactly one magic-2
//! batch, lengths, CRC-32C, counts, flags a producer may not set, timestamps and keys,
//! every record at fault named by its index in the batch.

use super::*;

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
    /// The batch will be rewritten in another codec (the topic's compression.type): its
    /// records are decoded anyway, so they are checked as an uncompressed batch's are.
    pub rewrite: bool,
}

impl ValidateOptions {
    fn check_timestamp(&self, ts: i64, what: impl FnOnce() -> String) -> Result<(), LogError> {
        // Kafka exempts NO_TIMESTAMP (-1) from the window check.
        if self.log_append_time || ts == -1 {
            return Ok(());
        }
        let low = self.now_ms.saturating_sub(self.timestamp_before_max_ms);
        let high = self.now_ms.saturating_add(self.timestamp_after_max_ms);
        if ts < low || ts > high {
            return Err(LogError::InvalidTimestamp(format!(
                "timestamp {ts} of {} is out of range; it must be within [{low}, {high}]",
                what()
            )));
        }
        Ok(())
    }
}

/// Validate a produce request's record set for one partition: exactly one magic-2 batch
/// (else InvalidRecord; magic 0/1 also InvalidRecord like Kafka 4), lengths consistent,
/// CRC-32C correct (Corrupt), codec known (Corrupt), size within max_message_bytes
/// (TooLarge), record count consistent with the offset range and, for uncompressed
/// batches, with the records' framing (InvalidRecord, as Kafka's LogValidator answers),
/// CreateTime timestamps within bounds (InvalidTimestamp), keys present on compacted
/// topics (InvalidRecord; decompress only in that case, and a payload that does not
/// decompress is Corrupt). Returns the parsed header.
///
/// Also like Kafka: empty batches, control batches, transactional batches without
/// producer id and idempotent batches without a base sequence are InvalidRecord, and a
/// producer may not set the LogAppendTime attribute (InvalidTimestamp).
pub fn validate_produce(buf: &[u8], opts: &ValidateOptions) -> Result<BatchHeader, LogError> {
    if buf.is_empty() {
        return Err(LogError::InvalidRecord(
            "produce requests must contain exactly one record batch, got none".into(),
        ));
    }
    let header = BatchHeader::parse(buf)?;
    match header.magic {
        2 => {}
        0 | 1 => {
            return Err(LogError::InvalidRecord(format!(
                "record batches with magic {} (message format v{}) are not supported; \
                 produce requests must use magic 2",
                header.magic, header.magic
            )))
        }
        m => {
            return Err(LogError::InvalidRecord(format!(
                "unknown record batch magic {m}; produce requests must use magic 2"
            )))
        }
    }
    check_length(&header, buf.len())?;
    let size = header.size();
    if size < buf.len() {
        return Err(LogError::InvalidRecord(format!(
            "produce requests must contain exactly one record batch; {} bytes follow the \
             first batch",
            buf.len() - size
        )));
    }
    if size > opts.max_message_bytes {
        return Err(LogError::TooLarge {
            size,
            max: opts.max_message_bytes,
        });
    }
    check_crc(&header, buf)?;
    check_counts(&header, Origin::Client)?;
    if header.is_control() {
        return Err(LogError::InvalidRecord(
            "clients are not allowed to write control records".into(),
        ));
    }
    if header.is_transactional() && !header.has_producer_id() {
        return Err(LogError::InvalidRecord(
            "transactional record batch without a producer id".into(),
        ));
    }
    if header.has_producer_id() && header.base_sequence < 0 {
        return Err(LogError::InvalidRecord(format!(
            "invalid sequence number {} in record batch with producer id {}",
            header.base_sequence, header.producer_id
        )));
    }
    if header.is_log_append_time() {
        return Err(LogError::InvalidTimestamp(
            "producers must not set the timestamp type to LogAppendTime".into(),
        ));
    }
    let records = buf.get(HEADER_LEN..size).unwrap_or_default();
    if header.compression() != 0 && !opts.compacted && !opts.rewrite {
        // Compressed and not decoded on this path: the header's timestamps stand for the
        // records' (the whole batch is refused, no record is singled out).
        opts.check_timestamp(header.base_timestamp, || "the batch's first record".into())?;
        opts.check_timestamp(header.max_timestamp, || "the batch's max timestamp".into())?;
        return Ok(header);
    }
    // Walking the framing proves the count and lengths (cheap when uncompressed); every
    // record breaking a rule is named, as Produce v8+ reports per record.
    let mut faults = RecordFaults::default();
    let visit = |r: RecordInfo| {
        faults.check(opts, &r);
        Ok(())
    };
    if header.compression() == 0 {
        walk_records(
            &header,
            Origin::Client,
            &mut SliceSource::new(records),
            visit,
        )?;
    } else {
        let mut source = decompressing_source(&header, records)?;
        walk_records(&header, Origin::Client, &mut source, visit)?;
    }
    faults.into_result()?;
    // The records are in bounds; the header's own timestamps must be too (they feed the
    // time index and retention), or the batch is refused whole.
    opts.check_timestamp(header.base_timestamp, || "the batch's first record".into())?;
    opts.check_timestamp(header.max_timestamp, || "the batch's max timestamp".into())?;
    Ok(header)
}

/// The records of one produced batch that break a rule, by batch index.
#[derive(Default)]
pub(super) struct RecordFaults {
    errors: Vec<(i32, String)>,
    timestamp: bool,
}

impl RecordFaults {
    fn check(&mut self, opts: &ValidateOptions, r: &RecordInfo) {
        if let Err(e) = opts.check_timestamp(r.timestamp, || format!("record {}", r.offset_delta)) {
            self.timestamp = true;
            self.errors.push((r.offset_delta, e.to_string()));
        } else if opts.compacted && !r.has_key {
            self.errors.push((
                r.offset_delta,
                "Compacted topic cannot accept message without key".into(),
            ));
        }
    }

    fn into_result(self) -> Result<(), LogError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        Err(LogError::InvalidRecords {
            timestamp: self.timestamp,
            errors: self.errors,
        })
    }
}

/// The batch fits in `available` bytes and is at least a header long.
pub(super) fn check_length(header: &BatchHeader, available: usize) -> Result<(), LogError> {
    if header.batch_length < MIN_BATCH_LENGTH {
        return Err(corrupt(format!(
            "batch length {} is smaller than the minimum {MIN_BATCH_LENGTH}",
            header.batch_length
        )));
    }
    if header.size() > available {
        return Err(corrupt(format!(
            "batch of {} bytes is truncated to {available} bytes",
            header.size()
        )));
    }
    Ok(())
}

pub(super) fn check_crc(header: &BatchHeader, buf: &[u8]) -> Result<(), LogError> {
    let covered = buf
        .get(ATTRIBUTES_OFFSET..header.size())
        .ok_or_else(|| corrupt("batch shorter than its header"))?;
    let actual = crc32c::crc32c(covered);
    if actual != header.crc {
        return Err(corrupt(format!(
            "CRC mismatch: batch says {:#010x}, content has {actual:#010x}",
            header.crc
        )));
    }
    Ok(())
}

/// Where a batch comes from. A client's malformed batch is its mistake: Kafka answers
/// INVALID_RECORD (not retriable) for bad counts and record framing, and keeps
/// CORRUPT_MESSAGE (retriable) for CRC and length errors that a resend can fix. A stored
/// batch that does not parse is damage, so Corrupt. Stored batches may also have been
/// thinned by compaction, which keeps the survivors' offsets: their offset deltas need
/// only increase within the batch's range, while a producer's must run 0, 1, 2, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Client,
    Stored,
}

impl Origin {
    pub(super) fn malformed(self, msg: String) -> LogError {
        match self {
            Origin::Client => LogError::InvalidRecord(msg),
            Origin::Stored => LogError::Corrupt(msg),
        }
    }
}

/// Codec known, count non-negative and consistent with the offset range.
pub(super) fn check_counts(header: &BatchHeader, origin: Origin) -> Result<(), LogError> {
    if header.compression() > 4 {
        return Err(corrupt(format!(
            "unknown compression codec {}",
            header.compression()
        )));
    }
    let (first, last) = (header.base_offset, header.last_offset());
    let count = header.record_count;
    let consistent = match origin {
        Origin::Client => count > 0 && header.last_offset_delta == count - 1,
        Origin::Stored => {
            count >= 0
                && header.last_offset_delta >= 0
                && count as i64 <= header.last_offset_delta as i64 + 1
        }
    };
    if !consistent {
        return Err(origin.malformed(if count <= 0 && origin == Origin::Client {
            format!("Invalid reported count for record batch: {count}")
        } else {
            format!(
                "Inconsistent batch offset range [{first}, {last}] and count of records {count}"
            )
        }));
    }
    Ok(())
}

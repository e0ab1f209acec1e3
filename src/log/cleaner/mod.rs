//! Log compaction (`cleanup.policy=compact`): Kafka's LogCleaner semantics on whole,
//! closed segments. This module is the pure part: it works on segment bytes. [`files`]
//! holds the swap protocol and the checkpoint file, and
//! [`super::partition::PartitionLog::clean`] picks the segments, writes the results and
//! swaps them in.
//!
//! A pass has two steps over the cleanable segments (closed, below the high watermark,
//! older than `min.compaction.lag.ms`), oldest first:
//!
//! 1. [`Cleaner::scan`] reads every batch: it builds the offset map (key → highest offset)
//!    from the records at or past the first dirty offset (the cleaner checkpoint) and
//!    works out which transactional batches were aborted, committed or are still open
//!    (their marker lies past the cleanable range).
//! 2. [`Cleaner::clean_segment`] rewrites one segment, keeping a record unless a record
//!    with the same key and a higher offset exists, or it is an expired tombstone, or it
//!    belongs to an aborted transaction.
//!
//! Rules chosen where Kafka leaves room, all in the direction of keeping data:
//! - Offsets never change. A batch keeps its base offset, producer id, epoch, base
//!   sequence, leader epoch and base timestamp; survivors keep their offset and timestamp
//!   deltas, so their bytes are copied verbatim. The last offset delta is kept for
//!   idempotent producers' batches (their sequence range depends on it); other thinned
//!   batches end at their last surviving record, so no batch is served to a fetch whose
//!   offset lies past all of its records. Such thinned batches are
//!   what [`super::batch::batches`] accepts as stored batches.
//! - A batch that keeps every record is copied as is (compression included). A thinned
//!   batch is compressed again with its own codec, in the framings every client reads
//!   (see [`super::codec`]).
//! - A batch that loses every record is dropped, except the last batch of each producer
//!   id, kept as an empty batch (header only) so producer sequence state survives a
//!   replay from the log, as Kafka does. A segment may end up with no batch at all; a
//!   read at a compacted-away offset moves on to the next segment that has one (as
//!   Kafka's reads do). Empty batches are what some clients cannot step over (KafkaJS
//!   stays at the offset of an empty batch), so none are made beyond Kafka's.
//!   Control batches (transaction markers) are always kept.
//! - Batches of a transaction whose marker is not yet in the cleanable range are kept
//!   unchanged and add nothing to the offset map; aborted transactional records are
//!   dropped and never shadow a committed value.
//! - Keyless records (possible if a topic switched from `delete` to `compact`) are kept:
//!   the cleaner cannot tell what supersedes them.
//! - Tombstones (null value) go once their segment's largest timestamp is older than
//!   `delete.retention.ms`: the same clock time retention uses, and since every record of
//!   a segment is at or below that timestamp, a tombstone is kept at least
//!   `delete.retention.ms` after its own timestamp. (Kafka's file-mtime horizon is not
//!   usable here: rewriting a segment renews its mtime.)
//!
//! The offset map holds whole keys, not digests, so two keys can never collide (Kafka's
//! MD5 map accepts that risk); its memory grows with the number of distinct dirty keys.
//! Nothing here panics on bad bytes: a segment that does not parse fails the pass, which
//! leaves the log untouched.

use std::collections::{HashMap, HashSet};

use super::batch::{self, parse_records, BatchHeader, RecordRef, HEADER_LEN, LOG_OVERHEAD};
use super::codec;
use super::LogError;

/// Attribute bits kept when a batch is rewritten: timestamp type, transactional,
/// control. The codec bits are set anew (see [`recompress`]); the delete horizon bit is
/// never set by this cleaner.
mod files;

pub use files::*;

const KEPT_ATTRIBUTES: i16 = 0x08 | 0x10 | 0x20;
const ATTRIBUTES_OFFSET: usize = 21;
const CRC_OFFSET: usize = 17;

use super::batch::control::ABORT as ABORT_MARKER;

/// (offset, key, value) of every record of one stored batch, for readers of internal
/// topics (the group coordinator replaying `__consumer_offsets`). Control batches have
/// no data records and give none.
pub fn stored_key_values(batch_bytes: &[u8]) -> Result<Vec<KeyValue>, LogError> {
    let (hdr, records) = batch::stored_records(batch_bytes)?;
    if hdr.is_control() {
        return Ok(Vec::new());
    }
    let parsed = parse_records(&hdr, &records)?;
    Ok(parsed
        .iter()
        .map(|r| {
            (
                r.offset,
                r.key.map(<[u8]>::to_vec),
                r.value.map(<[u8]>::to_vec),
            )
        })
        .collect())
}

/// One record's offset, key and value.
pub type KeyValue = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// Every CRC-checked batch of a segment's bytes; a torn or corrupt batch fails.
fn segment_batches(segment: &[u8]) -> Result<Vec<(BatchHeader, &[u8])>, LogError> {
    let mut out = Vec::new();
    for item in batch::batches(segment, true) {
        let (hdr, range) = item?;
        out.push((hdr, &segment[range]));
    }
    Ok(out)
}

/// The control type (abort 0, commit 1) of a control batch's first record.
fn control_type(batch_bytes: &[u8]) -> Result<Option<i16>, LogError> {
    let (hdr, records) = batch::stored_records(batch_bytes)?;
    let parsed = parse_records(&hdr, &records)?;
    let Some(key) = parsed.first().and_then(|r| r.key) else {
        return Ok(None);
    };
    Ok(key.get(2..4).map(|t| i16::from_be_bytes([t[0], t[1]])))
}

/// The batches of one producer's open transaction and the map entries they add if it
/// commits.
type OpenTransaction = (Vec<i64>, Vec<(Vec<u8>, i64)>);

/// What one segment became.
#[derive(Debug, Default, Clone)]
pub struct CleanedSegment {
    /// The new segment bytes: whole batches, base offsets increasing.
    pub bytes: Vec<u8>,
    /// Nothing was removed: `bytes` equals the input and need not be written.
    pub unchanged: bool,
    pub records_read: u64,
    pub records_kept: u64,
}

/// One cleaning pass: the offset map and the transaction outcomes of the cleanable range.
#[derive(Debug, Default)]
pub struct Cleaner {
    /// Key → highest offset among the dirty records (committed or non-transactional).
    map: HashMap<Vec<u8>, i64>,
    /// Base offsets of transactional data batches whose transaction aborted.
    aborted: HashSet<i64>,
    /// Base offsets of transactional data batches with no marker in the range.
    undecided: HashSet<i64>,
    /// Per producer id: the base offsets of its open transaction's batches and the map
    /// entries they would add once committed.
    open: HashMap<i64, OpenTransaction>,
    /// Producer id → base offset of its last batch in the range.
    last_of_producer: HashMap<i64, i64>,
    first_dirty: i64,
}

impl Cleaner {
    /// A pass whose dirty section starts at `first_dirty` (the cleaner checkpoint).
    pub fn new(first_dirty: i64) -> Cleaner {
        Cleaner {
            first_dirty,
            ..Cleaner::default()
        }
    }

    fn note(&mut self, key: Vec<u8>, offset: i64) {
        let e = self.map.entry(key).or_insert(offset);
        *e = (*e).max(offset);
    }

    /// Step 1, for every cleanable segment in offset order.
    pub fn scan(&mut self, segment: &[u8]) -> Result<(), LogError> {
        for (hdr, bytes) in segment_batches(segment)? {
            if hdr.has_producer_id() {
                self.last_of_producer
                    .insert(hdr.producer_id, hdr.base_offset);
            }
            if hdr.is_control() {
                if hdr.record_count == 0 {
                    continue;
                }
                let abort = control_type(bytes)? == Some(ABORT_MARKER);
                if let Some((batches, entries)) = self.open.remove(&hdr.producer_id) {
                    if abort {
                        self.aborted.extend(batches);
                    } else {
                        for (k, o) in entries {
                            self.note(k, o);
                        }
                    }
                }
                continue;
            }
            let tx = hdr.is_transactional();
            if tx {
                self.open
                    .entry(hdr.producer_id)
                    .or_default()
                    .0
                    .push(hdr.base_offset);
            }
            if hdr.last_offset() < self.first_dirty || hdr.record_count == 0 {
                continue;
            }
            let (hdr, records) = batch::stored_records(bytes)?;
            for r in parse_records(&hdr, &records)? {
                let Some(key) = r.key.filter(|_| r.offset >= self.first_dirty) else {
                    continue;
                };
                if tx {
                    if let Some(open) = self.open.get_mut(&hdr.producer_id) {
                        open.1.push((key.to_vec(), r.offset));
                    }
                } else {
                    self.note(key.to_vec(), r.offset);
                }
            }
        }
        Ok(())
    }

    /// After the last [`scan`](Self::scan): transactions still open are undecided.
    pub fn finish_scan(&mut self) {
        for (_, (batches, _)) in self.open.drain() {
            self.undecided.extend(batches);
        }
    }

    /// Where the next pass's dirty section must start at the latest: the first batch of
    /// a transaction still open. Its records enter no map this pass, so they must be
    /// dirty again once the transaction ends (a committed tombstone left out of every map
    /// could otherwise expire while older values of its key survive).
    pub fn first_undecided(&self) -> Option<i64> {
        self.undecided.iter().copied().min()
    }

    /// Step 2: the cleaned form of one segment. `drop_tombstones`: the segment is older
    /// than `delete.retention.ms` (see the module docs).
    pub fn clean_segment(
        &self,
        segment: &[u8],
        drop_tombstones: bool,
    ) -> Result<CleanedSegment, LogError> {
        let batches = segment_batches(segment)?;
        let mut out = CleanedSegment {
            bytes: Vec::with_capacity(segment.len()),
            unchanged: true,
            ..CleanedSegment::default()
        };
        for (hdr, bytes) in batches {
            out.records_read += hdr.record_count.max(0) as u64;
            let keep_whole = hdr.is_control()
                || hdr.record_count == 0
                || (hdr.is_transactional() && self.undecided.contains(&hdr.base_offset));
            if keep_whole {
                out.records_kept += hdr.record_count.max(0) as u64;
                out.bytes.extend_from_slice(bytes);
                continue;
            }
            let aborted = hdr.is_transactional() && self.aborted.contains(&hdr.base_offset);
            let (full, records) = batch::stored_records(bytes)?;
            let parsed = parse_records(&full, &records)?;
            let kept: Vec<&RecordRef<'_>> = parsed
                .iter()
                .filter(|r| !aborted && self.retain(r, drop_tombstones))
                .collect();
            out.records_kept += kept.len() as u64;
            if kept.len() == parsed.len() {
                out.bytes.extend_from_slice(bytes);
                continue;
            }
            out.unchanged = false;
            let producer_last = hdr.has_producer_id()
                && self.last_of_producer.get(&hdr.producer_id) == Some(&hdr.base_offset);
            if kept.is_empty() && !producer_last {
                continue;
            }
            encode_thinned(&full, &kept, &mut out.bytes);
        }
        Ok(out)
    }

    fn retain(&self, r: &RecordRef<'_>, drop_tombstones: bool) -> bool {
        let Some(key) = r.key else {
            return true;
        };
        if self.map.get(key).is_some_and(|&latest| latest > r.offset) {
            return false;
        }
        r.value.is_some() || !drop_tombstones
    }
}

fn put_i32(buf: &mut [u8], at: usize, v: i32) {
    buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Write `original`'s header with the survivors' records, uncompressed, with a new
/// length, count, max timestamp and CRC.
/// The survivors' record bytes in the batch's own codec (at the codec's default level):
/// (codec, bytes). An empty batch, or an encoder failure (it only writes to memory), gives
/// uncompressed bytes.
fn recompress(codec: i16, kept: &[&RecordRef<'_>]) -> (i16, Vec<u8>) {
    let plain: Vec<u8> = kept.iter().flat_map(|r| r.raw.iter().copied()).collect();
    if kept.is_empty() || codec == codec::NONE {
        return (codec::NONE, plain);
    }
    match codec::compress(codec, codec::default_level(codec), &plain) {
        Ok(c) => (codec, c),
        Err(_) => (codec::NONE, plain),
    }
}

fn encode_thinned(original: &BatchHeader, kept: &[&RecordRef<'_>], out: &mut Vec<u8>) {
    let start = out.len();
    let (codec, records) = recompress(original.compression(), kept);
    let body = records.len();
    let attributes = (original.attributes & KEPT_ATTRIBUTES) | codec;
    let max_timestamp = if original.is_log_append_time() || kept.is_empty() {
        original.max_timestamp
    } else {
        kept.iter().map(|r| r.timestamp).max().unwrap_or(-1)
    };
    let batch_length = (HEADER_LEN - LOG_OVERHEAD + body) as i32;
    // A batch of an idempotent producer keeps its offset range (its sequence range
    // depends on it). Any other thinned batch ends at its last surviving record, so a
    // read past that record moves on to the next batch: a batch whose records all lie
    // below the fetch offset leaves clients that advance by record offsets (KafkaJS)
    // fetching it forever.
    let last_offset_delta = match kept.last() {
        Some(r) if !original.has_producer_id() => (r.offset - original.base_offset) as i32,
        _ => original.last_offset_delta,
    };
    out.extend_from_slice(&original.base_offset.to_be_bytes());
    out.extend_from_slice(&batch_length.to_be_bytes());
    out.extend_from_slice(&original.partition_leader_epoch.to_be_bytes());
    out.push(2);
    out.extend_from_slice(&[0; 4]); // CRC, filled in below
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&last_offset_delta.to_be_bytes());
    out.extend_from_slice(&original.base_timestamp.to_be_bytes());
    out.extend_from_slice(&max_timestamp.to_be_bytes());
    out.extend_from_slice(&original.producer_id.to_be_bytes());
    out.extend_from_slice(&original.producer_epoch.to_be_bytes());
    out.extend_from_slice(&original.base_sequence.to_be_bytes());
    out.extend_from_slice(&(kept.len() as i32).to_be_bytes());
    out.extend_from_slice(&records);
    let crc = crc32c::crc32c(&out[start + ATTRIBUTES_OFFSET..]);
    put_i32(out, start + CRC_OFFSET, crc as i32);
}

/// What the partition knows about one segment when it plans a pass.
#[derive(Debug, Clone, Copy)]
pub struct SegmentSpan {
    pub base_offset: i64,
    /// First offset past the segment (the next segment's base).
    pub end_offset: i64,
    pub size: u64,
    pub largest_timestamp: i64,
}

/// Which segments a pass cleans and whether it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The first `count` segments are cleaned; offsets below `clean_end` are cleanable.
    pub count: usize,
    pub clean_end: i64,
    /// The first dirty offset (checkpoint clamped to the cleanable range).
    pub first_dirty: i64,
    pub dirty_bytes: u64,
    pub total_bytes: u64,
}

/// Plan a pass over `segments` (all of them, the active one last). Cleanable: closed
/// segments wholly below the high watermark whose largest timestamp is at least
/// `min_compaction_lag_ms` old, up to the first that is not. `None` when nothing is
/// dirty or the dirty ratio is below `min_ratio` (unless the oldest dirty segment is past
/// `max_compaction_lag_ms`).
pub fn plan(
    segments: &[SegmentSpan],
    checkpoint: i64,
    high_watermark: i64,
    now_ms: i64,
    cfg: &crate::config::TopicConfig,
) -> Option<Plan> {
    let closed = segments.len().saturating_sub(1);
    let count = segments[..closed]
        .iter()
        .take_while(|s| {
            s.end_offset <= high_watermark
                && now_ms.saturating_sub(s.largest_timestamp) >= cfg.min_compaction_lag_ms
        })
        .count();
    if count == 0 {
        return None;
    }
    let clean_end = segments[count - 1].end_offset;
    let first = segments[0].base_offset;
    // A checkpoint outside the range (a new log, a truncated or recreated one) starts over.
    let first_dirty = if checkpoint < first || checkpoint > clean_end {
        first
    } else {
        checkpoint
    };
    let spans = &segments[..count];
    let total_bytes: u64 = spans.iter().map(|s| s.size).sum();
    let dirty: Vec<&SegmentSpan> = spans
        .iter()
        .filter(|s| s.end_offset > first_dirty)
        .collect();
    let dirty_bytes: u64 = dirty.iter().map(|s| s.size).sum();
    if dirty.is_empty() || dirty_bytes == 0 {
        return None;
    }
    let ratio = dirty_bytes as f64 / total_bytes.max(1) as f64;
    let overdue = cfg.max_compaction_lag_ms < i64::MAX
        && dirty.first().is_some_and(|s| {
            now_ms.saturating_sub(s.largest_timestamp) > cfg.max_compaction_lag_ms
        });
    if ratio < cfg.min_cleanable_dirty_ratio && !overdue {
        return None;
    }
    Some(Plan {
        count,
        clean_end,
        first_dirty,
        dirty_bytes,
        total_bytes,
    })
}

/// One record as tests see it: (offset, key, value).
#[cfg(test)]
pub(crate) type Content = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// (offset, key, value) of every record of some stored batches (tests).
#[cfg(test)]
pub(crate) fn contents(seg: &[u8]) -> Vec<Content> {
    let mut out = Vec::new();
    for (hdr, bytes) in segment_batches(seg).unwrap() {
        let (h, recs) = batch::stored_records(bytes).unwrap();
        assert_eq!(h, hdr);
        for r in parse_records(&h, &recs).unwrap() {
            let value = r.value.map(<[u8]>::to_vec);
            out.push((r.offset, r.key.map(<[u8]>::to_vec), value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicConfig;
    use crate::log::batch::{BatchBuilder, Compression};

    fn kv(base: i64, recs: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut b = BatchBuilder::new(base);
        for (i, (k, v)) in recs.iter().enumerate() {
            b = b.record(Some(k.as_bytes()), v.map(str::as_bytes), 1_000 + i as i64);
        }
        b.build()
    }

    fn run(segments: &[Vec<u8>], first_dirty: i64, drop: bool) -> Vec<CleanedSegment> {
        let mut c = Cleaner::new(first_dirty);
        for s in segments {
            c.scan(s).unwrap();
        }
        c.finish_scan();
        segments
            .iter()
            .map(|s| c.clean_segment(s, drop).unwrap())
            .collect()
    }

    fn key_offsets(seg: &[u8]) -> Vec<(i64, String)> {
        contents(seg)
            .into_iter()
            .map(|(o, k, _)| (o, String::from_utf8(k.unwrap()).unwrap()))
            .collect()
    }

    #[test]
    fn keeps_the_last_value_per_key_across_segments_with_offsets() {
        let s0 = [
            kv(0, &[("a", Some("1")), ("b", Some("1"))]),
            kv(2, &[("c", Some("1"))]),
        ]
        .concat();
        let s1 = kv(3, &[("a", Some("2")), ("d", Some("1")), ("b", Some("2"))]);
        let s2 = kv(6, &[("a", Some("3")), ("e", Some("1"))]);
        let out = run(&[s0.clone(), s1, s2.clone()], 0, false);
        // Segment 0: the batch at 0 is gone (not the segment's last); c stays.
        assert_eq!(key_offsets(&out[0].bytes), vec![(2, "c".into())]);
        assert_eq!(
            key_offsets(&out[1].bytes),
            vec![(4, "d".into()), (5, "b".into())]
        );
        assert!(out[2].unchanged);
        assert_eq!(out[2].bytes, s2);
        // The thinned batch keeps its base offset and offset range.
        let hdr = BatchHeader::parse(&out[1].bytes).unwrap();
        assert_eq!(
            (hdr.base_offset, hdr.last_offset(), hdr.record_count),
            (3, 5, 2)
        );
        assert_eq!(
            batch::record_timestamps(&out[1].bytes).unwrap(),
            vec![(4, 1_001), (5, 1_002)]
        );
        assert_eq!(hdr.max_timestamp, 1_002);
        // Stored-batch parsing (with CRC) accepts the result.
        assert!(batch::batches(&out[1].bytes, true).all(|b| b.is_ok()));
    }

    #[test]
    fn a_segment_whose_records_are_all_superseded_becomes_empty() {
        // No empty batch stays behind for a non-idempotent producer (Kafka keeps none;
        // some clients cannot step over one), so the segment has no bytes left.
        let s0 = [kv(0, &[("a", Some("1"))]), kv(1, &[("a", Some("2"))])].concat();
        let s1 = kv(2, &[("a", Some("3"))]);
        let out = run(&[s0, s1], 0, false);
        assert!(out[0].bytes.is_empty());
        assert_eq!(out[0].records_kept, 0);
        assert!(!out[0].unchanged);
    }

    #[test]
    fn a_thinned_batch_ends_at_its_last_survivor_unless_idempotent() {
        // Offsets 0..=3 in one batch; "b" at 3 is superseded by the next segment.
        let s0 = kv(
            0,
            &[
                ("a", Some("1")),
                ("c", Some("1")),
                ("d", Some("1")),
                ("b", Some("1")),
            ],
        );
        let s1 = kv(4, &[("b", Some("2"))]);
        let out = run(&[s0, s1], 0, false);
        let batches = segment_batches(&out[0].bytes).unwrap();
        let hdr = batches[0].0;
        assert_eq!(
            (hdr.base_offset, hdr.last_offset(), hdr.record_count),
            (0, 2, 3)
        );
        // An idempotent producer's batch keeps its range (and so its sequence range).
        let p0 = crate::log::batch::BatchBuilder::new(0)
            .producer(7, 0, 0)
            .record(Some(b"a"), Some(b"1"), 1)
            .record(Some(b"b"), Some(b"1"), 1)
            .build();
        let p1 = crate::log::batch::BatchBuilder::new(2)
            .producer(7, 0, 2)
            .record(Some(b"b"), Some(b"2"), 1)
            .build();
        let out = run(&[p0, p1], 0, false);
        let hdr = segment_batches(&out[0].bytes).unwrap()[0].0;
        assert_eq!(
            (hdr.base_offset, hdr.last_offset(), hdr.record_count),
            (0, 1, 1)
        );
    }

    #[test]
    fn only_dirty_records_enter_the_map() {
        // Below the checkpoint the log is already clean: a clean record is not removed
        // by another clean record, only by a dirty one.
        let s0 = kv(0, &[("a", Some("1")), ("b", Some("1"))]);
        let s1 = kv(2, &[("a", Some("2"))]);
        let out = run(&[s0, s1], 2, false);
        assert_eq!(key_offsets(&out[0].bytes), vec![(1, "b".into())]);
    }

    #[test]
    fn tombstones_go_only_when_old_enough() {
        let s0 = kv(0, &[("a", Some("1")), ("b", Some("1"))]);
        let s1 = kv(2, &[("a", None), ("c", Some("1"))]);
        let kept = run(&[s0.clone(), s1.clone()], 0, false);
        assert_eq!(key_offsets(&kept[0].bytes), vec![(1, "b".into())]);
        assert_eq!(
            contents(&kept[1].bytes),
            vec![
                (2, Some(b"a".to_vec()), None),
                (3, Some(b"c".to_vec()), Some(b"1".to_vec()))
            ]
        );
        let dropped = run(&[s0, s1], 0, true);
        assert_eq!(key_offsets(&dropped[1].bytes), vec![(3, "c".into())]);
    }

    #[test]
    fn compressed_input_is_cleaned_and_keeps_its_codec() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut b = BatchBuilder::new(0).compression(codec);
            for (k, v) in [("a", "1"), ("b", "1"), ("a", "2")] {
                b = b.record(Some(k.as_bytes()), Some(v.as_bytes()), 5);
            }
            let s0 = b.build();
            let s1 = kv(3, &[("z", Some("1"))]);
            let out = run(&[s0, s1], 0, false);
            let hdr = BatchHeader::parse(&out[0].bytes).unwrap();
            assert_eq!(hdr.compression(), codec as i16, "{codec:?}");
            assert_eq!(
                batch::record_timestamps(&out[0].bytes).unwrap(),
                vec![(1, 5), (2, 5)]
            );
            assert!(batch::batches(&out[0].bytes, true).all(|b| b.is_ok()));
            // An independent decoder (kafka-protocol's, as clients decode) agrees.
            let mut buf = bytes::Bytes::from(out[0].bytes.clone());
            let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).unwrap();
            let offsets: Vec<i64> = set.records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, vec![1, 2], "{codec:?}");
            assert_eq!(
                key_offsets(&out[0].bytes),
                vec![(1, "b".into()), (2, "a".into())]
            );
            // A compressed batch that keeps everything stays compressed.
            let again = run(&[out[0].bytes.clone()], 0, false);
            assert!(again[0].unchanged);
        }
        let kept = BatchBuilder::new(0)
            .compression(Compression::Zstd)
            .record(Some(b"x"), Some(b"1"), 1)
            .build();
        let out = run(std::slice::from_ref(&kept), 0, false);
        assert_eq!(out[0].bytes, kept);
    }

    #[test]
    fn producer_fields_survive_and_a_producers_last_batch_stays() {
        let s0 = [
            BatchBuilder::new(0)
                .producer(7, 3, 10)
                .record(Some(b"a"), Some(b"1"), 1)
                .record(Some(b"b"), Some(b"1"), 1)
                .build(),
            kv(2, &[("a", Some("2")), ("b", Some("2"))]),
            kv(4, &[("c", Some("2"))]),
        ]
        .concat();
        let out = run(&[s0], 0, false);
        let batches = segment_batches(&out[0].bytes).unwrap();
        let first = batches[0].0;
        assert_eq!(
            (first.producer_id, first.producer_epoch, first.base_sequence),
            (7, 3, 10)
        );
        assert_eq!((first.record_count, first.last_sequence()), (0, 11));
        assert_eq!(batches.len(), 3);
    }

    fn control(base: i64, pid: i64, commit: bool) -> Vec<u8> {
        let key = [0u8, 0, 0, commit as u8];
        BatchBuilder::new(base)
            .producer(pid, 0, -1)
            .transactional(true)
            .control(true)
            .record(Some(&key), Some(&[0, 0, 0, 0, 0, 0]), 1)
            .build()
    }

    fn tx(base: i64, pid: i64, k: &str, v: &str) -> Vec<u8> {
        BatchBuilder::new(base)
            .producer(pid, 0, base as i32)
            .transactional(true)
            .record(Some(k.as_bytes()), Some(v.as_bytes()), 1)
            .build()
    }

    #[test]
    fn transactions_aborted_committed_and_open() {
        let s0 = [
            kv(0, &[("a", Some("1")), ("b", Some("1")), ("c", Some("1"))]),
            tx(3, 1, "a", "aborted"),
            control(4, 1, false),
            tx(5, 2, "b", "committed"),
            control(6, 2, true),
            tx(7, 3, "c", "open"),
        ]
        .concat();
        let s1 = kv(8, &[("z", Some("1"))]);
        let out = run(&[s0, s1], 0, false);
        let got = key_offsets(&out[0].bytes);
        // a=1 survives the aborted a; b=1 is replaced by the committed b; c=1 stays
        // while c's transaction is open; the markers stay.
        assert!(got.contains(&(0, "a".into())));
        assert!(!got.iter().any(|(o, _)| *o == 1 || *o == 3));
        assert!(got.contains(&(5, "b".into())));
        assert!(got.contains(&(2, "c".into())) && got.contains(&(7, "c".into())));
        assert!(got.iter().any(|(o, _)| *o == 4) && got.iter().any(|(o, _)| *o == 6));
        let mut c = Cleaner::new(0);
        c.scan(&[tx(0, 3, "c", "open"), kv(1, &[("z", Some("1"))])].concat())
            .unwrap();
        c.finish_scan();
        assert_eq!(c.first_undecided(), Some(0));
    }

    #[test]
    fn corrupt_input_fails_the_pass() {
        let mut s0 = kv(0, &[("a", Some("1"))]);
        let n = s0.len();
        s0[n - 1] ^= 1;
        let mut c = Cleaner::new(0);
        assert!(matches!(c.scan(&s0), Err(LogError::Corrupt(_))));
        assert!(c.clean_segment(&s0, false).is_err());
        assert!(c.clean_segment(&s0[..n - 3], false).is_err());
    }

    fn span(base: i64, end: i64, size: u64, ts: i64) -> SegmentSpan {
        SegmentSpan {
            base_offset: base,
            end_offset: end,
            size,
            largest_timestamp: ts,
        }
    }

    #[test]
    fn plans_respect_ratio_lag_active_segment_and_high_watermark() {
        let cfg = TopicConfig {
            compact: true,
            min_cleanable_dirty_ratio: 0.5,
            ..TopicConfig::default()
        };
        let segs = [
            span(0, 10, 100, 100),
            span(10, 20, 100, 200),
            span(20, i64::MAX, 100, 300),
        ];
        let p = plan(&segs, 0, 100, 1_000, &cfg).unwrap();
        assert_eq!((p.count, p.clean_end, p.first_dirty), (2, 20, 0));
        // Half dirty: due at 0.5, not at 0.6.
        assert_eq!(plan(&segs, 10, 100, 1_000, &cfg).unwrap().dirty_bytes, 100);
        let strict = TopicConfig {
            min_cleanable_dirty_ratio: 0.6,
            ..cfg.clone()
        };
        assert_eq!(plan(&segs, 10, 100, 1_000, &strict), None);
        // Overdue by max.compaction.lag.ms: cleaned despite the ratio.
        let overdue = TopicConfig {
            max_compaction_lag_ms: 500,
            ..strict.clone()
        };
        assert_eq!(plan(&segs, 10, 100, 1_000, &overdue).unwrap().count, 2);
        // Nothing dirty.
        assert_eq!(plan(&segs, 20, 100, 1_000, &cfg), None);
        // min.compaction.lag.ms stops at the first young segment.
        let lag = TopicConfig {
            min_compaction_lag_ms: 850,
            ..cfg.clone()
        };
        assert_eq!(plan(&segs, 0, 100, 1_000, &lag).unwrap().count, 1);
        // The high watermark bounds the range; a stale checkpoint starts over.
        assert_eq!(plan(&segs, 0, 15, 1_000, &cfg).unwrap().count, 1);
        assert_eq!(plan(&segs, 99, 100, 1_000, &cfg).unwrap().first_dirty, 0);
        // Only the active segment: nothing.
        assert_eq!(plan(&segs[2..], 0, 100, 1_000, &cfg), None);
    }
}

//! Idempotent-producer state per partition (Kafka's ProducerStateManager): the last five
//! batches of every producer id, sequence checks, duplicate detection and snapshots.
//!
//! This module owns the rules of KIP-98 and KIP-360 for one partition. It works on batch
//! headers only (producer id, epoch, sequences, offsets), so the produce path checks a
//! batch before it is written ([`ProducerStateManager::check`]) and records it afterwards
//! ([`ProducerStateManager::update`]). The same `update` rebuilds the state when log
//! recovery replays stored batch headers, usually starting from a snapshot
//! ([`ProducerStateManager::encode_snapshot`]) so that only the tail needs replaying. It
//! does no I/O; choosing snapshot files and when to write them is the partition log's job.
//!
//! It also tracks transactions (KIP-98): a producer's first transactional batch opens its
//! transaction, and the marker that ends it ([`ProducerStateManager::complete`]) yields a
//! [`CompletedTxn`] (the partition log indexes aborted ones). The first offset of the
//! oldest transaction not yet decided, or decided by a marker the high watermark has not
//! passed, bounds the last stable offset ([`ProducerStateManager::first_unstable_offset`]).

use std::collections::{BTreeMap, VecDeque};

use super::batch::control::TxnMarker;
use super::batch::BatchHeader;
use super::LogError;

/// Epoch of a producer we have no batch from (Kafka's `RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Sequence of a producer with no retained batch (Kafka's `RecordBatch.NO_SEQUENCE`).
pub const NO_SEQUENCE: i32 = -1;
/// How many recent batches per producer are kept for duplicate detection. Clients keep at
/// most five requests in flight per connection (max.in.flight.requests.per.connection=5
/// for idempotence), so a retry always targets one of the last five.
pub const NUM_BATCHES_TO_RETAIN: usize = 5;

/// An appended batch of one producer, enough to answer a retry of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// The batch's max timestamp after append (the LogAppendTime if the topic uses it),
    /// returned again to a retry.
    pub timestamp: i64,
}

/// What the partition knows about one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    /// Oldest first; at most [`NUM_BATCHES_TO_RETAIN`], all of the current epoch.
    batches: VecDeque<BatchMetadata>,
    /// Max timestamp of the producer's last batch or marker; drives expiration.
    last_timestamp: i64,
    coordinator_epoch: i32,
    /// First offset of the open transaction, if any.
    current_txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    fn new() -> Self {
        ProducerEntry {
            epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::new(),
            last_timestamp: -1,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }

    fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    /// A new epoch starts a new sequence space, so the old batches can no longer match.
    fn set_epoch(&mut self, epoch: i16) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
    }
}

/// The outcome of [`ProducerStateManager::check`] for a batch that may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// Append the batch (then call `update` with its assigned offsets).
    Append,
    /// A retry of a batch already in the log: do not write it, answer with these.
    Duplicate {
        first_offset: i64,
        last_offset: i64,
        timestamp: i64,
    },
}

/// One producer as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub epoch: i16,
    /// [`NO_SEQUENCE`] when no batch of the current epoch is retained.
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    pub current_txn_start_offset: Option<i64>,
}

/// A transaction a marker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub aborted: bool,
    /// The last stable offset once this transaction is decided and replicated: the
    /// first offset of the oldest other undecided transaction, else the offset after
    /// the marker (Kafka's `lastStableOffset` of the aborted-transaction index).
    pub last_stable_offset: i64,
}

/// Producer state of one partition. See the module docs for how it is fed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateManager {
    // Ordered so that snapshots of equal states are equal bytes.
    producers: BTreeMap<i64, ProducerEntry>,
    /// Offset after the last batch applied: a snapshot taken now covers `[.., end_offset)`.
    end_offset: i64,
    /// Open transactions by first offset → (producer id, timestamp of their first batch;
    /// after a snapshot load, of the producer's last batch), derived from `producers`.
    ongoing: BTreeMap<i64, (i64, i64)>,
    /// Transactions whose marker is at or past the high watermark, by first offset →
    /// (producer id, marker offset): decided, but not yet stable. Not in snapshots: a
    /// restarted log counts its markers as replicated, as Kafka's does.
    unreplicated: BTreeMap<i64, (i64, i64)>,
}

impl ProducerStateManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// Offset just past the last batch given to [`update`](Self::update) (0 when none):
    /// replay after loading a snapshot starts here, and a snapshot file is named by it.
    pub fn end_offset(&self) -> i64 {
        self.end_offset
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Decide whether a produced batch may be appended. Batches without a producer id
    /// always may. For idempotent batches, in Kafka's order:
    /// 1. same epoch and the same sequence range as one of the last five batches:
    ///    [`SeqCheck::Duplicate`] with the offsets it was written at;
    /// 2. an epoch older than the producer's: `InvalidProducerEpoch` (fenced);
    /// 3. a new epoch must start at sequence 0, unless we know no epoch for the producer;
    /// 4. the same epoch must continue at last sequence + 1 (0 after `i32::MAX`), unless
    ///    the producer is unknown (its state may have gone with retention or
    ///    DeleteRecords, KIP-360), in which case any sequence is accepted.
    ///
    /// Violations of 3 and 4 are `OutOfOrderSequence`.
    pub fn check(&self, header: &BatchHeader) -> Result<SeqCheck, LogError> {
        if !header.has_producer_id() {
            return Ok(SeqCheck::Append);
        }
        let pid = header.producer_id;
        let epoch = header.producer_epoch;
        let first_seq = header.base_sequence;
        let Some(entry) = self.producers.get(&pid) else {
            return Ok(SeqCheck::Append);
        };
        if epoch == entry.epoch {
            let last_seq = header.last_sequence();
            if let Some(dup) = entry
                .batches
                .iter()
                .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            {
                return Ok(SeqCheck::Duplicate {
                    first_offset: dup.first_offset,
                    last_offset: dup.last_offset,
                    timestamp: dup.timestamp,
                });
            }
        }
        if epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch(format!(
                "producer {pid} has epoch {epoch}, older than the current epoch {}",
                entry.epoch
            )));
        }
        if entry.epoch == NO_PRODUCER_EPOCH {
            return Ok(SeqCheck::Append);
        }
        if epoch != entry.epoch {
            if first_seq != 0 {
                return Err(LogError::OutOfOrderSequence(format!(
                    "producer {pid} starts new epoch {epoch} (current {}) at sequence \
                     {first_seq}, expected 0",
                    entry.epoch
                )));
            }
            return Ok(SeqCheck::Append);
        }
        let last_seq = entry.last_seq();
        if !in_sequence(last_seq, first_seq) {
            return Err(LogError::OutOfOrderSequence(format!(
                "producer {pid} epoch {epoch}: sequence {first_seq} does not follow {last_seq}"
            )));
        }
        Ok(SeqCheck::Append)
    }

    /// Record a data batch that is in the log, with its assigned offsets: after an
    /// append, and for every batch header replayed during recovery (in log order).
    /// Batches without a producer id only advance [`end_offset`](Self::end_offset).
    /// Control batches (transaction markers) go to [`complete`](Self::complete); one
    /// given here only advances the end offset.
    pub fn update(&mut self, header: &BatchHeader) {
        self.end_offset = self.end_offset.max(header.last_offset().saturating_add(1));
        if !header.has_producer_id() || header.is_control() {
            return;
        }
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(ProducerEntry::new);
        entry.set_epoch(header.producer_epoch);
        entry.last_timestamp = header.max_timestamp;
        if header.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(header.base_offset);
            self.ongoing.insert(
                header.base_offset,
                (header.producer_id, header.max_timestamp),
            );
        }
        if entry.batches.len() >= NUM_BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: header.base_sequence,
            last_seq: header.last_sequence(),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            timestamp: header.max_timestamp,
        });
    }

    /// A coordinator's batch (no sequence): only an epoch older than the producer's is
    /// refused (INVALID_PRODUCER_EPOCH).
    pub fn check_epoch(&self, header: &BatchHeader) -> Result<(), LogError> {
        match self.producers.get(&header.producer_id) {
            Some(e) if header.has_producer_id() && header.producer_epoch < e.epoch => {
                Err(LogError::InvalidProducerEpoch(format!(
                    "producer {} has epoch {}, older than the current epoch {}",
                    header.producer_id, header.producer_epoch, e.epoch
                )))
            }
            _ => Ok(()),
        }
    }

    /// Whether a leader may write `marker` for `producer_id` at `epoch`: not for an epoch
    /// older than the producer's (INVALID_PRODUCER_EPOCH), nor from a coordinator older
    /// than the last one that wrote a marker for it (TRANSACTION_COORDINATOR_FENCED).
    pub fn check_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        marker: &TxnMarker,
    ) -> Result<(), LogError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch(format!(
                "marker for producer {producer_id} has epoch {epoch}, older than the \
                 current epoch {}",
                entry.epoch
            )));
        }
        if marker.coordinator_epoch < entry.coordinator_epoch {
            return Err(LogError::CoordinatorFenced(format!(
                "marker for producer {producer_id} from coordinator epoch {}, older than {}",
                marker.coordinator_epoch, entry.coordinator_epoch
            )));
        }
        Ok(())
    }

    /// Record a transaction marker that is in the log: it ends the producer's open
    /// transaction, if any, which is returned. `high_watermark` tells whether the marker
    /// is replicated already (a follower's, or a replay's, usually is).
    pub fn complete(
        &mut self,
        header: &BatchHeader,
        marker: &TxnMarker,
        high_watermark: i64,
    ) -> Option<CompletedTxn> {
        self.end_offset = self.end_offset.max(header.last_offset().saturating_add(1));
        let pid = header.producer_id;
        let entry = self.producers.entry(pid).or_insert_with(ProducerEntry::new);
        entry.set_epoch(header.producer_epoch);
        entry.last_timestamp = header.max_timestamp;
        entry.coordinator_epoch = marker.coordinator_epoch;
        let first_offset = entry.current_txn_first_offset.take()?;
        self.ongoing.remove(&first_offset);
        let marker_offset = header.base_offset;
        let last_stable_offset = self
            .ongoing
            .keys()
            .next()
            .copied()
            .into_iter()
            .chain(self.unreplicated.keys().next().copied())
            .min()
            .unwrap_or(marker_offset + 1);
        if marker_offset >= high_watermark {
            self.unreplicated.insert(first_offset, (pid, marker_offset));
        }
        Some(CompletedTxn {
            producer_id: pid,
            first_offset,
            last_offset: marker_offset,
            aborted: !marker.commit,
            last_stable_offset,
        })
    }

    /// The first offset of the oldest transaction that is open, or decided by a marker
    /// the high watermark has not passed: the last stable offset cannot pass it.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let ongoing = self.ongoing.keys().next().copied();
        let unreplicated = self.unreplicated.keys().next().copied();
        ongoing.into_iter().chain(unreplicated).min()
    }

    /// The high watermark moved to `hw`: markers below it are replicated.
    pub fn on_high_watermark(&mut self, hw: i64) {
        self.unreplicated.retain(|_, (_, marker)| *marker >= hw);
    }

    /// Open transactions: (producer id, first offset), oldest first.
    pub fn ongoing(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing.iter().map(|(&first, &(pid, _))| (pid, first))
    }

    /// The timestamp of the first batch of the oldest open transaction: how long a
    /// partition has been held back (a transaction its coordinator forgot hangs here).
    pub fn oldest_open_since(&self) -> Option<i64> {
        self.ongoing.values().map(|&(_, ts)| ts).min()
    }

    /// Drop producers idle for at least `producer_id_expiration_ms` (by the timestamp of
    /// their last batch, like Kafka) that have no open transaction. Returns how many went.
    pub fn expire(&mut self, now_ms: i64, producer_id_expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) < producer_id_expiration_ms
        });
        before - self.producers.len()
    }

    /// The log start offset moved (retention or DeleteRecords): forget retained batches
    /// that are no longer in the log, and producers left with none and no open
    /// transaction. A forgotten producer's next batch is accepted at any sequence.
    pub fn truncate_head(&mut self, log_start_offset: i64) {
        self.producers.retain(|_, e| {
            while e
                .batches
                .front()
                .is_some_and(|b| b.last_offset < log_start_offset)
            {
                e.batches.pop_front();
            }
            !e.batches.is_empty() || e.current_txn_first_offset.is_some()
        });
    }

    /// Every producer, by id, for DescribeProducers.
    pub fn producers(&self) -> impl Iterator<Item = ProducerInfo> + '_ {
        self.producers.iter().map(|(&pid, e)| ProducerInfo {
            producer_id: pid,
            epoch: e.epoch,
            last_sequence: e.last_seq(),
            last_timestamp: e.last_timestamp,
            coordinator_epoch: e.coordinator_epoch,
            current_txn_start_offset: e.current_txn_first_offset,
        })
    }

    /// The retained batches of one producer, oldest first.
    pub fn batches(&self, producer_id: i64) -> impl Iterator<Item = &BatchMetadata> + '_ {
        self.producers
            .get(&producer_id)
            .into_iter()
            .flat_map(|e| e.batches.iter())
    }

    /// Serialize the whole state. Layout (big-endian): version u8 | crc32c u32 of the
    /// body | body = end_offset i64, producer count u32, then per producer: id i64,
    /// epoch i16, coordinator epoch i32, last timestamp i64, open-transaction first offset
    /// i64 (-1 = none), open-transaction first timestamp i64 (version 2; -1 = none),
    /// batch count u8, batches (first seq i32, last seq i32, first offset i64, last
    /// offset i64, timestamp i64). Version 1 snapshots are read too.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(12 + self.producers.len() * 64);
        body.extend_from_slice(&self.end_offset.to_be_bytes());
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        for (pid, e) in &self.producers {
            body.extend_from_slice(&pid.to_be_bytes());
            body.extend_from_slice(&e.epoch.to_be_bytes());
            body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&e.last_timestamp.to_be_bytes());
            body.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
            let txn_start = e
                .current_txn_first_offset
                .and_then(|first| self.ongoing.get(&first))
                .map_or(-1, |&(_, ts)| ts);
            body.extend_from_slice(&txn_start.to_be_bytes());
            body.push(e.batches.len() as u8);
            for b in &e.batches {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
                body.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(5 + body.len());
        out.push(SNAPSHOT_VERSION);
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Read a snapshot written by [`encode_snapshot`](Self::encode_snapshot). Any damage
    /// (unknown version, CRC mismatch, truncation, trailing bytes, impossible counts) is
    /// `Corrupt`; the caller then rebuilds the state from the log's batches instead.
    pub fn decode_snapshot(buf: &[u8]) -> Result<Self, LogError> {
        let bad = |m: &str| LogError::Corrupt(format!("producer state snapshot: {m}"));
        let (&version, rest) = buf.split_first().ok_or_else(|| bad("empty"))?;
        if version != SNAPSHOT_VERSION && version != 1 {
            return Err(bad(&format!("unknown version {version}")));
        }
        let mut r = Reader { buf: rest };
        let crc = r.u32().ok_or_else(|| bad("truncated"))?;
        if crc32c::crc32c(r.buf) != crc {
            return Err(bad("CRC mismatch"));
        }
        let truncated = || bad("truncated");
        let end_offset = r.i64().ok_or_else(truncated)?;
        let count = r.u32().ok_or_else(truncated)?;
        let mut producers = BTreeMap::new();
        let mut ongoing = BTreeMap::new();
        for _ in 0..count {
            let pid = r.i64().ok_or_else(truncated)?;
            let mut entry = ProducerEntry::new();
            entry.epoch = r.i16().ok_or_else(truncated)?;
            entry.coordinator_epoch = r.i32().ok_or_else(truncated)?;
            entry.last_timestamp = r.i64().ok_or_else(truncated)?;
            entry.current_txn_first_offset = match r.i64().ok_or_else(truncated)? {
                -1 => None,
                first if first >= 0 => Some(first),
                other => return Err(bad(&format!("transaction start offset {other}"))),
            };
            let txn_start = if version >= 2 {
                r.i64().ok_or_else(truncated)?
            } else {
                entry.last_timestamp
            };
            if let Some(first) = entry.current_txn_first_offset {
                ongoing.insert(first, (pid, txn_start));
            }
            let batches = r.u8().ok_or_else(truncated)?;
            if batches as usize > NUM_BATCHES_TO_RETAIN {
                return Err(bad(&format!("producer {pid} has {batches} batches")));
            }
            for _ in 0..batches {
                entry.batches.push_back(BatchMetadata {
                    first_seq: r.i32().ok_or_else(truncated)?,
                    last_seq: r.i32().ok_or_else(truncated)?,
                    first_offset: r.i64().ok_or_else(truncated)?,
                    last_offset: r.i64().ok_or_else(truncated)?,
                    timestamp: r.i64().ok_or_else(truncated)?,
                });
            }
            // Written in id order; anything else is damage (and would not re-encode equal).
            if producers
                .last_key_value()
                .is_some_and(|(&last, _)| last >= pid)
            {
                return Err(bad(&format!("producer {pid} out of order")));
            }
            producers.insert(pid, entry);
        }
        if !r.buf.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(ProducerStateManager {
            producers,
            end_offset,
            ongoing,
            unreplicated: BTreeMap::new(),
        })
    }
}

/// Whether `next` is the sequence after `last`; sequences wrap from `i32::MAX` to 0, and
/// a producer with no retained batch (`last` = -1) must start at 0.
fn in_sequence(last: i32, next: i32) -> bool {
    next as i64 == last as i64 + 1 || (next == 0 && last == i32::MAX)
}

const SNAPSHOT_VERSION: u8 = 2;

/// Bounds-checked big-endian reads; `None` means the input ran out.
struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.buf.split_at_checked(N)?;
        self.buf = rest;
        head.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take::<1>()?[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::proptest_cases;
    use crate::log::batch::{batches, build_batch, Compression};
    use proptest::prelude::*;

    const T: i64 = 1_700_000_000_000;

    /// An appended batch header: `count` records from `base_offset`.
    fn hdr(pid: i64, epoch: i16, base_seq: i32, count: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: T,
            max_timestamp: T + base_offset,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: base_seq,
            record_count: count,
        }
    }

    fn oos(r: Result<SeqCheck, LogError>) -> bool {
        matches!(r, Err(LogError::OutOfOrderSequence(_)))
    }

    /// Producer 1, epoch 0, seven batches of two records: sequences 0..14, offsets 0..14.
    fn seven() -> ProducerStateManager {
        let mut s = ProducerStateManager::new();
        for i in 0..7 {
            let h = hdr(1, 0, i * 2, 2, i as i64 * 2);
            assert_eq!(s.check(&h).unwrap(), SeqCheck::Append);
            s.update(&h);
        }
        s
    }

    #[test]
    fn batches_without_producer_id_are_not_checked() {
        let s = seven();
        assert_eq!(s.check(&hdr(-1, -1, -1, 3, 0)).unwrap(), SeqCheck::Append);
    }

    #[test]
    fn unknown_producers_may_start_anywhere() {
        let s = seven();
        assert_eq!(s.check(&hdr(2, 0, 0, 1, 0)).unwrap(), SeqCheck::Append);
        assert_eq!(s.check(&hdr(2, 5, 1234, 1, 0)).unwrap(), SeqCheck::Append);
    }

    #[test]
    fn sequences_must_continue() {
        let s = seven();
        assert_eq!(s.check(&hdr(1, 0, 14, 3, 0)).unwrap(), SeqCheck::Append);
        assert!(oos(s.check(&hdr(1, 0, 15, 1, 0))));
        assert!(oos(s.check(&hdr(1, 0, 13, 1, 0))));
        // Overlapping a cached batch without matching it exactly is not a duplicate.
        assert!(oos(s.check(&hdr(1, 0, 12, 1, 0))));
    }

    #[test]
    fn each_of_the_last_five_batches_is_a_duplicate() {
        let s = seven();
        let retained: Vec<_> = s.batches(1).copied().collect();
        assert_eq!(retained.len(), NUM_BATCHES_TO_RETAIN);
        for i in 2..7 {
            let retry = hdr(1, 0, i * 2, 2, 999);
            assert_eq!(
                s.check(&retry).unwrap(),
                SeqCheck::Duplicate {
                    first_offset: i as i64 * 2,
                    last_offset: i as i64 * 2 + 1,
                    timestamp: T + i as i64 * 2,
                }
            );
        }
        // Older than the last five: Kafka answers OutOfOrderSequence.
        for i in 0..2 {
            assert!(oos(s.check(&hdr(1, 0, i * 2, 2, 999))));
        }
    }

    #[test]
    fn older_epochs_are_fenced() {
        let mut s = seven();
        s.update(&hdr(1, 3, 0, 1, 14));
        for (seq, count) in [(0, 1), (1, 1), (14, 1), (12, 2)] {
            assert!(matches!(
                s.check(&hdr(1, 2, seq, count, 0)),
                Err(LogError::InvalidProducerEpoch(_))
            ));
        }
    }

    #[test]
    fn a_new_epoch_starts_at_zero() {
        let mut s = seven();
        assert_eq!(s.check(&hdr(1, 1, 0, 2, 0)).unwrap(), SeqCheck::Append);
        assert!(oos(s.check(&hdr(1, 1, 14, 1, 0))));
        assert!(oos(s.check(&hdr(1, 1, 5, 1, 0))));
        s.update(&hdr(1, 1, 0, 2, 14));
        // The new epoch cleared the old batches: the old ranges are no duplicates now.
        assert_eq!(s.batches(1).count(), 1);
        assert!(oos(s.check(&hdr(1, 1, 12, 2, 0))));
        assert_eq!(
            s.check(&hdr(1, 1, 0, 2, 0)).unwrap(),
            SeqCheck::Duplicate {
                first_offset: 14,
                last_offset: 15,
                timestamp: T + 14
            }
        );
        assert_eq!(s.check(&hdr(1, 1, 2, 1, 0)).unwrap(), SeqCheck::Append);
    }

    #[test]
    fn a_producer_without_epoch_may_bump_at_any_sequence() {
        let mut s = ProducerStateManager::new();
        s.update(&hdr(4, NO_PRODUCER_EPOCH, 0, 1, 0));
        assert_eq!(s.check(&hdr(4, 0, 77, 1, 1)).unwrap(), SeqCheck::Append);
        assert_eq!(
            s.check(&hdr(4, NO_PRODUCER_EPOCH, 5, 1, 1)).unwrap(),
            SeqCheck::Append
        );
    }

    fn abort(coordinator_epoch: i32) -> TxnMarker {
        TxnMarker {
            commit: false,
            coordinator_epoch,
        }
    }

    /// A transactional data batch, and a marker, of `pid` at `offset`.
    fn txn_batch(pid: i64, offset: i64) -> BatchHeader {
        let mut h = hdr(pid, 0, 0, 1, offset);
        h.attributes = 0x10;
        h
    }
    fn marker_at(pid: i64, offset: i64) -> BatchHeader {
        let mut h = hdr(pid, 0, -1, 1, offset);
        h.attributes = 0x30;
        h
    }

    #[test]
    fn transactions_bound_the_last_stable_offset_until_their_marker_is_replicated() {
        let mut s = ProducerStateManager::new();
        assert_eq!(s.first_unstable_offset(), None);
        s.update(&hdr(1, 0, 0, 1, 0));
        s.update(&txn_batch(2, 1));
        s.update(&txn_batch(3, 2));
        s.update(&txn_batch(2, 3)); // same transaction: its first offset stays 1
        assert_eq!(s.first_unstable_offset(), Some(1));
        assert_eq!(s.ongoing().collect::<Vec<_>>(), [(2, 1), (3, 2)]);
        let commit = TxnMarker {
            commit: true,
            coordinator_epoch: 0,
        };
        // Producer 2 commits at 4, not yet replicated (high watermark 4).
        let done = s.complete(&marker_at(2, 4), &commit, 4).unwrap();
        assert_eq!(
            (done.first_offset, done.last_offset, done.aborted),
            (1, 4, false)
        );
        // Producer 3's transaction (from 2) is the oldest other undecided one.
        assert_eq!(done.last_stable_offset, 2);
        assert_eq!(s.first_unstable_offset(), Some(1));
        s.on_high_watermark(5);
        assert_eq!(s.first_unstable_offset(), Some(2));
        let done = s.complete(&marker_at(3, 5), &abort(0), 6).unwrap();
        assert!(done.aborted);
        assert_eq!(done.last_stable_offset, 6);
        assert_eq!(s.first_unstable_offset(), None);
        // A marker without an open transaction completes nothing.
        assert_eq!(s.complete(&marker_at(3, 6), &abort(0), 0), None);
        // Open transactions survive a snapshot; undecided-but-replicated ones need none.
        s.update(&txn_batch(7, 7));
        let back = ProducerStateManager::decode_snapshot(&s.encode_snapshot()).unwrap();
        assert_eq!(back.first_unstable_offset(), Some(7));
        assert_eq!(back, s);
    }

    #[test]
    fn markers_from_old_epochs_or_old_coordinators_are_refused() {
        let mut s = ProducerStateManager::new();
        s.update(&hdr(1, 3, 0, 1, 0));
        let mut marker = marker_at(1, 1);
        marker.producer_epoch = 3;
        s.complete(&marker, &abort(5), 0);
        assert!(matches!(
            s.check_marker(1, 2, &abort(5)),
            Err(LogError::InvalidProducerEpoch(_))
        ));
        assert!(matches!(
            s.check_marker(1, 3, &abort(4)),
            Err(LogError::CoordinatorFenced(_))
        ));
        assert!(s.check_marker(1, 3, &abort(5)).is_ok());
        assert!(s.check_marker(1, 4, &abort(6)).is_ok());
        assert!(s.check_marker(99, 0, &abort(0)).is_ok());
    }

    #[test]
    fn a_marker_with_a_new_epoch_resets_sequences() {
        let mut s = seven();
        let mut marker = hdr(1, 1, -1, 1, 14);
        marker.attributes = 0x30;
        s.complete(&marker, &abort(9), 0);
        assert_eq!(s.batches(1).count(), 0);
        let info = s.producers().next().unwrap();
        assert_eq!(
            (info.epoch, info.last_sequence, info.coordinator_epoch),
            (1, -1, 9)
        );
        assert!(oos(s.check(&hdr(1, 1, 3, 1, 0))));
        assert_eq!(s.check(&hdr(1, 1, 0, 1, 0)).unwrap(), SeqCheck::Append);
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut s = ProducerStateManager::new();
        s.update(&hdr(1, 0, i32::MAX - 1, 2, 0));
        assert_eq!(s.producers().next().unwrap().last_sequence, i32::MAX);
        assert_eq!(s.check(&hdr(1, 0, 0, 1, 2)).unwrap(), SeqCheck::Append);
        assert!(oos(s.check(&hdr(1, 0, 1, 1, 2))));
        // A batch that spans the wrap: MAX-1, MAX, 0, 1.
        let mut s = ProducerStateManager::new();
        s.update(&hdr(1, 0, i32::MAX - 1, 4, 0));
        assert_eq!(s.producers().next().unwrap().last_sequence, 1);
        assert_eq!(s.check(&hdr(1, 0, 2, 1, 4)).unwrap(), SeqCheck::Append);
        assert!(matches!(
            s.check(&hdr(1, 0, i32::MAX - 1, 4, 9)).unwrap(),
            SeqCheck::Duplicate {
                first_offset: 0,
                last_offset: 3,
                ..
            }
        ));
    }

    #[test]
    fn idle_producers_expire_unless_in_a_transaction() {
        let mut s = ProducerStateManager::new();
        s.update(&hdr(1, 0, 0, 1, 0)); // last timestamp T
        let mut txn = hdr(2, 0, 0, 1, 1); // last timestamp T + 1
        txn.attributes = 0x10;
        s.update(&txn);
        s.update(&hdr(3, 0, 0, 1, 100)); // last timestamp T + 100
        assert_eq!(s.expire(T + 50, 50), 1);
        let left: Vec<_> = s.producers().map(|p| p.producer_id).collect();
        assert_eq!(left, vec![2, 3]);
        assert_eq!(
            s.producers().next().unwrap().current_txn_start_offset,
            Some(1)
        );
        let mut marker = hdr(2, 0, -1, 1, 5);
        marker.attributes = 0x30;
        marker.max_timestamp = T + 1;
        s.complete(&marker, &abort(0), i64::MAX);
        assert_eq!(s.producers().next().unwrap().current_txn_start_offset, None);
        assert_eq!(s.expire(T + 1000, 50), 2);
        assert!(s.is_empty());
    }

    #[test]
    fn truncate_head_forgets_what_left_the_log() {
        let mut s = seven(); // retained batches cover offsets 4..14
        s.update(&hdr(2, 0, 0, 1, 14));
        s.truncate_head(9);
        let firsts: Vec<_> = s.batches(1).map(|b| b.first_offset).collect();
        assert_eq!(firsts, vec![8, 10, 12]);
        s.truncate_head(15);
        assert_eq!(s.len(), 0);
        // Forgotten: any sequence is welcome again.
        assert_eq!(s.check(&hdr(1, 0, 500, 1, 15)).unwrap(), SeqCheck::Append);
    }

    fn sample() -> ProducerStateManager {
        let mut s = seven();
        let mut txn = hdr(9, 2, 40, 3, 20);
        txn.attributes = 0x10;
        s.update(&txn);
        let mut marker = hdr(10, 1, -1, 1, 30);
        marker.attributes = 0x30;
        s.complete(&marker, &abort(4), i64::MAX);
        s.update(&hdr(-1, -1, -1, 5, 31));
        s
    }

    #[test]
    fn snapshots_round_trip() {
        let s = sample();
        assert_eq!(s.end_offset(), 36);
        let bytes = s.encode_snapshot();
        let back = ProducerStateManager::decode_snapshot(&bytes).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.encode_snapshot(), bytes);
        let empty = ProducerStateManager::new();
        assert_eq!(
            ProducerStateManager::decode_snapshot(&empty.encode_snapshot()).unwrap(),
            empty
        );
    }

    #[test]
    fn damaged_snapshots_are_errors() {
        let bytes = sample().encode_snapshot();
        for i in 0..bytes.len() {
            for mask in [0x01, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= mask;
                assert!(
                    ProducerStateManager::decode_snapshot(&bad).is_err(),
                    "byte {i}"
                );
            }
        }
        for n in 0..bytes.len() {
            assert!(ProducerStateManager::decode_snapshot(&bytes[..n]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(ProducerStateManager::decode_snapshot(&longer).is_err());
    }

    #[test]
    fn replaying_the_log_rebuilds_the_same_state() {
        let mut live = ProducerStateManager::new();
        let mut log = Vec::new();
        let mut offset = 0;
        for (i, (pid, epoch, seq)) in [(1, 0, 0), (2, 0, 0), (1, 0, 2), (1, 1, 0), (2, 0, 3)]
            .into_iter()
            .enumerate()
        {
            let count = if i % 2 == 0 { 2 } else { 3 };
            let records: Vec<_> = (0..count).map(|_| (Some(&b"k"[..]), None, T)).collect();
            let mut batch = build_batch(0, &records, Some((pid, epoch, seq)), Compression::None);
            let header = BatchHeader::parse(&batch).unwrap();
            assert_eq!(live.check(&header).unwrap(), SeqCheck::Append, "batch {i}");
            crate::log::batch::assign_offsets(&mut batch, offset, 0, None);
            offset += count as i64;
            live.update(&BatchHeader::parse(&batch).unwrap());
            log.extend_from_slice(&batch);
        }
        let mut rebuilt = ProducerStateManager::new();
        for item in batches(&log, true) {
            rebuilt.update(&item.unwrap().0);
        }
        assert_eq!(rebuilt, live);
        assert_eq!(rebuilt.end_offset(), offset);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(proptest_cases()))]

        #[test]
        fn snapshot_decode_never_panics(buf in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = ProducerStateManager::decode_snapshot(&buf);
            // With a valid version and CRC the body parser itself is exercised.
            let mut framed = vec![SNAPSHOT_VERSION];
            framed.extend_from_slice(&crc32c::crc32c(&buf).to_be_bytes());
            framed.extend_from_slice(&buf);
            if let Ok(s) = ProducerStateManager::decode_snapshot(&framed) {
                prop_assert_eq!(s.encode_snapshot(), framed);
            }
        }

        #[test]
        fn random_histories_round_trip(
            ops in prop::collection::vec((0i64..4, 0i16..3, 0i32..50, 1i32..4, any::<bool>()), 0..40)
        ) {
            let mut s = ProducerStateManager::new();
            let mut offset = 0;
            for (pid, epoch, seq, count, txn) in ops {
                let mut h = hdr(pid, epoch, seq, count, offset);
                if txn {
                    h.attributes = 0x10;
                }
                let _ = s.check(&h);
                s.update(&h);
                offset += count as i64;
            }
            let back = ProducerStateManager::decode_snapshot(&s.encode_snapshot()).unwrap();
            prop_assert_eq!(back, s);
        }
    }
}

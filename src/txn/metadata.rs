//! One transactional id's state as the coordinator keeps it and writes it to
//! `__transaction_state` (Kafka's TransactionMetadata), and the states a transaction moves
//! through.

use std::collections::BTreeSet;

/// Kafka's transaction states, with the ids `__transaction_state` stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxnState {
    /// No transaction since the last InitProducerId.
    Empty,
    /// Partitions were added: records may be in their logs.
    Ongoing,
    /// EndTxn(commit) is durable: markers are being written.
    PrepareCommit,
    /// EndTxn(abort), a timeout or a fencing InitProducerId is durable: markers are being
    /// written.
    PrepareAbort,
    /// Every COMMIT marker is written.
    CompleteCommit,
    /// Every ABORT marker is written.
    CompleteAbort,
    /// The transactional id expired; its tombstone is written.
    Dead,
    /// Kafka's transient fencing state; this coordinator moves straight to PrepareAbort
    /// with the bumped epoch instead, but reads it if a Kafka log holds it.
    PrepareEpochFence,
}

impl TxnState {
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TxnState> {
        Some(match id {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions use (Kafka's `stateName`).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Markers are being written: requests for the id wait (CONCURRENT_TRANSACTIONS).
    pub fn is_preparing(self) -> bool {
        matches!(
            self,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        )
    }
}

/// A topic partition of a transaction.
pub type TopicPartition = (String, i32);

/// What the coordinator knows of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id of the last completed transaction before a rotation (-1: none).
    pub prev_producer_id: i64,
    /// The producer id handed out next, during a rotation (-1: none).
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump: a retried InitProducerId (KIP-360) that names it
    /// gets the current epoch again instead of a second bump.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<TopicPartition>,
    /// When the current transaction started (-1: none).
    pub start_ms: i64,
    pub update_ms: i64,
    /// The transaction version the client uses (0 or 1: Kafka's TV1 protocol).
    pub client_version: i16,
}

/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH`.
pub const NO_EPOCH: i16 = -1;

impl TxnMetadata {
    /// A new transactional id, before its first epoch.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now: i64) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            prev_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: NO_EPOCH,
            last_producer_epoch: NO_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            update_ms: now,
            client_version: 0,
        }
    }

    /// No bump is left for this producer id: the next InitProducerId rotates to a new one.
    pub fn epoch_exhausted(&self) -> bool {
        self.producer_epoch >= i16::MAX - 1
    }

    /// The partitions grouped by topic, topics and partitions in order.
    pub fn partitions_by_topic(&self) -> Vec<(String, Vec<i32>)> {
        let mut out: Vec<(String, Vec<i32>)> = Vec::new();
        for (t, p) in &self.partitions {
            match out.last_mut() {
                Some((last, ps)) if last == t => ps.push(*p),
                _ => out.push((t.clone(), vec![*p])),
            }
        }
        out
    }
}

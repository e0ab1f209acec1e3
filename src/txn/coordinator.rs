//! The transaction coordinator of one `__transaction_state` partition as a pure state
//! machine (Kafka's TransactionCoordinator and TransactionStateManager rules, transaction
//! version 1): every call takes the time and returns its answer with an [`Output`], the
//! records to write and the markers to send. The I/O shell writes the records, and only
//! once they are durable answers the client and starts the markers; when every marker is
//! written it calls [`TxnCoordinator::markers_written`].
//!
//! Between a state change and its record reaching the log, other requests for the id see
//! the new state (PrepareCommit, PrepareAbort: CONCURRENT_TRANSACTIONS), as they see
//! Kafka's pending state. If the write fails, the shell reloads the partition.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;

use super::metadata::{TopicPartition, TxnMetadata, TxnState, NO_EPOCH};
use super::records::TxnRecord;

/// The coordinator's settings.
#[derive(Debug, Clone, Copy)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
}

/// Markers to write for one ended transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerJob {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
    pub partitions: Vec<TopicPartition>,
}

/// What a call asks the shell to do.
#[derive(Debug, Default)]
pub struct Output {
    /// Written in order before the call's answer goes out.
    pub records: Vec<TxnRecord>,
    /// Started once the records are durable.
    pub markers: Vec<MarkerJob>,
}

/// An InitProducerId with a transactional id.
#[derive(Debug, Clone)]
pub struct InitProducerId {
    pub transactional_id: String,
    pub timeout_ms: i32,
    /// KIP-360: the producer id and epoch the client had (a retry or a recovery).
    pub expected: Option<(i64, i16)>,
    /// A producer id the shell allocated, used if the id is new or its epochs ran out.
    pub fresh_producer_id: i64,
}

/// The coordinator of the transactional ids of one `__transaction_state` partition.
#[derive(Debug)]
pub struct TxnCoordinator {
    config: TxnConfig,
    /// The partition's leader epoch: markers carry it, so a leader refuses those of a
    /// coordinator that lost the partition.
    coordinator_epoch: i32,
    txns: BTreeMap<String, TxnMetadata>,
}

type Answer<T> = (Result<T, ResponseError>, Output);

fn fail<T>(e: ResponseError) -> Answer<T> {
    (Err(e), Output::default())
}

impl TxnCoordinator {
    pub fn new(config: TxnConfig, coordinator_epoch: i32) -> Self {
        TxnCoordinator {
            config,
            coordinator_epoch,
            txns: BTreeMap::new(),
        }
    }

    pub fn coordinator_epoch(&self) -> i32 {
        self.coordinator_epoch
    }

    pub fn get(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.txns.get(transactional_id)
    }

    pub fn all(&self) -> impl Iterator<Item = &TxnMetadata> {
        self.txns.values()
    }

    /// Apply a record read back from the log (loading the partition).
    pub fn replay(&mut self, r: &TxnRecord) {
        match &r.value {
            Some(m) => {
                self.txns.insert(r.transactional_id.clone(), m.clone());
            }
            None => {
                self.txns.remove(&r.transactional_id);
            }
        }
    }

    /// After loading: the transactions whose markers were not all written before the
    /// previous coordinator stopped. Their markers are sent again (a leader that has one
    /// already writes a second, which ends nothing).
    pub fn pending_markers(&self) -> Vec<MarkerJob> {
        self.txns
            .values()
            .filter(|m| matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort))
            .map(|m| self.job(m, m.state == TxnState::PrepareCommit))
            .collect()
    }

    fn job(&self, m: &TxnMetadata, commit: bool) -> MarkerJob {
        MarkerJob {
            transactional_id: m.transactional_id.clone(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            commit,
            coordinator_epoch: self.coordinator_epoch,
            partitions: m.partitions.iter().cloned().collect(),
        }
    }

    /// Store `m` and the record saying so.
    fn write(&mut self, out: &mut Output, m: TxnMetadata) {
        out.records.push(TxnRecord {
            transactional_id: m.transactional_id.clone(),
            value: Some(m.clone()),
        });
        self.txns.insert(m.transactional_id.clone(), m);
    }

    /// InitProducerId: the producer id and epoch the client uses from now on. A new id
    /// starts at epoch 0; an idle one's epoch is bumped (fencing the previous instance),
    /// or its producer id rotated once the epochs run out. An open transaction is aborted
    /// first with a bumped epoch and the client told to retry (CONCURRENT_TRANSACTIONS).
    pub fn init_producer_id(&mut self, req: &InitProducerId, now: i64) -> Answer<(i64, i16)> {
        if req.timeout_ms <= 0 || req.timeout_ms > self.config.max_timeout_ms {
            return fail(ResponseError::InvalidTransactionTimeout);
        }
        let mut m = match self.txns.get(&req.transactional_id) {
            Some(m) => m.clone(),
            None => TxnMetadata::new(
                &req.transactional_id,
                req.fresh_producer_id,
                req.timeout_ms,
                now,
            ),
        };
        if let Some((pid, epoch)) = req.expected {
            // KIP-360: the client's producer id must be this id's, or the one before a
            // rotation whose epochs it exhausted (a retry that missed the answer).
            let valid = m.producer_epoch == NO_EPOCH
                || pid == m.producer_id
                || (pid == m.prev_producer_id && epoch >= i16::MAX - 1);
            if !valid {
                return fail(ResponseError::ProducerFenced);
            }
        }
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                fail(ResponseError::ConcurrentTransactions)
            }
            TxnState::Ongoing => {
                // Fence the current producer: abort its transaction with a bumped epoch
                // (never handed out; the client's retry bumps again).
                let mut out = Output::default();
                if !m.epoch_exhausted() {
                    m.last_producer_epoch = m.producer_epoch;
                    m.producer_epoch += 1;
                }
                self.prepare_end(&mut out, m, false, now);
                (Err(ResponseError::ConcurrentTransactions), out)
            }
            TxnState::Empty
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort
            | TxnState::Dead => {
                let expected_epoch = req.expected.map(|(_, e)| e);
                if m.epoch_exhausted() && expected_epoch.is_none_or(|e| e == m.producer_epoch) {
                    m.last_producer_epoch = if expected_epoch.is_some() {
                        m.producer_epoch
                    } else {
                        NO_EPOCH
                    };
                    m.prev_producer_id = m.producer_id;
                    m.producer_id = req.fresh_producer_id;
                    m.producer_epoch = 0;
                } else {
                    match expected_epoch {
                        None => {
                            m.last_producer_epoch = NO_EPOCH;
                            m.producer_epoch += 1;
                        }
                        Some(e) if m.producer_epoch == NO_EPOCH || e == m.producer_epoch => {
                            m.last_producer_epoch = m.producer_epoch;
                            m.producer_epoch += 1;
                        }
                        // A retry of a bump the client never heard of: the same answer.
                        Some(e) if e == m.last_producer_epoch => {}
                        Some(_) => return fail(ResponseError::ProducerFenced),
                    }
                }
                m.state = TxnState::Empty;
                m.partitions.clear();
                m.timeout_ms = req.timeout_ms;
                m.start_ms = -1;
                m.update_ms = now;
                let answer = (m.producer_id, m.producer_epoch);
                let mut out = Output::default();
                self.write(&mut out, m);
                (Ok(answer), out)
            }
        }
    }

    /// Checks that a client request comes from the id's current producer.
    fn current(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<&TxnMetadata, ResponseError> {
        let m = self
            .txns
            .get(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if m.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if m.producer_epoch != epoch {
            return Err(ResponseError::ProducerFenced);
        }
        Ok(m)
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's `__consumer_offsets`
    /// partition): the transaction becomes Ongoing with these partitions.
    pub fn add_partitions(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
        now: i64,
    ) -> Answer<()> {
        let m = match self.current(transactional_id, producer_id, epoch) {
            Ok(m) => m,
            Err(e) => return fail(e),
        };
        if m.state.is_preparing() {
            return fail(ResponseError::ConcurrentTransactions);
        }
        if m.state == TxnState::Ongoing && partitions.iter().all(|p| m.partitions.contains(p)) {
            return (Ok(()), Output::default());
        }
        let mut m = m.clone();
        if m.state != TxnState::Ongoing {
            m.start_ms = now;
            m.partitions.clear();
        }
        m.state = TxnState::Ongoing;
        m.partitions.extend(partitions.iter().cloned());
        m.update_ms = now;
        let mut out = Output::default();
        self.write(&mut out, m);
        (Ok(()), out)
    }

    /// AddPartitionsToTxn v4+ from a broker (verify only): whether each partition is in
    /// the producer's ongoing transaction (KIP-890 part 1), changing nothing.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
    ) -> Vec<(TopicPartition, Option<ResponseError>)> {
        let verdict = |p: &TopicPartition| match self.current(transactional_id, producer_id, epoch)
        {
            Err(e) => Some(e),
            Ok(m) if m.state == TxnState::Ongoing && m.partitions.contains(p) => None,
            Ok(_) => Some(ResponseError::InvalidTxnState),
        };
        partitions.iter().map(|p| (p.clone(), verdict(p))).collect()
    }

    /// EndTxn from the client: commit or abort the ongoing transaction. A retry of an
    /// end already done succeeds; one still writing its markers waits
    /// (CONCURRENT_TRANSACTIONS); the opposite outcome of a decided one, or an end with no
    /// transaction, is INVALID_TXN_STATE.
    pub fn end_txn(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now: i64,
    ) -> Answer<()> {
        let m = match self.current(transactional_id, producer_id, epoch) {
            Ok(m) => m.clone(),
            Err(e) => return fail(e),
        };
        match (m.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut out = Output::default();
                self.prepare_end(&mut out, m, commit, now);
                (Ok(()), out)
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                (Ok(()), Output::default())
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                fail(ResponseError::ConcurrentTransactions)
            }
            (TxnState::PrepareEpochFence, _) => fail(ResponseError::ConcurrentTransactions),
            _ => fail(ResponseError::InvalidTxnState),
        }
    }

    /// PrepareCommit or PrepareAbort for `m`, and its markers (sent once durable).
    fn prepare_end(&mut self, out: &mut Output, mut m: TxnMetadata, commit: bool, now: i64) {
        m.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        m.update_ms = now;
        out.markers.push(self.job(&m, commit));
        self.write(out, m);
    }

    /// Every marker of `job` is written: the transaction is complete, unless the id
    /// moved on meanwhile (a newer producer epoch, or it was reloaded elsewhere).
    pub fn markers_written(&mut self, job: &MarkerJob, now: i64) -> Output {
        let mut out = Output::default();
        let Some(m) = self.txns.get(&job.transactional_id) else {
            return out;
        };
        let preparing = if job.commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        if m.producer_id != job.producer_id
            || m.producer_epoch != job.producer_epoch
            || m.state != preparing
        {
            return out;
        }
        let mut m = m.clone();
        m.state = if job.commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        m.partitions.clear();
        m.update_ms = now;
        self.write(&mut out, m);
        out
    }

    /// A marker's partition is gone (its topic was deleted): it leaves the transaction.
    pub fn drop_partition(&mut self, transactional_id: &str, partition: &TopicPartition) {
        if let Some(m) = self.txns.get_mut(transactional_id) {
            m.partitions.remove(partition);
        }
    }

    /// Timers: an Ongoing transaction past its timeout is aborted with a bumped epoch
    /// (the producer is fenced, as in Kafka); an idle id past
    /// `transactional.id.expiration.ms` is removed with a tombstone.
    pub fn tick(&mut self, now: i64) -> Output {
        let mut out = Output::default();
        let timed_out: Vec<TxnMetadata> = self
            .txns
            .values()
            .filter(|m| {
                m.state == TxnState::Ongoing && now.saturating_sub(m.start_ms) > m.timeout_ms as i64
            })
            .cloned()
            .collect();
        for mut m in timed_out {
            tracing::info!(transactional_id = %m.transactional_id, producer_id = m.producer_id,
                epoch = m.producer_epoch, timeout_ms = m.timeout_ms,
                "aborting a transaction that timed out");
            if !m.epoch_exhausted() {
                m.last_producer_epoch = m.producer_epoch;
                m.producer_epoch += 1;
            }
            self.prepare_end(&mut out, m, false, now);
        }
        let expired: Vec<String> = self
            .txns
            .values()
            .filter(|m| {
                matches!(
                    m.state,
                    TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                ) && now.saturating_sub(m.update_ms) >= self.config.id_expiration_ms
            })
            .map(|m| m.transactional_id.clone())
            .collect();
        for id in expired {
            self.txns.remove(&id);
            out.records.push(TxnRecord {
                transactional_id: id,
                value: None,
            });
        }
        out
    }

    /// When [`tick`](Self::tick) next has something to do.
    pub fn next_deadline(&self) -> Option<i64> {
        self.txns
            .values()
            .filter_map(|m| match m.state {
                TxnState::Ongoing => Some(m.start_ms.saturating_add(m.timeout_ms as i64) + 1),
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                    Some(m.update_ms.saturating_add(self.config.id_expiration_ms))
                }
                _ => None,
            })
            .min()
    }
}

//! Building v2 batches (kafka-protocol's encoder, an implementation independent of the
//! parser here): tests, benchmarks and the group coordinator's records.

use super::*;

/// `(key, value, timestamp)` of one record handed to [`build_batch`].
pub type TestRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, i64);
pub(super) type OwnedRecord = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

/// Builds valid v2 batches with any codec: the group coordinator's records
/// ([`Self::try_build`]), tests and benchmarks ([`Self::build`]). Encoding goes through
/// kafka-protocol's encoder, an implementation independent of the parser here.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    base_offset: i64,
    producer: Option<(i64, i16, i32)>,
    compression: Compression,
    transactional: bool,
    control: bool,
    leader_epoch: i32,
    records: Vec<OwnedRecord>,
}

impl BatchBuilder {
    pub fn new(base_offset: i64) -> Self {
        BatchBuilder {
            base_offset,
            producer: None,
            compression: Compression::None,
            transactional: false,
            control: false,
            leader_epoch: -1,
            records: Vec::new(),
        }
    }
    /// Producer id, epoch and base sequence of an idempotent producer.
    pub fn producer(mut self, producer_id: i64, epoch: i16, base_sequence: i32) -> Self {
        self.producer = Some((producer_id, epoch, base_sequence));
        self
    }
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }
    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }
    pub fn control(mut self, control: bool) -> Self {
        self.control = control;
        self
    }
    pub fn leader_epoch(mut self, epoch: i32) -> Self {
        self.leader_epoch = epoch;
        self
    }
    pub fn record(mut self, key: Option<&[u8]>, value: Option<&[u8]>, timestamp: i64) -> Self {
        self.records.push((
            key.map(<[u8]>::to_vec),
            value.map(<[u8]>::to_vec),
            timestamp,
        ));
        self
    }
    /// [`Self::try_build`] for tests and benchmarks, whose input cannot fail to encode:
    /// panics if it does.
    pub fn build(&self) -> Vec<u8> {
        self.try_build().expect("the batch encodes")
    }

    /// The encoded batch, or why the encoder refused it. At least one record is needed;
    /// an empty builder gives no bytes.
    pub fn try_build(&self) -> Result<Vec<u8>, LogError> {
        use kafka_protocol::records::{
            Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let (producer_id, producer_epoch, base_sequence) = self.producer.unwrap_or((-1, -1, -1));
        let records: Vec<Record> = self
            .records
            .iter()
            .enumerate()
            .map(|(i, (key, value, timestamp))| Record {
                transactional: self.transactional,
                control: self.control,
                delete_horizon: false,
                partition_leader_epoch: self.leader_epoch,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: self.base_offset + i as i64,
                // The encoder starts a new batch whenever offset - sequence changes.
                sequence: base_sequence.wrapping_add(i as i32),
                timestamp: *timestamp,
                key: key.clone().map(Into::into),
                value: value.clone().map(Into::into),
                headers: Default::default(),
            })
            .collect();
        let mut out = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut out,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: self.compression,
            },
        )
        .map_err(|e| LogError::InvalidRecord(format!("cannot encode the batch: {e}")))?;
        Ok(out.to_vec())
    }
}

/// One-call form of [`BatchBuilder`] for tests: records are `(key, value, timestamp)`,
/// `producer` is `(producer id, epoch, base sequence)`.
pub fn build_batch(
    base_offset: i64,
    records: &[TestRecord<'_>],
    producer: Option<(i64, i16, i32)>,
    compression: Compression,
) -> Vec<u8> {
    let mut builder = BatchBuilder::new(base_offset).compression(compression);
    if let Some((pid, epoch, seq)) = producer {
        builder = builder.producer(pid, epoch, seq);
    }
    for &(key, value, ts) in records {
        builder = builder.record(key, value, ts);
    }
    builder.build()
}

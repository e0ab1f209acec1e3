//! The byte format of `__transaction_state` records, Kafka's: the key is
//! TransactionLogKey v0 (version i16 = 0, transactional id as an i16-length string); the
//! value is TransactionLogValue v1 (flexible: producer id, producer epoch, timeout,
//! state, the partitions by topic — null when Empty —, last update and start
//! timestamps, and the tagged fields previous producer id (0), next producer id (1) and
//! client transaction version (2), written only when not their defaults). Value v0
//! (non-flexible, no tagged fields) is read too. A tombstone (null value) ends an
//! expired transactional id.

use std::collections::BTreeSet;

use bytes::{BufMut, BytesMut};

use super::metadata::{TxnMetadata, TxnState};
use crate::protocol::flex::{FlexError, FlexReader, FlexWriter};

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 1;

/// One record: the transactional id and its state (`None`: the id expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub transactional_id: String,
    pub value: Option<TxnMetadata>,
}

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable __transaction_state record: {0}")]
pub struct RecordError(pub String);

impl From<FlexError> for RecordError {
    fn from(e: FlexError) -> Self {
        RecordError(e.0)
    }
}

fn err(msg: impl Into<String>) -> RecordError {
    RecordError(msg.into())
}

/// Key and value bytes (value `None`: a tombstone).
pub fn encode(r: &TxnRecord) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut key = BytesMut::new();
    key.put_i16(KEY_VERSION);
    let id = r.transactional_id.as_bytes();
    let id = &id[..id.len().min(i16::MAX as usize)];
    key.put_i16(id.len() as i16);
    key.put_slice(id);
    (key.to_vec(), r.value.as_ref().map(encode_value))
}

fn encode_value(m: &TxnMetadata) -> Vec<u8> {
    let mut w = FlexWriter::new(VALUE_VERSION);
    w.i64(m.producer_id);
    w.i16(m.producer_epoch);
    w.i32(m.timeout_ms);
    w.i8(m.state.id());
    if m.state == TxnState::Empty {
        w.null();
    } else {
        let topics = m.partitions_by_topic();
        w.len(topics.len());
        for (topic, ps) in topics {
            w.string(&topic);
            w.len(ps.len());
            for p in ps {
                w.i32(p);
            }
            w.tags();
        }
    }
    w.i64(m.update_ms);
    w.i64(m.start_ms);
    if m.prev_producer_id != -1 {
        w.tagged(0, m.prev_producer_id.to_be_bytes().to_vec());
    }
    if m.next_producer_id != -1 {
        w.tagged(1, m.next_producer_id.to_be_bytes().to_vec());
    }
    if m.client_version != 0 {
        w.tagged(2, m.client_version.to_be_bytes().to_vec());
    }
    w.finish()
}

/// The record of a stored key and value. A key of another version is `Ok(None)`:
/// skipped, as Kafka skips record types it does not know.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<TxnRecord>, RecordError> {
    let (version, rest) = key
        .split_at_checked(2)
        .ok_or_else(|| err("key shorter than its version"))?;
    if i16::from_be_bytes([version[0], version[1]]) != KEY_VERSION {
        return Ok(None);
    }
    let (len, id) = rest
        .split_at_checked(2)
        .ok_or_else(|| err("key without a transactional id"))?;
    let len = i16::from_be_bytes([len[0], len[1]]);
    if len < 0 || id.len() != len as usize {
        return Err(err("transactional id length does not match the key"));
    }
    let transactional_id =
        String::from_utf8(id.to_vec()).map_err(|_| err("transactional id is not UTF-8"))?;
    let value = value
        .map(|v| decode_value(&transactional_id, v))
        .transpose()?;
    Ok(Some(TxnRecord {
        transactional_id,
        value,
    }))
}

fn decode_value(id: &str, bytes: &[u8]) -> Result<TxnMetadata, RecordError> {
    let (version, mut r) = FlexReader::new(bytes)?;
    let flexible = match version {
        0 => false,
        1 => true,
        v => return Err(err(format!("value version {v} is not readable"))),
    };
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state_id = r.i8()?;
    let state =
        TxnState::from_id(state_id).ok_or_else(|| err(format!("unknown state {state_id}")))?;
    let mut partitions = BTreeSet::new();
    let topics = if flexible {
        r.compact()?
    } else {
        match r.i32()? {
            n if n < 0 => None,
            n => Some(n as usize),
        }
    };
    for _ in 0..topics.unwrap_or(0) {
        let topic = if flexible {
            r.string()?
        } else {
            legacy_string(&mut r)?
        };
        let count = if flexible {
            r.count()?
        } else {
            legacy_len(&mut r)?
        };
        for _ in 0..count {
            partitions.insert((topic.clone(), r.i32()?));
        }
        if flexible {
            r.tags()?;
        }
    }
    let update_ms = r.i64()?;
    let start_ms = r.i64()?;
    let mut m = TxnMetadata {
        transactional_id: id.to_string(),
        producer_id,
        prev_producer_id: -1,
        next_producer_id: -1,
        producer_epoch,
        last_producer_epoch: super::metadata::NO_EPOCH,
        timeout_ms,
        state,
        partitions,
        start_ms,
        update_ms,
        client_version: 0,
    };
    if flexible {
        for (tag, bytes) in r.tagged()? {
            match (tag, bytes.len()) {
                (0, 8) => {
                    m.prev_producer_id = i64::from_be_bytes(bytes.try_into().unwrap_or([0xff; 8]))
                }
                (1, 8) => {
                    m.next_producer_id = i64::from_be_bytes(bytes.try_into().unwrap_or([0xff; 8]))
                }
                (2, 2) => m.client_version = i16::from_be_bytes([bytes[0], bytes[1]]),
                (0..=2, n) => return Err(err(format!("tagged field {tag} of {n} bytes"))),
                // Fields of later Kafka versions are kept by Kafka and ignored here.
                _ => {}
            }
        }
    }
    r.finish()?;
    Ok(m)
}

/// A v0 (non-flexible) string: i16 length.
fn legacy_string(r: &mut FlexReader) -> Result<String, RecordError> {
    let len = r.i16()?;
    if len < 0 {
        return Err(err("null topic"));
    }
    String::from_utf8(r.raw(len as usize)?.to_vec()).map_err(|_| err("topic is not UTF-8"))
}

/// A v0 (non-flexible) array length: i32.
fn legacy_len(r: &mut FlexReader) -> Result<usize, RecordError> {
    let n = r.i32()?;
    usize::try_from(n).map_err(|_| err("negative partition count"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(state: TxnState) -> TxnMetadata {
        let mut m = TxnMetadata::new("app-1", 4000, 60_000, 1_700_000_000_000);
        m.producer_epoch = 3;
        m.state = state;
        if state != TxnState::Empty {
            m.partitions.insert(("orders".into(), 2));
            m.partitions.insert(("orders".into(), 0));
            m.partitions.insert(("__consumer_offsets".into(), 7));
            m.start_ms = 1_700_000_000_500;
        }
        m
    }

    #[test]
    fn records_round_trip() {
        for state in [
            TxnState::Empty,
            TxnState::Ongoing,
            TxnState::PrepareCommit,
            TxnState::CompleteAbort,
        ] {
            let r = TxnRecord {
                transactional_id: "app-1".into(),
                value: Some(sample(state)),
            };
            let (k, v) = encode(&r);
            assert_eq!(decode(&k, v.as_deref()).unwrap(), Some(r));
        }
        let mut rotated = sample(TxnState::Ongoing);
        rotated.prev_producer_id = 3999;
        rotated.next_producer_id = 4001;
        rotated.client_version = 2;
        let r = TxnRecord {
            transactional_id: "app-1".into(),
            value: Some(rotated),
        };
        let (k, v) = encode(&r);
        assert_eq!(decode(&k, v.as_deref()).unwrap(), Some(r));
        let tomb = TxnRecord {
            transactional_id: "gone".into(),
            value: None,
        };
        let (k, v) = encode(&tomb);
        assert_eq!(v, None);
        assert_eq!(decode(&k, None).unwrap(), Some(tomb));
    }

    #[test]
    fn kafkas_layout_and_v0_values_are_read() {
        // Key: version 0, then the id as an i16-length string.
        let (k, v) = encode(&TxnRecord {
            transactional_id: "t".into(),
            value: Some(sample(TxnState::Empty)),
        });
        assert_eq!(k, [0, 0, 0, 1, b't']);
        // Value v1: version, producer id, epoch, timeout, state, null partitions (0),
        // two timestamps, no tagged fields.
        let v = v.unwrap();
        assert_eq!(&v[..2], &[0, 1]);
        assert_eq!(v.len(), 2 + 8 + 2 + 4 + 1 + 1 + 8 + 8 + 1);
        // The same state as value v0.
        let mut v0 = BytesMut::new();
        v0.put_i16(0);
        v0.put_i64(4000);
        v0.put_i16(3);
        v0.put_i32(60_000);
        v0.put_i8(1);
        v0.put_i32(1);
        v0.put_i16(6);
        v0.put_slice(b"orders");
        v0.put_i32(1);
        v0.put_i32(5);
        v0.put_i64(10);
        v0.put_i64(9);
        let m = decode(&k, Some(&v0)).unwrap().unwrap().value.unwrap();
        assert_eq!(m.state, TxnState::Ongoing);
        assert_eq!(m.partitions_by_topic(), [("orders".to_string(), vec![5])]);
        assert_eq!((m.update_ms, m.start_ms), (10, 9));
    }

    #[test]
    fn damaged_records_are_errors_never_panics() {
        let (k, v) = encode(&TxnRecord {
            transactional_id: "app".into(),
            value: Some(sample(TxnState::Ongoing)),
        });
        let v = v.unwrap();
        for cut in 0..v.len() {
            assert!(decode(&k, Some(&v[..cut])).is_err(), "cut at {cut}");
        }
        assert!(decode(&k[..3], None).is_err());
        assert_eq!(decode(&[0, 5, 0, 0], None).unwrap(), None);
        let mut bad_state = v.clone();
        bad_state[16] = 42;
        assert!(decode(&k, Some(&bad_state)).is_err());
    }
}

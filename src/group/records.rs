//! The byte format of `__consumer_offsets` records: Kafka's key and value schemas, so the
//! topic reads the same as Kafka's (`kafka-console-consumer --formatter` style tools and
//! anyone replaying it see familiar records).
//!
//! Keys start with a version that names the record type: 0 and 1 are OffsetCommitKey
//! (group, topic, partition), 2 is GroupMetadataKey (group), 3–8 the consumer (KIP-848)
//! group records (their format is in `consumer_records`). Values start with their
//! own schema version. We write OffsetCommitValue v3 (v1 when the commit carries an
//! explicit expiry, which only v1 can hold) and GroupMetadataValue v3, and read every
//! older non-flexible version. A tombstone is a null value.
//!
//! Decoding reads bytes this broker wrote and CRC-checked on the way back in, but it
//! still treats them as untrusted: every length is checked against what remains and
//! nothing is preallocated from a length field.

use bytes::{BufMut, BytesMut};

use super::offsets::OffsetValue;
use super::types::{GroupMetadataValue, MemberMetadataValue, Record};

const OFFSET_KEY_V0: i16 = 0;
const OFFSET_KEY_V1: i16 = 1;
const GROUP_KEY: i16 = 2;

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable __consumer_offsets record: {0}")]
pub struct RecordError(pub String);

fn err(msg: impl Into<String>) -> RecordError {
    RecordError(msg.into())
}

/// A record as key and value bytes (value `None` is a tombstone).
pub fn encode(record: &Record) -> (Vec<u8>, Option<Vec<u8>>) {
    if let Some(kv) = super::consumer_records::encode(record) {
        return kv;
    }
    match record {
        Record::Offset {
            group_id,
            topic,
            partition,
            value,
        } => {
            let mut key = BytesMut::new();
            key.put_i16(OFFSET_KEY_V1);
            put_string(&mut key, group_id);
            put_string(&mut key, topic);
            key.put_i32(*partition);
            (key.to_vec(), value.as_ref().map(encode_offset_value))
        }
        Record::Group { group_id, value } => {
            let mut key = BytesMut::new();
            key.put_i16(GROUP_KEY);
            put_string(&mut key, group_id);
            (key.to_vec(), value.as_ref().map(encode_group_value))
        }
        // Encoded above.
        _ => unreachable!("consumer-group records are encoded by consumer_records"),
    }
}

/// The record a stored key and value describe. Unknown key versions (record types of
/// features we do not have, e.g. transactions' pending offsets) are `Ok(None)`: skipped,
/// as Kafka skips types it does not know.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<Record>, RecordError> {
    let mut k = Reader(key);
    match k.i16()? {
        OFFSET_KEY_V0 | OFFSET_KEY_V1 => {
            let group_id = k.string()?;
            let topic = k.string()?;
            let partition = k.i32()?;
            let value = value.map(decode_offset_value).transpose()?;
            Ok(Some(Record::Offset {
                group_id,
                topic,
                partition,
                value,
            }))
        }
        GROUP_KEY => {
            let group_id = k.string()?;
            let value = value.map(decode_group_value).transpose()?;
            Ok(Some(Record::Group { group_id, value }))
        }
        kind @ 3..=8 => super::consumer_records::decode(kind, k.0, value).map(Some),
        _ => Ok(None),
    }
}

fn encode_offset_value(v: &OffsetValue) -> Vec<u8> {
    let mut b = BytesMut::new();
    match v.expire_timestamp_ms {
        Some(expire) => {
            b.put_i16(1);
            b.put_i64(v.offset);
            put_string(&mut b, &v.metadata);
            b.put_i64(v.commit_timestamp_ms as i64);
            b.put_i64(expire as i64);
        }
        None => {
            b.put_i16(3);
            b.put_i64(v.offset);
            b.put_i32(v.leader_epoch);
            put_string(&mut b, &v.metadata);
            b.put_i64(v.commit_timestamp_ms as i64);
        }
    }
    b.to_vec()
}

fn decode_offset_value(bytes: &[u8]) -> Result<OffsetValue, RecordError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?.max(0) as u64;
    let expire_timestamp_ms = match version {
        1 => Some(r.i64()?.max(0) as u64),
        0 | 2 | 3 => None,
        v => {
            return Err(err(format!(
                "OffsetCommitValue version {v} is not readable"
            )))
        }
    };
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

fn encode_group_value(v: &GroupMetadataValue) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i16(3);
    put_string(&mut b, &v.protocol_type);
    b.put_i32(v.generation_id);
    put_nullable_string(&mut b, v.protocol_name.as_deref());
    put_nullable_string(&mut b, v.leader.as_deref());
    b.put_i64(v.current_state_timestamp_ms as i64);
    b.put_i32(v.members.len() as i32);
    for m in &v.members {
        put_string(&mut b, &m.member_id);
        put_nullable_string(&mut b, m.group_instance_id.as_deref());
        put_string(&mut b, &m.client_id);
        put_string(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.to_vec()
}

fn decode_group_value(bytes: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(err(format!(
            "GroupMetadataValue version {version} is not readable"
        )));
    }
    let protocol_type = r.string()?;
    let generation_id = r.i32()?;
    let protocol_name = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let current_state_timestamp_ms = if version >= 2 {
        r.i64()?.max(0) as u64
    } else {
        0
    };
    let count = r.i32()?;
    if count < 0 {
        return Err(err(format!("negative member count {count}")));
    }
    let mut members = Vec::new();
    for _ in 0..count {
        let member_id = r.string()?;
        let group_instance_id = if version >= 3 {
            r.nullable_string()?
        } else {
            None
        };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let rebalance_timeout_ms = if version >= 1 { Some(r.i32()?) } else { None };
        let session_timeout_ms = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        members.push(MemberMetadataValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: rebalance_timeout_ms.unwrap_or(session_timeout_ms),
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupMetadataValue {
        protocol_type,
        generation_id,
        protocol_name,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

pub(super) fn put_string(b: &mut BytesMut, s: &str) {
    // Kafka strings are at most i16::MAX bytes; every string here came from a request
    // field of the same type, so it fits.
    let s = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    b.put_i16(s.len() as i16);
    b.put_slice(s);
}

fn put_nullable_string(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(b, s),
        None => b.put_i16(-1),
    }
}

fn put_bytes(b: &mut BytesMut, v: &[u8]) {
    b.put_i32(v.len() as i32);
    b.put_slice(v);
}

/// A bounds-checked cursor over a stored key or value (the consumer-group records'
/// keys use it too: their keys are non-flexible like these).
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(err(format!(
                "field of {n} bytes runs past the end ({} left)",
                self.0.len()
            )));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn i16(&mut self) -> Result<i16, RecordError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    fn nullable_string(&mut self) -> Result<Option<String>, RecordError> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let raw = self.take(len as usize)?;
        String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|_| err("string is not UTF-8"))
    }
    pub(super) fn string(&mut self) -> Result<String, RecordError> {
        self.nullable_string()?
            .ok_or_else(|| err("null where a string is required"))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, RecordError> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(Vec::new());
        }
        Ok(self.take(len as usize)?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(r: Record) {
        let (k, v) = encode(&r);
        assert_eq!(decode(&k, v.as_deref()).unwrap(), Some(r));
    }

    #[test]
    fn records_round_trip() {
        roundtrip(Record::Offset {
            group_id: "g".into(),
            topic: "orders".into(),
            partition: 7,
            value: Some(OffsetValue {
                offset: 42,
                leader_epoch: 3,
                metadata: "meta".into(),
                commit_timestamp_ms: 1_700_000_000_000,
                expire_timestamp_ms: None,
            }),
        });
        roundtrip(Record::Offset {
            group_id: "g".into(),
            topic: "orders".into(),
            partition: 7,
            value: Some(OffsetValue {
                offset: 42,
                // v1 has no leader epoch: an expiring commit loses it, as in Kafka.
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 5,
                expire_timestamp_ms: Some(99),
            }),
        });
        roundtrip(Record::Offset {
            group_id: "g".into(),
            topic: "t".into(),
            partition: 0,
            value: None,
        });
        roundtrip(Record::Group {
            group_id: "g".into(),
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation_id: 4,
                protocol_name: Some("range".into()),
                leader: Some("m1".into()),
                current_state_timestamp_ms: 77,
                members: vec![MemberMetadataValue {
                    member_id: "m1".into(),
                    group_instance_id: Some("i1".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: vec![0, 1, 2],
                    assignment: vec![],
                }],
            }),
        });
        roundtrip(Record::Group {
            group_id: "g".into(),
            value: None,
        });
    }

    #[test]
    fn reads_kafkas_older_value_versions() {
        // OffsetCommitValue v0: offset, metadata, commit timestamp.
        let mut v = BytesMut::new();
        v.put_i16(0);
        v.put_i64(10);
        put_string(&mut v, "x");
        v.put_i64(123);
        let got = decode_offset_value(&v).unwrap();
        assert_eq!(
            (got.offset, got.leader_epoch, got.commit_timestamp_ms),
            (10, -1, 123)
        );
        // GroupMetadataValue v0 with one member (no rebalance timeout, no instance id).
        let mut g = BytesMut::new();
        g.put_i16(0);
        put_string(&mut g, "consumer");
        g.put_i32(1);
        put_nullable_string(&mut g, Some("range"));
        put_nullable_string(&mut g, Some("m"));
        g.put_i32(1);
        put_string(&mut g, "m");
        put_string(&mut g, "c");
        put_string(&mut g, "h");
        g.put_i32(10_000);
        put_bytes(&mut g, b"s");
        put_bytes(&mut g, b"a");
        let got = decode_group_value(&g).unwrap();
        assert_eq!(got.members[0].rebalance_timeout_ms, 10_000);
        assert_eq!(got.members[0].assignment, b"a");
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let (k, v) = encode(&Record::Group {
            group_id: "group".into(),
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation_id: 1,
                protocol_name: None,
                leader: None,
                current_state_timestamp_ms: 0,
                members: vec![],
            }),
        });
        let v = v.unwrap();
        for cut in 0..v.len() {
            assert!(decode(&k, Some(&v[..cut])).is_err(), "cut at {cut}");
        }
        for cut in 0..k.len() {
            assert!(decode(&k[..cut], None).is_err(), "key cut at {cut}");
        }
        // A huge member count is refused by running out of bytes, not by allocating.
        let mut g = BytesMut::new();
        g.put_i16(3);
        put_string(&mut g, "consumer");
        g.put_i32(1);
        g.put_i16(-1);
        g.put_i16(-1);
        g.put_i64(0);
        g.put_i32(i32::MAX);
        assert!(decode_group_value(&g).is_err());
        // Unknown record types are skipped.
        assert_eq!(decode(&[0, 9, 0, 0], None).unwrap(), None);
    }
}

//! The byte format of the `consumer` (KIP-848) group records in `__consumer_offsets`:
//! Kafka's record types 3–8. Keys are non-flexible (version = type, then the group id and,
//! for member records, the member id); values are Kafka's flexible version 0 schemas:
//! compact strings and arrays (length + 1 as an unsigned varint) and an empty tagged-field
//! section after each struct.
//!
//! Decoding reads what this broker wrote but treats it as untrusted: lengths are checked
//! against what remains, and nothing is preallocated from a length field.

use bytes::{BufMut, BytesMut};
use uuid::Uuid;

use super::consumer_types::{
    ClassicMemberMetadata, ConsumerGroupCurrentMemberAssignmentValue,
    ConsumerGroupMemberMetadataValue, ConsumerGroupMetadataValue,
    ConsumerGroupPartitionMetadataValue, ConsumerGroupTargetAssignmentMemberValue,
    ConsumerGroupTargetAssignmentMetadataValue, TopicMetadataValue,
};
use super::records::{put_string, Reader as KeyReader, RecordError};
use super::types::Record;

pub const GROUP_METADATA: i16 = 3;
pub const PARTITION_METADATA: i16 = 4;
pub const MEMBER_METADATA: i16 = 5;
pub const TARGET_ASSIGNMENT_METADATA: i16 = 6;
pub const TARGET_ASSIGNMENT_MEMBER: i16 = 7;
pub const CURRENT_MEMBER_ASSIGNMENT: i16 = 8;

const VALUE_VERSION: i16 = 0;

fn err(msg: impl Into<String>) -> RecordError {
    RecordError(msg.into())
}

/// Key and value bytes of a consumer-group record; `None` for the classic records.
pub fn encode(record: &Record) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let (kind, group_id, member_id, value) = match record {
        Record::ConsumerGroupMetadata { group_id, value } => (
            GROUP_METADATA,
            group_id,
            None,
            value.as_ref().map(|v| {
                let mut w = Writer::value();
                w.i32(v.epoch);
                w.finish()
            }),
        ),
        Record::ConsumerGroupPartitionMetadata { group_id, value } => (
            PARTITION_METADATA,
            group_id,
            None,
            value.as_ref().map(|v| {
                let mut w = Writer::value();
                w.len(v.topics.len());
                for t in &v.topics {
                    w.uuid(t.topic_id);
                    w.string(&t.topic_name);
                    w.i32(t.num_partitions);
                    w.len(t.partition_metadata.len());
                    for (p, racks) in &t.partition_metadata {
                        w.i32(*p);
                        w.strings(racks);
                        w.tags();
                    }
                    w.tags();
                }
                w.finish()
            }),
        ),
        Record::ConsumerGroupMemberMetadata {
            group_id,
            member_id,
            value,
        } => (
            MEMBER_METADATA,
            group_id,
            Some(member_id),
            value.as_ref().map(|v| {
                let mut w = Writer::value();
                w.nullable(v.instance_id.as_deref());
                w.nullable(v.rack_id.as_deref());
                w.string(&v.client_id);
                w.string(&v.client_host);
                w.strings(&v.subscribed_topic_names);
                w.nullable(v.subscribed_topic_regex.as_deref());
                w.i32(v.rebalance_timeout_ms);
                w.nullable(v.server_assignor.as_deref());
                match &v.classic_member_metadata {
                    None => w.b.put_i8(-1),
                    Some(c) => {
                        w.b.put_i8(1);
                        w.i32(c.session_timeout_ms);
                        w.len(c.supported_protocols.len());
                        for (name, metadata) in &c.supported_protocols {
                            w.string(name);
                            w.bytes(metadata);
                            w.tags();
                        }
                        w.tags();
                    }
                }
                w.finish()
            }),
        ),
        Record::ConsumerGroupTargetAssignmentMetadata { group_id, value } => (
            TARGET_ASSIGNMENT_METADATA,
            group_id,
            None,
            value.as_ref().map(|v| {
                let mut w = Writer::value();
                w.i32(v.assignment_epoch);
                w.finish()
            }),
        ),
        Record::ConsumerGroupTargetAssignmentMember {
            group_id,
            member_id,
            value,
        } => (
            TARGET_ASSIGNMENT_MEMBER,
            group_id,
            Some(member_id),
            value.as_ref().map(|v| {
                let mut w = Writer::value();
                w.partitions(&v.topic_partitions);
                w.finish()
            }),
        ),
        Record::ConsumerGroupCurrentMemberAssignment {
            group_id,
            member_id,
            value,
        } => (
            CURRENT_MEMBER_ASSIGNMENT,
            group_id,
            Some(member_id),
            value.as_ref().map(|v| {
                let mut w = Writer::value();
                w.i32(v.member_epoch);
                w.i32(v.previous_member_epoch);
                w.b.put_i8(v.state);
                w.partitions(&v.assigned_partitions);
                w.partitions(&v.partitions_pending_revocation);
                w.finish()
            }),
        ),
        Record::Group { .. } | Record::Offset { .. } => return None,
    };
    let mut key = BytesMut::new();
    key.put_i16(kind);
    put_string(&mut key, group_id);
    if let Some(m) = member_id {
        put_string(&mut key, m);
    }
    Some((key.to_vec(), value))
}

/// The record a consumer-group key (already past its version `kind`) and value describe.
pub fn decode(kind: i16, key: &[u8], value: Option<&[u8]>) -> Result<Record, RecordError> {
    let mut k = KeyReader(key);
    let group_id = k.string()?;
    let member = |k: &mut KeyReader| k.string();
    let mut value = value.map(Reader::value).transpose()?;
    let record = match kind {
        GROUP_METADATA => Record::ConsumerGroupMetadata {
            group_id,
            value: value
                .as_mut()
                .map(|r| Ok::<_, RecordError>(ConsumerGroupMetadataValue { epoch: r.i32()? }))
                .transpose()?,
        },
        PARTITION_METADATA => Record::ConsumerGroupPartitionMetadata {
            group_id,
            value: value
                .as_mut()
                .map(|r| {
                    let mut topics = Vec::new();
                    for _ in 0..r.len()? {
                        let topic_id = r.uuid()?;
                        let topic_name = r.string()?;
                        let num_partitions = r.i32()?;
                        let mut partition_metadata = Vec::new();
                        for _ in 0..r.len()? {
                            let p = r.i32()?;
                            let racks = r.strings()?;
                            r.tags()?;
                            partition_metadata.push((p, racks));
                        }
                        r.tags()?;
                        topics.push(TopicMetadataValue {
                            topic_id,
                            topic_name,
                            num_partitions,
                            partition_metadata,
                        });
                    }
                    Ok::<_, RecordError>(ConsumerGroupPartitionMetadataValue { topics })
                })
                .transpose()?,
        },
        MEMBER_METADATA => Record::ConsumerGroupMemberMetadata {
            group_id,
            member_id: member(&mut k)?,
            value: value
                .as_mut()
                .map(|r| {
                    let instance_id = r.nullable()?;
                    let rack_id = r.nullable()?;
                    let client_id = r.string()?;
                    let client_host = r.string()?;
                    let subscribed_topic_names = r.strings()?;
                    let subscribed_topic_regex = r.nullable()?;
                    let rebalance_timeout_ms = r.i32()?;
                    let server_assignor = r.nullable()?;
                    let classic_member_metadata = match r.take(1)?[0] as i8 {
                        -1 => None,
                        _ => {
                            let session_timeout_ms = r.i32()?;
                            let mut supported_protocols = Vec::new();
                            for _ in 0..r.len()? {
                                let name = r.string()?;
                                let metadata = r.bytes()?;
                                r.tags()?;
                                supported_protocols.push((name, metadata));
                            }
                            r.tags()?;
                            Some(ClassicMemberMetadata {
                                session_timeout_ms,
                                supported_protocols,
                            })
                        }
                    };
                    Ok::<_, RecordError>(ConsumerGroupMemberMetadataValue {
                        instance_id,
                        rack_id,
                        client_id,
                        client_host,
                        subscribed_topic_names,
                        subscribed_topic_regex,
                        rebalance_timeout_ms,
                        server_assignor,
                        classic_member_metadata,
                    })
                })
                .transpose()?,
        },
        TARGET_ASSIGNMENT_METADATA => Record::ConsumerGroupTargetAssignmentMetadata {
            group_id,
            value: value
                .as_mut()
                .map(|r| {
                    Ok::<_, RecordError>(ConsumerGroupTargetAssignmentMetadataValue {
                        assignment_epoch: r.i32()?,
                    })
                })
                .transpose()?,
        },
        TARGET_ASSIGNMENT_MEMBER => Record::ConsumerGroupTargetAssignmentMember {
            group_id,
            member_id: member(&mut k)?,
            value: value
                .as_mut()
                .map(|r| {
                    Ok::<_, RecordError>(ConsumerGroupTargetAssignmentMemberValue {
                        topic_partitions: r.partitions()?,
                    })
                })
                .transpose()?,
        },
        CURRENT_MEMBER_ASSIGNMENT => Record::ConsumerGroupCurrentMemberAssignment {
            group_id,
            member_id: member(&mut k)?,
            value: value
                .as_mut()
                .map(|r| {
                    Ok::<_, RecordError>(ConsumerGroupCurrentMemberAssignmentValue {
                        member_epoch: r.i32()?,
                        previous_member_epoch: r.i32()?,
                        state: r.take(1)?[0] as i8,
                        assigned_partitions: r.partitions()?,
                        partitions_pending_revocation: r.partitions()?,
                    })
                })
                .transpose()?,
        },
        other => {
            return Err(err(format!(
                "record type {other} is not a consumer-group record"
            )))
        }
    };
    if let Some(r) = value.as_mut() {
        r.tags()?;
        if !r.0.is_empty() {
            return Err(err(format!("{} bytes after the value", r.0.len())));
        }
    }
    Ok(record)
}

/// Writes a flexible value: version, fields, then the top-level tagged fields.
struct Writer {
    b: BytesMut,
}

impl Writer {
    fn value() -> Writer {
        let mut b = BytesMut::new();
        b.put_i16(VALUE_VERSION);
        Writer { b }
    }
    fn finish(mut self) -> Vec<u8> {
        self.tags();
        self.b.to_vec()
    }
    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.b.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.b.put_u8(v as u8);
    }
    /// A compact array length.
    fn len(&mut self, n: usize) {
        self.uvarint(n as u64 + 1);
    }
    fn tags(&mut self) {
        self.uvarint(0);
    }
    fn i32(&mut self, v: i32) {
        self.b.put_i32(v);
    }
    fn uuid(&mut self, id: Uuid) {
        self.b.put_slice(id.as_bytes());
    }
    fn string(&mut self, s: &str) {
        self.len(s.len());
        self.b.put_slice(s.as_bytes());
    }
    fn nullable(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.uvarint(0),
        }
    }
    fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.b.put_slice(v);
    }
    fn strings(&mut self, v: &[String]) {
        self.len(v.len());
        for s in v {
            self.string(s);
        }
    }
    fn partitions(&mut self, v: &[(Uuid, Vec<i32>)]) {
        self.len(v.len());
        for (id, ps) in v {
            self.uuid(*id);
            self.len(ps.len());
            for p in ps {
                self.i32(*p);
            }
            self.tags();
        }
    }
}

/// Reads a flexible value written by [`Writer`].
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn value(bytes: &'a [u8]) -> Result<Reader<'a>, RecordError> {
        let mut r = Reader(bytes);
        let b = r.take(2)?;
        let version = i16::from_be_bytes([b[0], b[1]]);
        if version != VALUE_VERSION {
            return Err(err(format!(
                "consumer-group value version {version} is not readable"
            )));
        }
        Ok(r)
    }
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
    fn uvarint(&mut self) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.take(1)?[0];
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(err("varint longer than 10 bytes"))
    }
    /// A compact length; None for null.
    fn compact(&mut self) -> Result<Option<usize>, RecordError> {
        match self.uvarint()? {
            0 => Ok(None),
            n => {
                let n = (n - 1) as usize;
                // Every element takes at least one byte: a larger count cannot be real.
                if n > self.0.len() {
                    return Err(err(format!(
                        "length {n} exceeds the {} bytes left",
                        self.0.len()
                    )));
                }
                Ok(Some(n))
            }
        }
    }
    fn len(&mut self) -> Result<usize, RecordError> {
        Ok(self.compact()?.unwrap_or(0))
    }
    fn tags(&mut self) -> Result<(), RecordError> {
        for _ in 0..self.uvarint()? {
            let _tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn uuid(&mut self) -> Result<Uuid, RecordError> {
        let b = self.take(16)?;
        Ok(Uuid::from_slice(b).unwrap_or_default())
    }
    fn nullable(&mut self) -> Result<Option<String>, RecordError> {
        match self.compact()? {
            None => Ok(None),
            Some(n) => String::from_utf8(self.take(n)?.to_vec())
                .map(Some)
                .map_err(|_| err("string is not UTF-8")),
        }
    }
    fn string(&mut self) -> Result<String, RecordError> {
        self.nullable()?
            .ok_or_else(|| err("null where a string is required"))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, RecordError> {
        let n = self.len()?;
        Ok(self.take(n)?.to_vec())
    }
    fn strings(&mut self) -> Result<Vec<String>, RecordError> {
        let mut out = Vec::new();
        for _ in 0..self.len()? {
            out.push(self.string()?);
        }
        Ok(out)
    }
    fn partitions(&mut self) -> Result<Vec<(Uuid, Vec<i32>)>, RecordError> {
        let mut out = Vec::new();
        for _ in 0..self.len()? {
            let id = self.uuid()?;
            let mut ps = Vec::new();
            for _ in 0..self.len()? {
                ps.push(self.i32()?);
            }
            self.tags()?;
            out.push((id, ps));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(r: Record) {
        let (k, v) = encode(&r).expect("consumer record");
        let kind = i16::from_be_bytes([k[0], k[1]]);
        assert_eq!(decode(kind, &k[2..], v.as_deref()).unwrap(), r);
        if let Some(v) = v {
            for cut in 0..v.len() {
                assert!(
                    decode(kind, &k[2..], Some(&v[..cut])).is_err(),
                    "cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn consumer_records_round_trip_and_truncation_is_an_error() {
        let id = Uuid::from_u128(0x1234);
        roundtrip(Record::ConsumerGroupMetadata {
            group_id: "g".into(),
            value: Some(ConsumerGroupMetadataValue { epoch: 7 }),
        });
        roundtrip(Record::ConsumerGroupPartitionMetadata {
            group_id: "g".into(),
            value: Some(ConsumerGroupPartitionMetadataValue {
                topics: vec![TopicMetadataValue {
                    topic_id: id,
                    topic_name: "orders".into(),
                    num_partitions: 12,
                    partition_metadata: vec![(0, vec!["r1".into()])],
                }],
            }),
        });
        roundtrip(Record::ConsumerGroupMemberMetadata {
            group_id: "g".into(),
            member_id: "m".into(),
            value: Some(ConsumerGroupMemberMetadataValue {
                instance_id: Some("i".into()),
                rack_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                subscribed_topic_names: vec!["orders".into(), "x".into()],
                subscribed_topic_regex: Some("or.*".into()),
                rebalance_timeout_ms: 300_000,
                server_assignor: Some("uniform".into()),
                classic_member_metadata: Some(ClassicMemberMetadata {
                    session_timeout_ms: 45_000,
                    supported_protocols: vec![("range".into(), vec![1, 2])],
                }),
            }),
        });
        roundtrip(Record::ConsumerGroupTargetAssignmentMetadata {
            group_id: "g".into(),
            value: Some(ConsumerGroupTargetAssignmentMetadataValue {
                assignment_epoch: 3,
            }),
        });
        roundtrip(Record::ConsumerGroupTargetAssignmentMember {
            group_id: "g".into(),
            member_id: "m".into(),
            value: Some(ConsumerGroupTargetAssignmentMemberValue {
                topic_partitions: vec![(id, vec![0, 1, 2])],
            }),
        });
        roundtrip(Record::ConsumerGroupCurrentMemberAssignment {
            group_id: "g".into(),
            member_id: "m".into(),
            value: Some(ConsumerGroupCurrentMemberAssignmentValue {
                member_epoch: 4,
                previous_member_epoch: 3,
                state: 1,
                assigned_partitions: vec![(id, vec![5])],
                partitions_pending_revocation: vec![(id, vec![6])],
            }),
        });
        roundtrip(Record::ConsumerGroupCurrentMemberAssignment {
            group_id: "g".into(),
            member_id: "m".into(),
            value: None,
        });
    }
}

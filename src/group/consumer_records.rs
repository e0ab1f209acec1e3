//! The byte format of the `consumer` (KIP-848) group records in `__consumer_offsets`:
//! Kafka's record types 3–8. Keys are non-flexible (version = type, then the group id and,
//! for member records, the member id); values are Kafka's flexible version 0 schemas:
//! compact strings and arrays (length + 1 as an unsigned varint) and an empty tagged-field
//! section after each struct.
//!
//! Decoding reads what this broker wrote but treats it as untrusted: lengths are checked
//! against what remains, and nothing is preallocated from a length field.

use bytes::{BufMut, BytesMut};

use super::consumer_types::{
    ClassicMemberMetadata, ConsumerGroupCurrentMemberAssignmentValue,
    ConsumerGroupMemberMetadataValue, ConsumerGroupMetadataValue,
    ConsumerGroupPartitionMetadataValue, ConsumerGroupTargetAssignmentMemberValue,
    ConsumerGroupTargetAssignmentMetadataValue, TopicMetadataValue,
};
use super::records::{put_string, Reader as KeyReader, RecordError};
use super::types::Record;
use crate::protocol::flex::{FlexError, FlexReader, FlexWriter};

impl From<FlexError> for RecordError {
    fn from(e: FlexError) -> Self {
        RecordError(e.0)
    }
}

/// A value of this module's schema version.
fn writer() -> FlexWriter {
    FlexWriter::new(VALUE_VERSION)
}

/// The reader of a value, after checking its schema version.
fn reader(bytes: &[u8]) -> Result<FlexReader<'_>, RecordError> {
    let (version, r) = FlexReader::new(bytes)?;
    if version != VALUE_VERSION {
        return Err(err(format!(
            "consumer-group value version {version} is not readable"
        )));
    }
    Ok(r)
}

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
                let mut w = writer();
                w.i32(v.epoch);
                w.finish()
            }),
        ),
        Record::ConsumerGroupPartitionMetadata { group_id, value } => (
            PARTITION_METADATA,
            group_id,
            None,
            value.as_ref().map(|v| {
                let mut w = writer();
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
                let mut w = writer();
                w.nullable(v.instance_id.as_deref());
                w.nullable(v.rack_id.as_deref());
                w.string(&v.client_id);
                w.string(&v.client_host);
                w.strings(&v.subscribed_topic_names);
                w.nullable(v.subscribed_topic_regex.as_deref());
                w.i32(v.rebalance_timeout_ms);
                w.nullable(v.server_assignor.as_deref());
                match &v.classic_member_metadata {
                    None => w.i8(-1),
                    Some(c) => {
                        w.i8(1);
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
                let mut w = writer();
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
                let mut w = writer();
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
                let mut w = writer();
                w.i32(v.member_epoch);
                w.i32(v.previous_member_epoch);
                w.i8(v.state);
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
    let mut value = value.map(reader).transpose()?;
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
                    for _ in 0..r.count()? {
                        let topic_id = r.uuid()?;
                        let topic_name = r.string()?;
                        let num_partitions = r.i32()?;
                        let mut partition_metadata = Vec::new();
                        for _ in 0..r.count()? {
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
                    let classic_member_metadata = match r.i8()? {
                        -1 => None,
                        _ => {
                            let session_timeout_ms = r.i32()?;
                            let mut supported_protocols = Vec::new();
                            for _ in 0..r.count()? {
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
                        state: r.i8()?,
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
        r.finish()?;
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

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

//! OffsetDelete: removing committed offsets of a group, which Kafka forbids for topics
//! an active consumer group is subscribed to.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;

use super::classic::{ClassicGroup, GroupState};
use super::coordinator::GroupCoordinator;
use super::types::{Output, Record};

/// Result of an OffsetDelete: a group-level error, or one result per partition.
pub type OffsetDeleteResult = (
    Option<ResponseError>,
    Vec<(String, i32, Option<ResponseError>)>,
);

impl GroupCoordinator {
    /// OffsetDelete of (topic, partition) pairs. An Empty (or offsets-only) group may
    /// drop any offset; a `consumer` group may drop those of topics no member subscribes
    /// to; any other non-empty group none (NON_EMPTY_GROUP).
    pub fn delete_offsets(
        &mut self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> (OffsetDeleteResult, Output) {
        let mut out = Output::default();
        if let Some(group) = self.consumer_groups.get(group_id) {
            // Kafka: any state, but not the offsets of topics a member subscribes to.
            let subscribed = group.subscribed_topics();
            let mut results = Vec::with_capacity(partitions.len());
            for (topic, partition) in partitions {
                let error = if subscribed.contains(topic) {
                    Some(ResponseError::GroupSubscribedToTopic)
                } else {
                    let key = (topic.clone(), *partition);
                    if self.offsets(group_id).is_some_and(|o| o.contains_key(&key)) {
                        let record = Record::Offset {
                            group_id: group_id.to_string(),
                            topic: topic.clone(),
                            partition: *partition,
                            value: None,
                        };
                        self.emit(&mut out, record, 0);
                    }
                    None
                };
                results.push((topic.clone(), *partition, error));
            }
            return ((None, results), out);
        }
        let Some(group) = self.groups.get_mut(group_id) else {
            return ((Some(ResponseError::GroupIdNotFound), Vec::new()), out);
        };
        let subscribed = match group.state {
            GroupState::Dead => return ((Some(ResponseError::GroupIdNotFound), Vec::new()), out),
            GroupState::Empty => BTreeSet::new(),
            _ if group.protocol_type.as_deref() == Some("consumer") => {
                match subscribed_topics(group) {
                    Some(topics) => topics,
                    None => return ((Some(ResponseError::NonEmptyGroup), Vec::new()), out),
                }
            }
            _ => return ((Some(ResponseError::NonEmptyGroup), Vec::new()), out),
        };
        let mut results = Vec::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            if subscribed.contains(topic) {
                let error = Some(ResponseError::GroupSubscribedToTopic);
                results.push((topic.clone(), *partition, error));
                continue;
            }
            if group.offsets.remove(&(topic.clone(), *partition)).is_some() {
                out.records.push(Record::Offset {
                    group_id: group_id.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: None,
                });
            }
            results.push((topic.clone(), *partition, None));
        }
        ((None, results), out)
    }
}

/// Topics the members subscribe to, read from their `consumer` protocol metadata of the
/// selected protocol; None if any member's metadata cannot be read (then nothing may be
/// deleted, the safe side).
fn subscribed_topics(group: &ClassicGroup) -> Option<BTreeSet<String>> {
    let protocol = group.protocol_name.as_deref()?;
    let mut topics = BTreeSet::new();
    for member in group.members.values() {
        topics.extend(parse_subscription_topics(&member.metadata_for(protocol))?);
    }
    Some(topics)
}

/// ConsumerProtocolSubscription (every version) starts with an int16 version and a
/// non-compact array of int16-length strings: the topics.
pub(crate) fn parse_subscription_topics(bytes: &[u8]) -> Option<Vec<String>> {
    let mut rest = bytes.get(2..)?;
    let count = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    rest = rest.get(4..)?;
    let mut topics = Vec::new();
    for _ in 0..count.max(0) {
        let len = i16::from_be_bytes(rest.get(..2)?.try_into().ok()?);
        let len = usize::try_from(len).ok()?;
        let name = rest.get(2..2 + len)?;
        topics.push(String::from_utf8(name.to_vec()).ok()?);
        rest = rest.get(2 + len..)?;
    }
    Some(topics)
}

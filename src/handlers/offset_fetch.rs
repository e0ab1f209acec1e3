//! OffsetFetch (key 9), v1–v9: a group's committed offsets, for chosen partitions or
//! (v2+, null topics) all of them; v8+ asks for several groups at once. Without
//! transactions no offset is ever pending, so `require_stable` (v7+) needs no wait.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::VersionRange;

use super::util::{code, s};
use super::Ctx;
use crate::group::{self, OffsetFetchPartition};

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 9 };

type Topics = Option<Vec<(String, Vec<i32>)>>;

pub async fn handle(ctx: &Ctx, req: OffsetFetchRequest) -> OffsetFetchResponse {
    if ctx.version >= 8 {
        let mut groups = Vec::with_capacity(req.groups.len());
        for g in &req.groups {
            let topics: Topics = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            // v9+ (KIP-848): a member of a `consumer` group names itself and its epoch.
            let member = (ctx.version >= 9)
                .then(|| (g.member_id.as_ref().map(|m| m.to_string()), g.member_epoch));
            let (error, found) = fetch(ctx, &g.group_id, topics, req.require_stable, member).await;
            ctx.note_error(error);
            groups.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(error)
                    .with_topics(group_topics(found)),
            );
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics: Topics = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let requested = topics.clone();
    let (error, mut found) = fetch(ctx, &req.group_id, topics, req.require_stable, None).await;
    ctx.note_error(error);
    if error != 0 && ctx.version < 2 {
        // v1 has no top-level error: every requested partition carries it.
        found = requested
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p)))
            .map(|(topic, partition)| OffsetFetchPartition {
                topic,
                partition,
                offset: -1,
                leader_epoch: -1,
                metadata: String::new(),
                error: ResponseError::try_from_code(error),
            })
            .collect();
    }
    let mut topics: Vec<OffsetFetchResponseTopic> = Vec::new();
    for p in found {
        let part = OffsetFetchResponsePartition::default()
            .with_partition_index(p.partition)
            .with_committed_offset(p.offset)
            .with_committed_leader_epoch(p.leader_epoch)
            .with_metadata(Some(s(&p.metadata)))
            .with_error_code(code(p.error));
        match topics.last_mut() {
            Some(t) if t.name.0.as_str() == p.topic => t.partitions.push(part),
            _ => topics.push(
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(s(&p.topic)))
                    .with_partitions(vec![part]),
            ),
        }
    }
    OffsetFetchResponse::default()
        .with_topics(topics)
        .with_error_code(if ctx.version >= 2 { error } else { 0 })
}

/// One group's offsets: (group-level error code, partitions).
async fn fetch(
    ctx: &Ctx,
    group_id: &GroupId,
    topics: Topics,
    require_stable: bool,
    member: Option<(Option<String>, i32)>,
) -> (i16, Vec<OffsetFetchPartition>) {
    use crate::authorizer::{Operation, ResourceType};
    // DESCRIBE on the group; then the partitions of topics the principal may not
    // DESCRIBE are refused when named, and left out when every topic is asked for.
    if !ctx.authorize(Operation::Describe, ResourceType::Group, group_id.as_str()) {
        return (ResponseError::GroupAuthorizationFailed.code(), Vec::new());
    }
    let named = topics.is_some();
    let req = group::OffsetFetchRequest {
        group_id: group_id.to_string(),
        topics,
        require_stable,
    };
    match ctx
        .state
        .groups
        .read(&req.group_id, |c| {
            let refused = member.and_then(|(id, epoch)| {
                c.validate_offset_fetch(&req.group_id, id.as_deref(), epoch)
            });
            match refused {
                Some(e) => Err(e),
                None => Ok(c.fetch_offsets(&req)),
            }
        })
        .await
    {
        Ok(Ok(found)) => {
            let mut allowed = std::collections::HashMap::new();
            let mut may = |topic: &str| {
                *allowed.entry(topic.to_string()).or_insert_with(|| {
                    ctx.authorize(Operation::Describe, ResourceType::Topic, topic)
                })
            };
            let found = found
                .into_iter()
                .filter_map(|mut p| {
                    if may(&p.topic) {
                        Some(p)
                    } else if named {
                        p.offset = -1;
                        p.leader_epoch = -1;
                        p.metadata.clear();
                        p.error = Some(ResponseError::TopicAuthorizationFailed);
                        Some(p)
                    } else {
                        None
                    }
                })
                .collect();
            (0, found)
        }
        Ok(Err(e)) | Err(e) => (e.code(), Vec::new()),
    }
}

fn group_topics(found: Vec<OffsetFetchPartition>) -> Vec<OffsetFetchResponseTopics> {
    let mut topics: Vec<OffsetFetchResponseTopics> = Vec::new();
    for p in found {
        let part = OffsetFetchResponsePartitions::default()
            .with_partition_index(p.partition)
            .with_committed_offset(p.offset)
            .with_committed_leader_epoch(p.leader_epoch)
            .with_metadata(Some(s(&p.metadata)))
            .with_error_code(code(p.error));
        match topics.last_mut() {
            Some(t) if t.name.0.as_str() == p.topic => t.partitions.push(part),
            _ => topics.push(
                OffsetFetchResponseTopics::default()
                    .with_name(TopicName(s(&p.topic)))
                    .with_partitions(vec![part]),
            ),
        }
    }
    topics
}

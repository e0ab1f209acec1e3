//! ListPartitionReassignments (key 46), v0: the ongoing reassignments with their full,
//! adding and removing replica lists, for every partition (null topics) or the listed
//! ones. As in Kafka, partitions that are not being reassigned, and unknown topics or
//! partitions, are simply left out.

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::cluster::{PartitionMeta, TopicMeta};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(
    ctx: &Ctx,
    req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    if !ctx.authorize_cluster(crate::authorizer::Operation::Describe) {
        let code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        ctx.note_error(code);
        return ListPartitionReassignmentsResponse::default().with_error_code(code);
    }
    let image = ctx.state.controller.image();
    let wanted: Vec<(&TopicMeta, Option<Vec<i32>>)> = match req.topics {
        None => image.topics.values().map(|t| (t, None)).collect(),
        Some(topics) => topics
            .into_iter()
            .filter_map(|t| Some((image.topic(&t.name)?, Some(t.partition_indexes))))
            .collect(),
    };
    let ids = |v: &[i32]| v.iter().copied().map(BrokerId).collect::<Vec<_>>();
    let describe = |p: &PartitionMeta| {
        OngoingPartitionReassignment::default()
            .with_partition_index(p.partition)
            .with_replicas(ids(&p.replicas))
            .with_adding_replicas(ids(&p.adding_replicas))
            .with_removing_replicas(ids(&p.removing_replicas))
    };
    let mut topics = Vec::new();
    for (t, only) in wanted {
        let partitions: Vec<OngoingPartitionReassignment> = match only {
            None => t
                .partitions
                .iter()
                .filter(|p| p.is_reassigning())
                .map(describe)
                .collect(),
            Some(indexes) => indexes
                .iter()
                .filter_map(|i| usize::try_from(*i).ok().and_then(|i| t.partitions.get(i)))
                .filter(|p| p.is_reassigning())
                .map(describe)
                .collect(),
        };
        if !partitions.is_empty() {
            topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(s(&t.name)))
                    .with_partitions(partitions),
            );
        }
    }
    ListPartitionReassignmentsResponse::default()
        .with_error_message(None)
        .with_topics(topics)
}

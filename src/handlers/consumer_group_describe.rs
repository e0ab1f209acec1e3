//! ConsumerGroupDescribe (key 69), v0–v1: members, epochs, current and target
//! assignments of `consumer` (KIP-848) groups; GROUP_ID_NOT_FOUND for any other group.
//! Needs DESCRIBE on each group (GROUP_AUTHORIZATION_FAILED for the others).

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};
use kafka_protocol::protocol::VersionRange;

use super::util::{code, s};
use super::Ctx;
use crate::authorizer::{Operation, ResourceType, NOT_REQUESTED};
use crate::group::DescribedTopicPartitions;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

fn assignment(parts: Vec<DescribedTopicPartitions>) -> Assignment {
    Assignment::default().with_topic_partitions(
        parts
            .into_iter()
            .map(|t| {
                TopicPartitions::default()
                    .with_topic_id(t.topic_id)
                    .with_topic_name(TopicName(s(&t.topic_name)))
                    .with_partitions(t.partitions)
            })
            .collect(),
    )
}

pub async fn handle(ctx: &Ctx, req: ConsumerGroupDescribeRequest) -> ConsumerGroupDescribeResponse {
    let topics = ctx.state.groups.topics();
    let mut groups = Vec::with_capacity(req.group_ids.len());
    for group_id in &req.group_ids {
        let base = DescribedGroup::default()
            .with_group_id(group_id.clone())
            .with_authorized_operations(ctx.authorized_operations(
                ResourceType::Group,
                group_id.as_str(),
                req.include_authorized_operations,
            ));
        if !ctx.authorize(Operation::Describe, ResourceType::Group, group_id.as_str()) {
            let denied = kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code();
            ctx.note_error(denied);
            groups.push(base.with_error_code(denied));
            continue;
        }
        let d = match ctx
            .state
            .groups
            .read(group_id, |c| c.describe_consumer_group(group_id, &topics))
            .await
        {
            Ok(d) => d,
            Err(e) => {
                ctx.note_error(e.code());
                groups.push(base.with_error_code(e.code()));
                continue;
            }
        };
        let error = code(d.error);
        ctx.note_error(error);
        let members = d
            .members
            .into_iter()
            .map(|m| {
                Member::default()
                    .with_member_id(s(&m.member_id))
                    .with_instance_id(m.instance_id.as_deref().map(s))
                    .with_rack_id(m.rack_id.as_deref().map(s))
                    .with_member_epoch(m.member_epoch)
                    .with_client_id(s(&m.client_id))
                    .with_client_host(s(&m.client_host))
                    .with_subscribed_topic_names(
                        m.subscribed_topic_names
                            .iter()
                            .map(|t| TopicName(s(t)))
                            .collect(),
                    )
                    .with_subscribed_topic_regex(m.subscribed_topic_regex.as_deref().map(s))
                    .with_assignment(assignment(m.assignment))
                    .with_target_assignment(assignment(m.target_assignment))
                    .with_member_type(if ctx.version >= 1 { m.member_type } else { -1 })
            })
            .collect();
        groups.push(
            base.with_error_code(error)
                .with_error_message(d.error_message.as_deref().map(s))
                .with_group_state(s(d.state))
                .with_group_epoch(d.group_epoch)
                .with_assignment_epoch(d.assignment_epoch)
                .with_assignor_name(s(&d.assignor_name))
                .with_members(members),
        );
    }
    // As Kafka: a group answered with an error carries no authorized operations.
    for g in groups.iter_mut().filter(|g| g.error_code != 0) {
        g.authorized_operations = NOT_REQUESTED;
    }
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}

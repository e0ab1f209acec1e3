//! DeleteTopics (key 20), v1–v6. Up to v5 topics are named in `topic_names`; v6 names
//! each by name or by id in `topics` (an entry with both is handled under each, as in
//! Kafka; one with neither is ignored).
//!
//! With `delete.topic.enable=false` every topic gets TOPIC_DELETION_DISABLED (v3+) or
//! INVALID_REQUEST (v1–v2, which predate that code), as Kafka does. A name or id given
//! twice gets one INVALID_REQUEST; unknown names UNKNOWN_TOPIC_OR_PARTITION, unknown ids
//! UNKNOWN_TOPIC_ID. A deleted topic's logs are gone from this broker before the answer.

use std::collections::{HashMap, HashSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::VersionRange;
use uuid::Uuid;

use super::util::s;
use super::Ctx;
use crate::admin::reconcile;
use crate::cluster::{CommandResult, MetadataCommand};
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 6 };

/// How the client named a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Named {
    Name(String),
    Id(Uuid),
}

pub async fn handle(ctx: &Ctx, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut asked: Vec<Named> = Vec::new();
    if ctx.version >= 6 {
        for t in &req.topics {
            if let Some(n) = &t.name {
                asked.push(Named::Name(n.to_string()));
            }
            if !t.topic_id.is_nil() {
                asked.push(Named::Id(t.topic_id));
            }
        }
    } else {
        asked.extend(req.topic_names.iter().map(|n| Named::Name(n.to_string())));
    }
    let mut counts: HashMap<&Named, usize> = HashMap::new();
    for a in &asked {
        *counts.entry(a).or_insert(0) += 1;
    }

    let mut responses = Vec::new();
    let mut deleted_any = false;
    let mut reported = HashSet::new();
    for a in &asked {
        let (name, id) = match a {
            Named::Name(n) => (Some(n.clone()), Uuid::nil()),
            Named::Id(id) => (None, *id),
        };
        let outcome = if counts[a] > 1 {
            if !reported.insert(a) {
                continue;
            }
            Err(KafkaError::with_message(
                ResponseError::InvalidRequest,
                match a {
                    Named::Name(_) => "Duplicate topic name.",
                    Named::Id(_) => "Duplicate topic id.",
                },
            ))
        } else if !ctx.state.config.delete_topic_enable {
            Err(if ctx.version < 3 {
                KafkaError::with_message(
                    ResponseError::InvalidRequest,
                    "Topic deletion is disabled.",
                )
            } else {
                KafkaError::new(ResponseError::TopicDeletionDisabled)
            })
        } else {
            delete_one(ctx, a).await
        };
        let r = match outcome {
            Ok((name, id)) => {
                deleted_any = true;
                DeletableTopicResult::default()
                    .with_name(Some(TopicName(s(&name))))
                    .with_topic_id(id)
            }
            Err(e) => {
                ctx.note_error(e.code);
                DeletableTopicResult::default()
                    .with_name(name.as_deref().map(|n| TopicName(s(n))))
                    .with_topic_id(id)
                    .with_error_code(e.code)
                    .with_error_message(e.message.as_deref().map(s))
            }
        };
        responses.push(r);
    }
    if deleted_any {
        reconcile(ctx.state.admin()).await;
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Delete one topic; returns its name and id.
async fn delete_one(ctx: &Ctx, which: &Named) -> Result<(String, Uuid), KafkaError> {
    let image = ctx.state.controller.image();
    // A name the principal may not delete is refused before looking it up, so that the
    // answer does not tell whether it exists.
    if let Named::Name(n) = which {
        if !ctx.authorize(
            crate::authorizer::Operation::Delete,
            crate::authorizer::ResourceType::Topic,
            n,
        ) {
            return Err(KafkaError::new(ResponseError::TopicAuthorizationFailed));
        }
    }
    let topic = match which {
        Named::Name(n) => image
            .topic(n)
            .ok_or_else(|| KafkaError::new(ResponseError::UnknownTopicOrPartition))?,
        Named::Id(id) => image
            .topic_by_id(id)
            .ok_or_else(|| KafkaError::new(ResponseError::UnknownTopicId))?,
    };
    let (name, id) = (topic.name.clone(), topic.id);
    // DELETE on the topic (TOPIC_AUTHORIZATION_FAILED otherwise).
    if !ctx.authorize(
        crate::authorizer::Operation::Delete,
        crate::authorizer::ResourceType::Topic,
        &name,
    ) {
        return Err(KafkaError::new(ResponseError::TopicAuthorizationFailed));
    }
    match ctx
        .state
        .controller
        .propose(MetadataCommand::DeleteTopic { id })
        .await
    {
        Err(e) => Err(KafkaError::from(&e)),
        // Deleted concurrently by someone else: the id is gone, so report the topic as
        // unknown the way the client named it.
        Ok(CommandResult::Err(e)) => Err(match which {
            Named::Name(_) if matches!(e, crate::cluster::MetadataError::UnknownTopicId(_)) => {
                KafkaError::new(ResponseError::UnknownTopicOrPartition)
            }
            _ => KafkaError::from(&e),
        }),
        Ok(_) => Ok((name, id)),
    }
}

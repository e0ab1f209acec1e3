//! FindCoordinator (key 10), v0–v6: the broker that coordinates a consumer group (key
//! type 0), the leader of the group's `__consumer_offsets` partition, or a transactional
//! id (key type 1), the leader of its `__transaction_state` partition. Each topic is
//! created on first use, as Kafka does. v4+ asks for many keys at once. DESCRIBE on the
//! group or transactional id is needed (GROUP_ / TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::errors::KafkaError;
use crate::group::{manager::partition_for, OFFSETS_TOPIC};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 6 };

const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

pub async fn handle(ctx: &Ctx, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let keys: Vec<String> = if ctx.version >= 4 {
        req.coordinator_keys.iter().map(|k| k.to_string()).collect()
    } else {
        vec![req.key.to_string()]
    };
    let mut found = Vec::with_capacity(keys.len());
    for key in keys {
        let result = lookup(ctx, req.key_type, &key).await;
        let mut c = Coordinator::default().with_key(s(&key));
        match result {
            Ok((node, host, port)) => {
                c = c
                    .with_node_id(BrokerId(node))
                    .with_host(s(&host))
                    .with_port(port);
            }
            Err(e) => {
                ctx.note_error(e.code);
                c = c
                    .with_node_id(BrokerId(-1))
                    .with_port(-1)
                    .with_error_code(e.code)
                    .with_error_message(e.message.as_deref().map(s));
            }
        }
        found.push(c);
    }
    if ctx.version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(found);
    }
    let c = found.pop().unwrap_or_default();
    FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_error_message(c.error_message)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port)
}

async fn lookup(ctx: &Ctx, key_type: i8, key: &str) -> Result<(i32, String, i32), KafkaError> {
    use crate::authorizer::{Operation, ResourceType};
    let (resource, denied) = match key_type {
        KEY_GROUP => (ResourceType::Group, ResponseError::GroupAuthorizationFailed),
        KEY_TRANSACTION => (
            ResourceType::TransactionalId,
            ResponseError::TransactionalIdAuthorizationFailed,
        ),
        other => {
            return Err(KafkaError::with_message(
                ResponseError::InvalidRequest,
                format!("unknown coordinator key type {other}"),
            ))
        }
    };
    if key.is_empty() {
        return Err(KafkaError::new(ResponseError::InvalidRequest));
    }
    // DESCRIBE on the key, as Kafka asks before naming its coordinator.
    if !ctx.authorize(Operation::Describe, resource, key) {
        return Err(KafkaError::new(denied));
    }
    let unavailable = |e: KafkaError| {
        KafkaError::with_message(ResponseError::CoordinatorNotAvailable, e.to_string())
    };
    let (topic, partition) = if key_type == KEY_GROUP {
        let groups = &ctx.state.groups;
        groups.ensure_offsets_topic().await.map_err(unavailable)?;
        let image = ctx.state.controller.image();
        (
            OFFSETS_TOPIC,
            partition_for(key, groups.num_partitions(&image)),
        )
    } else {
        let txns = &ctx.state.transactions;
        txns.ensure_topic().await.map_err(unavailable)?;
        (crate::txn::TXN_TOPIC, txns.partition_of(key))
    };
    let image = ctx.state.controller.image();
    let leader = image
        .partition(topic, partition)
        .map(|p| p.leader)
        .filter(|l| *l >= 0)
        .ok_or_else(|| KafkaError::new(ResponseError::CoordinatorNotAvailable))?;
    let (host, port) = image
        .brokers
        .get(&leader)
        .and_then(|b| b.endpoint(&ctx.listener))
        .ok_or_else(|| KafkaError::new(ResponseError::CoordinatorNotAvailable))?;
    Ok((leader, host.to_string(), port as i32))
}

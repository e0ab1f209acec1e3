//! UnregisterBroker (key 64), v0: forget a broker that is gone for good (Kafka's
//! `kafka-cluster.sh unregister`). Refused while the broker is live (it would register
//! again at its next heartbeat), while it still holds replicas, and while it is a voter
//! of the metadata quorum (RemoveRaftVoter first). Otherwise its registration is
//! removed and it leaves the metadata learners. An unknown id gets
//! BROKER_ID_NOT_REGISTERED.

use kafka_protocol::messages::{UnregisterBrokerRequest, UnregisterBrokerResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::{node_id, s};
use super::Ctx;
use crate::cluster::{CommandResult, MetadataCommand, QuorumChange};
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(ctx: &Ctx, req: UnregisterBrokerRequest) -> UnregisterBrokerResponse {
    match unregister(ctx, req.broker_id.0).await {
        Ok(()) => UnregisterBrokerResponse::default().with_error_message(None),
        Err(e) => {
            ctx.note_error(e.code);
            UnregisterBrokerResponse::default()
                .with_error_code(e.code)
                .with_error_message(e.message.as_deref().map(s))
        }
    }
}

async fn unregister(ctx: &Ctx, id: i32) -> Result<(), KafkaError> {
    if !ctx.authorize_cluster(crate::authorizer::Operation::Alter) {
        return Err(KafkaError::new(
            kafka_protocol::error::ResponseError::ClusterAuthorizationFailed,
        ));
    }
    let raft_id = node_id(id)?;
    let controller = &ctx.state.controller;
    if controller.is_quorum() {
        // A voter cannot simply vanish: the quorum would count a member that is gone.
        let quorum = controller
            .describe_quorum()
            .await
            .map_err(|e| KafkaError::from(&e))?;
        if quorum.voters.contains_key(&raft_id) {
            return Err(KafkaError::from(&crate::cluster::QuorumRefusal::Invalid(
                format!("node {id} is a voter of the metadata quorum; remove it with RemoveRaftVoter first"),
            )));
        }
    }
    match controller
        .propose(MetadataCommand::UnregisterBroker { id })
        .await
    {
        Ok(CommandResult::Err(e)) => return Err(KafkaError::from(&e)),
        Ok(_) => {}
        Err(e) => return Err(KafkaError::from(&e)),
    }
    if controller.is_quorum() {
        controller
            .change_quorum(QuorumChange::RemoveLearner { id: raft_id })
            .await
            .map_err(|e| KafkaError::from(&e))?;
    }
    Ok(())
}

//! RemoveRaftVoter (key 81), v0 (KIP-853): demote a voter of the metadata quorum to a
//! learner. The node keeps following the metadata log and stays a broker; to take it
//! out of the cluster, stop it and unregister it (UnregisterBroker). Removing the last
//! voter is refused; removing the Raft leader makes it step down once the change is
//! committed. Unknown voters get VOTER_NOT_FOUND.

use kafka_protocol::messages::{RemoveRaftVoterRequest, RemoveRaftVoterResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::{check_cluster_id, node_id, s};
use super::Ctx;
use crate::cluster::QuorumChange;
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(ctx: &Ctx, req: RemoveRaftVoterRequest) -> RemoveRaftVoterResponse {
    let outcome = match (
        check_cluster_id(ctx, req.cluster_id.as_deref()),
        node_id(req.voter_id),
    ) {
        (Err(e), _) | (_, Err(e)) => Err(e),
        (Ok(()), Ok(id)) => ctx
            .state
            .controller
            .change_quorum(QuorumChange::RemoveVoter { id })
            .await
            .map_err(|e| KafkaError::from(&e)),
    };
    match outcome {
        Ok(()) => RemoveRaftVoterResponse::default().with_error_message(None),
        Err(e) => {
            ctx.note_error(e.code);
            RemoveRaftVoterResponse::default()
                .with_error_code(e.code)
                .with_error_message(e.message.as_deref().map(s))
        }
    }
}
